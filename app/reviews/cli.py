"""CLI commands of the periodic review: ``aireg reviews due`` and ``aireg reviews remind``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app import cli_support as cli

reviews_app = typer.Typer(help="Periodic review of approvals.", no_args_is_help=True)


@reviews_app.command("due")
def reviews_due_cmd(
    days: Annotated[
        int, typer.Option("--days", min=0, max=3650, help="validity ending within this many days")
    ] = 30,
    site: Annotated[str | None, typer.Option("--site")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List approvals due for periodic review (expiring within --days, or expired and not renewed)."""
    from app.reviews.service import reviews_due

    rows = cli.run(lambda s: reviews_due(s, days=days, sites=None, site=site), write=False)
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
    from app.reviews.service import send_reminders

    rows = cli.run(lambda s: send_reminders(s, days=days))
    typer.echo(f"queued {len(rows)} reminder(s)")


def register(app: typer.Typer) -> None:
    """Add ``aireg reviews`` to the main CLI."""
    app.add_typer(reviews_app, name="reviews")
