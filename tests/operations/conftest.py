"""Fixtures for the operations tests: a plant with people in every role and a driver for the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db import set_clock_offset, utcnow

HIGH_RISK = {"annex3_uses": ["annex3.4.a"]}  # employment: recruitment and selection (Annex III point 4(a))
MINIMAL = {}


def digest(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


class Ops:
    """Drives the registry through its HTTP API as the people of the fixture plant."""

    def __init__(self, client: Any, users: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.h = users

    def __getattr__(self, name: str) -> dict[str, str]:
        try:
            return self.h[name]
        except KeyError:
            raise AttributeError(name) from None

    def ok(self, r: Any, status: int = 200) -> Any:
        assert r.status_code == status, r.text
        return r.json()

    def system(self, *, as_: str = "bob", **fields: Any) -> dict[str, Any]:
        body = {
            "name": "Weld seam inspection",
            "purpose": "Detect weld seam defects on car bodies",
            "site": "STR",
            "line": "BODY1",
            "business_owner": "bob",
            **fields,
        }
        return self.ok(self.client.post("/api/v1/systems", json=body, headers=self.h[as_]), 201)

    def patch(self, system_id: str, *, as_: str = "carol", **changes: Any) -> dict[str, Any]:
        """PATCH as carol (compliance), or as whoever owns the fields (``as_="otto"`` for zone and SL)."""
        current = self.ok(self.client.get(f"/api/v1/systems/{system_id}", headers=self.carol))
        return self.ok(
            self.client.patch(
                f"/api/v1/systems/{system_id}",
                json={**changes, "revision": current["revision"]},
                headers=self.h[as_],
            )
        )

    def classify(self, system_id: str, answers: dict[str, Any]) -> dict[str, Any]:
        return self.ok(
            self.client.post(
                f"/api/v1/systems/{system_id}/classification", json={"answers": answers}, headers=self.carol
            ),
            201,
        )

    def assess(self, system_id: str, impact: int = 3, likelihood: int = 2) -> dict[str, Any]:
        body = {
            "impact": impact,
            "likelihood": likelihood,
            "risks": [
                {"title": "Missed defects", "nist_refs": ["MEASURE 2.5"], "mitigation": "manual check"}
            ],
        }
        return self.ok(
            self.client.post(f"/api/v1/systems/{system_id}/risk-assessment", json=body, headers=self.rita),
            201,
        )

    def version(self, system_id: str, version: str = "1.0.0", n: int = 1, **extra: Any) -> dict[str, Any]:
        body = {"version": version, "artifact_digest": digest(n), "metrics": {"recall": 0.98}, **extra}
        return self.ok(
            self.client.post(f"/api/v1/systems/{system_id}/versions", json=body, headers=self.pip), 201
        )

    def request(
        self, system_id: str, version: str = "1.0.0", environment: str = "production"
    ) -> dict[str, Any]:
        body = {"version": version, "environment": environment, "justification": "line trial passed"}
        return self.ok(
            self.client.post(f"/api/v1/systems/{system_id}/approvals", json=body, headers=self.bob), 201
        )

    def sign_all(self, approval: dict[str, Any]) -> dict[str, Any]:
        signer = {
            "business_owner": "bea",
            "compliance_officer": "carol",
            "risk_officer": "rita",
            "ot_security": "otto",
            "dpo": "dora",
            "safety_engineer": "sam",
        }
        body = approval
        for role in approval["required_signoffs"]:
            r = self.client.post(
                f"/api/v1/approvals/{approval['id']}/signoffs",
                json={"role": role, "decision": "approve", "comment": "fine"},
                headers=self.h[signer[role]],
            )
            body = self.ok(r, 201) if r.status_code == 201 else self.ok(r)
        return body

    def approve(
        self, system_id: str, version: str = "1.0.0", environment: str = "production"
    ) -> dict[str, Any]:
        """Request and sign a release; a high-risk system is first approved for pilot (signoff_rules.yaml)."""
        system = self.ok(self.client.get(f"/api/v1/systems/{system_id}", headers=self.carol))
        if environment == "production" and system["ai_act_class"] == "high_risk":
            self.sign_all(self.request(system_id, version, "pilot"))
        approval = self.sign_all(self.request(system_id, version, environment))
        assert approval["state"] == "approved", approval
        return approval

    def release(
        self, system_id: str, version: str = "1.0.0", environment: str = "production"
    ) -> dict[str, Any]:
        return self.ok(
            self.client.get(
                "/api/v1/release-permission",
                params={"system": system_id, "version": version, "environment": environment},
                headers=self.pip,
            )
        )

    def incident(self, system_id: str, *, as_: str = "carol", **fields: Any) -> Any:
        now = utcnow()
        body = {
            "title": "Robot cell stopped",
            "description": "The model flagged every part; the line stopped for two hours",
            "serious": True,
            "kind": "other",
            "occurred_at": (now - timedelta(hours=2)).isoformat(),
            "aware_at": (now - timedelta(hours=1)).isoformat(),
            **fields,
        }
        return self.client.post(f"/api/v1/systems/{system_id}/incidents", json=body, headers=self.h[as_])

    def ready(self, answers: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """A classified system with a risk assessment and version 1.0.0 (not yet approved)."""
        system = self.system(**fields)
        self.classify(system["id"], MINIMAL if answers is None else answers)
        self.assess(system["id"])
        self.version(system["id"])
        return self.ok(self.client.get(f"/api/v1/systems/{system['id']}", headers=self.carol))


@pytest.fixture
def long_lived_user(db: None) -> Callable[..., dict[str, str]]:
    """Like ``make_user``, with tokens valid for ten years, so tests may travel in time."""
    from app.db import session_scope
    from app.identity import service
    from app.identity.models import Role, UserCreate

    def factory(username: str, *grants: tuple[str, str]) -> dict[str, str]:
        with session_scope() as session:
            service.create_user(session, UserCreate(username=username), actor="test")
            for role, site in grants:
                service.grant_role(session, username, Role(role), site, actor="test")
            token = service.issue_token(session, username, name="test", expires_days=3650, actor="test").token
        return {"Authorization": f"Bearer {token}"}

    return factory


@pytest.fixture
def ops(
    client: Any, admin: dict[str, str], long_lived_user: Callable[..., dict[str, str]], plant: Any
) -> Ops:
    """People: bob and bea (business owners in STR and LYO), carol (compliance), rita (risk), otto (OT
    security), dora (DPO), sam (safety), pip (mlops pipeline), audrey (auditor in STR), lou (business owner in
    LYO only)."""
    make_user = long_lived_user
    users = {
        "admin": admin,  # the plant's admin (token valid 30 days: do not travel with it)
        "bob": make_user("bob", ("business_owner", "STR"), ("business_owner", "LYO")),
        "bea": make_user("bea", ("business_owner", "STR"), ("business_owner", "LYO")),
        "lou": make_user("lou", ("business_owner", "LYO")),
        "carol": make_user("carol", ("compliance_officer", "*")),
        "rita": make_user("rita", ("risk_officer", "*")),
        "otto": make_user("otto", ("ot_security", "*")),
        "dora": make_user("dora", ("dpo", "*")),
        "sam": make_user("sam", ("safety_engineer", "*")),
        "pip": make_user("pip", ("mlops", "*")),
        "audrey": make_user("audrey", ("auditor", "STR")),
    }
    return Ops(client, users)


@pytest.fixture
def travel() -> Iterator[Callable[[datetime | timedelta], None]]:
    """Move the service clock: to an absolute UTC instant, or by a delta from the real now."""

    def go(when: datetime | timedelta) -> None:
        if isinstance(when, timedelta):
            set_clock_offset(when)
        else:
            set_clock_offset(when - datetime.now(UTC))

    yield go
    set_clock_offset(None)
