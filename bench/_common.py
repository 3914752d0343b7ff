"""What the benches share: a throw-away database, the seeding they all do, timing, a real server, memory.

A bench script starts with::

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._common import ...  # noqa: E402

No app module is imported here at module level: the settings are read once, so a bench points the
environment at its database (``bench_database``) before anything of ``app`` is imported.
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key-0123456789abcdef"
ACTOR = "bench"


# -- a throw-away database ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchDatabase:
    """The database a bench runs against: its URL, its throw-away PostgreSQL schema, its temporary folder."""

    url: str
    schema: str | None
    tmp: Path

    @property
    def backend(self) -> str:
        return "PostgreSQL" if self.url.startswith("postgresql") else "SQLite"

    @property
    def label(self) -> str:
        """The URL without credentials, for the printed figures."""
        return self.url.split("@")[-1] + (f" (schema {self.schema})" if self.schema else "")


def _run_sql(url: str, sql: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@contextmanager
def bench_database(
    url: str | None = None, *, own_state: bool = True, migrate: bool = True, **env: str
) -> Iterator[BenchDatabase]:
    """Point the settings at a fresh database, migrated; drop it (or its folder) at the end.

    ``url=None``: a SQLite file in a temporary folder. A PostgreSQL URL: a new schema there, dropped at the
    end. ``own_state``: audit keys, checkpoints and signing keys of this run only, never the working
    directory's. ``env``: more ``AIREG_*`` settings (e.g. ``AIREG_ADOPTED_FRAMEWORKS="ai_act"``).
    Must run before any ``app`` module reads the settings.
    """
    tmp = Path(tempfile.mkdtemp(prefix="aireg-bench-"))
    schema = None
    if url is None:
        url = f"sqlite:///{tmp / 'bench.db'}"
    elif url.startswith("postgresql"):
        schema = f"aireg_bench_{uuid.uuid4().hex[:8]}"
        _run_sql(url, f'CREATE SCHEMA "{schema}"')
        os.environ["AIREG_DATABASE_SCHEMA"] = schema
    os.environ["AIREG_DATABASE_URL"] = url
    os.environ.setdefault("AIREG_SECRET_KEY", SECRET_KEY)
    os.environ["AIREG_LOG_LEVEL"] = "warning"
    if own_state:
        os.environ["AIREG_STATE_DIR"] = str(tmp / "state")
        os.environ.pop("AIREG_AUDIT_KEY", None)
    os.environ.update(env)
    try:
        if migrate:
            from app.db import migrate as run_migrations

            run_migrations()
        yield BenchDatabase(url, schema, tmp)
    finally:
        from app.db import dispose_engines

        dispose_engines()
        if schema:
            _run_sql(url, f'DROP SCHEMA "{schema}" CASCADE')
        shutil.rmtree(tmp, ignore_errors=True)


def analyze(table: str = "ai_system") -> None:
    """Fresh planner statistics (on PostgreSQL also a visibility map for index-only counts), as a settled
    database has after a bulk insert."""
    from app.db import get_engine

    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE" if conn.dialect.name == "sqlite" else f"VACUUM ANALYZE {table}")


# -- seeding -----------------------------------------------------------------------------------------------

SITES: dict[str, tuple[str, str]] = {
    "STR": ("BODY1", "ASM2"),
    "LYO": ("SMT1", "TEST"),
    "POZ": ("CNC3", "PACK"),
}
CLASSES = ("high_risk", "limited_risk", "minimal_risk", "minimal_risk", None, "prohibited")
TIERS = ("low", "medium", "high", "critical", None)
STAGES = ("idea", "pilot", "production", "production", "retired")
WORDS = (
    "weld",
    "paint",
    "press",
    "solder",
    "tool wear",
    "label",
    "forecast",
    "scheduler",
    "vision",
    "anomaly",
)
OFFICER = "clara"  # the global compliance officer of ``seed_portfolio``


def add_site(session: Session, code: str, lines: Iterable[str] = ()) -> None:
    """A site with its lines (each line's name is its code)."""
    from app.systems import service as systems
    from app.systems.models import LineIn, SiteCreate

    data = SiteCreate(code=code, name=f"Plant {code}", lines=[LineIn(code=c, name=c) for c in lines])
    systems.create_site(session, data, actor=ACTOR)


def add_zone(session: Session, code: str, site: str, purdue_level: int, sl_target: int = 3) -> None:
    """An IEC 62443 zone with the same target security level for every FR."""
    from app.systems.models import SLVector
    from app.zones import service as zones
    from app.zones.models import ZoneCreate

    vector = SLVector(**{f"FR{i}": sl_target for i in range(1, 8)})
    name = code.rsplit("-", 1)[-1]
    zones.create_zone(
        session,
        ZoneCreate(code=code, name=name, site=site, purdue_level=purdue_level, sl_target=vector),
        actor=ACTOR,
    )


def add_user(
    session: Session, username: str, grants: Iterable[tuple[str, str]] = (), *, password: str | None = None
) -> None:
    """A user with ``(role, site)`` grants (``site="*"``: every site)."""
    from app.identity import service as identity
    from app.identity.models import Role, UserCreate

    identity.create_user(session, UserCreate(username=username, password=password), actor=ACTOR)
    for role, site in grants:
        identity.grant_role(session, username, Role(role), site, actor=ACTOR)


def issue_token(session: Session, username: str, *, days: int = 1) -> str:
    """A fresh API token of ``username``."""
    from app.identity import service as identity

    return identity.issue_token(session, username, name=ACTOR, expires_days=days, actor=ACTOR).token


def insert_batches(
    conn: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]], size: int = 5000
) -> int:
    """Insert ``rows`` into ``table`` ``size`` at a time (executemany); returns how many."""
    batch: list[dict[str, Any]] = []
    count = 0
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            conn.execute(table.insert(), batch)
            count += len(batch)
            batch.clear()
    if batch:
        conn.execute(table.insert(), batch)
        count += len(batch)
    return count


def portfolio_rows(rows: int, owners: Sequence[str]) -> Iterator[dict[str, Any]]:
    """``rows`` AI-system rows across ``SITES`` (mixed classes, tiers, stages, zones); ``owners`` holds three
    business owners a site, in ``SITES`` order."""
    site_codes = list(SITES)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(1, rows + 1):
        site = site_codes[i % 3]
        now = start + timedelta(minutes=i)
        yield {
            "id": f"AIS-{i:06d}",
            "name": f"{WORDS[i % len(WORDS)].title()} system {i}",
            "purpose": f"Detects {WORDS[(i * 7) % len(WORDS)]} issues on line {i % 97}",
            "site": site,
            "line": SITES[site][(i // 3) % 2],
            "business_owner": owners[site_codes.index(site) * 3 + i % 3],
            "technical_owner": None,
            "vendor": None if i % 4 else "Vendor GmbH",
            "ai_act_role": "provider" if i % 2 else "deployer",
            "lifecycle_stage": STAGES[i % len(STAGES)],
            "personal_data": i % 5 == 0,
            "zone": f"{site}-{'CTL' if i % 2 else 'ENT'}",
            "sl_achieved": {f"FR{k}": (i + k) % 4 for k in range(1, 8)},
            "ai_act_class": CLASSES[i % len(CLASSES)],
            "risk_tier": TIERS[i % len(TIERS)],
            "created_at": now,
            "updated_at": now,
            "revision": 1,
        }


def seed_portfolio(rows: int, *, passwords: Mapping[str, str] | None = None) -> str:
    """Three sites with two lines and two zones each, three business owners a site (``owner<n>.<site>``),
    the global compliance officer ``clara``, and ``rows`` systems (bulk insert, fresh statistics).

    ``passwords``: users who sign in through the web pages. Returns a token of ``clara``.
    """
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    from app.db import get_engine, session_scope
    from app.systems.models import IdCounter

    passwords = passwords or {}
    owners: list[str] = []
    with session_scope() as session:
        for site, lines in SITES.items():
            add_site(session, site, lines)
            add_zone(session, f"{site}-CTL", site, 2)
            add_zone(session, f"{site}-ENT", site, 4)
            for n in range(3):
                username = f"owner{n}.{site.lower()}"
                add_user(session, username, [("business_owner", site)], password=passwords.get(username))
                owners.append(username)
        add_user(session, OFFICER, [("compliance_officer", "*")], password=passwords.get(OFFICER))
        token = issue_token(session, OFFICER)
    with get_engine().begin() as conn:
        insert_batches(conn, SQLModel.metadata.tables["ai_system"], portfolio_rows(rows, owners))
        conn.execute(sa.insert(IdCounter).values(kind="system", value=rows))
    analyze()
    return token


# -- timing ------------------------------------------------------------------------------------------------

_UNITS = {"ns": 1.0, "µs": 1e3, "ms": 1e6, "s": 1e9}


@dataclass(frozen=True)
class Figures:
    """Order statistics of timed samples, in nanoseconds (nearest rank)."""

    samples: list[int] = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.samples)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), nearest rank."""
        s = self.samples
        return float(s[min(len(s) - 1, int(len(s) * q / 100))])

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    def text(self, unit: str = "ms", *stats: str) -> str:
        """e.g. ``median     1.2 ms   p99     3.4 ms   (n=1000)``; ``stats`` among median, p<N>, min, max."""
        scale = _UNITS[unit]
        parts = []
        for stat in stats or ("median", "p99"):
            if stat == "median":
                value = self.median
            elif stat == "min":
                value = float(self.samples[0])
            elif stat == "max":
                value = float(self.samples[-1])
            else:
                value = self.percentile(float(stat.removeprefix("p")))
            parts.append(f"{stat} {value / scale:8.{1 if unit in ('µs', 'ns') else 2}f} {unit}")
        return "   ".join(parts) + f"   (n={self.n})"

    def ms(self, stat: str = "median") -> float:
        """One statistic in milliseconds."""
        value = self.median if stat == "median" else self.percentile(float(stat.removeprefix("p")))
        return value / 1e6


def figures(samples_ns: Iterable[int]) -> Figures:
    """``Figures`` of samples in nanoseconds (``time.perf_counter_ns`` differences)."""
    return Figures(sorted(samples_ns))


@contextmanager
def _collector_off(off: bool) -> Iterator[None]:
    if not off:
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def time_calls(fn: Callable[[], object], runs: int, *, warmup: int = 3, gc_off: bool = False) -> Figures:
    """Call ``fn`` ``warmup`` times, then time ``runs`` calls (optionally with the garbage collector off)."""
    for _ in range(warmup):
        fn()
    samples: list[int] = []
    with _collector_off(gc_off):
        for _ in range(runs):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
    return figures(samples)


async def time_calls_async(
    fn: Callable[[], Awaitable[object]], runs: int, *, warmup: int = 3, gc_off: bool = False
) -> Figures:
    """``time_calls`` for a coroutine function, on the running loop."""
    for _ in range(warmup):
        await fn()
    samples: list[int] = []
    with _collector_off(gc_off):
        for _ in range(runs):
            start = time.perf_counter_ns()
            await fn()
            samples.append(time.perf_counter_ns() - start)
    return figures(samples)


def load_average() -> str:
    """The box's load while measuring: shared machines make wall times follow it."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


# -- a real server and its memory ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    """A served app in a subprocess."""

    proc: subprocess.Popen[bytes]
    base_url: str

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the children of uvicorn's supervisor, or the process itself."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        return pids or [self.proc.pid]


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail if the process exits (showing ``log``, its stderr) or
    ``timeout`` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not become ready within {timeout:.0f} s")


@contextmanager
def serve(
    *, workers: int = 1, env: Mapping[str, str] | None = None, command: Sequence[str] | None = None
) -> Iterator[Server]:
    """``aireg serve --workers N`` (or ``command``, given ``--host``/``--port``) on a free port, in a
    subprocess with this process's settings; yields once ``/readyz`` answers 200, stops it at the end."""
    port = free_port()
    if command is None:
        command = [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers)]
        ready = "/readyz"
    else:
        ready = "/healthz"
    cmd = [*command, "--host", "127.0.0.1", "--port", str(port)]
    environ = dict(os.environ if env is None else env)
    fd, name = tempfile.mkstemp(prefix="aireg-bench-server-", suffix=".log")
    os.close(fd)
    log = Path(name)
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + ready, log)
        yield Server(proc, base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)


def memory_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a process in MB: its resident memory now and at its peak."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line[:5]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
