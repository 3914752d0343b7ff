"""The Casbin enforcer: role permissions from ``policies/policy.csv``, role grants from the database.

Each process builds an enforcer once and swaps in a fresh one whenever the database's authorization
revision moves (every grant or revoke bumps it in the same transaction), so a grant made through any
worker applies to every worker on its next request. Decisions are cached per enforcer instance; a new
instance starts with an empty cache, so a stale decision can never outlive a grant change.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass, field
from pathlib import Path

import casbin
from casbin import persist
from sqlmodel import Session, col, select

from app.identity.models import AuthzRevision, Role, RoleGrant, User
from app.settings import get_settings

ANY_SITE = "*"
# Users enter Casbin as ``user:<name>``. Casbin treats a subject equal to a role name as holding that role
# (``has_link(x, x)`` is true), so a bare user called ``admin`` or ``dpo`` would hold that role everywhere
# without any grant; a colon is never part of a username, so the prefix keeps the two name spaces apart.
USER_SUBJECT = "user:"
CACHE_LIMIT = 100_000  # decisions kept per enforcer; the cache is dropped whole when it grows past this


def subject(username: str) -> str:
    """The Casbin subject for a user."""
    return USER_SUBJECT + username


class PolicyError(RuntimeError):
    """``policies/`` holds a line Casbin or aireg cannot use."""


class GrantAdapter(persist.Adapter):  # type: ignore[misc]  # casbin ships no type information
    """Loads ``p`` lines from the policy file and ``g`` lines from the given grants; never writes."""

    def __init__(self, policy_file: Path, grants: list[tuple[str, str, str]]) -> None:
        self.policy_file = policy_file
        self.grants = grants

    def load_policy(self, model: casbin.Model) -> None:
        """Append the rules as field lists, as ``persist.load_policy_line`` does after parsing a text line."""
        # (parsing 5,000 grant lines as text was three quarters of the enforcer's build time)
        p_rules = model.model["p"]["p"].policy
        for line in read_policy_lines(self.policy_file):
            p_rules.append(line[1:])
        g_rules = model.model["g"]["g"].policy
        for username, role, site in self.grants:
            g_rules.append([subject(username), role, site])


def read_policy_lines(policy_file: Path) -> list[list[str]]:
    """The ``p`` lines of the policy file, validated (known roles, four fields)."""
    roles = {r.value for r in Role}
    lines: list[list[str]] = []
    with policy_file.open(newline="") as fh:
        for number, row in enumerate(csv.reader(fh, skipinitialspace=True), start=1):
            if not row or row[0].startswith("#"):
                continue
            row = [cell.strip() for cell in row]
            if row[0] != "p" or len(row) != 5:
                raise PolicyError(f"{policy_file}:{number}: expected 'p, role, site, resource, action'")
            if row[1] not in roles:
                raise PolicyError(f"{policy_file}:{number}: unknown role {row[1]!r}")
            lines.append(row)
    return lines


@dataclass
class Authorizer:
    """One immutable enforcer plus its decision cache, valid for one authorization revision."""

    revision: int
    enforcer: casbin.Enforcer
    grants_by_user: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _cache: dict[tuple[str, str, str, str], bool] = field(default_factory=dict)
    _enforce_lock: threading.Lock = field(default_factory=threading.Lock)

    def grants_of(self, username: str) -> list[tuple[str, str]]:
        """The ``(role, site)`` pairs a user holds."""
        return self.grants_by_user.get(username, [])

    def allowed(self, username: str, site: str, obj: str, act: str) -> bool:
        """Casbin's decision for ``(user, site, obj, act)``, cached for the life of this revision."""
        key = (username, site, obj, act)
        hit = self._cache.get(key)
        if hit is None:
            with self._enforce_lock:  # the enforcer's role manager is not documented as thread-safe
                hit = bool(self.enforcer.enforce(subject(username), site, obj, act))
            if len(self._cache) > CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        return hit


_current: Authorizer | None = None
_lock = threading.Lock()


def build_authorizer(session: Session, revision: int) -> Authorizer:
    """Read every grant and build a fresh enforcer for ``revision``."""
    settings = get_settings()
    rows = session.exec(
        select(User.username, RoleGrant.role, RoleGrant.site).join(
            User, col(User.id) == col(RoleGrant.user_id)
        )
    ).all()
    grants = [(u, r.value if hasattr(r, "value") else str(r), s) for u, r, s in rows]
    enforcer = casbin.Enforcer(
        str(settings.policies_dir / "model.conf"), GrantAdapter(settings.policies_dir / "policy.csv", grants)
    )
    by_user: dict[str, list[tuple[str, str]]] = {}
    for username, role, site in grants:
        by_user.setdefault(username, []).append((role, site))
    return Authorizer(revision=revision, enforcer=enforcer, grants_by_user=by_user)


def current_revision(session: Session) -> int:
    row = session.get(AuthzRevision, 1)
    return row.revision if row else 0


def get_authorizer(session: Session, revision: int | None = None) -> Authorizer:
    """The enforcer for the database's current authorization revision (rebuilt when it moved)."""
    global _current
    if revision is None:
        revision = current_revision(session)
    auth = _current
    if auth is not None and auth.revision == revision:
        return auth
    with _lock:
        if _current is None or _current.revision != revision:
            _current = build_authorizer(session, revision)
        return _current


def authorizer_for(revision: int) -> Authorizer:
    """The enforcer for ``revision``: the cached one when it matches, else rebuilt in a short read."""
    auth = _current
    if auth is not None and auth.revision == revision:
        return auth
    from app.db import session_scope

    with session_scope(write=False) as session:
        return get_authorizer(session, revision)


def reset_authorizer() -> None:
    """Forget the cached enforcer (tests, and after the policy file changed)."""
    global _current
    with _lock:
        _current = None


def bump_revision(session: Session) -> None:
    """Mark every worker's enforcer stale; call in the transaction that changes grants."""
    from app.audit.service import lock_chain

    lock_chain(session)  # chain head before the row: the lock order every writer uses
    row = session.get(AuthzRevision, 1, with_for_update=True)
    if row is None:
        session.add(AuthzRevision(id=1, revision=1))
    else:
        row.revision += 1
        session.add(row)
    session.flush()
