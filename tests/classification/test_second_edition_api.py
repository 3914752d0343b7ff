"""Classification second edition through the API and the store: ``as_of``, the new roles, the effective role
kept per classification, first-edition classifications that keep loading with their catalogue version, and
the migration that adds the effective role (SQLite, and PostgreSQL when AIREG_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from app.classification.catalog import catalog_for
from tests.systems.helpers import assert_problem, audit_events, system_body

Headers = dict[str, str]
HIGH_RISK_HR = {"annex3_uses": ["annex3.4.a"]}
PREVIOUS_HEAD = "c4d2f8e9a310"
ART6_ROUTES = {"art6.1", "art6.2", "art6.3"}  # the Art. 6 paragraphs a basis names for its route
TEST_PG_URL = os.environ.get("AIREG_TEST_DATABASE_URL")

# What the first edition (catalogue 2026-07-27) stored for a deployer of a recruitment system, and for a
# Section B machine with a GPAI model: no effective_role, no as_of, art2.2 as a duty, art53 whole.
FIRST_EDITION_RESULTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "deployer",
        HIGH_RISK_HR,
        {
            "ai_act_class": "high_risk",
            "basis": ["art6.2", "annex3.4.a"],
            "transparency_obligations": [],
            "obligations": [
                {"id": "art4", "title": "AI literacy", "applies_from": "2025-02-02", "in_force": True},
                {"id": "art26", "title": "Deployer duties", "applies_from": "2027-12-02", "in_force": False},
            ],
            "gpai_obligations": [],
            "rationale": "Art. 6(2): it is used for Annex III point 4(a), so it is high-risk.",
            "catalog_version": "2026-07-27",
        },
    ),
    (
        "provider",
        {
            "annex1": {
                "legislation": "annex1.b.21",
                "safety_component": True,
                "third_party_conformity_assessment": True,
            },
            "gpai_model": True,
        },
        {
            "ai_act_class": "high_risk",
            "basis": ["art6.1", "annex1.b.21"],
            "transparency_obligations": [],
            "obligations": [
                {
                    "id": "art2.2",
                    "title": "Annex I Section B",
                    "applies_from": "2028-08-02",
                    "in_force": False,
                },
                {"id": "art4", "title": "AI literacy", "applies_from": "2025-02-02", "in_force": True},
            ],
            "gpai_obligations": ["art53"],
            "rationale": "Art. 6(1): ...",
            "catalog_version": "2026-07-27",
        },
    ),
]


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    """An admin, a compliance officer and a business owner (bob, who owns the systems) in STR."""
    make_user("bob", ("business_owner", "STR"))
    return {"admin": admin, "officer": make_user("cora", ("compliance_officer", "STR"))}


@pytest.fixture
def new_system(client: Any, people: dict[str, Headers]) -> Callable[..., dict[str, Any]]:
    """Create a system in STR through the API and return its body."""

    def factory(**overrides: Any) -> dict[str, Any]:
        r = client.post("/api/v1/systems", json=system_body(**overrides), headers=people["admin"])
        assert r.status_code == 201, r.text
        return r.json()

    return factory


# ------------------------------------------------------------------------------------------- preview


@pytest.mark.parametrize(
    ("as_of", "expected", "upcoming"),
    [("2026-12-01", "minimal_risk", ["art5.1.bb"]), ("2026-12-02", "prohibited", [])],
)
def test_preview_as_of_decides_with_what_applies_then(
    client: Any, people: dict[str, Headers], as_of: str, expected: str, upcoming: list[str]
) -> None:
    # Art. 5(1)(bb) counts from 2 Dec 2026 (Art. 113 as amended by Reg. (EU) 2026/1744).
    body = {"answers": {"prohibited_practices": ["art5.1.bb"]}, "as_of": as_of}
    res = client.post("/api/v1/classify", json=body, headers=people["officer"]).json()
    assert (res["ai_act_class"], res["as_of"]) == (expected, as_of)
    assert [u["id"] for u in res["upcoming"]] == upcoming
    assert res["effective_role"] == "provider"
    if upcoming:
        assert res["upcoming"][0]["applies_from"] == "2026-12-02"
        assert res["next_change"] == {"on": "2026-12-02", "ai_act_class": "prohibited"}


def test_preview_defaults_as_of_to_the_service_clock(client: Any, people: dict[str, Headers]) -> None:
    res = client.post("/api/v1/classify", json={"answers": {}}, headers=people["officer"]).json()
    assert res["as_of"] == datetime.now(UTC).date().isoformat()


@pytest.mark.parametrize("as_of", ["2026-13-01", "1999-12-31", "3000-01-01", "yesterday", 20261206])
def test_a_bad_as_of_is_422(client: Any, people: dict[str, Headers], as_of: Any) -> None:
    r = client.post("/api/v1/classify", json={"answers": {}, "as_of": as_of}, headers=people["officer"])
    assert_problem(r, 422, field="as_of")


@pytest.mark.parametrize("role", ["authorised_representative", "product_manufacturer"])
def test_preview_takes_the_new_roles(client: Any, people: dict[str, Headers], role: str) -> None:
    a1 = {"legislation": "annex1.a.4", "safety_component": True, "third_party_conformity_assessment": True}
    body = {"answers": {"annex1": a1}, "ai_act_role": role}
    res = client.post("/api/v1/classify", json=body, headers=people["officer"]).json()
    # Art. 22 binds the authorised representative; Art. 25(3) makes the product manufacturer the provider.
    expected = {"authorised_representative": ("authorised_representative", ["art22"])}
    role_after, ids = expected.get(role, ("provider", None))
    assert res["effective_role"] == role_after
    if ids is not None:
        assert [o["id"] for o in res["obligations"]] == ids
    else:
        assert "art25.3" in res["basis"] and "art16" in [o["id"] for o in res["obligations"]]


def test_preview_new_answer_keys_are_422_naming_the_field(client: Any, people: dict[str, Headers]) -> None:
    body = {
        "answers": {"scope_exclusions": ["art2.99"], "role_change": ["art25.3"], "gpai_open_source": True}
    }
    r = client.post("/api/v1/classify", json=body, headers=people["officer"])
    assert_problem(r, 422)
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", "answers", "scope_exclusions", 0] in locs
    assert ["body", "answers", "role_change", 0] in locs
    assert ["body", "answers", "gpai_open_source"] in locs


# ------------------------------------------------------------------------------------- stored results


def _row_effective_role(classification_id: int) -> str:
    from app.db import get_engine

    with get_engine().connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT effective_role FROM classification WHERE id = :id"), {"id": classification_id}
            ).scalar_one()
        )


def test_a_role_change_is_stored_with_the_classification(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system(ai_act_role="deployer", vendor="HRTech")
    url = f"/api/v1/systems/{system['id']}/classification"
    body = {"answers": {**HIGH_RISK_HR, "role_change": ["art25.1.b"]}, "as_of": "2026-12-06"}
    r = client.post(url, json=body, headers=people["officer"])
    assert r.status_code == 201, r.text
    made = r.json()
    # Art. 25(1)(b): the deployer that substantially modified it is now its provider, and still its deployer
    assert (made["ai_act_role"], made["effective_role"]) == ("deployer", "provider")
    assert {"art16", "art43", "art26"} <= {o["id"] for o in made["obligations"]}
    assert "art25.1.b" in made["basis"] and made["as_of"] == "2026-12-06"
    assert _row_effective_role(made["id"]) == "provider"
    assert client.get(url, headers=people["officer"]).json() == made
    history = client.get(f"{url}/history", headers=people["officer"]).json()["items"]
    assert [h["effective_role"] for h in history] == ["provider"]
    # a later classification without the change does not rewrite the earlier one
    again = client.post(url, json={"answers": HIGH_RISK_HR}, headers=people["officer"]).json()
    assert again["effective_role"] == "deployer"
    history = client.get(f"{url}/history", headers=people["officer"]).json()["items"]
    assert [h["effective_role"] for h in history] == ["deployer", "provider"]
    events = [
        e
        for e in audit_events(client, people["admin"], entity_id=system["id"])
        if e["action"] == "system.classify"
    ]
    assert sorted(e["after"]["effective_role"] for e in events) == ["deployer", "provider"]


@pytest.mark.parametrize("role", ["authorised_representative", "product_manufacturer"])
def test_systems_take_the_new_roles_and_classify_for_them(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]], role: str
) -> None:
    system = new_system(ai_act_role=role)
    assert system["ai_act_role"] == role
    url = f"/api/v1/systems/{system['id']}/classification"
    a1 = {"legislation": "annex1.a.11", "safety_component": True, "third_party_conformity_assessment": True}
    made = client.post(url, json={"answers": {"annex1": a1}}, headers=people["officer"]).json()
    assert made["ai_act_role"] == role
    assert made["effective_role"] == ("provider" if role == "product_manufacturer" else role)
    assert client.get(f"/api/v1/systems/{system['id']}", headers=people["officer"]).json()[
        "ai_act_class"
    ] == ("high_risk")


def test_an_out_of_scope_system_is_listed_as_such(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system(ai_act_role="provider")
    body = {"answers": {"scope_exclusions": ["art2.6"], **HIGH_RISK_HR}}
    made = client.post(f"/api/v1/systems/{system['id']}/classification", json=body, headers=people["officer"])
    assert made.json()["ai_act_class"] == "out_of_scope" and made.json()["obligations"] == []
    found = client.get("/api/v1/systems", params={"ai_act_class": "out_of_scope"}, headers=people["officer"])
    assert [s["id"] for s in found.json()["items"]] == [system["id"]]


def test_first_edition_classifications_keep_loading_with_their_catalogue(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    """Rows recorded under catalogue 2026-07-27 read back exactly as stored, with their version."""
    from app.classification.models import Classification
    from app.db import session_scope

    created = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    ids: dict[str, tuple[int, str]] = {}
    for role, answers, result in FIRST_EDITION_RESULTS:
        system = new_system(ai_act_role=role)
        with session_scope() as session:
            row = Classification(
                system_id=system["id"],
                answers=answers,
                ai_act_role=role,
                effective_role=role,  # what the migration writes for every earlier row
                ai_act_class=result["ai_act_class"],
                basis=result["basis"],
                result=result,
                catalog_version="2026-07-27",
                assessor="cora",
                created_at=created,
            )
            session.add(row)
            session.flush()
            ids[system["id"]] = (int(row.id or 0), role)
    for (system_id, (row_id, role)), (_, answers, result) in zip(
        ids.items(), FIRST_EDITION_RESULTS, strict=True
    ):
        got = client.get(f"/api/v1/systems/{system_id}/classification", headers=people["officer"])
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["id"] == row_id and body["catalog_version"] == "2026-07-27"
        assert (body["effective_role"], body["as_of"]) == (role, "2026-11-30")
        assert body["answers"] == answers
        for key in ("ai_act_class", "basis", "obligations", "gpai_obligations", "rationale"):
            stored = result[key]
            if key == "obligations":
                stored = [{"condition": None, **o} for o in stored]
            assert body[key] == stored, key
        assert body["upcoming"] == [] and body["next_change"] is None
        # and its own catalogue version still knows every identifier it names
        ai = catalog_for(body["catalog_version"]).ai_act
        for ident in [*body["basis"], *(o["id"] for o in body["obligations"]), *body["gpai_obligations"]]:
            assert ident in ART6_ROUTES or ai.kind_of(ident) is not None, ident
        history = client.get(f"/api/v1/systems/{system_id}/classification/history", headers=people["officer"])
        assert history.json()["items"] == [body]


# ------------------------------------------------------------------------------------------- migration


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """An empty database (SQLite file, or a fresh PostgreSQL schema when AIREG_TEST_DATABASE_URL is set)."""
    from app.db import make_engine

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'x13.db'}", None
        return
    if not TEST_PG_URL:
        pytest.skip("AIREG_TEST_DATABASE_URL is not set")
    schema = f"aireg_x13_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(TEST_PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield TEST_PG_URL, schema
    make_engine(TEST_PG_URL, schema).dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def _seed_previous_schema(conn: sa.Connection) -> None:
    """A site, a system and a first-edition classification, written in the schema before the migration."""
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    conn.execute(
        sa.text("INSERT INTO site (code, name, created_at, revision) VALUES ('STR', 'Strasbourg', :t, 1)"),
        {"t": now},
    )
    conn.execute(
        sa.text(
            "INSERT INTO ai_system (id, name, purpose, site, business_owner, ai_act_role, lifecycle_stage,"
            " personal_data, created_at, updated_at, revision)"
            " VALUES ('AIS-000001', 'CV screening', 'Rank applicants', 'STR', 'bob', 'deployer', 'pilot',"
            " false, :t, :t, 1)"
        ),
        {"t": now},
    )
    _, answers, result = FIRST_EDITION_RESULTS[0]
    conn.execute(
        sa.text(
            "INSERT INTO classification (system_id, answers, ai_act_role, ai_act_class, basis, result,"
            " catalog_version, assessor, created_at)"
            " VALUES ('AIS-000001', :answers, 'deployer', 'high_risk', :basis, :result, '2026-07-27',"
            " 'cora', :t)"
        ).bindparams(
            sa.bindparam("answers", type_=sa.JSON),
            sa.bindparam("basis", type_=sa.JSON),
            sa.bindparam("result", type_=sa.JSON),
        ),
        {"answers": answers, "basis": result["basis"], "result": result, "t": now},
    )


def test_the_migration_keeps_every_classification_and_gives_it_its_role(
    fresh_database: tuple[str, str | None],
) -> None:
    from sqlmodel import Session, select

    from app.classification import service
    from app.classification.models import Classification
    from app.db import alembic_config, make_engine

    url, schema = fresh_database
    cfg = alembic_config(url, schema)
    engine = make_engine(url, schema)
    command.upgrade(cfg, PREVIOUS_HEAD)
    with engine.begin() as conn:
        _seed_previous_schema(conn)
    command.upgrade(cfg, "head")
    with Session(engine) as session:
        [row] = session.exec(select(Classification)).all()
        assert (row.ai_act_role, row.effective_role, row.catalog_version) == (
            "deployer",
            "deployer",
            "2026-07-27",
        )
        read = service.classification_read(row)
        assert (read.effective_role, read.as_of, read.ai_act_class.value) == (
            "deployer",
            date(2026, 11, 30),
            "high_risk",
        )
    with engine.begin() as conn:
        # the wider column takes the new roles, and the system row and its foreign keys survived
        conn.execute(sa.text("UPDATE ai_system SET ai_act_role = 'authorised_representative'"))
        assert (
            conn.execute(
                sa.text("SELECT COUNT(*) FROM classification c JOIN ai_system s ON s.id = c.system_id")
            ).scalar_one()
            == 1
        )
    with pytest.raises(RuntimeError, match="cannot downgrade"):
        command.downgrade(cfg, PREVIOUS_HEAD)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ai_system SET ai_act_role = 'deployer'"))
    command.downgrade(cfg, PREVIOUS_HEAD)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("classification")}
        assert "effective_role" not in columns
        assert conn.execute(sa.text("SELECT ai_act_role FROM ai_system")).scalar_one() == "deployer"
    command.upgrade(cfg, "head")
    engine.dispose()
