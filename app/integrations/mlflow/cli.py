"""CLI of the MLflow bridge: ``aireg mlflow sync``, ``aireg mlflow gate``, ``aireg mlflow webhook register``.

Registered on the main Typer app by ``app/cli.py`` (``register(app)``). Exit status 0: done; 1: a conflict
(sync), a tag not written or a version whose artifacts could not be read (gate), a failed test delivery
(webhook register); 2: bad input or MLflow / aireg could not answer (an unknown system or registered
model, an unreachable server).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import typer

from app.approvals.models import Environment

mlflow_app = typer.Typer(help="The MLflow model registry bridge.", no_args_is_help=True)

TrackingUri = Annotated[
    str,
    typer.Option(
        "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow server, e.g. http://mlflow:5000"
    ),
]
Model = Annotated[str, typer.Option("--model", help="the registered model's name in MLflow")]
System = Annotated[str, typer.Option("--system", help="the aireg system, e.g. AIS-000123")]
Workers = Annotated[int, typer.Option("--workers", min=1, max=64, help="parallel HTTP requests to MLflow")]


def _in_session(fn: Callable[[Any], Any], *, write: bool) -> Any:
    """Run ``fn(session)`` in one transaction: an unknown record is exit 2, any other refusal exit 1."""
    from app import cli_support as cli

    return cli.run(fn, write=write, not_found=2)


def _client(tracking_uri: str, workers: int) -> Any:
    from app import cli_support as cli
    from app.integrations.mlflow.client import MlflowClient, MlflowError

    try:
        return MlflowClient(tracking_uri, connections=workers)
    except MlflowError as exc:
        cli.fail(str(exc), 2)


@mlflow_app.command("sync")
def sync_cmd(tracking_uri: TrackingUri, model: Model, system: System, workers: Workers = 8) -> None:
    """Copy the registered model's versions (number, run metrics, artifact digest) into the system.

    Idempotent: a version already registered with the same digest is left alone; one registered with another
    digest is a conflict (exit 1), never overwritten. A version whose artifacts cannot be read is skipped."""
    from app import cli_support as cli
    from app.integrations.mlflow import service
    from app.integrations.mlflow.client import MlflowError

    known = _in_session(lambda s: service.registered_digests(s, _system(s, system)), write=False)
    with _client(tracking_uri, workers) as client:
        try:
            fresh, seen = service.collect_for_sync(client, model, known, workers=workers)
        except MlflowError as exc:
            cli.fail(str(exc), 2)
    actor = cli.cli_actor()
    report = _in_session(
        lambda s: service.apply_sync(s, system, model, tracking_uri, fresh, seen, actor=actor), write=True
    )
    for snap in report.created:
        count = len(snap.metrics or {})
        typer.echo(f"version {snap.version}: registered ({snap.digest}, {count} metrics)")
        if snap.dropped_metrics:
            typer.echo(
                f"version {snap.version}: metrics not copied (not a finite number, or a name aireg does not "
                f"admit): {', '.join(snap.dropped_metrics)}",
                err=True,
            )
    for line in report.skipped:
        typer.echo(line, err=True)
    if report.linked:
        typer.echo(f"{model} is now linked to {system}: its new versions follow by webhook, if registered")
    for line in report.conflicts:
        typer.echo(f"conflict: {line}", err=True)
    typer.echo(
        f"{model} -> {system}: {len(report.created)} registered, {len(report.unchanged)} unchanged, "
        f"{len(report.conflicts)} conflicts, {len(report.skipped)} skipped"
    )
    if report.conflicts:
        raise typer.Exit(1)


def _system(session: Any, system_id: str) -> str:
    from app.systems import service as systems

    return systems.get_system(session, system_id).id


@mlflow_app.command("gate")
def gate_cmd(
    tracking_uri: TrackingUri,
    model: Model,
    system: System,
    environment: Annotated[Environment, typer.Option("--environment", help="pilot or production")] = (
        Environment.production
    ),
    workers: Workers = 8,
) -> None:
    """Write each version's release decision to MLflow as the tag ``aireg.release.<environment>``.

    The decision is the release gate's (``GET /release-permission``), for the artifact MLflow holds now:
    ``allowed`` or ``denied: CODE,...``. Versions not registered in aireg are left untagged (run sync)."""
    from app import cli_support as cli
    from app.integrations.mlflow import service
    from app.integrations.mlflow.client import MlflowError

    known = _in_session(lambda s: service.registered_digests(s, _system(s, system)), write=False)
    key = f"{service.TAG_PREFIX}{environment.value}"
    failures = 0
    with _client(tracking_uri, workers) as client:
        try:
            versions = service.mlflow_versions(client, model)
        except MlflowError as exc:
            cli.fail(str(exc), 2)
        ours = [v for v in versions if str(v["version"]) in known]
        for v in versions:
            if str(v["version"]) not in known:
                typer.echo(f"version {v['version']}: not in {system}; run `aireg mlflow sync`", err=True)
        snaps = service.parallel(partial(service.snapshot, client, model, with_metrics=False), ours, workers)
        readable = []
        for snap in snaps:
            if snap.problem is not None:
                failures += 1
                typer.echo(f"version {snap.version}: not tagged: {snap.problem}", err=True)
            else:
                readable.append((snap.version, snap.digest))
        actor = cli.cli_actor()
        answers = _in_session(
            lambda s: service.decisions(s, system, readable, environment.value, actor=actor), write=False
        )
        values = {version: service.tag_value(answer) for version, answer in answers.items()}

        def write(version: str) -> str | None:
            try:
                client.set_version_tag(model, version, key, values[version])
            except MlflowError as exc:
                return str(exc)
            return None

        for version, problem in zip(values, service.parallel(write, list(values), workers), strict=True):
            if problem is None:
                typer.echo(f"version {version}: {key} = {values[version]}")
            else:
                failures += 1
                typer.echo(f"version {version}: tag not written: {problem}", err=True)
    allowed = sum(1 for v in values.values() if v == "allowed")
    typer.echo(f"{model} / {system} / {environment.value}: {allowed} allowed, {len(values) - allowed} denied")
    if failures:
        raise typer.Exit(1)


webhook_app = typer.Typer(help="MLflow registry webhooks into aireg.", no_args_is_help=True)
mlflow_app.add_typer(webhook_app, name="webhook")


@webhook_app.command("register")
def webhook_register_cmd(
    tracking_uri: TrackingUri,
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="this service's receiver, e.g. https://aireg.example/api/v1/integrations/mlflow/webhook",
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="the webhook's name in MLflow")] = "aireg",
) -> None:
    """Create (or update) the MLflow webhook sending model_version.created to aireg, then test it.

    The secret is AIREG_MLFLOW_WEBHOOK_SECRET, the one the receiver checks. MLflow then sends its example
    delivery: aireg must answer it (202, an unlinked example model) for the setup to be complete."""
    from app import cli_support as cli
    from app.integrations.mlflow.client import MlflowError
    from app.integrations.mlflow.webhook import SUBSCRIBED_EVENTS
    from app.settings import get_settings

    secret = get_settings().mlflow_webhook_secret
    if secret is None:
        cli.fail("set AIREG_MLFLOW_WEBHOOK_SECRET (>= 16 characters; the aireg service needs the same)", 2)
    with _client(tracking_uri, 1) as client:
        try:
            hook = client.save_webhook(name, url, SUBSCRIBED_EVENTS, secret.get_secret_value())
            typer.echo(f"MLflow webhook {hook['webhook_id']} ({name}): model_version.created -> {url}")
            result = client.test_webhook(hook["webhook_id"])
        except MlflowError as exc:
            cli.fail(str(exc), 2)
    status = result.get("response_status")
    if not result.get("success"):
        answer = result.get("error_message") or f"{status} {result.get('response_body', '')[:300]}"
        cli.fail(f"MLflow's test delivery failed: {answer}", 1)
    typer.echo(f"test delivery: aireg answered {status}")


def register(app: typer.Typer) -> None:
    """Add the MLflow commands to the main CLI."""
    app.add_typer(mlflow_app, name="mlflow")
