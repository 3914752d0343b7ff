"""Two sign-offs at once: neither is lost and the request is approved exactly once (SQLite and PostgreSQL).

Each thread signs through the service in a session of its own. A pause is slipped in right after the
request is read under its lock, so that without the lock both threads would see the same sign-offs and
both would "complete" the request.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from app.approvals import flows, service
from app.approvals.models import ApprovalRequest, Decision, SignOff, SignOffCreate
from app.audit.models import AuditEvent
from app.db import session_scope
from app.errors import AppError
from app.identity.dependencies import authenticate
from app.identity.models import Role
from tests.approvals.helpers import ANNEX3_EMPLOYMENT, sign, submit


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _race(jobs: list[tuple[str, Role]], approval_id: str) -> list[Any]:
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, token: str, role: Role) -> None:
        principal = authenticate(token)
        barrier.wait()
        try:
            with session_scope() as session:
                flows.sign(
                    session,
                    approval_id,
                    SignOffCreate(role=role, decision=Decision.approve),
                    principal=principal,
                )
            results[i] = "ok"
        except AppError as exc:
            results[i] = exc.status

    threads = [threading.Thread(target=run, args=(i, t, r)) for i, (t, r) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def slow_signoff_read(monkeypatch: pytest.MonkeyPatch) -> None:
    original = service.signoffs_of

    def slow(*args: Any, **kwargs: Any) -> Any:
        rows = original(*args, **kwargs)
        time.sleep(0.3)
        return rows

    monkeypatch.setattr(service, "signoffs_of", slow)


def test_last_two_signoffs_at_once(
    client: Any, team: dict, make_system: Any, slow_signoff_read: None
) -> None:
    system = make_system(ANNEX3_EMPLOYMENT)
    a = submit(client, team["bob"], system, "v1", "pilot")["id"]
    sign(client, team["berta"], a, "business_owner")
    results = _race(
        [(_token(team["clara"]), Role.compliance_officer), (_token(team["rita"]), Role.risk_officer)], a
    )
    assert results == ["ok", "ok"]
    with session_scope() as session:
        request = session.get(ApprovalRequest, a)
        assert request.state == "approved"
        roles = session.execute(sa.select(SignOff.role).where(SignOff.approval_id == a)).scalars().all()
        assert sorted(roles) == ["business_owner", "compliance_officer", "risk_officer"]
        actions = (
            session.execute(
                sa.select(AuditEvent.action).where(AuditEvent.entity_id == a).order_by(AuditEvent.seq)
            )
            .scalars()
            .all()
        )
    assert actions.count("approval.approve") == 1 and actions.count("approval.signoff") == 3
    assert actions[-1] == "approval.approve"
    body = client.get(f"/api/v1/approvals/{a}/verify", headers=team["audrey"]).json()
    assert body["valid"] is True


def test_one_role_signed_twice_at_once(
    client: Any, team: dict, make_system: Any, make_user: Any, slow_signoff_read: None
) -> None:
    from tests.factories import long_lived_user

    system = make_system(ANNEX3_EMPLOYMENT)
    a = submit(client, team["bob"], system, "v1", "pilot")["id"]
    other = long_lived_user("rick", ("risk_officer", "STR"))
    results = _race([(_token(team["rita"]), Role.risk_officer), (_token(other), Role.risk_officer)], a)
    assert sorted(results, key=str) == [409, "ok"]
    with session_scope() as session:
        assert (
            session.execute(
                sa.select(sa.func.count()).select_from(SignOff).where(SignOff.approval_id == a)
            ).scalar_one()
            == 1
        )
