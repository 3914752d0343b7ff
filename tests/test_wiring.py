"""Cross-domain hooks are registered by ``app.wiring.wire()`` at start, once; a missing one stops it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from app import wiring
from app.approvals import flows, release
from app.cli import app as cli
from app.compliance import service as compliance
from app.incidents import service as incidents
from app.main import create_app
from app.startup import STARTUP_ERRORS
from app.systems import service as systems


def _registry_sizes() -> tuple[int, ...]:
    return (
        len(release._release_checks),
        len(flows._sweep_hooks),
        len(flows._carry_over_hooks),
        len(systems._dependents),
        len(systems._read_extras),
    )


def test_create_app_wires_every_expected_hook_once():
    create_app()
    assert all(hook.present() for hook in wiring.expected_hooks())
    checks = release.release_checks("production")
    assert [c for c in checks if c is incidents.gate_check] == [incidents.gate_check]
    assert [c for c in checks if c is compliance.gate_check] == [compliance.gate_check]
    before = _registry_sizes()
    wiring.wire()
    create_app()
    assert _registry_sizes() == before  # idempotent: nothing registered twice


def test_nothing_is_registered_by_importing_a_domain():
    """The hooks come from wire(), not from whatever happened to be imported (a fresh interpreter)."""
    code = (
        "from app.approvals import flows, release\n"
        "from app.systems import service as systems\n"
        "import app.incidents.service, app.monitoring.service, app.reviews.service, app.replication.service\n"
        "import app.compliance.service, app.approvals.service\n"
        "assert release._release_checks == [] and flows._sweep_hooks == [], 'registered at import'\n"
        "assert flows._carry_over_hooks == [] and systems._dependents == {} and systems._read_extras == []\n"
        "from app.main import create_app\n"
        "create_app()\n"
        "assert len(release._release_checks) == 2 and len(systems._dependents) == 4\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_hook_that_does_not_register_stops_the_start(monkeypatch):
    monkeypatch.setattr(
        release, "_release_checks", [c for c in release._release_checks if c is not incidents.gate_check]
    )
    monkeypatch.setattr(release, "register_release_check", lambda check: None)  # a broken hook point

    with pytest.raises(wiring.WiringError, match=r"release check app\.incidents\.service\.gate_check"):
        create_app()
    with pytest.raises(STARTUP_ERRORS, match="missing cross-domain hook"):
        wiring.check_wiring()

    result = CliRunner().invoke(cli, ["reviews", "due"])
    assert result.exit_code == 2
    missing = "error: missing cross-domain hook(s): release check app.incidents.service.gate_check"
    assert missing in result.output


def test_the_error_names_every_missing_hook():
    hooks = [
        wiring.Hook("approvals sweep", "a.b.one", lambda: None, lambda: False),
        wiring.Hook("system history", "two (table_two)", lambda: None, lambda: True),
        wiring.Hook("release check", "a.b.three", lambda: None, lambda: False),
    ]
    with pytest.raises(wiring.WiringError) as caught:
        wiring.check_wiring(hooks)
    message = str(caught.value)
    assert "approvals sweep a.b.one; release check a.b.three" in message
    assert "two" not in message
