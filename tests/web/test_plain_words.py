"""Issue 14's list of what a new user hit: pages speak in sentences and labels, never in codes.

Validation errors name the field by its label (never pydantic's "String should ..."), times read "just now"
or "5 minutes ago" (never "just now ago"), roles show their labels ("OT security", never "ot_security" or
"ot security"), and an approval says where its security-level gap stands instead of "SL gap accepted".
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic_core.core_schema import ErrorType

from app.db import utcnow
from app.identity.models import Role
from app.web.forms import validation_message
from app.web.templating import LABELS, relative_time
from tests.web.helpers import WebClient
from tests.web.test_approvals import _request
from tests.web.test_system_pages import REGISTER

PYDANTIC_WORDS = ("String should", "Input should", "Field required", "Value error", "should match pattern")


# --- 1. validation errors as sentences ------------------------------------------------------------------


@pytest.mark.parametrize("kind", typing.get_args(ErrorType))
def test_every_pydantic_error_type_reads_as_a_sentence_naming_the_field(kind: str) -> None:
    message = validation_message("purpose", kind, {}, "Value error, must say what it does")
    assert message.startswith("Purpose") and message.endswith("."), message
    assert not any(words in message for words in PYDANTIC_WORDS), message


@pytest.mark.parametrize(
    ("field", "kind", "ctx", "expected"),
    [
        ("name", "string_too_short", {"min_length": 1}, "Name is required."),
        ("name", "missing", {}, "Name is required."),
        ("purpose", "string_too_long", {"max_length": 2000}, "Purpose must be at most 2000 characters."),
        ("as_of", "date_from_datetime_parsing", {}, "As of: enter a date like 2027-01-31."),
        (
            "environment",
            "enum",
            {"expected": "'pilot' or 'production'"},
            "Environment: choose one of: Pilot, Production.",
        ),
        (
            "sl_achieved.FR3",
            "less_than_equal",
            {"le": 4},
            "Achieved security level in FR3 must be at most 4.",
        ),
        (
            "conditions.1",
            "string_pattern_mismatch",
            {"pattern": "x"},
            "Condition 2 must be a metric, a comparison and a number, such as accuracy >= 0.95.",
        ),
    ],
)
def test_validation_messages_name_the_field_by_its_label(
    field: str, kind: str, ctx: dict[str, Any], expected: str
) -> None:
    assert validation_message(field, kind, ctx) == expected


def test_the_register_form_shows_sentences_not_pydantic_text(web: Callable[..., WebClient]) -> None:
    clara = web("clara")
    clara.get("/systems/new")
    page = clara.post("/systems/new", {**REGISTER, "name": "", "business_owner": "Bob Smith", "sl_FR2": "x"})
    assert page.status == 422
    assert page.texts("//*[@id='name-error']") == ["Name is required."]
    assert page.texts("//*[@id='business_owner-error']") == [
        "Business owner must be a username such as bob.owner."
    ]
    summary = page.text("//*[@id='form-errors']")
    assert "Name is required." in summary and "name: " not in summary
    assert not any(words in page.text() for words in PYDANTIC_WORDS)


def test_the_version_and_approval_forms_show_sentences(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    sid = make_system()["id"]
    bob = web("bob")
    bob.get(f"/systems/{sid}")
    page = bob.post(f"/systems/{sid}/versions", {"version": "not a version", "artifact_digest": "abc"})
    assert page.status == 422
    errors = page.texts("//p[@class='error-text']")
    assert "Version must be a version such as 1.2.0 (letters, digits, dots, hyphens, plus signs)." in errors
    assert "Artifact digest must be “sha256:” followed by 64 hexadecimal characters (0-9, a-f)." in errors
    assert not any(words in page.text() for words in PYDANTIC_WORDS)


# --- 2. relative times --------------------------------------------------------------------------------


def test_relative_times_read_naturally() -> None:
    now = utcnow()
    assert relative_time(now) == "just now"
    assert relative_time(now - timedelta(minutes=5, seconds=3)) == "5 minutes ago"
    assert relative_time(now - timedelta(hours=1, minutes=2)) == "1 hour ago"
    assert relative_time(now + timedelta(days=3, minutes=1)) == "in 3 days"
    assert relative_time(now + timedelta(seconds=20)) == "just now"


# --- 3. role labels -----------------------------------------------------------------------------------


def test_every_role_has_a_label_without_codes() -> None:
    assert {LABELS["role"][r.value] for r in Role} == {
        "Admin",
        "Compliance officer",
        "Risk officer",
        "OT security",
        "Safety engineer",
        "Data protection officer",
        "Business owner",
        "Auditor",
        "MLOps",
    }


def test_a_new_request_names_its_signers_and_its_age_in_words(
    web: Callable[..., WebClient], ready: Callable[..., str]
) -> None:
    sid = ready(zone="STR-CTL", sl_achieved={f"FR{i}": 2 for i in range(1, 8)})
    bob = web("bob")
    aid = _request(bob, sid)
    page = bob.get(f"/approvals/{aid}")
    flash = page.text("//*[contains(@class, 'flash')]")
    assert "waits for sign-off by: Business owner, Compliance officer, OT security." in flash
    assert "just now ago" not in page.text() and "(just now)" in page.text()
    otto = web("otto")
    inbox = otto.get("/inbox")
    assert "as OT security." in inbox.text()
    assert "OT security (STR)" in inbox.text("//header")
    assert "ot security" not in inbox.text() and "ot_security" not in inbox.text()
    assert "just now ago" not in inbox.text() and "requested by bob just now" in inbox.text()
    _ = otto.post(
        f"/approvals/{aid}/signoffs", {"role": "ot_security", "decision": "approve", "comment": "FW"}
    )
    twice = web("clara")
    twice.get(f"/approvals/{aid}")
    again = twice.post(f"/approvals/{aid}/signoffs", {"role": "ot_security", "decision": "approve"})
    assert "ot_security" not in again.text()


# --- 5. the security-level gap says where it stands -----------------------------------------------------


def test_the_sl_gap_is_awaiting_until_ot_security_signs_then_accepted(
    web: Callable[..., WebClient], ready: Callable[..., str]
) -> None:
    sid = ready(zone="STR-CTL", sl_achieved={"FR1": 3, **{f"FR{i}": 2 for i in range(2, 8)}})
    aid = _request(web("bob"), sid)
    frs = "FR2, FR3, FR4, FR5, FR6, FR7"
    clara = web("clara")
    before = clara.get(f"/approvals/{aid}")
    assert "SL gap accepted" not in before.text()
    assert f"Security-level gap in {frs}: awaiting OT security sign-off" in before.text()
    clara.post(f"/approvals/{aid}/signoffs", {"role": "compliance_officer", "decision": "approve"})
    still = clara.get(f"/approvals/{aid}")
    assert f"Security-level gap in {frs}: awaiting OT security sign-off" in still.text()
    otto = web("otto")
    assert f"Security-level gap in {frs}: awaiting OT security sign-off" in otto.get("/inbox").text()
    signed = otto.post(
        f"/approvals/{aid}/signoffs",
        {"role": "ot_security", "decision": "approve", "comment": "Firewall rules and monitoring"},
    )
    assert signed.status == 200
    after = clara.get(f"/approvals/{aid}").text()
    assert (
        f"Security-level gap in {frs}: accepted with compensating countermeasures by the OT security "
        in after
    )
    assert "awaiting OT security" not in after


def test_an_sl_gap_refused_by_ot_security_is_not_accepted(
    web: Callable[..., WebClient], ready: Callable[..., str]
) -> None:
    sid = ready(zone="STR-CTL", sl_achieved={f"FR{i}": 2 for i in range(1, 8)})
    aid = _request(web("bob"), sid)
    otto = web("otto")
    otto.get(f"/approvals/{aid}")
    otto.post(
        f"/approvals/{aid}/signoffs", {"role": "ot_security", "decision": "reject", "comment": "No zone FW"}
    )
    text = web("clara").get(f"/approvals/{aid}").text()
    assert "not accepted (OT security rejected the request)" in text and "accepted with" not in text
