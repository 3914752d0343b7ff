"""Incidents: AI Act Art. 73 deadlines per kind, time left, reporting, closing and every refusal."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from app.classification.catalog import CatalogError, get_catalog, load_catalog
from app.db import utcnow
from app.incidents.models import IncidentKind
from app.incidents.service import report_deadline
from tests.factories import HIGH_RISK
from tests.systems.helpers import assert_problem, audit_events

# regulatory.md A.8: 73(2) general 15 days, 73(3) widespread infringement or 3(49)(b) 2 days, 73(4) death 10.
EXPECTED_DAYS = {
    "death": (10, "art73.4"),
    "critical_infrastructure": (2, "art73.3"),
    "widespread_infringement": (2, "art73.3"),
    "health": (15, "art73.2"),
    "fundamental_rights": (15, "art73.2"),
    "property_environment": (15, "art73.2"),
    "other": (15, "art73.2"),
}


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@pytest.mark.parametrize("kind", sorted(EXPECTED_DAYS))
def test_serious_incident_of_high_risk_system_gets_art73_deadline_per_kind(ops, kind):
    system = ops.ready(HIGH_RISK)
    aware = utcnow().replace(microsecond=0) - timedelta(hours=3)
    body = ops.ok(
        ops.incident(
            system["id"],
            kind=kind,
            aware_at=aware.isoformat(),
            occurred_at=(aware - timedelta(days=1)).isoformat(),
        ),
        201,
    )
    days, rule = EXPECTED_DAYS[kind]
    assert parse(body["report_deadline"]) == aware + timedelta(days=days)
    assert (body["deadline_rule"], body["deadline_days"]) == (rule, days)
    assert body["deadline_state"] == "due"
    left = days * 86_400 - 3 * 3600
    assert left - 60 <= body["time_left_seconds"] <= left
    assert body["status"] == "open" and body["suspends_release"] is True
    assert body["id"].startswith("INC-") and body["ai_act_class"] == "high_risk"


def test_catalogue_covers_every_kind_of_the_contract():
    catalog = get_catalog().ai_act
    assert set(catalog.incident_kind_by_id) == {k.value for k in IncidentKind}
    aware = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    for kind, (days, rule) in EXPECTED_DAYS.items():
        deadline = report_deadline(serious=True, kind=kind, ai_act_class="high_risk", aware_at=aware)
        assert deadline is not None and (deadline.days, deadline.rule) == (days, rule)
        assert deadline.due == aware + timedelta(days=days)


@pytest.mark.parametrize(
    ("serious", "ai_act_class"),
    [(False, "high_risk"), (True, "minimal_risk"), (True, "limited_risk"), (True, None)],
)
def test_no_deadline_unless_serious_and_high_risk(serious, ai_act_class):
    aware = datetime(2026, 9, 1, tzinfo=UTC)
    assert report_deadline(serious=serious, kind="death", ai_act_class=ai_act_class, aware_at=aware) is None


def test_not_reportable_incidents_through_the_api(ops):
    minimal = ops.ready()
    high = ops.ready(HIGH_RISK, name="Operator assignment")
    unclassified = ops.system(name="Not yet classified")
    for system_id, serious in ((minimal["id"], True), (high["id"], False), (unclassified["id"], True)):
        body = ops.ok(ops.incident(system_id, serious=serious, kind="death"), 201)
        assert body["report_deadline"] is None and body["deadline_rule"] is None
        assert body["deadline_state"] == "not_reportable" and body["time_left_seconds"] is None
        assert body["suspends_release"] is serious


def test_deadline_passes_and_reporting_records_on_time_or_late(ops, travel):
    system = ops.ready(HIGH_RISK)
    on_time = ops.ok(ops.incident(system["id"], kind="death"), 201)
    late = ops.ok(
        ops.incident(system["id"], kind="critical_infrastructure", title="Power grid feed lost"), 201
    )
    travel(timedelta(days=3))
    body = ops.ok(ops.client.get(f"/api/v1/incidents/{late['id']}", headers=ops.audrey))
    assert body["deadline_state"] == "overdue" and body["time_left_seconds"] < -20 * 3600
    body = ops.ok(ops.client.get(f"/api/v1/incidents/{on_time['id']}", headers=ops.audrey))
    assert body["deadline_state"] == "due" and 6 * 86_400 < body["time_left_seconds"] < 7 * 86_400

    overdue = ops.ok(ops.client.get("/api/v1/kpis", headers=ops.carol))["open_incidents"]["reports_overdue"]
    assert overdue == 1

    now = utcnow()
    for incident, expected in ((on_time, "reported_on_time"), (late, "reported_late")):
        r = ops.client.post(
            f"/api/v1/incidents/{incident['id']}/report",
            json={"reported_at": now.isoformat()},
            headers=ops.carol,
        )
        body = ops.ok(r)
        assert body["deadline_state"] == expected and body["time_left_seconds"] is None
        assert parse(body["reported_at"]) == now
        assert body["revision"] == 2
    events = audit_events(ops.client, ops.carol, entity_type="incident", entity_id=late["id"])
    assert [e["action"] for e in events] == ["incident.create", "incident.report"]


def test_report_refusals(ops):
    system = ops.ready(HIGH_RISK)
    incident = ops.ok(ops.incident(system["id"]), 201)
    url = f"/api/v1/incidents/{incident['id']}/report"
    too_early = (parse(incident["aware_at"]) - timedelta(minutes=1)).isoformat()
    assert_problem(
        ops.client.post(url, json={"reported_at": too_early}, headers=ops.carol), 422, field="reported_at"
    )
    future = (utcnow() + timedelta(days=1)).isoformat()
    assert_problem(
        ops.client.post(url, json={"reported_at": future}, headers=ops.carol), 422, field="reported_at"
    )
    naive = utcnow().replace(tzinfo=None).isoformat()
    assert_problem(
        ops.client.post(url, json={"reported_at": naive}, headers=ops.carol), 422, field="reported_at"
    )
    now = utcnow().isoformat()
    assert_problem(ops.client.post(url, json={"reported_at": now}, headers=ops.bob), 403)
    assert_problem(ops.client.post(url, json={"reported_at": now, "revision": 7}, headers=ops.carol), 409)
    assert (
        ops.ok(ops.client.get(f"/api/v1/incidents/{incident['id']}", headers=ops.carol))["reported_at"]
        is None
    )


def test_create_validation(ops):
    system = ops.ready(HIGH_RISK)
    now = utcnow()
    cases = [
        (
            {
                "aware_at": (now - timedelta(days=2)).isoformat(),
                "occurred_at": (now - timedelta(days=1)).isoformat(),
            },
            "aware_at",
        ),
        ({"occurred_at": (now + timedelta(hours=1)).isoformat()}, "occurred_at"),
        ({"aware_at": (now + timedelta(hours=1)).isoformat()}, "aware_at"),
        ({"aware_at": now.replace(tzinfo=None).isoformat()}, "aware_at"),
        ({"kind": "fire"}, "kind"),
        ({"title": ""}, "title"),
        ({"description": "   "}, "description"),
        ({"serious": None}, "serious"),
        ({"colour": "red"}, "colour"),
        ({"reported_at": (now - timedelta(days=3)).isoformat()}, "reported_at"),
    ]
    for overrides, field in cases:
        assert_problem(ops.incident(system["id"], **overrides), 422, field=field)
    body = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}/incidents", headers=ops.carol))
    assert body["total"] == 0


def test_close_requires_root_cause_and_corrective_action(ops):
    system = ops.ready(HIGH_RISK)
    incident = ops.ok(ops.incident(system["id"], serious=False, kind="property_environment"), 201)
    url = f"/api/v1/incidents/{incident['id']}/close"
    assert_problem(
        ops.client.post(url, json={"root_cause": "glare"}, headers=ops.carol), 422, field="corrective_action"
    )
    assert_problem(
        ops.client.post(url, json={"root_cause": "", "corrective_action": "x"}, headers=ops.carol),
        422,
        field="root_cause",
    )
    good = {
        "root_cause": "Sun glare on the camera",
        "corrective_action": "Hood fitted; retrained on glare images",
    }
    assert_problem(ops.client.post(url, json=good, headers=ops.bob), 403)
    body = ops.ok(ops.client.post(url, json=good, headers=ops.carol))
    assert body["status"] == "closed" and body["closed_by"] == "carol" and body["closed_at"]
    assert (body["root_cause"], body["corrective_action"]) == (good["root_cause"], good["corrective_action"])
    assert_problem(ops.client.post(url, json=good, headers=ops.carol), 409)
    events = audit_events(ops.client, ops.carol, entity_type="incident", entity_id=incident["id"])
    # bob's refused attempt is on the trail too
    assert [(e["action"], e["actor"]) for e in events] == [
        ("incident.create", "carol"),
        ("access.denied", "bob"),
        ("incident.close", "carol"),
    ]
    assert events[2]["after"]["root_cause"] == good["root_cause"]


def test_lists_filters_and_access(ops, make_user):
    str_system = ops.ready(HIGH_RISK)
    lyo_system = ops.ready(site="LYO", line="SMT1", business_owner="lou", as_="lou")
    ops.ok(ops.incident(str_system["id"], kind="death"), 201)
    ops.ok(ops.incident(str_system["id"], serious=False, as_="bob"), 201)
    ops.ok(ops.incident(lyo_system["id"], kind="health", as_="lou"), 201)

    everything = ops.ok(ops.client.get("/api/v1/incidents", headers=ops.carol))
    assert everything["total"] == 3
    assert ops.ok(ops.client.get("/api/v1/incidents?serious=true", headers=ops.carol))["total"] == 2
    assert ops.ok(ops.client.get("/api/v1/incidents?kind=death", headers=ops.carol))["total"] == 1
    assert ops.ok(ops.client.get("/api/v1/incidents?site=LYO", headers=ops.carol))["total"] == 1
    assert ops.ok(ops.client.get("/api/v1/incidents?suspending=true", headers=ops.carol))["total"] == 2
    # the auditor of STR sees STR only, may read but not create
    mine = ops.ok(ops.client.get("/api/v1/incidents", headers=ops.audrey))
    assert {i["site"] for i in mine["items"]} == {"STR"} and mine["total"] == 2
    assert_problem(ops.incident(str_system["id"], as_="audrey"), 403)
    lyo_incident = (
        everything["items"][0]
        if everything["items"][0]["site"] == "LYO"
        else next(i for i in everything["items"] if i["site"] == "LYO")
    )
    assert_problem(ops.client.get(f"/api/v1/incidents/{lyo_incident['id']}", headers=ops.audrey), 404)
    assert_problem(ops.client.get("/api/v1/incidents/INC-999999", headers=ops.carol), 404)
    assert_problem(ops.client.get("/api/v1/incidents/nonsense", headers=ops.carol), 422)
    assert ops.client.get("/api/v1/incidents").status_code == 401


def test_incidents_block_system_deletion(ops):
    system = ops.system(name="Short-lived")
    ops.ok(ops.incident(system["id"], serious=False), 201)
    r = ops.client.delete(f"/api/v1/systems/{system['id']}", headers=ops.carol)
    body = assert_problem(r, 409)
    assert "incident" in body["detail"]


def _catalog_copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(get_catalog().directory, target)
    return target


def _edit(directory: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = directory / "ai_act.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["incident_deadlines"][2].update(kinds=["drowning"]), "unknown incident kind 'drowning'"),
        (
            lambda d: d["incident_deadlines"][2].update(kinds=["critical_infrastructure"]),
            "already has a deadline",
        ),
        (lambda d: d["incident_deadlines"][0].update(kinds=["other"]), "need one general deadline"),
        (lambda d: d["incident_deadlines"][1].update(days=30), "longer than the general deadline"),
        (lambda d: d["incident_deadlines"][1].update(days=0), "incident_deadlines[1].days"),
        (lambda d: d.pop("incident_deadlines"), "incident_deadlines: missing required key"),
    ],
)
def test_catalogue_deadline_mistakes_are_named(tmp_path, change, message):
    directory = _catalog_copy(tmp_path)
    _edit(directory, change)
    with pytest.raises(CatalogError) as exc:
        load_catalog(directory)
    assert message in str(exc.value)


def test_catalogue_deadlines_are_data(tmp_path):
    directory = _catalog_copy(tmp_path)
    _edit(directory, lambda d: d["incident_deadlines"][2].update(days=7))
    catalog = load_catalog(directory).ai_act
    aware = datetime(2026, 9, 1, tzinfo=UTC)
    deadline = report_deadline(
        serious=True, kind="death", ai_act_class="high_risk", aware_at=aware, catalog=catalog
    )
    assert deadline is not None and deadline.due == datetime(2026, 9, 8, tzinfo=UTC)
