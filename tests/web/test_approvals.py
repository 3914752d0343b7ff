"""Requesting approval, the signer's inbox, signing with the comments the rules require, withdraw, revoke."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.web.helpers import WebClient


def _request(browser: WebClient, sid: str, environment: str = "pilot") -> str:
    browser.get(f"/systems/{sid}/approvals/new")
    page = browser.post(
        f"/systems/{sid}/approvals/new",
        {
            "version": "1.0.0",
            "environment": environment,
            "justification": "Validated on 3 weeks of line data",
        },
        follow=False,
    )
    assert page.status == 303, page.response.text[:2000]
    return page.response.headers["location"].rsplit("/", 1)[-1]


def test_owner_requests_approval_and_sees_who_will_sign(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready(personal_data=True)
    bob = web("bob")
    form = bob.get(f"/systems/{sid}/approvals/new")
    assert form.status == 200
    assert form.xpath("//select[@name='version']/option/@value") == ["1.0.0"]
    who = form.text("//aside")
    assert "Business owner" in who and "Compliance officer" in who and "Data protection officer" in who
    aid = _request(bob, sid)
    detail = bob.get(f"/approvals/{aid}")
    assert f"Approval {aid} is requested" in detail.text("//*[@role='status']")
    assert detail.texts("//aside//ul[@class='roles-needed']/li") == [
        "○ Business owner waiting",
        "○ Compliance officer waiting",
        "○ Data protection officer waiting",
    ]
    assert detail.xpath("//form[contains(@action, '/signoffs')]") == []  # the requester never signs
    assert detail.xpath(f"//form[@action='/approvals/{aid}/withdraw']")
    api = client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()
    assert api["state"] == "submitted" and api["requester"] == "bob"


def test_request_form_explains_what_is_missing(
    web: Callable[..., WebClient],
    make_system: Callable[..., dict[str, Any]],
    ready: Callable[..., str],
    client: TestClient,
    people: Any,
) -> None:
    bob = web("bob")
    unclassified = make_system()["id"]
    page = bob.get(f"/systems/{unclassified}/approvals/new")
    assert "not classified under the AI Act yet" in page.text() and not page.xpath(
        "//select[@name='version']"
    )
    sid = ready()
    bob.get(f"/systems/{sid}/approvals/new")
    missing = bob.post(
        f"/systems/{sid}/approvals/new", {"version": "1.0.0", "environment": "pilot", "justification": ""}
    )
    assert missing.status == 422 and missing.xpath("//*[@id='justification-error']")
    unknown = bob.post(
        f"/systems/{sid}/approvals/new", {"version": "9.9.9", "environment": "pilot", "justification": "x"}
    )
    assert unknown.status == 422 and "has no version '9.9.9'" in unknown.text()
    _request(bob, sid)
    twice = bob.post(
        f"/systems/{sid}/approvals/new", {"version": "1.0.0", "environment": "pilot", "justification": "x"}
    )
    assert twice.status == 422 and "still open" in twice.text()
    assert client.get("/api/v1/approvals", headers=people["clara"]).json()["total"] == 1
    assert web("berta").get(f"/systems/{sid}/approvals/new").status == 403  # not her system


def test_signers_find_it_in_their_inbox_and_approve(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready()
    aid = _request(web("bob"), sid)
    bob_inbox = web("bob").get("/inbox")
    assert bob_inbox.xpath(f"//section[@aria-labelledby='mine-title']//a[@href='/approvals/{aid}']")
    assert not bob_inbox.xpath(f"//section[@aria-labelledby='awaiting-title']//a[@href='/approvals/{aid}']")
    assert web("leo").get("/inbox").xpath(f"//a[@href='/approvals/{aid}']") == []  # another site
    assert web("rita").get("/inbox").xpath(f"//a[@href='/approvals/{aid}']") == []  # risk is not required
    for signer, role in (("berta", "business_owner"), ("clara", "compliance_officer")):
        browser = web(signer)
        inbox = browser.get("/inbox")
        form = inbox.xpath(f"//form[@action='/approvals/{aid}/signoffs']")
        assert len(form) == 1, signer
        assert form[0].xpath(".//input[@name='role']/@value") == [role]
        assert form[0].xpath(".//button[@name='decision']/@value") == ["approve", "reject"]
        done = browser.post(
            f"/approvals/{aid}/signoffs",
            {"role": role, "decision": "approve", "comment": "", "return_to": "/inbox"},
        )
        assert done.response.url.path == "/inbox"
        assert f"You approved {aid}" in done.text("//*[@role='status']")
        assert done.xpath(f"//form[@action='/approvals/{aid}/signoffs']") == []
    api = client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()
    assert api["state"] == "approved"
    assert [(s["role"], s["signer"]) for s in api["signoffs"]] == [
        ("business_owner", "berta"),
        ("compliance_officer", "clara"),
    ]
    system_page = web("audrey").get(f"/systems/{sid}")
    assert "Approved" in system_page.text("//section[@id='approvals']")
    release = client.get(
        "/api/v1/release-permission",
        params={"system": sid, "version": "1.0.0", "environment": "pilot"},
        headers=people["pipe"],
    ).json()
    assert release["allowed"] is True and release["approval_id"] == aid


def test_a_rejection_needs_a_reason(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready()
    aid = _request(web("bob"), sid)
    clara = web("clara")
    page = clara.get(f"/approvals/{aid}")
    comment = page.xpath("//textarea[@name='comment']")[0]
    assert "A rejection must say why" in page.text(f"//*[@id='{comment.get('aria-describedby').split()[0]}']")
    refused = clara.post(
        f"/approvals/{aid}/signoffs", {"role": "compliance_officer", "decision": "reject", "comment": " "}
    )
    assert refused.status == 422
    assert "A rejection must say why." in refused.text("//*[@id='sign-" + aid + "-comment-error']")
    assert client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()["signoffs"] == []
    rejected = clara.post(
        f"/approvals/{aid}/signoffs",
        {"role": "compliance_officer", "decision": "reject", "comment": "No DPIA yet"},
    )
    assert rejected.status == 200 and "The request is rejected" in rejected.text("//*[@role='status']")
    api = client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()
    assert api["state"] == "rejected" and api["signoffs"][0]["comment"] == "No DPIA yet"


def test_ot_security_must_name_countermeasures_for_an_sl_gap(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready(zone="STR-CTL", sl_achieved={f"FR{i}": 2 for i in range(1, 8)})  # SL-T 3: a gap everywhere
    aid = _request(web("bob"), sid)
    otto = web("otto")
    card = otto.get("/inbox").xpath(f"//form[@action='/approvals/{aid}/signoffs']")[0]
    textarea = card.xpath(".//textarea[@name='comment']")[0]
    assert textarea.get("required") is not None
    hint = otto.get("/inbox").text(f"//*[@id='{textarea.get('aria-describedby').split()[0]}']")
    assert "compensating countermeasures" in hint
    refused = otto.post(
        f"/approvals/{aid}/signoffs", {"role": "ot_security", "decision": "approve", "comment": ""}
    )
    assert refused.status == 422 and "compensating countermeasures" in refused.text()
    ok = otto.post(
        f"/approvals/{aid}/signoffs",
        {
            "role": "ot_security",
            "decision": "approve",
            "comment": "Firewall rules and monitoring",
            "conditions": "recall >= 0.97",
        },
    )
    assert ok.status == 200
    api = client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()
    assert (
        api["signoffs"][0]["role"] == "ot_security" and api["conditions"][0]["expression"] == "recall >= 0.97"
    )


def test_signing_a_role_one_does_not_hold_is_refused(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready()
    aid = _request(web("bob"), sid)
    berta = web("berta")
    berta.get(f"/approvals/{aid}")
    page = berta.post(f"/approvals/{aid}/signoffs", {"role": "compliance_officer", "decision": "approve"})
    assert page.status == 403 and page.response.headers["content-type"].startswith("text/html")
    auditor = web("audrey")
    detail = auditor.get(f"/approvals/{aid}")
    assert detail.status == 200 and detail.xpath("//form[contains(@action,'signoffs')]") == []
    assert web("leo").get(f"/approvals/{aid}").status == 404
    assert client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()["signoffs"] == []


def test_requester_withdraws_and_compliance_revokes(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    first = ready()
    aid = _request(web("bob"), first)
    bob = web("bob")
    bob.get(f"/approvals/{aid}")
    page = bob.post(f"/approvals/{aid}/withdraw", {"reason": "wrong version"})
    assert page.status == 200 and f"{aid} is withdrawn" in page.text("//*[@role='status']")
    assert client.get(f"/api/v1/approvals/{aid}", headers=people["clara"]).json()["state"] == "withdrawn"

    second = ready(name="Second system")
    aid2 = _request(web("bob"), second)
    web("berta").post(f"/approvals/{aid2}/signoffs", {"role": "business_owner", "decision": "approve"})
    clara = web("clara")
    clara.get(f"/approvals/{aid2}")
    clara.post(f"/approvals/{aid2}/signoffs", {"role": "compliance_officer", "decision": "approve"})
    detail = clara.get(f"/approvals/{aid2}")
    assert detail.xpath(f"//form[@action='/approvals/{aid2}/revoke']")
    assert web("bob").get(f"/approvals/{aid2}").xpath(f"//form[@action='/approvals/{aid2}/revoke']") == []
    empty = clara.post(f"/approvals/{aid2}/revoke", {"reason": "  "})
    assert empty.status == 422
    revoked = clara.post(f"/approvals/{aid2}/revoke", {"reason": "Incident on line"})
    assert revoked.status == 200
    assert client.get(f"/api/v1/approvals/{aid2}", headers=people["clara"]).json()["state"] == "revoked"


def test_inbox_is_refused_to_a_pipeline_account(web: Callable[..., WebClient], people: Any) -> None:
    assert web("pipe").get("/inbox").status == 403


def test_inbox_shows_the_longest_waiting_first_in_pages(
    web: Callable[..., WebClient], ready: Callable[..., str], monkeypatch: Any
) -> None:
    from app.web.routes import approvals as pages

    monkeypatch.setattr(pages, "INBOX_SIZE", 2)
    requested = [_request(web("bob"), ready(name=f"System {n}")) for n in range(3)]
    clara = web("clara")
    first = clara.get("/inbox")
    assert first.xpath("//article//h3/a/@href") == [f"/approvals/{a}" for a in requested[:2]]
    assert first.text("//nav[@aria-label='Inbox pages']").startswith("1 / 2")
    second = clara.get(first.xpath("//a[@rel='next']/@href")[0])
    assert second.xpath("//article//h3/a/@href") == [f"/approvals/{requested[2]}"]
    assert second.xpath("//form[contains(@action,'signoffs')]//input[@name='return_to']/@value") == [
        "/inbox?page=2"
    ]
