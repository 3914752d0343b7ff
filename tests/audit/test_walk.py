"""The verification walk over many batches: faults past the first batch are named at the right event, and
events whose content the fast path cannot rebuild byte for byte still verify through the canonical encoder."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.audit.models import ChainVerification
from app.audit.service import record_many, verify_chain
from app.db import session_scope
from tests.audit.owner import owner_sql

EVENTS = 2500
BATCH = 1000  # so the chain spans three batches


def _append(count: int, after: Any = None) -> None:
    events = [
        {
            "actor": f"user{n % 7}",
            "action": "system.update",
            "entity_type": "system",
            "entity_id": f"AIS-{n:06d}",
            "site": f"S{n % 3}",
            "before": {"name": f"System {n}", "rev": n},
            "after": after if after is not None else {"name": f"System {n + 1}", "rev": n + 1, "ok": True},
        }
        for n in range(count)
    ]
    with session_scope() as session:
        record_many(session, events)


def _verify() -> ChainVerification:
    with session_scope(write=False) as session:
        return verify_chain(session, batch=BATCH)


@pytest.fixture
def chain(db: None) -> None:
    for _ in range(5):  # five transactions, five time stamps
        _append(EVENTS // 5)
    result = _verify()
    assert result.valid and result.events == EVENTS, result


@pytest.mark.parametrize("seq", [BATCH + 1, 1500, 2 * BATCH, EVENTS])
def test_a_tampered_event_beyond_the_first_batch_is_named(chain: None, seq: int) -> None:
    owner_sql("UPDATE audit_event SET after = :v WHERE seq = :seq", v=json.dumps({"name": "forged"}), seq=seq)
    result = _verify()
    assert not result.valid
    assert (result.first_bad_seq, result.events) == (seq, seq - 1)
    assert result.reason == "event content does not match its hash"


@pytest.mark.parametrize("column", ["actor", "ts", "prev_hash", "hash"])
def test_every_covered_column_is_checked_past_the_first_batch(chain: None, column: str) -> None:
    value = {
        "actor": "'mallory'",
        "ts": "ts",
        "prev_hash": "hash",
        "hash": "CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END || substr(hash, 2)",
    }[column]
    if column == "ts":  # the time of the first transaction
        owner_sql("UPDATE audit_event SET ts = (SELECT ts FROM audit_event WHERE seq = 1) WHERE seq = 1800")
    else:
        owner_sql(f"UPDATE audit_event SET {column} = {value} WHERE seq = 1800")
    result = _verify()
    assert (result.valid, result.first_bad_seq) == (False, 1800), result
    if column == "prev_hash":
        assert result.reason == "previous-hash link does not match the preceding event"


@pytest.mark.parametrize("seq", [BATCH, BATCH + 1, 1700])
def test_a_cut_event_is_a_gap_at_its_place(chain: None, seq: int) -> None:
    owner_sql("DELETE FROM audit_event WHERE seq = :seq", seq=seq)
    result = _verify()
    assert (result.valid, result.first_bad_seq, result.events) == (False, seq, seq - 1)
    assert result.reason == f"sequence gap: expected {seq}, found {seq + 1}"


def test_a_cut_whole_batch_is_a_gap_at_its_first_event(chain: None) -> None:
    owner_sql("DELETE FROM audit_event WHERE seq > :a AND seq <= :b", a=BATCH, b=2 * BATCH + 5)
    result = _verify()
    assert (result.valid, result.first_bad_seq, result.events) == (False, BATCH + 1, BATCH)
    assert result.reason == f"sequence gap: expected {BATCH + 1}, found {2 * BATCH + 6}"


@pytest.mark.parametrize(
    "after",
    [
        {"tiny": 1e-05, "small": -2.5e-07},  # orjson writes these floats differently from the canonical form
        {"big": 2**70},  # beyond orjson's integers
        {
            "name": "Système ☃ \u2028 \x7f",
            "ctl": "\x00\t\n",
            "nested": {"b": [1, {"z": 1, "a": 2}], "a": None},
        },
    ],
    ids=["small-floats", "big-int", "text"],
)
def test_content_the_fast_path_cannot_rebuild_still_verifies(db: None, after: dict[str, Any]) -> None:
    _append(BATCH + 10)
    _append(3, after=after)  # in the second batch
    _append(5)
    assert _verify().valid
    owner_sql("UPDATE audit_event SET actor = 'x' WHERE seq = :seq", seq=BATCH + 12)
    result = _verify()
    assert (result.valid, result.first_bad_seq) == (False, BATCH + 12)


def test_a_big_float_swapped_for_an_integer_that_rounds_to_it_is_found(db: None) -> None:
    """orjson reads 18446744073709551999 as the float 1.8446744073709552e19 and writes that float as the
    canonical encoder does: without the slow path for long digit runs, the swap would keep the hash."""
    _append(BATCH + 10)
    _append(1, after={"m": 1.8446744073709552e19})  # seq BATCH + 11, in the second batch
    _append(5)
    assert _verify().valid
    owner_sql(
        "UPDATE audit_event SET after = :v WHERE seq = :seq", v='{"m": 18446744073709551999}', seq=BATCH + 11
    )
    result = _verify()
    assert (result.valid, result.first_bad_seq) == (False, BATCH + 11)
    assert result.reason == "event content does not match its hash"
