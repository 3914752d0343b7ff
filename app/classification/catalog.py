"""The versioned risk catalogue (AI Act, NIST AI RMF, IEC 62443) read from ``risk_catalog/`` YAML files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from app.settings import get_settings

__all__ = [
    "AIActCatalog",
    "AnnexIIIUse",
    "Catalog",
    "CatalogError",
    "Derogation",
    "GPAIDuty",
    "IECCatalog",
    "IncidentDeadline",
    "IncidentKind",
    "Legislation",
    "NISTCatalog",
    "ObligationDef",
    "ObligationSet",
    "Practice",
    "TransparencyDuty",
    "cite",
    "get_catalog",
    "load_catalog",
]


class CatalogError(Exception):
    """The catalogue on disk is unreadable or inconsistent; the message names each file and key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid risk catalogue:\n" + "\n".join(problems))
        self.problems = problems


class _Entry(BaseModel):
    """Base of every catalogue entry: unknown keys are an error, entries are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------- AI Act


class Route(_Entry):
    """A classification route the engine derives (``annex3``, ``annex1.a`` ...)."""

    id: str
    title: str
    note: str | None = None


class Practice(_Entry):
    """An Art. 5(1) prohibited practice."""

    id: str = Field(pattern=r"^art5\.1\.[a-z]+$")
    title: str
    applies_from: date
    note: str | None = None


class Legislation(_Entry):
    """A Union harmonisation act listed in Annex I (Section A or B)."""

    id: str = Field(pattern=r"^annex1\.[a-z]\.\d+$")
    section: str = Field(pattern=r"^[A-Z]$")
    point: int = Field(ge=1)
    act: str
    title: str
    note: str | None = None

    @property
    def route(self) -> str:
        """The engine route of an Art. 6(1) system under this act, e.g. ``annex1.b``."""
        return f"annex1.{self.section.lower()}"


class WithdrawnId(_Entry):
    """An identifier removed by an amendment, kept so answers naming it get a useful hint."""

    id: str
    replaced_by: str | None = None
    note: str


class AnnexIIIUse(_Entry):
    """An Annex III high-risk use (Art. 6(2))."""

    id: str = Field(pattern=r"^annex3\.\d+(\.[a-z])?$")
    area: int = Field(ge=1)
    area_title: str
    title: str
    applies_from: date


class Derogation(_Entry):
    """An Art. 6(3) condition."""

    id: str = Field(pattern=r"^art6\.3\.[a-z]$")
    title: str


class TransparencyDuty(_Entry):
    """An Art. 50 transparency duty and the roles it binds."""

    id: str = Field(pattern=r"^art50\.\d+$")
    title: str
    binds: list[str] = Field(min_length=1)
    applies_from: date
    note: str | None = None


class GPAIDuty(_Entry):
    """A Chapter V duty of general-purpose AI model providers."""

    id: str = Field(pattern=r"^art\d+(\.\d+)*$")
    title: str
    applies_from: date
    systemic_risk_only: bool


class ObligationDef(_Entry):
    """A duty that can be listed in a classification result, with the roles it can bind."""

    id: str = Field(pattern=r"^art\d+[a-z]?(\.\d+)*$")
    title: str
    binds: list[str] = Field(min_length=1)
    note: str | None = None


class ObligationSet(_Entry):
    """Duties applying to some roles on one route from one date, optionally filtered by Annex III use."""

    route: str
    roles: list[str] = Field(min_length=1)
    applies_from: date
    obligations: list[str] = Field(min_length=1)
    uses_any: list[str] | None = None
    uses_other_than: list[str] | None = None
    condition: str | None = None

    _uses_any: frozenset[str] | None = PrivateAttr(default=None)
    _uses_other_than: frozenset[str] | None = PrivateAttr(default=None)

    def model_post_init(self, __context: Any) -> None:
        """Precompute the filter sets."""
        self._uses_any = frozenset(self.uses_any) if self.uses_any is not None else None
        self._uses_other_than = frozenset(self.uses_other_than) if self.uses_other_than is not None else None

    def matches(self, uses: Iterable[str]) -> bool:
        """Whether the Annex III filters of this set hold for the system's uses."""
        if self._uses_any is not None and not any(u in self._uses_any for u in uses):
            return False
        return self._uses_other_than is None or any(u not in self._uses_other_than for u in uses)


class IncidentKind(_Entry):
    """A kind of incident an incident record names, with the Art. 3(49) or 3(61) point it falls under."""

    id: str = Field(pattern=r"^[a-z][a-z_]*$")
    title: str
    ref: str | None = None


class IncidentDeadline(_Entry):
    """An Art. 73 reporting deadline in days from awareness; no ``kinds`` = the general deadline."""

    id: str = Field(pattern=r"^art73\.\d+$")
    title: str
    days: int = Field(ge=1, le=366)
    kinds: list[str] = Field(default_factory=list)


class AIActCatalog(_Entry):
    """Identifiers, dates and obligation sets of the AI Act as followed by this catalogue version."""

    entry_into_force: date
    roles: list[str] = Field(min_length=1)
    routes: list[Route]
    prohibited_practices: list[Practice]
    annex1_legislation: list[Legislation]
    withdrawn_ids: list[WithdrawnId] = Field(default_factory=list)
    annex3_uses: list[AnnexIIIUse]
    art6_3_conditions: list[Derogation]
    transparency_duties: list[TransparencyDuty]
    gpai_duties: list[GPAIDuty]
    obligations: list[ObligationDef]
    obligation_sets: list[ObligationSet]
    incident_kinds: list[IncidentKind]
    incident_deadlines: list[IncidentDeadline]

    _route: dict[str, Route] = PrivateAttr(default_factory=dict)
    _practice: dict[str, Practice] = PrivateAttr(default_factory=dict)
    _legislation: dict[str, Legislation] = PrivateAttr(default_factory=dict)
    _withdrawn: dict[str, WithdrawnId] = PrivateAttr(default_factory=dict)
    _annex3: dict[str, AnnexIIIUse] = PrivateAttr(default_factory=dict)
    _condition: dict[str, Derogation] = PrivateAttr(default_factory=dict)
    _transparency: dict[str, TransparencyDuty] = PrivateAttr(default_factory=dict)
    _gpai: dict[str, GPAIDuty] = PrivateAttr(default_factory=dict)
    _obligation: dict[str, ObligationDef] = PrivateAttr(default_factory=dict)
    _order: dict[str, int] = PrivateAttr(default_factory=dict)
    _position: dict[str, int] = PrivateAttr(default_factory=dict)
    _kind: dict[str, str] = PrivateAttr(default_factory=dict)
    _sets: dict[tuple[str, str], tuple[ObligationSet, ...]] = PrivateAttr(default_factory=dict)
    _incident_kind: dict[str, IncidentKind] = PrivateAttr(default_factory=dict)
    _deadline_for: dict[str, IncidentDeadline] = PrivateAttr(default_factory=dict)
    _general_deadline: IncidentDeadline | None = PrivateAttr(default=None)

    def model_post_init(self, __context: Any) -> None:
        """Build the lookup dicts once, so the engine does only dict and set lookups per call."""
        self._route = {r.id: r for r in self.routes}
        self._practice = {p.id: p for p in self.prohibited_practices}
        self._legislation = {a.id: a for a in self.annex1_legislation}
        self._withdrawn = {w.id: w for w in self.withdrawn_ids}
        self._annex3 = {u.id: u for u in self.annex3_uses}
        self._condition = {c.id: c for c in self.art6_3_conditions}
        self._transparency = {t.id: t for t in self.transparency_duties}
        self._gpai = {g.id: g for g in self.gpai_duties}
        self._obligation = {o.id: o for o in self.obligations}
        # Result order: obligations in catalogue order, then Art. 50 duties.
        self._order = {oid: i for i, oid in enumerate([*self._obligation, *self._transparency])}
        kinds = (
            (self._practice, "an Art. 5(1) prohibited practice"),
            (self._legislation, "an Annex I legislation"),
            (self._annex3, "an Annex III use"),
            (self._condition, "an Art. 6(3) condition"),
            (self._transparency, "an Art. 50 transparency duty"),
            (self._gpai, "a general-purpose AI model duty"),
            (self._obligation, "an obligation"),
        )
        self._kind = {i: label for table, label in kinds for i in table}
        self._position = {i: n for n, i in enumerate(self._kind)}
        sets: dict[tuple[str, str], list[ObligationSet]] = {}
        for s in self.obligation_sets:
            for role in s.roles:
                sets.setdefault((s.route, role), []).append(s)
        self._sets = {k: tuple(v) for k, v in sets.items()}
        self._incident_kind = {k.id: k for k in self.incident_kinds}
        self._deadline_for = {kind: d for d in self.incident_deadlines for kind in d.kinds}
        self._general_deadline = next((d for d in self.incident_deadlines if not d.kinds), None)

    @property
    def route_by_id(self) -> dict[str, Route]:
        """Routes by id."""
        return self._route

    @property
    def practice_by_id(self) -> dict[str, Practice]:
        """Art. 5(1) practices by id."""
        return self._practice

    @property
    def legislation_by_id(self) -> dict[str, Legislation]:
        """Annex I legislation by id."""
        return self._legislation

    @property
    def withdrawn_by_id(self) -> dict[str, WithdrawnId]:
        """Withdrawn identifiers by id."""
        return self._withdrawn

    @property
    def annex3_by_id(self) -> dict[str, AnnexIIIUse]:
        """Annex III uses by id."""
        return self._annex3

    @property
    def condition_by_id(self) -> dict[str, Derogation]:
        """Art. 6(3) conditions by id."""
        return self._condition

    @property
    def transparency_by_id(self) -> dict[str, TransparencyDuty]:
        """Art. 50 duties by id."""
        return self._transparency

    @property
    def gpai_by_id(self) -> dict[str, GPAIDuty]:
        """General-purpose AI model duties by id."""
        return self._gpai

    @property
    def obligation_by_id(self) -> dict[str, ObligationDef]:
        """Obligation definitions by id."""
        return self._obligation

    @property
    def obligation_order(self) -> dict[str, int]:
        """Position of each obligation or Art. 50 duty in results."""
        return self._order

    @property
    def position(self) -> dict[str, int]:
        """Position of every identifier in the catalogue, to list answers in a stable order."""
        return self._position

    def kind_of(self, identifier: str) -> str | None:
        """What kind of AI Act identifier this is (e.g. ``an Annex III use``), or None if unknown."""
        return self._kind.get(identifier)

    def sets_for(self, route: str, role: str) -> tuple[ObligationSet, ...]:
        """The obligation sets for one route and role, in catalogue order."""
        return self._sets.get((route, role), ())

    @property
    def incident_kind_by_id(self) -> dict[str, IncidentKind]:
        """Incident kinds by id."""
        return self._incident_kind

    def incident_deadline(self, kind: str) -> IncidentDeadline:
        """The Art. 73 deadline for a serious incident of ``kind``: its shorter one, else the general one."""
        deadline = self._deadline_for.get(kind, self._general_deadline)
        if deadline is None:  # the loader's checks guarantee a general deadline
            raise LookupError("the catalogue has no general Art. 73 deadline")
        return deadline


# ------------------------------------------------------------------------------------------ NIST AI RMF


class NISTFunction(_Entry):
    """One of the four AI RMF functions."""

    id: str = Field(pattern=r"^[A-Z]+$")
    title: str


class NISTCategory(_Entry):
    """An AI RMF category, e.g. ``MEASURE 2``."""

    id: str = Field(pattern=r"^[A-Z]+ \d+$")
    function: str
    title: str


class NISTSubcategory(_Entry):
    """An AI RMF subcategory, e.g. ``MEASURE 2.11``."""

    id: str = Field(pattern=r"^[A-Z]+ \d+\.\d+$")
    title: str

    @property
    def category(self) -> str:
        """The id of the category this subcategory belongs to."""
        return self.id.rsplit(".", 1)[0]


class Characteristic(_Entry):
    """A trustworthiness characteristic of AI RMF 1.0."""

    id: str
    title: str
    note: str | None = None


class RiskMatrix(_Entry):
    """Impact x likelihood -> risk tier table (rows: impact, columns: likelihood)."""

    tiers: list[str] = Field(min_length=1)
    impact_levels: dict[int, str] = Field(min_length=1)
    likelihood_levels: dict[int, str] = Field(min_length=1)
    matrix: list[list[str]] = Field(min_length=1)


class NISTCatalog(_Entry):
    """NIST AI RMF 1.0 functions, categories, subcategories, characteristics and the risk matrix."""

    framework: str
    functions: list[NISTFunction]
    categories: list[NISTCategory]
    subcategories: list[NISTSubcategory]
    trustworthiness_characteristics: list[Characteristic]
    risk_matrix: RiskMatrix

    _function: dict[str, NISTFunction] = PrivateAttr(default_factory=dict)
    _category: dict[str, NISTCategory] = PrivateAttr(default_factory=dict)
    _subcategory: dict[str, NISTSubcategory] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        """Build the lookup dicts."""
        self._function = {f.id: f for f in self.functions}
        self._category = {c.id: c for c in self.categories}
        self._subcategory = {s.id: s for s in self.subcategories}

    @property
    def function_by_id(self) -> dict[str, NISTFunction]:
        """Functions by id."""
        return self._function

    @property
    def category_by_id(self) -> dict[str, NISTCategory]:
        """Categories by id."""
        return self._category

    @property
    def subcategory_by_id(self) -> dict[str, NISTSubcategory]:
        """Subcategories by id (``MEASURE 2.11``)."""
        return self._subcategory

    def risk_tier(self, impact: int, likelihood: int) -> str:
        """The tier for an impact and likelihood rating (1-based); ValueError when out of range."""
        m = self.risk_matrix
        if impact not in m.impact_levels or likelihood not in m.likelihood_levels:
            raise ValueError(f"impact {impact} / likelihood {likelihood} outside the risk matrix")
        return m.matrix[impact - 1][likelihood - 1]


# -------------------------------------------------------------------------------------------- IEC 62443


class FoundationalRequirement(_Entry):
    """An IEC 62443 foundational requirement (FR1-FR7)."""

    id: str = Field(pattern=r"^FR\d+$")
    abbreviation: str
    name: str
    sr_count: int = Field(ge=0)


class SecurityLevel(_Entry):
    """An IEC 62443 security level and the attacker it resists."""

    level: int = Field(ge=0)
    title: str


class PurdueLevel(_Entry):
    """A Purdue model level (3.5 = industrial DMZ)."""

    level: float = Field(ge=0)
    title: str


class ZoneTemplate(_Entry):
    """A default zone offered for a new site, with its SL-T vector."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str
    purdue_level: float
    covers_levels: list[float] = Field(min_length=1)
    sl_target: dict[str, int]


class IECCatalog(_Entry):
    """IEC 62443 foundational requirements, security levels, Purdue levels and the default zone model."""

    standard: str
    foundational_requirements: list[FoundationalRequirement]
    security_levels: list[SecurityLevel]
    purdue_levels: list[PurdueLevel]
    default_zones: list[ZoneTemplate]

    _fr: dict[str, FoundationalRequirement] = PrivateAttr(default_factory=dict)
    _zone: dict[str, ZoneTemplate] = PrivateAttr(default_factory=dict)
    _purdue: dict[float, PurdueLevel] = PrivateAttr(default_factory=dict)
    _sl: dict[int, SecurityLevel] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        """Build the lookup dicts."""
        self._fr = {f.id: f for f in self.foundational_requirements}
        self._zone = {z.code: z for z in self.default_zones}
        self._purdue = {p.level: p for p in self.purdue_levels}
        self._sl = {s.level: s for s in self.security_levels}

    @property
    def fr_by_id(self) -> dict[str, FoundationalRequirement]:
        """Foundational requirements by id, in FR order."""
        return self._fr

    @property
    def fr_ids(self) -> tuple[str, ...]:
        """The FR ids in order (keys of every SL vector)."""
        return tuple(self._fr)

    @property
    def zone_by_code(self) -> dict[str, ZoneTemplate]:
        """Default zones by code."""
        return self._zone

    @property
    def purdue_by_level(self) -> dict[float, PurdueLevel]:
        """Purdue levels by number."""
        return self._purdue

    @property
    def sl_by_level(self) -> dict[int, SecurityLevel]:
        """Security levels by number."""
        return self._sl


# ------------------------------------------------------------------------------------------ the catalogue


class CatalogFiles(_Entry):
    """File names of the parts, relative to the catalogue directory."""

    ai_act: str = "ai_act.yaml"
    nist_ai_rmf: str = "nist_ai_rmf.yaml"
    iec62443: str = "iec62443.yaml"


class Manifest(_Entry):
    """``catalog.yaml``: the version and legal basis of the catalogue."""

    catalog_version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]*$", max_length=32)
    legal_basis: str = Field(min_length=1)
    legal_basis_version: str | None = None
    files: CatalogFiles = Field(default_factory=CatalogFiles)


class Catalog(_Entry):
    """One validated catalogue version: the three parts plus its version and legal basis."""

    catalog_version: str
    legal_basis: str
    legal_basis_version: str | None = None
    directory: Path
    ai_act: AIActCatalog
    nist: NISTCatalog
    iec62443: IECCatalog


# ------------------------------------------------------------------------------------------------ loading

_M = TypeVar("_M", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that keeps dates as text (so pydantic reports bad ones with their key path) and
    refuses duplicate mapping keys."""

    yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, failing on a key given twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _display(path: Path) -> str:
    """A short form of a file path for messages: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _key_path(loc: Iterable[Any]) -> str:
    """``("annex3_uses", 3, "applies_from")`` -> ``annex3_uses[3].applies_from``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _pydantic_problems(name: str, exc: ValidationError) -> list[str]:
    """One readable line per pydantic error, naming the file and the key path."""
    problems = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        if kind.startswith("date"):
            msg = f"invalid date {err.get('input')!r}"
        elif kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "missing":
            msg = "missing required key"
        else:
            msg = err["msg"]
        problems.append(f"{name}: {_key_path(err['loc'])}: {msg}")
    return problems


def _read_yaml(path: Path, name: str) -> dict[str, Any]:
    """Parse one YAML file into a mapping, or raise CatalogError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([f"{name}: cannot read file ({exc.strerror or exc})"]) from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError([f"{name}: {where}invalid YAML ({problem})"]) from exc
    if not isinstance(data, dict):
        raise CatalogError([f"{name}: (top level): must be a mapping"])
    return data


def _parse(model: type[_M], data: dict[str, Any], name: str, problems: list[str]) -> _M | None:
    """Validate one file's data against its model, collecting problems instead of raising."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(name, exc))
        return None


def _duplicates(name: str, key: str, ids: Iterable[str], seen: dict[str, str]) -> Iterator[str]:
    """Problems for ids used twice within one file (across its lists too)."""
    for i, ident in enumerate(ids):
        here = f"{key}[{i}]"
        if ident in seen:
            yield f"{name}: {here}.id: duplicate id {ident!r} (first at {seen[ident]})"
        else:
            seen[ident] = here


# Routes the engine derives itself (app.classification.engine); Annex I routes come from the sections.
ENGINE_ROUTES = ("any", "annex3", "art6.3")


def _check_ai_act(ai: AIActCatalog, name: str) -> list[str]:
    """Cross-reference checks of ai_act.yaml: unique ids, known roles, routes and ids, sane dates."""
    p: list[str] = []
    seen: dict[str, str] = {}
    for key in (
        "prohibited_practices",
        "annex1_legislation",
        "annex3_uses",
        "art6_3_conditions",
        "transparency_duties",
        "gpai_duties",
        "obligations",
        "withdrawn_ids",
    ):
        p.extend(_duplicates(name, key, (e.id for e in getattr(ai, key)), seen))
    p.extend(_duplicates(name, "routes", (r.id for r in ai.routes), {}))
    p.extend(_duplicates(name, "roles", ai.roles, {}))
    roles = set(ai.roles)
    routes = ai.route_by_id

    for i, leg in enumerate(ai.annex1_legislation):
        if not leg.id.startswith(f"annex1.{leg.section.lower()}."):
            p.append(f"{name}: annex1_legislation[{i}].section: {leg.section!r} does not match id {leg.id!r}")
        if leg.route not in routes:
            p.append(f"{name}: annex1_legislation[{i}].section: no route {leg.route!r} in routes")
    for r in ENGINE_ROUTES:
        if r not in routes:
            p.append(f"{name}: routes: the engine needs a route {r!r}")
    for i, w in enumerate(ai.withdrawn_ids):
        if w.replaced_by is not None and ai.kind_of(w.replaced_by) is None:
            p.append(f"{name}: withdrawn_ids[{i}].replaced_by: unknown id {w.replaced_by!r}")

    dated: list[tuple[str, date]] = [
        *(
            (f"prohibited_practices[{i}].applies_from", e.applies_from)
            for i, e in enumerate(ai.prohibited_practices)
        ),
        *((f"annex3_uses[{i}].applies_from", e.applies_from) for i, e in enumerate(ai.annex3_uses)),
        *(
            (f"transparency_duties[{i}].applies_from", e.applies_from)
            for i, e in enumerate(ai.transparency_duties)
        ),
        *((f"gpai_duties[{i}].applies_from", e.applies_from) for i, e in enumerate(ai.gpai_duties)),
        *((f"obligation_sets[{i}].applies_from", e.applies_from) for i, e in enumerate(ai.obligation_sets)),
    ]
    for key, when in dated:
        if when < ai.entry_into_force:
            p.append(f"{name}: {key}: {when} is before entry_into_force {ai.entry_into_force}")

    for i, t in enumerate(ai.transparency_duties):
        p.extend(
            f"{name}: transparency_duties[{i}].binds: unknown role {r!r}" for r in t.binds if r not in roles
        )
    for i, o in enumerate(ai.obligations):
        p.extend(f"{name}: obligations[{i}].binds: unknown role {r!r}" for r in o.binds if r not in roles)

    for i, s in enumerate(ai.obligation_sets):
        at = f"{name}: obligation_sets[{i}]"
        if s.route not in routes:
            p.append(f"{at}.route: unknown route {s.route!r}")
        for j, role in enumerate(s.roles):
            if role not in roles:
                p.append(f"{at}.roles[{j}]: unknown role {role!r}")
        for j, oid in enumerate(s.obligations):
            ob = ai.obligation_by_id.get(oid)
            if ob is None:
                p.append(f"{at}.obligations[{j}]: unknown obligation {oid!r}")
                continue
            p.extend(
                f"{at}.obligations[{j}]: {oid!r} does not bind role {role!r}"
                for role in s.roles
                if role in roles and role not in ob.binds
            )
        for key in ("uses_any", "uses_other_than"):
            for j, use in enumerate(getattr(s, key) or ()):
                if use not in ai.annex3_by_id:
                    p.append(f"{at}.{key}[{j}]: unknown Annex III use {use!r}")
    p.extend(_check_incident_deadlines(ai, name))
    return p


def _check_incident_deadlines(ai: AIActCatalog, name: str) -> list[str]:
    """Art. 73: one general deadline, each kind known and given at most one shorter deadline."""
    p: list[str] = []
    p.extend(_duplicates(name, "incident_kinds", (k.id for k in ai.incident_kinds), {}))
    p.extend(_duplicates(name, "incident_deadlines", (d.id for d in ai.incident_deadlines), {}))
    general = [i for i, d in enumerate(ai.incident_deadlines) if not d.kinds]
    if len(general) != 1:
        p.append(f"{name}: incident_deadlines: need one general deadline (without kinds), not {len(general)}")
    seen: dict[str, str] = {}
    for i, d in enumerate(ai.incident_deadlines):
        for j, kind in enumerate(d.kinds):
            at = f"{name}: incident_deadlines[{i}].kinds[{j}]"
            if kind not in ai.incident_kind_by_id:
                p.append(f"{at}: unknown incident kind {kind!r}")
            elif kind in seen:
                p.append(f"{at}: kind {kind!r} already has a deadline ({seen[kind]})")
            else:
                seen[kind] = d.id
        if len(general) == 1 and d.kinds and d.days > ai.incident_deadlines[general[0]].days:
            p.append(f"{name}: incident_deadlines[{i}].days: longer than the general deadline")
    return p


def _check_nist(n: NISTCatalog, name: str) -> list[str]:
    """Cross-reference checks of nist_ai_rmf.yaml: unique ids, parents exist, matrix shape and order."""
    p: list[str] = []
    seen: dict[str, str] = {}
    for key in ("functions", "categories", "subcategories", "trustworthiness_characteristics"):
        p.extend(_duplicates(name, key, (e.id for e in getattr(n, key)), seen))
    for i, c in enumerate(n.categories):
        if c.function not in n.function_by_id:
            p.append(f"{name}: categories[{i}].function: unknown function {c.function!r}")
        elif not c.id.startswith(c.function + " "):
            p.append(f"{name}: categories[{i}].id: {c.id!r} does not belong to function {c.function!r}")
    for i, s in enumerate(n.subcategories):
        if s.category not in n.category_by_id:
            p.append(f"{name}: subcategories[{i}].id: no category {s.category!r} for {s.id!r}")

    m = n.risk_matrix
    at = f"{name}: risk_matrix"
    for key in ("impact_levels", "likelihood_levels"):
        levels = sorted(getattr(m, key))
        if levels != list(range(1, len(levels) + 1)):
            p.append(f"{at}.{key}: levels must be 1..{len(levels)}, got {levels}")
    if len(m.matrix) != len(m.impact_levels):
        p.append(f"{at}.matrix: {len(m.matrix)} rows for {len(m.impact_levels)} impact levels")
    rank = {t: i for i, t in enumerate(m.tiers)}
    for i, row in enumerate(m.matrix):
        if len(row) != len(m.likelihood_levels):
            p.append(f"{at}.matrix[{i}]: {len(row)} columns for {len(m.likelihood_levels)} likelihood levels")
        for j, cell in enumerate(row):
            if cell not in rank:
                p.append(f"{at}.matrix[{i}][{j}]: unknown tier {cell!r}")
            elif j and row[j - 1] in rank and rank[cell] < rank[row[j - 1]]:
                p.append(f"{at}.matrix[{i}][{j}]: tier falls as likelihood rises")
            elif (
                i
                and j < len(m.matrix[i - 1])
                and m.matrix[i - 1][j] in rank
                and rank[cell] < rank[m.matrix[i - 1][j]]
            ):
                p.append(f"{at}.matrix[{i}][{j}]: tier falls as impact rises")
    return p


def _check_iec(c: IECCatalog, name: str) -> list[str]:
    """Cross-reference checks of iec62443.yaml: unique ids, SL vectors over exactly FR1..FRn, known levels."""
    p: list[str] = []
    p.extend(_duplicates(name, "foundational_requirements", (f.id for f in c.foundational_requirements), {}))
    p.extend(_duplicates(name, "security_levels", (str(s.level) for s in c.security_levels), {}))
    p.extend(_duplicates(name, "purdue_levels", (str(s.level) for s in c.purdue_levels), {}))
    p.extend(_duplicates(name, "default_zones", (z.code for z in c.default_zones), {}))
    frs = set(c.fr_ids)
    for i, z in enumerate(c.default_zones):
        at = f"{name}: default_zones[{i}]"
        if z.purdue_level not in c.purdue_by_level:
            p.append(f"{at}.purdue_level: unknown Purdue level {z.purdue_level}")
        p.extend(
            f"{at}.covers_levels[{j}]: unknown Purdue level {lv}"
            for j, lv in enumerate(z.covers_levels)
            if lv not in c.purdue_by_level
        )
        if set(z.sl_target) != frs:
            p.append(f"{at}.sl_target: keys must be exactly {sorted(frs)}, got {sorted(z.sl_target)}")
        p.extend(
            f"{at}.sl_target.{fr}: unknown security level {sl}"
            for fr, sl in z.sl_target.items()
            if sl not in c.sl_by_level
        )
    return p


def load_catalog(directory: Path) -> Catalog:
    """Read and validate the catalogue in ``directory``; raise CatalogError listing every problem found."""
    directory = Path(directory)
    manifest_name = _display(directory / "catalog.yaml")
    problems: list[str] = []
    manifest = _parse(
        Manifest, _read_yaml(directory / "catalog.yaml", manifest_name), manifest_name, problems
    )
    if manifest is None:
        raise CatalogError(problems)

    parts: dict[str, Any] = {}
    checks = (
        ("ai_act", manifest.files.ai_act, AIActCatalog, _check_ai_act),
        ("nist", manifest.files.nist_ai_rmf, NISTCatalog, _check_nist),
        ("iec62443", manifest.files.iec62443, IECCatalog, _check_iec),
    )
    for attr, filename, model, check in checks:
        name = _display(directory / filename)
        try:
            data = _read_yaml(directory / filename, name)
        except CatalogError as exc:
            problems.extend(exc.problems)
            continue
        part = _parse(model, data, name, problems)
        if part is not None:
            problems.extend(check(part, name))
            parts[attr] = part
    if problems:
        raise CatalogError(problems)
    return Catalog(
        catalog_version=manifest.catalog_version,
        legal_basis=manifest.legal_basis,
        legal_basis_version=manifest.legal_basis_version,
        directory=directory,
        **parts,
    )


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The catalogue at ``get_settings().risk_catalog_dir``, loaded once (``cache_clear()`` reloads)."""
    return load_catalog(get_settings().risk_catalog_dir)


_CITE = re.compile(r"^(art|annex)(\d+)((?:\.[0-9a-z]+)*)$")


@lru_cache(maxsize=4096)
def cite(identifier: str) -> str:
    """Human citation of an AI Act id (``art5.1.f`` -> ``Art. 5(1)(f)``); other ids come back as is."""
    m = _CITE.match(identifier)
    if m is None:
        return identifier
    kind, number, rest = m.group(1), m.group(2), [x for x in m.group(3).split(".") if x]
    if kind == "art":
        return f"Art. {number}" + "".join(f"({x})" for x in rest)
    if number == "1" and len(rest) == 2:
        return f"Annex I Section {rest[0].upper()} point {rest[1]}"
    roman = {"1": "I", "2": "II", "3": "III", "4": "IV"}.get(number, number)
    if not rest:
        return f"Annex {roman}"
    return f"Annex {roman} point {rest[0]}" + "".join(f"({x})" for x in rest[1:])
