"""CLI commands of compliance work: ``aireg requirements list`` and ``aireg requirements set``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``). Exit status 2: bad input (an unknown
system, requirement or status); 1: a rule refused the change (a note is needed, evidence is needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from app.compliance.models import RequirementStatus

requirements_app = typer.Typer(help="Compliance requirements of a system.", no_args_is_help=True)


def _in_session(fn: Callable[[Any], Any], *, write: bool) -> Any:
    """Run ``fn(session)`` in one transaction: an unknown record is exit 2, any other refusal exit 1."""
    from app import cli
    from app.db import migrate, session_scope
    from app.errors import AppError, NotFound

    migrate()
    try:
        with session_scope(write=write) as session:
            return fn(session)
    except NotFound as exc:
        cli.fail(exc.detail, 2)
    except AppError as exc:
        cli.fail(exc.detail, 1)


@requirements_app.command("list")
def list_cmd(
    system_id: Annotated[str, typer.Argument(help="e.g. AIS-000123")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON list")] = False,
) -> None:
    """The system's requirements: id, status, whether it binds today, due date and title."""
    from app.compliance import service
    from app.systems import service as systems

    def read(session: Any) -> list[dict[str, Any]]:
        rows = service.system_requirements(session, systems.get_system(session, system_id))
        return [service.requirement_read(r).model_dump(mode="json") for r in rows]

    items = _in_session(read, write=True)  # the first read makes the rows
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for r in items:
        flags = "binding" if r["binding"] else ("not derived" if not r["derived"] else "")
        due = r["applies_from"] or "-"
        typer.echo(f"{r['id']:<28} {r['status']:<15} {flags:<12} {due:<10}  {r['title']}")


@requirements_app.command("set")
def set_cmd(
    system_id: Annotated[str, typer.Argument(help="e.g. AIS-000123")],
    requirement_id: Annotated[str, typer.Argument(help="framework:control, e.g. ai_act:art9")],
    status: Annotated[RequirementStatus, typer.Argument(help="open, in_progress, met or not_applicable")],
    note: Annotated[str | None, typer.Option(help="why (needed for not_applicable)")] = None,
) -> None:
    """Record the status of one requirement (audited as the console user)."""
    from app import cli
    from app.compliance import service
    from app.compliance.models import RequirementUpdate
    from app.systems import service as systems

    def change(session: Any) -> dict[str, Any]:
        system = systems.get_system(session, system_id)
        row = service.find_requirement(
            service.system_requirements(session, system), requirement_id, f"system {system.id}"
        )
        data = RequirementUpdate(status=status, note=note, revision=row.revision)
        row = service.update_requirement(
            session,
            row,
            data,
            if_match=None,
            actor=cli.cli_actor(),
            entity=("system", system.id, system.site),
        )
        return service.requirement_read(row).model_dump(mode="json")

    r = _in_session(change, write=True)
    typer.echo(f"{r['id']}: {r['status']} (revision {r['revision']})")


def register(app: typer.Typer) -> None:
    """Add the compliance commands to the main CLI."""
    app.add_typer(requirements_app, name="requirements")
