"""Test data and helpers shared across test packages: users with tokens, the approval team, the documented
system's constants, the operations driver ``Ops``, and emptying the database.

Tests import from here, never from a ``conftest.py``; the fixtures (in the conftest files) build on these.
App modules are imported inside the functions: the settings are read only once the ``database`` fixture has
pointed them at the test database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

# -- the database ------------------------------------------------------------------------------------------


def empty_tables() -> None:
    """Empty every table as the database owner would: the audit trail's append-only guard is lifted for it."""
    from app.audit import guard
    from app.audit.checkpoint import remove_checkpoints
    from app.db import get_engine, set_clock_offset
    from app.identity.authz import reset_authorizer
    from app.models import metadata

    engine = get_engine()
    tables = [t for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no user triggers fire
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE")
        else:
            guard.uninstall(conn)
            for table in tables:
                conn.execute(table.delete())
            guard.install(conn)
    remove_checkpoints()  # the trail starts again, and so do its checkpoints
    reset_authorizer()
    set_clock_offset(None)


# -- people ------------------------------------------------------------------------------------------------


def token_headers(username: str, *, expires_days: int = 30, name: str = "test") -> dict[str, str]:
    """Bearer headers with a fresh token of an existing user."""
    from app.db import session_scope
    from app.identity import service

    with session_scope() as session:
        token = service.issue_token(
            session, username, name=name, expires_days=expires_days, actor="test"
        ).token
    return {"Authorization": f"Bearer {token}"}


def create_user(
    username: str, *grants: tuple[str, str], password: str | None = None, expires_days: int = 30
) -> dict[str, str]:
    """A user with ``(role, site)`` grants (``site="*"``: every site); returns bearer headers."""
    from app.db import session_scope
    from app.identity import service
    from app.identity.models import Role, UserCreate

    with session_scope() as session:
        service.create_user(session, UserCreate(username=username, password=password), actor="test")
        for role, site in grants:
            service.grant_role(session, username, Role(role), site, actor="test")
    return token_headers(username, expires_days=expires_days)


def long_lived_user(username: str, *grants: tuple[str, str]) -> dict[str, str]:
    """A user with a ten-year token (the tests travel months ahead in time)."""
    return create_user(username, *grants, expires_days=3650)


# The approval tests' team of signers in plant STR.
TEAM = {
    "bob": ("business_owner", "STR"),  # owns the systems and requests approvals
    "berta": ("business_owner", "STR"),  # another business owner in STR: signs for the business
    "clara": ("compliance_officer", "STR"),
    "rita": ("risk_officer", "STR"),
    "otto": ("ot_security", "STR"),
    "dora": ("dpo", "STR"),
    "sam": ("safety_engineer", "STR"),
    "ci": ("mlops", "STR"),
    "leo": ("business_owner", "LYO"),  # no role in STR
    "audrey": ("auditor", "STR"),
}


# -- the documented system of the document tests -----------------------------------------------------------

DIGEST_OLD = "sha256:" + "1" * 64
DIGEST_NEW = "sha256:" + "2" * 64
NAME = 'Weld seam <inspector> & "co"'
RISKS = [
    {
        "title": f"Risk {i}: missed porosity class {i}",
        "nist_refs": ["MEASURE 2.11"],
        "mitigation": f"review {i}",
    }
    for i in range(1, 7)
]


def api(client: Any, method: str, url: str, headers: dict[str, str], expect: int = 200, **kw: Any) -> Any:
    """One API call, asserting its status code; returns the response."""
    r = client.request(method, url, headers=headers, **kw)
    assert r.status_code == expect, r.text
    return r


def past_deployment(system_id: str, version: str, digest: str) -> None:
    """A pilot rollout of ``version`` on STR/BODY1 a day ago, written as the service stores it (the release
    gate refuses a new one while the documented system's approval awaits sign-offs)."""
    from app.approvals.models import Environment
    from app.db import session_scope, utcnow
    from app.monitoring.models import Deployment

    with session_scope() as session:
        session.add(
            Deployment(
                system_id=system_id,
                site="STR",
                line="BODY1",
                zone="STR-CTL",
                version=version,
                artifact_digest=digest,
                environment=Environment.pilot,
                deployed_at=utcnow() - timedelta(days=1),
                reported_by="ops",
                created_at=utcnow(),
            )
        )


# -- the operations tests' driver --------------------------------------------------------------------------

HIGH_RISK = {"annex3_uses": ["annex3.4.a"]}  # employment: recruitment and selection (Annex III point 4(a))
MINIMAL: dict[str, Any] = {}


def digest(n: int) -> str:
    """An artifact digest made of ``n``."""
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
        from app.db import utcnow

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
