"""Time a bulk inventory import of N systems (default 10,000) into a fresh database, then an export.

Run: ``.venv/bin/python bench/bench_import.py [--rows 10000] [--format csv|json] [--database-url URL]``.
Without ``--database-url`` a new SQLite file in a temporary directory is used. The import is timed end to
end as ``aireg import`` runs it: read the file, parse and validate every row, write systems and their audit
events, commit. The target is under 10 s for 10,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import add_site, add_user, add_zone, bench_database


def make_file(directory: Path, rows: int, fmt: str) -> Path:
    """A realistic inventory: two sites, four lines, zones, owners, documentation text."""
    placements = [
        ("STR", "BODY1", "STR-CTL"),
        ("STR", "ASM2", "STR-ENT"),
        ("LYO", "SMT1", "LYO-CTL"),
        ("LYO", "PCK", ""),
    ]
    records = []
    for i in range(rows):
        site, line, zone = placements[i % len(placements)]
        records.append(
            {
                "name": f"Vision check {i:05d}",
                "purpose": "Detect surface defects on parts before assembly; flags parts for manual rework",
                "site": site,
                "line": line,
                "business_owner": f"owner{i % 20:02d}",
                "technical_owner": f"owner{(i + 7) % 20:02d}",
                "vendor": "Cognex" if i % 3 else "",
                "ai_act_role": "deployer" if i % 5 else "provider",
                "lifecycle_stage": ("idea", "pilot", "production")[i % 3],
                "personal_data": "true" if i % 7 == 0 else "false",
                "zone": zone,
                "sl_achieved": json.dumps({"FR1": 2, "FR2": 2, "FR3": 3}) if zone else "",
                "intended_use": "Quality inspection on the line",
                "monitoring_interval_hours": "24",
            }
        )
    path = directory / f"inventory.{fmt}"
    if fmt == "csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    else:
        clean = [
            {k: (json.loads(v) if k == "sl_achieved" and v else v) for k, v in r.items() if v != ""}
            for r in records
        ]
        path.write_text("[\n" + ",\n".join(json.dumps(r) for r in clean) + "\n]\n", encoding="utf-8")
    return path


def setup_reference_data() -> None:
    from app.db import session_scope

    with session_scope() as session:
        for code, lines in (("STR", ["BODY1", "ASM2"]), ("LYO", ["SMT1", "PCK"])):
            add_site(session, code, lines)
        for code, site, level, target in (
            ("STR-CTL", "STR", 2, 3),
            ("STR-ENT", "STR", 4, 2),
            ("LYO-CTL", "LYO", 2, 3),
        ):
            add_zone(session, code, site, level, target)
        for i in range(20):
            add_user(session, f"owner{i:02d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    args = parser.parse_args()
    with bench_database(args.database_url) as db:
        run(args, db.tmp, db.backend)


def run(args: argparse.Namespace, tmp: Path, backend: str) -> None:
    """Set up the reference data, time the import and the export, print the figures."""
    from app.db import session_scope
    from app.inventory.models import Format
    from app.inventory.service import export_inventory, import_inventory

    setup_reference_data()
    path = make_file(tmp, args.rows, args.format)

    start = time.perf_counter()
    text = path.read_text(encoding="utf-8-sig")
    with session_scope() as session:
        result = import_inventory(session, text, Format(args.format), actor="bench")
    elapsed = time.perf_counter() - start
    assert len(result.created) == args.rows, result

    start = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as sink, session_scope(write=False) as session:
        exported = export_inventory(session, sink, Format(args.format))
    export_elapsed = time.perf_counter() - start

    print(f"backend: {backend}, format: {args.format}, file: {path.stat().st_size / 1e6:.1f} MB")
    print(f"import {args.rows} systems: {elapsed:.2f} s ({args.rows / elapsed:,.0f} rows/s; target < 10 s)")
    print(f"export {exported} systems: {export_elapsed:.2f} s")


if __name__ == "__main__":
    main()
