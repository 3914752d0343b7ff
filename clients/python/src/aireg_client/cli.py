"""``aireg-gate``: the release gate for a deploy job, with the options and exit statuses of
``aireg release-check``: 0 allowed, 1 denied, 2 could not decide (unreachable, bad token, unknown system,
bad arguments)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from aireg_client import __version__
from aireg_client.client import ENVIRONMENTS, Client, NoDecision
from aireg_client.models import ReleaseDecision

ALLOWED, DENIED, NO_DECISION = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    """The command line; an argument error exits 2, like every other "could not decide"."""
    p = argparse.ArgumentParser(
        prog="aireg-gate",
        description="Ask an aireg registry for release permission.",
        epilog="Exit status: 0 allowed, 1 denied, 2 could not decide.",
    )
    p.add_argument("--system", required=True, help="system id, e.g. AIS-000123")
    p.add_argument("--version", required=True, help="the model version to release")
    p.add_argument("--environment", default="production", choices=ENVIRONMENTS, help="pilot or production")
    p.add_argument("--digest", help="also require this artifact digest (sha256:<64 hex>)")
    p.add_argument("--url", help="service URL (default: AIREG_URL)")
    p.add_argument("--token", help="API token (default: AIREG_TOKEN)")
    p.add_argument("--json", dest="as_json", action="store_true", help="print the service's JSON answer")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt (default 10)")
    p.add_argument(
        "--retries", type=int, default=3, help="retries on connection errors, timeouts and 503 (default 3)"
    )
    p.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds, doubling (0.5)")
    p.add_argument("-V", "--client-version", action="version", version=f"aireg-gate {__version__}")
    return p


def render(decision: ReleaseDecision) -> str:
    """The human-readable answer, as ``aireg release-check`` prints it."""
    where = f"{decision.system} {decision.version} in {decision.environment}"
    if decision.allowed:
        until = f", valid until {decision.raw['valid_until']}" if decision.valid_until else ""
        lines = [f"ALLOWED: {where} (approval {decision.approval_id}{until})"]
    else:
        lines = [f"DENIED: {where}"]
    lines += [f"  {r.severity} {r.code}: {r.message}" for r in decision.reasons]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gate; returns the exit status (the console script exits with it)."""
    args = parser().parse_args(argv)
    url = args.url or os.environ.get("AIREG_URL") or "http://127.0.0.1:8000"
    token = args.token or os.environ.get("AIREG_TOKEN")
    if not token:
        return _fail("no API token: pass --token or set AIREG_TOKEN")
    if not 0.1 <= args.timeout <= 300 or not 0 <= args.retries <= 10 or not 0 <= args.backoff <= 60:
        return _fail("--timeout must be 0.1 to 300, --retries 0 to 10, --backoff 0 to 60")
    try:
        with Client(url, token, timeout=args.timeout, retries=args.retries, backoff=args.backoff) as gate:
            decision = gate.release_permission(args.system, args.version, args.environment, args.digest)
    except NoDecision as exc:
        if args.as_json and exc.body is not None:
            print(exc.body)
        return _fail(str(exc))
    print(json.dumps(decision.raw) if args.as_json else render(decision))
    return ALLOWED if decision.allowed else DENIED


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return NO_DECISION


if __name__ == "__main__":
    sys.exit(main())
