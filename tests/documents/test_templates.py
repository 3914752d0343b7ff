"""Layouts live in document_templates/: editable without code, reproducible, and loud when broken."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.settings import PROJECT_ROOT, get_settings
from tests.documents.test_model_card import docx_text

TEMPLATES = PROJECT_ROOT / "document_templates"


@pytest.fixture
def own_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the templates the service is pointed at, to edit as a compliance team would."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    monkeypatch.setenv("AIREG_DOCUMENT_TEMPLATES_DIR", str(target))
    get_settings.cache_clear()
    yield target
    monkeypatch.delenv("AIREG_DOCUMENT_TEMPLATES_DIR")
    get_settings.cache_clear()


def test_wording_and_layout_change_without_code(
    client: Any, bare: dict[str, Any], own_templates: Path
) -> None:
    labels = own_templates / "labels.yaml"
    labels.write_text(
        labels.read_text().replace('not_recorded: "not recorded"', 'not_recorded: "n/a (registry)"')
    )
    md = own_templates / "model_card.md.j2"
    md.write_text(md.read_text().replace("# Model card: ", "# Data sheet of the model "))
    url = f"/api/v1/systems/{bare['id']}/documents/model-card"
    text = client.get(url, params={"format": "md"}, headers=bare["audrey"]).text
    assert (
        "# Data sheet of the model Bare" in text and "n/a (registry)" in text and "not recorded" not in text
    )
    _, paragraphs, _, _ = docx_text(
        client.get(url, params={"format": "docx"}, headers=bare["audrey"]).content
    )
    assert "n/a (registry)" in [t for _, t in paragraphs]


def test_a_template_naming_a_missing_field_fails_loudly(
    client: Any, bare: dict[str, Any], own_templates: Path
) -> None:
    md = own_templates / "model_card.md.j2"
    md.write_text(md.read_text().replace("{{ system.name }}", "{{ system.name_typo }}"))
    r = client.get(f"/api/v1/systems/{bare['id']}/documents/model-card", headers=bare["audrey"])
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "model_card.md.j2" in r.json()["detail"] and "name_typo" in r.json()["detail"]


def test_build_script_is_reproducible_and_never_overwrites_by_default(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_templates", TEMPLATES / "build_templates.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert module.main(["--out", str(first)]) == 0
    assert module.main(["--out", str(second)]) == 0
    names = sorted(p.name for p in first.glob("*.docx"))
    assert names == ["art6_4_assessment.docx", "model_card.docx", "technical_documentation.docx"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    (first / "model_card.docx").write_bytes(b"edited in Word")
    module.main(["--out", str(first)])
    assert (first / "model_card.docx").read_bytes() == b"edited in Word"
    module.main(["--out", str(first), "--force", "--only", "model_card.docx"])
    assert (first / "model_card.docx").read_bytes() == (second / "model_card.docx").read_bytes()
