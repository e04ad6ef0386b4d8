"""The nianbao parse command on fixture reports, in each output format."""

from __future__ import annotations

import io
import json

import pandas as pd
from click.testing import CliRunner

from nianbao.cli import main
from tests.conftest import REPORTS

SEED = str(REPORTS / "xicheng-liaison-office-2023.txt")
SHANGHAI = str(REPORTS / "shanghai-gov-office-2019.html")


def test_summary_fits_one_screen_per_file():
    result = CliRunner().invoke(main, ["parse", SEED, SHANGHAI])
    assert result.exit_code == 0, result.output
    screens = result.output.split("\n== ")
    assert len(screens) == 2
    assert all(len(screen.splitlines()) <= 60 for screen in screens)
    assert "status ok" in screens[0] and "西城区对外联络服务办公室" in screens[0]
    assert "total_handled" in screens[1] and "805" in screens[1]


def test_json_is_one_object_per_file_with_every_cell_and_check():
    result = CliRunner().invoke(main, ["parse", SEED, SHANGHAI, "--format", "json"])
    assert result.exit_code == 0, result.output
    seed, shanghai = (json.loads(line) for line in result.output.splitlines())
    assert seed["status"] == "ok" and seed["year"] == 2023
    assert len(seed["tables"]["applications"]) == 175
    cell = next(
        c
        for c in shanghai["tables"]["applications"]
        if c["row"] == "new_received" and c["column"] == "total"
    )
    assert (cell["value"], cell["raw"]) == (859.0, "859")
    blank = next(
        c
        for c in shanghai["tables"]["applications"]
        if c["row"] == "carried_over" and c["column"] == "other_org"
    )
    assert blank["value"] is None and blank["marker"] == "blank"
    assert {c["status"] for c in shanghai["checks"]} == {"pass", "incomplete", "empty"}


def test_csv_is_the_long_frames_of_all_files():
    result = CliRunner().invoke(main, ["parse", SEED, SHANGHAI, "--format", "csv"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.output))
    assert list(frame.columns[:4]) == ["file", "table", "row", "column"]
    per_file = frame.groupby(["file", "table"]).size()
    assert per_file[(SEED, "applications")] == 175
    assert per_file[(SHANGHAI, "active_disclosure")] == 22
    procurement = frame.query("row == 'procurement' and column == 'amount'").iloc[0]
    assert (procurement["value"], procurement["unit"], procurement["raw"]) == (
        25.1,
        "元",
        "251000元",
    )


def test_the_export_choices_are_the_exporters():
    from extract.export import FORMATS, LONG_TABLES, WIDE
    from nianbao.cli import EXPORT_FORMATS, EXPORT_TABLES

    assert EXPORT_FORMATS == FORMATS
    assert EXPORT_TABLES.split(", ") == [*LONG_TABLES, WIDE]


def test_help_loads_neither_pandas_nor_pyarrow():
    import subprocess
    import sys

    code = (
        "import sys, nianbao.cli; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'scrapy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert loaded == "[]"
