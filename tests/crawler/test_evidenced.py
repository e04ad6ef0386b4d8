"""The evidenced places crawled on snapshots built to their known URL patterns: exactly the
reports and attachments each snapshot declares (tests/fixtures/sites/evidenced.py)."""

from __future__ import annotations

import pytest

from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.registry import declared_sites
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import run_crawl_cli
from tests.fixtures.sites.evidenced import HAIDIAN, build_evidenced

# The sites evidenced.py builds; a site added later needs only its captured folder.
SITES = sorted(build_evidenced().reports)


@pytest.fixture(scope="module")
def evidenced():
    snap = build_evidenced()
    with SnapshotServer(snap.pages) as server:
        yield snap, server


@pytest.fixture(scope="module")
def crawled(evidenced, tmp_path_factory):
    snap, server = evidenced
    data_dir = tmp_path_factory.mktemp("evidenced")
    result = run_crawl_cli(data_dir, server.url, *SITES)
    return data_dir, result


def test_the_crawl_is_ok_and_says_what_it_left_out(crawled):
    data_dir, result = crawled
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "NOTE fujian_pingtan: list page https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/ "
        "counts 10 more documents than it renders" in result.stdout
    )
    assert verify_archive(data_dir) == []


@pytest.mark.parametrize("site", SITES)
def test_each_site_gives_exactly_its_reports_attachments_and_place(
    crawled, evidenced, site
):
    snap, _ = evidenced
    data_dir, _ = crawled
    reports = list(iter_latest_reports(data_dir, site=site))
    expected = snap.expected_reports(site)
    assert {(r.url, r.agency, r.report_year, r.title) for r in reports} == {
        (r.url, r.agency, r.year, r.title) for r in expected.values()
    }
    attachments = {a.url: r.url for r in reports for a in r.attachments}
    assert attachments == snap.expected_attachments(site)
    place = declared_sites()[site].place
    assert {(r.division_code, r.province, r.city, r.district) for r in reports} == {
        (place.division_code, place.province, place.city, place.district)
    }


def test_a_column_showing_next_years_report_keeps_last_years(crawled, evidenced):
    snap, server = evidenced
    data_dir, _ = crawled
    page = snap.pages["/" + HAIDIAN.split("://", 1)[1]]
    page.body = page.body.replace("2024年".encode(), "2025年".encode())
    result = run_crawl_cli(data_dir, server.url, "beijing_haidian")
    assert result.returncode == 0, result.stdout + result.stderr
    reports = list(iter_latest_reports(data_dir, site="beijing_haidian"))
    assert sorted((r.url, r.report_year) for r in reports) == [
        (HAIDIAN + "#2024", 2024),
        (HAIDIAN + "#2025", 2025),
    ]
