"""Compliance frameworks as data: the shipped files, the crosswalk, the API, a new file, broken files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.classification.catalog import CatalogError, get_catalog
from app.compliance.frameworks import FRAMEWORKS_DIR, Frameworks, get_frameworks
from app.identity.models import Role
from app.settings import get_settings
from tests.systems.helpers import assert_problem

Headers = dict[str, str]

# ISO/IEC 42001:2023 Annex A: 9 groups, 38 controls (docs: ../shared/reference/regulatory.md, section D).
ANNEX_A = [
    *("A.2.2", "A.2.3", "A.2.4"),
    *("A.3.2", "A.3.3"),
    *("A.4.2", "A.4.3", "A.4.4", "A.4.5", "A.4.6"),
    *("A.5.2", "A.5.3", "A.5.4", "A.5.5"),
    *("A.6.1.2", "A.6.1.3", "A.6.2.2", "A.6.2.3", "A.6.2.4", "A.6.2.5", "A.6.2.6", "A.6.2.7", "A.6.2.8"),
    *("A.7.2", "A.7.3", "A.7.4", "A.7.5", "A.7.6"),
    *("A.8.2", "A.8.3", "A.8.4", "A.8.5"),
    *("A.9.2", "A.9.3", "A.9.4"),
    *("A.10.2", "A.10.3", "A.10.4"),
]
CLAUSES = [
    *("4.1", "4.2", "4.3", "4.4", "5.1", "5.2", "5.3"),
    *("6.1.1", "6.1.2", "6.1.3", "6.1.4", "6.2", "6.3"),
    *("7.1", "7.2", "7.3", "7.4", "7.5", "8.1", "8.2", "8.3", "8.4", "9.1", "9.2", "9.3", "10.1", "10.2"),
]
SHIPPED = ["ai_act", "iso42001", "nist_ai_rmf"]

ACME = """
title: ACME responsible AI rules
version: "2026.1"
controls:
  - id: ACME-1
    title: Every AI system has a named owner
    maps_to: ["iso42001:A.3.2"]
  - id: ACME-2
    title: Models are validated again every quarter
    applies_from: 2027-01-01
    maps_to: ["iso42001:A.6.2.4", "ai_act:art15"]
"""


def _reload() -> None:
    get_settings.cache_clear()
    get_catalog.cache_clear()


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the catalogue in force, made the one in force (AIREG_RISK_CATALOG_DIR); restored after."""
    saved = {k: os.environ.get(k) for k in ("AIREG_RISK_CATALOG_DIR", "AIREG_ADOPTED_FRAMEWORKS")}
    target = tmp_path / "catalog"
    shutil.copytree(get_settings().risk_catalog_dir, target)
    os.environ["AIREG_RISK_CATALOG_DIR"] = str(target)
    _reload()
    yield target
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _reload()


def _edit(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _control(data: dict[str, Any], control_id: str) -> dict[str, Any]:
    return next(c for c in data["controls"] if c["id"] == control_id)


def _start_fails(*expected: str) -> str:
    """Start the service; it must refuse, with a message holding every ``expected`` part."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with pytest.raises(CatalogError) as caught, TestClient(create_app()):
        pass
    message = str(caught.value)
    for part in expected:
        assert part in message, message
    return message


@pytest.fixture
def frameworks() -> Frameworks:
    return get_frameworks()


# ------------------------------------------------------------------------------------------ the shipped files


def test_the_shipped_frameworks_are_adopted_by_default(frameworks: Frameworks) -> None:
    assert [f.id for f in frameworks.frameworks] == SHIPPED
    assert frameworks.adopted == tuple(SHIPPED)


def test_iso42001_has_the_38_annex_a_controls_and_the_clauses_organisation_wide(
    frameworks: Frameworks,
) -> None:
    iso = frameworks.by_id["iso42001"]
    annex_a = [c.id for c in iso.controls if c.id.startswith("A.")]
    assert len(annex_a) == 38
    assert annex_a == ANNEX_A
    clauses = [c for c in iso.controls if not c.id.startswith("A.")]
    assert [c.id for c in clauses] == CLAUSES
    assert all(c.organisation_wide for c in clauses)
    assert {c.group for c in iso.controls} == {g.id for g in iso.groups}
    assert all(c.title and len(c.title) <= 120 for c in iso.controls)


def test_nist_ai_rmf_has_the_72_subcategories_of_the_catalogue(frameworks: Frameworks) -> None:
    nist = frameworks.by_id["nist_ai_rmf"]
    subcategories = get_catalog().nist.subcategories
    assert len(nist.controls) == 72
    assert [(c.id, c.title, c.group) for c in nist.controls] == [
        (s.id, s.title, s.category) for s in subcategories
    ]
    assert nist.controls[0].id == "GOVERN 1.1" and nist.controls[-1].id == "MANAGE 4.3"
    assert {c.id for c in nist.controls if c.organisation_wide} == {
        c.id for c in nist.controls if c.id.startswith("GOVERN ")
    }


def test_ai_act_duties_are_the_catalogues_with_its_titles_roles_and_dates(frameworks: Frameworks) -> None:
    """Every duty the classification can cite is a control, joined from the catalogue, in article order."""
    ai = get_catalog().ai_act
    act = frameworks.by_id["ai_act"]
    duties = {
        e.id: e for e in (*ai.prohibited_practices, *ai.obligations, *ai.transparency_duties, *ai.gpai_duties)
    }
    assert {c.id for c in act.controls} == set(duties)
    for control in act.controls:
        assert control.title == duties[control.id].title
    by_id = act.control_by_id
    assert by_id["art4"].organisation_wide and by_id["art4"].applies_from.isoformat() == "2025-02-02"
    assert [c.id for c in act.controls if c.organisation_wide] == ["art4"]
    assert by_id["art9"].binds == ("provider",) and by_id["art9"].applies_from.isoformat() == "2027-12-02"
    assert by_id["art50.1"].applies_from == ai.transparency_by_id["art50.1"].applies_from
    ids = [c.id for c in act.controls]
    assert (
        ids.index("art4") < ids.index("art9") < ids.index("art10") < ids.index("art50.1") < ids.index("art72")
    )
    assert act.version == (get_catalog().legal_basis_version or get_catalog().catalog_version)


def test_catalogue_backed_files_repeat_no_catalogue_fact() -> None:
    """One definition: the AI Act and NIST files hold ids and annotations, never a title, role or date."""
    directory = get_settings().risk_catalog_dir / FRAMEWORKS_DIR
    for name in ("ai_act.yaml", "nist_ai_rmf.yaml"):
        data = yaml.safe_load((directory / name).read_text())
        assert data["catalog"]
        for control in data["controls"]:
            assert not {"title", "binds", "applies_from", "group"} & set(control), (name, control)
    assert "version" not in yaml.safe_load((directory / "ai_act.yaml").read_text())


def test_every_link_resolves_and_is_symmetric(frameworks: Frameworks) -> None:
    links = 0
    for framework in frameworks.frameworks:
        for control in framework.controls:
            assert len(set(control.maps_to)) == len(control.maps_to)
            for target in control.maps_to:
                other = frameworks.control(target)
                assert other is not None, (framework.id, control.id, target)
                assert not target.startswith(f"{framework.id}:")
                assert f"{framework.id}:{control.id}" in other.maps_to, (framework.id, control.id, target)
                links += 1
    assert links > 60
    assert {"iso42001:A.6.2.4", "nist_ai_rmf:MAP 5.1"} <= set(frameworks.control("ai_act:art9").maps_to)


# ---------------------------------------------------------------------------------------------------- API


def test_list_of_frameworks(client: Any, admin: Headers) -> None:
    r = client.get("/api/v1/frameworks", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["id"] for f in body] == SHIPPED
    for item in body:
        assert set(item) == {"id", "title", "version", "controls", "adopted"}
        assert item["title"] and item["version"] and item["adopted"] is True
    counts = {f["id"]: f["controls"] for f in body}
    assert counts["iso42001"] == 38 + len(CLAUSES)
    assert counts["nist_ai_rmf"] == 72
    assert counts["ai_act"] == len(get_frameworks().by_id["ai_act"].controls)


def test_one_framework_with_its_controls_and_links(client: Any, admin: Headers) -> None:
    r = client.get("/api/v1/frameworks/iso42001", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["version"], body["adopted"]) == ("iso42001", "2023", True)
    assert len(body["controls"]) == 38 + len(CLAUSES)
    control = next(c for c in body["controls"] if c["id"] == "A.6.2.4")
    assert {"id", "title", "maps_to"} <= set(control)
    assert "ai_act:art9" in control["maps_to"] and "nist_ai_rmf:MEASURE 2.1" in control["maps_to"]
    act = client.get("/api/v1/frameworks/ai_act", headers=admin).json()
    art4 = next(c for c in act["controls"] if c["id"] == "art4")
    assert art4["organisation_wide"] is True and art4["applies_from"] == "2025-02-02"
    assert "iso42001:7.3" in art4["maps_to"]  # declared in iso42001.yaml, made symmetric by the loader
    nist = client.get("/api/v1/frameworks/nist_ai_rmf", headers=admin).json()
    assert nist["controls"][0]["id"] == "GOVERN 1.1" and nist["controls"][0]["group"] == "GOVERN 1"


def test_unknown_framework_is_a_404_problem(client: Any, admin: Headers) -> None:
    problem = assert_problem(client.get("/api/v1/frameworks/iso27001", headers=admin), 404)
    assert "iso27001" in problem["detail"]


def test_frameworks_need_authentication(client: Any) -> None:
    assert_problem(client.get("/api/v1/frameworks"), 401)
    assert_problem(client.get("/api/v1/frameworks/iso42001"), 401)


def test_a_user_without_a_role_may_not_read_frameworks(
    client: Any, make_user: Callable[..., Headers]
) -> None:
    nobody = make_user("nobody")
    assert_problem(client.get("/api/v1/frameworks", headers=nobody), 403)
    assert_problem(client.get("/api/v1/frameworks/iso42001", headers=nobody), 403)


def test_every_role_that_reads_systems_reads_frameworks(
    client: Any, make_user: Callable[..., Headers], plant: dict[str, Any]
) -> None:
    for role in Role:
        headers = make_user(f"fw-{role.value.replace('_', '-')}", (role.value, "LYO"))
        assert client.get("/api/v1/frameworks", headers=headers).status_code == 200, role
        assert client.get("/api/v1/frameworks/ai_act", headers=headers).status_code == 200, role


# ----------------------------------------------------------------------------------- a new framework file


def test_a_new_framework_file_is_served_without_code(
    db: None, make_user: Callable[..., Headers], catalog_copy: Path
) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    (catalog_copy / FRAMEWORKS_DIR / "acme.yaml").write_text(ACME)
    _reload()
    headers = make_user("reader", ("admin", "*"))
    with TestClient(create_app()) as client:
        listed = {f["id"]: f for f in client.get("/api/v1/frameworks", headers=headers).json()}
        assert listed["acme"] == {
            "id": "acme",
            "title": "ACME responsible AI rules",
            "version": "2026.1",
            "controls": 2,
            "adopted": False,
        }
        acme = client.get("/api/v1/frameworks/acme", headers=headers).json()
        assert [(c["id"], c["maps_to"]) for c in acme["controls"]] == [
            ("ACME-1", ["iso42001:A.3.2"]),
            ("ACME-2", ["ai_act:art15", "iso42001:A.6.2.4"]),
        ]
        assert acme["controls"][1]["applies_from"] == "2027-01-01"
        iso = client.get("/api/v1/frameworks/iso42001", headers=headers).json()
        a624 = next(c for c in iso["controls"] if c["id"] == "A.6.2.4")
        assert a624["maps_to"][0] == "acme:ACME-2"  # the reverse link, with no edit of iso42001.yaml

    os.environ["AIREG_ADOPTED_FRAMEWORKS"] = "ai_act, acme"
    _reload()
    with TestClient(create_app()) as client:
        adopted = {f["id"]: f["adopted"] for f in client.get("/api/v1/frameworks", headers=headers).json()}
        assert adopted == {"acme": True, "ai_act": True, "iso42001": False, "nist_ai_rmf": False}


# ----------------------------------------------------------------------------------------- broken files


def _iso(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda d: _edit(d / "iso42001.yaml", edit)


BROKEN: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "dangling_maps_to": (
        _iso(lambda data: _control(data, "A.2.2")["maps_to"].append("nist_ai_rmf:GOVERN 9.9")),
        ("iso42001.yaml: controls[27].maps_to[1]", "no control 'GOVERN 9.9' in framework nist_ai_rmf"),
    ),
    "maps_to_unknown_framework": (
        _iso(lambda data: _control(data, "A.2.2")["maps_to"].append("iso27001:A.5.1")),
        ("iso42001.yaml: controls[27].maps_to[1]", "unknown framework 'iso27001'"),
    ),
    "maps_to_without_framework": (
        _iso(lambda data: _control(data, "A.2.2")["maps_to"].append("art9")),
        ("iso42001.yaml: controls[27].maps_to[1]", "'art9' is not 'framework:control'"),
    ),
    "maps_to_own_framework": (
        _iso(lambda data: _control(data, "A.2.2")["maps_to"].append("iso42001:5.2")),
        ("iso42001.yaml: controls[27].maps_to[1]", "same framework"),
    ),
    "duplicate_id": (
        _iso(lambda data: data["controls"].append({"id": "A.2.2", "title": "Again"})),
        ("iso42001.yaml: controls[65].id: duplicate id 'A.2.2' (first at controls[27])",),
    ),
    "unknown_key": (
        _iso(lambda data: _control(data, "A.3.2").update(colour="blue")),
        ("iso42001.yaml: controls[30].colour: unknown key",),
    ),
    "unknown_top_level_key": (
        _iso(lambda data: data.update(publisher="ISO")),
        ("iso42001.yaml: publisher: unknown key",),
    ),
    "bad_date": (
        _iso(lambda data: _control(data, "A.3.2").update(applies_from="2026-02-30")),
        ("iso42001.yaml: controls[30].applies_from: invalid date '2026-02-30'",),
    ),
    "unknown_group": (
        _iso(lambda data: _control(data, "A.3.2").update(group="A.99")),
        ("iso42001.yaml: controls[30].group: unknown group 'A.99'",),
    ),
    "unknown_role": (
        _iso(lambda data: _control(data, "A.3.2").update(binds=["regulator"])),
        ("iso42001.yaml: controls[30].binds[0]: unknown role 'regulator'",),
    ),
    "link_declared_twice": (
        lambda d: _edit(
            d / "nist_ai_rmf.yaml",
            lambda data: _control(data, "GOVERN 1.2").setdefault("maps_to", []).append("iso42001:A.2.2"),
        ),
        ("nist_ai_rmf.yaml: controls[1].maps_to[0]", "already declared at", "iso42001.yaml controls[27]"),
    ),
    "catalogue_fact_repeated": (
        lambda d: _edit(
            d / "ai_act.yaml", lambda data: data["controls"].append({"id": "art9", "title": "Manage risk"})
        ),
        ("ai_act.yaml: controls[1].title: held by the catalogue", "do not repeat it here"),
    ),
    "not_in_the_catalogue": (
        lambda d: _edit(d / "ai_act.yaml", lambda data: data["controls"].append({"id": "art999"})),
        ("ai_act.yaml: controls[1].id: 'art999' is not one of the catalogue's AI Act duties",),
    ),
    "classes_on_the_ai_act": (
        lambda d: _edit(d / "ai_act.yaml", lambda data: data.update(applies_to_classes=["high_risk"])),
        ("ai_act.yaml: applies_to_classes: the AI Act duties of a system follow its classification",),
    ),
    "unknown_class": (
        _iso(lambda data: data.update(applies_to_classes=["very_high_risk"])),
        ("iso42001.yaml: applies_to_classes[0]",),
    ),
    "unknown_owner_role": (
        _iso(lambda data: data.update(owner_role="mlops")),
        ("iso42001.yaml: owner_role: unknown role 'mlops'",),
    ),
    "missing_title": (
        _iso(lambda data: _control(data, "A.3.2").pop("title")),
        ("iso42001.yaml: controls[30].title: missing required key",),
    ),
    "invalid_yaml": (
        lambda d: (d / "iso42001.yaml").write_text("title: [unclosed\n"),
        ("iso42001.yaml: line", "invalid YAML"),
    ),
    "bad_file_name": (
        lambda d: (d / "ACME rules.yaml").write_text(ACME),
        ("ACME rules.yaml: the file name is the framework id",),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_framework_file_stops_the_service_naming_file_and_key(
    db: None, catalog_copy: Path, case: str
) -> None:
    change, expected = BROKEN[case]
    change(catalog_copy / FRAMEWORKS_DIR)
    _reload()
    message = _start_fails(*expected)
    assert str(catalog_copy / FRAMEWORKS_DIR) in message or "frameworks/" in message


def test_a_broken_file_does_not_flood_the_links_into_it(db: None, catalog_copy: Path) -> None:
    """Links to a framework whose file is broken are not reported again: the file's own problem is enough."""
    (catalog_copy / FRAMEWORKS_DIR / "ai_act.yaml").write_text(
        "title: AI Act\ncatalog: ai_act\ncolour: red\n"
    )
    _reload()
    message = _start_fails("ai_act.yaml: colour: unknown key")
    assert "unknown framework 'ai_act'" not in message
    assert len(message.splitlines()) == 2


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("ai_act,iso27001", ("AIREG_ADOPTED_FRAMEWORKS: unknown framework 'iso27001'", "ai_act, iso42001")),
        ("ai_act, ai_act", ("AIREG_ADOPTED_FRAMEWORKS: 'ai_act' is named twice",)),
    ],
)
def test_an_unknown_adopted_framework_stops_the_service(
    db: None, catalog_copy: Path, setting: str, expected: tuple[str, ...]
) -> None:
    os.environ["AIREG_ADOPTED_FRAMEWORKS"] = setting
    _reload()
    _start_fails(*expected)


def test_a_malformed_adopted_setting_is_refused(catalog_copy: Path) -> None:
    from pydantic import ValidationError

    os.environ["AIREG_ADOPTED_FRAMEWORKS"] = "ai_act;iso42001"
    _reload()
    with pytest.raises(ValidationError, match="adopted_frameworks"):
        get_settings()
