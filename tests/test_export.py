"""Exports for Stata, R, Excel and JSON readers: read back, named validly, labelled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from extract import load
from extract.catalogue import TABLES, table_catalogue
from extract.dataset.build import build_dataset
from extract.export import (
    LONG_TABLES,
    VALID_NAME,
    WIDE,
    ExportError,
    export,
    wide_name,
)
from tests.test_dataset import sources

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("export") / "data"
    build_dataset(sources(), directory, workers=1)
    return directory


def test_every_template_cell_has_a_valid_unique_wide_name():
    names = []
    for table in TABLES:
        catalogue = table_catalogue(table)
        rows = [e.code for e in catalogue.of_kind("row")] or [
            e.code for e in catalogue.of_kind("column_group")
        ]
        for row in rows:
            for column in {e.code for e in catalogue.of_kind("column")}:
                names.append(wide_name(table, row, column))
    assert all(VALID_NAME.match(n) for n in names), [
        n for n in names if not VALID_NAME.match(n)
    ]
    assert len(names) == len(set(names))
    assert (
        wide_name("applications", "new_received", "total") == "app_new_received_total"
    )


def _wide_expected(data_dir: Path) -> pd.DataFrame:
    cells = load("applications", data_dir=data_dir)
    cells = cells[(cells["row"] == "new_received") & (cells["column"] == "total")]
    return cells.assign(agency_id=cells["agency_id"].astype(str))[
        ["agency_id", "year", "value"]
    ].sort_values("agency_id")


@pytest.mark.parametrize("output_format", ["csv", "xlsx", "dta", "jsonl"])
def test_each_format_reads_back_with_the_same_values(data_dir, tmp_path, output_format):
    out = tmp_path / output_format
    written = export(out, output_format, data_dir=data_dir)
    assert all(p.exists() for p in written)
    read = {
        "csv": lambda t: pd.read_csv(out / f"{t}.csv"),
        "jsonl": lambda t: pd.read_json(out / f"{t}.jsonl", lines=True),
        "xlsx": lambda t: pd.read_excel(out / "nianbao.xlsx", sheet_name=t),
        "dta": lambda t: pd.read_stata(out / f"{t}.dta"),
    }[output_format]
    for table in LONG_TABLES:
        assert len(read(table)) == len(load(table, data_dir=data_dir)), table
    wide = read(WIDE).sort_values("agency_id")
    assert len(wide) == 5
    expected = _wide_expected(data_dir)
    assert wide["app_new_received_total"].tolist() == expected["value"].tolist()
    assert all(VALID_NAME.match(str(c)) for c in wide.columns)


def test_csv_has_a_byte_order_mark_for_excel(data_dir, tmp_path):
    export(tmp_path / "csv", "csv", tables=["reports"], data_dir=data_dir)
    raw = (tmp_path / "csv" / "reports.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "北京市".encode() in raw


def test_stata_variables_carry_chinese_labels(data_dir, tmp_path):
    export(tmp_path / "dta", "dta", tables=[WIDE], data_dir=data_dir)
    with pd.io.stata.StataReader(tmp_path / "dta" / f"{WIDE}.dta") as reader:
        labels = reader.variable_labels()
    assert (
        labels["app_new_received_total"]
        == "表三 一、本年新收政府信息公开申请数量｜总计"
    )
    assert labels["agency_kind"] == "机构类型"


def test_xlsx_has_a_bilingual_dictionary(data_dir, tmp_path):
    export(tmp_path / "xlsx", "xlsx", data_dir=data_dir)
    book = pd.read_excel(tmp_path / "xlsx" / "nianbao.xlsx", sheet_name="dictionary")
    row = book[(book["table"] == "applications") & (book["variable"] == "value")].iloc[
        0
    ]
    assert row["label_zh"] == "数值" and "number" in row["description_en"].lower()


def test_filters_and_bad_paths_give_clear_messages(data_dir, tmp_path):
    written = export(tmp_path / "one", "csv", tables=["reports"], district="西城",
                     data_dir=data_dir)  # fmt: skip
    assert set(pd.read_csv(written[0])["district"]) == {"西城区"}
    with pytest.raises(ExportError, match="exists"):
        export(tmp_path / "one", "csv", data_dir=data_dir)
    # A file where the folder should go: unwritable for root too.
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="cannot write"):
        export(tmp_path / "file" / "x", "csv", data_dir=data_dir)
    command = subprocess.run(
        [sys.executable, "-m", "nianbao.cli", "export", "--format", "csv",
         "--district", "西单", "--data-dir", str(data_dir), "--out", str(tmp_path / "bad")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert command.returncode == 2 and "closest: 西城区" in command.stderr


def test_demo_exports_say_they_are_synthetic(tmp_path):
    from nianbao.demo import mark_synthetic

    data = tmp_path / "data"
    mark_synthetic(data)
    build_dataset(sources()[:2], data, workers=1)
    assert load("reports", data_dir=data)["synthetic"].all()
    written = export(tmp_path / "dta", "dta", tables=["reports"], data_dir=data)
    assert "SYNTHETIC" in (tmp_path / "dta" / "ABOUT.txt").read_text(encoding="utf-8")
    with pd.io.stata.StataReader(written[0]) as reader:
        assert "SYNTHETIC" in reader.data_label


def test_datapackage_is_valid_frictionless(data_dir):
    from frictionless import validate

    package = data_dir / "parquet" / "datapackage.json"
    report = validate(str(package))
    assert report.valid, report.flatten(["type", "note"])[:5]
    descriptor = __import__("json").loads(package.read_text(encoding="utf-8"))
    assert descriptor["nianbao_synthetic"] is False
    names = {r["nianbao_table"] for r in descriptor["resources"]}
    assert names == {"reports", "agencies", *TABLES, "checks", "cross_year_checks",
                     "sections"}  # fmt: skip
    applications = next(
        r for r in descriptor["resources"] if r["name"] == "applications-2023"
    )
    value = next(f for f in applications["schema"]["fields"] if f["name"] == "value")
    assert value["type"] == "number" and value["description_zh"] == "数值"
