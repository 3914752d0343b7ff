"""Text search of ``GET /systems?q=``: substrings of name or purpose, any case, through the search index
(SQLite FTS5 trigram table, PostgreSQL trigram indexes) and kept in step with every write."""

from __future__ import annotations

from typing import Any

import pytest

from app.systems import service

NAMES = [
    ("Weld inspection", "Detect weld seam defects"),
    ("Paint check", "Find paint runs; 100% of bodies"),
    ("Größenprüfung", "Prüft Maße von ÄUSSEREN Teilen"),
    ("O'Brien scheduler", 'Plans shifts for the "night" crew'),
    ("AB_test bench", "Compares model_a with model_b"),
    ("Ab", "x"),
]


@pytest.fixture(params=["index", "row by row"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each search both ways SQLite answers it: from the index outward, and checked row by row."""
    if request.param == "row by row":
        monkeypatch.setattr(service, "SEARCH_DRIVE_LIMIT", 0)
    return str(request.param)


@pytest.fixture
def systems(new_system: Any) -> dict[str, str]:
    return {name: new_system(name=name, purpose=purpose)["id"] for name, purpose in NAMES}


def search(client: Any, headers: dict[str, str], q: str, **params: Any) -> list[str]:
    r = client.get("/api/v1/systems", params={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == len(page["items"]) and page["total_exact"] is True
    return sorted(s["name"] for s in page["items"])


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("weld", ["Weld inspection"]),  # name and purpose: one system once
        ("eld sea", ["Weld inspection"]),  # a substring across a word boundary
        ("WELD SEAM", ["Weld inspection"]),
        ("pAINT", ["Paint check"]),
        ("100%", ["Paint check"]),  # % is a character, not a wildcard
        ("0%", ["Paint check"]),
        ("%", ["Paint check"]),
        ("_", ["AB_test bench"]),  # so is _
        ("l_a", ["AB_test bench"]),
        ("b_t", ["AB_test bench"]),
        ("o'b", ["O'Brien scheduler"]),  # quotes are characters too
        ("'", ["O'Brien scheduler"]),
        ('"night"', ["O'Brien scheduler"]),
        ('"', ["O'Brien scheduler"]),
        ("größen", ["Größenprüfung"]),
        ("prüf", ["Größenprüfung"]),
        ("maße", ["Größenprüfung"]),
        ("ab", ["AB_test bench", "Ab"]),  # 2 characters: matched row by row
        ("x", ["Ab"]),  # 1 character (its purpose)
        ("zzz", []),
        ("zz", []),
        ("model_c", []),
    ],
)
def test_search_finds_substrings_ignoring_case(client, admin, systems, path, q, expected):
    assert search(client, admin, q) == expected


def test_search_ignores_case_of_non_ascii_letters_from_3_characters(client, admin, systems, path, database):
    # the trigram index folds case beyond ASCII (as PostgreSQL's ILIKE does); SQLite's row-by-row LIKE, used
    # for 1-2 characters, folds ASCII letters only (README, "Searching systems")
    assert search(client, admin, "ÄUSSEREN") == ["Größenprüfung"]
    assert search(client, admin, "äusseren") == ["Größenprüfung"]
    assert search(client, admin, "GRÖSSE") == []  # no folding of ß to ss: a substring match, not a collation


def test_search_combines_with_filters(client, admin, systems, path):
    assert search(client, admin, "weld", site="STR") == ["Weld inspection"]
    assert search(client, admin, "weld", site="LYO") == []
    assert search(client, admin, "weld", lifecycle_stage="retired") == []


def test_renamed_system_is_found_by_its_new_name_at_once(client, admin, systems, path):
    sid = systems["Weld inspection"]
    r = client.patch(f"/api/v1/systems/{sid}", json={"name": "Seam tracker", "revision": 1}, headers=admin)
    assert r.status_code == 200, r.text
    assert search(client, admin, "seam tracker") == ["Seam tracker"]
    assert search(client, admin, "inspection") == []
    assert search(client, admin, "weld seam") == ["Seam tracker"]  # the purpose is unchanged
    r = client.patch(
        f"/api/v1/systems/{sid}", json={"purpose": "Follows the seam", "revision": 2}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert search(client, admin, "weld") == []
    assert search(client, admin, "follows") == ["Seam tracker"]


def test_deleted_system_is_not_found(client, admin, systems, path):
    sid = systems["Paint check"]
    assert client.delete(f"/api/v1/systems/{sid}", headers=admin).status_code == 204
    assert search(client, admin, "paint") == []
    assert search(client, admin, "%") == []


def test_total_is_counted_up_to_a_limit(client, admin, systems, monkeypatch):
    monkeypatch.setattr(service, "COUNT_LIMIT", 2)
    page = client.get("/api/v1/systems", params={"limit": 1}, headers=admin).json()
    assert (len(page["items"]), page["total"], page["total_exact"]) == (1, 2, False)
    page = client.get("/api/v1/systems", params={"limit": 1, "offset": 4}, headers=admin).json()
    assert (len(page["items"]), page["total"], page["total_exact"]) == (1, 6, True)
    page = client.get("/api/v1/systems", params={"q": "weld"}, headers=admin).json()
    assert (page["total"], page["total_exact"]) == (1, True)
