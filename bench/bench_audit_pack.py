"""Time producing a system's audit pack: a system with ``--events`` audit events and ``--versions`` versions.

Builds a fresh SQLite database in a temporary directory (the real migrations) through the real services: a
site with a zone, a high-risk provider system with every documentation field filled, ``--versions`` model
versions with metrics, a classification, a risk assessment with 10 risks, and AI RMF checklist updates until
the system's trail holds ``--events`` events. Then it times, ``--runs`` times, building the pack from a
snapshot (model card in three formats, Annex IV DOCX, JSON files, the JSON Lines trail, the chain walk,
the manifest) and the full download path (build + recording the download event), checks that every
build gave the same bytes, and prints median, min and max in milliseconds. Target: median < 1.5 s.

With ``--evidence-mb N`` the system also owns N MB of evidence (PDF files of 5 MB, random bytes, uploaded
through the evidence service), which the signed pack (issue 15) carries file by file, streamed chunk by
chunk; the bench then prints the peak RSS before and after packing, and the target is a median < 3 s.

Run: ``.venv/bin/python bench/bench_audit_pack.py [--events 1000] [--versions 20] [--evidence-mb 50]
[--runs 7] [--url URL]`` (``--url`` benches another, empty database, e.g. PostgreSQL, instead of the temporary
SQLite file).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ACTOR, add_site, add_user, add_zone, bench_database, figures, peak_rss_mb

STATUSES = ("in_progress", "implemented", "not_started", "not_applicable")


def _seed(events: int, versions: int) -> str:
    """The documented system and its trail; returns its id."""
    import sqlalchemy as sa

    from app.audit.models import AuditEvent
    from app.classification import service as classification
    from app.classification.catalog import get_catalog
    from app.classification.models import ChecklistUpdate, RiskAssessmentCreate
    from app.db import session_scope
    from app.systems import service as systems
    from app.systems.models import SystemCreate, VersionCreate

    actor = ACTOR
    with session_scope() as s:
        for name in ("owner", "tech"):
            add_user(s, name)
        add_site(s, "STR", ["BODY1"])
        add_zone(s, "STR-CTL", "STR", purdue_level=2, sl_target=3)
        system = systems.create_system(
            s,
            SystemCreate(
                name="Weld seam inspection",
                purpose="Detect porosity in weld seams of car bodies",
                site="STR",
                line="BODY1",
                business_owner="owner",
                technical_owner="tech",
                ai_act_role="provider",
                zone="STR-CTL",
                sl_achieved={"FR1": 3, "FR2": 3, "FR3": 2, "FR4": 3, "FR5": 3, "FR6": 3, "FR7": 3},
                license="apache-2.0",
                intended_use="Flag seams for manual re-inspection",
                out_of_scope_uses="Releasing bodies without human inspection",
                human_oversight="An inspector confirms every flag",
                limitations="Steel only",
                training_data="48,000 labelled seam images",
            ),
            actor=actor,
        )
        sid = system.id
        for i in range(versions):
            systems.create_version(
                s,
                system,
                VersionCreate(
                    version=f"1.{i}.0",
                    artifact_digest="sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
                    notes=f"release {i}",
                    metrics={"recall": 0.9 + i / 1000, "precision": 0.85 + i / 1000, "f1": 0.87},
                ),
                actor=actor,
            )
        classification.record_classification(s, system, {"annex3_uses": ["annex3.2"]}, actor=actor)
        classification.record_risk_assessment(
            s,
            system,
            RiskAssessmentCreate(
                impact=4,
                likelihood=3,
                risks=[
                    {"title": f"Risk {i}", "nist_refs": ["MEASURE 2.11", "MAP 5.1"], "mitigation": "review"}
                    for i in range(10)
                ],
            ),
            actor=actor,
        )
    subcategories = [sub.id for sub in get_catalog().nist.subcategories]
    done = 0
    with session_scope() as s:
        system = systems.get_system(s, sid)
        count = s.execute(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.entity_id == sid)
        ).scalar_one()
        revisions: dict[str, int] = {}
        while count < events:
            sub = subcategories[done % len(subcategories)]
            row = classification.update_checklist_item(
                s,
                system,
                sub,
                ChecklistUpdate(status=STATUSES[done % len(STATUSES)], note=f"update {done}"),
                if_match=revisions.get(sub, 0),
                actor=actor,
            )
            revisions[sub] = row.revision
            done += 1
            count += 1
    return sid


EVIDENCE_FILE_MB = 5


def _seed_evidence(sid: str, megabytes: int) -> int:
    """``megabytes`` MB of evidence owned by the system, as PDF files of 5 MB; returns how many files."""
    from app.compliance import evidence
    from app.db import session_scope

    files = 0
    remaining = megabytes * 1_000_000
    while remaining > 0:
        size = min(remaining, EVIDENCE_FILE_MB * 1_000_000)
        with tempfile.TemporaryFile() as fh:
            fh.write(b"%PDF-1.7\n")
            fh.write(os.urandom(size - 9))
            fh.seek(0)
            with session_scope() as s:
                evidence.store_evidence(
                    s,
                    system_id=sid,
                    site="STR",
                    title=f"Test report {files}",
                    filename=f"test-report-{files}.pdf",
                    declared_type="application/pdf",
                    stream=fh,
                    valid_until=None,
                    actor=ACTOR,
                )
        remaining -= size
        files += 1
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="audit events of the system")
    parser.add_argument("--versions", type=int, default=20, help="model versions of the system")
    parser.add_argument("--evidence-mb", type=int, default=0, help="MB of evidence files of the system")
    parser.add_argument("--runs", type=int, default=7, help="timed runs (median reported)")
    parser.add_argument("--url", default=None, help="an empty database to bench instead of temporary SQLite")
    args = parser.parse_args()
    with bench_database(args.url) as db:
        _measure(db.label, args)


def _measure(database: str, args: argparse.Namespace) -> None:
    """Seed, then time building and downloading the pack."""
    from app.documents import pack, service
    from app.systems import service as systems

    t0 = time.perf_counter()
    sid = _seed(args.events, args.versions)
    print(f"database: {database}")
    files = _seed_evidence(sid, args.evidence_mb) if args.evidence_mb else 0
    print(
        f"seeded {args.events} events, {args.versions} versions and {args.evidence_mb} MB of evidence "
        f"({files} files) in {time.perf_counter() - t0:.1f} s"
    )
    rss_before = peak_rss_mb()

    def build() -> tuple[int, str, int]:
        start = time.perf_counter_ns()
        with service.snapshot() as session:
            built = pack.build_audit_pack(session, systems.get_system(session, sid))
        elapsed = time.perf_counter_ns() - start
        built.close()
        return elapsed, built.sha256, built.size

    def download() -> tuple[int, str]:
        start = time.perf_counter_ns()
        built = pack.download_audit_pack(sid, actor=ACTOR)
        elapsed = time.perf_counter_ns() - start
        built.close()
        return elapsed, built.sha256

    build()  # warm-up: imports, template compilation, catalogue
    builds = [build() for _ in range(args.runs)]
    downloads = [download() for _ in range(args.runs)]
    digests = {d for _, d, _ in builds} | {d for _, d in downloads}
    built, fetched = figures(b[0] for b in builds), figures(d[0] for d in downloads)
    print(f"pack: {builds[0][2]:,} bytes, {len(digests)} distinct digest(s) over {2 * args.runs} builds")
    print(f"build audit pack:    {built.text('ms', 'median', 'min', 'max')}")
    print(f"download (+ audit):  {fetched.text('ms', 'median', 'min', 'max')}")
    print(f"peak RSS: {rss_before:.0f} MB after seeding, {peak_rss_mb():.0f} MB after packing")
    limit = 3000 if args.evidence_mb else 1500
    print(f"target median < {limit} ms: {'met' if fetched.ms() < limit else 'MISSED'}")
    if len(digests) != 1:
        print("ERROR: the same data gave different packs")
        sys.exit(1)


if __name__ == "__main__":
    main()
