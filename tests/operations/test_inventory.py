"""Bulk import and export of the inventory (CSV and JSON): row-by-row validation, all or nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app as cli

HEADER = "name,purpose,site,line,business_owner,zone,lifecycle_stage,personal_data,sl_achieved,vendor\n"
GOOD_ROWS = [
    "Weld inspection,Detect weld defects,STR,BODY1,bob,STR-CTL,production,false,"
    '"{""FR1"": 3, ""FR2"": 1}",Cognex\n',
    "Paint check,Detect paint runs,STR,ASM2,bea,,pilot,true,,\n",
    "Solder joints,Check solder joints,LYO,SMT1,lou,LYO-CTL,idea,,,in-house vendor\n",
]


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def systems(ops, **params: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = ops.client.get("/api/v1/systems", params={"limit": 500, **params}, headers=ops.carol)
    return ops.ok(r)["items"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_import_creates_every_row(ops, tmp_path):
    path = write(tmp_path, "inventory.csv", HEADER + "".join(GOOD_ROWS))
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 3 row(s): 3 created, 0 updated, 0 unchanged" in result.output
    rows = {s["name"]: s for s in systems(ops)}
    weld = rows["Weld inspection"]
    assert (weld["site"], weld["line"], weld["zone"], weld["lifecycle_stage"]) == (
        "STR",
        "BODY1",
        "STR-CTL",
        "production",
    )
    # FRs the file leaves out are not assessed (null), never SL 0 (contract: Trust)
    assert weld["sl_achieved"] == {"FR1": 3, "FR2": 1, **{f"FR{i}": None for i in range(3, 8)}}
    assert weld["sl_gap"] == ["FR2"] and weld["sl_unassessed"] == [f"FR{i}" for i in range(3, 8)]
    assert weld["vendor"] == "Cognex"
    assert rows["Paint check"]["personal_data"] is True and rows["Paint check"]["zone"] is None
    assert (
        rows["Solder joints"]["personal_data"] is False and rows["Solder joints"]["ai_act_role"] == "deployer"
    )
    assert sorted(s["id"] for s in rows.values()) == ["AIS-000001", "AIS-000002", "AIS-000003"]
    # every creation is on the trail, and the chain still holds
    events = ops.ok(ops.client.get("/api/v1/audit-events?entity_type=system&limit=500", headers=ops.admin))
    creates = [e for e in events["items"] if e["action"] == "system.create"]
    assert len(creates) == 3 and all(e["actor"].startswith("cli") for e in creates)
    assert ops.ok(ops.client.get("/api/v1/audit-events/verify", headers=ops.admin))["valid"] is True
    # ids keep counting after an import
    assert ops.system(name="Made through the API")["id"] == "AIS-000004"


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(ops, tmp_path):
    text = (
        HEADER
        + GOOD_ROWS[0]  # line 2
        + "Bad site,x,XXX,BODY1,bob,,idea,,,\n"  # line 3
        + '"Multi\nline name",purpose,STR,BODY1,bob,,idea,,,\n'  # lines 4-5, fine
        + ",no name,STR,NOPE,ghost,LYO-CTL,sometimes,maybe,,\n"  # line 6
        + "\n"  # line 7, blank: skipped
        + "Bad SL,x,STR,BODY1,bob,STR-CTL,idea,,{FR1: 3},\n"  # line 8
        + "Too few,cells\n"  # line 9
        + GOOD_ROWS[1]  # line 10
    )
    path = write(tmp_path, "inventory.csv", text)
    result = run("import", str(path))
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"{path}:line 3: site: unknown site 'XXX'" in out
    for fragment in ("line 6: name:", "line 6: lifecycle_stage:", "line 6: personal_data:"):
        assert fragment in out, fragment
    assert "line 8: sl_achieved: expected a JSON object" in out
    assert "line 9: 2 cells for 10 columns" in out
    assert "line 2:" not in out and "line 4:" not in out and "line 10:" not in out
    assert "nothing was imported" in out
    assert systems(ops) == []
    # references are checked once the row itself is well formed
    path = write(
        tmp_path,
        "refs.csv",
        HEADER + ",no name,STR,NOPE,ghost,LYO-CTL,idea,,,\n".replace(",no name", "N,no name"),
    )
    out = run("import", str(path)).output
    assert "line 2: line: site STR has no line 'NOPE'" in out
    assert "line 2: business_owner: unknown user 'ghost'" in out
    assert "line 2: zone: zone 'LYO-CTL' belongs to site LYO" in out
    # the failed files consumed no ids
    assert ops.system()["id"] == "AIS-000001"


def test_header_problems_are_line_one(ops, tmp_path):
    path = write(tmp_path, "x.csv", "name,purpose,site,business_owner,colour\nA,b,STR,bob,red\n")
    result = run("import", str(path))
    assert result.exit_code == 1 and "line 1: unknown column(s) ['colour']" in result.output
    path = write(tmp_path, "y.csv", "name,name,site\n")
    assert "column(s) named twice: ['name']" in run("import", str(path)).output


def test_json_import_reports_the_line_each_bad_object_starts_on(ops, tmp_path):
    objects = [
        {"name": "Good", "purpose": "p", "site": "STR", "business_owner": "bob"},
        {"name": "Bad", "purpose": "p", "site": "STR", "business_owner": "bob", "lifecycle_stage": "beta"},
        {"name": "Also good", "purpose": "p", "site": "LYO", "line": "SMT1", "business_owner": "lou"},
        ["not", "an", "object"],
    ]
    text = "[\n" + ",\n".join(json.dumps(o, indent=2) for o in objects) + "\n]\n"
    path = write(tmp_path, "inv.json", text)
    lines = text.splitlines()
    bad_line = next(i for i, line in enumerate(lines, 1) if '"Bad"' in line) - 1  # the object's "{"
    list_line = next(i for i, line in enumerate(lines, 1) if line.strip() == "[" and i > 1)
    result = run("import", str(path))
    assert result.exit_code == 1, result.output
    assert f"line {bad_line}: lifecycle_stage:" in result.output
    assert f"line {list_line}: expected an object" in result.output
    assert systems(ops) == []
    broken = write(tmp_path, "broken.json", '[\n{"name": "A"},\n{"name": \n')
    result = run("import", str(broken))
    assert result.exit_code == 1 and "line 4: invalid JSON" in result.output
    assert "expected a JSON array" in run("import", str(write(tmp_path, "o.json", '{"items": []}'))).output


def test_export_then_import_round_trips(ops, tmp_path):
    run("import", str(write(tmp_path, "seed.csv", HEADER + "".join(GOOD_ROWS))))
    out = tmp_path / "export.csv"
    result = run("export", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["AIS-000001", "AIS-000002", "AIS-000003"]
    assert json.loads(rows[0]["sl_achieved"])["FR1"] == 3 and rows[1]["personal_data"] == "true"

    again = run("import", str(out))
    assert again.exit_code == 0, again.output
    assert "3 row(s): 0 created, 0 updated, 3 unchanged" in again.output

    rows[1]["name"] = "Paint check v2"
    rows[2]["lifecycle_stage"] = "pilot"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    edited = write(tmp_path, "edited.csv", buffer.getvalue())
    result = run("import", str(edited))
    assert "0 created, 2 updated, 1 unchanged" in result.output, result.output
    by_id = {s["id"]: s for s in systems(ops)}
    assert (
        by_id["AIS-000002"]["name"] == "Paint check v2" and by_id["AIS-000003"]["lifecycle_stage"] == "pilot"
    )
    # the same file again: the revisions it carries are stale now
    result = run("import", str(edited))
    assert result.exit_code == 1
    assert "line 3: revision: stale revision 1: AIS-000002 is at 2" in result.output

    json_out = tmp_path / "export.json"
    assert run("export", "--format", "json", "-o", str(json_out)).exit_code == 0
    data = json.loads(json_out.read_text())
    assert [d["id"] for d in data] == ["AIS-000001", "AIS-000002", "AIS-000003"]
    assert "0 created, 0 updated, 3 unchanged" in run("import", str(json_out)).output


def test_update_rows_are_checked(ops, tmp_path):
    run("import", str(write(tmp_path, "seed.csv", HEADER + GOOD_ROWS[0])))
    text = (
        "id,name,site\n"
        "AIS-000001,Renamed,LYO\n"  # sites do not change
        "AIS-000099,Ghost,STR\n"  # no such system
        "AIS-000001,Twice,STR\n"  # the same id twice
    )
    out = run("import", str(write(tmp_path, "upd.csv", text))).output
    assert "line 2: site: AIS-000001 belongs to site STR" in out
    assert "line 3: id: no system 'AIS-000099'" in out
    assert "line 4: id: AIS-000001 is already updated by line 2" in out
    assert systems(ops)[0]["name"] == "Weld inspection"


def test_dry_run_writes_nothing_and_export_to_stdout_filters_by_site(ops, tmp_path):
    path = write(tmp_path, "seed.csv", HEADER + "".join(GOOD_ROWS))
    result = run("import", str(path), "--dry-run")
    assert result.exit_code == 0 and "3 row(s) valid; nothing written" in result.output
    assert systems(ops) == []
    run("import", str(path))
    result = run("export", "--site", "LYO")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("AIS-000003,Solder joints")
    result = run("export", "--format", "json", "--site", "XXX")
    assert json.loads(result.output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "/nonexistent/file.csv"], "no such file"),
        (["import", "__FILE__.txt"], "cannot tell the format"),
        (["export", "--format", "xml"], "xml"),
    ],
)
def test_bad_arguments_exit_2(ops, tmp_path, args, message):
    target = write(tmp_path, "inv.txt", "name\n")
    args = [str(target) if a == "__FILE__.txt" else a for a in args]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_non_utf8_file_is_refused(ops, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "Prüfung,x,STR,BODY1,bob,,idea,,,\n".encode("latin-1"))
    result = run("import", str(path))
    assert result.exit_code == 2 and "UTF-8" in result.output


# What a spreadsheet would run as a formula, in fields a user types (OWASP CSV injection).
FORMULAS = {
    "name": '=HYPERLINK("http://evil.example","open")',
    "vendor": "+cmd|' /C calc'!A0",
    "purpose": "-2+3",
    "intended_use": "@SUM(A1:A2)",
    "limitations": "\t=1+1",
    "training_data": "\r=1+1",
    "human_oversight": "'=already quoted",
}


def test_csv_export_neutralises_formulas_like_the_web_export_and_imports_back(ops, tmp_path):
    from app.web.routes.systems import _cell as web_cell

    ops.system(**FORMULAS)
    out = tmp_path / "export.csv"
    result = run("export", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    to_stdout = run("export", "--format", "csv")
    assert to_stdout.exit_code == 0, to_stdout.output
    for text in (out.read_bytes().decode("utf-8"), to_stdout.stdout_bytes.decode("utf-8")):
        header, row = list(csv.reader(io.StringIO(text, newline="")))
        assert [c for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r")] == []
        cells = dict(zip(header, row, strict=True))
        for name, typed in FORMULAS.items():
            assert cells[name] == "'" + typed == web_cell(typed), name  # one rule for both exports
    # the apostrophes are the export's, not the data's: importing the file changes nothing
    again = run("import", str(out))
    assert again.exit_code == 0, again.output
    assert "1 row(s): 0 created, 0 updated, 1 unchanged" in again.output
    (system,) = systems(ops)
    assert {name: system[name] for name in FORMULAS} == FORMULAS


def test_json_nested_deeper_than_the_limit_is_refused_and_nothing_is_imported(ops, tmp_path):
    from app.settings import get_settings

    limit = get_settings().max_json_depth
    good = {"name": "Fine", "purpose": "p", "site": "STR", "business_owner": "bob"}
    deep = "[" * 100_000 + "]" * 100_000
    for name, text in (
        ("deep.json", deep),
        ("deep-value.json", json.dumps([good])[:-2] + ', "sl_achieved": ' + deep + "}]"),
    ):
        result = run("import", str(write(tmp_path, name, text)))
        assert result.exit_code == 2, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit)  # a clear refusal, not a RecursionError
        assert f"JSON nested deeper than {limit} levels" in result.output
        assert "nothing was imported" in result.output
    # in CSV the JSON of a cell is one bad row, named by line and column
    cell = "[" * 60_000 + "]" * 60_000
    deep_row = f"Deep SL,x,STR,BODY1,bob,,idea,,{cell},\n"
    result = run("import", str(write(tmp_path, "deep.csv", HEADER + GOOD_ROWS[1] + deep_row)))
    assert result.exit_code == 1, (result.output, result.exception)
    assert f"line 3: sl_achieved: JSON nested deeper than {limit} levels" in result.output
    assert systems(ops) == []
