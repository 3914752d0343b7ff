"""Time ``aireg mlflow sync`` of a registered model with N versions (default 500) from a real MLflow server.

Run: ``.venv/bin/python bench/bench_mlflow_sync.py [--versions 500] [--files 2] [--workers 8]``. Needs the
MLflow server venv ``.venv-mlflow`` (tests/integrations/mlflow/requirements.lock, as .ci/run makes it).
Starts ``mlflow server`` (SQLite, proxied local artifacts) in a temporary directory, fills it through the
REST API (a run with three metrics and ``--files`` artifact files per version), makes a fresh SQLite registry
with one system, then times the sync as a user runs it (``aireg mlflow sync`` in a subprocess, end to end),
and a second, idempotent sync (every digest recomputed, nothing written). Target: the first under 30 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ACTOR, ROOT, add_site, add_user, bench_database


def fill(url: str, versions: int, files: int) -> str:
    from tests.integrations.mlflow_server import Mlflow

    mlflow = Mlflow(url)
    name = "bench-model"
    experiment = mlflow.experiment(name)
    mlflow.model(name)

    def make_run(i: int) -> dict:
        run = mlflow.run(experiment, {"recall": 0.9 + i / 1e5, "precision": 0.8, "f1": 0.85})
        for f in range(files):
            mlflow.upload(run["artifact_uri"], f"model/file{f}.bin", f"{i}:{f}".encode() * 512)
        return run

    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(make_run, range(versions)))
    for run in runs:  # in order: version numbers follow the runs
        body = {"name": name, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]}
        mlflow.call("POST", "model-versions/create", json=body)
    return name


def registry() -> str:
    """One system in the registry's (fresh) database; returns its id."""
    from app.db import session_scope
    from app.systems import service
    from app.systems.models import SystemCreate

    with session_scope() as session:
        add_user(session, "bob")
        add_site(session, "STR")
        data = SystemCreate(name="Weld seam inspection", purpose="bench", site="STR", business_owner="bob")
        return service.create_system(session, data, actor=ACTOR).id


def sync(url: str, model: str, system: str, workers: int) -> tuple[float, str]:
    aireg = ROOT / ".venv" / "bin" / "aireg"
    args = [str(aireg), "mlflow", "sync", "--tracking-uri", url, "--model", model, "--system", system]
    started = time.perf_counter()
    done = subprocess.run([*args, "--workers", str(workers)], capture_output=True, text=True, env=os.environ)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sync failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--files", type=int, default=2, help="artifact files per version")
    parser.add_argument("--workers", type=int, default=8, help="aireg's parallel requests")
    parser.add_argument("--server-workers", type=int, default=2, help="mlflow server worker processes")
    options = parser.parse_args()

    from tests.integrations.mlflow_server import MLFLOW, mlflow_server

    if not MLFLOW.exists():
        raise SystemExit(f"{MLFLOW} is missing: make the MLflow venv as .ci/run does")
    with bench_database() as db, mlflow_server(db.tmp, options.server_workers) as url:
        started = time.perf_counter()
        model = fill(url, options.versions, options.files)
        print(
            f"filled MLflow: {options.versions} versions x {options.files} files in "
            f"{time.perf_counter() - started:.1f} s"
        )
        system = registry()
        first, summary = sync(url, model, system, options.workers)
        print(f"first sync:  {first:6.2f} s  ({summary})  target < 30 s: {'ok' if first < 30 else 'MISSED'}")
        second, summary = sync(url, model, system, options.workers)
        print(f"second sync: {second:6.2f} s  ({summary})")


if __name__ == "__main__":
    main()
