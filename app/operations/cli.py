"""CLI commands of the operations domain: ``aireg import``, ``aireg export`` and ``aireg reviews``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from app.operations.inventory import Format

reviews_app = typer.Typer(help="Periodic review of approvals.", no_args_is_help=True)
# Imports or exports of at least this many rows show a progress bar (on a terminal).
PROGRESS_FROM_ROWS = 1000


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr, advanced by the callback it yields (hidden for short runs)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=total < PROGRESS_FROM_ROWS or not console.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def import_cmd(
    file: Annotated[Path, typer.Argument(help="a CSV or JSON file (as `aireg export` writes)")],
    fmt: Annotated[Format | None, typer.Option("--format", help="default: from the file extension")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate every row, write nothing")] = False,
) -> None:
    """Import AI systems: rows without id are created, rows with an id update that system.

    Every row is validated first; one bad row (reported with its line number) and nothing is imported
    (exit status 1). A file that cannot be read at all (not UTF-8, unknown format, JSON nested deeper than
    AIREG_MAX_JSON_DEPTH) is exit status 2.
    """
    from app import cli
    from app.db import migrate, session_scope
    from app.errors import AppError
    from app.operations.inventory import ImportFailed, ImportUnreadable, detect_format, import_inventory

    try:
        # line endings as written: a CR or LF inside a quoted CSV cell is part of its text
        text = file.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        cli.fail(f"{file}: no such file", 2)
    except (OSError, UnicodeDecodeError) as exc:
        cli.fail(f"{file}: cannot read as UTF-8 text ({exc})", 2)
    try:
        kind = detect_format(file.name, fmt)
    except ImportFailed as exc:
        cli.fail(f"{file}: {exc.row_errors[0].message}", 2)
    migrate()
    # Rows to validate, then rows to write: the bar runs over both passes.
    total = 2 * max(text.count("\n"), 1)
    try:
        with progress_bar(f"importing {file.name}", total) as tick, session_scope() as session:
            result = import_inventory(
                session, text, kind, actor=cli.cli_actor(), dry_run=dry_run, progress=tick
            )
    except ImportUnreadable as exc:
        cli.fail(f"{file}: {exc.detail}", 2)
    except ImportFailed as exc:
        for error in exc.row_errors[:200]:
            typer.echo(f"{file}:{error}", err=True)
        if len(exc.row_errors) > 200:
            typer.echo(f"... and {len(exc.row_errors) - 200} more", err=True)
        cli.fail(exc.detail)
    except AppError as exc:
        cli.fail(exc.detail)
    if dry_run:
        typer.echo(f"{result.rows} row(s) valid; nothing written (--dry-run)")
        return
    typer.echo(
        f"imported {result.rows} row(s): {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
    )


def export_cmd(
    fmt: Annotated[Format, typer.Option("--format", help="csv or json")] = Format.csv,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file (default: stdout)")] = None,
    site: Annotated[str | None, typer.Option("--site", help="only this site")] = None,
) -> None:
    """Export the inventory of live AI systems as CSV or JSON (importable again)."""
    from app import cli
    from app.operations.inventory import count_systems, export_inventory

    def run(session):  # type: ignore[no-untyped-def]
        total = count_systems(session, site=site)
        out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            with progress_bar("exporting", total) as tick:
                return export_inventory(session, out, fmt, site=site, progress=tick)
        finally:
            if output:
                out.close()

    count = cli._run(run, write=False)
    if output:
        typer.echo(f"exported {count} system(s) to {output}", err=True)


@reviews_app.command("due")
def reviews_due_cmd(
    days: Annotated[
        int, typer.Option("--days", min=0, max=3650, help="validity ending within this many days")
    ] = 30,
    site: Annotated[str | None, typer.Option("--site")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List approvals due for periodic review (expiring within --days, or expired and not renewed)."""
    from app import cli
    from app.operations.reviews import reviews_due

    rows = cli._run(lambda s: reviews_due(s, days=days, sites=None, site=site), write=False)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    if not rows:
        typer.echo(f"no review due within {days} days")
        return
    for r in rows:
        when = f"in {r.days_left} d" if r.days_left >= 0 else f"{-r.days_left} d ago"
        renewal = f"  renewal {r.renewal_id} pending" if r.renewal_id else ""
        typer.echo(
            f"{r.approval_id}  {r.system_id}  {r.site}/{r.line or '-'}  {r.version:<12} {r.environment:<10} "
            f"valid until {r.valid_until:%Y-%m-%d} ({when}){renewal}  {r.system_name}"
        )


@reviews_app.command("remind")
def reviews_remind_cmd(
    days: Annotated[int, typer.Option("--days", min=0, max=3650)] = 30,
) -> None:
    """Queue an approval.review_due webhook for each due review (at most one a week per approval)."""
    from app import cli
    from app.operations.reviews import send_reminders

    rows = cli._run(lambda s: send_reminders(s, days=days))
    typer.echo(f"queued {len(rows)} reminder(s)")


def register(app: typer.Typer) -> None:
    """Add the operations commands to the main CLI."""
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    app.add_typer(reviews_app, name="reviews")
