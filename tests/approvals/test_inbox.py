"""GET /approvals as each signer's inbox, and the plain list with its filters."""

from __future__ import annotations

from typing import Any

from tests.approvals.helpers import ANNEX3_EMPLOYMENT, MINIMAL, sign, submit
from tests.factories import long_lived_user


def _ids(client: Any, headers: dict[str, str], **params: Any) -> list[str]:
    r = client.get("/api/v1/approvals", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"]) or body["total"] > body["limit"]
    return [a["id"] for a in body["items"]]


def test_inbox(client: Any, team: dict, make_system: Any, make_user: Any) -> None:
    high = make_system(ANNEX3_EMPLOYMENT)
    low = make_system(MINIMAL)
    a_high = submit(client, team["bob"], high, "v1", "pilot")["id"]  # business, compliance, risk
    a_low = submit(client, team["bob"], low, "v1", "pilot")["id"]  # business, compliance
    lyon_owner = team["leo"]

    assert _ids(client, team["berta"], awaiting_role="business_owner") == [a_low, a_high]
    assert _ids(client, team["bob"], awaiting_role="business_owner") == []  # never his own requests
    assert _ids(client, team["rita"], awaiting_role="risk_officer") == [a_high]
    assert _ids(client, team["rita"], awaiting_role="dpo") == []  # a role she does not hold
    assert _ids(client, lyon_owner, awaiting_role="business_owner") == []  # not in her site
    assert _ids(client, team["rita"], inbox=True) == [a_high]

    # Someone holding two roles sees both until signing one of them for a request.
    double = long_lived_user("max", ("risk_officer", "STR"), ("compliance_officer", "STR"))
    assert _ids(client, double, inbox=True) == [a_low, a_high]
    assert _ids(client, double, awaiting_role="compliance_officer") == [a_low, a_high]
    sign(client, double, a_high, "risk_officer")
    assert _ids(client, double, awaiting_role="compliance_officer") == [
        a_low
    ]  # signed a_high for another role
    assert _ids(client, team["rita"], awaiting_role="risk_officer") == []  # already signed for that role
    assert _ids(client, team["clara"], awaiting_role="compliance_officer") == [a_low, a_high]
    sign(client, team["clara"], a_low, "compliance_officer")
    assert _ids(client, team["clara"], awaiting_role="compliance_officer") == [a_high]
    sign(client, team["berta"], a_low, "business_owner")  # approves a_low
    assert _ids(client, team["berta"], awaiting_role="business_owner") == [a_high]

    # The plain list with filters (no inbox): what the caller may read.
    assert _ids(client, team["audrey"], state="approved") == [a_low]
    assert _ids(client, team["audrey"], state="submitted") == [a_high]
    assert _ids(client, team["audrey"], site="STR", system=high) == [a_high]
    assert _ids(client, team["audrey"], site="LYO") == []
    assert _ids(client, lyon_owner) == []
    r = client.get("/api/v1/approvals", params={"awaiting_role": "janitor"}, headers=team["rita"])
    assert r.status_code == 422
    assert client.get("/api/v1/approvals", headers=team["ci"]).status_code == 403  # mlops reads no approvals
    r = client.get(f"/api/v1/systems/{high}/approvals", headers=team["audrey"])
    assert [a["id"] for a in r.json()["items"]] == [a_high]
    page = client.get("/api/v1/approvals", params={"limit": 1}, headers=team["audrey"]).json()
    assert page["total"] == 2 and len(page["items"]) == 1
