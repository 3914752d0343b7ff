"""Periodic review: which approvals are due, renewal carrying over unchanged evidence, webhook reminders."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app.approvals import flows
from app.approvals.models import WebhookOutbox
from app.cli import app as cli
from app.db import session_scope
from app.settings import get_settings
from tests.systems.helpers import assert_problem

DAY = timedelta(days=1)


def due(ops, days=30, **params):  # type: ignore[no-untyped-def]
    r = ops.client.get("/api/v1/reviews/due", params={"days": days, **params}, headers=ops.carol)
    return ops.ok(r)["items"]


def renew(ops, approval_id, as_="bob", **body):  # type: ignore[no-untyped-def]
    return ops.client.post(f"/api/v1/approvals/{approval_id}/renew", json=body or None, headers=ops.h[as_])


@pytest.fixture
def approved(ops):  # type: ignore[no-untyped-def]
    """A minimal-risk system approved for production now (valid 12 months, signoff_rules.yaml)."""
    system = ops.ready(lifecycle_stage="production")
    return {"system": system, "approval": ops.approve(system["id"])}


def test_review_due_selection_by_days(ops, travel, approved):
    approval = approved["approval"]
    assert due(ops) == []
    travel(timedelta(days=365 - 20))  # 12 months minus about 20 days
    items = due(ops)
    assert [i["approval_id"] for i in items] == [approval["id"]]
    item = items[0]
    assert 18 <= item["days_left"] <= 21
    assert (item["system_id"], item["version"], item["environment"], item["state"]) == (
        approved["system"]["id"],
        "1.0.0",
        "production",
        "approved",
    )
    assert item["renewal_id"] is None and item["line"] == "BODY1"
    assert due(ops, days=10) == []
    assert [i["approval_id"] for i in due(ops, days=0, site="STR")] == []
    assert due(ops, site="LYO") == []

    travel(timedelta(days=400))  # past valid_until: expired, still due until renewed
    items = due(ops, days=0)
    assert [i["approval_id"] for i in items] == [approval["id"]]
    assert items[0]["state"] == "expired" and items[0]["days_left"] < -30
    assert ops.release(approved["system"]["id"])["reasons"][0]["code"] == "APPROVAL_EXPIRED"


def test_renewal_carries_over_unchanged_evidence_and_asks_every_signoff_again(ops, travel, approved):
    old = approved["approval"]
    travel(timedelta(days=350))
    body = ops.ok(renew(ops, old["id"]), 201)
    new = body["approval"]
    assert body["renews"] == old["id"]
    assert (new["state"], new["version"], new["environment"]) == ("submitted", "1.0.0", "production")
    assert new["supersedes"] == old["id"]
    assert new["pending_signoffs"] == old["required_signoffs"]  # every sign-off asked again
    assert {e["item"]: e["unchanged"] for e in body["evidence"]} == {
        "classification": True,
        "ai_act_class": True,
        "risk_assessment": True,
        "artifact_digest": True,
        "sl_gap": True,
        "required_signoffs": True,
    }
    assert "periodic review" in new["justification"]
    # the review is still due, with the renewal in progress named; a second renewal is refused
    assert [(i["approval_id"], i["renewal_id"]) for i in due(ops)] == [(old["id"], new["id"])]
    assert_problem(renew(ops, old["id"]), 409)

    ops.sign_all(new)
    assert due(ops) == []  # the renewal replaced it; the renewal itself is due in a year
    assert [i["approval_id"] for i in due(ops, days=400)] == [new["id"]]
    travel(timedelta(days=370))
    assert ops.release(approved["system"]["id"])["allowed"] is True  # the renewal is in force
    assert_problem(renew(ops, old["id"]), 409)  # replaced by the renewal


def test_renewal_names_changed_evidence(ops, travel, approved):
    system_id = approved["system"]["id"]
    travel(timedelta(days=340))
    ops.classify(system_id, {})  # same answers, new classification record
    ops.assess(system_id, impact=4, likelihood=4)
    body = ops.ok(renew(ops, approved["approval"]["id"], justification="annual review 2027"), 201)
    evidence = {e["item"]: e for e in body["evidence"]}
    assert evidence["classification"]["unchanged"] is False
    assert evidence["classification"]["before"] != evidence["classification"]["now"]
    assert evidence["ai_act_class"]["unchanged"] is True
    assert evidence["risk_assessment"]["unchanged"] is False
    assert evidence["artifact_digest"]["unchanged"] is True
    assert body["approval"]["justification"] == "annual review 2027"


def test_renewal_refusals(ops, approved):
    approval_id = approved["approval"]["id"]
    assert_problem(renew(ops, approval_id, as_="bea"), 403)  # not the owner
    assert_problem(renew(ops, approval_id, as_="audrey"), 403)
    assert_problem(renew(ops, approval_id, as_="lou"), 404)  # no role in STR
    assert_problem(renew(ops, "APR-999999"), 404)
    assert_problem(renew(ops, approval_id, colour="red"), 422, field="colour")
    pending = ops.request(approved["system"]["id"], environment="pilot")
    assert_problem(renew(ops, pending["id"]), 409)  # only approved or expired approvals are renewed


def test_retired_systems_need_no_review(ops, travel, approved):
    travel(timedelta(days=350))
    assert len(due(ops)) == 1
    ops.patch(approved["system"]["id"], lifecycle_stage="retired")
    assert due(ops) == []


def test_cli_lists_due_reviews(ops, travel, approved):
    runner = CliRunner()
    result = runner.invoke(cli, ["reviews", "due", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "no review due within 30 days" in result.output
    travel(timedelta(days=350))
    result = runner.invoke(cli, ["reviews", "due", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert approved["approval"]["id"] in result.output and approved["system"]["id"] in result.output
    result = runner.invoke(cli, ["reviews", "due", "--days", "30", "--json"])
    assert [r["approval_id"] for r in json.loads(result.output)] == [approved["approval"]["id"]]
    assert runner.invoke(cli, ["reviews", "due", "--days", "-1"]).exit_code == 2


@pytest.fixture
def webhook(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIREG_WEBHOOK_URL", "http://127.0.0.1:9/hooks/aireg")
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET", "whsec_" + "c" * 44)
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("AIREG_WEBHOOK_URL")
    monkeypatch.delenv("AIREG_WEBHOOK_SECRET")
    get_settings.cache_clear()


def reminders() -> list[WebhookOutbox]:
    with session_scope(write=False) as session:
        return list(
            session.exec(select(WebhookOutbox).where(WebhookOutbox.event == "approval.review_due")).all()
        )


def test_reminders_go_through_the_approval_webhooks_once_a_week(ops, travel, approved, webhook):
    remind = "/api/v1/reviews/remind?days=30"
    assert ops.ok(ops.client.post(remind, headers=ops.carol))["items"] == []
    travel(timedelta(days=350))
    assert_problem(ops.client.post(remind, headers=ops.bob), 403)
    sent = ops.ok(ops.client.post(remind, headers=ops.carol))["items"]
    assert [s["approval_id"] for s in sent] == [approved["approval"]["id"]]
    rows = reminders()
    assert len(rows) == 1 and rows[0].approval_id == approved["approval"]["id"]
    assert rows[0].payload["data"]["approval"]["system_id"] == approved["system"]["id"]
    assert ops.ok(ops.client.post(remind, headers=ops.carol))["items"] == []  # not again within a week
    travel(timedelta(days=358))
    result = CliRunner().invoke(cli, ["reviews", "remind", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "queued 1 reminder(s)" in result.output
    assert len(reminders()) == 2
    # a renewal in progress stops the reminders
    ops.ok(renew(ops, approved["approval"]["id"]), 201)
    travel(timedelta(days=366))
    assert ops.ok(ops.client.post(remind, headers=ops.carol))["items"] == []


def test_reminders_need_a_webhook_receiver(ops, travel, approved):
    travel(timedelta(days=350))
    body = assert_problem(ops.client.post("/api/v1/reviews/remind", headers=ops.carol), 409)
    assert "AIREG_WEBHOOK_URL" in body["detail"]
    result = CliRunner().invoke(cli, ["reviews", "remind"])
    assert result.exit_code == 1 and "AIREG_WEBHOOK_URL" in result.output


def test_background_sweep_sends_the_reminders(ops, travel, approved, webhook):
    """The approvals worker's periodic sweep also queues due review reminders, once a week at most."""
    assert flows.sweep_expired() == 0 and reminders() == []
    travel(timedelta(days=350))
    flows.sweep_expired()
    rows = reminders()
    assert [r.approval_id for r in rows] == [approved["approval"]["id"]]
    flows.sweep_expired()
    assert len(reminders()) == 1  # not again within a week


def test_background_sweep_without_a_receiver_sends_nothing(ops, travel, approved):
    travel(timedelta(days=350))
    assert flows.sweep_expired() == 0
    assert reminders() == []
