"""CLI commands of the inventory: ``aireg import`` and ``aireg export``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from app import cli_support as cli
from app.inventory.models import Format

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
    from app.db import migrate, session_scope
    from app.errors import AppError
    from app.inventory.service import ImportFailed, ImportUnreadable, detect_format, import_inventory

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
    from app.inventory.service import count_systems, export_inventory

    def run(session: Session) -> int:
        total = count_systems(session, site=site)
        out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            with progress_bar("exporting", total) as tick:
                return export_inventory(session, out, fmt, site=site, progress=tick)
        finally:
            if output:
                out.close()

    count = cli.run(run, write=False)
    if output:
        typer.echo(f"exported {count} system(s) to {output}", err=True)


def register(app: typer.Typer) -> None:
    """Add the inventory commands to the main CLI."""
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
