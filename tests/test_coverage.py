"""The coverage report: its numbers are the dataset's, and the page holds its charts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from extract import load
from extract.coverage import coverage, headline, quality, write_report
from extract.dataset.build import build_dataset
from tests.test_dataset import FakeSource, sources


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("coverage") / "data"
    broken = FakeSource(
        "beijing_dongcheng",
        "https://www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/2023nb/dcqzf2023/202403/t20240305_1.html",
        "word-mixed-format-broken-total.html",
        agency="北京市东城区人民政府",
    )
    government = FakeSource(
        "beijing_xicheng",
        "https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv379pntypepvnbpnnfpv2023.html",
        "word-2021-gb2312.html",
        agency="北京市西城区人民政府",
    )
    build_dataset([*sources(), broken, government], directory, workers=1)
    return directory


def test_coverage_counts_every_report_once(data_dir):
    frame = coverage(data_dir)
    reports = load("reports", data_dir=data_dir)
    assert frame["reports"].sum() == len(reports)
    expected = reports.astype({"site": str, "status": str}).value_counts(
        ["site", "year", "status"]
    )
    for row in frame.itertuples():
        assert expected[(row.site, row.year, row.status)] == row.reports


def test_quality_shares_are_the_statuses_per_year(data_dir):
    frame = quality(data_dir).set_index("year")
    reports = load("reports", data_dir=data_dir)
    for year, part in reports.groupby("year"):
        status = part["status"].astype(str)
        assert frame.loc[year, "reports"] == len(part)
        assert (
            frame.loc[year, "share_checks_failed"] == (status == "checks_failed").mean()
        )
    assert frame["share_checks_failed"].max() > 0, "the broken total shows"


def test_headline_reads_only_district_governments(data_dir):
    frame = headline(data_dir)
    assert set(frame["district"]) == {"东城区", "西城区"}
    cells = load("applications", data_dir=data_dir)
    reports = load("reports", data_dir=data_dir)
    xicheng = reports[reports["agency"] == "北京市西城区人民政府"].iloc[0]
    mine = cells[
        (cells["agency_id"] == xicheng["agency_id"]) & (cells["column"] == "total")
    ]
    values = dict(zip(mine["row"].astype(str), mine["value"], strict=True))
    row = frame[frame["district"] == "西城区"].iloc[0]
    assert row["new_received"] == values["new_received"]
    assert row["share_granted"] == pytest.approx(
        values["granted"] / values["total_handled"]
    )


def test_the_page_embeds_its_charts_and_writes_pngs(data_dir, tmp_path):
    page = write_report(data_dir, tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 3
    for name in ("coverage.png", "quality.png", "headline.png"):
        assert (tmp_path / "report" / name).read_bytes().startswith(b"\x89PNG")
    tables = pd.read_html(page)  # the numbers under each chart
    assert int(tables[0]["reports"].sum()) == len(load("reports", data_dir=data_dir))
