"""The ``aireg`` command line (Typer). Every command that opens the database applies pending migrations."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.db import migrate, session_scope
from app.errors import AppError
from app.identity.models import Role

app = typer.Typer(help="aireg: AI governance and EU AI Act compliance registry.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their roles per site.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once, stored as a hash).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")


def cli_actor() -> str:
    """Who the trail names for CLI changes: the operating-system user at the console."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:
        return "cli"


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(fn):  # type: ignore[no-untyped-def]
    """Open the database (migrating it), run ``fn(session)`` in one transaction, map errors to exit 1."""
    migrate()
    try:
        with session_scope() as session:
            return fn(session)
    except AppError as exc:
        fail(exc.detail)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
    demo: Annotated[bool, typer.Option("--demo", help="load the demo portfolio (once) and print its logins")] = False,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
) -> None:
    """Run the HTTP service (uvicorn)."""
    import uvicorn

    migrate()
    if demo:
        from app import demo as demo_data

        with session_scope() as session:
            loaded = demo_data.load_demo(session)
        typer.echo("Demo portfolio " + ("loaded." if loaded else "already present."))
        typer.echo(f"Demo logins (password for every one: {demo_data.DEMO_PASSWORD}):")
        for username, roles in demo_data.demo_logins():
            typer.echo(f"  {username:<20} {roles}")
        typer.echo("API tokens: aireg tokens issue USERNAME")
    typer.echo(f"Serving on http://{host}:{port}  (API docs at /docs)")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="warning",
    )


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending database migrations."""
    migrate()
    typer.echo("database is at the latest schema revision")


# --- users ---------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    username: str,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    email: Annotated[str | None, typer.Option("--email")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read a password from stdin")] = False,
) -> None:
    """Create a user."""
    from pydantic import ValidationError

    from app.identity import service
    from app.identity.models import UserCreate

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        data = UserCreate(username=username, display_name=display_name, email=email, password=password)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    _run(lambda s: service.create_user(s, data, actor=cli_actor()))
    typer.echo(f"created user {username}")


@users_app.command("grant")
def users_grant(
    username: str,
    role: Role,
    site: Annotated[str, typer.Option("--site", help="site code, or '*' for every site")],
) -> None:
    """Grant a role in one site (or '*')."""
    from app.identity import service

    _check_site_scope(site)
    _run(lambda s: service.grant_role(s, username, role, site, actor=cli_actor()))
    typer.echo(f"granted {role.value} in {site} to {username}")


@users_app.command("revoke")
def users_revoke(
    username: str,
    role: Role,
    site: Annotated[str, typer.Option("--site", help="site code, or '*'")],
) -> None:
    """Revoke a role grant."""
    from app.identity import service

    _check_site_scope(site)
    _run(lambda s: service.revoke_role(s, username, role, site, actor=cli_actor()))
    typer.echo(f"revoked {role.value} in {site} from {username}")


def _check_site_scope(site: str) -> None:
    import re

    if not re.fullmatch(r"\*|[A-Z0-9][A-Z0-9_-]{1,15}", site):
        fail(f"invalid site {site!r}: a site code such as STR, or '*'", 2)


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users with their roles."""
    from app.identity import service

    def fn(session):  # type: ignore[no-untyped-def]
        users, _ = service.list_users(session, limit=100_000, offset=0)
        return [service.to_read(session, u) for u in users]

    rows = _run(fn)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for r in rows:
        roles = ", ".join(f"{g.role.value}@{g.site}" for g in r.roles) or "-"
        typer.echo(f"{r.username:<24} {r.display_name:<40} {roles}")


# --- tokens --------------------------------------------------------------------------------------------


@tokens_app.command("issue")
def tokens_issue(
    username: str,
    name: Annotated[str, typer.Option("--name")] = "cli",
    expires_days: Annotated[int, typer.Option("--expires-days", min=1, max=3650)] = 90,
) -> None:
    """Issue an API token and print it alone on stdout (it is not shown again)."""
    from app.identity import service

    issued = _run(
        lambda s: service.issue_token(s, username, name=name, expires_days=expires_days, actor=cli_actor())
    )
    typer.echo(issued.token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by its id."""
    from app.identity import service

    _run(lambda s: service.revoke_token(s, token_id, actor=cli_actor()))
    typer.echo(f"revoked token {token_id}")


@tokens_app.command("list")
def tokens_list(user: Annotated[str | None, typer.Option("--user")] = None) -> None:
    """List tokens (never the tokens themselves)."""
    from app.identity import service

    for t in _run(lambda s: service.list_tokens(s, user)):
        state = "revoked" if t.revoked_at else "active"
        typer.echo(f"{t.id}  {t.username:<20} {t.name:<20} {state:<8} expires {t.expires_at:%Y-%m-%d}")


# --- audit ---------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 and name the first broken event if it does not hold."""
    from app.audit import service

    result = _run(service.verify_chain)
    typer.echo(json.dumps(result.model_dump()))
    if not result.valid:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file (default: stdout)")] = None,
) -> None:
    """Export every event as JSON Lines, in sequence order."""
    from app.audit import service
    from app.audit.models import AuditEventRead

    def fn(session):  # type: ignore[no-untyped-def]
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for event in service.iter_events(session):
                out.write(service.canonical_json(AuditEventRead.model_validate(event.model_dump()).model_dump(mode="json")))
                out.write("\n")
        finally:
            if output:
                out.close()

    _run(fn)


if __name__ == "__main__":
    app()
