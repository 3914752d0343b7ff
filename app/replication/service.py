"""Replicating a proven AI system to another line, site or zone, reusing its evidence (no HTTP here).

What carries over and which sign-offs are asked again is data: ``policies/replication.yaml``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import Session, col, select

from app.approvals import flows
from app.approvals import service as approvals
from app.approvals.models import ApprovalRequest, ApprovalState, Environment
from app.approvals.rules import get_rules
from app.audit import service as audit
from app.classification import service as classification
from app.classification.models import RiskAssessmentCreate, RiskIn
from app.errors import field_error
from app.identity.models import Role
from app.replication.models import ReplicatedSystemRead, ReplicateRequest, ReplicationRead, SignoffPlan
from app.settings import get_settings
from app.systems import service as systems
from app.systems.models import AISystem, ModelVersion, SystemCreate, VersionCreate

POLICY_FILE = "replication.yaml"
PlacementFact = Literal["site", "line", "zone", "business_owner"]
# Fields a replica may take over from its origin (placement, identity and computed fields never).
COPYABLE_FIELDS = frozenset(
    {
        "purpose",
        "technical_owner",
        "vendor",
        "ai_act_role",
        "personal_data",
        "intended_use",
        "out_of_scope_uses",
        "human_oversight",
        "limitations",
        "training_data",
        "license",
        "monitoring_interval_hours",
    }
)


class PolicyError(RuntimeError):
    """``policies/replication.yaml`` cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AskedAgain(_Strict):
    role: Role
    when_changed: list[PlacementFact] = Field(min_length=1)
    because: str = Field(min_length=1)


class CarryOver(_Strict):
    classification: bool = True
    risk_assessment: bool = True
    versions: bool = True
    documentation_fields: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_fields(self) -> CarryOver:
        unknown = sorted(set(self.documentation_fields) - COPYABLE_FIELDS)
        if unknown:
            raise ValueError(
                f"documentation_fields: cannot carry over {unknown}; copyable: {sorted(COPYABLE_FIELDS)}"
            )
        return self


class ReplicationPolicy(_Strict):
    version: Literal[1]
    asked_again: list[AskedAgain]
    carry_over: CarryOver

    @model_validator(mode="after")
    def _unique_roles(self) -> ReplicationPolicy:
        roles = [a.role for a in self.asked_again]
        if len(roles) != len(set(roles)):
            raise ValueError("asked_again: a role is listed twice")
        return self


def load_policy(path: Path) -> ReplicationPolicy:
    """Read and validate the replication policy; any problem raises ``PolicyError`` naming file and key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ReplicationPolicy.model_validate(raw)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{path}: {problems}") from None


@lru_cache
def get_policy() -> ReplicationPolicy:
    """The replication policy from ``<policies_dir>/replication.yaml`` (read once)."""
    return load_policy(get_settings().policies_dir / POLICY_FILE)


def _origin_approval(session: Session, origin: AISystem) -> ApprovalRequest | None:
    """The origin's newest approval still in force, production before pilot."""
    rows = session.exec(
        select(ApprovalRequest).where(
            col(ApprovalRequest.system_id) == origin.id, col(ApprovalRequest.state) == ApprovalState.approved
        )
    ).all()
    live = [a for a in rows if approvals.effective_state(a) is ApprovalState.approved]
    for env in (Environment.production, Environment.pilot):
        candidates = [a for a in live if str(a.environment) == env.value]
        if candidates:
            return max(candidates, key=approvals.approval_order)
    return None


def _matching_approval(
    session: Session, origin: AISystem, environment: str, digest: str
) -> ApprovalRequest | None:
    """The origin's newest approval in force for exactly this artifact digest and environment."""
    rows = session.exec(
        select(ApprovalRequest).where(
            col(ApprovalRequest.system_id) == origin.id,
            col(ApprovalRequest.state) == ApprovalState.approved,
            col(ApprovalRequest.environment) == environment,
            col(ApprovalRequest.artifact_digest) == digest,
        )
    ).all()
    live = [a for a in rows if approvals.effective_state(a) is ApprovalState.approved]
    return max(live, key=approvals.approval_order, default=None)


def signoff_plan(
    session: Session,
    origin: AISystem,
    replica: AISystem,
    *,
    approval: ApprovalRequest | None = None,
) -> SignoffPlan:
    """Which sign-offs the replica reuses from the origin's approval and which its placement asks again.

    ``approval`` names the origin's approval to reuse; by default its newest one in force.
    """
    policy = get_policy()
    changed = {
        "site": origin.site != replica.site,
        "line": origin.line != replica.line,
        "zone": origin.zone != replica.zone,
        "business_owner": origin.business_owner != replica.business_owner,
    }
    approval = approval or _origin_approval(session, origin)
    environment = str(approval.environment) if approval else Environment.production.value
    required = get_rules().required(approvals.system_facts(session, replica, environment).facts)
    signed = (
        {
            str(s.role): s
            for s in approvals.signoffs_of(session, [approval.id])[approval.id]
            if s.decision == "approve"
        }
        if approval
        else {}
    )
    placement = {a.role.value: a for a in policy.asked_again}
    reused: list[dict[str, Any]] = []
    asked: list[dict[str, Any]] = []
    for role in required.roles:
        rule = placement.get(role)
        moved = [fact for fact in (rule.when_changed if rule else []) if changed[fact]]
        if moved and rule is not None:
            asked.append({"role": role, "because": f"{rule.because} ({', '.join(moved)} changed)"})
        elif role in signed:
            s = signed[role]
            reused.append(
                {"role": role, "signer": s.signer, "decision": str(s.decision), "signed_at": s.created_at}
            )
        elif approval is None:
            asked.append({"role": role, "because": "the origin has no approval in force to carry over"})
        else:
            asked.append({"role": role, "because": f"not signed on the origin's approval {approval.id}"})
    return SignoffPlan(
        origin_approval_id=approval.id if approval else None,
        version=approval.version if approval else None,
        environment=environment if approval else None,
        reused=reused,
        asked_again=asked,
    )


def carry_over(
    session: Session, replica: AISystem, environment: Environment, digest: str
) -> flows.CarryOver | None:
    """The approvals submit hook: the origin's sign-offs a replica's request for ``digest`` may reuse."""
    origin = session.get(AISystem, replica.replicated_from) if replica.replicated_from else None
    if origin is None:
        return None
    approval = _matching_approval(session, origin, str(environment), digest)
    if approval is None:
        return None
    plan = signoff_plan(session, origin, replica, approval=approval)
    signed = {str(s.role): s for s in approvals.signoffs_of(session, [approval.id])[approval.id]}
    return flows.CarryOver(
        origin_approval_id=approval.id,
        signoffs={e["role"]: signed[e["role"]] for e in plan.reused if e["role"] in signed},
        asked_again=[e["role"] for e in plan.asked_again],
    )


def replicate(
    session: Session, origin: AISystem, data: ReplicateRequest, *, actor: str
) -> ReplicatedSystemRead:
    """Create a linked copy of ``origin`` at a new placement, recording its evidence again on the copy."""
    policy = get_policy()
    owner = data.business_owner or origin.business_owner
    if (data.site, data.line, data.zone) == (origin.site, origin.line, origin.zone):
        raise field_error(
            ["body"], f"the replica would sit where {origin.id} already is (same site, line and zone)"
        )
    fields = {name: getattr(origin, name) for name in policy.carry_over.documentation_fields}
    create = SystemCreate.model_validate(
        {
            **{k: (v.value if hasattr(v, "value") else v) for k, v in fields.items()},
            "purpose": origin.purpose,
            "name": data.name or origin.name,
            "site": data.site,
            "line": data.line,
            "zone": data.zone,
            "business_owner": owner,
        }
    )
    systems.ensure_site_exists(session, data.site, ["body", "site"])
    replica = systems.create_system(session, create, actor=actor)
    replica.replicated_from = origin.id
    session.add(replica)
    session.flush()

    reused: dict[str, Any] = {"documentation_fields": sorted(fields)}
    carry = policy.carry_over
    current = classification.current_classification(session, origin.id)
    if carry.classification and current is not None:
        row = classification.record_classification(session, replica, dict(current.answers), actor=actor)
        reused["classification"] = {
            "origin_classification_id": current.id,
            "classification_id": row.id,
            "ai_act_class": str(row.ai_act_class),
            "same_result": str(row.ai_act_class) == str(current.ai_act_class) and row.basis == current.basis,
        }
    assessment = classification.current_risk_assessment(session, origin.id)
    if carry.risk_assessment and assessment is not None:
        new = classification.record_risk_assessment(
            session,
            replica,
            RiskAssessmentCreate(
                impact=assessment.impact,
                likelihood=assessment.likelihood,
                risks=[RiskIn.model_validate(r) for r in assessment.risks],
            ),
            actor=actor,
        )
        reused["risk_assessment"] = {
            "origin_assessment_id": assessment.id,
            "assessment_id": new.id,
            "risk_tier": str(new.risk_tier),
        }
    if carry.versions:
        versions = session.exec(
            select(ModelVersion)
            .where(col(ModelVersion.system_id) == origin.id)
            .order_by(col(ModelVersion.created_at), col(ModelVersion.id))
        ).all()
        for v in versions:
            systems.create_version(
                session,
                replica,
                VersionCreate(
                    version=v.version, artifact_digest=v.artifact_digest, notes=v.notes, metrics=v.metrics
                ),
                actor=actor,
            )
        reused["versions"] = [{"version": v.version, "artifact_digest": v.artifact_digest} for v in versions]

    plan = signoff_plan(session, origin, replica)
    result = ReplicationRead(origin=origin.id, reused=reused, signoffs=plan)
    audit.record(
        session,
        actor=actor,
        action="system.replicate",
        entity_type="system",
        entity_id=replica.id,
        site=replica.site,
        after={"replicated_from": origin.id, **result.model_dump(mode="json")},
    )
    return ReplicatedSystemRead.model_validate(
        {**systems.read_one(session, replica).model_dump(), "replication": result}
    )
