"""Time ``classify()`` in process over a mix of answers; prints median and p99 in microseconds.

Run: ``.venv/bin/python bench/bench_classify.py [--calls 10000] [--raw]`` (``--raw`` passes dicts, so answer
parsing is timed too, as the HTTP path does).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.classification.catalog import load_catalog
from app.classification.engine import ClassificationAnswers, classify
from app.settings import PROJECT_ROOT
from bench._common import time_calls

MIX: list[tuple[dict[str, Any], str]] = [
    ({}, "provider"),
    ({"transparency": ["art50.1"]}, "provider"),
    ({"annex3_uses": ["annex3.4.a"]}, "provider"),
    ({"annex3_uses": ["annex3.4.a", "annex3.5.b"]}, "deployer"),
    (
        {"annex3_uses": ["annex3.4.b"], "art6_3_conditions": ["art6.3.a"], "transparency": ["art50.1"]},
        "provider",
    ),
    ({"annex3_uses": ["annex3.4.b"], "art6_3_conditions": ["art6.3.c"], "profiling": True}, "provider"),
    (
        {
            "annex1": {
                "legislation": "annex1.b.21",
                "safety_component": True,
                "third_party_conformity_assessment": True,
            }
        },
        "deployer",
    ),
    (
        {
            "annex1": {
                "legislation": "annex1.a.11",
                "safety_component": True,
                "third_party_conformity_assessment": True,
            },
            "annex3_uses": ["annex3.1.c"],
            "transparency": ["art50.3"],
        },
        "provider",
    ),
    ({"prohibited_practices": ["art5.1.f"], "annex3_uses": ["annex3.4.b"], "gpai_model": True}, "provider"),
    ({"transparency": ["art50.1", "art50.2"], "gpai_model": True, "gpai_systemic_risk": True}, "importer"),
    # Second edition (catalogue 2026-12-06): Art. 2 scope, Art. 25, Art. 5(1)(h) by role, GPAI, dates.
    (
        {"scope_exclusions": ["art2.12"], "annex3_uses": ["annex3.4.a"], "transparency": ["art50.1"]},
        "provider",
    ),
    ({"scope_exclusions": ["art2.3", "art2.10"], "prohibited_practices": ["art5.1.ba"]}, "deployer"),
    ({"annex3_uses": ["annex3.4.a", "annex3.5.b"], "role_change": ["art25.1.b"]}, "importer"),
    ({"prohibited_practices": ["art5.1.h"], "art5_1_h_exception": "art5.1.h.ii"}, "deployer"),
    (
        {
            "annex3_uses": ["annex3.4.a", "annex3.4.b", "annex3.2"],
            "art6_3_conditions": {"annex3.4.a": ["art6.3.a"], "annex3.2": ["art6.3.b"]},
        },
        "provider",
    ),
    (
        {
            "gpai_model": True,
            "gpai_training_flops": 3e25,
            "gpai_open_source": True,
            "gpai_placed_before_2025_08_02": True,
        },
        "provider",
    ),
    (
        {
            "annex1": {
                "legislation": "annex1.a.4",
                "safety_component": True,
                "third_party_conformity_assessment": True,
            }
        },
        "product_manufacturer",
    ),
]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--raw", action="store_true", help="pass answers as dicts (parsing included)")
    args = parser.parse_args()

    catalog = load_catalog(PROJECT_ROOT / "risk_catalog")
    today = date(2026, 11, 30)
    inputs = [(a if args.raw else ClassificationAnswers.model_validate(a), role) for a, role in MIX]
    calls = itertools.cycle(inputs)

    def call() -> None:
        answers, role = next(calls)
        classify(answers, ai_act_role=role, catalog=catalog, today=today)

    timed = time_calls(call, args.calls, warmup=20 * len(inputs), gc_off=True)
    mode = "dict answers (parsing included)" if args.raw else "parsed answers"
    print(f"classify(): {timed.n} calls, {len(MIX)} answer shapes, {mode}")
    print(timed.text("µs", "median", "p99", "max"))


if __name__ == "__main__":
    main()
