"""The demo portfolio behind ``aireg serve --demo``: loaded once, realistic, usable through the API."""

from __future__ import annotations

from collections import Counter

from app.identity.models import Role


def test_demo_loads_once_with_a_full_portfolio(client, make_user):
    from app import demo
    from app.db import session_scope

    with session_scope() as session:
        assert demo.load_demo(session) is True
    with session_scope() as session:
        assert demo.load_demo(session) is False  # the second start finds it and adds nothing

    admin = make_user("viewer", ("admin", "*"), ("compliance_officer", "*"))
    systems = client.get("/api/v1/systems", params={"limit": 500}, headers=admin).json()
    assert 18 <= systems["total"] <= 25
    assert systems["total"] == len(demo.SYSTEMS)  # not doubled by the second load
    by_site = Counter(s["site"] for s in systems["items"])
    assert set(by_site) == {"STR", "LYO", "POZ"}
    assert min(by_site.values()) >= 4
    assert {s["lifecycle_stage"] for s in systems["items"]} == {"idea", "pilot", "production", "retired"}
    assert {s["ai_act_role"] for s in systems["items"]} >= {"provider", "deployer"}
    assert any(s["sl_gap"] for s in systems["items"]) and any(
        s["zone"] and not s["sl_gap"] for s in systems["items"]
    )
    assert any(s["vendor"] is None for s in systems["items"]) and any(s["vendor"] for s in systems["items"])

    # compliance work under way: evidence on file, requirements recorded, AI literacy trained
    chatbot = next(s for s in systems["items"] if s["name"] == "Maintenance assistant chatbot")
    items = client.get(f"/api/v1/systems/{chatbot['id']}/requirements", headers=admin).json()["items"]
    art50 = next(i for i in items if i["id"] == "ai_act:art50.1")
    assert art50["status"] == "met" and art50["evidence_current"] and len(art50["evidence"]) == 1
    org = client.get("/api/v1/organisation/requirements", params={"limit": 500}, headers=admin)
    org = org.json()["items"]
    assert next(i for i in org if i["id"] == "ai_act:art4")["status"] == "met"
    training = client.get("/api/v1/organisation/training/summary", headers=admin).json()
    assert training["people_trained_current"] == len(demo.TRAINING)

    sites = client.get("/api/v1/sites", headers=admin).json()
    assert [s["code"] for s in sites] == ["LYO", "POZ", "STR"]
    assert all(len(s["lines"]) >= 2 for s in sites)

    users = client.get("/api/v1/users", params={"limit": 500}, headers=admin).json()["items"]
    roles = {g["role"] for u in users for g in u["roles"]}
    assert roles == {r.value for r in Role}
    assert {u for u, _ in demo.demo_logins()} <= {u["username"] for u in users}

    # systems past the idea stage carry model versions
    production = next(s for s in systems["items"] if s["lifecycle_stage"] == "production")
    versions = client.get(f"/api/v1/systems/{production['id']}/versions", headers=admin).json()
    assert versions["total"] >= 1

    # the audit trail recorded the load and still verifies
    assert client.get("/api/v1/audit-events/verify", headers=admin).json()["valid"] is True


def test_demo_logins_can_use_the_api(client):
    from app import demo
    from app.db import session_scope
    from app.identity import service

    with session_scope() as session:
        demo.load_demo(session)
        token = service.issue_token(session, "leo.owner", name="t", expires_days=1, actor="test").token
    headers = {"Authorization": f"Bearer {token}"}
    items = client.get("/api/v1/systems", params={"limit": 500}, headers=headers).json()["items"]
    assert items and {s["site"] for s in items} == {"LYO"}
