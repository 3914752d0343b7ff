"""Many threads editing, classifying and versioning the same objects at once: no lost update, no duplicate,
no 5xx, and an intact audit chain at the end (SQLite serializes writers, PostgreSQL locks rows)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.systems.helpers import DIGEST, audit_events, system_body

THREADS = 8


def _race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released at the same instant; returns the results in order."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def _verify_chain(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    r = client.get("/api/v1/audit-events/verify", headers=headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["valid"], result
    return result


@pytest.fixture
def system(client: Any, admin: dict[str, str], make_user: Any, plant: Any) -> dict[str, Any]:
    make_user("bob", ("business_owner", "STR"))
    r = client.post("/api/v1/systems", json=system_body(), headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


def test_concurrent_patches_of_one_revision_exactly_one_wins(
    client: Any, admin: dict[str, str], system: dict[str, Any]
) -> None:
    sid = system["id"]
    revision = system["revision"]
    for round_ in range(4):

        def patch(i: int, rev: int = revision, rnd: int = round_) -> Any:
            return client.patch(
                f"/api/v1/systems/{sid}",
                json={"name": f"round {rnd} writer {i}", "revision": rev},
                headers=admin,
            )

        results = _race(THREADS, patch)
        codes = Counter(r.status_code for r in results)
        assert codes == {200: 1, 409: THREADS - 1}, [(r.status_code, r.text[:120]) for r in results]
        (winner,) = [r.json() for r in results if r.status_code == 200]
        current = client.get(f"/api/v1/systems/{sid}", headers=admin).json()
        assert current["revision"] == revision + 1
        assert current["name"] == winner["name"]  # the winner's write is the one that stuck
        for loser in (r for r in results if r.status_code == 409):
            assert loser.headers["content-type"].startswith("application/problem+json")
        revision += 1
    updates = [e for e in audit_events(client, admin, entity_id=sid) if e["action"].endswith("update")]
    assert len(updates) == 4  # one per round: the losers left no trace
    _verify_chain(client, admin)


def test_concurrent_if_match_patches_exactly_one_wins(
    client: Any, admin: dict[str, str], system: dict[str, Any]
) -> None:
    sid, rev = system["id"], system["revision"]
    results = _race(
        THREADS,
        lambda i: client.patch(
            f"/api/v1/systems/{sid}",
            json={"purpose": f"purpose {i}"},
            headers={**admin, "If-Match": f'"{rev}"'},
        ),
    )
    assert sorted(r.status_code for r in results) == [200] + [409] * (THREADS - 1)
    _verify_chain(client, admin)


def test_concurrent_classifications_are_all_kept_and_the_newest_decides(
    client: Any, admin: dict[str, str], system: dict[str, Any]
) -> None:
    sid = system["id"]
    answers = [
        {"annex3_uses": ["annex3.4.a"]},
        {"transparency": ["art50.1"]},
        {},
        {"prohibited_practices": ["art5.1.f"]},
    ]

    results = _race(
        THREADS,
        lambda i: client.post(
            f"/api/v1/systems/{sid}/classification", json={"answers": answers[i % 4]}, headers=admin
        ),
    )
    assert [r.status_code for r in results] == [201] * THREADS, [r.text[:200] for r in results]
    history = client.get(f"/api/v1/systems/{sid}/classification/history?limit=500", headers=admin).json()
    assert history["total"] == THREADS
    assert len({c["id"] for c in history["items"]}) == THREADS
    newest = max(history["items"], key=lambda c: c["id"])
    current = client.get(f"/api/v1/systems/{sid}/classification", headers=admin).json()
    assert current["id"] == newest["id"]
    assert (
        client.get(f"/api/v1/systems/{sid}", headers=admin).json()["ai_act_class"] == newest["ai_act_class"]
    )
    _verify_chain(client, admin)


def test_the_same_version_registered_at_once_is_created_exactly_once(
    client: Any, admin: dict[str, str], system: dict[str, Any]
) -> None:
    sid = system["id"]
    results = _race(
        THREADS,
        lambda i: client.post(
            f"/api/v1/systems/{sid}/versions",
            json={"version": "2.0.0", "artifact_digest": DIGEST, "notes": f"writer {i}"},
            headers=admin,
        ),
    )
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 1, 409: THREADS - 1}, [(r.status_code, r.text[:200]) for r in results]
    versions = client.get(f"/api/v1/systems/{sid}/versions", headers=admin).json()
    assert versions["total"] == 1
    _verify_chain(client, admin)


def test_mixed_editors_and_classifiers_lose_nothing(
    client: Any, admin: dict[str, str], system: dict[str, Any]
) -> None:
    """Editors re-read and retry on 409; classifiers record at will: every accepted change is counted."""
    sid = system["id"]
    edits_per_thread = 3

    def editor(i: int) -> int:
        done = 0
        while done < edits_per_thread:
            current = client.get(f"/api/v1/systems/{sid}", headers=admin).json()
            r = client.patch(
                f"/api/v1/systems/{sid}",
                json={"vendor": f"v{i}-{done}", "revision": current["revision"]},
                headers=admin,
            )
            assert r.status_code in (200, 409), r.text
            done += r.status_code == 200
        return done

    def classifier(i: int) -> int:
        r = client.post(f"/api/v1/systems/{sid}/classification", json={"answers": {}}, headers=admin)
        assert r.status_code == 201, r.text
        return 1

    results = _race(THREADS, lambda i: editor(i) if i % 2 == 0 else classifier(i))
    edits = sum(results[0::2])
    final = client.get(f"/api/v1/systems/{sid}", headers=admin).json()
    # classifying may also bump the system's revision; an edit always does, exactly once
    events = audit_events(client, admin, entity_id=sid)
    updates = [e for e in events if e["action"] == "system.update"]
    assert len(updates) == edits == (THREADS // 2) * edits_per_thread
    assert final["revision"] >= 1 + edits
    history = client.get(f"/api/v1/systems/{sid}/classification/history", headers=admin).json()
    assert history["total"] == THREADS // 2
    _verify_chain(client, admin)
