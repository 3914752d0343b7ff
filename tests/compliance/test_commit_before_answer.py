"""A 2xx to a compliance write means committed: the next request, on another connection, sees it.

Against a real ``aireg serve`` (TestClient waits for the whole ASGI call and cannot tell whether the commit
ran before the response went out). Evidence uploaded on one kept-alive connection can be read on another
right after the 201; a requirement recorded ``met`` on one is no longer counted open by the release gate on
the other right after the 200. Both reads are fast enough to land inside the window a late commit would leave
(checked: with the session's commit moved after the response, this test fails).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.factories import HIGH_RISK, Ops
from tests.server import serve

pytestmark = pytest.mark.slow

ROUNDS = 12
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_compliance_writes_are_seen_by_the_next_request_on_another_connection(
    ops: Ops, database: tuple[str, str | None], tmp_path: Path
) -> None:
    system = ops.ready(HIGH_RISK, ai_act_role="provider")
    sid = system["id"]
    stale: list[str] = []
    with (
        serve(database, tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30) as writer,
        httpx.Client(base_url=base, timeout=30) as reader,
    ):
        requirements = reader.get(f"/api/v1/systems/{sid}/requirements", headers=ops.carol).json()["items"]
        open_ones = [r for r in requirements if r["status"] == "open"][:ROUNDS]
        assert len(open_ones) >= 3, requirements
        gate_params = {"system": sid, "version": "1.0.0", "environment": "production"}

        def open_count() -> int:
            """How many requirements the release gate counts open (``N requirement(s) of ... open``)."""
            answer = reader.get("/api/v1/release-permission", params=gate_params, headers=ops.pip).json()
            counts = [
                int(m.group(1))
                for reason in answer["reasons"]
                if reason["code"] == "REQUIREMENTS_OPEN"
                and (m := re.match(r"(\d+) requirements? of ", reason["message"]))
            ]
            return sum(counts)

        before = open_count()
        for i, requirement in enumerate(open_ones):
            r = writer.post(
                f"/api/v1/systems/{sid}/evidence",
                files={"file": (f"plan-{i}.pdf", PDF + str(i).encode(), "application/pdf")},
                data={"title": f"Plan {i}", "valid_until": "2030-01-01"},
                headers=ops.carol,
            )
            assert r.status_code == 201, r.text
            evidence = r.json()["id"]
            seen = reader.get(f"/api/v1/evidence/{evidence}", headers=ops.carol)
            if seen.status_code != 200:
                stale.append(
                    f"round {i}: evidence {evidence} answered {seen.status_code} right after its 201"
                )
            ref = requirement["id"]
            r = writer.patch(
                f"/api/v1/systems/{sid}/requirements/{ref}",
                json={"status": "met", "evidence": [evidence], "revision": requirement["revision"]},
                headers=ops.carol,
            )
            assert r.status_code == 200, r.text
            if (now := open_count()) != before - i - 1:
                stale.append(f"round {i}: the gate counts {now} open right after {ref} was recorded met")
    assert stale == []
