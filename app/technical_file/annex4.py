"""AI Act Annex IV as data: the sections of a technical file, read from ``<risk_catalog_dir>/annex4.yaml``.

Checked at start with the catalogue's own loader helpers, so every problem is a line naming the file and the
key path (``risk_catalog/annex4.yaml: sections[3].from_registry[0]: ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr

from app.classification.catalog import CatalogError, _display, _duplicates, _Entry, _parse, _read_yaml
from app.settings import get_settings

__all__ = ["ANNEX4_FILE", "Annex4", "Point", "Section", "get_annex4", "load_annex4"]

ANNEX4_FILE = "annex4.yaml"  # in the catalogue directory (AIREG_RISK_CATALOG_DIR)
SECTION_ID_PATTERN = r"^annex4\.[1-9](\.[a-z])?$"
_SECTION_ID = re.compile(SECTION_ID_PATTERN)

# The registry facts a section can print (app/technical_file/service.py builds each one).
Fact = Literal[
    "purpose",
    "provider",
    "owners",
    "version",
    "versions",
    "lifecycle",
    "site",
    "training_data",
    "human_oversight",
    "limitations",
    "metrics",
    "risk_assessment",
    "nist_checklist",
    "security",
    "classification_history",
    "incidents",
    "approvals",
    "standards",
    "monitoring",
]


class Point(_Entry):
    """A numbered point of Annex IV (``1`` ... ``9``) with its heading."""

    point: str = Field(pattern=r"^[1-9]$")
    title: str = Field(min_length=1, max_length=200)


class Section(_Entry):
    """One item of Annex IV: a section of every technical file."""

    id: str = Field(pattern=SECTION_ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    what_to_supply: str = Field(min_length=1, max_length=500)
    from_registry: list[Fact] = Field(default_factory=list)
    provider_supplies: bool

    @property
    def point(self) -> str:
        """``2`` for ``annex4.2.c``."""
        return self.id.split(".")[1]

    @property
    def letter(self) -> str | None:
        """``c`` for ``annex4.2.c``; None for a point without letters."""
        parts = self.id.split(".")
        return parts[2] if len(parts) > 2 else None

    @property
    def cite(self) -> str:
        """``Annex IV point 2(c)``."""
        return f"Annex IV point {self.point}" + (f"({self.letter})" if self.letter else "")


class Annex4File(_Entry):
    """``annex4.yaml`` as written."""

    points: list[Point] = Field(min_length=1)
    sections: list[Section] = Field(min_length=1)


class Annex4(_Entry):
    """The validated sections, in Annex IV order, and the headings of their points."""

    file: str
    points: tuple[Point, ...]
    sections: tuple[Section, ...]

    _by_id: dict[str, Section] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        """Index the sections by id."""
        self._by_id = {s.id: s for s in self.sections}

    @property
    def section_by_id(self) -> dict[str, Section]:
        """Sections by id, in Annex IV order."""
        return self._by_id

    def point_title(self, point: str) -> str:
        """The heading of a numbered point."""
        return next(p.title for p in self.points if p.point == point)


def _order_key(section_id: str) -> tuple[int, str]:
    parts = section_id.split(".")
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


def load_annex4(path: Path) -> Annex4:
    """Read and validate ``annex4.yaml``; raise CatalogError listing every problem with file and key."""
    name = _display(path)
    data = _read_yaml(path, name)
    problems: list[str] = []
    spec = _parse(Annex4File, data, name, problems)
    if spec is None:
        raise CatalogError(problems)
    seen: dict[str, str] = {}
    problems.extend(_duplicates(name, "sections", [s.id for s in spec.sections], seen))
    points = [p.point for p in spec.points]
    for i, point in enumerate(points):
        if points.index(point) != i:
            problems.append(f"{name}: points[{i}].point: duplicate point {point!r}")
    for i, section in enumerate(spec.sections):
        if section.point not in points:
            problems.append(f"{name}: sections[{i}].id: point {section.point} has no entry in points")
        facts = section.from_registry
        for j, fact in enumerate(facts):
            if facts.index(fact) != j:
                problems.append(f"{name}: sections[{i}].from_registry[{j}]: {fact!r} is listed twice")
    ids = [s.id for s in spec.sections]
    if ids != sorted(ids, key=_order_key):
        problems.append(
            f"{name}: sections: must be in Annex IV order ({', '.join(sorted(ids, key=_order_key))})"
        )
    if problems:
        raise CatalogError(problems)
    return Annex4(file=name, points=tuple(spec.points), sections=tuple(spec.sections))


_loaded: tuple[Path, float, Annex4] | None = None


def get_annex4() -> Annex4:
    """The Annex IV sections of the catalogue in force (reloaded when the file changes)."""
    global _loaded
    path = Path(get_settings().risk_catalog_dir) / ANNEX4_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise CatalogError([f"{_display(path)}: cannot read file ({exc.strerror or exc})"]) from exc
    cached = _loaded
    if cached is not None and cached[0] == path and cached[1] == mtime:
        return cached[2]
    annex4 = load_annex4(path)
    _loaded = (path, mtime, annex4)
    return annex4


def is_section_id(value: str) -> bool:
    """Whether ``value`` looks like an Annex IV section id (it may still be unknown)."""
    return bool(_SECTION_ID.match(value))
