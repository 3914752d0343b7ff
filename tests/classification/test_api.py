"""Classification, NIST AI RMF risk assessment and checklist through the HTTP API, and ``aireg serve``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from app.classification.catalog import CatalogError, get_catalog
from app.settings import PROJECT_ROOT, get_settings
from tests.systems.helpers import assert_problem, audit_events, system_body

CATALOG_DIR = PROJECT_ROOT / "risk_catalog"
SHIPPED_VERSION = str(yaml.safe_load((CATALOG_DIR / "catalog.yaml").read_text())["catalog_version"])
NIST = yaml.safe_load((CATALOG_DIR / "nist_ai_rmf.yaml").read_text())
MATRIX = NIST["risk_matrix"]["matrix"]
HIGH_RISK_HR = {"annex3_uses": ["annex3.4.a"]}  # recruitment: Annex III point 4(a)
A1_MACHINERY = {
    "legislation": "annex1.b.21",
    "safety_component": True,
    "third_party_conformity_assessment": True,
}

Headers = dict[str, str]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    """Callers in STR of each relevant role, plus a compliance officer who works only in LYO."""
    return {
        "admin": admin,
        "owner": make_user("bob", ("business_owner", "STR")),
        "officer": make_user("cora", ("compliance_officer", "STR")),
        "risk": make_user("rick", ("risk_officer", "STR")),
        "auditor": make_user("aude", ("auditor", "STR")),
        "lyon": make_user("leon", ("compliance_officer", "LYO")),
    }


@pytest.fixture
def new_system(client: Any, people: dict[str, Headers]) -> Callable[..., dict[str, Any]]:
    """Create a system in STR (owned by bob) through the API and return its body."""

    def factory(**overrides: Any) -> dict[str, Any]:
        r = client.post("/api/v1/systems", json=system_body(**overrides), headers=people["admin"])
        assert r.status_code == 201, r.text
        return r.json()

    return factory


def _count(table: str) -> int:
    from app.db import get_engine

    with get_engine().connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Iterator[Callable[[], Path]]:
    """Point AIREG_RISK_CATALOG_DIR at a copy of the shipped catalogue; restored, caches cleared, after."""
    saved = os.environ.get("AIREG_RISK_CATALOG_DIR")

    def use_copy() -> Path:
        target = tmp_path / f"catalog-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(CATALOG_DIR, target)
        os.environ["AIREG_RISK_CATALOG_DIR"] = str(target)
        return target

    yield use_copy
    if saved is None:
        os.environ.pop("AIREG_RISK_CATALOG_DIR", None)
    else:
        os.environ["AIREG_RISK_CATALOG_DIR"] = saved
    get_settings.cache_clear()
    get_catalog.cache_clear()


def _reload_catalog() -> None:
    get_settings.cache_clear()
    get_catalog.cache_clear()


def _edit_yaml(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _locs(r: Any) -> list[list[Any]]:
    return [e["loc"] for e in r.json()["errors"]]


def _ids(obligations: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in obligations]


# ------------------------------------------------------------------------------------ preview (no storing)


PREVIEW_CASES: dict[str, tuple[dict[str, Any], str | None, dict[str, Any]]] = {
    # Webcam emotion recognition of workers that also screens job candidates: Art. 5 wins over Annex III.
    "prohibited_and_high_risk": (
        {"prohibited_practices": ["art5.1.f"], "annex3_uses": ["annex3.4.a"]},
        None,
        {"ai_act_class": "prohibited", "basis": ["art5.1.f"], "obligations": ["art5.1.f"], "gpai": []},
    ),
    "recruitment_provider": (
        HIGH_RISK_HR,
        "provider",
        {"ai_act_class": "high_risk", "basis": ["art6.2", "annex3.4.a"], "has": {"art9", "art16", "art43"}},
    ),
    "machinery_safety_component": (
        {"annex1": A1_MACHINERY},
        "provider",
        {"ai_act_class": "high_risk", "basis": ["art6.1", "annex1.b.21", "art2.2"], "obligations": []},
    ),
    "gpai_with_systemic_risk": (
        {"gpai_model": True, "gpai_systemic_risk": True},
        "provider",
        {
            "ai_act_class": "minimal_risk",
            "basis": [],
            "gpai": ["art53.1.a", "art53.1.b", "art53.1.c", "art53.1.d", "art52", "art55"],
        },
    ),
    "gpai_without_systemic_risk": (
        {"gpai_model": True},
        "provider",
        {
            "ai_act_class": "minimal_risk",
            "basis": [],
            "gpai": ["art53.1.a", "art53.1.b", "art53.1.c", "art53.1.d"],
        },
    ),
    "chatbot_transparency": (
        {"transparency": ["art50.1"]},
        "provider",
        {
            "ai_act_class": "limited_risk",
            "basis": ["art50.1"],
            "transparency": ["art50.1"],
            "has": {"art50.1"},
        },
    ),
    "deepfake_deployer": (
        {"transparency": ["art50.4", "art50.1"]},
        "deployer",
        # Art. 50(1) binds providers, Art. 50(4) deployers; listed in catalogue order.
        {"ai_act_class": "limited_risk", "transparency": ["art50.1", "art50.4"], "has": {"art50.4"}},
    ),
    "nothing": ({}, None, {"ai_act_class": "minimal_risk", "basis": [], "transparency": [], "gpai": []}),
}


@pytest.mark.parametrize("name", list(PREVIEW_CASES))
def test_preview_classifies_without_storing(client: Any, people: dict[str, Headers], name: str) -> None:
    answers, role, expect = PREVIEW_CASES[name]
    body: dict[str, Any] = {"answers": answers} | ({"ai_act_role": role} if role else {})
    events_before = _count("audit_event")
    r = client.post("/api/v1/classify", json=body, headers=people["officer"])
    assert r.status_code == 200, r.text
    res = r.json()
    assert {"ai_act_class", "basis", "transparency_obligations", "obligations", "gpai_obligations"} <= set(
        res
    )
    assert res["catalog_version"] == SHIPPED_VERSION
    assert res["rationale"]
    assert res["ai_act_class"] == expect["ai_act_class"]
    if "basis" in expect:
        assert res["basis"] == expect["basis"]
    if "transparency" in expect:
        assert res["transparency_obligations"] == expect["transparency"]
    if "gpai" in expect:
        assert res["gpai_obligations"] == expect["gpai"]
    if "obligations" in expect:
        assert _ids(res["obligations"]) == expect["obligations"]
    assert expect.get("has", set()) <= set(_ids(res["obligations"]))
    for ob in res["obligations"]:
        assert ob["id"] and ob["title"] and ob["applies_from"]
    assert _count("classification") == 0
    assert _count("audit_event") == events_before


def test_preview_of_prohibited_explains_the_high_risk_it_would_have_been(
    client: Any, people: dict[str, Headers]
) -> None:
    answers = {"prohibited_practices": ["art5.1.f"], "annex3_uses": ["annex3.4.a"]}
    res = client.post("/api/v1/classify", json={"answers": answers}, headers=people["officer"]).json()
    assert "Art. 5(1)(f)" in res["rationale"]
    assert "would be high-risk" in res["rationale"]
    assert not {"art9", "art16", "art26"} & set(_ids(res["obligations"]))


def test_preview_role_decides_the_obligations(client: Any, people: dict[str, Headers]) -> None:
    def obligations(**extra: Any) -> set[str]:
        r = client.post(
            "/api/v1/classify", json={"answers": HIGH_RISK_HR, **extra}, headers=people["officer"]
        )
        assert r.status_code == 200, r.text
        return set(_ids(r.json()["obligations"]))

    default, provider, deployer = (
        obligations(),
        obligations(ai_act_role="provider"),
        obligations(ai_act_role="deployer"),
    )
    assert default == provider  # the contract's default role is provider
    assert {"art16", "art17", "art43"} <= provider and "art26" not in provider
    assert "art26" in deployer and not {"art16", "art17", "art43"} & deployer


def test_preview_obligations_in_force_follow_the_service_clock(
    client: Any, people: dict[str, Headers], make_user: Callable[..., Headers]
) -> None:
    from app.db import set_clock_offset

    def art9(headers: Headers) -> dict[str, Any]:
        r = client.post("/api/v1/classify", json={"answers": HIGH_RISK_HR}, headers=headers)
        assert r.status_code == 200, r.text
        return next(o for o in r.json()["obligations"] if o["id"] == "art9")

    start = date.fromisoformat(art9(people["officer"])["applies_from"])
    today = datetime.now(UTC).date()
    for n, (shift, expected) in enumerate(((-1, False), (0, True), (1, True))):
        set_clock_offset(timedelta(days=(start - today).days + shift))
        caller = make_user(f"traveller{n}", ("compliance_officer", "STR"))  # tokens expire; issue one then
        assert art9(caller)["in_force"] is expected


BAD_ANSWERS: list[tuple[dict[str, Any], list[Any], str]] = [
    ({"answers": {"annex3_uses": ["annex3.9.z"]}}, ["body", "answers", "annex3_uses", 0], "annex3.9.z"),
    (
        {"answers": {"annex3_uses": ["annex3.4.a", "annex3.42"]}},
        ["body", "answers", "annex3_uses", 1],
        "annex3.42",
    ),
    (
        {"answers": {"prohibited_practices": ["annex3.4.a"]}},
        ["body", "answers", "prohibited_practices", 0],
        "Annex III",
    ),
    ({"answers": {"transparency": ["art50.9"]}}, ["body", "answers", "transparency", 0], "art50.9"),
    ({"answers": {"profiling": "yes"}}, ["body", "answers", "profiling"], "bool"),
    ({"answers": {"gpai_model": 1}}, ["body", "answers", "gpai_model"], "bool"),
    ({"answers": {"annex3_uses": "annex3.4.a"}}, ["body", "answers", "annex3_uses"], "list"),
    ({"answers": {"colour": "red"}}, ["body", "answers", "colour"], "Extra"),
    (
        {"answers": {"annex1": {**A1_MACHINERY, "ce_mark": True}}},
        ["body", "answers", "annex1", "ce_mark"],
        "Extra",
    ),
    (
        {"answers": {"annex1": {**A1_MACHINERY, "legislation": "annex1.a.1"}}},
        ["body", "answers", "annex1", "legislation"],
        "annex1.b.21",
    ),  # annex1.a.1 (machinery) was moved by the 2026 amendment
    ({"answers": {"art6_3_conditions": ["art6.3.a"]}}, ["body", "answers", "art6_3_conditions"], "Annex III"),
    ({"answers": {"gpai_systemic_risk": True}}, ["body", "answers", "gpai_systemic_risk"], "gpai_model"),
    ({"answers": {}, "ai_act_role": "owner"}, ["body", "ai_act_role"], "provider"),
    ({"answers": {}, "system": "AIS-000001"}, ["body", "system"], "Extra"),
    ({}, ["body", "answers"], "required"),
    ({"answers": None}, ["body", "answers"], ""),
]


@pytest.mark.parametrize(
    ("body", "loc", "hint"), BAD_ANSWERS, ids=[str(b[1][-1]) + str(i) for i, b in enumerate(BAD_ANSWERS)]
)
def test_bad_answers_are_422_naming_the_field(
    client: Any, people: dict[str, Headers], body: dict[str, Any], loc: list[Any], hint: str
) -> None:
    r = client.post("/api/v1/classify", json=body, headers=people["officer"])
    problem = assert_problem(r, 422)
    assert loc in _locs(r), problem
    msg = next(e["msg"] for e in problem["errors"] if e["loc"] == loc)
    assert hint.lower() in (msg + problem["detail"]).lower(), problem
    assert ".".join(map(str, loc)) in problem["detail"] or len(problem["errors"]) > 1


def test_every_bad_identifier_is_reported_at_once(client: Any, people: dict[str, Headers]) -> None:
    body = {"answers": {"annex3_uses": ["annex3.9.z"], "transparency": ["art50.1", "art99"]}}
    r = client.post("/api/v1/classify", json=body, headers=people["officer"])
    assert_problem(r, 422)
    assert _locs(r) == [["body", "answers", "annex3_uses", 0], ["body", "answers", "transparency", 1]]


@pytest.mark.parametrize(
    "header", ["Bearer aireg_not-a-real-token", "Bearer ", "Basic Ym9iOnNlY3JldA==", "aireg_x"]
)
def test_classify_refuses_a_bad_authorization_header(
    client: Any, people: dict[str, Headers], header: str
) -> None:
    body = {"answers": {}}
    assert_problem(client.post("/api/v1/classify", json=body, headers={"Authorization": header}), 401)


def test_classify_needs_a_valid_token(client: Any, people: dict[str, Headers]) -> None:
    body = {"answers": {}}
    assert_problem(client.post("/api/v1/classify", json=body), 401)
    # a revoked token stops working at once
    token = people["auditor"]["Authorization"].removeprefix("Bearer ")
    assert client.post("/api/v1/classify", json=body, headers=people["auditor"]).status_code == 200
    from app.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(sa.text("UPDATE api_token SET revoked_at = CURRENT_TIMESTAMP"))
    r = client.post("/api/v1/classify", json=body, headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401)


def test_classify_records_token_use_like_every_endpoint(client: Any, people: dict[str, Headers]) -> None:
    from app.db import get_engine

    def last_used() -> Any:
        with get_engine().connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT t.last_used_at FROM api_token t JOIN app_user u ON u.id = t.user_id "
                    "WHERE u.username = 'aude'"
                )
            ).scalar_one()

    assert last_used() is None
    for _ in range(3):
        assert (
            client.post("/api/v1/classify", json={"answers": {}}, headers=people["auditor"]).status_code
            == 200
        )
    assert last_used() is not None


# ------------------------------------------------------------------------------- stored classifications


def test_stored_classification_uses_the_systems_role(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    provider = new_system(name="In-house CV screening", ai_act_role="provider", vendor=None)
    deployer = new_system(name="Bought CV screening", ai_act_role="deployer", vendor="HRTech")
    results = {}
    for system in (provider, deployer):
        r = client.post(
            f"/api/v1/systems/{system['id']}/classification",
            json={"answers": HIGH_RISK_HR},
            headers=people["officer"],
        )
        assert r.status_code == 201, r.text
        results[system["ai_act_role"]] = r.json()
    p, d = results["provider"], results["deployer"]
    assert p["ai_act_class"] == d["ai_act_class"] == "high_risk"
    assert p["basis"] == d["basis"] == ["art6.2", "annex3.4.a"]
    assert (p["ai_act_role"], d["ai_act_role"]) == ("provider", "deployer")
    assert {"art16", "art17", "art43"} <= set(_ids(p["obligations"])) and "art26" not in _ids(
        p["obligations"]
    )
    assert "art26" in _ids(d["obligations"]) and "art16" not in _ids(d["obligations"])
    # the stored result is the preview's result for the same role
    preview = client.post(
        "/api/v1/classify",
        json={"answers": HIGH_RISK_HR, "ai_act_role": "deployer"},
        headers=people["officer"],
    ).json()
    assert d["obligations"] == preview["obligations"] and d["rationale"] == preview["rationale"]


def test_the_body_cannot_override_the_systems_role(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system(ai_act_role="deployer")
    r = client.post(
        f"/api/v1/systems/{system['id']}/classification",
        json={"answers": HIGH_RISK_HR, "ai_act_role": "provider"},
        headers=people["officer"],
    )
    assert_problem(r, 422, field="ai_act_role")
    assert _count("classification") == 0


def test_a_role_change_shows_in_the_next_classification(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system(ai_act_role="deployer")
    url = f"/api/v1/systems/{system['id']}"
    first = client.post(
        f"{url}/classification", json={"answers": HIGH_RISK_HR}, headers=people["officer"]
    ).json()
    revision = client.get(url, headers=people["officer"]).json()["revision"]
    r = client.patch(url, json={"ai_act_role": "provider", "revision": revision}, headers=people["officer"])
    assert r.status_code == 200, r.text
    second = client.post(
        f"{url}/classification", json={"answers": HIGH_RISK_HR}, headers=people["officer"]
    ).json()
    assert (first["ai_act_role"], second["ai_act_role"]) == ("deployer", "provider")
    assert "art26" in _ids(first["obligations"]) and "art16" in _ids(second["obligations"])
    history = client.get(f"{url}/classification/history", headers=people["officer"]).json()["items"]
    assert [h["ai_act_role"] for h in history] == ["provider", "deployer"]  # the first one is kept as it was


def test_current_is_404_before_any_classification(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/classification"
    assert_problem(client.get(url, headers=people["officer"]), 404)
    history = client.get(f"{url}/history", headers=people["officer"]).json()
    assert (history["items"], history["total"]) == ([], 0)
    assert system["ai_act_class"] is None
    assert_problem(client.get("/api/v1/systems/AIS-999999/classification", headers=people["officer"]), 404)


def test_history_keeps_every_classification_and_the_latest_is_the_class(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    from app.db import set_clock_offset

    system = new_system(ai_act_role="provider")
    other = new_system(name="Other")
    url = f"/api/v1/systems/{system['id']}"
    steps = [
        ({}, "minimal_risk"),
        ({"annex3_uses": ["annex3.4.a"], "profiling": True}, "high_risk"),
        ({"transparency": ["art50.1"]}, "limited_risk"),
    ]
    made = []
    for day, (answers, expected) in enumerate(steps):
        set_clock_offset(timedelta(days=day))
        r = client.post(f"{url}/classification", json={"answers": answers}, headers=people["officer"])
        assert r.status_code == 201, r.text
        assert r.json()["ai_act_class"] == expected
        made.append(r.json())
        # the system's class is always its latest classification, and the list filter finds it there
        assert client.get(url, headers=people["officer"]).json()["ai_act_class"] == expected
        found = client.get(
            "/api/v1/systems", params={"ai_act_class": expected}, headers=people["officer"]
        ).json()
        assert [s["id"] for s in found["items"]] == [system["id"]]
    set_clock_offset(None)

    page = client.get(f"{url}/classification/history", headers=people["auditor"]).json()
    assert page["total"] == 3
    items = page["items"]
    assert [i["ai_act_class"] for i in items] == ["limited_risk", "high_risk", "minimal_risk"]  # newest first
    assert [i["id"] for i in items] == [m["id"] for m in reversed(made)]
    assert [i["answers"] for i in items] == [a for a, _ in reversed(steps)]  # kept as answered
    assert all(i["assessor"] == "cora" and i["catalog_version"] == SHIPPED_VERSION for i in items)
    times = [i["created_at"] for i in items]
    assert times == sorted(times, reverse=True) and len(set(times)) == 3
    assert items == list(reversed(made))  # nothing was rewritten by later classifications
    assert client.get(f"{url}/classification", headers=people["auditor"]).json() == made[-1]

    second = client.get(
        f"{url}/classification/history", params={"limit": 1, "offset": 1}, headers=people["admin"]
    )
    assert [i["ai_act_class"] for i in second.json()["items"]] == ["high_risk"]
    assert (
        client.get("/api/v1/systems", params={"ai_act_class": "high_risk"}, headers=people["admin"]).json()[
            "total"
        ]
        == 0
    )
    assert other["ai_act_class"] is None
    assert_problem(
        client.get("/api/v1/systems", params={"ai_act_class": "risky"}, headers=people["admin"]), 422
    )

    events = audit_events(client, people["admin"], entity_type="system", entity_id=system["id"])
    classify_events = [e for e in events if e["action"] == "system.classify"]
    assert len(classify_events) == 3
    assert {e["after"]["catalog_version"] for e in classify_events} == {SHIPPED_VERSION}
    assert {e["actor"] for e in classify_events} == {"cora"}


@pytest.mark.parametrize(
    "body", [{"answers": {"annex3_uses": ["annex3.9.z"]}}, {"answers": {"profiling": "yes"}}]
)
def test_a_refused_classification_changes_nothing(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]], body: dict[str, Any]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}"
    client.post(
        f"{url}/classification", json={"answers": {"transparency": ["art50.1"]}}, headers=people["officer"]
    )
    before = client.get(url, headers=people["officer"]).json()
    r = client.post(f"{url}/classification", json=body, headers=people["officer"])
    assert_problem(r, 422)
    assert client.get(url, headers=people["officer"]).json() == before
    assert client.get(f"{url}/classification/history", headers=people["officer"]).json()["total"] == 1


def test_classification_access(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/classification"
    body = {"answers": HIGH_RISK_HR}
    assert client.post(url, json=body, headers=people["officer"]).status_code == 201
    # auditors and business owners read but may not classify
    for who in ("auditor", "owner"):
        assert_problem(client.post(url, json=body, headers=people[who]), 403)
        assert client.get(url, headers=people[who]).status_code == 200
        assert client.get(f"{url}/history", headers=people[who]).json()["total"] == 1
    # a caller without any role in STR learns nothing about the system
    for r in (
        client.post(url, json=body, headers=people["lyon"]),
        client.get(url, headers=people["lyon"]),
        client.get(f"{url}/history", headers=people["lyon"]),
    ):
        assert_problem(r, 404)
    assert client.get(f"{url}/history", headers=people["admin"]).json()["total"] == 1
    denied = [e for e in audit_events(client, people["admin"]) if e["action"] == "access.denied"]
    assert {e["actor"] for e in denied} >= {"aude", "bob", "leon"}


# ---------------------------------------------------------------------------------- catalogue versions


def test_reclassifying_under_a_new_catalogue_keeps_the_old_version(
    client: Any,
    people: dict[str, Headers],
    new_system: Callable[..., dict[str, Any]],
    catalog_copy: Callable[[], Path],
) -> None:
    system = new_system(ai_act_role="provider")
    url = f"/api/v1/systems/{system['id']}/classification"
    first = client.post(url, json={"answers": HIGH_RISK_HR}, headers=people["officer"]).json()
    assert first["catalog_version"] == SHIPPED_VERSION

    # A catalogue update is data only: a new version with a retitled duty, no code change, no restart.
    copy = catalog_copy()
    _edit_yaml(copy / "catalog.yaml", lambda d: d.update(catalog_version="2027-01-15"))

    def retitle(data: dict[str, Any]) -> None:
        art16 = next(o for o in data["obligations"] if o["id"] == "art16")
        art16["title"] = "Provider duties (retitled in 2027-01-15)"

    _edit_yaml(copy / "ai_act.yaml", retitle)
    _reload_catalog()

    second = client.post(url, json={"answers": HIGH_RISK_HR}, headers=people["officer"]).json()
    assert second["catalog_version"] == "2027-01-15"
    history = client.get(f"{url}/history", headers=people["officer"]).json()["items"]
    assert [h["catalog_version"] for h in history] == ["2027-01-15", SHIPPED_VERSION]
    titles = [next(o["title"] for o in h["obligations"] if o["id"] == "art16") for h in history]
    assert titles[0] == "Provider duties (retitled in 2027-01-15)"
    assert titles[1] != titles[0]  # the earlier classification keeps what it was made under
    assert history[1] == first
    catalog = client.get("/api/v1/catalog", headers=people["officer"]).json()
    assert catalog["catalog_version"] == "2027-01-15"
    preview = client.post("/api/v1/classify", json={"answers": {}}, headers=people["officer"]).json()
    assert preview["catalog_version"] == "2027-01-15"


def test_catalogue_endpoint(client: Any, people: dict[str, Headers]) -> None:
    r = client.get("/api/v1/catalog", headers=people["auditor"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["catalog_version"] == SHIPPED_VERSION and body["legal_basis"]
    assert len(body["nist_ai_rmf"]["subcategories"]) == 72
    assert "annex3.4.a" in {u["id"] for u in body["ai_act"]["annex3_uses"]}
    assert [f["id"] for f in body["iec62443"]["foundational_requirements"]] == [f"FR{i}" for i in range(1, 8)]
    assert_problem(client.get("/api/v1/catalog"), 401)


def _break(copy: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["annex3_uses"][0]["applies_from"] = "someday"

    _edit_yaml(copy / "ai_act.yaml", edit)


def test_a_broken_catalogue_stops_the_service_naming_file_and_key(
    db: None, catalog_copy: Callable[[], Path]
) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    _break(catalog_copy())
    _reload_catalog()
    with pytest.raises(CatalogError) as caught, TestClient(create_app()):
        pass
    message = str(caught.value)
    assert "ai_act.yaml" in message
    assert "annex3_uses[0].applies_from" in message
    assert "someday" in message


def test_aireg_serve_reports_a_broken_catalogue_and_exits_1(
    db: None, catalog_copy: Callable[[], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from app.cli import app as cli

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append((a, k)))
    _break(catalog_copy())
    _reload_catalog()
    result = CliRunner().invoke(cli, ["serve", "--port", "8765"])
    assert result.exit_code == 1, result.output
    output = result.output + (result.stderr or "")
    assert "ai_act.yaml: annex3_uses[0].applies_from" in output
    assert "Traceback" not in output
    assert started == []


def test_aireg_serve_starts_with_a_good_catalogue(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from app.cli import app as cli

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(k))
    result = CliRunner().invoke(cli, ["serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert started and started[0]["port"] == 8765


# ------------------------------------------------------------------------------ NIST AI RMF risk assessment

RISK = {
    "title": "Bias against older applicants",
    "nist_refs": ["MEASURE 2.11", "MAP 5.1"],
    "mitigation": "Audit",
}


@pytest.mark.parametrize(
    ("impact", "likelihood"), [(1, 1), (1, 5), (2, 3), (3, 2), (3, 4), (4, 5), (5, 1), (5, 5)]
)
def test_risk_tier_comes_from_the_catalogue_matrix(
    client: Any,
    people: dict[str, Headers],
    new_system: Callable[..., dict[str, Any]],
    impact: int,
    likelihood: int,
) -> None:
    system = new_system()
    expected = MATRIX[impact - 1][likelihood - 1]
    url = f"/api/v1/systems/{system['id']}"
    body = {"impact": impact, "likelihood": likelihood, "risks": [RISK]}
    r = client.post(f"{url}/risk-assessment", json=body, headers=people["risk"])
    assert r.status_code == 201, r.text
    res = r.json()
    assert (res["impact"], res["likelihood"], res["risk_tier"]) == (impact, likelihood, expected)
    assert res["risks"] == [{**RISK, "characteristic": None}]
    assert (res["assessor"], res["catalog_version"]) == ("rick", SHIPPED_VERSION)
    assert client.get(url, headers=people["owner"]).json()["risk_tier"] == expected
    found = client.get("/api/v1/systems", params={"risk_tier": expected}, headers=people["admin"]).json()
    assert [s["id"] for s in found["items"]] == [system["id"]]


def test_matrix_tiers_are_all_reachable() -> None:
    assert {c for row in MATRIX for c in row} == {"low", "medium", "high", "critical"}


def test_risk_assessment_history_and_current(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/risk-assessment"
    assert_problem(client.get(url, headers=people["owner"]), 404)
    made = []
    for impact, likelihood in ((5, 5), (2, 2)):
        r = client.post(
            url, json={"impact": impact, "likelihood": likelihood, "risks": [RISK]}, headers=people["officer"]
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert client.get(url, headers=people["owner"]).json() == made[-1]
    page = client.get(f"{url}/history", headers=people["auditor"]).json()
    assert page["total"] == 2 and page["items"] == list(reversed(made))
    assert (
        client.get(f"/api/v1/systems/{system['id']}", headers=people["owner"]).json()["risk_tier"]
        == MATRIX[1][1]
    )
    one = client.get(f"{url}/history", params={"limit": 1, "offset": 1}, headers=people["auditor"]).json()
    assert one["items"] == [made[0]]


@pytest.mark.parametrize(
    ("risks", "extra", "loc"),
    [
        ([{**RISK, "nist_refs": ["MEASURE 2.99"]}], {}, ["body", "risks", 0, "nist_refs", 0]),
        ([RISK, {**RISK, "nist_refs": ["MAP 1.1", "GOVERN 9.9"]}], {}, ["body", "risks", 1, "nist_refs", 1]),
        ([{**RISK, "nist_refs": ["measure 2.11"]}], {}, ["body", "risks", 0, "nist_refs", 0]),
        ([{**RISK, "nist_refs": ["MAP 1.1", "MAP 1.1"]}], {}, ["body", "risks", 0, "nist_refs", 1]),
        ([{**RISK, "nist_refs": []}], {}, ["body", "risks", 0, "nist_refs"]),
        ([{**RISK, "characteristic": "sparkly"}], {}, ["body", "risks", 0, "characteristic"]),
        ([{**RISK, "owner": "x"}], {}, ["body", "risks", 0, "owner"]),
        ([{**RISK, "title": ""}], {}, ["body", "risks", 0, "title"]),
        ([RISK], {"impact": 6}, ["body", "impact"]),
        ([RISK], {"likelihood": 0}, ["body", "likelihood"]),
        ([RISK], {"impact": "high"}, ["body", "impact"]),
    ],
)
def test_bad_risk_assessment_is_422_naming_the_field(
    client: Any,
    people: dict[str, Headers],
    new_system: Callable[..., dict[str, Any]],
    risks: list[dict[str, Any]],
    extra: dict[str, Any],
    loc: list[Any],
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}"
    body = {"impact": 3, "likelihood": 3, "risks": risks, **extra}
    r = client.post(f"{url}/risk-assessment", json=body, headers=people["risk"])
    assert_problem(r, 422)
    assert loc in _locs(r), r.json()
    assert_problem(client.get(f"{url}/risk-assessment", headers=people["risk"]), 404)
    assert client.get(url, headers=people["risk"]).json()["risk_tier"] is None


def test_risk_assessment_access(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/risk-assessment"
    body = {"impact": 3, "likelihood": 3, "risks": [RISK]}
    for who in ("owner", "auditor"):
        assert_problem(client.post(url, json=body, headers=people[who]), 403)
    assert_problem(client.post(url, json=body, headers=people["lyon"]), 404)
    assert client.post(url, json=body, headers=people["risk"]).status_code == 201
    assert client.get(url, headers=people["auditor"]).status_code == 200
    assert_problem(client.get(url, headers=people["lyon"]), 404)


# ------------------------------------------------------------------------------------- AI RMF checklist

FUNCTION_TOTALS = {
    f["id"]: sum(1 for s in NIST["subcategories"] if str(s["id"]).split(" ")[0] == f["id"])
    for f in NIST["functions"]
}


def _coverage(checklist: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["function"]: c for c in checklist["coverage"]}


def test_checklist_lists_every_subcategory(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    r = client.get(f"/api/v1/systems/{system['id']}/nist-checklist", headers=people["owner"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 72
    assert [i["subcategory"] for i in body["items"]] == [s["id"] for s in NIST["subcategories"]]
    assert {i["status"] for i in body["items"]} == {"not_started"}
    assert all(i["revision"] == 0 and i["evidence"] == [] for i in body["items"])
    cov = _coverage(body)
    assert list(cov) == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert {f: c["total"] for f, c in cov.items()} == FUNCTION_TOTALS and sum(FUNCTION_TOTALS.values()) == 72
    assert all(c["coverage"] == 0.0 and c["not_started"] == c["total"] for c in cov.values())
    assert body["catalog_version"] == SHIPPED_VERSION


def test_checklist_updates_change_coverage(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/nist-checklist"
    evidence = [
        "https://wiki.example.com/ai/bias-audit-2026",
        "https://git.example.com/ml/cv/-/merge_requests/12",
    ]
    r = client.put(
        f"{url}/MEASURE 2.11",
        json={"status": "implemented", "evidence": evidence, "note": "Quarterly audit", "revision": 0},
        headers=people["risk"],
    )
    assert r.status_code == 200, r.text
    measure_total = FUNCTION_TOTALS["MEASURE"]
    cov = _coverage(r.json())["MEASURE"]
    assert (cov["implemented"], cov["not_started"]) == (1, measure_total - 1)
    assert cov["coverage"] == round(1 / measure_total, 3)
    item = next(i for i in r.json()["items"] if i["subcategory"] == "MEASURE 2.11")
    assert (item["status"], item["evidence"], item["note"]) == ("implemented", evidence, "Quarterly audit")
    assert (item["updated_by"], item["revision"], item["function"]) == ("rick", 1, "MEASURE")

    # not applicable leaves the denominator; in progress counts but does not cover
    r = client.put(
        f"{url}/MEASURE 2.1", json={"status": "not_applicable", "revision": 0}, headers=people["risk"]
    )
    assert r.status_code == 200, r.text
    assert _coverage(r.json())["MEASURE"]["coverage"] == round(1 / (measure_total - 1), 3)
    r = client.put(
        f"{url}/MEASURE 2.11", headers={**people["risk"], "If-Match": '"1"'}, json={"status": "in_progress"}
    )
    assert r.status_code == 200, r.text
    cov = _coverage(r.json())["MEASURE"]
    assert (cov["implemented"], cov["in_progress"], cov["not_applicable"], cov["coverage"]) == (0, 1, 1, 0.0)
    assert _coverage(r.json())["GOVERN"]["coverage"] == 0.0

    # the state is stored, read back by anyone who may read the system, and audited
    read = client.get(url, headers=people["auditor"]).json()
    assert read == r.json()
    events = audit_events(client, people["admin"], entity_id=system["id"])
    assert [e["after"]["status"] for e in events if e["action"] == "system.nist_checklist"] == [
        "implemented",
        "not_applicable",
        "in_progress",
    ]


CHECKLIST_ITEM = {"status": "implemented", "evidence": ["https://example.com/e"], "revision": 0}


@pytest.mark.parametrize("sub", ["MEASURE 9.9", "GOVERN 1", "nonsense"])
def test_checklist_refuses_an_unknown_subcategory(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]], sub: str
) -> None:
    url = f"/api/v1/systems/{new_system()['id']}/nist-checklist"
    r = client.put(f"{url}/{sub}", json=CHECKLIST_ITEM, headers=people["risk"])
    assert_problem(r, 422, field="subcategory")


@pytest.mark.parametrize(
    "bad_url", ["not a url", "ftp://files.example.com/x", "javascript:alert(1)", "/relative/path"]
)
def test_checklist_refuses_evidence_that_is_not_a_web_link(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]], bad_url: str
) -> None:
    url = f"/api/v1/systems/{new_system()['id']}/nist-checklist"
    r = client.put(f"{url}/MAP 1.1", json={**CHECKLIST_ITEM, "evidence": [bad_url]}, headers=people["risk"])
    assert_problem(r, 422)
    assert ["body", "evidence", 0] in _locs(r), r.json()


def test_checklist_refusals(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system()
    url = f"/api/v1/systems/{system['id']}/nist-checklist"
    ok = CHECKLIST_ITEM
    assert_problem(
        client.put(f"{url}/MAP 1.1", json={**ok, "status": "done"}, headers=people["risk"]),
        422,
        field="status",
    )
    assert_problem(
        client.put(f"{url}/MAP 1.1", json={**ok, "extra": 1}, headers=people["risk"]), 422, field="extra"
    )
    no_revision = {k: v for k, v in ok.items() if k != "revision"}
    assert_problem(
        client.put(f"{url}/MAP 1.1", json=no_revision, headers=people["risk"]), 422, field="revision"
    )
    assert client.put(f"{url}/MAP 1.1", json=ok, headers=people["risk"]).status_code == 200
    # a stale revision (the item is now at 1) is a conflict and changes nothing
    assert_problem(
        client.put(f"{url}/MAP 1.1", json={**ok, "status": "not_started"}, headers=people["risk"]), 409
    )
    # business owners and auditors read; other sites see nothing
    assert_problem(client.put(f"{url}/MAP 1.1", json={**ok, "revision": 1}, headers=people["owner"]), 403)
    assert_problem(client.put(f"{url}/MAP 1.1", json={**ok, "revision": 1}, headers=people["auditor"]), 403)
    assert_problem(client.get(url, headers=people["lyon"]), 404)
    item = next(
        i for i in client.get(url, headers=people["owner"]).json()["items"] if i["subcategory"] == "MAP 1.1"
    )
    assert (item["status"], item["revision"]) == ("implemented", 1)
    assert sum(1 for i in client.get(url, headers=people["owner"]).json()["items"] if i["revision"]) == 1
