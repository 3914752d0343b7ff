"""The release gate knows what is open (issue 14): a production release is denied with REQUIREMENTS_OPEN while
a requirement that binds today is not done, and warned about while open ones do not bind yet. Done means
met with current evidence (linked, or through the crosswalk) or not applicable; evidence that expires
makes the gate deny again at once, before any sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.db import set_clock_offset
from tests.approvals.helpers import ANNEX3_EMPLOYMENT, codes, release, sign, submit

SIGNERS = {
    "compliance_officer": "clara",
    "business_owner": "berta",
    "risk_officer": "rita",
    "ot_security": "otto",
    "dpo": "dora",
    "safety_engineer": "sam",
}
CHATBOT = {"transparency": ["art50.1"]}  # Art. 50(1): binds since 2 August 2026


@pytest.fixture
def clock() -> Iterator[Callable[[str], None]]:
    def travel(day: str) -> None:
        set_clock_offset(datetime.fromisoformat(f"{day}T12:00:00+00:00") - datetime.now(UTC))

    yield travel
    set_clock_offset(None)


def approve(client: Any, team: dict, system: str, *, pilot_first: bool = False) -> str:
    """Request production for v1 (after an approved pilot, for a high-risk system) with every required
    role signing."""
    for environment in ("pilot", "production") if pilot_first else ("production",):
        a = submit(client, team["bob"], system, "v1", environment)
        for role in a["required_signoffs"]:
            sign(client, team[SIGNERS[role]], a["id"], role)
    return str(a["id"])


def upload(client: Any, headers: dict, system: str, valid_until: date | None = None) -> str:
    data = {"title": "Transparency notice shown to the operators"}
    if valid_until is not None:
        data["valid_until"] = valid_until.isoformat()
    r = client.post(
        f"/api/v1/systems/{system}/evidence",
        files={"file": ("notice.pdf", b"%PDF-1.7\n% the notice\n", "application/pdf")},
        data=data,
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def patch(client: Any, headers: dict, system: str, ref: str, **body: Any) -> Any:
    current = client.get(f"/api/v1/systems/{system}/requirements", params={"limit": 500}, headers=headers)
    revision = next(r["revision"] for r in current.json()["items"] if r["id"] == ref)
    return client.patch(
        f"/api/v1/systems/{system}/requirements/{ref}", json={**body, "revision": revision}, headers=headers
    )


def test_a_binding_open_requirement_denies_production_until_met_with_evidence(
    client: Any, team: dict, make_system: Any, clock: Callable[[str], None]
) -> None:
    system = make_system(CHATBOT)
    approve(client, team, system)
    denied = release(client, team["ci"], system, "v1")
    assert denied["allowed"] is False and codes(denied) == ["REQUIREMENTS_OPEN"]
    message = denied["reasons"][0]["message"]
    assert "ai_act:art50.1" in message and "binds today" in message
    # a pilot is not held by requirements
    assert "REQUIREMENTS_OPEN" not in codes(release(client, team["ci"], system, "v1", "pilot"))

    # in progress is still open; met with current evidence lets it through
    assert patch(client, team["clara"], system, "ai_act:art50.1", status="in_progress").status_code == 200
    assert codes(release(client, team["ci"], system, "v1")) == ["REQUIREMENTS_OPEN"]
    evidence = upload(client, team["clara"], system, valid_until=date.today() + timedelta(days=10))
    r = patch(client, team["clara"], system, "ai_act:art50.1", status="met", evidence=[evidence])
    assert r.status_code == 200, r.text
    allowed = release(client, team["ci"], system, "v1")
    assert allowed["allowed"] is True and "REQUIREMENTS_OPEN" not in codes(allowed, "warning")

    # the evidence expires: the gate denies again at once, before the sweep records anything
    clock((date.today() + timedelta(days=11)).isoformat())
    assert codes(release(client, team["ci"], system, "v1")) == ["REQUIREMENTS_OPEN"]


def test_not_applicable_with_a_note_counts_as_done(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(CHATBOT)
    approve(client, team, system)
    r = patch(
        client,
        team["clara"],
        system,
        "ai_act:art50.1",
        status="not_applicable",
        note="operators are told by the HMI banner, reviewed by legal",
    )
    assert r.status_code == 200, r.text
    assert release(client, team["ci"], system, "v1")["allowed"] is True


def test_requirements_that_do_not_bind_yet_are_a_warning_then_deny_from_their_date(
    client: Any, team: dict, make_system: Any, clock: Callable[[str], None]
) -> None:
    system = make_system(ANNEX3_EMPLOYMENT)  # Annex III duties bind from 2 December 2027
    approve(client, team, system, pilot_first=True)
    answer = release(client, team["ci"], system, "v1")
    assert answer["allowed"] is True and "REQUIREMENTS_OPEN" in codes(answer, "warning")
    warning = next(r for r in answer["reasons"] if r["code"] == "REQUIREMENTS_OPEN")
    assert "do not bind yet" in warning["message"] and "2027-12-02" in warning["message"]
    assert "ai_act:art26" in warning["message"] and "more" in warning["message"]
    clock("2027-12-03")
    later = release(client, team["ci"], system, "v1")
    assert "REQUIREMENTS_OPEN" in codes(later)


def test_the_gate_and_the_api_agree_on_what_is_open(client: Any, team: dict, make_system: Any) -> None:
    """The gate reuses the requirement rules: what the API lists as open and binding, the gate names."""
    system = make_system(CHATBOT)
    approve(client, team, system)
    items = client.get(
        f"/api/v1/systems/{system}/requirements", params={"limit": 500}, headers=team["clara"]
    ).json()["items"]
    binding_open = sorted(
        i["id"] for i in items if i["binding"] and i["status"] not in ("met", "not_applicable")
    )
    message = release(client, team["ci"], system, "v1")["reasons"][0]["message"]
    assert binding_open and all(ref in message for ref in binding_open)
    assert message.startswith(f"{len(binding_open)} requirement")
