"""The MLflow bridge against a real ``mlflow server`` (SQLite backend, proxied local artifacts).

The server runs from ``.venv-mlflow`` (tests/integrations/mlflow/requirements.lock; .ci/run makes it). The
registry runs on the test database (SQLite, or PostgreSQL with AIREG_TEST_DATABASE_URL).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from tests.factories import MINIMAL, Ops
from tests.integrations.mlflow_server import MLFLOW, Mlflow, mlflow_server

pytestmark = pytest.mark.skipif(
    not MLFLOW.exists(),
    reason=f"no MLflow server venv: {MLFLOW} is missing (make it as .ci/run does, step 'MLflow server venv')",
)

TAG = "aireg.release.production"


@pytest.fixture(scope="session")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlflow]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        driver = Mlflow(url)
        driver.url = url  # type: ignore[attr-defined]
        yield driver


def expected_digest(files: dict[str, bytes]) -> str:
    """The README's recipe, written out independently of the bridge."""
    lines = sorted(f"{p}\t{len(c)}\t{hashlib.sha256(c).hexdigest()}\n".encode() for p, c in files.items())
    return "sha256:" + hashlib.sha256(b"".join(lines)).hexdigest()


def make_model(mlflow: Mlflow, versions: list[tuple[dict[str, float], dict[str, bytes]]]) -> tuple[str, list]:
    name = f"weld-{uuid.uuid4().hex[:8]}"
    experiment = mlflow.experiment(name)
    mlflow.model(name)
    runs = []
    for metrics, files in versions:
        run = mlflow.run(experiment, metrics)
        mlflow.version(name, run, files)
        runs.append(run)
    return name, runs


def cli(*args: str) -> Any:
    return CliRunner().invoke(cli_app, ["mlflow", *args])


def ready_system(ops: Ops) -> str:
    system = ops.system()
    ops.classify(system["id"], MINIMAL)
    ops.assess(system["id"])
    return system["id"]


V1 = {"MLmodel": b"flavor: onnx\n", "data/model.onnx": b"\x01" * 4096}
V2 = {"MLmodel": b"flavor: onnx\n", "data/model.onnx": b"\x02" * 4096}


def test_sync_copies_versions_idempotently_and_refuses_a_changed_digest(mlflow: Mlflow, ops: Ops) -> None:
    sid = ready_system(ops)
    name, _ = make_model(
        mlflow,
        [({"recall": 0.97, "precision": 0.9, "loss/val": 0.2}, V1), ({"recall": 0.98}, V2)],
    )
    args = ("--tracking-uri", mlflow.url, "--model", name, "--system", sid)  # type: ignore[attr-defined]

    first = cli("sync", *args)
    assert first.exit_code == 0, first.output
    assert "2 registered, 0 unchanged, 0 conflicts, 0 skipped" in first.output
    assert "loss/val" in first.output  # a metric name aireg does not admit is named, not silently lost
    versions = ops.ok(ops.client.get(f"/api/v1/systems/{sid}/versions", headers=ops.carol))["items"]
    by_version = {v["version"]: v for v in versions}
    assert set(by_version) == {"1", "2"}
    assert by_version["1"]["artifact_digest"] == expected_digest(V1)
    assert by_version["2"]["artifact_digest"] == expected_digest(V2)
    assert by_version["1"]["metrics"] == {"precision": 0.9, "recall": 0.97}
    assert by_version["2"]["metrics"] == {"recall": 0.98}
    assert by_version["1"]["created_by"].startswith("cli")
    trail = ops.ok(ops.client.get("/api/v1/audit-events", params={"entity_id": sid}, headers=ops.admin))
    assert [e["after"]["version"] for e in trail["items"] if e["action"] == "version.create"] == ["1", "2"]

    again = cli("sync", *args)
    assert again.exit_code == 0, again.output
    assert "0 registered, 2 unchanged, 0 conflicts, 0 skipped" in again.output

    # version 3 exists in aireg already, with another artifact: a conflict, and aireg keeps its record
    ops.version(sid, "3", n=7)
    run = mlflow.run(mlflow.experiment(f"{name}-more"), {"recall": 0.5})
    mlflow.version(name, run, {"MLmodel": b"other\n"})
    conflict = cli("sync", *args)
    assert conflict.exit_code == 1, conflict.output
    assert "conflict: version 3" in conflict.output
    v3 = ops.ok(ops.client.get(f"/api/v1/systems/{sid}/versions/3", headers=ops.carol))
    assert v3["artifact_digest"] == "sha256:" + "07" * 32

    # a version with no artifact file has no digest: skipped with the reason, never registered
    empty = mlflow.run(mlflow.experiment(f"{name}-empty"), {})
    body = {"name": name, "source": f"{empty['artifact_uri']}/model", "run_id": empty["run_id"]}
    mlflow.call("POST", "model-versions/create", json=body)
    skipped = cli("sync", *args)
    assert skipped.exit_code == 1, skipped.output  # version 3 is still a conflict
    assert "version 4: skipped: its artifact directory" in skipped.output
    assert "0 registered, 2 unchanged, 1 conflicts, 1 skipped" in skipped.output


def test_unknown_model_or_system_is_exit_2(mlflow: Mlflow, ops: Ops) -> None:
    sid = ready_system(ops)
    url = mlflow.url  # type: ignore[attr-defined]
    r = cli("sync", "--tracking-uri", url, "--model", "no-such-model", "--system", sid)
    assert r.exit_code == 2 and "RESOURCE_DOES_NOT_EXIST" in r.output, r.output
    r = cli("sync", "--tracking-uri", url, "--model", "x", "--system", "AIS-999999")
    assert r.exit_code == 2 and "does not exist" in r.output, r.output


def test_gate_writes_the_release_decision_as_a_version_tag(mlflow: Mlflow, ops: Ops) -> None:
    sid = ready_system(ops)
    name, runs = make_model(mlflow, [({"recall": 0.97}, V1), ({"recall": 0.98}, V2)])
    args = ("--tracking-uri", mlflow.url, "--model", name, "--system", sid)  # type: ignore[attr-defined]
    assert cli("sync", *args).exit_code == 0

    before = cli("gate", *args)
    assert before.exit_code == 0, before.output
    for version in ("1", "2"):
        value = mlflow.tags(name, version)[TAG]
        assert value.startswith("denied: ") and "NO_APPROVAL" in value.split(": ", 1)[1].split(","), value
        gate = ops.release(sid, version)
        assert value == "denied: " + ",".join(
            dict.fromkeys(r["code"] for r in gate["reasons"] if r["severity"] == "error")
        )

    ops.approve(sid, "1")
    after = cli("gate", *args)
    assert after.exit_code == 0, after.output
    assert mlflow.tags(name, "1")[TAG] == "allowed"
    assert "NO_APPROVAL" in mlflow.tags(name, "2")[TAG]
    assert "1 allowed, 1 denied" in after.output

    # the approved artifact is replaced in MLflow's store: the gate sees it and denies
    mlflow.upload(runs[0]["artifact_uri"], "model/data/extra.bin", b"swapped")
    swapped = cli("gate", *args)
    assert swapped.exit_code == 0, swapped.output
    assert mlflow.tags(name, "1")[TAG] == "denied: DIGEST_MISMATCH"

    pilot = cli("gate", *args, "--environment", "pilot")
    assert pilot.exit_code == 0, pilot.output
    assert "aireg.release.pilot" in mlflow.tags(name, "2")
