"""The import contracts of docs/architecture.md hold, and break on a wrong-way import."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tests", "nianbao", "crawler", "extract", "nianbao_common")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache"],
        cwd=root, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_the_project_keeps_its_import_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in result.stdout


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The packages' Python sources and the import-linter configuration, in a scratch folder."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=lambda _, names: [n for n in names if n == "__pycache__" or (
                "." in n and not n.endswith(".py"))],
        )  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("crawler/discovery.py", "import extract.tables", "One way"),
        ("extract/tables.py", "from crawler import registry", "One way"),
        ("nianbao_common/titles.py", "import nianbao.cli", "One way"),
        ("extract/layout.py", "from tests.fixtures import hostile", "One way"),
        ("extract/report.py", "from extract.dataset import rows", "pure core"),
        ("extract/pdf.py", "from extract import formats", "document readers"),
        ("extract/errors.py", "from extract import pdf", "document readers"),
        ("extract/office.py", "from extract.ocr import run_tool", "document readers"),
    ],
)
def test_a_wrong_way_import_breaks_the_build(project_copy, module, statement, contract):
    path = project_copy / module
    path.write_text(
        path.read_text(encoding="utf-8") + f"\n{statement}\n", encoding="utf-8"
    )
    result = _lint_imports(project_copy)
    assert result.returncode == 1
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken


def test_the_architecture_page_draws_the_layers_of_the_contract():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = re.search(r"```text\n(.*?)```", page, re.DOTALL).group(1)
    drawn = [line.split("  ")[0].strip() for line in drawing.splitlines()]
    drawn = [layer for layer in drawn if layer and layer != "↓"]
    (one_way,) = [c for c in _contracts() if c["id"] == "one-way"]
    assert drawn == one_way["layers"]
    for contract in _contracts():
        assert f"`{contract['id']}`" in page
