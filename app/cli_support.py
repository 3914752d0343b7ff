"""What every ``aireg`` command shares: who acts, how a command fails, one transaction per command.

Domain CLIs (``app/<domain>/cli.py``) import this module, never ``app.cli``, so that ``app.cli`` can import
them at the top and register their commands.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer
from sqlmodel import Session

from app.db import migrate, session_scope
from app.errors import AppError, NotFound

T = TypeVar("T")


def cli_actor() -> str:
    """Who the trail names for CLI changes: the operating-system user at the console."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:
        return "cli"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and end the command with exit status ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run(fn: Callable[[Session], T], *, write: bool = True, not_found: int = 1) -> T:
    """Open the database (migrating it), run ``fn(session)`` in one transaction, map errors to exit 1
    (an unknown record to ``not_found``: the domain CLIs say 2).

    Read-only commands pass ``write=False`` so that a long walk (audit verify, export) never holds SQLite's
    write lock and blocks the service.
    """
    migrate()
    try:
        with session_scope(write=write) as session:
            return fn(session)
    except NotFound as exc:
        fail(exc.detail, not_found)
    except AppError as exc:
        fail(exc.detail)
