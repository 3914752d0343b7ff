"""Build the shipped Word templates (``*.docx``) of ``document_templates/`` reproducibly.

The .docx files are ordinary Word documents with Jinja2 tags in them (docxtpl syntax): open them in Word or
LibreOffice and restyle them freely (styles, fonts, colours, logo, header and footer, wording, order). This
script only (re)creates the *default* layouts; it never overwrites a template unless ``--force`` is given,
so a compliance team's edits are safe. Its output is byte-for-byte reproducible.

Run: ``.venv/bin/python document_templates/build_templates.py [--force] [--only NAME]``
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt, RGBColor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from app.documents.render import EPOCH, normalize_docx  # noqa: E402

TBC = "{{ labels.to_be_completed }}"
NR = "{{ labels.not_recorded }}"
ACCENT = RGBColor(0x0B, 0x53, 0x94)


class Builder:
    """A thin layer over python-docx that writes docxtpl tags into paragraphs and table rows."""

    def __init__(self, title: str) -> None:
        self.doc = Document()
        self.title = title
        self._styles()

    def _styles(self) -> None:
        styles = self.doc.styles
        normal = styles["Normal"]
        normal.font.name = "Calibri"
        normal.font.size = Pt(10)
        normal.paragraph_format.space_after = Pt(4)
        for name, size in (("Title", 22), ("Heading 1", 14), ("Heading 2", 11.5), ("Heading 3", 10.5)):
            style = styles[name]
            style.font.name = "Calibri"
            style.font.size = Pt(size)
            style.font.color.rgb = ACCENT
        section = self.doc.sections[0]
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        for side in ("left_margin", "right_margin"):
            setattr(section, side, Cm(2.0))
        section.top_margin, section.bottom_margin = Cm(2.0), Cm(2.0)

    # --- blocks ---------------------------------------------------------------------------------------

    def heading(self, text: str, level: int = 1) -> None:
        self.doc.add_heading(text, level=level)

    def para(
        self, text: str, *, label: str | None = None, style: str | None = None, small: bool = False
    ) -> None:
        """A paragraph; ``label`` is printed bold in front of the text."""
        p = self.doc.add_paragraph(style=style)
        if label:
            p.add_run(label + " ").bold = True
        run = p.add_run(text)
        if small:
            run.font.size = Pt(8.5)

    def tag(self, tag: str) -> None:
        """A paragraph holding only a docxtpl paragraph tag (``{%p if ... %}``); docxtpl removes it."""
        self.doc.add_paragraph(tag)

    def kv(self, rows: Sequence[tuple[str, str]]) -> None:
        """A two-column field/value table."""
        table = self.doc.add_table(rows=0, cols=2)
        table.style = "Table Grid"
        for key, value in rows:
            cells = table.add_row().cells
            cells[0].text = ""
            cells[0].paragraphs[0].add_run(key).bold = True
            cells[1].text = value
            cells[0].width, cells[1].width = Cm(5.0), Cm(12.0)
        self.doc.add_paragraph()

    def loop_table(self, headers: Sequence[str], loop: str, cells: Sequence[str]) -> None:
        """A header row and one row repeated by ``{%tr for ... %}``."""
        table = self.doc.add_table(rows=0, cols=len(headers))
        table.style = "Table Grid"
        head = table.add_row().cells
        for cell, text in zip(head, headers, strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(text).bold = True
        table.add_row().cells[0].text = "{%tr " + loop + " %}"
        for cell, text in zip(table.add_row().cells, cells, strict=True):
            cell.text = text
        table.add_row().cells[0].text = "{%tr endfor %}"
        self.doc.add_paragraph()

    def footer(self, text: str) -> None:
        p = self.doc.sections[0].footer.paragraphs[0]
        p.text = text
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for run in p.runs:
            run.font.size = Pt(8)

    def save(self, path: Path) -> None:
        props = self.doc.core_properties
        props.title = self.title
        props.author = "aireg"
        props.last_modified_by = "aireg"
        props.created = props.modified = props.last_printed = EPOCH
        props.revision = 1
        props.comments = "Template for aireg documents (docxtpl): restyle freely, keep the Jinja tags."
        buffer = io.BytesIO()
        self.doc.save(buffer)
        path.write_bytes(normalize_docx(buffer.getvalue(), EPOCH))


# --- shared pieces -------------------------------------------------------------------------------------

OWNER = (
    "{% if owners.business.display_name %}{{ owners.business.display_name }} ({{ owners.business.username }})"
    "{% else %}{{ owners.business.username }}{% endif %}"
)
AS_OF = (
    "registry record as of {{ document.covered_until | datetime }} (audit event {{ document.covered_seq }})"
)
FOOTER = (
    "{{ system.id }} · {{ document.kind }} · covers the audit trail to event {{ document.covered_seq }}, "
    "chain head {{ document.audit_head_hash | short_hash(16) }} · catalogue {{ document.catalog_version }}"
)


def classification_block(b: Builder, *, missing: str) -> None:
    b.tag("{%p if classification %}")
    b.para(
        '{{ classification.ai_act_class | label("ai_act_class") }}'
        "{% if classification.basis %} ({{ classification.basis | join_cites }}){% endif %}",
        label="Class:",
    )
    b.para("{{ classification.rationale | recorded }}", label="Rationale:")
    b.para(
        "{{ classification.created_at | datetime }} by {{ classification.assessor }} for the "
        "{{ classification.ai_act_role }} role"
        "{% if classification.effective_role != classification.ai_act_role %}"
        ", acting as {{ classification.effective_role }} (AI Act Art. 25){% endif %}, catalogue "
        "{{ classification.catalog_version }}",
        label="Classified:",
    )
    b.tag("{%p if classification.obligations %}")
    b.loop_table(
        [
            "Article",
            "Obligation",
            "Condition",
            "Applies from",
            "In force on {{ document.covered_until | date }}",
        ],
        "for o in classification.obligations",
        [
            "{{ o.cite }}",
            "{{ o.title }}",
            '{{ o.condition or "none (binds without condition)" }}',
            "{{ o.applies_from | date }}",
            "{{ o.in_force | yes_no }}",
        ],
    )
    b.tag("{%p endif %}")
    b.tag("{%p else %}")
    b.para(missing)
    b.tag("{%p endif %}")


def risks_table(b: Builder, limit: str = "") -> None:
    b.loop_table(
        ["Risk", "NIST AI RMF", "Mitigation"],
        "for r in risk.risks" + limit,
        [
            "{{ r.title }}",
            '{{ r.nist_refs | map(attribute="id") | join(", ") | recorded }}',
            "{{ r.mitigation | recorded }}",
        ],
    )


def parts_block(b: Builder, source: str) -> None:
    """The parts of a document (``technical.parts``, ``card.parts``): headings, labelled paragraphs and
    tables of any width, laid out the same way as the Markdown and HTML templates do."""
    b.tag("{%p for part in " + source + " %}")
    b.tag("{%p if part.level == 1 %}")
    b.heading("{{ part.title }}", 1)
    b.tag("{%p else %}")
    b.heading("{{ part.title }}", 2)
    b.tag("{%p endif %}")
    b.tag("{%p for block in part.blocks %}")
    b.tag("{%p if block.table %}")
    table = b.doc.add_table(rows=0, cols=3)
    table.style = "Table Grid"
    head = table.add_row().cells
    head[0].text, head[2].text = "{%tc for h in block.headers %}", "{%tc endfor %}"
    head[1].text = ""
    head[1].paragraphs[0].add_run("{{ h }}").bold = True
    table.add_row().cells[0].text = "{%tr for row in block.rows %}"
    cells = table.add_row().cells
    cells[0].text, cells[1].text, cells[2].text = "{%tc for cell in row %}", "{{ cell }}", "{%tc endfor %}"
    table.add_row().cells[0].text = "{%tr endfor %}"
    b.tag("{%p else %}")
    p = b.doc.add_paragraph()
    p.add_run("{% if block.label %}{{ block.label }} {% endif %}").bold = True
    p.add_run("{{ block.text }}")
    b.tag("{%p endif %}")
    b.tag("{%p endfor %}")
    b.tag("{%p endfor %}")


# --- the documents -------------------------------------------------------------------------------------


def model_card() -> Builder:
    """A layout only: the content comes as ``card.parts`` from app/documents/card.py, the same parts the
    Markdown, HTML and PDF cards lay out."""
    b = Builder("Model card")
    b.heading("Model card: {{ system.name }}", 0)
    b.para(
        "{{ system.id }} · model version {{ version.version if version else labels.not_recorded }} · " + AS_OF
    )
    parts_block(b, "card.parts")
    b.footer(FOOTER)
    return b


def technical_documentation() -> Builder:
    """Annex IV: a layout only. The content (sections, recorded text, placeholders, registry facts) comes
    as ``technical.parts`` from app/documents/annex4.py, the same parts the Markdown template lays out."""
    b = Builder("Technical documentation (AI Act Annex IV)")
    b.heading("Technical documentation: {{ system.name }}", 0)
    b.para("{{ system.id }} · {{ technical.version_label }} · " + AS_OF)
    b.para("{{ technical.intro }}", small=True)
    parts_block(b, "technical.parts")
    b.footer(FOOTER)
    return b


def art6_4_assessment() -> Builder:
    b = Builder("Art. 6(3) assessment record (AI Act Art. 6(4))")
    b.heading("Art. 6(3) assessment: {{ system.name }}", 0)
    b.para("{{ system.id }} · " + AS_OF)
    b.para(
        "Art. 6(4) of Regulation (EU) 2024/1689: a provider that considers an Annex III system not high-risk "
        "under Art. 6(3) documents that assessment before placing the system on the market or putting it "
        "into service, and hands the documentation over to the national competent authorities on request. "
        "Art. 49(2): the provider still registers itself and the system in the EU database.",
        small=True,
    )

    b.heading("1. The system", 1)
    b.kv(
        [
            ("System ID", "{{ system.id }}"),
            ("Name", "{{ system.name }}"),
            ("Intended purpose", "{{ system.purpose }}"),
            ("Intended use", "{{ system.intended_use | recorded }}"),
            ("Site and line", "{{ system.site }} / {{ system.line | recorded }}"),
            ("AI Act role", '{{ system.ai_act_role | label("ai_act_role") }}'),
            ("Vendor", "{{ system.vendor if system.vendor else labels.built_in_house }}"),
            ("Business owner", OWNER),
            ("Model version", "{{ version.version if version else labels.not_recorded }}"),
            ("Artifact digest", "{{ version.artifact_digest if version else labels.not_recorded }}"),
        ]
    )

    b.heading("2. Annex III use", 1)
    b.tag("{%p if classification.annex3_uses %}")
    b.loop_table(
        ["Use", "Description"],
        "for u in classification.annex3_uses",
        ["{{ u.cite }}", "{{ u.title | recorded }}"],
    )
    b.tag("{%p else %}")
    b.para(NR)
    b.tag("{%p endif %}")

    b.heading("3. Art. 6(3) conditions relied on", 1)
    b.tag("{%p if classification.art6_3_conditions %}")
    b.loop_table(
        ["Condition", "Description"],
        "for c in classification.art6_3_conditions",
        ["{{ c.cite }}", "{{ c.title | recorded }}"],
    )
    b.tag("{%p else %}")
    b.para(NR)
    b.tag("{%p endif %}")
    b.para(
        "{{ classification.profiling | yes_no }} (an Annex III system that profiles natural persons is "
        "always high-risk; Art. 6(3) last subparagraph)",
        label="Profiling of natural persons:",
    )

    b.heading("4. Outcome and rationale", 1)
    classification_block(b, missing=NR)

    b.heading("5. Supporting evidence", 1)
    b.tag("{%p if risk %}")
    b.para(
        '{{ risk.tier | label("risk_tier") }}, assessed {{ risk.created_at | datetime }} '
        "by {{ risk.assessor }}",
        label="NIST AI RMF risk tier:",
    )
    b.tag("{%p if risk.risks %}")
    risks_table(b)
    b.tag("{%p endif %}")
    b.tag("{%p else %}")
    b.para("Risk assessment: " + NR)
    b.tag("{%p endif %}")
    b.para("{{ system.human_oversight | recorded }}", label="Human oversight:")
    b.para("{{ system.limitations | recorded }}", label="Limitations:")

    b.heading("6. Registration in the EU database (Art. 49(2))", 1)
    b.para(TBC, label="Registration number and date:")

    b.heading("7. Assessment history", 1)
    b.loop_table(
        ["Date", "Class", "Basis", "Catalogue", "Assessor"],
        "for c in classification_history",
        [
            "{{ c.created_at | datetime }}",
            '{{ c.ai_act_class | label("ai_act_class") }}',
            "{{ c.basis | join_cites | recorded }}",
            "{{ c.catalog_version }}",
            "{{ c.assessor }}",
        ],
    )

    b.heading("8. Responsible person", 1)
    b.para(TBC, label="Name, function, date and signature:")
    b.footer(FOOTER)
    return b


TEMPLATES: dict[str, Callable[[], Builder]] = {
    "model_card.docx": model_card,
    "technical_documentation.docx": technical_documentation,
    "art6_4_assessment.docx": art6_4_assessment,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite templates that already exist")
    parser.add_argument("--only", choices=sorted(TEMPLATES), help="build one template")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    args = parser.parse_args(argv)
    for name, build in TEMPLATES.items():
        if args.only and name != args.only:
            continue
        path = args.out / name
        if path.exists() and not args.force:
            print(f"kept {path} (exists; --force overwrites)")
            continue
        build().save(path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
