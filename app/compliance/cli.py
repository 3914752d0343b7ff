"""CLI commands of compliance work: ``aireg requirements list|set|evidence`` and
``aireg training add|list|remove``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``). Exit status 2: bad input (an unknown
system, requirement or status); 1: a rule refused the change (a note is needed, evidence is needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.compliance.models import RequirementStatus
from app.db import utcnow

requirements_app = typer.Typer(help="Compliance requirements of a system.", no_args_is_help=True)


def _in_session(fn: Callable[[Any], Any], *, write: bool) -> Any:
    """Run ``fn(session)`` in one transaction: an unknown record is exit 2, any other refusal exit 1."""
    from app import cli_support as cli

    return cli.run(fn, write=write, not_found=2)


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
        links = service.evidence_links(session, system_id, utcnow().date())
        return [service.requirement_read(r, links).model_dump(mode="json") for r in rows]

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
    evidence: Annotated[
        list[str] | None,
        typer.Option("--evidence", help="an evidence id to link (repeat; replaces the linked set)"),
    ] = None,
) -> None:
    """Record the status of one requirement (audited as the console user); met needs current evidence."""
    from app import cli_support as cli
    from app.compliance import service
    from app.compliance.models import RequirementUpdate
    from app.systems import service as systems

    def change(session: Any) -> dict[str, Any]:
        system = systems.get_system(session, system_id)
        row = service.find_requirement(
            service.system_requirements(session, system), requirement_id, f"system {system.id}"
        )
        data = RequirementUpdate(status=status, note=note, evidence=evidence, revision=row.revision)
        row = service.update_requirement(
            session,
            row,
            data,
            if_match=None,
            actor=cli.cli_actor(),
            entity=("system", system.id, system.site),
        )
        links = service.evidence_links(session, system.id, utcnow().date())
        return service.requirement_read(row, links).model_dump(mode="json")

    r = _in_session(change, write=True)
    typer.echo(f"{r['id']}: {r['status']} (revision {r['revision']})")


@requirements_app.command("evidence")
def evidence_cmd(
    system_id: Annotated[str, typer.Argument(help="e.g. AIS-000123")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the file")],
    title: Annotated[str, typer.Option(help="what the file shows")],
    valid_until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="last day it counts (YYYY-MM-DD)")
    ] = None,
    media_type: Annotated[str | None, typer.Option(help="default: from the file name's ending")] = None,
) -> None:
    """Upload an evidence file of a system (checked and stored like an upload through the API)."""
    from app import cli_support as cli
    from app.compliance import evidence as evidence_service
    from app.systems import service as systems

    def upload(session: Any) -> dict[str, Any]:
        system = systems.get_system(session, system_id)
        with path.open("rb") as stream:
            item = evidence_service.store_evidence(
                session,
                system_id=system.id,
                site=system.site,
                title=title,
                filename=path.name,
                declared_type=media_type,
                stream=stream,
                valid_until=valid_until.date() if valid_until else None,
                actor=cli.cli_actor(),
            )
        return evidence_service.evidence_read(session, item).model_dump(mode="json")

    r = _in_session(upload, write=True)
    typer.echo(f"{r['id']}: {r['title']} ({r['media_type']}, {r['size']} bytes, sha256 {r['sha256']})")


# --- AI literacy training records (AI Act Art. 4) ----------------------------------------------------------

training_app = typer.Typer(
    help="AI literacy training records of the organisation (AI Act Art. 4).", no_args_is_help=True
)


@training_app.command("add")
def training_add_cmd(
    person: Annotated[str, typer.Option(help="the trained person's name")],
    course: Annotated[str, typer.Option(help="what the training was")],
    completed_on: Annotated[str, typer.Option(help="YYYY-MM-DD, not in the future")],
    valid_until: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD it counts until (none: no expiry)")
    ] = None,
    username: Annotated[str | None, typer.Option(help="the person's registry user, if any")] = None,
    site: Annotated[str | None, typer.Option(help="the site code the person works at, e.g. STR")] = None,
    provider: Annotated[str | None, typer.Option(help="who gave the training")] = None,
) -> None:
    """Record a completed training (audited as the console user); prints the new record's id."""
    from pydantic import ValidationError

    from app import cli_support as cli
    from app.compliance import training
    from app.compliance.models import TrainingCreate

    fields = {"person": person, "course": course, "completed_on": completed_on, "valid_until": valid_until}
    try:
        data = TrainingCreate(**fields, username=username, site=site, provider=provider)
    except ValidationError as exc:
        cli.fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    record_id = _in_session(lambda s: training.create_training(s, data, actor=cli.cli_actor()).id, write=True)
    typer.echo(f"recorded {record_id}")


@training_app.command("list")
def training_list_cmd(
    current: Annotated[
        bool | None, typer.Option("--current/--expired", help="only current, or only expired, records")
    ] = None,
    site: Annotated[str | None, typer.Option(help="records of this site code")] = None,
    q: Annotated[str | None, typer.Option("--q", help="text in person, username or course")] = None,
    include_withdrawn: Annotated[
        bool, typer.Option("--include-withdrawn", help="withdrawn records too")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON list")] = False,
) -> None:
    """The training records: id, completion, validity, person, site and course."""
    from app.compliance import training
    from app.http import MAX_LIMIT, PageParams

    filters = training.TrainingFilters(current=current, site=site, q=q, include_withdrawn=include_withdrawn)

    def read(session: Any) -> list[dict[str, Any]]:
        items, offset, total = [], 0, 1
        while offset < total:
            page, total = training.list_training(session, filters, page=PageParams(MAX_LIMIT, offset))
            items += [r.model_dump(mode="json") for r in page]
            offset += MAX_LIMIT
        return items

    items = _in_session(read, write=False)
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for r in items:
        state = "withdrawn" if r["removed_at"] else ("current" if r["current"] else "expired")
        until = r["valid_until"] or "-"
        typer.echo(
            f"{r['id']:<11} {r['completed_on']:<10} {until:<10} {state:<9} {r['site'] or '-':<6} "
            f"{r['person']}: {r['course']}"
        )


@training_app.command("remove")
def training_remove_cmd(
    training_id: Annotated[str, typer.Argument(help="e.g. TRN-000001")],
    reason: Annotated[str, typer.Option(help="why the record is withdrawn (kept in the audit trail)")],
) -> None:
    """Withdraw a training record: it is kept and no longer counts (audited as the console user)."""
    from app import cli_support as cli
    from app.compliance import training

    if not reason.strip():
        cli.fail("--reason: say why the record is withdrawn", 2)

    def withdraw(session: Any) -> str:
        record = training.get_training(session, training_id, for_update=True)
        return training.withdraw_training(session, record, reason.strip(), actor=cli.cli_actor()).id

    typer.echo(f"withdrew {_in_session(withdraw, write=True)}")


def register(app: typer.Typer) -> None:
    """Add the compliance commands to the main CLI."""
    app.add_typer(requirements_app, name="requirements")
    app.add_typer(training_app, name="training")
