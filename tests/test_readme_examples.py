"""Every Python and SQL example of README.md and docs/ runs on the demo dataset, and says true.

The demo is built once (``nianbao run --demo``) in a temporary folder that stands for the
working directory the examples assume (``data/`` under it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from extract import load

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```(python|sql)\n(.*?)```", re.DOTALL)


def examples(language: str) -> list[tuple[str, str]]:
    """(doc:line, code) of every fenced block in that language."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            if match.group(1) == language:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{path.name}:{line}", match.group(2)))
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A working directory with the demo dataset in data/ and a report to parse."""
    work = tmp_path_factory.mktemp("readme")
    run = subprocess.run(
        [sys.executable, "-m", "nianbao.cli", "run", "--demo"],
        cwd=ROOT, env={**os.environ, "NIANBAO_DATA": str(work / "data")},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    shutil.copy(
        ROOT / "tests/fixtures/reports/word-2021-gb2312.html", work / "report.html"
    )
    return work


@pytest.fixture(scope="module")
def mirror() -> Iterator[str]:
    """The demo snapshot served on loopback, for examples that crawl a local mirror."""
    from nianbao.demo import demo_mirror

    with demo_mirror() as url:
        yield url


@pytest.mark.parametrize(
    "where, code", examples("python"), ids=[w for w, _ in examples("python")]
)
def test_python_examples_run(demo, mirror, where, code):
    # Each in its own interpreter, in the folder a reader works in (./data): a crawl
    # example starts Twisted's reactor, which runs once per process. An example's local
    # mirror address is the one this test serves.
    code = code.replace("http://127.0.0.1:8000", mirror)
    env = {k: v for k, v in os.environ.items() if k != "NIANBAO_DATA"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=demo, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{where}:\n{done.stderr[-2000:]}"


@pytest.mark.parametrize(
    "where, query", examples("sql"), ids=[w for w, _ in examples("sql")]
)
def test_sql_examples_run(demo, where, query, monkeypatch):
    monkeypatch.chdir(demo)
    assert duckdb.sql(query).fetchall(), f"{where} returns no row on the demo"


def test_the_district_example_counts_each_government_report_once(demo, monkeypatch):
    monkeypatch.chdir(demo)
    ((_, query),) = [e for e in examples("sql") if "agency_kind" in e[1]]
    rows = duckdb.sql(query).fetchall()
    reports = load("reports", data_dir=demo / "data")
    governments = reports[reports["agency_kind"] == "government"]
    cells = load("applications", data_dir=demo / "data").query(
        "row == 'new_received' and column == 'total'"
    )
    expected = governments.merge(cells, on=["agency_id", "year"])
    assert sorted(rows) == sorted(
        zip(expected["district"], expected["year"], expected["value"], strict=True)
    )
    # One row per district and year: no department's or street's report is added in.
    assert len({(d, y) for d, y, _ in rows}) == len(rows)
