"""The Parquet dataset: layout, idempotence, incremental runs, atomicity, four readers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from extract import load, load_applications_wide, parse_report
from extract.dataset import assemble
from extract.dataset.build import build_dataset
from extract.dataset.changes import Changes, cell_changes
from extract.dataset.rows import extractor_version
from extract.dataset.store import DatasetStore, DatasetStoreError
from tests.conftest import REPORTS


@dataclass
class FakeSource:
    """An archived report as the crawler's reader yields it, backed by a fixture file."""

    site: str
    url: str
    path: str
    agency: str | None = None
    report_year: int | None = None
    title: str | None = None
    content_type: str | None = "text/html"
    fetched_at: str = "2026-01-20T01:00:00Z"
    warc_file: str = "site/site-1.warc.gz"
    warc_offset: int = 0
    record_id: str = "<urn:uuid:1>"
    data: bytes | None = None
    attachments: list = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.read_bytes()).hexdigest()

    @property
    def length(self) -> int:
        return len(self.read_bytes())

    def read_bytes(self) -> bytes:
        return (
            self.data if self.data is not None else (REPORTS / self.path).read_bytes()
        )


def sources() -> list[FakeSource]:
    return [
        FakeSource("beijing_xicheng", "https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv301pntypepvnbpnnfpv2023.html",
                   "xicheng-liaison-office-2023.txt", agency="西城区对外联络服务办公室", content_type="text/plain"),
        FakeSource("beijing_xicheng", "https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv302pntypepvnbpnnfpv2023.html",
                   "word-2021-gb2312.html"),
        FakeSource("beijing_miyun", "https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2020/202101/t20210120_1.html",
                   "word-2019-fullwidth-misdeclared.html"),
        FakeSource("beijing_portal", "https://www.beijing.gov.cn/gongkai/zfxxgk/zfxxgknb/2024nb/qzf/202501/t20250120_2.html",
                   "word-2021-transposed.html"),
        FakeSource("beijing_dongcheng", "https://www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/2022nb/dcqzfbm2022/202301/t20230118_3.html",
                   "word-2021-undeclared-split.html"),
    ]  # fmt: skip


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def _table(data_dir: Path, name: str) -> pd.DataFrame:
    return load(name, data_dir=data_dir)


def test_layout_is_hive_partitioned_by_year_sorted_by_agency(data_dir):
    summary = build_dataset(sources(), data_dir, workers=1)
    assert summary.ok and summary.extracted == 5 and summary.reports == 5
    root = data_dir / "parquet"
    assert root.is_symlink()
    years = sorted(p.name for p in (root / "applications").iterdir())
    assert years == ["year=2020", "year=2022", "year=2023", "year=2024"]
    assert not list(root.glob("*/year=*/*[!t]")), "only part-0.parquet files"
    for path in root.glob("*/year=*/part-0.parquet"):
        ids = pq.read_table(path, columns=["agency_id"])["agency_id"].to_pylist()
        assert ids == sorted(ids), path
        metadata = pq.read_schema(path).metadata
        assert metadata[b"nianbao.schema_version"] == b"3"
        assert metadata[b"nianbao.extractor_version"] == extractor_version().encode()
    reports = _table(data_dir, "reports")
    assert len(reports) == 5
    assert reports.groupby(["agency_id", "year"], observed=True).size().max() == 1
    assert set(reports["status"]) == {"ok"}
    xicheng = reports[reports["printed_agency"] == "西城区对外联络服务办公室"].iloc[0]
    assert xicheng["agency"] == "北京市西城区对外联络服务办公室"
    assert (xicheng["district"], xicheng["division_code"], xicheng["year"]) == (
        "西城区",
        "110102",
        2023,
    )
    assert xicheng["agency_id"].startswith("110102-duiwailianluofuwubangongshi-")


def test_cells_are_the_extractor_output_keyed_by_agency_and_year(data_dir):
    build_dataset(sources(), data_dir, workers=1)
    applications = _table(data_dir, "applications")
    for source in sources():
        report = parse_report(source.read_bytes(), url=source.url)
        reports = _table(data_dir, "reports")
        agency_id = reports.loc[reports["url"] == source.url, "agency_id"].iloc[0]
        mine = applications[
            (applications["agency_id"] == agency_id)
            & (applications["year"] == report.year)
        ]
        expected = report.applications
        assert mine["row"].tolist() == expected["row"].tolist()
        assert (
            mine["value"].fillna(-1).tolist() == expected["value"].fillna(-1).tolist()
        )
    sections = _table(data_dir, "sections")
    assert set(sections["section"]) >= {"overview", "problems_and_improvements"}
    checks = _table(data_dir, "checks")
    assert set(checks["status"]) <= {"pass", "incomplete", "empty"}


def test_four_readers_see_the_same_rows(data_dir):
    build_dataset(sources(), data_dir, workers=1)
    root = data_dir / "parquet" / "applications"
    by_pandas = pd.read_parquet(root)
    by_pyarrow = ds.dataset(root, partitioning="hive").to_table()
    by_duckdb = duckdb.sql(
        f"SELECT year, sum(value) AS total FROM read_parquet('{root}/*/*.parquet', hive_partitioning=true) "
        "WHERE \"column\" = 'total' AND \"row\" = 'new_received' GROUP BY year ORDER BY year"
    ).fetchall()
    by_polars = pl.read_parquet(root, hive_partitioning=True)
    assert len(by_pandas) == by_pyarrow.num_rows == by_polars.height == 175 * 4 + 161
    assert dict(by_duckdb) == {2020: 38.0, 2022: 145.0, 2023: 147.0, 2024: 145.0}
    assert by_polars.filter(pl.col("year") == 2020).height == 161


def test_second_run_is_idempotent_and_extracts_nothing(data_dir):
    build_dataset(sources(), data_dir, workers=1)
    before = {
        t: _table(data_dir, t)
        for t in ("reports", "applications", "checks", "sections")
    }
    summary = build_dataset(sources(), data_dir, workers=1)
    assert (
        summary.extracted == 0 and summary.reused == 5 and summary.years_written == []
    )
    for table, frame in before.items():
        pd.testing.assert_frame_equal(_table(data_dir, table), frame)


def test_a_changed_report_rewrites_only_its_year(data_dir):
    build_dataset(sources(), data_dir, workers=1)
    old_2020 = (
        (data_dir / "parquet" / "applications" / "year=2020" / "part-0.parquet")
        .stat()
        .st_ino
    )
    changed = sources()
    page = changed[1].read_bytes().replace("1,234".encode("gbk"), "1,235".encode("gbk"))
    changed[1].data = page
    summary = build_dataset(changed, data_dir, workers=1)
    assert summary.extracted == 1 and summary.years_written == [2023]
    root = data_dir / "parquet"
    assert (
        root / "applications" / "year=2020" / "part-0.parquet"
    ).stat().st_ino == old_2020
    licensing = load("active_disclosure", year=2023, data_dir=data_dir).query(
        "row == 'licensing'"
    )
    assert sorted(licensing["value"].dropna()) == [0.0, 1235.0]
    assert len(_table(data_dir, "reports")) == 5


def test_new_extractor_code_extracts_everything_again(data_dir, monkeypatch):
    build_dataset(sources(), data_dir, workers=1)
    monkeypatch.setattr("extract.dataset.build.code_digest", lambda: "changed-code")
    summary = build_dataset(sources(), data_dir, workers=1)
    assert summary.extracted == 5 and summary.reasons == {"new code": 5}
    # The same cells: the re-extraction changed nothing a researcher sees.
    assert summary.changes.re_extracted == 5 and summary.changes.cells == []


def test_one_row_per_agency_year_keeps_the_best_document(data_dir):
    duplicate = sources()[0]
    broken = FakeSource(
        "beijing_portal", "https://www.beijing.gov.cn/gongkai/zfxxgk/zfxxgknb/2023nb/qzf/202402/t20240220_9.html",
        "xicheng-liaison-office-2023.txt", agency="北京市西城区对外联络服务办公室",
        fetched_at="2026-02-01T00:00:00Z",
        data=duplicate.read_bytes()[:2500],
    )  # fmt: skip
    summary = build_dataset([*sources(), broken], data_dir, workers=1)
    assert summary.reports == 5
    reports = _table(data_dir, "reports")
    kept = reports[reports["printed_agency"].str.contains("对外联络")]
    assert kept["url"].tolist() == [duplicate.url]


def test_unreadable_documents_are_listed_not_fatal(data_dir):
    garbage = FakeSource("beijing_xicheng", "https://www.bjxch.gov.cn/x.html", "word-2021-gb2312.html",
                         data=os.urandom(5000))  # fmt: skip
    summary = build_dataset([*sources(), garbage], data_dir, workers=1)
    assert summary.reports == 5
    assert summary.not_in_dataset == [(garbage.url, "no agency name")]
    assert summary.ok, "a document without tables is a reading, not a failure"
    assert "extract:" in summary.render()


def test_filters_and_wide_view(data_dir):
    build_dataset(sources(), data_dir, workers=2)
    assert set(load("reports", district="西城区", data_dir=data_dir)["year"]) == {2023}
    xicheng = load("reports", district="西城区", data_dir=data_dir)[
        "agency_id"
    ].tolist()
    cells = load("applications", agency=xicheng[0], year=2023, data_dir=data_dir)
    assert len(cells) == 175
    wide = load_applications_wide(year=2023, data_dir=data_dir)
    assert len(wide) == 2
    assert wide.columns[:3].tolist() == [
        "agency_id",
        "year",
        "new_received:natural_person",
    ]
    assert sorted(wide["new_received:total"]) == [2.0, 145.0]
    # Over all years agency_id loads as a categorical: still one row per report, not
    # one per agency and year (pandas 2 pivots unobserved categories by default).
    every_year = load_applications_wide(data_dir=data_dir)
    reports = load("reports", data_dir=data_dir)
    with_cells = reports[reports["agency_id"].isin(set(every_year["agency_id"]))]
    assert len(set(reports["year"])) > 1
    assert len(every_year) == len(with_cells)


KILLER = """
import sys
from pathlib import Path
import extract.dataset.build as build
from tests.test_dataset import sources

real = build.assemble_year
written = []
def dying(*args, **kwargs):
    real(*args, **kwargs)
    written.append(1)
    if len(written) == 3:
        import os
        os._exit(9)
build.assemble_year = dying
build.build_dataset(sources(), Path(sys.argv[1]), force=True, workers=1)
"""


def test_a_killed_run_leaves_the_previous_dataset_whole(data_dir):
    build_dataset(sources(), data_dir, workers=1)
    before = _table(data_dir, "applications")
    target = (data_dir / "parquet").readlink()
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(data_dir)],
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert killed.returncode == 9
    assert (data_dir / "parquet").readlink() == target
    pd.testing.assert_frame_equal(_table(data_dir, "applications"), before)
    half_written = set((data_dir / "parquet-versions").iterdir())
    assert len(half_written) == 2
    summary = build_dataset(sources(), data_dir, force=True, workers=1)
    assert summary.reports == 5
    # The same result as a clean run.
    clean = data_dir.parent / "clean"
    build_dataset(sources(), clean, workers=1)
    for table in ("reports", "applications", "checks", "sections"):
        pd.testing.assert_frame_equal(
            _table(data_dir, table).drop(columns=["fetched_at"], errors="ignore"),
            _table(clean, table).drop(columns=["fetched_at"], errors="ignore"),
        )
    versions = set((data_dir / "parquet-versions").iterdir())
    # The killed run's version is gone; the first and the new one are kept.
    killed_version = {v for v in half_written if v.name != target.name}
    assert len(versions) == 2 and target.name in {v.name for v in versions}
    assert not killed_version & versions


def _extract_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nianbao.cli", "extract", "--data-dir", str(data_dir), *args],
        cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def _cells(agencies: list[str], values: list[float]) -> pa.Table:
    # Two cells an agency, in template order, as a year file or a staged batch holds them.
    rows, columns = (
        ["granted", "refused"] * len(agencies),
        ["total"] * 2 * len(agencies),
    )
    return pa.table(
        {
            "agency_id": [a for a in agencies for _ in range(2)],
            "row": pa.array(rows).dictionary_encode(),
            "column": pa.array(columns).dictionary_encode(),
            "value": pa.array(values, pa.float64()),
        }
    )


@pytest.mark.parametrize("old_order", [["a", "b", "c"], ["b", "a", "c"]])
def test_cells_are_compared_agency_by_agency_whatever_order_they_come_in(old_order):
    values = {"a": [1.0, 2.0], "b": [3.0, None], "c": [5.0, 6.0]}
    old = _cells(old_order, [v for a in old_order for v in values[a]])
    staged = ["c", "a", "b"]  # the order workers finished the agencies in
    same = Changes()
    new = _cells(staged, [v for a in staged for v in values[a]])
    cell_changes(same, "applications", 2023, old, new, {"a", "b", "c"})
    assert same.cells_changed == {"applications": 0} and same.cells == []

    values["b"] = [3.0, 4.0]
    changed = Changes()
    new = _cells(staged, [v for a in staged for v in values[a]])
    cell_changes(changed, "applications", 2023, old, new, {"a", "b", "c"})
    assert changed.cells == [
        {"agency_id": "b", "year": 2023, "table": "applications", "row": "refused",
         "column": "total", "old": None, "new": 4.0},
    ]  # fmt: skip


def test_changed_cells_are_listed_and_versions_kept_and_rolled_back(data_dir):
    first = build_dataset(sources(), data_dir, workers=1)
    changed = sources()
    changed[1].data = (
        changed[1].read_bytes().replace("1,234".encode("gbk"), "1,235".encode("gbk"))
    )
    second = build_dataset(changed, data_dir, workers=1)
    assert second.changes.as_record() == {
        "reports_added": 0,
        "reports_re_extracted": 1,
        "reports_removed": 0,
        "status_transitions": {},
        "cells_changed": {
            "active_disclosure": 1,
            "applications": 0,
            "reviews_litigation": 0,
        },
    }
    (cell,) = second.changes.cells
    assert (cell["table"], cell["row"], cell["year"], cell["old"], cell["new"]) == (
        "active_disclosure", "licensing", 2023, 1234.0, 1235.0,
    )  # fmt: skip

    listing = _extract_cli(data_dir, "--versions")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[1].startswith(f"* {second.version_id}")
    assert lines[2].startswith(f"  {first.version_id}")

    rolled = _extract_cli(data_dir, "--rollback", first.version_id)
    assert rolled.returncode == 0, rolled.stderr
    assert (data_dir / "parquet").resolve().name == first.version_id
    licensing = load("active_disclosure", year=2023, data_dir=data_dir).query(
        "row == 'licensing'"
    )
    assert 1234.0 in set(licensing["value"].dropna())
    # The state rolled back with the data: the changed page is extracted again.
    plan = build_dataset(changed, data_dir, dry_run=True).plan
    assert plan.extract == {changed[1].url: "changed bytes"}
    unknown = _extract_cli(data_dir, "--rollback", "19990101T000000000000Z")
    assert unknown.returncode == 2 and "no kept version" in unknown.stderr


@pytest.mark.parametrize("split", ["in memory", "through spill files"])
def test_year_files_assembled_one_agency_at_a_time_are_the_same(
    tmp_path, monkeypatch, split
):
    """Chunks bound the driver's memory; they change nothing in the files or the changes."""
    changed = sources()
    changed[1].data = (
        changed[1].read_bytes().replace("1,234".encode("gbk"), "1,235".encode("gbk"))
    )

    def build_twice(data_dir: Path) -> tuple[dict[str, pd.DataFrame], list[dict]]:
        build_dataset(sources(), data_dir, workers=1)
        second = build_dataset(changed, data_dir, workers=1)
        tables = {
            name: _table(data_dir, name).drop(
                columns=["extractor_version"], errors="ignore"
            )
            for name in ("reports", "active_disclosure", "applications", "sections")
        }
        return tables, second.changes.cells

    whole = build_twice(tmp_path / "whole")
    monkeypatch.setattr(assemble, "CHUNK_AGENCIES", 1)
    monkeypatch.setattr(assemble, "MERGE_AGENCIES", 1)
    if split == "through spill files":
        monkeypatch.setattr(assemble, "MERGE_BYTES", 1)
    chunked = build_twice(tmp_path / "chunked")
    assert chunked[1] == whole[1] and len(whole[1]) == 1
    for name, frame in whole[0].items():
        pd.testing.assert_frame_equal(chunked[0][name], frame, obj=name)
    # 2023 holds two agencies: written as two chunks, still sorted by agency.
    path = (
        tmp_path
        / "chunked"
        / "parquet"
        / "applications"
        / "year=2023"
        / "part-0.parquet"
    )
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    ids = pq.read_table(path, columns=["agency_id"])["agency_id"].to_pylist()
    assert ids == sorted(ids)


def test_only_the_newest_versions_are_kept(data_dir):
    for note in range(4):
        changed = sources()
        changed[0].data = changed[0].read_bytes() + f"\n附注{note}\n".encode()
        summary = build_dataset(changed, data_dir, workers=1, keep_versions=2)
    kept = sorted(p.name for p in (data_dir / "parquet-versions").iterdir())
    assert len(kept) == 2 and kept[-1] == summary.version_id
    assert len(summary.pruned) == 1


def test_extract_takes_the_run_lock(data_dir):
    from nianbao.nightly import run_lock

    build_dataset(sources(), data_dir, workers=1)
    with run_lock(data_dir):
        blocked = _extract_cli(data_dir, "--all")
    assert blocked.returncode == 75
    assert "another run holds" in blocked.stderr and "pid" in blocked.stderr


def test_a_check_that_fails_before_publishing_keeps_the_version_current(data_dir):
    first = build_dataset(sources(), data_dir, workers=1)

    def lease_taken_over() -> None:
        raise DatasetStoreError("another driver took over the lease")

    with pytest.raises(DatasetStoreError, match="took over the lease"):
        build_dataset(sources(), data_dir, force=True, before_publish=lease_taken_over)
    assert DatasetStore(data_dir).current_id() == first.version_id
    assert [v.id for v in DatasetStore(data_dir).versions()] == [first.version_id]
    assert len(load("reports", data_dir=data_dir)) == 5


def test_a_dry_run_says_why_and_changes_nothing(data_dir):
    first = build_dataset(sources(), data_dir, workers=1)
    dry = build_dataset(sources(), data_dir, force=True, dry_run=True)
    assert dry.reasons == {"--all": 5} and dry.version_id is None
    assert (
        "extract (dry run): 5 archived reports, 5 extracted (5 --all)" in dry.render()
    )
    assert (data_dir / "parquet").resolve().name == first.version_id


def test_an_empty_archive_never_replaces_a_dataset(data_dir):
    build_dataset(sources(), data_dir, workers=1)
    refused = _extract_cli(data_dir)
    assert refused.returncode == 2
    assert "lists no report" in refused.stderr and "NIANBAO_DATA" in refused.stderr
    assert len(load("reports", data_dir=data_dir)) == 5


def test_installing_a_converter_re_extracts_only_the_documents_that_need_it(
    data_dir, monkeypatch
):
    pdf = FakeSource(
        "beijing_miyun",
        "https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2024/202501/t20250120_7.html",
        "huaian-city-2024.pdf",
        content_type="application/pdf",
    )
    build_dataset([*sources(), pdf], data_dir, workers=1)
    assert build_dataset([*sources(), pdf], data_dir, dry_run=True).reasons == {}
    # As if Tesseract were upgraded after the last run.
    from extract.dataset.reuse import converter_versions

    upgraded = {**converter_versions(), "tesseract": "tesseract 6.0.0; chi_sim True"}
    monkeypatch.setattr("extract.dataset.build.converter_versions", lambda: upgraded)
    plan = build_dataset([*sources(), pdf], data_dir, dry_run=True).plan
    assert plan.extract == {pdf.url: "new converter"}


def test_converter_versions_are_asked_once_and_again_when_the_converter_changes(
    tmp_path, monkeypatch
):
    from extract.dataset.reuse import converter_version

    # A LibreOffice launcher that logs each time it is asked, with its versionrc beside it.
    program = tmp_path / "libreoffice" / "program"
    program.mkdir(parents=True)
    asked = tmp_path / "asked.log"
    soffice = program / "soffice"
    soffice.write_text(
        f'#!/bin/sh\necho asked >> {asked}\necho "LibreOffice 7.4.7.2"\n'
    )
    soffice.chmod(0o755)
    (program / "versionrc").write_text("[Version]\nbuildid=40(Build:2)\n")
    monkeypatch.setenv("PATH", str(program))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def version() -> str:
        converter_version.cache_clear()  # as a new process would
        return converter_version("libreoffice")

    assert version() == "LibreOffice 7.4.7.2"
    assert version() == "LibreOffice 7.4.7.2"
    assert asked.read_text().count("asked") == 1
    # An upgrade installs a new launcher and build (new stamps, even within a second).
    (program / "versionrc").write_text("[Version]\nbuildid=50(Build:1)\n")
    soffice.write_text(soffice.read_text().replace("7.4.7.2", "7.6.4.1"))
    os.utime(soffice, ns=(0, 10**18))
    assert version() == "LibreOffice 7.6.4.1"
    assert asked.read_text().count("asked") == 2
    soffice.unlink()
    assert version() == "absent"
    converter_version.cache_clear()


def test_filters_take_names_and_codes_and_say_what_they_do_not_know(data_dir):
    from extract.loader import DatasetNotFoundError, UnknownFilterError

    with pytest.raises(DatasetNotFoundError, match=r"nianbao run --demo"):
        load("reports", data_dir=data_dir)
    build_dataset(sources(), data_dir, workers=1)
    by_name = load("reports", district="西城区", data_dir=data_dir)
    assert len(by_name) == 2
    for other in ("西城", "110102"):
        pd.testing.assert_frame_equal(
            load("reports", district=other, data_dir=data_dir), by_name
        )
    liaison = load("reports", agency="对外联络服务办公室", data_dir=data_dir)
    assert liaison["agency"].tolist() == ["北京市西城区对外联络服务办公室"]
    with pytest.raises(UnknownFilterError, match="closest: 西城区"):
        load("reports", district="西单", data_dir=data_dir)
    with pytest.raises(UnknownFilterError, match="names 2 agencies"):
        load("reports", agency="西城区", data_dir=data_dir)
    with pytest.warns(UserWarning, match="no applications for year 2031"):
        assert load("applications", year=2031, data_dir=data_dir).empty


def test_cross_year_checks_compare_carried_forward_with_next_years_carried_over(
    data_dir,
):
    # Two reports of one agency in consecutive years (the list page names the agency).
    first, second = sources()[1], sources()[3]
    first.agency = second.agency = "北京市西城区审计局"
    summary = build_dataset([first, second], data_dir, workers=1)
    checks = load("cross_year_checks", data_dir=data_dir)
    assert set(zip(checks["year"], checks["next_year"], strict=True)) == {(2023, 2024)}

    def values(source, row):
        frame = parse_report(source.read_bytes(), url=source.url).applications
        part = frame[frame["row"] == row]
        return dict(zip(part["column"], part["value"], strict=True))

    forward, over = values(first, "carried_forward"), values(second, "carried_over")
    for check in checks.itertuples():
        was, now = forward.get(check.column), over.get(check.column)
        expected = (
            "incomplete" if pd.isna(was) or pd.isna(now)
            else "pass" if was == now else "fail"
        )  # fmt: skip
        assert check.status == expected, check
    assert summary.cross_year_failed == (checks["status"] == "fail").sum()


def test_cross_year_windows_cover_every_pair_of_consecutive_years_once():
    from collections import Counter

    from extract.dataset.crossyear import _windows

    years = [2019, 2020, 2021, 2022, 2023]
    five_each = Counter(dict.fromkeys(years, 5))
    assert _windows(years, five_each) == [years]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("extract.dataset.crossyear.WINDOW_REPORTS", 20)
        assert _windows(years, five_each) == [years[:4], years[3:]]
        patch.setattr("extract.dataset.crossyear.WINDOW_REPORTS", 1)
        pairs = _windows(years, five_each)
    assert pairs == [[a, a + 1] for a in years[:-1]]
    assert _windows([2019], Counter({2019: 3})) == []
