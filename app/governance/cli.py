"""CLI command of governance: ``aireg governance pack``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``). Exit status 2: bad input (an
unknown format, docx without a file); 1: the pack could not be built (a file of ``policies/`` is broken).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from app.governance.models import PackFormat

governance_app = typer.Typer(help="The governance pack: AI policy and RACI matrix.", no_args_is_help=True)


@governance_app.command("pack")
def pack_cmd(
    fmt: Annotated[PackFormat, typer.Option("--format", "-f", help="md, docx or pdf")] = PackFormat.md,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file (default: stdout)")] = None,
) -> None:
    """Write the governance pack from policies/ (the download is recorded in the audit trail)."""
    from app import cli_support as cli
    from app.db import migrate
    from app.errors import AppError
    from app.governance import service

    if fmt is not PackFormat.md and output is None:
        cli.fail(f"{fmt.value} is binary: name a file with -o", 2)
    migrate()
    try:
        document = service.download_pack(fmt, actor=cli.cli_actor())
    except AppError as exc:
        cli.fail(exc.detail)
    if output is None:  # md only: docx and pdf without a file were refused above
        sys.stdout.write(document.content.decode("utf-8"))
        return
    output.write_bytes(document.content)
    typer.echo(f"wrote {output} ({len(document.content)} bytes, sha256 {document.sha256})", err=True)


def register(app: typer.Typer) -> None:
    """Add the governance commands to the main CLI."""
    app.add_typer(governance_app, name="governance")
