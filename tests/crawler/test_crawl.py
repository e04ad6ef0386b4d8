"""End-to-end crawls of the four site snapshots: archive contents, incremental runs, errors."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from crawler.archive.reader import iter_latest_reports, verify_archive
from tests.crawler.conftest import run_crawl_cli, run_scrapy_crawl
from tests.fixtures.sites.snapshot import (
    DONGCHENG,
    PORTAL,
    XICHENG,
    change_report,
    new_dongcheng_report,
    xicheng_report_url,
)

SITES = ("beijing_dongcheng", "beijing_miyun", "beijing_portal", "beijing_xicheng")
CHANGED = f"{DONGCHENG}/2024nb/dcqzfbm2024/202501/t20250120_3994172.html"


def _rows(data_dir: Path, sql: str, params=()) -> list[sqlite3.Row]:
    con = sqlite3.connect(data_dir / "raw" / "manifest.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _run_counts(data_dir: Path) -> dict[str, sqlite3.Row]:
    rows = _rows(data_dir, "SELECT * FROM runs ORDER BY started_at")
    latest = rows[-1]["run_id"]
    return {r["site"]: r for r in rows if r["run_id"] == latest}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, snapshot, server):
    """Three crawls of all sites: first, unchanged, then with a new and a changed report."""
    data_dir = tmp_path_factory.mktemp("data")
    out = {"data_dir": data_dir, "server_url": server.url}
    start = len(server.hits())
    first = run_crawl_cli(data_dir, server.url, "all")
    out["first"] = (first, server.hits(start), _run_counts(data_dir))
    out["archived"] = {
        _path(r["url"])
        for r in _rows(data_dir, "SELECT url FROM records WHERE kind != 'list'")
    }
    start = len(server.hits())
    second = run_crawl_cli(data_dir, server.url, "all")
    out["second"] = (second, server.hits(start), _run_counts(data_dir))
    out["added"] = new_dongcheng_report(snapshot)
    change_report(
        snapshot, CHANGED, "（2025年2月10日更正：第五部分数字有误，已更正。）"
    )
    start = len(server.hits())
    third = run_crawl_cli(data_dir, server.url, "beijing_dongcheng")
    out["third"] = (third, server.hits(start), _run_counts(data_dir))
    return out


def test_first_run_succeeds_and_prints_the_summary(runs):
    result, _, counts = runs["first"]
    assert result.returncode == 0, result.stdout + result.stderr
    for site in SITES:
        assert site in result.stdout
    assert result.stdout.strip().endswith("ok")
    assert {s: counts[s]["new"] for s in SITES} == {
        "beijing_dongcheng": 9,
        "beijing_miyun": 5,  # one report is only a PDF attachment
        "beijing_portal": 6,
        "beijing_xicheng": 7,
    }
    assert counts["beijing_xicheng"]["failed"] == 1  # the 404
    assert all(counts[s]["ok"] == 1 for s in SITES)


def test_archive_holds_exactly_the_reports_and_attachments(runs, snapshot):
    data_dir = runs["data_dir"]
    reports = list(iter_latest_reports(data_dir))
    for site in SITES:
        expected = snapshot.expected_reports(site)
        if site == "beijing_dongcheng":
            expected.pop(runs["added"].url)  # added after the first runs
        got = {r.url: r for r in reports if r.site == site}
        assert set(got) >= set(expected), site
        if site != "beijing_dongcheng":
            assert set(got) == set(expected), site
        for url, report in expected.items():
            archived = got[url]
            assert archived.report_year == report.year, url
            assert archived.title == report.title, url
            assert archived.agency == report.agency, url
        attachments = {a.url: r.url for r in got.values() for a in r.attachments}
        assert attachments == snapshot.expected_attachments(site) | {
            a: r for a, r in attachments.items() if r == runs["added"].url
        }, site


def test_traps_are_not_archived(runs, server):
    data_dir = runs["data_dir"]
    urls = {r["url"] for r in _rows(data_dir, "SELECT url FROM records")}
    assert not any(
        "xzscdzx" in u or "/gate/big5/" in u or "127.0.0.1" in u for u in urls
    )
    assert not any(
        "pntypepvjd" in u or "t20240125_3542000" in u or "gknb/202503" in u
        for u in urls
    )
    assert not any("/szfbm/" in u or "/nbtest/" in u for u in urls)
    fetched = {h.path for h in runs["first"][1]}
    assert not any(
        "/gate/big5/" in p or "nbtest" in p or "xzscdzx" in p or "/szfbm/" in p
        for p in fetched
    )
    assert not any(
        "/images/logo.png" in p or "top_logo" in p for p in fetched
    )  # chrome, not body
    # robots.txt is read per real host, from the mirror's host folder.
    assert "/www.bjxch.gov.cn/robots.txt" in fetched


def test_manifest_rows_record_fetch_details(runs, snapshot):
    data_dir = runs["data_dir"]
    by_url = {r.url: r for r in iter_latest_reports(data_dir)}
    gbk = by_url[xicheng_report_url(150, 2021)]
    assert gbk.encoding == "gb18030"
    assert gbk.content_type == "text/html"
    assert "发展和改革委员会".encode("gbk") in gbk.read_bytes()
    redirected = by_url[xicheng_report_url(197, 2025)]
    assert (
        redirected.final_url
        == f"{XICHENG}/zt/xxgkzl/gknbxq/v2/pnidpv197pntypepvnbpnnfpv2025.html"
    )
    # The 500 recovered on retry and the slow page was fetched after a timeout.
    assert xicheng_report_url(360, 2024) in by_url
    assert xicheng_report_url(379, 2025) in by_url
    statuses = [
        h.status
        for h in runs["first"][1]
        if h.path.endswith("pnidpv360pntypepvnbpnnfpv2024.html")
    ]
    assert statuses == [500, 200]
    # The slow page's first answer came after the 1 s timeout: it was asked for twice.
    assert (
        snapshot.pages[
            "/www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv379pntypepvnbpnnfpv2025.html"
        ].served
        == 2
    )
    for report in by_url.values():
        data = report.read_bytes()
        assert hashlib.sha256(data).hexdigest() == report.sha256
        assert report.fetched_at.endswith("Z") and report.fetched_at[:4] >= "2024"
        assert report.record_id.startswith("<urn:uuid:")
        for attachment in report.attachments:
            assert (
                hashlib.sha256(attachment.read_bytes()).hexdigest() == attachment.sha256
            )
            assert attachment.report_year == report.report_year
    pdf = next(
        a
        for a in by_url[
            f"{PORTAL}/2018nb/qzf/202102/t20210224_2287619.html"
        ].attachments
    )
    assert (
        pdf.read_bytes().startswith(b"%PDF") and pdf.content_type == "application/pdf"
    )
    failures = _rows(
        data_dir, "SELECT url, status FROM failures WHERE site = 'beijing_xicheng'"
    )
    assert [(f["url"], f["status"]) for f in failures][:1] == [
        (xicheng_report_url(290, 2022), 404)
    ]
    assert verify_archive(data_dir) == []


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1]


def test_second_run_fetches_only_list_pages(runs, snapshot):
    result, hits, counts = runs["second"]
    assert result.returncode == 0, result.stdout + result.stderr
    archived = runs["archived"]
    assert len(archived) == 27 + 11  # reports + attachments
    refetched = [h for h in hits if h.path in archived and h.status == 200]
    assert refetched == []
    lists = [
        h
        for h in hits
        if h.status == 200
        and h.path not in archived
        and not h.path.endswith("/robots.txt")
    ]
    assert len(lists) == 16 + 9 + 16 + 2
    assert all(counts[s]["new"] == 0 and counts[s]["changed"] == 0 for s in SITES)
    assert counts["beijing_dongcheng"]["unchanged"] == 9
    # TRS pages answer conditional requests; 西城's dynamic pages are not requested again.
    assert any(h.status == 304 and h.conditional for h in hits)
    assert not any("pnidpv" in h.path and h.status != 404 for h in hits)
    second_run = _rows(
        runs["data_dir"], "SELECT DISTINCT run_id FROM runs ORDER BY run_id"
    )[1][0]
    assert (
        _rows(
            runs["data_dir"],
            "SELECT count(*) FROM records WHERE run_id = ? AND kind != 'list'",
            (second_run,),
        )[0][0]
        == 0
    )


def test_third_run_picks_up_a_new_report_and_versions_a_changed_one(runs):
    result, hits, counts = runs["third"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts["beijing_dongcheng"]["new"] == 1
    assert counts["beijing_dongcheng"]["changed"] == 1
    data_dir = runs["data_dir"]
    versions = _rows(
        data_dir,
        "SELECT version, sha256 FROM records WHERE url = ? ORDER BY rowid",
        (CHANGED,),
    )
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["sha256"] != versions[1]["sha256"]
    latest = {r.url: r for r in iter_latest_reports(data_dir)}
    assert "第五部分数字有误".encode() in latest[CHANGED].read_bytes()
    assert (
        latest[runs["added"].url].title
        == "北京市东城区审计局2025年政府信息公开工作年度报告"
    )
    assert verify_archive(data_dir) == []


def test_scrapy_crawl_runs_one_site(runs):
    result = run_scrapy_crawl(runs["data_dir"], runs["server_url"], "beijing_miyun")
    assert result.returncode == 0, result.stderr
    assert _run_counts(runs["data_dir"])["beijing_miyun"]["ok"] == 1


def test_a_site_that_finds_no_reports_any_more_is_an_error(runs, snapshot, tmp_path):
    """Run last in this module: it empties 密云's lists."""
    data_dir = runs["data_dir"]
    for path, page in snapshot.pages.items():
        if path.startswith("/www.bjmy.gov.cn/") and path.endswith("/"):
            page.body = (
                b"<html><body><ul><li>\xe6\x9a\x82\xe6\x97\xa0</li></ul></body></html>"
            )
    result = run_crawl_cli(data_dir, runs_url(runs, snapshot), "beijing_miyun")
    assert result.returncode == 1
    assert "ERROR beijing_miyun" in result.stdout
    counts = _run_counts(data_dir)
    assert counts["beijing_miyun"]["ok"] == 0
    assert "found no reports" in counts["beijing_miyun"]["error"]
    result = run_scrapy_crawl(data_dir, runs_url(runs, snapshot), "beijing_miyun")
    assert result.returncode == 1
    assert "beijing_miyun: found no reports" in result.stderr


def runs_url(runs, snapshot) -> str:  # noqa: ARG001 - the module server
    return runs["server_url"]
