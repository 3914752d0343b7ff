"""The sign-off rule table (``policies/signoff_rules.yaml``): loading, validation and evaluation.

Which roles must sign is data, not code; this module only reads the table and applies it to the facts
of one request (class, environment, personal data, OT zone, SL gap, unassessed SL, classification basis,
risk tier).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator
from pydantic_core import ErrorDetails

from app.approvals.models import Environment
from app.classification.engine import AIActClass
from app.identity.models import Role
from app.settings import get_settings
from app.systems.models import RiskTier

RULES_FILE = "signoff_rules.yaml"
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
BasisId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.]{0,31}$")]


class RulesError(RuntimeError):
    """The rule table cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    """Conditions that must all hold for a rule to apply."""

    ai_act_class: list[AIActClass] | None = None
    environment: list[Environment] | None = None
    personal_data: bool | None = None
    ot_zone: bool | None = None
    sl_gap: bool | None = None
    sl_unassessed: bool | None = None
    basis_any: list[BasisId] | None = None
    risk_tier: list[RiskTier] | None = None

    def matches(self, facts: Facts) -> bool:
        if self.ai_act_class is not None and facts.ai_act_class not in self.ai_act_class:
            return False
        if self.environment is not None and facts.environment not in self.environment:
            return False
        if self.personal_data is not None and facts.personal_data != self.personal_data:
            return False
        if self.ot_zone is not None and facts.ot_zone != self.ot_zone:
            return False
        if self.sl_gap is not None and bool(facts.sl_gap) != self.sl_gap:
            return False
        if self.sl_unassessed is not None and bool(facts.sl_unassessed) != self.sl_unassessed:
            return False
        if self.basis_any is not None and not set(self.basis_any) & set(facts.basis):
            return False
        return not (self.risk_tier is not None and facts.risk_tier not in self.risk_tier)


class Rule(_Strict):
    id: RuleId
    description: str = ""
    when: When
    require: list[Role]
    comment_required: bool = False
    comment_hint: str | None = None

    @model_validator(mode="after")
    def _non_empty(self) -> Rule:
        if not self.require:
            raise ValueError("require must name at least one role")
        return self


class Prerequisite(_Strict):
    id: RuleId
    description: str = ""
    when: When
    requires_approved: Environment


class SignOffSettings(_Strict):
    reject_requires_comment: bool = True


class RuleTable(_Strict):
    version: int
    validity_months: dict[str, int]
    rules: list[Rule]
    prerequisites: list[Prerequisite] = []
    signoff: SignOffSettings = SignOffSettings()

    @model_validator(mode="after")
    def _check(self) -> RuleTable:
        if self.version != 1:
            raise ValueError(f"unsupported version {self.version}; this service reads version 1")
        allowed = {c.value for c in AIActClass} | {"default"}
        for key, months in self.validity_months.items():
            if key not in allowed:
                raise ValueError(f"validity_months: unknown class {key!r}; one of {sorted(allowed)}")
            if not 1 <= months <= 60:
                raise ValueError(f"validity_months.{key}: {months} is outside 1-60 months")
        if "default" not in self.validity_months:
            raise ValueError("validity_months: a 'default' entry is required")
        seen: set[str] = set()
        entries: list[Rule | Prerequisite] = [*self.rules, *self.prerequisites]
        for rule in entries:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


@dataclass(frozen=True)
class Facts:
    """What the rules look at, for one system and one requested environment."""

    ai_act_class: str | None
    environment: str
    personal_data: bool
    ot_zone: bool
    sl_gap: list[str] = field(default_factory=list)
    basis: list[str] = field(default_factory=list)
    risk_tier: str | None = None
    sl_unassessed: list[str] = field(default_factory=list)  # FRs with a target and no achieved level


@dataclass(frozen=True)
class Requirement:
    """The roles a request needs, in rule order, with the ids of the rules that call for each."""

    roles: list[str]
    because: dict[str, list[str]]
    comment_required: dict[str, str]  # role -> hint shown when the comment is missing


class Rules:
    """A validated rule table, ready to apply."""

    def __init__(self, table: RuleTable, source: Path) -> None:
        self.table = table
        self.source = source
        self._memo: dict[tuple[Any, ...], Requirement] = {}

    def required(self, facts: Facts) -> Requirement:
        """Every role the applicable rules require (each once, in the order the table names them).

        Answers are memoised per distinct facts (the release gate asks on every call): read-only.
        """
        key = (
            facts.ai_act_class,
            facts.environment,
            facts.personal_data,
            facts.ot_zone,
            bool(facts.sl_gap),
            tuple(facts.basis),
            facts.risk_tier,
            bool(facts.sl_unassessed),
        )
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > 10_000:
                self._memo.clear()
            hit = self._memo[key] = self._required(facts)
        return hit

    def _required(self, facts: Facts) -> Requirement:
        roles: list[str] = []
        because: dict[str, list[str]] = {}
        comments: dict[str, str] = {}
        for rule in self.table.rules:
            if not rule.when.matches(facts):
                continue
            for role in rule.require:
                if role.value not in because:
                    roles.append(role.value)
                    because[role.value] = []
                because[role.value].append(rule.id)
                if rule.comment_required:
                    comments[role.value] = rule.comment_hint or f"rule {rule.id} requires a comment"
        return Requirement(roles=roles, because=because, comment_required=comments)

    def prerequisites(self, facts: Facts) -> list[Prerequisite]:
        """The prerequisites that apply to a request with these facts."""
        return [p for p in self.table.prerequisites if p.when.matches(facts)]

    def validity_months(self, ai_act_class: str | None) -> int:
        months = self.table.validity_months
        return months.get(ai_act_class or "default", months["default"])

    @property
    def reject_requires_comment(self) -> bool:
        return self.table.signoff.reject_requires_comment


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months (the day clamped to the target month's length)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _loc(error: ErrorDetails, raw: dict[str, Any]) -> str:
    """``rules.2.require.0 (rule 'personal_data')``: the key path, and the id of the rule it is in."""
    loc = list(error.get("loc", ()))
    text = ".".join(str(p) for p in loc) or "(top level)"
    if len(loc) >= 2 and loc[0] in ("rules", "prerequisites") and isinstance(loc[1], int):
        items = raw.get(loc[0])
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            rule_id = items[loc[1]].get("id")
            if rule_id:
                text += f" (rule {rule_id!r})"
    return text


def load_rules(path: Path) -> Rules:
    """Read and validate a rule table; any problem raises ``RulesError`` naming the file and key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the sign-off rule table: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RulesError(f"{path}: expected a mapping with keys version, validity_months, rules")
    try:
        table = RuleTable.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_loc(e, raw)}: {e['msg']}" for e in exc.errors())
        raise RulesError(f"{path}: {problems}") from None
    return Rules(table, path)


@lru_cache
def get_rules() -> Rules:
    """The process-wide rule table from ``<policies_dir>/signoff_rules.yaml`` (read once)."""
    return load_rules(get_settings().policies_dir / RULES_FILE)
