"""Every declared site crawled on its captured pages: exactly the reports and attachments
its capture found. Adding a site is its row in crawler/sites.toml and its captured folder
(``nianbao capture SITE``); this test takes both up by itself."""

from __future__ import annotations

import pytest

from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.registry import declared_sites
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import run_crawl_cli
from tests.fixtures.sites.captured import capture_manifest, captured_pages

SITES = sorted(declared_sites())


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """One crawl of every captured site, all served together on 127.0.0.1."""
    pages: dict = {}
    captured = [site for site in SITES if capture_manifest(site) is not None]
    for site in captured:
        for path, page in captured_pages(site).items():
            assert pages.setdefault(path, page).body == page.body, (
                f"{path} is captured differently by two sites"
            )
    data_dir = tmp_path_factory.mktemp("captured")
    with SnapshotServer(pages) as server:
        result = run_crawl_cli(data_dir, server.url, *captured)
    return data_dir, result


@pytest.mark.parametrize("site", SITES)
def test_the_site_finds_exactly_what_its_capture_found(crawled, site):
    manifest = capture_manifest(site)
    assert manifest is not None, (
        f"{site} has no captured folder: run nianbao capture {site}"
    )
    data_dir, result = crawled
    assert f"ERROR {site}" not in result.stdout, result.stdout
    reports = list(iter_latest_reports(data_dir, site=site))
    assert {(r.agency, r.report_year, r.url) for r in reports} == {
        (r["agency"], r["year"], r["url"]) for r in manifest["reports"]
    }
    assert {r.url: sorted(a.url for a in r.attachments) for r in reports} == {
        r["url"]: r["attachments"] for r in manifest["reports"]
    }
    place = declared_sites()[site].place
    assert {r.division_code for r in reports} == {place.division_code}


def test_the_captured_crawl_is_ok_and_verifies(crawled):
    data_dir, result = crawled
    assert result.returncode == 0, result.stdout + result.stderr
    assert verify_archive(data_dir) == []
