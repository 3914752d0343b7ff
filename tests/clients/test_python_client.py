"""The pipeline client ``aireg_client`` (clients/python) and ``aireg-gate`` against a real ``aireg serve``;
retries through a small local HTTP server that answers 503 (or stalls) before passing requests on; the CI
files that run the gate in one step."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import threading
import time
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from aireg_client import AsyncClient, Client, NoDecision, Reason, ReleaseDecision, __version__
from aireg_client import _retry as client_retry
from aireg_client.cli import main as gate
from aireg_client.cli import parser
from typer.testing import CliRunner

from app import http_retry as app_retry
from app.cli import app as cli
from tests.approvals.helpers import MINIMAL, sign, submit
from tests.server import free_port, serve

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"


@pytest.fixture
def live_server(client: Any, database: tuple[str, str | None], tmp_path: Path) -> Iterator[str]:
    with serve(database, tmp_path / "serve.log", AIREG_LOG_LEVEL="warning") as base:
        yield base


@pytest.fixture
def gate_setup(live_server: str, client: Any, team: dict, make_system: Any) -> dict[str, str]:
    """A system approved for v1 in production, one with no approval, and a pipeline (mlops) token."""
    allowed = make_system(MINIMAL)
    a = submit(client, team["bob"], allowed, "v1", "production")["id"]
    sign(client, team["clara"], a, "compliance_officer")
    sign(client, team["berta"], a, "business_owner")
    return {
        "url": live_server,
        "token": team["ci"]["Authorization"].removeprefix("Bearer "),
        "allowed": allowed,
        "approval": a,
        "denied": make_system(MINIMAL),
    }


def run_gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``aireg-gate`` in this process: exit status, stdout, stderr (argparse errors exit too)."""
    try:
        code = gate(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def release_check(*args: str) -> Any:
    return CliRunner().invoke(cli, ["release-check", *args])


def test_gate_exit_statuses_match_release_check(gate_setup: dict[str, str], capsys: Any) -> None:
    s = gate_setup
    common = ["--url", s["url"], "--token", s["token"]]
    cases = [
        (0, ["--system", s["allowed"], "--version", "v1", *common]),
        (1, ["--system", s["denied"], "--version", "v1", "--environment", "pilot", *common]),
        (1, ["--system", s["allowed"], "--version", "v1", "--digest", "sha256:" + "0" * 64, *common]),
        (2, ["--system", "AIS-999999", "--version", "v1", *common]),  # unknown system: 404
        (2, ["--system", s["allowed"], "--version", "v1", "--url", s["url"], "--token", "aireg_" + "x" * 43]),
        (2, ["--system", "nonsense", "--version", "v1", *common]),  # 422
        (2, ["--system", s["allowed"], "--version", "v1", "--environment", "staging", *common]),
        (2, ["--system", s["allowed"], *common]),  # --version missing
        (2, ["--system", s["allowed"], "--version", "v1", "--url", "not a url", "--token", s["token"]]),
    ]
    for expected, args in cases:
        code, out, err = run_gate(capsys, *args)
        assert code == expected, (args, out, err)
        checked = release_check(*args)
        assert checked.exit_code == expected, (args, checked.output)
        if expected < 2:
            assert out == checked.stdout  # the same lines, word for word
    code, out, _ = run_gate(capsys, *cases[0][1])
    assert out.startswith(f"ALLOWED: {s['allowed']} v1 in production (approval {s['approval']}, valid until")
    code, out, _ = run_gate(capsys, *cases[1][1])
    assert out.startswith(f"DENIED: {s['denied']} v1 in pilot") and "error NO_APPROVAL:" in out
    code, out, err = run_gate(capsys, *cases[4][1])
    assert "HTTP 401" in err and "no decision" in err

    code, out, _ = run_gate(capsys, "--json", *cases[0][1])
    assert code == 0 and json.loads(out)["approval_id"] == s["approval"]
    code, out, _ = run_gate(capsys, "--json", *cases[3][1])
    assert code == 2 and json.loads(out)["status"] == 404


def test_gate_reads_url_and_token_from_the_environment(
    gate_setup: dict[str, str], capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIREG_URL", gate_setup["url"])
    monkeypatch.setenv("AIREG_TOKEN", gate_setup["token"])
    assert run_gate(capsys, "--system", gate_setup["allowed"], "--version", "v1")[0] == 0
    assert run_gate(capsys, "--system", gate_setup["denied"], "--version", "v1")[0] == 1
    monkeypatch.delenv("AIREG_TOKEN")
    code, _, err = run_gate(capsys, "--system", gate_setup["allowed"], "--version", "v1")
    assert code == 2 and "AIREG_TOKEN" in err


def test_client_returns_typed_decisions(gate_setup: dict[str, str]) -> None:
    s = gate_setup
    with Client(s["url"], s["token"], timeout=10) as c:
        ok = c.release_permission(s["allowed"], "v1")
        no = c.release_permission(s["denied"], "v1", environment="pilot")
        with pytest.raises(NoDecision) as unknown:
            c.release_permission("AIS-999999", "v1")
    assert isinstance(ok, ReleaseDecision) and ok.allowed and ok.approval_id == s["approval"]
    assert ok.valid_until is not None and ok.valid_until.tzinfo is not None
    assert ok.checked_at is not None and ok.checked_at.tzinfo is not None and ok.attempts == 1
    assert ok.reasons == () and (ok.system, ok.version, ok.environment) == (s["allowed"], "v1", "production")
    assert not no.allowed and no.approval_id is None
    assert [r.code for r in no.reasons] == ["NO_APPROVAL"] and isinstance(no.reasons[0], Reason)
    assert no.reasons[0].severity == "error" and no.reasons[0].message
    assert unknown.value.status == 404 and unknown.value.attempts == 1  # a 4xx is not retried

    async def ask() -> tuple[ReleaseDecision, ReleaseDecision]:
        async with AsyncClient(s["url"], s["token"]) as c:
            return await asyncio.gather(
                c.release_permission(s["allowed"], "v1"),
                c.release_permission(s["allowed"], "v1", artifact_digest="sha256:" + "0" * 64),
            )

    async_ok, mismatch = asyncio.run(ask())
    assert async_ok.allowed and async_ok.approval_id == s["approval"]
    assert not mismatch.allowed and "DIGEST_MISMATCH" in [r.code for r in mismatch.reasons]
    with pytest.raises(ValueError, match="environment"):
        Client(s["url"], s["token"]).release_permission(s["allowed"], "v1", environment="staging")


class Flaky:
    """A real HTTP server in front of the service: plays ``script`` (``"503"``, ``"503 retry-after 1"``,
    ``"stall"``) for the first requests, then passes each request on to ``upstream``."""

    def __init__(self, upstream: str, script: list[str]) -> None:
        self.script = list(script)
        self.requests = 0
        self.lock = threading.Lock()
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with flaky.lock:
                    flaky.requests += 1
                    action = flaky.script.pop(0) if flaky.script else "pass"
                if action == "stall":
                    time.sleep(1.0)
                    action = "503"
                if action.startswith("503"):
                    body = b'{"status": 503, "title": "Service unavailable"}'
                    self.send_response(503)
                    if "retry-after" in action:
                        self.send_header("Retry-After", action.rsplit(" ", 1)[1])
                else:
                    answer = httpx.get(
                        upstream + self.path,
                        headers={"Authorization": self.headers["Authorization"]},
                        timeout=10,
                    )
                    body = answer.content
                    self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up waiting (a stall)
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_503_is_retried_with_backoff_and_retry_after(gate_setup: dict[str, str], capsys: Any) -> None:
    s = gate_setup
    flaky = Flaky(s["url"], ["503 retry-after 1", "503"])
    try:
        started = time.monotonic()
        with Client(flaky.url, s["token"], retries=3, backoff=0.05) as c:
            decision = c.release_permission(s["allowed"], "v1")
        assert decision.allowed and decision.attempts == 3 and flaky.requests == 3
        assert time.monotonic() - started >= 1.0  # Retry-After: 1 outweighs the 0.05 s backoff

        flaky.script, flaky.requests = ["503", "503"], 0
        args = ["--system", s["allowed"], "--version", "v1", "--url", flaky.url, "--token", s["token"]]
        code, out, err = run_gate(capsys, *args, "--backoff", "0.05")
        assert code == 0 and out.startswith("ALLOWED:") and flaky.requests == 3, err

        flaky.script, flaky.requests = ["503", "503"], 0
        result = release_check(*args, "--backoff", "0.05")
        assert result.exit_code == 0 and result.stdout.startswith("ALLOWED:") and flaky.requests == 3

        # retries spent: the 503 is the answer, no decision
        flaky.script, flaky.requests = ["503"] * 5, 0
        code, _, err = run_gate(capsys, *args, "--retries", "2", "--backoff", "0")
        assert code == 2 and "HTTP 503" in err and flaky.requests == 3
        flaky.script, flaky.requests = ["503"] * 5, 0
        result = release_check(*args, "--retries", "2", "--backoff", "0")
        assert result.exit_code == 2 and "HTTP 503" in result.output and flaky.requests == 3

        # a timeout is retried too
        flaky.script, flaky.requests = ["stall"], 0
        code, out, err = run_gate(capsys, *args, "--timeout", "0.3", "--backoff", "0")
        assert code == 0 and flaky.requests == 2, err

        async def ask() -> ReleaseDecision:
            async with AsyncClient(flaky.url, s["token"], backoff=0.01) as c:
                return await c.release_permission(s["allowed"], "v1")

        flaky.script, flaky.requests = ["503", "503"], 0
        decision = asyncio.run(ask())
        assert decision.allowed and decision.attempts == 3 and flaky.requests == 3
    finally:
        flaky.close()


def test_connection_refused_is_exit_2_after_the_retries(gate_setup: dict[str, str], capsys: Any) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    args = ["--system", gate_setup["allowed"], "--version", "v1", "--url", nobody]
    args += ["--token", gate_setup["token"], "--retries", "2", "--backoff", "0.1"]
    started = time.monotonic()
    code, _, err = run_gate(capsys, *args)
    assert code == 2 and "could not reach" in err and "3 attempt(s)" in err
    assert time.monotonic() - started >= 0.3  # waited 0.1 s, then 0.2 s
    started = time.monotonic()
    result = release_check(*args)
    assert result.exit_code == 2 and "could not reach" in result.output
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("policy_module", [client_retry, app_retry], ids=["client", "release-check"])
def test_the_two_copies_of_the_retry_policy_agree(policy_module: Any) -> None:
    """app/http_retry.py is a deliberate copy of the client's policy (separate distributions)."""
    policy = policy_module.RetryPolicy(retries=3, backoff=0.5)
    request = httpx.Request("GET", "http://aireg.test/")

    def answer(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers, request=request)

    assert [policy.delay(n) for n in (1, 2, 3, 4, 8)] == [0.5, 1.0, 2.0, 4.0, 30.0]
    assert policy.delay(1, answer(503, **{"Retry-After": "7"})) == 7.0
    assert policy.delay(1, answer(503, **{"Retry-After": "3600"})) == 30.0
    assert policy.delay(2, answer(503, **{"Retry-After": "soon"})) == 1.0
    http_date = "Wed, 21 Oct 2015 07:28:00 GMT"  # in the past: at once
    assert policy.delay(1, answer(503, **{"Retry-After": http_date})) == 0.0
    assert policy.should_retry(1, answer(503)) and policy.should_retry(3, answer(503))
    assert not policy.should_retry(4, answer(503))  # three retries spent
    for status in (200, 400, 401, 404, 422, 429, 500, 502):
        assert not policy.should_retry(1, answer(status))
    for error in (httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")):
        assert policy.should_retry(1, error)
    assert not policy.should_retry(1, httpx.UnsupportedProtocol("not a url"))
    assert not policy.should_retry(1, ValueError("bug"))
    assert policy_module.RETRY_STATUSES == client_retry.RETRY_STATUSES
    assert policy_module.RETRY_ERRORS == client_retry.RETRY_ERRORS


def test_the_distribution_layout() -> None:
    meta = tomllib.loads((CLIENT / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["name"] == "aireg-client" and project["version"] == "0.1.0" == __version__
    assert project["license"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert project["scripts"] == {"aireg-gate": "aireg_client.cli:main"}
    assert [d.split(">")[0] for d in project["dependencies"]] == ["httpx"]
    assert meta["build-system"]["build-backend"] == "hatchling.build"
    (package,) = meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert (CLIENT / package / "py.typed").is_file() and (CLIENT / package / "__init__.py").is_file()
    assert (CLIENT / project["readme"]).is_file()
    for source in (CLIENT / package).glob("*.py"):
        assert "from app" not in source.read_text() and "import app" not in source.read_text(), source


def _options(command: str) -> dict[str, str]:
    """``--option value`` pairs of one ``aireg-gate`` command line (flags map to "")."""
    words = shlex.split(command.replace("${GATE_DIGEST:+", "").replace('"$GATE_DIGEST"}', '"$GATE_DIGEST"'))
    assert words[0] == "aireg-gate", command
    found: dict[str, str] = {}
    rest = words[1:]
    while rest:
        option = rest.pop(0)
        assert option.startswith("--"), command
        found[option] = rest.pop(0) if rest and not rest[0].startswith("--") else ""
    return found


def _gate_options() -> set[str]:
    return {s for a in parser()._actions for s in a.option_strings if s.startswith("--")}


def test_the_client_cli_has_the_options_of_release_check() -> None:
    command = typer.main.get_command(cli)
    check = command.commands["release-check"]  # type: ignore[attr-defined]
    release_check_options = {o for p in check.params for o in p.opts if o.startswith("--")}
    assert release_check_options <= _gate_options()
    assert _gate_options() - release_check_options == {"--help", "--client-version"}


def test_github_action_runs_the_gate_in_one_step() -> None:
    action = yaml.safe_load((ROOT / ".github/actions/aireg-gate/action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert {"url", "token", "system", "version", "environment", "artifact-digest"} <= set(inputs)
    assert all(inputs[name]["required"] for name in ("url", "token", "system", "version"))
    install, run = action["runs"]["steps"]
    assert "pip install" in install["run"] and "aireg-client" in inputs["client"]["default"]
    assert "clients/python" in install["run"]  # or from this repository
    options = _options(run["run"].strip())
    assert set(options) <= _gate_options()
    assert {"--system", "--version", "--environment", "--digest", "--url", "--retries"} <= set(options)
    # every option's value comes from its input, through the step's environment (no ${{ }} in the script)
    env = run["env"]
    for option, input_name in [
        ("--system", "system"),
        ("--version", "version"),
        ("--environment", "environment"),
        ("--digest", "artifact-digest"),
        ("--url", "url"),
        ("--retries", "retries"),
    ]:
        variable = options[option].removeprefix("$")
        assert env[variable] == "${{ inputs." + input_name + " }}", option
    assert env["AIREG_TOKEN"] == "${{ inputs.token }}" and "--token" not in options  # not on a command line
    assert "${{" not in run["run"]


def test_gitlab_component_runs_the_gate_in_one_job() -> None:
    spec, jobs = yaml.safe_load_all((ROOT / "ci/gitlab/aireg-gate.yml").read_text())
    inputs = spec["spec"]["inputs"]
    assert {"system", "version", "environment", "artifact-digest", "retries"} <= set(inputs)
    assert "default" not in inputs["system"] and "default" not in inputs["version"]  # required
    assert inputs["environment"]["options"] == ["pilot", "production"]
    (job,) = jobs.values()
    install, run = job["script"]
    assert "pip install" in install and "aireg-client" in inputs["client"]["default"]
    options = _options(run)
    assert set(options) <= _gate_options()
    for option, input_name in [
        ("--system", "system"),
        ("--version", "version"),
        ("--environment", "environment"),
        ("--digest", "artifact-digest"),
        ("--retries", "retries"),
    ]:
        variable = options[option].removeprefix("$")
        assert job["variables"][variable] == f"$[[ inputs.{input_name} ]]", option
    for name in inputs:
        assert f"inputs.{name} ]]" in (ROOT / "ci/gitlab/aireg-gate.yml").read_text(), name


def test_gate_arguments_parse_like_the_ci_files_pass_them() -> None:
    """The CI command lines with values filled in are accepted by the real parser."""
    line = "--url https://x --system AIS-000001 --version v1 --environment pilot --retries 3 --digest "
    args = parser().parse_args([*line.split(), "sha256:" + "0" * 64])
    assert isinstance(args, argparse.Namespace) and args.retries == 3 and args.environment == "pilot"
