"""``nianbao crawl --list-url URL --division CODE``: a column no site declares, in one line."""

from __future__ import annotations

import sqlite3
import sys

from crawler.archive.reader import iter_latest_reports, verify_archive
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import FAST, _run
from tests.fixtures.sites.snapshot import PDF, _list_page, _trs_pager

COLUMN = "http://www.tjhq.gov.cn/zwgk/zfxxgkqjjg/qzwfwb/zfxxgknb30/"
AGENCY = "天津市河北区政务服务办公室"


def _report(title: str, attachment: str = "") -> bytes:
    link = f'<a href="{attachment}">附件</a>' if attachment else ""
    return (
        f'<html><head><meta charset="utf-8"><title>{title}</title></head><body>'
        f'<div class="TRS_Editor"><p>{title}</p>{link}</div></body></html>'
    ).encode()


def column_pages() -> dict:
    """A TRS column of two pages: three reports (one with a PDF) and a 解读."""
    from nianbao.demo.server import Page

    prefix = "/www.tjhq.gov.cn/zwgk/zfxxgkqjjg/qzwfwb/zfxxgknb30/"
    titles = {
        "202401/t20240119_1001.html": f"{AGENCY}2023年政府信息公开工作年度报告",
        "202301/t20230118_901.html": f"{AGENCY}2022年政府信息公开工作年度报告",
        "202201/t20220120_801.html": f"{AGENCY}2021年政府信息公开工作年度报告",
    }
    items = [(href, title, title) for href, title in titles.items()]
    items.insert(1, ("202401/t20240125_1002.html", "2023年年报解读", ""))
    pages = {
        prefix: Page(
            _list_page("政府信息公开年报", items[:2], _trs_pager(2, 0)).encode()
        ),
        prefix + "index_1.html": Page(
            _list_page("政府信息公开年报", items[2:], _trs_pager(2, 1)).encode()
        ),
        prefix + "202401/t20240125_1002.html": Page(_report("解读")),
        prefix + "202401/P020240119.pdf": Page(PDF, "application/pdf"),
    }
    for href, title in titles.items():
        attachment = "./P020240119.pdf" if href.startswith("202401") else ""
        pages[prefix + href] = Page(_report(title, attachment))
    return pages


def test_a_column_crawls_in_one_line_and_carries_its_place(tmp_path):
    with SnapshotServer(column_pages()) as server:
        argv = [sys.executable, "-m", "nianbao.cli", "crawl", "--list-url", COLUMN,
                "--division", "120105", "--district", "河北区", "--name", "tianjin_hebei_qzwfwb",
                "--mirror", server.url, "--data-dir", str(tmp_path), *FAST]  # fmt: skip
        result = _run(argv, tmp_path)
        fetched = {h.path for h in server.hits()}
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tianjin_hebei_qzwfwb" in result.stdout and result.stdout.strip().endswith(
        "ok"
    )
    reports = list(iter_latest_reports(tmp_path))
    assert sorted((r.report_year, r.agency) for r in reports) == [
        (2021, AGENCY),
        (2022, AGENCY),
        (2023, AGENCY),
    ]
    assert all(
        (r.site, r.division_code, r.province, r.city, r.district)
        == ("tianjin_hebei_qzwfwb", "120105", "天津市", "天津市", "河北区")
        for r in reports
    )
    newest = next(r for r in reports if r.report_year == 2023)
    assert [a.url for a in newest.attachments] == [COLUMN + "202401/P020240119.pdf"]
    assert newest.missing_attachments == []
    assert not any("t20240125_1002" in p for p in fetched)  # the 解读, by its title
    con = sqlite3.connect(tmp_path / "raw" / "manifest.sqlite")
    try:
        row = con.execute("SELECT division_code, start_urls FROM sites").fetchone()
    finally:
        con.close()
    assert row == ("120105", COLUMN)
    assert verify_archive(tmp_path) == []


def test_a_list_url_needs_a_division_code(tmp_path):
    argv = [sys.executable, "-m", "nianbao.cli", "crawl", "--list-url", COLUMN,
            "--data-dir", str(tmp_path)]  # fmt: skip
    result = _run(argv, tmp_path)
    assert result.returncode == 2
    assert "--list-url and --division go together" in result.stderr


def test_a_column_that_moved_to_a_new_host_is_followed_and_noted(tmp_path):
    from nianbao.demo.server import Page

    pages = {
        path.replace("www.tjhq.gov.cn", "new.tjhq.gov.cn"): page
        for path, page in column_pages().items()
    }
    old = "/www.tjhq.gov.cn/zwgk/zfxxgkqjjg/qzwfwb/zfxxgknb30/"
    pages[old] = Page(b"", redirect=old.replace("www.", "new.", 1))
    with SnapshotServer(pages) as server:
        argv = [sys.executable, "-m", "nianbao.cli", "crawl", "--list-url", COLUMN,
                "--division", "120105", "--mirror", server.url,
                "--data-dir", str(tmp_path), *FAST]  # fmt: skip
        result = _run(argv, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # Through a mirror, a host the site does not declare reads as https.
    moved = COLUMN.replace("http://www.", "https://new.")
    assert (
        f"NOTE column_tjhq: list page {COLUMN} redirects to {moved}: "
        "update the site's declaration"
    ) in result.stdout
    reports = list(iter_latest_reports(tmp_path))
    assert len(reports) == 3
    assert all(r.url.startswith("https://new.tjhq.gov.cn/") for r in reports)
