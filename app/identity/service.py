"""Users, passwords, API tokens and role grants."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pwdlib import PasswordHash
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.db import paginate, utcnow
from app.errors import Conflict, NotFound, Unauthorized, Unprocessable
from app.http import PageParams
from app.identity.authz import ANY_SITE, bump_revision
from app.identity.models import (
    ApiToken,
    AuthzRevision,
    GrantRead,
    Role,
    RoleGrant,
    TokenIssued,
    TokenRead,
    User,
    UserCreate,
    UserRead,
    WebSession,
)

TOKEN_PREFIX = "aireg_"
_password_hash = PasswordHash.recommended()  # argon2id
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Check a password in constant time; a user without a password never matches."""
    if not hashed:
        _password_hash.verify(password, _DUMMY_HASH)  # same cost either way
        return False
    return _password_hash.verify(password, hashed)


_DUMMY_HASH = _password_hash.hash("not-a-real-password-0000")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user


def stored_id(user: User) -> int:
    """The id of a user that has been stored (a user is only given one when it is flushed)."""
    if user.id is None:
        raise ValueError(f"user {user.username!r} has not been stored yet")
    return user.id


def user_grants(session: Session, user_id: int) -> list[RoleGrant]:
    return list(
        session.exec(
            select(RoleGrant).where(RoleGrant.user_id == user_id).order_by(RoleGrant.site, RoleGrant.role)
        ).all()
    )


def to_read(session: Session, user: User) -> UserRead:
    grants = [GrantRead(role=g.role, site=g.site) for g in user_grants(session, stored_id(user))]
    return UserRead(
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        is_active=user.is_active,
        created_at=user.created_at,
        roles=grants,
        revision=user.revision,
    )


def create_user(session: Session, data: UserCreate, *, actor: str) -> User:
    """Create a user; the password (for the web pages) is stored only as an argon2 hash."""
    audit.lock_chain(session)  # serializes the existence check below with any concurrent create
    if session.exec(select(User.id).where(User.username == data.username)).first() is not None:
        raise Conflict(f"user {data.username!r} already exists")
    user = User(
        username=data.username,
        display_name=data.display_name or data.username,
        email=data.email,
        password_hash=hash_password(data.password) if data.password else None,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity_type="user",
        entity_id=user.username,
        after={"username": user.username, "display_name": user.display_name, "email": user.email},
    )
    return user


def list_users(session: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of the users, by username."""
    return paginate(session, select(User), PageParams(limit=limit, offset=offset), col(User.username))


def grant_role(session: Session, username: str, role: Role, site: str, *, actor: str) -> RoleGrant:
    """Grant ``role`` in ``site`` (``*`` = every site); effective for every worker at once."""
    from app.systems.service import ensure_site_exists

    audit.lock_chain(session)  # before any row or key lock (see lock_chain)
    user = get_user(session, username)
    if site != ANY_SITE:
        ensure_site_exists(session, site)
    existing = session.exec(
        select(RoleGrant).where(RoleGrant.user_id == user.id, RoleGrant.role == role, RoleGrant.site == site)
    ).first()
    if existing is not None:
        raise Conflict(f"{username} already holds {role.value} in {site}")
    grant = RoleGrant(user_id=stored_id(user), role=role, site=site, granted_by=actor, granted_at=utcnow())
    session.add(grant)
    bump_revision(session)
    audit.record(
        session,
        actor=actor,
        action="role.grant",
        entity_type="user",
        entity_id=username,
        site=None if site == ANY_SITE else site,
        after={"role": role.value, "site": site},
    )
    return grant


def revoke_role(session: Session, username: str, role: Role, site: str, *, actor: str) -> None:
    """Revoke one grant; effective for every worker at once."""
    audit.lock_chain(session)
    user = get_user(session, username)
    grant = session.exec(
        select(RoleGrant).where(RoleGrant.user_id == user.id, RoleGrant.role == role, RoleGrant.site == site)
    ).first()
    if grant is None:
        raise NotFound(f"{username} does not hold {role.value} in {site}")
    session.delete(grant)
    bump_revision(session)
    audit.record(
        session,
        actor=actor,
        action="role.revoke",
        entity_type="user",
        entity_id=username,
        site=None if site == ANY_SITE else site,
        before={"role": role.value, "site": site},
    )
    end_web_sessions(session, user, reason="role revoked", actor=actor)


def issue_token(session: Session, username: str, *, name: str, expires_days: int, actor: str) -> TokenIssued:
    """Issue a random 256-bit token; only its hash is kept, the token is returned this once."""
    user = get_user(session, username)
    if not user.is_active:
        raise Conflict(f"user {username!r} is deactivated")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        id=secrets.token_hex(8),
        user_id=stored_id(user),
        name=name,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + timedelta(days=expires_days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.issue",
        entity_type="token",
        entity_id=row.id,
        after={"username": username, "name": name, "expires_at": row.expires_at},
    )
    return TokenIssued(id=row.id, token=token, name=name, expires_at=row.expires_at)


def get_token(session: Session, token_id: str) -> tuple[ApiToken, User]:
    row = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(ApiToken.id == token_id)
    ).first()
    if row is None:
        raise NotFound(f"token {token_id!r} does not exist")
    return row[0], row[1]


def revoke_token(session: Session, token_id: str, *, actor: str) -> ApiToken:
    """Revoke a token at once; a second revoke is a conflict."""
    audit.lock_chain(session)  # two concurrent revokes: the second sees the first
    token, user = get_token(session, token_id)
    if token.revoked_at is not None:
        raise Conflict(f"token {token_id!r} is already revoked")
    token.revoked_at = utcnow()
    session.add(token)
    audit.record(
        session,
        actor=actor,
        action="token.revoke",
        entity_type="token",
        entity_id=token.id,
        before={"username": user.username, "name": token.name},
        after={"revoked_at": token.revoked_at},
    )
    return token


def list_tokens(session: Session, username: str | None = None) -> list[TokenRead]:
    stmt = select(ApiToken, col(User.username)).join(User, col(User.id) == col(ApiToken.user_id))
    if username:
        stmt = stmt.where(User.username == username)
    return [
        TokenRead(
            id=t.id,
            username=u,
            name=t.name,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
            last_used_at=t.last_used_at,
        )
        for t, u in session.exec(stmt.order_by(col(ApiToken.created_at))).all()
    ]


@dataclass(frozen=True)
class TokenOwner:
    """Who a valid bearer token belongs to, and the authorization revision read in the same query."""

    token_id: str
    user_id: int
    username: str
    last_used_at: datetime | None
    authz_revision: int


# The owner of a token, by column name: also the first columns of the release gate's one statement.
TOKEN_OWNER_COLUMNS: tuple[sa.ColumnElement[Any] | Mapped[Any], ...] = (
    col(ApiToken.id).label("token_id"),
    col(ApiToken.expires_at),
    col(ApiToken.revoked_at),
    col(ApiToken.last_used_at),
    col(User.id).label("user_id"),
    col(User.username),
    col(User.is_active),
    sa.select(col(AuthzRevision.revision))
    .where(col(AuthzRevision.id) == 1)
    .scalar_subquery()
    .label("authz_revision"),
)
_TOKEN_LOOKUP = (
    sa.select(*TOKEN_OWNER_COLUMNS)
    .join(User, col(User.id) == col(ApiToken.user_id))
    .where(col(ApiToken.token_hash) == sa.bindparam("digest"))
)


def check_token_format(token: str) -> None:
    """401 for a bearer value that cannot be one of our tokens (nothing is looked up for it)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("malformed token")


def token_refusal(
    revoked_at: datetime | None, expires_at: datetime | None, is_active: bool | None, now: datetime
) -> str | None:
    """Why a known token does not authenticate (revoked, expired, its user deactivated), or None."""
    if revoked_at is not None:
        return "token revoked"
    if expires_at is None or expires_at <= now:
        return "token expired"
    if not is_active:
        return "user deactivated"
    return None


def token_owner(row: RowMapping | Mapping[str, Any] | None, now: datetime) -> TokenOwner:
    """The owner from a row of ``TOKEN_OWNER_COLUMNS`` (None: no such token), or 401."""
    if row is None:
        raise Unauthorized("unknown token")
    refusal = token_refusal(row["revoked_at"], row["expires_at"], row["is_active"], now)
    if refusal is not None:
        raise Unauthorized(refusal)
    return TokenOwner(
        row["token_id"], row["user_id"], row["username"], row["last_used_at"], row["authz_revision"] or 0
    )


def resolve_token(conn: sa.Connection | Session, token: str) -> TokenOwner:
    """The owner of a bearer token, or 401 (malformed, unknown, revoked, expired, or its user deactivated).

    One indexed lookup by the token's SHA-256 (Core, no ORM objects): this runs on every request.
    """
    check_token_format(token)
    row = conn.execute(_TOKEN_LOOKUP, {"digest": hash_token(token)}).mappings().first()
    return token_owner(row, utcnow())


def lookup_token(token: str) -> TokenOwner:
    """``resolve_token`` on a pooled connection of its own, outside any request transaction.

    On PostgreSQL the single read runs in autocommit, saving the BEGIN and ROLLBACK round trips.
    """
    from app.db import get_engine

    engine = get_engine()
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        return resolve_token(conn, token)


def touch_token(token_id: str) -> None:
    """Record ``last_used_at`` in a short transaction of its own (at most every few minutes)."""
    from app.db import session_scope

    with session_scope() as session:
        session.execute(sa.update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=utcnow()))


def needs_touch(last_used_at: datetime | None) -> bool:
    """Whether ``last_used_at`` is older than its resolution (so it is written at most every few minutes)."""
    return last_used_at is None or utcnow() - last_used_at > LAST_USED_RESOLUTION


# --- passwords and activation ------------------------------------------------------------------------


def change_password(
    session: Session, username: str, new_password: str, *, actor: str, current_password: str | None = None
) -> User:
    """Set a new password. Users changing their own must give the current one; every web session ends."""
    audit.lock_chain(session)
    user = get_user(session, username)
    if actor == username and not verify_password(current_password or "", user.password_hash):
        raise Unprocessable(
            "current_password: does not match",
            errors=[{"loc": ["body", "current_password"], "msg": "does not match the current password"}],
        )
    user.password_hash = hash_password(new_password)
    user.revision += 1
    session.add(user)
    audit.record(session, actor=actor, action="user.password_change", entity_type="user", entity_id=username)
    end_web_sessions(session, user, reason="password changed", actor=actor)
    return user


def set_active(session: Session, username: str, active: bool, *, actor: str) -> User:
    """Deactivate (or reactivate) a user. A deactivated user's tokens and web sessions stop working."""
    audit.lock_chain(session)
    user = get_user(session, username)
    if user.is_active == active:
        raise Conflict(f"user {username!r} is already {'active' if active else 'deactivated'}")
    user.is_active = active
    user.revision += 1
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        entity_type="user",
        entity_id=username,
        before={"is_active": not active},
        after={"is_active": active},
    )
    if not active:
        end_web_sessions(session, user, reason="user deactivated", actor=actor)
    return user


# --- web sessions (kept on the server) ------------------------------------------------------------------

WEB_SESSION_LIFETIME = timedelta(hours=12)  # one working day; signing in again starts a new one


def start_web_session(session: Session, user: User, *, method: str = "password") -> str:
    """A new browser session for ``user``; returns the token the cookie carries (only its hash is kept).

    ``method`` (``password`` or ``oidc``) is recorded with the sign-in.

    A user without a password can never have a web session (it is made by ``aireg users add`` for service
    accounts and pipelines, which authenticate with tokens).
    """
    if not user.password_hash or not user.is_active:
        raise Unauthorized("this user cannot sign in to the web pages")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        id=secrets.token_hex(8),
        token_hash=hash_token(token),
        user_id=stored_id(user),
        created_at=now,
        expires_at=now + WEB_SESSION_LIFETIME,
    )
    session.add(row)
    audit.record(
        session,
        actor=user.username,
        action="session.sign_in",
        entity_type="session",
        entity_id=row.id,
        after={"username": user.username, "expires_at": row.expires_at, "method": method},
    )
    return token


def _web_session(session: Session, token: str) -> tuple[WebSession, User] | None:
    """The session row a cookie's token names, with its user (by the token's SHA-256)."""
    row = session.exec(
        select(WebSession, User)
        .join(User, col(User.id) == col(WebSession.user_id))
        .where(WebSession.token_hash == hash_token(token))
    ).first()
    return (row[0], row[1]) if row is not None else None


def resolve_web_session(session: Session, token: str) -> User | None:
    """The user of a live session (not ended, not expired, user active and with a password), else None."""
    row = _web_session(session, token)
    if row is None:
        return None
    web_session, user = row
    if web_session.ended_at is not None or web_session.expires_at <= utcnow():
        return None
    if not user.is_active or not user.password_hash:
        return None
    return user


def end_web_session(session: Session, token: str, *, reason: str = "signed out") -> WebSession | None:
    """End one session (sign-out); None when it had already ended or never existed."""
    row = _web_session(session, token)
    if row is None or row[0].ended_at is not None:
        return None
    web_session, user = row
    web_session.ended_at, web_session.end_reason = utcnow(), reason
    session.add(web_session)
    audit.record(
        session,
        actor=user.username,
        action="session.sign_out",
        entity_type="session",
        entity_id=web_session.id,
        after={"reason": reason},
    )
    return web_session


def end_web_sessions(session: Session, user: User, *, reason: str, actor: str) -> int:
    """End every live session of ``user`` (password change, deactivation, role revocation)."""
    now = utcnow()
    ids = list(
        session.exec(
            select(WebSession.id).where(
                WebSession.user_id == user.id, col(WebSession.ended_at).is_(None), WebSession.expires_at > now
            )
        ).all()
    )
    if not ids:
        return 0
    session.execute(
        sa.update(WebSession).where(col(WebSession.id).in_(ids)).values(ended_at=now, end_reason=reason[:40])
    )
    audit.record(
        session,
        actor=actor,
        action="session.end_all",
        entity_type="user",
        entity_id=user.username,
        after={"reason": reason, "sessions": sorted(ids)},
    )
    return len(ids)
