"""AI Act Annex V (declaration of conformity) and Annex VIII (EU database registration) as data.

Read from ``<risk_catalog_dir>/annex5.yaml`` and ``annex8.yaml`` and checked at start with the catalogue's own
loader helpers, so every problem is a line naming the file and the key path
(``risk_catalog/annex8.yaml: sections[2].fields[3].source: ...``). Each item or field names the registry fact
that fills it (``source``); ``app/documents/conformity.py`` builds the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field

from app.classification.catalog import (
    Catalog,
    CatalogError,
    _display,
    _duplicates,
    _Entry,
    _parse,
    _read_yaml,
    get_catalog,
)
from app.settings import get_settings
from app.systems.models import LifecycleStage

__all__ = [
    "ANNEX5_FILE",
    "ANNEX8_FILE",
    "Annex5",
    "Annex8",
    "get_annex5",
    "get_annex8",
    "load_annex5",
    "load_annex8",
    "prefix_match",
]

ANNEX5_FILE = "annex5.yaml"  # in the catalogue directory (AIREG_RISK_CATALOG_DIR)
ANNEX8_FILE = "annex8.yaml"

# The registry facts an Annex V item can print (app/documents/conformity.py builds each one).
Annex5Fact = Literal[
    "system_reference",
    "provider",
    "statement",
    "personal_data",
    "standards",
    "conformity_procedure",
]
# The registry facts an Annex VIII field can be filled from.
Annex8Fact = Literal[
    "provider",
    "deployer",
    "system_reference",
    "intended_purpose",
    "data_and_logic",
    "status",
    "declaration_of_conformity",
    "art6_3_conditions",
    "art6_3_grounds",
    "fria_summary",
]


def prefix_match(ident: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    """Whether ``ident`` is one of ``prefixes`` or an id below one (``annex3.1.a`` under ``annex3.1``)."""
    return any(ident == p or ident.startswith(p + ".") for p in prefixes)


# --- Annex V -------------------------------------------------------------------------------------------


class Annex5Item(_Entry):
    """One item of the EU declaration of conformity."""

    id: str = Field(pattern=r"^annex5\.[1-9]$")
    title: str = Field(min_length=1, max_length=300)
    source: Annex5Fact | None
    statement: str | None = Field(default=None, min_length=1, max_length=1000)
    what_to_supply: str = Field(min_length=1, max_length=500)


class ConformityProcedure(_Entry):
    """The Art. 43 procedure for systems whose basis or Annex III uses fall under ``uses``."""

    id: str = Field(pattern=r"^art43\.\d$")
    cite: str = Field(min_length=1, max_length=40)
    uses: list[str] = Field(min_length=1)
    procedure: str = Field(min_length=1, max_length=500)
    notified_body: Literal["none", "possible", "sectoral"]


class Annex5(_Entry):
    """``annex5.yaml``, validated."""

    items: tuple[Annex5Item, ...] = Field(min_length=1)
    conformity_procedures: tuple[ConformityProcedure, ...] = Field(min_length=1)

    def procedure_for(self, ids: list[str]) -> ConformityProcedure | None:
        """The first procedure one of whose prefixes matches an id (of the basis or the Annex III uses)."""
        for procedure in self.conformity_procedures:
            if any(prefix_match(i, procedure.uses) for i in ids):
                return procedure
        return None


# the items that print a statement of the provider (personal_data: only where personal data are processed)
_STATEMENT_SOURCES = ("statement", "personal_data")


def load_annex5(path: Path) -> Annex5:
    """Read and validate ``annex5.yaml``; raise CatalogError listing every problem with file and key."""
    name = _display(path)
    problems: list[str] = []
    spec = _parse(Annex5, _read_yaml(path, name), name, problems)
    if spec is None:
        raise CatalogError(problems)
    problems.extend(_duplicates(name, "items", [i.id for i in spec.items], {}))
    problems.extend(
        _duplicates(name, "conformity_procedures", [p.id for p in spec.conformity_procedures], {})
    )
    ids = [i.id for i in spec.items]
    if ids != sorted(ids):
        problems.append(f"{name}: items: must be in Annex V order ({', '.join(sorted(ids))})")
    for i, item in enumerate(spec.items):
        if (item.source in _STATEMENT_SOURCES) != (item.statement is not None):
            problems.append(
                f"{name}: items[{i}].statement: required exactly when source is "
                f"{' or '.join(_STATEMENT_SOURCES)} ({item.id})"
            )
    if problems:
        raise CatalogError(problems)
    return spec


# --- Annex VIII ----------------------------------------------------------------------------------------

SectionId = Literal["A", "B", "C"]


class Annex8Field(_Entry):
    """One field of a registration section."""

    id: str = Field(pattern=r"^annex8\.[abc]\.\d{1,2}$")
    title: str = Field(min_length=1, max_length=300)
    source: Annex8Fact | None


class Annex8Section(_Entry):
    """Section A, B or C of Annex VIII."""

    id: SectionId
    title: str = Field(min_length=1, max_length=300)
    fields: tuple[Annex8Field, ...] = Field(min_length=1)


class Registration(_Entry):
    """An obligation of a classification that opens a section of Annex VIII."""

    obligation: str = Field(min_length=1, max_length=40)
    section: SectionId
    register_in: Literal["eu_database", "national"]
    cite: str = Field(min_length=1, max_length=40)
    why: str = Field(min_length=1, max_length=1000)


class Annex8(_Entry):
    """``annex8.yaml``, validated."""

    registrations: tuple[Registration, ...] = Field(min_length=1)
    non_public_uses: tuple[str, ...] = ()
    status: dict[LifecycleStage, str]
    sections: tuple[Annex8Section, ...] = Field(min_length=1)

    def section(self, section_id: str) -> Annex8Section:
        """The section with this id (every registration names one; checked at load)."""
        return next(s for s in self.sections if s.id == section_id)


def _field_order(field_id: str) -> tuple[str, int]:
    _, section, point = field_id.split(".")
    return section, int(point)


def load_annex8(path: Path, catalog: Catalog | None = None) -> Annex8:
    """Read and validate ``annex8.yaml`` against the AI Act catalogue's obligations; raise CatalogError
    listing every problem with file and key."""
    name = _display(path)
    problems: list[str] = []
    spec = _parse(Annex8, _read_yaml(path, name), name, problems)
    if spec is None:
        raise CatalogError(problems)
    obligations = (catalog or get_catalog()).ai_act.obligation_by_id
    section_ids = [s.id for s in spec.sections]
    problems.extend(_duplicates(name, "sections", section_ids, {}))
    problems.extend(
        _duplicates(name, "registrations", [r.obligation for r in spec.registrations], {}),
    )
    for i, reg in enumerate(spec.registrations):
        if reg.obligation not in obligations:
            problems.append(
                f"{name}: registrations[{i}].obligation: {reg.obligation!r} is no AI Act obligation"
            )
        if reg.section not in section_ids:
            problems.append(f"{name}: registrations[{i}].section: no section {reg.section!r} in sections")
    missing = [stage.value for stage in LifecycleStage if stage not in spec.status]
    if missing:
        problems.append(f"{name}: status: no wording for lifecycle stage(s) {', '.join(missing)}")
    seen: dict[str, str] = {}
    for i, section in enumerate(spec.sections):
        ids = [f.id for f in section.fields]
        problems.extend(_duplicates(name, f"sections[{i}].fields", ids, seen))
        for j, field_id in enumerate(ids):
            if field_id.split(".")[1] != section.id.lower():
                problems.append(
                    f"{name}: sections[{i}].fields[{j}].id: {field_id!r} is not in section {section.id}"
                )
        if ids != sorted(ids, key=_field_order):
            problems.append(f"{name}: sections[{i}].fields: must be in Annex VIII order")
    if problems:
        raise CatalogError(problems)
    return spec


# --- loaded once per file version ----------------------------------------------------------------------

_T = TypeVar("_T")
_loaded: dict[str, tuple[Path, float, object]] = {}


def _cached(filename: str, load: Callable[[Path], _T]) -> _T:
    """The file's validated content, reloaded when the file changes (as ``get_annex4`` does)."""
    path = Path(get_settings().risk_catalog_dir) / filename
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise CatalogError([f"{_display(path)}: cannot read file ({exc.strerror or exc})"]) from exc
    cached = _loaded.get(filename)
    if cached is not None and cached[0] == path and cached[1] == mtime:
        return cached[2]  # type: ignore[return-value]
    value = load(path)
    _loaded[filename] = (path, mtime, value)
    return value


def get_annex5() -> Annex5:
    """The Annex V items of the catalogue in force."""
    return _cached(ANNEX5_FILE, load_annex5)


def get_annex8() -> Annex8:
    """The Annex VIII sections of the catalogue in force."""
    return _cached(ANNEX8_FILE, load_annex8)


def check_annexes() -> None:
    """Load both files once: a broken one stops the service at start, naming the file and key."""
    get_annex5()
    get_annex8()
