"""Model versions of a system: register, list, read, and the refusals."""

from __future__ import annotations

import pytest

from tests.systems.helpers import DIGEST, assert_problem, audit_events


def _version(version: str = "1.0.0", digest: str = DIGEST, **extra: object) -> dict[str, object]:
    return {"version": version, "artifact_digest": digest, **extra}


def test_create_version(client, admin, bob, new_system, make_user):
    system = new_system()
    mlops = make_user("ci", ("mlops", "STR"))
    r = client.post(
        f"/api/v1/systems/{system['id']}/versions",
        json=_version(
            "2.1.0+build.7", notes="retrained on March data", metrics={"accuracy": 0.97, "f1": 0.9}
        ),
        headers=mlops,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == "2.1.0+build.7"
    assert body["artifact_digest"] == DIGEST
    assert body["notes"] == "retrained on March data"
    assert body["metrics"] == {"accuracy": 0.97, "f1": 0.9}
    assert body["created_by"] == "ci"
    assert body["created_at"].endswith(("+00:00", "Z"))
    r = client.get(f"/api/v1/systems/{system['id']}/versions/2.1.0+build.7", headers=bob)
    assert r.status_code == 200
    assert r.json() == body
    events = audit_events(client, admin, entity_type="system", entity_id=system["id"])
    assert events[-1]["action"] == "version.create"
    assert events[-1]["after"]["artifact_digest"] == DIGEST


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "AB" * 32,  # upper case
        "sha256:" + "ab" * 31,  # too short
        "sha256:" + "ab" * 33,  # too long
        "sha1:" + "ab" * 20,
        "ab" * 32,  # no algorithm
        "sha256:" + "zz" * 32,
    ],
)
def test_bad_digest_is_422(client, admin, new_system, digest):
    system = new_system()
    r = client.post(f"/api/v1/systems/{system['id']}/versions", json=_version(digest=digest), headers=admin)
    assert_problem(r, 422, field="artifact_digest")
    assert client.get(f"/api/v1/systems/{system['id']}/versions", headers=admin).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "", "artifact_digest": DIGEST}, "version"),
        ({"version": "1 0", "artifact_digest": DIGEST}, "version"),
        ({"version": "v" * 65, "artifact_digest": DIGEST}, "version"),
        ({"artifact_digest": DIGEST}, "version"),
        ({"version": "1.0"}, "artifact_digest"),
        ({"version": "1.0", "artifact_digest": DIGEST, "metrics": {"acc": "high"}}, "acc"),
        ({"version": "1.0", "artifact_digest": DIGEST, "stage": "prod"}, "stage"),
    ],
)
def test_bad_version_body_is_422(client, admin, new_system, body, field):
    system = new_system()
    r = client.post(f"/api/v1/systems/{system['id']}/versions", json=body, headers=admin)
    assert_problem(r, 422, field=field)


def test_duplicate_version_is_409_and_keeps_the_first(client, admin, new_system):
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/versions"
    assert client.post(url, json=_version("1.0.0"), headers=admin).status_code == 201
    r = client.post(url, json=_version("1.0.0", digest="sha256:" + "cd" * 32), headers=admin)
    assert_problem(r, 409)
    assert "1.0.0" in r.json()["detail"]
    assert client.get(f"{url}/1.0.0", headers=admin).json()["artifact_digest"] == DIGEST
    # the same version string is fine on another system
    other = new_system(name="Other")
    assert (
        client.post(
            f"/api/v1/systems/{other['id']}/versions", json=_version("1.0.0"), headers=admin
        ).status_code
        == 201
    )


def test_list_versions_newest_first_with_paging(client, admin, new_system):
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/versions"
    for i in range(5):
        assert client.post(url, json=_version(f"1.{i}.0"), headers=admin).status_code == 201
    r = client.get(url, headers=admin)
    assert r.status_code == 200
    page = r.json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 50, 0)
    assert [v["version"] for v in page["items"]] == ["1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0"]
    page = client.get(url, params={"limit": 2, "offset": 1}, headers=admin).json()
    assert [v["version"] for v in page["items"]] == ["1.3.0", "1.2.0"]
    assert page["total"] == 5


def test_unknown_version_and_unknown_system_are_404(client, admin, new_system):
    system = new_system()
    assert_problem(client.get(f"/api/v1/systems/{system['id']}/versions/9.9.9", headers=admin), 404)
    assert_problem(client.get("/api/v1/systems/AIS-999999/versions", headers=admin), 404)
    assert_problem(client.post("/api/v1/systems/AIS-999999/versions", json=_version(), headers=admin), 404)


def test_retired_system_refuses_new_versions(client, admin, new_system):
    system = new_system(lifecycle_stage="production")
    url = f"/api/v1/systems/{system['id']}/versions"
    assert client.post(url, json=_version("1.0.0"), headers=admin).status_code == 201
    r = client.patch(
        f"/api/v1/systems/{system['id']}", json={"lifecycle_stage": "retired", "revision": 1}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = client.post(url, json=_version("1.1.0"), headers=admin)
    body = assert_problem(r, 409)
    assert "retired" in body["detail"]
    assert client.get(url, headers=admin).json()["total"] == 1


def test_system_created_retired_refuses_versions(client, admin, new_system):
    system = new_system(lifecycle_stage="retired")
    r = client.post(f"/api/v1/systems/{system['id']}/versions", json=_version(), headers=admin)
    assert_problem(r, 409)


def test_business_owner_registers_versions_only_for_own_systems(client, admin, bob, new_system, make_user):
    make_user("berta", ("business_owner", "STR"))
    mine = new_system()
    theirs = new_system(business_owner="berta")
    r = client.post(f"/api/v1/systems/{mine['id']}/versions", json=_version(), headers=bob)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/systems/{theirs['id']}/versions", json=_version(), headers=bob)
    assert_problem(r, 403)
    # an auditor reads versions but registers none
    auditor = make_user("audrey", ("auditor", "STR"))
    assert client.get(f"/api/v1/systems/{mine['id']}/versions", headers=auditor).json()["total"] == 1
    assert_problem(
        client.post(f"/api/v1/systems/{mine['id']}/versions", json=_version("2"), headers=auditor), 403
    )
