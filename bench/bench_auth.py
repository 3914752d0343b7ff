"""Per-request cost of authentication + Casbin decision with 1,000 users and 5,000 role grants.

Builds a fresh database (SQLite file by default; ``--database-url postgresql+psycopg://...`` uses a throw-away
schema there) with ~20 sites, the users, their grants and one token each, all through the identity service.
Then measures, and prints:
  (a) in process: ``app.identity.dependencies.authenticate(token)`` + ``principal.can(...)`` per call,
      median and p99 in µs, cold (first decision per user on a fresh enforcer) and warm;
  (b) through FastAPI's TestClient: ``GET /api/v1/users/me`` (a cheap authenticated endpoint) next to
      ``GET /healthz`` (no login), so the difference is what authentication adds.

Run: ``.venv/bin/python bench/bench_auth.py [--users 1000] [--grants 5000] [--sites 20] [--requests 2000]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import add_site, add_user, bench_database, figures, issue_token

ROLES = [
    "compliance_officer",
    "risk_officer",
    "ot_security",
    "safety_engineer",
    "dpo",
    "business_owner",
    "auditor",
    "mlops",
    "admin",
]
ASKS = [
    ("system", "read"),
    ("system", "update"),
    ("version", "create"),
    ("audit", "read"),
    ("signoff.risk_officer", "sign"),
    ("release", "read"),
    ("user", "manage"),
]


def _percentiles(samples_ns: list[int]) -> str:
    return figures(samples_ns).text("µs")


def populate(
    users: int, grants: int, sites: int, seed: int
) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """Sites, users, grants and one token per user, through the service layer; returns tokens and grants."""
    from app.db import session_scope

    rng = random.Random(seed)
    codes = [f"S{n:02d}" for n in range(sites)]
    with session_scope() as session:
        for code in codes:
            add_site(session, code)
    names = [f"user{n:04d}" for n in range(users)]
    tokens: list[str] = []
    held: dict[str, list[tuple[str, str]]] = {name: [] for name in names}
    pairs: set[tuple[str, str, str]] = set()
    while len(pairs) < grants:
        name = names[len(pairs) % users] if len(pairs) < users else rng.choice(names)
        site = "*" if rng.random() < 0.01 else rng.choice(codes)
        role = rng.choice(ROLES[:-1]) if site != "*" or rng.random() < 0.5 else "auditor"
        pairs.add((name, role, site))
    by_user: dict[str, list[tuple[str, str]]] = {}
    for name, role, site in pairs:
        by_user.setdefault(name, []).append((role, site))
    for start in range(0, users, 100):
        with session_scope() as session:
            for name in names[start : start + 100]:
                held[name] = by_user.get(name, [])
                add_user(session, name, held[name])
                tokens.append(issue_token(session, name, days=30))
    return tokens, held


def bench_in_process(
    tokens: list[str], held: dict[str, list[tuple[str, str]]], rounds: int, seed: int
) -> None:
    from app.db import session_scope
    from app.identity.authz import get_authorizer, reset_authorizer
    from app.identity.dependencies import authenticate

    rng = random.Random(seed)
    names = sorted(held)
    asks = []
    for name in names:
        role_site = rng.choice(held[name]) if held[name] else ("", "S00")
        site = role_site[1] if role_site[1] != "*" else "S01"
        asks.append((rng.choice(ASKS), site if rng.random() < 0.8 else "S19"))

    # touch every token once, so the timed calls measure reads (last_used_at is written every 5 min at most)
    for token in tokens:
        authenticate(token)

    reset_authorizer()
    with session_scope(write=False) as session:
        t0 = time.perf_counter_ns()
        get_authorizer(session)
        build_ms = (time.perf_counter_ns() - t0) / 1e6
    grants = sum(len(v) for v in held.values())
    print(
        f"enforcer build ({len(policy_lines())} policy lines, {grants} grants): {build_ms:.1f} ms "
        "(once per process and per grant change)"
    )

    def timed(i: int) -> tuple[int, int, int]:
        """(authenticate ns, decision ns, CPU ns of both) for user ``i``'s request."""
        (obj, act), site = asks[i]
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        principal = authenticate(tokens[i])
        t1 = time.perf_counter_ns()
        principal.can(obj, act, site)
        t2, c2 = time.perf_counter_ns(), time.thread_time_ns()
        return t1 - t0, t2 - t1, c2 - c0

    for label, passes in (("cold", 1), ("warm", rounds)):
        samples = []
        order = list(range(len(tokens)))
        for _ in range(passes):
            if label == "warm":
                rng.shuffle(order)
            samples.extend(timed(i) for i in order)
        auth_ns, can_ns, cpu_ns = zip(*samples, strict=True)
        both = [a + c for a, c, _ in samples]
        what = "first decision per user, fresh enforcer" if label == "cold" else "decision cached"
        print(f"{label}  authenticate + can ({what}):")
        print(f"  - wall time:                 {_percentiles(both)}")
        print(f"  - CPU time of this thread:   {_percentiles(list(cpu_ns))}")
        print(f"  - of which authenticate:     {_percentiles(list(auth_ns))}")
        print(f"  - of which Casbin decision:  {_percentiles(list(can_ns))}")
    from app.identity.authz import authorizer_for, current_revision, subject

    with session_scope(write=False) as session:
        auth = authorizer_for(current_revision(session))
    raw = []
    for name, ((obj, act), site) in zip(names, asks, strict=True):
        t0 = time.perf_counter_ns()
        auth.enforcer.enforce(subject(name), site, obj, act)
        raw.append(time.perf_counter_ns() - t0)
    print(f"raw pycasbin enforce() per decision (no cache): {_percentiles(raw)}")


def policy_lines() -> list[list[str]]:
    from app.identity.authz import read_policy_lines
    from app.settings import get_settings

    return read_policy_lines(get_settings().policies_dir / "policy.csv")


def bench_http(tokens: list[str], requests: int, seed: int) -> None:
    """Wall time and whole-process CPU time per request (CPU time is what the host's load cannot inflate)."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    rng = random.Random(seed)
    with TestClient(create_app()) as client:
        for path in ("/healthz", "/api/v1/users/me"):
            wall, cpu = [], []
            for n in range(requests + 100):
                headers = {"Authorization": f"Bearer {rng.choice(tokens)}"} if "users" in path else {}
                c0, t0 = time.process_time_ns(), time.perf_counter_ns()
                r = client.get(path, headers=headers)
                t1, c1 = time.perf_counter_ns(), time.process_time_ns()
                assert r.status_code == 200, r.text
                if n >= 100:  # warm-up
                    wall.append(t1 - t0)
                    cpu.append(c1 - c0)
            print(f"TestClient GET {path:<17} wall {_percentiles(wall)}")
            print(f"TestClient GET {path:<17} CPU  {_percentiles(cpu)}  (whole process)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--grants", type=int, default=5000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="warm passes over every user")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with bench_database(args.database_url) as db:
        t0 = time.perf_counter()
        tokens, held = populate(args.users, args.grants, args.sites, args.seed)
        n_grants = sum(len(v) for v in held.values())
        print(
            f"{db.backend}: {len(tokens)} users, {n_grants} grants, {args.sites} sites "
            f"(built in {time.perf_counter() - t0:.1f} s)"
        )
        bench_in_process(tokens, held, args.rounds, args.seed)
        bench_http(tokens, args.requests, args.seed)


if __name__ == "__main__":
    main()
