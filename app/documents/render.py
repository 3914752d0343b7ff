"""Rendering documents from the layouts in ``document_templates/`` (no database access here).

Markdown and HTML are Jinja2 templates; DOCX files are Word documents carrying Jinja2 tags, rendered with
docxtpl. Every environment uses ``StrictUndefined`` so a template naming a field the context lacks fails
loudly instead of printing nothing. DOCX output is made byte-for-byte reproducible: core properties carry
the covered time and the ZIP container is rewritten with fixed timestamps, order and attributes (deflate at
a fixed level, so equal bytes need the same zlib build).

Text users typed never becomes markup, whatever the template does with it (AI Act documents are evidence:
a name must not forge a heading such as "Approved by the EU", nor a link or a script). One escaping rule
per format, applied by the environment to every ``{{ ... }}`` so a template cannot forget it:

- Markdown (``*.md.j2``): ``md_escape`` is the environment's ``finalize``: HTML and Markdown punctuation are
  escaped and line breaks become ``<br>``, so a value is literal text on one line wherever it is printed
  (heading, table cell, paragraph). Markdown a filter builds on purpose (``to_yaml``) is ``MarkdownSafe``;
  a template marks a trusted fragment with ``| safe``.
- HTML (``*.html.j2``): Jinja autoescape, always on.
- DOCX: Jinja autoescape (the output is WordprocessingML), and control characters docxtpl would read as
  layout commands are removed. User text is only ever a value in the context, never template source, so
  ``{{``/``{%`` in it is printed as typed.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from markupsafe import Markup

from app.errors import AppError
from app.settings import get_settings

EPOCH = datetime(1980, 1, 1, tzinfo=UTC)  # the earliest time a ZIP entry can carry
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_Out = TypeVar("_Out", bound=IO[bytes])


class TemplateProblem(AppError):
    """A document template in ``document_templates/`` is broken (names a missing field, bad syntax)."""

    status, title, type_slug = 500, "Document template error", "document-template-error"


def _problem(template: str, exc: Exception) -> TemplateProblem:
    lineno = getattr(exc, "lineno", None)
    where = f" line {lineno}" if lineno else ""
    return TemplateProblem(f"document template {template}{where} cannot be rendered: {exc}")


def templates_dir() -> Path:
    """Where the document layouts live (``AIREG_DOCUMENT_TEMPLATES_DIR``, default ``document_templates/``)."""
    return get_settings().document_templates_dir


@lru_cache(maxsize=4)
def _labels(directory: Path, mtime: float) -> dict[str, Any]:
    with (directory / "labels.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{directory / 'labels.yaml'}: expected a mapping of labels")
    return data


def labels() -> dict[str, Any]:
    """Wording shared by every document (``labels.yaml``): placeholders and names of classes and tiers."""
    directory = templates_dir()
    return _labels(directory, (directory / "labels.yaml").stat().st_mtime)


# --- filters -------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def recorded(value: Any, placeholder: str | None = None) -> Any:
    """The value, or the "not recorded" placeholder (or the given one) when the registry holds nothing."""
    if _blank(value):
        return placeholder if placeholder is not None else labels()["not_recorded"]
    return value


def label(value: Any, group: str) -> Any:
    """The wording for a code from ``labels.yaml`` (e.g. ``high_risk`` in ``ai_act_class``), else the code."""
    if value is None:
        return labels()["not_recorded"]
    return labels().get(group, {}).get(str(value), value)


def fmt_datetime(value: datetime | None, placeholder: str | None = None) -> str:
    """``2026-11-30 14:05:00 UTC``, or the placeholder."""
    if value is None:
        return placeholder if placeholder is not None else labels()["not_recorded"]
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_date(value: date | datetime | None, placeholder: str | None = None) -> str:
    """``2026-11-30``, or the placeholder."""
    if value is None:
        return placeholder if placeholder is not None else labels()["not_recorded"]
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return value.isoformat()


def yes_no(value: bool | None) -> str:
    """The yes/no wording of ``labels.yaml``."""
    if value is None:
        return str(labels()["not_recorded"])
    return str(labels()["answer_yes"] if value else labels()["answer_no"])


# --- Markdown escaping ---------------------------------------------------------------------------------


class MarkdownSafe(str):
    """Markdown meant as markup (built by a filter, or marked ``| safe`` in a template): printed as is.

    Anything else a Markdown template prints goes through ``md_escape``. Joining it with other text gives a
    plain ``str`` again, which is escaped as a whole.
    """


# Characters that make markup anywhere in a line (CommonMark and GFM): backslash escapes, code spans,
# emphasis, links and images (and the "(" of a link target, so no "](javascript:" is left to find), tables,
# strikethrough, ATX heading markers, raw HTML, entity references. An underscore between two letters or
# digits cannot emphasise (snake_case stays as typed).
_MD_SPECIAL = re.compile(r"[\\`*\[\]|~#<>&]|(?<=\])\(|(?<![^\W_])_|_(?![^\W_])")
_MD_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# What makes a block at the start of a line: list items, setext underlines, thematic breaks, ordered lists.
_MD_BLOCK_START = re.compile(r"^(?:[-+=]|(\d{1,9})[.)](?=\s|$))")


def _md_char(match: re.Match[str]) -> str:
    char = match.group(0)
    return _MD_ENTITY.get(char, "\\" + char)


def _md_block_start(match: re.Match[str]) -> str:
    digits = match.group(1)
    return f"{digits}\\{match.group(0)[-1]}" if digits else "\\" + match.group(0)


def md_escape(value: Any) -> MarkdownSafe:
    """Any value as literal Markdown text on one line (the Markdown environment's ``finalize``).

    HTML is escaped as entities (``<script>`` prints as ``&lt;script&gt;``), Markdown punctuation with a
    backslash, each line is trimmed and may not open a block (``# ``, ``- ``, ``1. ``, ``===``), and line
    breaks become ``<br>``: the value cannot start a heading, a list, a table row or a code block, nor end
    the line it is printed in, so it is safe in a heading, a table cell and a paragraph alike.
    """
    if isinstance(value, MarkdownSafe):
        return value
    lines = []
    for line in _CONTROL.sub("", str(value)).strip().splitlines():
        line = _MD_SPECIAL.sub(_md_char, line.strip())
        lines.append(_MD_BLOCK_START.sub(_md_block_start, line))
    return MarkdownSafe("<br>".join(lines))


def md_cell(value: Any) -> MarkdownSafe:
    """Text safe inside a Markdown table cell (what every printed value already is; kept for templates)."""
    return md_escape(value)


def md_trusted(value: Any) -> MarkdownSafe:
    """``| safe`` in a Markdown template: a fragment the template vouches for, printed unescaped."""
    return MarkdownSafe(value)


class _FrontMatterDumper(yaml.SafeDumper):
    """YAML whose text holding ``<``, ``>`` or ``&`` is double-quoted, so those can be written as escapes."""


_HTML_CHARS = re.compile(r"[<>&]")
_FrontMatterDumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style='"' if _HTML_CHARS.search(value) else None
    ),
)


def to_yaml(value: Any) -> MarkdownSafe:
    """Block-style YAML with keys in the given order, for Markdown front matter.

    The emitter quotes and indents text, so no value can end the front matter or start a line of its own;
    ``<``, ``>`` and ``&`` are written as YAML escapes (``\\x3C``), so the file holds no HTML a renderer could
    pick up while the metadata still reads as typed.
    """
    text = yaml.dump(
        value,
        Dumper=_FrontMatterDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )
    return MarkdownSafe(text.replace("<", "\\x3C").replace(">", "\\x3E").replace("&", "\\x26"))


def join_cites(items: Iterable[dict[str, Any]], sep: str = ", ") -> str:
    """Citations of identifier dicts (``Art. 6(2), Annex III point 4(a)``)."""
    return sep.join(i["cite"] for i in items)


def short_hash(value: str | None, length: int = 12) -> str:
    """The first ``length`` characters of a hash."""
    return value[:length] if value else labels()["not_recorded"]


FILTERS = {
    "recorded": recorded,
    "label": label,
    "datetime": fmt_datetime,
    "date": fmt_date,
    "yes_no": yes_no,
    "md_cell": md_cell,
    "to_yaml": to_yaml,
    "join_cites": join_cites,
    "short_hash": short_hash,
}


def _configure(env: Environment) -> Environment:
    env.filters.update(FILTERS)
    return env


MARKDOWN_SUFFIXES = (".md.j2", ".md")
HTML_SUFFIXES = (".html.j2", ".html")


def _text_options(directory: Path) -> dict[str, Any]:
    return {
        "loader": FileSystemLoader(str(directory)),
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }


@lru_cache(maxsize=4)
def markdown_environment(directory: Path) -> Environment:
    """Jinja for Markdown: strict; every printed value goes through ``md_escape`` unless ``MarkdownSafe``."""
    env = _configure(Environment(finalize=md_escape, **_text_options(directory)))
    env.filters["safe"] = md_trusted
    return env


@lru_cache(maxsize=4)
def html_environment(directory: Path) -> Environment:
    """Jinja for HTML: strict and always autoescaped."""
    return _configure(Environment(autoescape=True, **_text_options(directory)))


def text_environment(template: str) -> Environment:
    """The environment whose escaping fits the template's format, told by its name (``.md.j2``, ``.html.j2``).

    A template of another kind is refused: its format's escaping rule has to be written here first.
    """
    directory = templates_dir()
    name = template.lower()
    if name.endswith(MARKDOWN_SUFFIXES):
        return markdown_environment(directory)
    if name.endswith(HTML_SUFFIXES):
        return html_environment(directory)
    raise TemplateProblem(
        f"document template {template}: unknown format (name it *.md.j2 or *.html.j2), so its output "
        "could not be escaped"
    )


class _CompiledOnce(Environment):
    """docxtpl compiles the XML of a Word template on every render; this keeps each compiled source.

    The key is the source text itself, so an edited template compiles afresh on its next render.
    """

    MAX_SOURCES = 64

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> Any:
        if globals is not None or template_class is not None or not isinstance(source, str):
            return super().from_string(source, globals, template_class)
        template = self._compiled.get(source)
        if template is None:
            template = super().from_string(source)
            with self._lock:
                if len(self._compiled) >= self.MAX_SOURCES:
                    self._compiled.clear()
                self._compiled[source] = template
        return template


@lru_cache(maxsize=1)
def docx_environment() -> Environment:
    """Jinja for the tags inside Word templates: strict and always escaped (the output is XML)."""
    return _configure(_CompiledOnce(undefined=StrictUndefined, autoescape=True))


def render_text(template: str, context: dict[str, Any]) -> str:
    """Render a Markdown or HTML template (user text escaped for the template's format)."""
    env = text_environment(template)
    try:
        return env.get_template(template).render(context)
    except TemplateError as exc:
        raise _problem(template, exc) from exc


# --- DOCX ----------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """Strip control characters XML cannot carry (docxtpl reads \\a, \\f and \\t as layout commands)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def zip_time(when: datetime | None) -> tuple[int, int, int, int, int, int]:
    """A ZIP entry timestamp for ``when`` in UTC (never before 1980, the format's epoch)."""
    moment = max((when or EPOCH).astimezone(UTC), EPOCH)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def deterministic_zip(
    entries: Iterable[tuple[str, bytes]], *, when: datetime | None, compress: bool, out: _Out
) -> _Out:
    """Write ``entries`` to ``out`` in order with fixed timestamps and attributes; returns ``out``."""
    stamp = zip_time(when)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = method
            info.create_system = 0
            info.external_attr = 0
            zf.writestr(info, data, compresslevel=6 if compress else None)
    return out


def normalize_docx(data: bytes, when: datetime | None) -> bytes:
    """Rewrite a DOCX container deterministically (same parts, same order, fixed times and attributes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        names = src.namelist()
        ordered = sorted(names, key=lambda n: (n != "[Content_Types].xml", names.index(n)))
        entries = [(name, src.read(name)) for name in ordered]
    return deterministic_zip(entries, when=when, compress=True, out=io.BytesIO()).getvalue()


def render_docx(template: str, context: dict[str, Any], *, timestamp: datetime | None) -> bytes:
    """Render a Word template with docxtpl; core properties carry ``timestamp`` (the covered time)."""
    from docxtpl import DocxTemplate

    path = templates_dir() / template
    doc = DocxTemplate(io.BytesIO(path.read_bytes()))
    try:
        doc.render(_clean(context), jinja_env=docx_environment())
    except TemplateError as exc:
        raise _problem(template, exc) from exc
    moment = (timestamp or EPOCH).astimezone(UTC).replace(microsecond=0)
    props = doc.docx.core_properties
    props.created = moment
    props.modified = moment
    props.last_printed = moment
    props.last_modified_by = "aireg"
    props.revision = 1
    buffer = io.BytesIO()
    doc.save(buffer)
    return normalize_docx(buffer.getvalue(), timestamp)
