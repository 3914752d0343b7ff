"""A fully documented high-risk system and a bare one, created through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import DIGEST_NEW, DIGEST_OLD, NAME, RISKS, api


@pytest.fixture
def people(make_user: Callable[..., dict[str, str]], admin: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "admin": admin,
        "bob": make_user("bob", ("business_owner", "STR")),
        "carol": make_user("carol", ("compliance_officer", "STR")),
        "audrey": make_user("audrey", ("auditor", "STR")),
        "lyo_auditor": make_user("lyon", ("auditor", "LYO")),
        "ops": make_user("ops", ("mlops", "STR")),
    }


@pytest.fixture
def documented(client: Any, plant: Any, people: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A high-risk provider system with two versions, a risk assessment and one signed approval request."""
    admin = people["admin"]
    system = api(
        client,
        "POST",
        "/api/v1/systems",
        admin,
        201,
        json={
            "name": NAME,
            "purpose": "Detect porosity in weld seams of car bodies",
            "site": "STR",
            "line": "BODY1",
            "business_owner": "bob",
            "technical_owner": "ops",
            "ai_act_role": "provider",
            "lifecycle_stage": "pilot",
            "zone": "STR-CTL",
            "sl_achieved": {"FR1": 3, "FR2": 3, "FR3": 2, "FR4": 3, "FR5": 3, "FR6": 3, "FR7": 3},
            "license": "apache-2.0",
            "intended_use": "Flag seams for manual re-inspection on line BODY1",
            "out_of_scope_uses": "Releasing bodies without human inspection",
            "human_oversight": "An inspector confirms every flag | rejects with one click",
            "limitations": "Trained on steel only; aluminium seams untested",
            "training_data": "48,000 labelled seam images from 2024-2025, plant STR",
        },
    ).json()
    sid = system["id"]
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/versions",
        admin,
        201,
        json={"version": "1.0.0", "artifact_digest": DIGEST_OLD, "metrics": {"recall": 0.91}},
    )
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/versions",
        admin,
        201,
        json={
            "version": "1.1.0",
            "artifact_digest": DIGEST_NEW,
            "notes": "retrained with 2025 data",
            "metrics": {"recall": 0.973, "precision": 0.88},
        },
    )
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/classification",
        admin,
        201,
        json={"answers": {"annex3_uses": ["annex3.2"]}},
    )
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/risk-assessment",
        admin,
        201,
        json={"impact": 4, "likelihood": 3, "risks": RISKS},
    )
    approval = api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/approvals",
        people["bob"],
        201,
        json={"version": "1.1.0", "environment": "pilot", "justification": "Pilot on BODY1 for 3 months"},
    ).json()
    signed = api(
        client,
        "POST",
        f"/api/v1/approvals/{approval['id']}/signoffs",
        people["carol"],
        201,
        json={"role": "compliance_officer", "decision": "approve", "comment": "Annex IV draft reviewed"},
    ).json()
    return {"id": sid, "approval": signed, **people}


@pytest.fixture
def bare(client: Any, plant: Any, people: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A system with nothing but the required fields."""
    system = api(
        client,
        "POST",
        "/api/v1/systems",
        people["admin"],
        201,
        json={"name": "Bare", "purpose": "Predict spare-part demand", "site": "STR", "business_owner": "bob"},
    ).json()
    return {"id": system["id"], **people}
