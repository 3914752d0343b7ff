"""Bulk import and export of the inventory: file formats, row errors and the result of an import."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Format(StrEnum):
    csv = "csv"
    json = "json"


@dataclass(frozen=True)
class RowError:
    """One problem with one input row: the line it starts on, the field (if one) and what is wrong."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: " + (f"{self.field}: " if self.field else "") + self.message


@dataclass
class ImportResult:
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
