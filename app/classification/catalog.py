"""The versioned risk catalogue (AI Act, NIST AI RMF, IEC 62443) read from ``risk_catalog/`` YAML files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

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
    "GPAIRules",
    "IECCatalog",
    "IncidentDeadline",
    "IncidentKind",
    "IncidentLimit",
    "Legislation",
    "NISTCatalog",
    "ObligationDef",
    "ObligationSet",
    "Practice",
    "PracticeException",
    "RoleChange",
    "ScopeExclusion",
    "ScopeRule",
    "TransparencyDuty",
    "catalog_for",
    "catalog_versions",
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

    def _private(self, name: str) -> Any:
        """A private attribute read straight from its store: ``self._x`` goes through pydantic's
        ``__getattr__`` (~3 µs), which the engine would pay dozens of times per classification."""
        store = self.__pydantic_private__
        if store is None:  # only entries without private attributes have no store
            raise AttributeError(name)
        return store[name]


# ---------------------------------------------------------------------------------------------- AI Act


class Route(_Entry):
    """A classification route the engine derives (``annex3``, ``annex1.a`` ...)."""

    id: str
    title: str
    note: str | None = None
    scope_rule: str | None = None  # a scope rule (e.g. Art. 2(2)) that limits the AI Act on this route


class ScopeRule(_Entry):
    """A provision limiting which parts of the AI Act reach a system on a route (not a duty): Art. 2(2)."""

    id: str = Field(pattern=r"^art\d+(\.\d+)*$")
    title: str
    route: str
    # Routes whose duties, and whether Art. 50 duties, do not apply while this is the only high-risk route.
    displaces_routes: list[str] = Field(default_factory=list)
    displaces_transparency: bool = False
    note: str | None = None


# What an Art. 2 exclusion can never cover, and the answers that defeat it.
NeverCovers = Literal["prohibited", "high_risk", "transparency"]
DefeatingAnswer = Literal["real_world_testing"]


class ScopeExclusion(_Entry):
    """An Art. 2 exclusion from the scope of the AI Act, with the Act's own limits."""

    id: str = Field(pattern=r"^art2\.\d+$")
    title: str
    roles: list[str] | None = None  # the roles it can cover (None: every role)
    defeated_by: list[DefeatingAnswer] = Field(default_factory=list)
    never_covers: list[NeverCovers] = Field(default_factory=list)
    keeps_gpai: bool = False
    note: str | None = None


class RoleChange(_Entry):
    """An Art. 25 change that makes an operator the provider of a high-risk AI system."""

    id: str = Field(pattern=r"^art25\.\d+(\.[a-z])?$")
    title: str
    from_roles: list[str] = Field(min_length=1)
    becomes: str
    requires_routes: list[str] | None = None
    automatic: bool = False  # follows from the role and route alone, no answer names it
    note: str | None = None


class PracticeException(_Entry):
    """An exception that makes an otherwise prohibited use lawful under conditions (Art. 5(1)(h)(i)-(iii))."""

    id: str = Field(pattern=r"^art5\.1\.[a-z]+\.[ivx]+$")
    title: str


class Practice(_Entry):
    """An Art. 5(1) prohibited practice, the roles its ban reaches and its exceptions."""

    id: str = Field(pattern=r"^art5\.1\.[a-z]+$")
    title: str
    applies_from: date
    note: str | None = None
    carve_out: str | None = None
    binds: list[str] | None = None  # None: every role (placing on the market, putting into service, use)
    otherwise_use: str | None = None  # for the roles not bound: the Annex III use the practice counts as
    exceptions: list[PracticeException] = Field(default_factory=list)
    exception_route: str | None = None
    exception_uses: list[str] = Field(default_factory=list)

    def binds_role(self, role: str) -> bool:
        """Whether the ban reaches an operator in ``role``."""
        return self.binds is None or role in self.binds


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
    """A Chapter V duty of general-purpose AI model providers (or their authorised representatives)."""

    id: str = Field(pattern=r"^art\d+(\.\d+)*(\.[a-z])?$")
    title: str
    applies_from: date
    systemic_risk_only: bool = False
    open_source_exempt: str | None = None  # the provision lifting it for an open-source model (Art. 53(2))
    binds: list[str] = Field(default_factory=lambda: ["provider"], min_length=1)
    report_to: str | None = None
    note: str | None = None


class SystemicRiskPresumption(_Entry):
    """Art. 51(2): training compute from which systemic risk is presumed, and the rebuttal provision."""

    id: str
    threshold_flops: float = Field(gt=0)
    rebuttal: str


class LegacyModels(_Entry):
    """Art. 111(3): models placed on the market before a date have until a later date."""

    id: str
    placed_before: date
    applies_from: date


class GPAIRules(_Entry):
    """How the answers about a general-purpose AI model change its duties."""

    systemic_risk_presumption: SystemicRiskPresumption | None = None
    legacy_models: LegacyModels | None = None


class ObligationDef(_Entry):
    """A duty that can be listed in a classification result, with the roles it can bind."""

    id: str = Field(pattern=r"^art\d+[a-z]?(\.\d+)*$")
    title: str
    binds: list[str] = Field(min_length=1)
    report_to: str | None = None
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
        uses_any, other_than = self._private("_uses_any"), self._private("_uses_other_than")
        if uses_any is not None and not any(u in uses_any for u in uses):
            return False
        return other_than is None or any(u not in other_than for u in uses)


class IncidentKind(_Entry):
    """A kind of incident an incident record names, with the Art. 3(49) or 3(61) point it falls under."""

    id: str = Field(pattern=r"^[a-z][a-z_]*$")
    title: str
    ref: str | None = None


class IncidentLimit(_Entry):
    """Art. 73(9)-(10): AI Act incident reporting limited to some kinds, on routes or legislation."""

    id: str = Field(pattern=r"^art73\.\d+$")
    title: str
    routes: list[str] = Field(default_factory=list)
    legislation: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(min_length=1)
    condition: str | None = None

    @property
    def duty(self) -> str:
        """The duty this limits (``art73``)."""
        return self.id.rsplit(".", 1)[0]


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
    scope_rules: list[ScopeRule] = Field(default_factory=list)
    scope_exclusions: list[ScopeExclusion] = Field(default_factory=list)
    role_changes: list[RoleChange] = Field(default_factory=list)
    prohibited_practices: list[Practice]
    annex1_legislation: list[Legislation]
    withdrawn_ids: list[WithdrawnId] = Field(default_factory=list)
    annex3_uses: list[AnnexIIIUse]
    art6_3_conditions: list[Derogation]
    transparency_duties: list[TransparencyDuty]
    gpai_duties: list[GPAIDuty]
    gpai_rules: GPAIRules = Field(default_factory=GPAIRules)
    obligations: list[ObligationDef]
    obligation_sets: list[ObligationSet]
    incident_limits: list[IncidentLimit] = Field(default_factory=list)
    incident_kinds: list[IncidentKind]
    incident_deadlines: list[IncidentDeadline]

    _route: dict[str, Route] = PrivateAttr(default_factory=dict)
    _scope_rule: dict[str, ScopeRule] = PrivateAttr(default_factory=dict)
    _exclusion: dict[str, ScopeExclusion] = PrivateAttr(default_factory=dict)
    _role_change: dict[str, RoleChange] = PrivateAttr(default_factory=dict)
    _answerable_change: dict[str, RoleChange] = PrivateAttr(default_factory=dict)
    _exception: dict[str, tuple[Practice, PracticeException]] = PrivateAttr(default_factory=dict)
    _practice: dict[str, Practice] = PrivateAttr(default_factory=dict)
    _legislation: dict[str, Legislation] = PrivateAttr(default_factory=dict)
    _withdrawn: dict[str, WithdrawnId] = PrivateAttr(default_factory=dict)
    _annex3: dict[str, AnnexIIIUse] = PrivateAttr(default_factory=dict)
    _condition: dict[str, Derogation] = PrivateAttr(default_factory=dict)
    _transparency: dict[str, TransparencyDuty] = PrivateAttr(default_factory=dict)
    _gpai: dict[str, GPAIDuty] = PrivateAttr(default_factory=dict)
    _obligation: dict[str, ObligationDef] = PrivateAttr(default_factory=dict)
    _order: dict[str, int] = PrivateAttr(default_factory=dict)
    _title: dict[str, str] = PrivateAttr(default_factory=dict)
    _position: dict[str, int] = PrivateAttr(default_factory=dict)
    _kind: dict[str, str] = PrivateAttr(default_factory=dict)
    _sets: dict[tuple[str, str], tuple[ObligationSet, ...]] = PrivateAttr(default_factory=dict)
    _incident_kind: dict[str, IncidentKind] = PrivateAttr(default_factory=dict)
    _deadline_for: dict[str, IncidentDeadline] = PrivateAttr(default_factory=dict)
    _general_deadline: IncidentDeadline | None = PrivateAttr(default=None)

    def model_post_init(self, __context: Any) -> None:
        """Build the lookup dicts once, so the engine does only dict and set lookups per call."""
        self._route = {r.id: r for r in self.routes}
        self._scope_rule = {r.id: r for r in self.scope_rules}
        self._exclusion = {x.id: x for x in self.scope_exclusions}
        self._role_change = {c.id: c for c in self.role_changes}
        self._answerable_change = {c.id: c for c in self.role_changes if not c.automatic}
        self._practice = {p.id: p for p in self.prohibited_practices}
        self._exception = {e.id: (p, e) for p in self.prohibited_practices for e in p.exceptions}
        self._legislation = {a.id: a for a in self.annex1_legislation}
        self._withdrawn = {w.id: w for w in self.withdrawn_ids}
        self._annex3 = {u.id: u for u in self.annex3_uses}
        self._condition = {c.id: c for c in self.art6_3_conditions}
        self._transparency = {t.id: t for t in self.transparency_duties}
        self._gpai = {g.id: g for g in self.gpai_duties}
        self._obligation = {o.id: o for o in self.obligations}
        # Result order: obligations in catalogue order, then Art. 50 duties.
        self._order = {oid: i for i, oid in enumerate([*self._obligation, *self._transparency])}
        self._title = {
            i: e.title for table in (self._transparency, self._obligation) for i, e in table.items()
        }
        kinds = (
            (self._exclusion, "an Art. 2 scope exclusion"),
            (self._practice, "an Art. 5(1) prohibited practice"),
            (self._exception, "an exception to an Art. 5(1) prohibition"),
            (self._legislation, "an Annex I legislation"),
            (self._annex3, "an Annex III use"),
            (self._condition, "an Art. 6(3) condition"),
            (self._transparency, "an Art. 50 transparency duty"),
            (self._gpai, "a general-purpose AI model duty"),
            (self._obligation, "an obligation"),
            (self._role_change, "an Art. 25 role change"),
            (self._scope_rule, "a scope rule"),
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
        return cast("dict[str, Route]", self._private("_route"))

    @property
    def scope_rule_by_id(self) -> dict[str, ScopeRule]:
        """Scope rules (Art. 2(2) ...) by id."""
        return cast("dict[str, ScopeRule]", self._private("_scope_rule"))

    @property
    def exclusion_by_id(self) -> dict[str, ScopeExclusion]:
        """Art. 2 scope exclusions by id."""
        return cast("dict[str, ScopeExclusion]", self._private("_exclusion"))

    @property
    def role_change_by_id(self) -> dict[str, RoleChange]:
        """Art. 25 role changes by id, automatic ones included."""
        return cast("dict[str, RoleChange]", self._private("_role_change"))

    @property
    def answerable_role_change_by_id(self) -> dict[str, RoleChange]:
        """The Art. 25 role changes an answer may name (not the automatic ones)."""
        return cast("dict[str, RoleChange]", self._private("_answerable_change"))

    @property
    def exception_by_id(self) -> dict[str, tuple[Practice, PracticeException]]:
        """Exceptions to Art. 5(1) prohibitions by id, with the practice each belongs to."""
        return cast("dict[str, tuple[Practice, PracticeException]]", self._private("_exception"))

    @property
    def practice_by_id(self) -> dict[str, Practice]:
        """Art. 5(1) practices by id."""
        return cast("dict[str, Practice]", self._private("_practice"))

    @property
    def legislation_by_id(self) -> dict[str, Legislation]:
        """Annex I legislation by id."""
        return cast("dict[str, Legislation]", self._private("_legislation"))

    @property
    def withdrawn_by_id(self) -> dict[str, WithdrawnId]:
        """Withdrawn identifiers by id."""
        return cast("dict[str, WithdrawnId]", self._private("_withdrawn"))

    @property
    def annex3_by_id(self) -> dict[str, AnnexIIIUse]:
        """Annex III uses by id."""
        return cast("dict[str, AnnexIIIUse]", self._private("_annex3"))

    @property
    def condition_by_id(self) -> dict[str, Derogation]:
        """Art. 6(3) conditions by id."""
        return cast("dict[str, Derogation]", self._private("_condition"))

    @property
    def transparency_by_id(self) -> dict[str, TransparencyDuty]:
        """Art. 50 duties by id."""
        return cast("dict[str, TransparencyDuty]", self._private("_transparency"))

    @property
    def gpai_by_id(self) -> dict[str, GPAIDuty]:
        """General-purpose AI model duties by id."""
        return cast("dict[str, GPAIDuty]", self._private("_gpai"))

    @property
    def obligation_by_id(self) -> dict[str, ObligationDef]:
        """Obligation definitions by id."""
        return cast("dict[str, ObligationDef]", self._private("_obligation"))

    @property
    def obligation_order(self) -> dict[str, int]:
        """Position of each obligation or Art. 50 duty in results."""
        return cast("dict[str, int]", self._private("_order"))

    @property
    def title_by_id(self) -> dict[str, str]:
        """Title of every obligation and Art. 50 duty."""
        return cast("dict[str, str]", self._private("_title"))

    @property
    def position(self) -> dict[str, int]:
        """Position of every identifier in the catalogue, to list answers in a stable order."""
        return cast("dict[str, int]", self._private("_position"))

    def kind_of(self, identifier: str) -> str | None:
        """What kind of AI Act identifier this is (e.g. ``an Annex III use``), or None if unknown."""
        kinds: dict[str, str] = self._private("_kind")
        return kinds.get(identifier)

    def sets_for(self, route: str, role: str) -> tuple[ObligationSet, ...]:
        """The obligation sets for one route and role, in catalogue order."""
        sets: dict[tuple[str, str], tuple[ObligationSet, ...]] = self._private("_sets")
        return sets.get((route, role), ())

    @property
    def incident_kind_by_id(self) -> dict[str, IncidentKind]:
        """Incident kinds by id."""
        return cast("dict[str, IncidentKind]", self._private("_incident_kind"))

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
        return cast("dict[str, NISTFunction]", self._private("_function"))

    @property
    def category_by_id(self) -> dict[str, NISTCategory]:
        """Categories by id."""
        return cast("dict[str, NISTCategory]", self._private("_category"))

    @property
    def subcategory_by_id(self) -> dict[str, NISTSubcategory]:
        """Subcategories by id (``MEASURE 2.11``)."""
        return cast("dict[str, NISTSubcategory]", self._private("_subcategory"))

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
        return cast("dict[str, FoundationalRequirement]", self._private("_fr"))

    @property
    def fr_ids(self) -> tuple[str, ...]:
        """The FR ids in order (keys of every SL vector)."""
        return tuple(self._fr)

    @property
    def zone_by_code(self) -> dict[str, ZoneTemplate]:
        """Default zones by code."""
        return cast("dict[str, ZoneTemplate]", self._private("_zone"))

    @property
    def purdue_by_level(self) -> dict[float, PurdueLevel]:
        """Purdue levels by number."""
        return cast("dict[float, PurdueLevel]", self._private("_purdue"))

    @property
    def sl_by_level(self) -> dict[int, SecurityLevel]:
        """Security levels by number."""
        return cast("dict[int, SecurityLevel]", self._private("_sl"))


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


def data_files(
    directory: Path, kind: str, id_pattern: str, model: type[_M], problems: list[str]
) -> Iterator[tuple[str, str, _M | None]]:
    """Each YAML file of a directory of data files whose names are ids (frameworks, questionnaires), in id
    order: ``(id, name for messages, parsed model)``; the model is None when the file could not be read or
    parsed, with the problems (naming the file and key) appended to ``problems``."""
    pattern = re.compile(id_pattern)
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        fid, name = path.stem, _display(path)
        if path.suffix != ".yaml":
            problems.append(f"{name}: {kind} files end in .yaml")
            yield fid, name, None
            continue
        if not pattern.match(fid):
            problems.append(f"{name}: the file name is the {kind} id and must match {id_pattern}")
            yield fid, name, None
            continue
        try:
            data = _read_yaml(path, name)
        except CatalogError as exc:
            problems.extend(exc.problems)
            yield fid, name, None
            continue
        yield fid, name, _parse(model, data, name, problems)


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
        "scope_rules",
        "scope_exclusions",
        "role_changes",
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
    p.extend(
        _duplicates(
            name,
            "prohibited_practices[].exceptions",
            (e.id for x in ai.prohibited_practices for e in x.exceptions),
            seen,
        )
    )
    p.extend(_duplicates(name, "routes", (r.id for r in ai.routes), {}))
    p.extend(_duplicates(name, "roles", ai.roles, {}))
    roles = set(ai.roles)
    routes = ai.route_by_id
    p.extend(_check_scope_and_roles(ai, name))

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

    legacy = ai.gpai_rules.legacy_models
    dated: list[tuple[str, date]] = [
        *([("gpai_rules.legacy_models.applies_from", legacy.applies_from)] if legacy else []),
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
    for i, g in enumerate(ai.gpai_duties):
        p.extend(f"{name}: gpai_duties[{i}].binds: unknown role {r!r}" for r in g.binds if r not in roles)

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


def _check_scope_and_roles(ai: AIActCatalog, name: str) -> list[str]:
    """Scope rules, Art. 2 exclusions, Art. 25 changes and Art. 5 practices name known roles, routes, uses."""
    p: list[str] = []
    roles, routes, uses = set(ai.roles), ai.route_by_id, ai.annex3_by_id

    def known(at: str, values: Iterable[str], table: Any, what: str) -> None:
        p.extend(f"{at}: unknown {what} {v!r}" for v in values if v not in table)

    for i, r in enumerate(ai.routes):
        if r.scope_rule is not None and r.scope_rule not in ai.scope_rule_by_id:
            p.append(f"{name}: routes[{i}].scope_rule: unknown scope rule {r.scope_rule!r}")
    for i, rule in enumerate(ai.scope_rules):
        known(f"{name}: scope_rules[{i}].route", [rule.route], routes, "route")
        known(f"{name}: scope_rules[{i}].displaces_routes", rule.displaces_routes, routes, "route")
    for i, x in enumerate(ai.scope_exclusions):
        known(f"{name}: scope_exclusions[{i}].roles", x.roles or (), roles, "role")
    for i, c in enumerate(ai.role_changes):
        known(f"{name}: role_changes[{i}].from_roles", c.from_roles, roles, "role")
        known(f"{name}: role_changes[{i}].becomes", [c.becomes], roles, "role")
        known(f"{name}: role_changes[{i}].requires_routes", c.requires_routes or (), routes, "route")
    for i, pr in enumerate(ai.prohibited_practices):
        at = f"{name}: prohibited_practices[{i}]"
        known(f"{at}.binds", pr.binds or (), roles, "role")
        known(f"{at}.otherwise_use", [pr.otherwise_use] if pr.otherwise_use else [], uses, "Annex III use")
        known(f"{at}.exception_uses", pr.exception_uses, uses, "Annex III use")
        if pr.exceptions and pr.exception_route is None:
            p.append(f"{at}.exception_route: required when the practice has exceptions")
        known(f"{at}.exception_route", [pr.exception_route] if pr.exception_route else [], routes, "route")
    for i, lim in enumerate(ai.incident_limits):
        at = f"{name}: incident_limits[{i}]"
        known(f"{at}.routes", lim.routes, routes, "route")
        known(f"{at}.legislation", lim.legislation, ai.legislation_by_id, "Annex I legislation")
        known(f"{at}.kinds", lim.kinds, ai.incident_kind_by_id, "incident kind")
        if lim.duty not in ai.obligation_by_id:
            p.append(f"{at}.id: no obligation {lim.duty!r} to limit")
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


def _load_part(
    path: Path, model: type[_M], check: Callable[[_M, str], list[str]], problems: list[str]
) -> _M | None:
    """One part of the catalogue read, validated and checked, or None (with its problems appended)."""
    name = _display(path)
    try:
        data = _read_yaml(path, name)
    except CatalogError as exc:
        problems.extend(exc.problems)
        return None
    part = _parse(model, data, name, problems)
    if part is not None:
        problems.extend(check(part, name))
    return part


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

    loaded = {
        "ai_act": _load_part(directory / manifest.files.ai_act, AIActCatalog, _check_ai_act, problems),
        "nist": _load_part(directory / manifest.files.nist_ai_rmf, NISTCatalog, _check_nist, problems),
        "iec62443": _load_part(directory / manifest.files.iec62443, IECCatalog, _check_iec, problems),
    }
    parts = {attr: part for attr, part in loaded.items() if part is not None}
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


HISTORY = "history"  # earlier catalogue versions, one directory each, kept unchanged


def catalog_versions() -> list[str]:
    """Every catalogue version this installation can load: the current one first, then the history."""
    directory = Path(get_settings().risk_catalog_dir) / HISTORY
    older = sorted(
        (d.name for d in directory.iterdir() if (d / "catalog.yaml").is_file()) if directory.is_dir() else (),
        reverse=True,
    )
    current = get_catalog().catalog_version
    return [current, *(v for v in older if v != current)]


_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")


@lru_cache(maxsize=16)
def _historic(directory: str, version: str) -> Catalog:
    """Catalogue ``version`` from ``directory``/history/, checked to be the version it claims."""
    path = Path(directory) / HISTORY / version
    if not _VERSION.match(version) or not (path / "catalog.yaml").is_file():
        raise LookupError(
            f"catalogue version {version!r} is not installed (no {HISTORY}/{version}/catalog.yaml)"
        )
    catalog = load_catalog(path)
    if catalog.catalog_version != version:
        raise CatalogError(
            [
                f"{_display(path / 'catalog.yaml')}: catalog_version: {catalog.catalog_version!r} "
                f"in the directory of version {version!r}"
            ]
        )
    return catalog


def catalog_for(version: str) -> Catalog:
    """The catalogue a classification was made under: the current one, or an earlier one from the history.

    LookupError when the version is not installed; CatalogError when its files are broken.
    """
    current = get_catalog()
    if version == current.catalog_version:
        return current
    return _historic(str(get_settings().risk_catalog_dir), version)


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
