"""The MLflow bridge: copy a registered model's versions into a system, write release decisions back.

The HTTP work (MLflow) runs in a thread pool outside any database transaction; the registry work runs in the
caller's session through the systems service (``create_version``, audited) and the release gate's own
``decide``, so no registry or gate rule is repeated here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.integrations.mlflow.client import ArtifactsUnreadable, MlflowClient, MlflowError
from app.integrations.mlflow.models import MlflowLink
from app.systems.models import ModelVersion

TAG_PREFIX = "aireg.release."
METRIC_KEY_MAX = 64
METRICS_MAX = 100


@dataclass
class VersionSnapshot:
    """One MLflow model version as aireg would register it; ``problem`` says why it cannot be."""

    version: str
    run_id: str | None = None
    source: str | None = None
    digest: str | None = None
    metrics: dict[str, float] | None = None
    dropped_metrics: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class SyncReport:
    created: list[VersionSnapshot] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # sentences
    skipped: list[str] = field(default_factory=list)  # sentences
    linked: bool = False  # this sync linked the model to the system (MlflowLink)


def usable_metrics(raw: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """The metrics aireg can store (finite numbers, admitted names, at most 100), and the names left out."""
    key_pattern = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    kept: dict[str, float] = {}
    dropped: list[str] = []
    for key in sorted(raw):
        value = raw[key]
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and key_pattern.fullmatch(key)
            and len(kept) < METRICS_MAX
        ):
            kept[key] = float(value)
        else:
            dropped.append(key)
    return kept, dropped


def parallel(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    if workers <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlflow") as pool:
        return list(pool.map(fn, items))


def mlflow_versions(client: MlflowClient, model: str) -> list[dict[str, Any]]:
    """The registered model's versions, oldest first; ``MlflowError`` when the model does not exist."""
    client.get_registered_model(model)
    versions = client.search_versions(model)
    return sorted(versions, key=lambda v: (int(v["version"]) if v["version"].isdigit() else 0, v["version"]))


def snapshot(client: MlflowClient, model: str, mv: dict[str, Any], *, with_metrics: bool) -> VersionSnapshot:
    """Digest (and, if asked, the run's latest metrics) of one MLflow version; ``problem`` if it fails."""
    snap = VersionSnapshot(str(mv["version"]), run_id=mv.get("run_id") or None, source=mv.get("source"))
    status = mv.get("status", "READY")
    if status != "READY":
        snap.problem = f"its status is {status}, not READY"
        return snap
    try:
        snap.digest = client.artifact_digest(model, snap.version)
        if with_metrics and snap.run_id:
            snap.metrics, snap.dropped_metrics = usable_metrics(client.latest_metrics(snap.run_id))
    except (ArtifactsUnreadable, MlflowError) as exc:
        snap.digest, snap.problem = None, str(exc)
    return snap


def registered_digests(session: Session, system_id: str) -> dict[str, str]:
    """``{version: artifact_digest}`` of the system's versions in aireg."""
    rows = session.exec(
        select(ModelVersion.version, ModelVersion.artifact_digest).where(ModelVersion.system_id == system_id)
    ).all()
    return dict(rows)


def _notes(model: str, snap: VersionSnapshot, tracking_uri: str) -> str:
    run = f", run {snap.run_id}" if snap.run_id else ""
    where = f"MLflow {tracking_uri}: registered model {model!r}"
    return f"{where} version {snap.version}{run}, source {snap.source}"


def collect_for_sync(
    client: MlflowClient, model: str, known: dict[str, str], *, workers: int
) -> tuple[list[VersionSnapshot], list[VersionSnapshot]]:
    """Snapshots of the model's versions: (those not in aireg yet, those already there)."""
    versions = mlflow_versions(client, model)
    fresh = [v for v in versions if str(v["version"]) not in known]
    seen = [v for v in versions if str(v["version"]) in known]
    snaps = parallel(
        lambda v: snapshot(client, model, v, with_metrics=str(v["version"]) not in known),
        fresh + seen,
        workers,
    )
    return snaps[: len(fresh)], snaps[len(fresh) :]


def apply_sync(
    session: Session,
    system_id: str,
    model: str,
    tracking_uri: str,
    fresh: list[VersionSnapshot],
    seen: list[VersionSnapshot],
    *,
    actor: str,
) -> SyncReport:
    """Register the fresh versions (audited, through ``create_version``); compare the others' digests."""
    from app.errors import Conflict
    from app.systems import service as systems
    from app.systems.models import VersionCreate

    report = SyncReport()
    system = systems.get_system(session, system_id)
    report.linked = link(session, model, system.id, actor=actor)
    known = registered_digests(session, system.id)  # again, inside the transaction that writes
    for snap in fresh + seen:
        if snap.problem is not None or snap.digest is None:
            report.skipped.append(f"version {snap.version}: skipped: {snap.problem or 'no artifact digest'}")
            continue
        registered = known.get(snap.version)
        if registered is not None:
            if registered == snap.digest:
                report.unchanged.append(snap.version)
            else:
                report.conflicts.append(
                    f"version {snap.version}: MLflow's artifacts have digest {snap.digest}, but {system.id} "
                    f"registered version {snap.version} with {registered}; versions are immutable, left as is"
                )
            continue
        data = VersionCreate(
            version=snap.version,
            artifact_digest=snap.digest,
            notes=_notes(model, snap, tracking_uri),
            metrics=snap.metrics or None,
        )
        try:
            systems.create_version(session, system, data, actor=actor)
        except Conflict as exc:  # registered meanwhile by someone else
            report.conflicts.append(f"version {snap.version}: {exc.detail}")
            continue
        report.created.append(snap)
    return report


def link(session: Session, model: str, system_id: str, *, actor: str) -> bool:
    """Record that ``model`` is synced into the system (new versions then follow by webhook); True if new."""
    from app.audit import service as audit
    from app.db import utcnow
    from app.systems import service as systems

    system = systems.get_system(session, system_id)
    if session.get(MlflowLink, (model, system.id)) is not None:
        return False
    session.add(MlflowLink(model_name=model, system_id=system.id, created_by=actor, created_at=utcnow()))
    audit.record(
        session,
        actor=actor,
        action="mlflow.link",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        after={"model": model},
    )
    return True


def linked_systems(session: Session, model: str) -> list[str]:
    """The systems the registered model is synced into, in id order."""
    rows = session.exec(
        select(MlflowLink.system_id).where(MlflowLink.model_name == model).order_by(col(MlflowLink.system_id))
    ).all()
    return list(rows)


def tag_value(decision: dict[str, Any]) -> str:
    """``allowed``, or ``denied: CODE1,CODE2`` (the error codes of the gate's answer, in its order)."""
    if decision["allowed"]:
        return "allowed"
    codes: list[str] = []
    for reason in decision["reasons"]:
        if reason.get("severity", "error") == "error" and reason["code"] not in codes:
            codes.append(reason["code"])
    return "denied: " + ",".join(codes)


class _ConsoleAuthorizer:
    """The console's authority: whoever runs the CLI holds the database (as for every ``aireg`` command)."""

    def grants_of(self, username: str) -> list[tuple[str, str]]:
        return [("admin", "*")]

    def allowed(self, username: str, site: str, obj: str, act: str) -> bool:
        return True


def decisions(
    session: Session, system_id: str, versions: list[tuple[str, str]], environment: str, *, actor: str
) -> dict[str, dict[str, Any]]:
    """The release gate's answer (``app.approvals.release.decide``) for each ``(version, mlflow digest)``."""
    from app.approvals import release
    from app.approvals.rules import get_rules
    from app.db import utcnow
    from app.identity.dependencies import Principal

    principal = Principal(user_id=0, username=actor, authorizer=_ConsoleAuthorizer())  # type: ignore[arg-type]
    connection = session.connection()
    db = release.RawReader(connection.connection.dbapi_connection, connection.dialect.name)
    rules, now = get_rules(), utcnow()
    return {
        version: release.decide(
            db, principal, release.Release(system_id, version, environment, digest), rules=rules, now=now
        )
        for version, digest in versions
    }
