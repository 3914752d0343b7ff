"""Scale-out: several processes over one database hold no state another process needs.

A role granted through one process is in force at once in every other (the Casbin enforcer of each process
follows the database's authorization revision), rate-limit counts are shared, and ``aireg serve --workers 2``
really runs two worker processes that answer the same API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import serve

pytestmark = pytest.mark.slow


def _fresh_get(base: str, path: str, headers: dict[str, str], request_id: str) -> httpx.Response:
    """One request on a new connection (so successive requests may land on any worker)."""
    with httpx.Client(base_url=base, timeout=10) as c:
        return c.get(path, headers={**headers, "X-Request-ID": request_id})


def _log_records(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@pytest.fixture
def dave(make_user: Callable[..., dict[str, str]], plant: Any) -> dict[str, str]:
    """A user holding no role yet (plant STR exists)."""
    return make_user("dave")


def test_a_grant_through_one_process_is_in_force_at_once_in_another(
    database: tuple[str, str | None], admin: dict[str, str], dave: dict[str, str], tmp_path: Path
) -> None:
    with serve(database, tmp_path / "a.log") as a, serve(database, tmp_path / "b.log") as b:
        assert _fresh_get(b, "/api/v1/sites/STR", dave, "pre").status_code == 404
        r = httpx.post(f"{a}/api/v1/users/dave/roles", json={"role": "auditor", "site": "STR"}, headers=admin)
        assert r.status_code == 201, r.text
        for i in range(5):
            r = _fresh_get(b, "/api/v1/sites/STR", dave, f"post-{i}")
            assert r.status_code == 200, r.text
        r = httpx.delete(f"{b}/api/v1/users/dave/roles/auditor", params={"site": "STR"}, headers=admin)
        assert r.status_code == 204, r.text
        assert _fresh_get(a, "/api/v1/sites/STR", dave, "revoked").status_code == 404


def test_failed_authentications_are_counted_across_processes(
    database: tuple[str, str | None], admin: dict[str, str], tmp_path: Path
) -> None:
    bad = {"Authorization": "Bearer aireg_" + "z" * 43}
    env = {"AIREG_AUTH_FAILURE_LIMIT": "4", "AIREG_AUTH_FAILURE_WINDOW_SECONDS": "120"}
    with serve(database, tmp_path / "a.log", **env) as a, serve(database, tmp_path / "b.log", **env) as b:
        codes = [_fresh_get(base, "/api/v1/users/me", bad, "x").status_code for base in (a, b, a, b)]
        assert codes == [401, 401, 401, 401]
        r = _fresh_get(a, "/api/v1/users/me", bad, "x")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert _fresh_get(b, "/api/v1/users/me", bad, "x").status_code == 429
        assert _fresh_get(b, "/api/v1/users/me", admin, "ok").status_code == 200  # valid tokens pass


def test_serve_with_two_workers_runs_two_processes_that_all_see_a_grant(
    database: tuple[str, str | None], admin: dict[str, str], dave: dict[str, str], tmp_path: Path
) -> None:
    if database[0].startswith("sqlite"):
        pytest.skip("several workers are for PostgreSQL (docs/deployment.md); SQLite is single-writer")
    log = tmp_path / "workers.log"
    with serve(database, log, workers=2) as base:
        r = httpx.post(
            f"{base}/api/v1/users/dave/roles", json={"role": "auditor", "site": "STR"}, headers=admin
        )
        assert r.status_code == 201, r.text

        def probe(i: int) -> int:
            return _fresh_get(base, "/api/v1/sites/STR", dave, f"probe-{i}").status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(probe, range(160)))
        assert codes == [200] * 160  # whichever worker answered, it knew the grant
    records = _log_records(log)
    started = {r["pid"] for r in records if "Started server process" in r.get("msg", "")}
    assert len(started) == 2, started
    served = {r["pid"] for r in records if str(r.get("request_id", "")).startswith("probe-")}
    assert (
        served <= started
        and len([r for r in records if str(r.get("request_id", "")).startswith("probe-")]) == 160
    )
    print(f"probes served by worker pids: {sorted(served)}")  # which workers answered (pytest -s)
