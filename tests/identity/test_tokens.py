"""Bearer tokens: 401 for every bad token, stored as a hash only, expiring, revocable, self-service."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.db import get_engine, set_clock_offset


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].split(" ", 1)[1]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_401(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def test_missing_or_malformed_credentials_are_401(client, make_user) -> None:  # type: ignore[no-untyped-def]
    good = make_user("carol", ("auditor", "*"))
    assert client.get("/api/v1/users/me", headers=good).status_code == 200
    _assert_401(client.get("/api/v1/users/me"))
    _assert_401(client.get("/api/v1/systems"))
    _assert_401(client.get("/api/v1/audit-events"))
    _assert_401(client.get("/api/v1/users/me", headers={"Authorization": "Basic Y2Fyb2w6eA=="}))
    _assert_401(client.get("/api/v1/users/me", headers={"Authorization": "Bearer "}))
    _assert_401(client.get("/api/v1/users/me", headers={"Authorization": "Bearer not-a-token"}))
    _assert_401(client.get("/api/v1/users/me", headers=_bearer("aireg_" + "A" * 43)))
    _assert_401(client.get("/api/v1/users/me", headers=_bearer(_token(good) + "x")))
    _assert_401(client.get("/api/v1/users/me", headers=_bearer("aireg_" + "x" * 500)))
    # a write is refused the same way and changes nothing
    r = client.post("/api/v1/users", json={"username": "mallory"})
    _assert_401(r)
    assert client.get("/api/v1/users/mallory", headers=make_user("root", ("admin", "*"))).status_code == 404


def test_expired_token_is_401(client, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", ("admin", "*"))
    r = client.post("/api/v1/users", json={"username": "dave"}, headers=admin)
    assert r.status_code == 201, r.text
    client.post("/api/v1/users/dave/roles", json={"role": "auditor", "site": "*"}, headers=admin)
    r = client.post("/api/v1/users/dave/tokens", json={"name": "short", "expires_days": 1}, headers=admin)
    assert r.status_code == 201, r.text
    dave = _bearer(r.json()["token"])
    set_clock_offset(timedelta(hours=23, minutes=59))
    assert client.get("/api/v1/users/me", headers=dave).status_code == 200
    set_clock_offset(timedelta(days=1, seconds=1))
    _assert_401(client.get("/api/v1/users/me", headers=dave))
    assert "expired" in client.get("/api/v1/users/me", headers=dave).json()["detail"]


def test_revoked_token_is_401_at_once(client, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", ("admin", "*"))
    erin = make_user("erin", ("auditor", "*"))
    tokens = client.get("/api/v1/users/erin/tokens", headers=admin).json()
    assert len(tokens) == 1
    assert client.get("/api/v1/users/me", headers=erin).status_code == 200
    r = client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=admin)
    assert r.status_code == 204, r.text
    _assert_401(client.get("/api/v1/users/me", headers=erin))
    assert "revoked" in client.get("/api/v1/users/me", headers=erin).json()["detail"]
    listed = client.get("/api/v1/users/erin/tokens", headers=admin).json()
    assert listed[0]["revoked_at"] is not None
    assert client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=admin).status_code == 409
    assert client.delete("/api/v1/tokens/0123456789abcdef", headers=admin).status_code == 404
    assert client.delete("/api/v1/tokens/not-an-id", headers=admin).status_code == 422


def test_token_is_random_shown_once_and_stored_as_hash(client, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", ("admin", "*"))
    client.post("/api/v1/users", json={"username": "pipeline"}, headers=admin)
    client.post("/api/v1/users/pipeline/roles", json={"role": "mlops", "site": "*"}, headers=admin)
    issued = [
        client.post("/api/v1/users/pipeline/tokens", json={"name": f"ci-{i}"}, headers=admin).json()
        for i in range(3)
    ]
    tokens = [t["token"] for t in issued]
    assert len(set(tokens)) == 3
    for token in tokens:
        secret = token.removeprefix("aireg_")
        assert len(secret) >= 43  # 32 random bytes, URL-safe base64: 256 bits
    with get_engine().connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_token")).mappings().all()
    dumped = repr([dict(r) for r in rows])
    for token in tokens:
        assert token not in dumped and token.removeprefix("aireg_") not in dumped
        assert hashlib.sha256(token.encode()).hexdigest() in dumped
    listed = client.get("/api/v1/users/pipeline/tokens", headers=admin)
    assert listed.status_code == 200
    assert {t["name"] for t in listed.json()} == {"ci-0", "ci-1", "ci-2"}
    assert all("token" not in t for t in listed.json())
    assert all(t["username"] == "pipeline" for t in listed.json())
    assert all(tok not in listed.text for tok in tokens)
    # default expiry is 90 days
    first = issued[0]
    assert first["id"] in {t["id"] for t in listed.json()}
    me = client.get("/api/v1/users/me", headers=_bearer(tokens[0])).json()
    assert me["username"] == "pipeline"
    assert me["roles"] == [{"role": "mlops", "site": "*"}]


def test_last_used_at_is_recorded(client, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", ("admin", "*"))
    frank = make_user("frank", ("auditor", "*"))

    def used() -> str | None:
        return client.get("/api/v1/users/frank/tokens", headers=admin).json()[0]["last_used_at"]

    assert used() is None
    client.get("/api/v1/users/me", headers=frank)
    first = used()
    assert first is not None
    set_clock_offset(timedelta(hours=1))
    client.get("/api/v1/users/me", headers=frank)
    assert used() > first


@pytest.mark.parametrize(
    "body",
    [{"expires_days": 0}, {"expires_days": 4000}, {"name": ""}, {"name": "x" * 81}],
    ids=["expires-0-days", "expires-4000-days", "empty-name", "name-81-chars"],
)
def test_token_bad_input_is_422(client, make_user, body) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", ("admin", "*"))
    r = client.post("/api/v1/users/root/tokens", json=body, headers=admin)
    assert r.status_code == 422, (body, r.text)
    assert r.json()["errors"]


def test_token_for_an_unknown_user_is_404(client, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", ("admin", "*"))
    assert client.post("/api/v1/users/nobody/tokens", json={}, headers=admin).status_code == 404


def test_own_tokens_are_self_service(client, make_user, admin, plant) -> None:  # type: ignore[no-untyped-def]
    """Every user may issue, list and revoke their own tokens, not others'; an admin manages anyone's."""
    gina = make_user("gina", ("business_owner", "STR"))
    hank = make_user("hank", ("auditor", "STR"))

    r = client.post("/api/v1/users/gina/tokens", json={"name": "laptop", "expires_days": 7}, headers=gina)
    assert r.status_code == 201, r.text
    laptop = r.json()
    assert client.get("/api/v1/users/me", headers=_bearer(laptop["token"])).json()["username"] == "gina"
    mine = client.get("/api/v1/users/gina/tokens", headers=gina)
    assert mine.status_code == 200 and {t["name"] for t in mine.json()} == {"test", "laptop"}

    # another user's tokens: neither issue, list nor revoke
    assert client.post("/api/v1/users/gina/tokens", json={"name": "x"}, headers=hank).status_code == 403
    assert client.get("/api/v1/users/gina/tokens", headers=hank).status_code == 403
    assert client.delete(f"/api/v1/tokens/{laptop['id']}", headers=hank).status_code == 403
    assert client.get("/api/v1/users/me", headers=_bearer(laptop["token"])).status_code == 200
    # revoking an unknown token does not tell a non-admin whether it exists
    assert client.delete("/api/v1/tokens/0123456789abcdef", headers=hank).status_code == 403

    assert client.delete(f"/api/v1/tokens/{laptop['id']}", headers=gina).status_code == 204
    _assert_401(client.get("/api/v1/users/me", headers=_bearer(laptop["token"])))

    # admin: issue for and revoke anyone's token
    r = client.post("/api/v1/users/hank/tokens", json={"name": "by-admin"}, headers=admin)
    assert r.status_code == 201
    assert client.get("/api/v1/users/me", headers=_bearer(r.json()["token"])).json()["username"] == "hank"
    assert client.delete(f"/api/v1/tokens/{r.json()['id']}", headers=admin).status_code == 204
    _assert_401(client.get("/api/v1/users/me", headers=_bearer(r.json()["token"])))


def test_a_user_without_roles_cannot_issue_tokens(client, make_user) -> None:  # type: ignore[no-untyped-def]
    nobody = make_user("ivan")
    assert client.get("/api/v1/users/me", headers=nobody).json()["roles"] == []
    assert client.post("/api/v1/users/ivan/tokens", json={}, headers=nobody).status_code == 403


def test_password_is_stored_as_argon2(client, make_user) -> None:  # type: ignore[no-untyped-def]
    from app.identity.service import verify_password

    admin = make_user("root", ("admin", "*"))
    password = "correct horse battery staple"
    r = client.post("/api/v1/users", json={"username": "jane", "password": password}, headers=admin)
    assert r.status_code == 201, r.text
    assert "password" not in r.text
    with get_engine().connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM app_user WHERE username='jane'")).scalar()
    assert stored.startswith("$argon2id$") and password not in stored
    assert verify_password(password, stored)
    assert not verify_password(password + "!", stored)
    assert not verify_password(password, None)
    r = client.post("/api/v1/users", json={"username": "kim", "password": "short"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "password"]
