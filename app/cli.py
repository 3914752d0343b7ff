"""The ``aireg`` command line (Typer). Every command that opens the database applies pending migrations."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from app.cli_support import cli_actor, fail
from app.cli_support import run as _run
from app.compliance.cli import register as register_compliance
from app.db import migrate, session_scope
from app.errors import AppError
from app.governance.cli import register as register_governance
from app.identity.models import Role
from app.integrations.mlflow.cli import register as register_mlflow
from app.inventory.cli import register as register_inventory
from app.reviews.cli import register as register_reviews

if TYPE_CHECKING:
    from sqlmodel import Session

    from app.documents.models import RenderedDocument
    from app.systems.models import AISystem

app = typer.Typer(help="aireg: AI governance and EU AI Act compliance registry.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their roles per site.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once, stored as a hash).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
docs_app = typer.Typer(help="Model cards, technical documentation and audit packs.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
register_inventory(app)  # `aireg import`, `aireg export`
register_reviews(app)  # `aireg reviews`
register_compliance(app)  # `aireg requirements`, `aireg training`
register_governance(app)  # `aireg governance pack`
register_mlflow(app)  # `aireg mlflow sync|gate`


@app.callback()
def _start() -> None:
    # Runs before every command (no docstring: the app's help stays the one given above).
    from app.wiring import WiringError, wire  # imports every domain; not needed for `--help`

    try:
        wire()
    except WiringError as exc:
        fail(str(exc), 2)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="load the demo portfolio (once) and print its logins")
    ] = False,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    forwarded_allow_ips: Annotated[
        str | None, typer.Option(help="proxies whose X-Forwarded-For is trusted (comma-separated, or '*')")
    ] = None,
) -> None:
    """Run the HTTP service (uvicorn); several workers need PostgreSQL (docs/deployment.md)."""
    import uvicorn

    from app.logging import logging_config
    from app.settings import get_settings
    from app.startup import STARTUP_ERRORS, check_startup

    try:
        check_startup()  # a broken data file or secret stops the service before it binds, in one line
    except STARTUP_ERRORS as exc:
        fail(str(exc))
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
        "app.main:serving_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # request lines come from app.middleware, with request id and user
        log_config=logging_config(get_settings().log_level, access_log=access_log),
        forwarded_allow_ips=forwarded_allow_ips,
    )


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending database migrations."""
    migrate()
    typer.echo("database is at the latest schema revision")


@app.command("backup")
def backup_cmd(file: Annotated[Path, typer.Argument(help="where to write the backup")]) -> None:
    """Write a consistent online snapshot (SQLite backup API, or pg_dump) and print its audit head."""
    from app.backup import BackupError, backup

    try:
        snap = backup(file)
    except BackupError as exc:
        fail(str(exc))
    typer.echo(f"backup written to {file} ({snap.backend}): {snap.events} audit events, head {snap.head}")


@app.command("restore")
def restore_cmd(
    file: Annotated[Path, typer.Argument(help="a file written by 'aireg backup'")],
    force: Annotated[bool, typer.Option("--force", help="overwrite a database that holds data")] = False,
) -> None:
    """Replace the database with a backup (a non-empty one only with --force); stop the service first."""
    from app.backup import BackupError, restore

    try:
        snap = restore(file, force=force)
    except BackupError as exc:
        fail(str(exc))
    typer.echo(f"restored {file} ({snap.backend}): {snap.events} audit events, head {snap.head}, chain valid")


# --- users ---------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    username: str,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    email: Annotated[str | None, typer.Option("--email")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read a password from stdin")
    ] = False,
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
    _change_grant("grant", username, role, site)
    typer.echo(f"granted {role.value} in {site} to {username}")


@users_app.command("revoke")
def users_revoke(
    username: str,
    role: Role,
    site: Annotated[str, typer.Option("--site", help="site code, or '*'")],
) -> None:
    """Revoke a role grant."""
    _change_grant("revoke", username, role, site)
    typer.echo(f"revoked {role.value} in {site} from {username}")


def _change_grant(change: Literal["grant", "revoke"], username: str, role: Role, site: str) -> None:
    from app.identity import service

    _check_site_scope(site)
    apply = service.grant_role if change == "grant" else service.revoke_role
    _run(lambda s: apply(s, username, role, site, actor=cli_actor()))


@users_app.command("set-password")
def users_set_password(username: str) -> None:
    """Set a user's password, read from stdin (min. 12 characters); ends the user's web sessions."""
    from pydantic import ValidationError

    from app.identity import service
    from app.identity.models import PasswordChange

    try:
        data = PasswordChange(new_password=sys.stdin.readline().rstrip("\n"))
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    _run(lambda s: service.change_password(s, username, data.new_password, actor=cli_actor()))
    typer.echo(f"password of {username} changed; their web sessions have ended")


@users_app.command("deactivate")
def users_deactivate(username: str) -> None:
    """Deactivate a user: tokens refused and web sessions ended at once."""
    from app.identity import service

    _run(lambda s: service.set_active(s, username, False, actor=cli_actor()))
    typer.echo(f"deactivated {username}")


@users_app.command("activate")
def users_activate(username: str) -> None:
    """Reactivate a deactivated user."""
    from app.identity import service

    _run(lambda s: service.set_active(s, username, True, actor=cli_actor()))
    typer.echo(f"activated {username}")


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

    rows = _run(fn, write=False)
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

    for t in _run(lambda s: service.list_tokens(s, user), write=False):
        state = "revoked" if t.revoked_at else "active"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        expires = f"{t.expires_at:%Y-%m-%d}"
        typer.echo(f"{t.id}  {t.username:<20} {t.name:<20} {state:<8} expires {expires}  last used {used}")


# --- audit ---------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="start after the last event a full walk found valid (no full walk)"),
    ] = False,
) -> None:
    """Walk the keyed hash chain and compare it with the head checkpoint; exit 1 naming the first fault."""
    from app.audit import service

    result = _run(lambda s: service.verify_chain(s, full=not quick), write=False)
    typer.echo(json.dumps(result.model_dump()))
    if result.notice:
        typer.echo(f"note: {result.notice}", err=True)
    if not result.valid:
        where = f"broken at event {result.first_bad_seq}" if result.first_bad_seq else "not verified"
        typer.echo(f"audit chain {where}: {result.reason}", err=True)
        raise typer.Exit(1)


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Add a new audit key to the keyring file; new events use it, older keys keep verifying."""
    from app.audit import service
    from app.audit.keys import AuditKeyError, get_keyring, rotate_key

    try:
        previous = get_keyring().current
        ring = rotate_key()
    except AuditKeyError as exc:
        fail(str(exc), 2)
    _run(
        lambda s: service.record(
            s,
            actor=cli_actor(),
            action="audit.rotate_key",
            entity_type="audit_key",
            entity_id=ring.current,
            after={"key_id": ring.current, "previous_key_id": previous},
        )
    )
    typer.echo(f"audit key {ring.current} added to {ring.source} ({len(ring.keys)} keys); new events use it")


@audit_app.command("reset-checkpoint")
def audit_reset_checkpoint() -> None:
    """After a deliberate rollback of the trail (a restore): verify the keyed chain, checkpoint its head."""
    from app.audit import service

    def fn(session):  # type: ignore[no-untyped-def]
        result = service.reset_checkpoints(session)
        if result.valid:
            service.record(
                session,
                actor=cli_actor(),
                action="audit.checkpoint_reset",
                entity_type="audit_trail",
                entity_id=str(result.events),
                after={"seq": result.events, "hash": result.head},
            )
        return result

    result = _run(fn)
    if not result.valid:
        fail(f"checkpoint not reset: the chain is broken at event {result.first_bad_seq}: {result.reason}")
    typer.echo(f"audit checkpoint reset at event {result.events} (head {result.head}); the reset is recorded")


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
                row = AuditEventRead.model_validate(event.model_dump()).model_dump(mode="json")
                out.write(service.canonical_json(row))
                out.write("\n")
        finally:
            if output:
                out.close()

    _run(fn, write=False)


# --- documents -----------------------------------------------------------------------------------------


def _write_document(content: bytes, output: Path | None, binary: bool) -> None:
    if output is None:
        if binary:
            fail("this format is binary: name a file with -o", 2)
        sys.stdout.write(content.decode("utf-8"))
        return
    output.write_bytes(content)


def _produce_document(
    system_id: str, fmt: str, output: Path | None, build: Callable[[Session, AISystem], RenderedDocument]
) -> RenderedDocument:
    """Build a document of the system (its download recorded in the trail) and write it out."""
    from app.documents import service

    binary = fmt not in ("md", "html")
    if binary and output is None:
        fail(f"{fmt} is binary: name a file with -o", 2)
    migrate()
    try:
        document = service.produce(system_id, build, actor=cli_actor(), fmt=fmt)
    except AppError as exc:
        fail(exc.detail)
    _write_document(document.content, output, binary)
    return document


@docs_app.command("model-card")
def docs_model_card(
    system_id: Annotated[str, typer.Argument(help="e.g. AIS-000123")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, html, docx or pdf")] = "md",
    version: Annotated[str | None, typer.Option("--version", help="model version (default: newest)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file (default: stdout)")] = None,
) -> None:
    """Write a system's model card (the download is recorded in the audit trail)."""
    from app.documents import service
    from app.documents.models import ModelCardFormat

    if fmt not in {f.value for f in ModelCardFormat}:
        fail(f"invalid --format {fmt!r}: one of md, html, docx, pdf", 2)
    document = _produce_document(
        system_id,
        fmt,
        output,
        lambda session, s: service.model_card(session, s, ModelCardFormat(fmt), version=version),
    )
    if output is not None:
        typer.echo(f"wrote {output} ({len(document.content)} bytes, sha256 {document.sha256})", err=True)


@docs_app.command("technical-documentation")
def docs_technical_documentation(
    system_id: Annotated[str, typer.Argument(help="e.g. AIS-000123")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="docx, md or pdf")] = "docx",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file (default: stdout, md only)")
    ] = None,
    version: Annotated[str | None, typer.Option("--version", help="model version (default: newest)")] = None,
) -> None:
    """Write Annex IV technical documentation (high-risk) or the Art. 6(4) record (derogated)."""
    from app.documents import service
    from app.documents.models import TechDocFormat

    if fmt not in {f.value for f in TechDocFormat}:
        fail(f"invalid --format {fmt!r}: one of {', '.join(f.value for f in TechDocFormat)}", 2)
    document = _produce_document(
        system_id,
        fmt,
        output,
        lambda session, s: service.technical_documentation(session, s, version=version, fmt=fmt),
    )
    if output is not None:
        typer.echo(f"wrote {output} ({document.kind.value}, sha256 {document.sha256})", err=True)


@docs_app.command("audit-pack")
def docs_audit_pack(
    system_id: Annotated[str, typer.Argument(help="e.g. AIS-000123")],
    output: Annotated[Path, typer.Option("-o", "--output", help="ZIP file to write")],
) -> None:
    """Write a system's audit pack (the same bytes as the HTTP download; recorded in the trail)."""
    import shutil

    from app.documents import pack

    migrate()
    try:
        built = pack.download_audit_pack(system_id, actor=cli_actor())
    except AppError as exc:
        fail(exc.detail)
    try:
        built.file.seek(0)
        with output.open("wb") as fh:
            shutil.copyfileobj(built.file, fh)
    finally:
        built.close()
    summary = f"{built.size} bytes, sha256 {built.sha256}, covers event {built.coverage.seq}"
    typer.echo(f"wrote {output} ({summary})", err=True)


signing_app = typer.Typer(help="The instance signing key (Ed25519) of audit packs.", no_args_is_help=True)
app.add_typer(signing_app, name="signing-key")


@signing_app.command("show")
def signing_key_show() -> None:
    """Print the instance's public signing key (keep old ones after a rotation: they verify older packs)."""
    from app.security import signing

    try:
        info = signing.public_key_info()
    except signing.SigningKeyError as exc:
        fail(str(exc), 2)
    typer.echo(f"{info['algorithm']} key {info['key_id']}: {info['public_key']}")
    typer.echo(info["pem"], nl=False)


# --- release gate --------------------------------------------------------------------------------------

RELEASE_ENVIRONMENTS = ("pilot", "production")


@app.command("release-check")
def release_check(
    system: Annotated[str, typer.Option("--system", help="system id, e.g. AIS-000123")],
    version: Annotated[str, typer.Option("--version", help="the model version to release")],
    environment: Annotated[str, typer.Option("--environment", help="pilot or production")] = "production",
    digest: Annotated[
        str | None, typer.Option("--digest", help="also require this artifact digest (sha256:<64 hex>)")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="service URL (default: AIREG_URL)")] = None,
    token: Annotated[str | None, typer.Option("--token", help="API token (default: AIREG_TOKEN)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the response body as is")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=300.0, help="seconds per attempt")
    ] = 10.0,
    retries: Annotated[
        int, typer.Option("--retries", min=0, max=10, help="retries on connection errors, timeouts and 503")
    ] = 3,
    backoff: Annotated[
        float, typer.Option("--backoff", min=0.0, max=60.0, help="first retry delay in seconds, doubling")
    ] = 0.5,
) -> None:
    """Ask the service for release permission. Exit 0 allowed, 1 denied, 2 could not decide.

    Connection errors, timeouts and 503 are retried with exponential backoff (``Retry-After`` honoured), the
    policy of the pipeline client ``aireg-gate`` (app/http_retry.py)."""
    import httpx

    from app.http_retry import RetryPolicy, send_with_retries
    from app.settings import get_settings

    settings = get_settings()
    base = (url or settings.url).rstrip("/")
    token = token or settings.token
    if environment not in RELEASE_ENVIRONMENTS:
        fail(f"--environment must be one of {', '.join(RELEASE_ENVIRONMENTS)}", 2)
    if not token:
        fail("no API token: pass --token or set AIREG_TOKEN", 2)
    params = {"system": system, "version": version, "environment": environment}
    if digest:
        params["artifact_digest"] = digest
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        with httpx.Client(headers=headers, timeout=timeout) as http:
            response, _attempts = send_with_retries(
                lambda: http.get(f"{base}/api/v1/release-permission", params=params),
                RetryPolicy(retries=retries, backoff=backoff),
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        fail(f"could not reach {base}: {exc}", 2)
    if as_json:
        typer.echo(response.text)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) else None
        fail(f"HTTP {response.status_code}: {detail or response.reason_phrase}; no decision", 2)
    if not isinstance(body, dict) or not isinstance(body.get("allowed"), bool):
        fail("the service answered without a decision", 2)
    if not as_json:
        where = f"{body.get('system')} {body.get('version')} in {body.get('environment')}"
        if body["allowed"]:
            until = f", valid until {body['valid_until']}" if body.get("valid_until") else ""
            typer.echo(f"ALLOWED: {where} (approval {body.get('approval_id')}{until})")
        else:
            typer.echo(f"DENIED: {where}")
        for reason in body.get("reasons") or []:
            severity = reason.get("severity", "error")
            typer.echo(f"  {severity} {reason.get('code')}: {reason.get('message')}")
    raise typer.Exit(0 if body["allowed"] else 1)


if __name__ == "__main__":
    app()
