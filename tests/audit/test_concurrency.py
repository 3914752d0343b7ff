"""Appends from many threads at once (on SQLite and on PostgreSQL) never fork the chain or leave a gap."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.audit.models import AuditEvent
from app.audit.service import record, verify_chain
from app.db import session_scope
from app.identity import service as identity
from app.identity.models import Role, UserCreate

THREADS = 8
ROUNDS = 12


def _run_threads(work) -> list[BaseException]:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def runner(n: int) -> None:
        try:
            start.wait()
            for i in range(ROUNDS):
                work(n, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


def _assert_whole_chain(expected: int) -> None:
    with session_scope(write=False) as session:
        result = verify_chain(session)
        seqs = session.execute(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).scalars().all()
        prevs = session.execute(sa.select(AuditEvent.prev_hash)).scalars().all()
    assert result.valid, result
    assert result.events == expected
    assert seqs == list(range(1, expected + 1))
    assert len(set(prevs)) == len(prevs), "two events name the same predecessor: the chain forked"


def test_parallel_appends_keep_one_chain(db) -> None:  # type: ignore[no-untyped-def]
    def work(n: int, i: int) -> None:
        with session_scope() as session:
            record(
                session,
                actor=f"t{n}",
                action="test.append",
                entity_type="t",
                entity_id=f"{n}-{i}",
                after={"n": n, "i": i},
            )
            if i % 3 == 0:  # a transaction writing several events keeps them together
                record(session, actor=f"t{n}", action="test.append2", entity_type="t", entity_id=f"{n}-{i}")

    errors = _run_threads(work)
    assert errors == []
    per_thread = ROUNDS + len(range(0, ROUNDS, 3))
    _assert_whole_chain(THREADS * per_thread)
    with session_scope(write=False) as session:
        rows = session.execute(
            sa.select(AuditEvent.seq, AuditEvent.action, AuditEvent.entity_id).order_by(AuditEvent.seq)
        ).all()
    # the two events of one transaction are adjacent: nobody else's append slipped between them
    for seq, action, entity_id in rows:
        if action == "test.append2":
            assert rows[seq - 2][1] == "test.append" and rows[seq - 2][2] == entity_id


def test_parallel_grants_and_user_creation(db) -> None:  # type: ignore[no-untyped-def]
    """Mixed transactions (new user + grants, and grants alone) neither deadlock nor fork the chain."""
    with session_scope() as session:
        identity.create_user(session, UserCreate(username="shared"), actor="test")

    def work(n: int, i: int) -> None:
        with session_scope() as session:
            if n % 2:
                name = f"u{n}x{i}"
                identity.create_user(session, UserCreate(username=name), actor="test")
                identity.grant_role(session, name, Role.auditor, "*", actor="test")
            else:
                role = list(Role)[i % len(Role)]
                identity.grant_role(session, "shared", role, "*", actor="test") if n == 0 and i < len(
                    Role
                ) else record(session, actor="t", action="test.append", entity_type="t", entity_id=str(i))
                identity.issue_token(session, "shared", name=f"t{n}-{i}", expires_days=1, actor="test")

    errors = _run_threads(work)
    assert errors == []
    with session_scope(write=False) as session:
        total = session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        grants = session.execute(sa.text("SELECT COUNT(*) FROM role_grant")).scalar_one()
    odd = THREADS // 2
    assert grants == odd * ROUNDS + min(ROUNDS, len(Role))
    assert total == 1 + odd * ROUNDS * 2 + (THREADS - odd) * ROUNDS * 2
    _assert_whole_chain(total)
