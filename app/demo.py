"""The demo portfolio: three plants, their lines and zones, users of every role and ~20 AI systems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel import Session, select

from app.approvals import flows
from app.approvals.models import ApprovalCreate, Decision, SignOffCreate
from app.classification import service as classification
from app.classification.models import RiskAssessmentCreate, RiskIn
from app.db import utcnow
from app.identity import service as identity
from app.identity.authz import get_authorizer
from app.identity.dependencies import Principal
from app.identity.models import Role, User, UserCreate
from app.systems import service as systems
from app.systems.models import (
    AISystem,
    LifecycleStage,
    LineIn,
    Site,
    SiteCreate,
    SLVector,
    SystemCreate,
    SystemUpdate,
    VersionCreate,
)
from app.zones import service as zones
from app.zones.models import ZoneCreate

if TYPE_CHECKING:
    from app.compliance.models import OrganisationRequirement, Requirement

DEMO_PASSWORD = "demo-password-2026"
ACTOR = "demo-loader"

SITES = [
    ("STR", "Stuttgart body & assembly plant", [("BODY1", "Body shop line 1"), ("ASM2", "Final assembly 2")]),
    ("LYO", "Lyon electronics plant", [("SMT1", "SMT line 1"), ("TEST", "End-of-line test")]),
    ("POZ", "Poznan components plant", [("CNC3", "CNC machining cell 3"), ("PACK", "Packaging")]),
]

# IEC 62443 default zone model per plant: (suffix, name, Purdue level, SL-T vector FR1..FR7)
ZONES = [
    ("ENT", "Enterprise network", 4, (2, 2, 1, 2, 1, 1, 1)),
    ("DMZ", "Industrial DMZ", 3.5, (3, 3, 2, 3, 3, 2, 2)),
    ("OPS", "Site operations", 3, (2, 2, 2, 2, 2, 2, 2)),
    ("CTL", "Control (PLC/SCADA)", 2, (3, 3, 3, 2, 3, 2, 3)),
    ("FLD", "Field devices and cells", 1, (2, 2, 3, 1, 2, 1, 3)),
]

USERS: list[tuple[str, str, list[tuple[Role, str]]]] = [
    ("admin", "Ada Admin", [(Role.admin, "*")]),
    ("clara.compliance", "Clara Weber (Compliance)", [(Role.compliance_officer, "*")]),
    ("rita.risk", "Rita Nowak (Risk)", [(Role.risk_officer, "*")]),
    ("otto.ot", "Otto Brandt (OT security)", [(Role.ot_security, "STR"), (Role.ot_security, "POZ")]),
    ("lucie.ot", "Lucie Martin (OT security)", [(Role.ot_security, "LYO")]),
    ("sam.safety", "Sam Keller (Functional safety)", [(Role.safety_engineer, "*")]),
    ("dora.dpo", "Dora Fischer (Data protection)", [(Role.dpo, "*")]),
    ("bob.owner", "Bob Schmidt (Business owner, Stuttgart)", [(Role.business_owner, "STR")]),
    ("berta.owner", "Berta Lang (Business owner, Stuttgart)", [(Role.business_owner, "STR")]),
    ("leo.owner", "Leo Dubois (Business owner, Lyon)", [(Role.business_owner, "LYO")]),
    ("lina.owner", "Lina Moreau (Business owner, Lyon)", [(Role.business_owner, "LYO")]),
    ("piotr.owner", "Piotr Zielinski (Business owner, Poznan)", [(Role.business_owner, "POZ")]),
    ("pawel.owner", "Pawel Nowicki (Business owner, Poznan)", [(Role.business_owner, "POZ")]),
    ("hanna.hr", "Hanna Roth (HR business owner)", [(Role.business_owner, "STR")]),
    ("audrey.auditor", "Audrey Klein (Auditor)", [(Role.auditor, "*")]),
    ("ci-pipeline", "MLOps pipeline service account", [(Role.mlops, "*")]),
]


def _sl(*levels: int) -> dict[str, int]:
    """A security-level vector FR1-FR7 (a zone's SL-T or a system's SL-A; the schemas validate it)."""
    return {f"FR{i + 1}": v for i, v in enumerate(levels)}


# name, purpose, site, line, owner, vendor, role, stage, personal data, zone suffix, SL-A, extras
SYSTEMS: list[dict[str, Any]] = [
    dict(
        name="Weld seam visual inspection",
        purpose="Camera-based detection of weld seam defects on car bodies; rejects parts for manual rework.",
        site="STR",
        line="BODY1",
        business_owner="bob.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="production",
        personal_data=False,
        zone="FLD",
        sl_achieved=_sl(2, 2, 3, 1, 2, 1, 3),
        monitoring_interval_hours=24,
    ),
    dict(
        name="Paint defect detection",
        purpose="Detects paint runs, craters and dust inclusions on painted bodies.",
        site="STR",
        line="BODY1",
        business_owner="bob.owner",
        vendor="Cognex",
        ai_act_role="deployer",
        lifecycle_stage="pilot",
        personal_data=False,
        zone="FLD",
        sl_achieved=_sl(1, 2, 2, 1, 2, 1, 2),
    ),
    dict(
        name="Robot cell safety zone monitoring",
        purpose="AI vision that stops the welding robot when a person "
        "enters the cell (safety function of the machine).",
        site="STR",
        line="BODY1",
        business_owner="berta.owner",
        vendor="SafeVision GmbH",
        ai_act_role="deployer",
        lifecycle_stage="pilot",
        personal_data=True,
        zone="CTL",
        sl_achieved=_sl(3, 3, 2, 2, 3, 2, 3),
    ),
    dict(
        name="Press predictive maintenance",
        purpose="Predicts bearing and hydraulic failures of the transfer "
        "press from vibration and pressure signals.",
        site="STR",
        line="ASM2",
        business_owner="berta.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="production",
        personal_data=False,
        zone="OPS",
        sl_achieved=_sl(2, 2, 2, 2, 2, 2, 2),
        monitoring_interval_hours=12,
    ),
    dict(
        name="Energy optimisation of paint shop HVAC",
        purpose="Optimises set points of paint shop air handling "
        "to cut energy use while holding temperature and humidity.",
        site="STR",
        line=None,
        business_owner="bob.owner",
        vendor="Siemens",
        ai_act_role="deployer",
        lifecycle_stage="production",
        personal_data=False,
        zone="OPS",
        sl_achieved=_sl(2, 1, 2, 2, 2, 2, 2),
    ),
    dict(
        name="Maintenance assistant chatbot",
        purpose="LLM-based assistant answering technicians' questions from "
        "machine manuals and past work orders.",
        site="STR",
        line=None,
        business_owner="berta.owner",
        vendor="OpenAI (via Azure)",
        ai_act_role="deployer",
        lifecycle_stage="pilot",
        personal_data=True,
        zone="ENT",
        sl_achieved=_sl(2, 2, 1, 2, 1, 1, 1),
    ),
    dict(
        name="Worker shift scheduler",
        purpose="Allocates workers to shifts and stations from skills, absences and "
        "demand; schedules are reviewed by team leads.",
        site="STR",
        line="ASM2",
        business_owner="hanna.hr",
        vendor="Workforce AI Ltd",
        ai_act_role="deployer",
        lifecycle_stage="pilot",
        personal_data=True,
        zone="ENT",
        sl_achieved=_sl(2, 2, 1, 2, 1, 1, 1),
    ),
    dict(
        name="CV screening for apprentices",
        purpose="Ranks applications for apprenticeships and recommends a shortlist to HR recruiters.",
        site="STR",
        line=None,
        business_owner="hanna.hr",
        vendor="TalentRank",
        ai_act_role="deployer",
        lifecycle_stage="idea",
        personal_data=True,
        zone="ENT",
        sl_achieved=_sl(2, 2, 1, 2, 1, 1, 1),
    ),
    dict(
        name="Solder joint AOI classifier",
        purpose="Classifies automated optical inspection findings of solder "
        "joints into true and false calls.",
        site="LYO",
        line="SMT1",
        business_owner="leo.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="production",
        personal_data=False,
        zone="FLD",
        sl_achieved=_sl(2, 2, 3, 1, 2, 1, 3),
        monitoring_interval_hours=24,
    ),
    dict(
        name="Pick-and-place nozzle wear prediction",
        purpose="Predicts nozzle wear from placement offsets.",
        site="LYO",
        line="SMT1",
        business_owner="leo.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="pilot",
        personal_data=False,
        zone="CTL",
        sl_achieved=_sl(2, 2, 2, 2, 2, 2, 2),
    ),
    dict(
        name="End-of-line test anomaly detection",
        purpose="Flags abnormal functional test curves of control units.",
        site="LYO",
        line="TEST",
        business_owner="leo.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="production",
        personal_data=False,
        zone="OPS",
        sl_achieved=_sl(2, 2, 2, 2, 2, 2, 2),
    ),
    dict(
        name="Production scheduling optimiser",
        purpose="Sequences SMT orders to minimise changeovers.",
        site="LYO",
        line=None,
        business_owner="leo.owner",
        vendor="Dassault DELMIA",
        ai_act_role="deployer",
        lifecycle_stage="production",
        personal_data=False,
        zone="OPS",
        sl_achieved=_sl(2, 2, 2, 2, 2, 2, 2),
    ),
    dict(
        name="Operator fatigue camera",
        purpose="Infers operator fatigue and mood from facial expressions at the test stations (proposal).",
        site="LYO",
        line="TEST",
        business_owner="leo.owner",
        vendor="EmoSense",
        ai_act_role="deployer",
        lifecycle_stage="idea",
        personal_data=True,
        zone="OPS",
        sl_achieved=_sl(1, 1, 1, 1, 1, 1, 1),
    ),
    dict(
        name="Supplier invoice extraction",
        purpose="Extracts fields from supplier invoices for accounts payable.",
        site="LYO",
        line=None,
        business_owner="leo.owner",
        vendor="ABBYY",
        ai_act_role="deployer",
        lifecycle_stage="production",
        personal_data=False,
        zone=None,
        sl_achieved=None,
    ),
    dict(
        name="CNC tool wear monitoring",
        purpose="Estimates tool wear from spindle current and acoustic emission to schedule tool changes.",
        site="POZ",
        line="CNC3",
        business_owner="piotr.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="production",
        personal_data=False,
        zone="CTL",
        sl_achieved=_sl(3, 3, 3, 2, 3, 2, 3),
        monitoring_interval_hours=24,
    ),
    dict(
        name="Surface roughness virtual sensor",
        purpose="Predicts surface roughness of machined parts.",
        site="POZ",
        line="CNC3",
        business_owner="piotr.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="pilot",
        personal_data=False,
        zone="OPS",
        sl_achieved=_sl(2, 2, 2, 2, 2, 2, 2),
    ),
    dict(
        name="Packaging label verification",
        purpose="OCR and vision check that the right label is on each box.",
        site="POZ",
        line="PACK",
        business_owner="piotr.owner",
        vendor="Keyence",
        ai_act_role="deployer",
        lifecycle_stage="production",
        personal_data=False,
        zone="FLD",
        sl_achieved=_sl(2, 2, 3, 1, 2, 1, 3),
    ),
    dict(
        name="Demand forecasting",
        purpose="Forecasts weekly demand per part number for capacity planning.",
        site="POZ",
        line=None,
        business_owner="piotr.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="production",
        personal_data=False,
        zone="ENT",
        sl_achieved=_sl(2, 2, 1, 2, 1, 1, 1),
    ),
    dict(
        name="Legacy scrap classifier",
        purpose="Classified scrap reasons from free text; replaced in 2025.",
        site="POZ",
        line="PACK",
        business_owner="piotr.owner",
        vendor=None,
        ai_act_role="provider",
        lifecycle_stage="retired",
        personal_data=False,
        zone=None,
        sl_achieved=None,
    ),
    dict(
        name="Visitor badge face matching",
        purpose="Matches visitors' faces to pre-registered photos at the gate (proposal under review).",
        site="POZ",
        line=None,
        business_owner="piotr.owner",
        vendor="GateVision",
        ai_act_role="deployer",
        lifecycle_stage="idea",
        personal_data=True,
        zone="ENT",
        sl_achieved=_sl(1, 1, 1, 1, 1, 1, 1),
    ),
]


def is_loaded(session: Session) -> bool:
    return session.get(Site, SITES[0][0]) is not None


def load_demo(session: Session) -> bool:
    """Load the demo portfolio once; returns False when it was already there."""
    if is_loaded(session):
        return False
    for code, name, lines in SITES:
        systems.create_site(
            session,
            SiteCreate(code=code, name=name, lines=[LineIn(code=c, name=n) for c, n in lines]),
            actor=ACTOR,
        )
        for suffix, zname, level, target in ZONES:
            zones.create_zone(
                session,
                ZoneCreate(
                    code=f"{code}-{suffix}",
                    name=zname,
                    site=code,
                    purdue_level=level,
                    sl_target=SLVector.model_validate(_sl(*target)),
                ),
                actor=ACTOR,
            )
    for username, display, grants in USERS:
        if session.exec(select(User.id).where(User.username == username)).first() is None:
            identity.create_user(
                session,
                UserCreate(username=username, display_name=display, password=DEMO_PASSWORD),
                actor=ACTOR,
            )
        for role, site in grants:
            identity.grant_role(session, username, role, site, actor=ACTOR)
    for number, spec in enumerate(SYSTEMS, start=1):
        spec = dict(spec)
        if spec.get("zone"):
            spec["zone"] = f"{spec['site']}-{spec['zone']}"
        spec.setdefault("technical_owner", "ci-pipeline")
        retired = spec["lifecycle_stage"] == "retired"
        if retired:  # a retired system takes no new versions: release them first, retire it afterwards
            spec["lifecycle_stage"] = "production"
        system = systems.create_system(session, SystemCreate(**spec), actor=ACTOR)
        if spec["lifecycle_stage"] in ("pilot", "production"):
            for minor in range(1, 3):
                systems.create_version(
                    session,
                    system,
                    VersionCreate(
                        version=f"1.{minor}.0",
                        artifact_digest="sha256:" + f"{number:04d}{minor:02d}".ljust(64, "a"),
                        notes=f"Release 1.{minor}.0 of {spec['name']}",
                        metrics={
                            "accuracy": round(0.9 + minor * 0.03, 3),
                            "recall": round(0.88 + minor * 0.04, 3),
                        },
                    ),
                    actor="ci-pipeline",
                )
        story = STORIES.get(spec["name"])
        if story is not None:
            _tell(session, system, story)
        if retired:
            systems.update_system(
                session,
                system,
                SystemUpdate(lifecycle_stage=LifecycleStage.retired),
                if_match=system.revision,
                actor=ACTOR,
            )
    _compliance_work(session)
    return True


# Compliance work under way: evidence on file and requirements recorded, as the compliance officer would.
EVIDENCE: list[dict[str, Any]] = [
    {
        "system": "Maintenance assistant chatbot",
        "title": "Chat disclosure shown to technicians",
        "filename": "chat-disclosure.md",
        "text": "# Disclosure\n\nThe assistant opens every chat with: *You are talking to an AI system.*\n",
        "requirements": {"ai_act:art50.1": "met"},
    },
    {
        "system": "Worker shift scheduler",
        "title": "Works council consultation minutes",
        "filename": "works-council-minutes.md",
        "text": "# Works council\n\nInformed of the scheduler's use before the pilot (Art. 26(7)).\n",
        "requirements": {"ai_act:art26": "in_progress"},
    },
    {
        "system": None,
        "title": "AI literacy programme 2026",
        "filename": "ai-literacy-programme.md",
        "text": "# AI literacy\n\nYearly course for everyone who operates or oversees AI systems.\n",
        "requirements": {"ai_act:art4": "met"},
    },
]
TRAINING = [
    ("Berta Lang", "berta.owner", "STR"),
    ("Otto Brandt", "otto.ot", "STR"),
    ("Lina Moreau", "lina.owner", "LYO"),
    ("Pawel Nowicki", "pawel.owner", "POZ"),
]


_Requirement = TypeVar("_Requirement", "Requirement", "OrganisationRequirement")


def _record_statuses(
    session: Session,
    rows: list[_Requirement],
    statuses: dict[str, str],
    evidence_id: str,
    entity: tuple[str, str, str | None],
) -> None:
    """Set the status of each listed requirement among ``rows``, supported by one evidence item."""
    from app.compliance import service as compliance
    from app.compliance.models import RequirementStatus, RequirementUpdate

    by_ref = {f"{r.framework}:{r.control}": r for r in rows}
    for ref, status in statuses.items():
        row = by_ref.get(ref)
        if row is None:
            continue  # not a duty on the day the demo is recorded (e.g. Art. 50 before 2 August 2026)
        compliance.update_requirement(
            session,
            row,
            RequirementUpdate(
                status=RequirementStatus(status), evidence=[evidence_id], revision=row.revision
            ),
            if_match=None,
            actor="clara.compliance",
            entity=entity,
        )


def _compliance_work(session: Session) -> None:
    """Evidence files, the requirement statuses they support, and AI literacy training records."""
    import io
    from datetime import timedelta

    from app.compliance import evidence as evidence_service
    from app.compliance import service as compliance
    from app.compliance import training
    from app.compliance.models import TrainingCreate

    today = utcnow().date()
    by_name = {s.name: s for s in session.exec(select(AISystem)).all()}
    for item in EVIDENCE:
        system = by_name.get(item["system"]) if item["system"] else None
        stored = evidence_service.store_evidence(
            session,
            system_id=system.id if system else None,
            site=system.site if system else None,
            title=item["title"],
            filename=item["filename"],
            declared_type="text/markdown",
            stream=io.BytesIO(item["text"].encode()),
            valid_until=today + timedelta(days=365),
            actor="clara.compliance",
        )
        if system:
            _record_statuses(
                session,
                compliance.system_requirements(session, system),
                item["requirements"],
                stored.id,
                ("system", system.id, system.site),
            )
        else:
            _record_statuses(
                session,
                compliance.organisation_requirements(session),
                item["requirements"],
                stored.id,
                (compliance.ORGANISATION, compliance.ORGANISATION, None),
            )
    for person, username, site in TRAINING:
        training.create_training(
            session,
            TrainingCreate(
                person=person,
                username=username,
                site=site,
                course="AI literacy for plant staff",
                provider="Aireg Academy",
                completed_on=today - timedelta(days=30),
                valid_until=today + timedelta(days=335),
            ),
            actor="clara.compliance",
        )


# What happened to each demo system: its AI Act answers, NIST rating and approvals (environment, outcome).
MINIMAL: dict[str, Any] = {}
STORIES: dict[str, dict[str, Any]] = {
    "Weld seam visual inspection": dict(
        answers=MINIMAL, risk=(2, 2), approvals=[("pilot", "approve"), ("production", "approve")]
    ),
    "Paint defect detection": dict(answers=MINIMAL, risk=(2, 2), approvals=[("pilot", "pending")]),
    # A machine's safety function with third-party assessment: high-risk via Annex I (Machinery Regulation).
    "Robot cell safety zone monitoring": dict(
        answers={
            "annex1": {
                "legislation": "annex1.b.21",
                "safety_component": True,
                "third_party_conformity_assessment": True,
            }
        },
        risk=(5, 2),
        approvals=[("pilot", "pending")],
    ),
    "Press predictive maintenance": dict(answers=MINIMAL, risk=(3, 2), approvals=[("production", "approve")]),
    "Energy optimisation of paint shop HVAC": dict(
        answers=MINIMAL, risk=(1, 2), approvals=[("production", "approve")]
    ),
    "Maintenance assistant chatbot": dict(
        answers={"transparency": ["art50.1"], "gpai_model": True},
        risk=(2, 3),
        approvals=[("pilot", "approve")],
    ),
    # Task allocation of workers: Annex III point 4(b).
    "Worker shift scheduler": dict(
        answers={"annex3_uses": ["annex3.4.b"], "profiling": True},
        risk=(4, 3),
        approvals=[("pilot", "pending")],
    ),
    "CV screening for apprentices": dict(
        answers={"annex3_uses": ["annex3.4.a"], "profiling": True}, risk=(4, 4)
    ),
    "Solder joint AOI classifier": dict(answers=MINIMAL, risk=(2, 2), approvals=[("production", "approve")]),
    "Pick-and-place nozzle wear prediction": dict(
        answers=MINIMAL, risk=(1, 2), approvals=[("pilot", "reject")]
    ),
    "End-of-line test anomaly detection": dict(
        answers=MINIMAL, risk=(2, 2), approvals=[("production", "approve")]
    ),
    "Production scheduling optimiser": dict(
        answers=MINIMAL, risk=(2, 2), approvals=[("production", "approve")]
    ),
    # Emotion recognition at the workplace: prohibited by Art. 5(1)(f).
    "Operator fatigue camera": dict(answers={"prohibited_practices": ["art5.1.f"]}, risk=(5, 4)),
    "Supplier invoice extraction": dict(answers=MINIMAL, risk=(1, 1)),
    "CNC tool wear monitoring": dict(answers=MINIMAL, risk=(2, 2), approvals=[("production", "approve")]),
    "Surface roughness virtual sensor": dict(answers=MINIMAL, risk=(1, 2), approvals=[("pilot", "pending")]),
    "Packaging label verification": dict(answers=MINIMAL, risk=(2, 1), approvals=[("production", "approve")]),
    "Demand forecasting": dict(answers=MINIMAL, risk=(2, 3), approvals=[("production", "revoke")]),
    "Legacy scrap classifier": dict(answers=MINIMAL, risk=(1, 1), approvals=[("production", "withdraw")]),
}

# Who signs which role in each plant (never the requester, one role per person).
SIGNERS: dict[str, dict[str, str]] = {
    "STR": {"business_owner": "berta.owner", "ot_security": "otto.ot"},
    "LYO": {"business_owner": "lina.owner", "ot_security": "lucie.ot"},
    "POZ": {"business_owner": "pawel.owner", "ot_security": "otto.ot"},
}
COMMON_SIGNERS = {
    "compliance_officer": "clara.compliance",
    "risk_officer": "rita.risk",
    "dpo": "dora.dpo",
    "safety_engineer": "sam.safety",
}


def _principal(session: Session, username: str) -> Principal:
    user = session.exec(select(User).where(User.username == username)).one()
    return Principal(user_id=identity.stored_id(user), username=username, authorizer=get_authorizer(session))


def _tell(session: Session, system: AISystem, story: dict[str, Any]) -> None:
    """Classify, assess and take the system through its approvals, as the people involved would."""
    classification.record_classification(session, system, story["answers"], actor="clara.compliance")
    impact, likelihood = story["risk"]
    classification.record_risk_assessment(
        session,
        system,
        RiskAssessmentCreate(
            impact=impact,
            likelihood=likelihood,
            risks=[
                RiskIn(
                    title="Performance drifts after a process change",
                    nist_refs=["MEASURE 2.4", "MANAGE 4.1"],
                    mitigation="Monitoring with alert thresholds; re-validation after each line change",
                ),
                RiskIn(
                    title="Operators over-rely on the output",
                    nist_refs=["MAP 3.5", "GOVERN 3.2"],
                    mitigation="Human review of every rejected part; operator training",
                ),
            ],
        ),
        actor="rita.risk",
    )
    requester = system.business_owner
    if requester == SIGNERS[system.site]["business_owner"]:
        signers = {**SIGNERS[system.site], "business_owner": "bob.owner"}
    else:
        signers = SIGNERS[system.site]
    for environment, outcome in story.get("approvals", []):
        approval = flows.submit(
            session,
            system,
            ApprovalCreate(
                version="1.2.0",
                environment=environment,
                justification=f"Roll out 1.2.0 to {environment} after validation on the line.",
            ),
            actor=requester,
        )
        if outcome == "pending":
            continue
        if outcome == "withdraw":
            flows.withdraw(
                session,
                approval.id,
                principal=_principal(session, requester),
                reason="Replaced by the new scrap model.",
            )
            continue
        for role in approval.required_signoffs:
            signer = signers.get(role) or COMMON_SIGNERS[role]
            decision = "reject" if outcome == "reject" and role == "compliance_officer" else "approve"
            comment = (
                "Validation data too small for this line; repeat with two weeks of production data."
                if decision == "reject"
                else "Reviewed: compensating countermeasures are the cell firewall and allow-listing."
                if role == "ot_security"
                else "Reviewed and approved."
            )
            flows.sign(
                session,
                approval.id,
                SignOffCreate(role=Role(role), decision=Decision(decision), comment=comment),
                principal=_principal(session, signer),
            )
            if decision == "reject":
                break
        if outcome == "revoke":
            flows.revoke(
                session,
                approval.id,
                principal=_principal(session, COMMON_SIGNERS["compliance_officer"]),
                reason="Training data found to include a discontinued product family; re-validate first.",
            )


def demo_logins() -> list[tuple[str, str]]:
    """(username, roles) of every demo user, for printing at start."""
    return [(u, ", ".join(f"{r.value}@{s}" for r, s in grants)) for u, _d, grants in USERS]
