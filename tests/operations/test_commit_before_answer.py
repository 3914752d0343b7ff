"""A 2xx to a write means committed: a request sent after the answer, on another connection, sees the write.

Runs against a real ``aireg serve`` (TestClient waits for the whole ASGI call, so it cannot tell whether the
commit ran before or after the response went out). A pipeline records a serious incident on one kept-alive
connection and asks the release gate on another right after the 201: the gate must already be suspended,
every time; closing the incident must lift it at once, likewise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import Ops
from tests.server import serve

pytestmark = pytest.mark.slow

ROUNDS = 150
CLOSE = {"root_cause": "lamp swap", "corrective_action": "lamp type fixed"}


def test_a_write_answered_2xx_is_seen_by_the_next_request_on_another_connection(
    ops: Ops, database: tuple[str, str | None], tmp_path: Path
) -> None:
    system = ops.ready()
    ops.approve(system["id"])
    gate_params = {"system": system["id"], "version": "1.0.0", "environment": "production"}
    stale: list[str] = []
    with (
        serve(database, tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30) as writer,
        httpx.Client(base_url=base, timeout=30) as reader,
    ):
        assert reader.get("/api/v1/release-permission", params=gate_params, headers=ops.pip).json()["allowed"]
        for i in range(ROUNDS):
            body: dict[str, Any] = {
                "title": f"Robot cell stopped ({i})",
                "description": "The model flagged every part",
                "serious": True,
                "kind": "other",
                "occurred_at": "2026-12-01T08:00:00+00:00",
                "aware_at": "2026-12-01T09:00:00+00:00",
            }
            r = writer.post(f"/api/v1/systems/{system['id']}/incidents", json=body, headers=ops.carol)
            assert r.status_code == 201, r.text
            incident = r.json()["id"]
            answer = reader.get("/api/v1/release-permission", params=gate_params, headers=ops.pip).json()
            if answer["allowed"]:
                stale.append(f"round {i}: allowed right after incident {incident} was answered 201")
            r = writer.post(f"/api/v1/incidents/{incident}/close", json=CLOSE, headers=ops.carol)
            assert r.status_code == 200, r.text
            answer = reader.get("/api/v1/release-permission", params=gate_params, headers=ops.pip).json()
            if not answer["allowed"]:
                stale.append(f"round {i}: still suspended right after incident {incident} was closed")
        # both clients kept one connection each for the whole run (keep-alive), so the read raced the write
        assert writer.get("/readyz").status_code == 200
    assert stale == []
