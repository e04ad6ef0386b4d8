"""Every fixture report against the values a person read from it, cell by cell."""

from __future__ import annotations

import pandas as pd
import pytest

from extract import parse_report
from extract.catalogue import TABLES
from tests.conftest import (
    EXPECTED,
    load_expected_meta,
    report_path,
    require_converter,
    same_value,
)
from tests.fixtures.make_variants import expected_values

STEMS = sorted(p.name for p in EXPECTED.iterdir() if (p / "meta.json").exists())


@pytest.fixture(scope="module", params=STEMS)
def case(request):
    stem = request.param
    path = report_path(stem)
    if path.suffix in (".doc", ".wps"):
        require_converter("soffice")
    return (
        stem,
        parse_report(path.read_bytes(), url=path.as_uri()),
        load_expected_meta(stem),
    )


def _extracted(df: pd.DataFrame) -> dict[tuple[str, str], float | None]:
    return {
        (row, column): (None if pd.isna(value) else float(value))
        for row, column, value in zip(df["row"], df["column"], df["value"], strict=True)
    }


@pytest.mark.parametrize("table", list(TABLES))
def test_every_cell_matches(case, table):
    stem, report, _ = case
    meta = load_expected_meta(stem)
    expected = (
        {} if table in meta.get("tables_absent", []) else expected_values(stem)[table]
    )
    found = _extracted(report.tables[table])
    assert sorted(found) == sorted(expected), f"{stem}/{table}: cells differ"
    wrong = {
        key: (found[key], expected[key])
        for key in expected
        if not same_value(found[key], expected[key])
    }
    assert not wrong, f"{stem}/{table}: (found, expected) {wrong}"


def test_metadata_status_and_checks(case):
    stem, report, meta = case
    assert report.status == meta["status"], report.problems
    for field in (
        "title",
        "agency",
        "year",
        "publish_date",
        "source_format",
        "encoding",
        "formats",
    ):
        if field in meta:
            assert getattr(report, field) == meta[field], field
    failed = sorted(
        f"{r.check}:{r.subject}"
        for r in report.checks.itertuples()
        if r.status == "fail"
    )
    assert failed == sorted(meta.get("failed_checks", [])), failed
    if "problems" in meta:
        assert report.problems == meta["problems"]
    if "sections" in meta:
        assert sorted(report.sections) == sorted(meta["sections"])
        assert all(
            report.sections[s].strip() for s in meta.get("nonempty_sections", [])
        )


def test_frames_keep_raw_text_and_official_labels(case):
    _, report, _ = case
    for table, df in report.tables.items():
        if df.empty:
            continue
        assert df["row_label"].notna().all() and df["column_label"].notna().all(), table
        numeric = df[df["marker"] == "number"]
        assert numeric["value"].notna().all()
        assert numeric["raw"].str.len().gt(0).all()
