"""AI literacy training records (AI Act Art. 4, issue 14): recorded once for the organisation through the API
and the CLI, checked (no completion in the future, no expiry before completion, known users and sites),
withdrawn but never deleted, counted in a summary, audited, and authorized."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db import utcnow
from tests.compliance.test_requirements import clock, people  # noqa: F401  (the fixtures, by name)
from tests.systems.helpers import assert_problem, audit_events

Headers = dict[str, str]
URL = "/api/v1/organisation/training"


@pytest.fixture
def staff(
    make_user: Callable[..., Headers],
    people: dict[str, Headers],  # noqa: F811  (the fixture imported above)
) -> dict[str, Headers]:
    """The requirements tests' people (admin, cora and leo: compliance officers in STR and LYO, bob: business
    owner in STR) and audrey, auditor in STR, and ci, a pipeline."""
    return {
        **people,
        "audrey": make_user("audrey", ("auditor", "STR")),
        "pipeline": make_user("ci", ("mlops", "STR")),
    }


def today() -> date:
    return utcnow().date()


def days(n: int) -> str:
    """The ISO date ``n`` days from the service's today (negative: in the past)."""
    return (today() + timedelta(days=n)).isoformat()


def body(**overrides: Any) -> dict[str, Any]:
    return {"person": "Bob Martin", "course": "AI literacy basics", "completed_on": days(-10), **overrides}


def add(client: Any, headers: Headers, **overrides: Any) -> dict[str, Any]:
    r = client.post(URL, json=body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def listed(client: Any, headers: Headers, **params: Any) -> list[str]:
    r = client.get(URL, params={"limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == len(page["items"])
    return [i["id"] for i in page["items"]]


def training_events(client: Any, headers: Headers, **params: str) -> list[dict[str, Any]]:
    return audit_events(client, headers, entity_type="training", **params)


# ------------------------------------------------------------------------------------------ record, read


def test_a_compliance_officer_records_a_training_and_it_is_audited(
    client: Any, staff: dict[str, Headers]
) -> None:
    created = add(
        client,
        staff["officer"],
        username="bob",
        site="STR",
        provider="TÜV Academy",
        valid_until=days(355),
    )
    assert created["id"] == "TRN-000001"
    assert created["current"] is True and created["removed_at"] is None
    assert (created["person"], created["username"], created["site"]) == ("Bob Martin", "bob", "STR")
    assert (created["course"], created["provider"]) == ("AI literacy basics", "TÜV Academy")
    assert (created["completed_on"], created["valid_until"]) == (days(-10), days(355))
    assert created["created_by"] == "cora"

    r = client.get(f"{URL}/TRN-000001", headers=staff["audrey"])
    assert r.status_code == 200 and r.json() == created
    assert listed(client, staff["bob"]) == ["TRN-000001"]
    assert add(client, staff["lyon"], person="Léa Petit")["id"] == "TRN-000002"  # any site's officer

    events = training_events(client, staff["admin"], entity_id="TRN-000001")
    assert [(e["action"], e["actor"], e["site"]) for e in events] == [("training.create", "cora", "STR")]
    after = events[0]["after"]
    assert (after["person"], after["username"], after["valid_until"]) == ("Bob Martin", "bob", days(355))
    assert_problem(client.get(f"{URL}/TRN-999999", headers=staff["officer"]), 404)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"completed_on": "TOMORROW"}, "completed_on", "future"),
        ({"completed_on": "TODAY", "valid_until": "YESTERDAY"}, "valid_until", "before completed_on"),
        ({"username": "nobody"}, "username", "unknown user 'nobody'"),
        ({"site": "XXX"}, "site", "unknown site 'XXX'"),
        ({"person": "  "}, "person", ""),
        ({"person": "x" * 201}, "person", ""),
        ({"course": ""}, "course", ""),
        ({"completed_on": "06/12/2026"}, "completed_on", ""),
        ({"removed_at": "2026-01-01T00:00:00Z"}, "removed_at", ""),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: Any, staff: dict[str, Headers], overrides: dict[str, Any], field: str, words: str
) -> None:
    named = {"TOMORROW": days(1), "TODAY": days(0), "YESTERDAY": days(-1)}
    data = body(**{k: named.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()})
    problem = assert_problem(client.post(URL, json=data, headers=staff["officer"]), 422, field=field)
    assert words in problem["detail"] or any(words in e["msg"] for e in problem.get("errors", []))
    assert listed(client, staff["officer"], include_withdrawn=True) == []
    assert training_events(client, staff["admin"]) == []


def test_a_training_completed_today_without_expiry_is_current(client: Any, staff: dict[str, Headers]) -> None:
    created = add(client, staff["officer"], completed_on=days(0), valid_until=days(0))
    assert created["current"] is True
    assert add(client, staff["officer"], completed_on=days(0))["valid_until"] is None


# ------------------------------------------------------------------------------------ withdraw, filters


def test_a_withdrawn_record_is_kept_audited_and_no_longer_counts(
    client: Any, staff: dict[str, Headers]
) -> None:
    record_id = add(client, staff["officer"], username="bob", site="STR")["id"]
    assert_problem(
        client.post(f"{URL}/{record_id}/withdraw", json={"reason": " "}, headers=staff["officer"]), 422
    )
    assert_problem(
        client.post(f"{URL}/{record_id}/withdraw", json={}, headers=staff["officer"]), 422, field="reason"
    )
    assert_problem(
        client.post(f"{URL}/TRN-999999/withdraw", json={"reason": "typo"}, headers=staff["officer"]), 404
    )

    r = client.post(f"{URL}/{record_id}/withdraw", json={"reason": "entered twice"}, headers=staff["lyon"])
    assert r.status_code == 200, r.text
    withdrawn = r.json()
    assert withdrawn["current"] is False and withdrawn["removed_by"] == "leo" and withdrawn["removed_at"]
    again = client.post(f"{URL}/{record_id}/withdraw", json={"reason": "again"}, headers=staff["officer"])
    assert assert_problem(again, 409)["code"] == "ALREADY_WITHDRAWN"

    assert client.get(f"{URL}/{record_id}", headers=staff["officer"]).json() == withdrawn
    assert listed(client, staff["officer"]) == []
    assert listed(client, staff["officer"], include_withdrawn=True) == [record_id]
    assert listed(client, staff["officer"], include_withdrawn=True, current=False) == [record_id]
    assert listed(client, staff["officer"], include_withdrawn=True, current=True) == []
    assert client.get(f"{URL}/summary", headers=staff["officer"]).json()["records_current"] == 0

    events = training_events(client, staff["admin"], entity_id=record_id)
    assert [e["action"] for e in events] == ["training.create", "training.withdraw"]
    withdraw = events[1]
    assert (withdraw["actor"], withdraw["site"], withdraw["after"]["reason"]) == (
        "leo",
        "STR",
        "entered twice",
    )
    assert withdraw["before"]["removed_at"] is None and withdraw["after"]["removed_by"] == "leo"


def test_current_and_expired_site_and_text_filters(client: Any, staff: dict[str, Headers]) -> None:
    officer = staff["officer"]
    forever = add(client, officer, person="Ana Silva", site="STR", completed_on=days(-400))["id"]
    expiring = add(client, officer, person="Bob Martin", username="bob", site="STR", valid_until=days(10))[
        "id"
    ]
    expired = add(
        client, officer, person="Cem Yilmaz", site="LYO", completed_on=days(-800), valid_until=days(-1)
    )["id"]
    nosite = add(client, officer, person="Dora 100%", course="Prompting_101", valid_until=days(0))["id"]

    assert sorted(listed(client, officer)) == sorted([forever, expiring, expired, nosite])
    assert sorted(listed(client, officer, current=True)) == sorted([forever, expiring, nosite])
    assert listed(client, officer, current=False) == [expired]
    assert sorted(listed(client, officer, site="STR")) == sorted([forever, expiring])
    assert listed(client, officer, site="LYO", current=True) == []
    assert listed(client, officer, q="silva") == [forever]
    assert listed(client, officer, q="BOB") == [expiring]  # the username matches too
    assert listed(client, officer, q="100%") == [nosite]  # LIKE wildcards are plain text
    assert listed(client, officer, q="g_1") == [nosite]
    assert listed(client, officer, q="t_1") == []
    page = client.get(URL, params={"limit": 2, "offset": 1}, headers=officer).json()
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (4, 2, 2, 1)
    assert listed(client, officer, q="Cem")[0] == expired
    item = client.get(f"{URL}/{expired}", headers=officer).json()
    assert item["current"] is False
    assert_problem(client.get(URL, params={"current": "maybe"}, headers=officer), 422, field="current")


def test_the_summary_counts_people_records_and_expiry_per_site(
    client: Any, staff: dict[str, Headers]
) -> None:
    officer = staff["officer"]
    add(client, officer, person="Bob Martin", username="bob", site="STR", valid_until=days(20))
    add(client, officer, person="Robert Martin", username="bob", site="STR", course="AI risks")  # same person
    add(client, officer, person="Ana Silva", site="STR", completed_on=days(-800), valid_until=days(-30))
    add(client, officer, person="Léa Petit", site="LYO", valid_until=days(31))
    add(client, officer, person="léa  petit", course="Deployers' duties")  # same name, no site
    gone = add(client, officer, person="Zed", site="LYO")["id"]
    r = client.post(f"{URL}/{gone}/withdraw", json={"reason": "not an employee"}, headers=officer)
    assert r.status_code == 200

    r = client.get(f"{URL}/summary", headers=staff["audrey"])
    assert r.status_code == 200, r.text
    assert r.json() == {
        "people_trained_current": 2,
        "records_current": 4,
        "records_expired": 1,
        "expiring_within_30_days": 1,
        "by_site": {
            "-": {
                "people_trained_current": 1,
                "records_current": 1,
                "records_expired": 0,
                "expiring_within_30_days": 0,
            },
            "LYO": {
                "people_trained_current": 1,
                "records_current": 1,
                "records_expired": 0,
                "expiring_within_30_days": 0,
            },
            "STR": {
                "people_trained_current": 1,
                "records_current": 2,
                "records_expired": 1,
                "expiring_within_30_days": 1,
            },
        },
    }


def test_a_record_expires_when_the_day_passes(
    client: Any,
    staff: dict[str, Headers],
    clock: Callable[[str], None],  # noqa: F811  (the fixture imported above)
) -> None:
    start = today()
    record_id = add(client, staff["officer"], completed_on=days(-5), valid_until=days(20))["id"]
    summary = client.get(f"{URL}/summary", headers=staff["officer"]).json()
    assert (summary["records_current"], summary["expiring_within_30_days"]) == (1, 1)
    clock((start + timedelta(days=20)).isoformat())  # the last day it counts
    assert listed(client, staff["officer"], current=True) == [record_id]
    clock((start + timedelta(days=21)).isoformat())
    assert listed(client, staff["officer"], current=False) == [record_id]
    assert client.get(f"{URL}/{record_id}", headers=staff["officer"]).json()["current"] is False
    summary = client.get(f"{URL}/summary", headers=staff["officer"]).json()
    assert (summary["records_current"], summary["records_expired"], summary["people_trained_current"]) == (
        0,
        1,
        0,
    )


# ------------------------------------------------------------------------------------------ authorization


def test_readers_may_not_record_or_withdraw_and_pipelines_may_not_read(
    client: Any, staff: dict[str, Headers]
) -> None:
    record_id = add(client, staff["officer"])["id"]
    for who in ("bob", "audrey"):
        assert listed(client, staff[who]) == [record_id]
        assert client.get(f"{URL}/summary", headers=staff[who]).status_code == 200
        assert_problem(client.post(URL, json=body(), headers=staff[who]), 403)
        r = client.post(f"{URL}/{record_id}/withdraw", json={"reason": "no"}, headers=staff[who])
        assert_problem(r, 403)
    for path in ("", "/summary", f"/{record_id}"):
        assert_problem(client.get(f"{URL}{path}", headers=staff["pipeline"]), 403)
    assert_problem(client.get(URL), 401)

    assert listed(client, staff["officer"]) == [record_id]
    assert client.get(f"{URL}/{record_id}", headers=staff["officer"]).json()["current"] is True
    denied = [e for e in training_events(client, staff["admin"]) if e["action"] == "access.denied"]
    assert sorted((e["actor"], e["after"]["attempted"]) for e in denied) == sorted(
        [("bob", "create"), ("bob", "update"), ("audrey", "create"), ("audrey", "update")]
        + [("ci", "read")] * 3
    )


# -------------------------------------------------------------------------------------------------- CLI


def test_cli_adds_lists_and_removes_training_records(client: Any, staff: dict[str, Headers]) -> None:
    runner = CliRunner()
    args = ["training", "add", "--person", "Ana Silva", "--course", "AI literacy", "--completed-on", days(-3)]
    ok = runner.invoke(cli_app, [*args, "--site", "STR", "--username", "bob", "--valid-until", days(362)])
    assert ok.exit_code == 0, ok.output
    assert "recorded TRN-000001" in ok.stdout
    old = runner.invoke(cli_app, [*args[:-1], days(-900), "--valid-until", days(-500), "--provider", "Acme"])
    assert old.exit_code == 0, old.output

    # bad input: exit 2 (malformed) or 1 (a rule refused it); nothing recorded
    for extra, code, words in (
        (["--valid-until", "soon"], 2, "valid_until"),
        (["--site", "XXX"], 1, "unknown site"),
        (["--username", "nobody"], 1, "unknown user"),
    ):
        bad = runner.invoke(cli_app, [*args, *extra])
        assert bad.exit_code == code and words in bad.output, (extra, bad.output)
    future = runner.invoke(cli_app, [*args[:-1], days(2)])
    assert future.exit_code == 1 and "future" in future.output

    everything = runner.invoke(cli_app, ["training", "list", "--json"])
    assert everything.exit_code == 0, everything.output
    items = json.loads(everything.stdout)
    assert [(i["id"], i["current"], i["created_by"][:4]) for i in items] == [
        ("TRN-000001", True, "cli:"),
        ("TRN-000002", False, "cli:"),
    ]
    assert items == client.get(URL, headers=staff["officer"]).json()["items"]
    text = runner.invoke(cli_app, ["training", "list", "--expired"])
    assert text.exit_code == 0 and "TRN-000002" in text.stdout and "expired" in text.stdout
    assert "TRN-000001" not in text.stdout
    current = runner.invoke(cli_app, ["training", "list", "--current", "--site", "STR", "--q", "ana"])
    assert "TRN-000001" in current.stdout and "TRN-000002" not in current.stdout

    no_reason = runner.invoke(cli_app, ["training", "remove", "TRN-000001", "--reason", " "])
    assert no_reason.exit_code == 2
    unknown = runner.invoke(cli_app, ["training", "remove", "TRN-999999", "--reason", "typo"])
    assert unknown.exit_code == 2 and "does not exist" in unknown.output
    removed = runner.invoke(cli_app, ["training", "remove", "TRN-000001", "--reason", "wrong person"])
    assert removed.exit_code == 0 and "withdrew TRN-000001" in removed.stdout, removed.output
    again = runner.invoke(cli_app, ["training", "remove", "TRN-000001", "--reason", "again"])
    assert again.exit_code == 1 and "already withdrawn" in again.output
    shown = runner.invoke(cli_app, ["training", "list", "--include-withdrawn"])
    assert "withdrawn" in shown.stdout

    events = training_events(client, staff["admin"], entity_id="TRN-000001")
    assert [e["action"] for e in events] == ["training.create", "training.withdraw"]
    assert all(e["actor"].startswith("cli") for e in events)
    assert events[1]["after"]["reason"] == "wrong person"
