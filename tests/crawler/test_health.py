"""Bad input: each broken site is reported with its reason, the others go on, nothing archived
is lost; ``nianbao sites`` shows each site's last run, reports per year, failures and flag."""

from __future__ import annotations

import sys

import pytest

from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.health import site_health
from nianbao.demo.server import Page, SnapshotServer
from tests.crawler.conftest import _run, run_crawl_cli
from tests.fixtures.sites.captured import captured_pages

SITES = ("beijing_dongcheng", "beijing_miyun", "beijing_portal", "beijing_xicheng")
SITES_COMMAND = (
    "import sys; from crawler.cli import sites; sys.argv[0] = 'nianbao sites'; sites()"
)
XICHENG_LIST = "/www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html"
DONGCHENG_COLUMN = "/www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/2024nb/dcqzfbm2024/"


def _break_the_sites(pages: dict[str, Page], server: SnapshotServer) -> None:
    # 西城's list moved to a host that is not allowed.
    pages[XICHENG_LIST] = Page(b"", redirect="http://www.example.com/nb.html")
    # 密云's columns: robots.txt now forbids them.
    server.robots = "User-agent: *\nDisallow: /zwgk/zfxxgk/zfxxgknb/\n"
    # The portal's lists changed their markup: no links any more.
    for path, page in pages.items():
        if "/zfxxgknb/20" in path and "/qzf/" in path and "/t20" not in path:
            page.body = page.body.replace(b"<a ", b"<span ").replace(
                b"</a>", b"</span>"
            )
    # One 东城 column now lists 解读 pages only (both of its pages).
    for path in (DONGCHENG_COLUMN, DONGCHENG_COLUMN + "index_1.html"):
        pages[path].body = pages[path].body.replace(
            "年度报告".encode(), "年度报告解读".encode()
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("health")
    pages = {}
    for site in SITES:
        pages.update(captured_pages(site))
    with SnapshotServer(pages) as server:
        first = run_crawl_cli(data_dir, server.url, *SITES)
        archived = {r.url: r.sha256 for r in iter_latest_reports(data_dir)}
        _break_the_sites(pages, server)
        start = len(server.hits())
        second = run_crawl_cli(data_dir, server.url, *SITES)
        miyun = [h.path for h in server.hits(start) if h.path.startswith("/www.bjmy")]
    # Every request that waited for robots.txt was checked against it.
    assert miyun == ["/www.bjmy.gov.cn/robots.txt"]
    command = [sys.executable, "-c", SITES_COMMAND, "--data-dir", str(data_dir)]
    return data_dir, first, second, archived, _run(command, data_dir)


def test_each_broken_site_is_reported_with_its_reason(runs):
    _, first, second, _, _ = runs
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 1
    out = second.stdout
    assert (
        "ERROR beijing_xicheng: found no reports; the archive holds 7 from earlier runs "
        "(https://www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html: refused: redirect to "
        "http://www.example.com/nb.html: www.example.com is not an allowed host)"
    ) in out
    assert (
        "ERROR beijing_miyun: found no reports; the archive holds 5 from earlier runs "
        "(https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2017/: robots.txt forbids it; "
        "https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2018/: robots.txt forbids it; "
        "https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2019/: robots.txt forbids it; "
        "6 more)"
    ) in out
    assert "ERROR beijing_portal: found no reports; the archive holds 6" in out
    assert "DROP beijing_dongcheng: found 6 reports where the run " in out
    assert out.rstrip().endswith("3 site(s) in error")


def test_nothing_archived_is_lost(runs):
    data_dir, _, _, archived, _ = runs
    assert {r.url: r.sha256 for r in iter_latest_reports(data_dir)} == archived
    assert verify_archive(data_dir) == []


def test_sites_shows_runs_years_failures_and_flags(runs):
    data_dir, _, _, _, listed = runs
    assert listed.returncode == 0, listed.stderr
    health = {h.site: h for h in site_health(data_dir)}
    assert {s: health[s].status for s in SITES} == {
        "beijing_dongcheng": "DROP",
        "beijing_miyun": "ERROR",
        "beijing_portal": "ERROR",
        "beijing_xicheng": "ERROR",
    }
    dongcheng = health["beijing_dongcheng"]
    assert dongcheng.drops == ["6 of 9", "2024: 1 of 4"]
    assert dongcheng.last.years == {2021: 1, 2023: 3, 2024: 1, 2025: 1}
    assert health["beijing_huairou"].status == "never run"
    out = listed.stdout
    assert "beijing_dongcheng  北京市东城区 (110101), in all" in out
    assert "  per report year: 2021: 1, 2023: 3, 2024: 1, 2025: 1" in out
    assert (
        "  DROP: fewer reports than its best earlier run: 6 of 9; 2024: 1 of 4" in out
    )
    assert "  failed: 1× refused: redirect to http://www.example.com/nb.html" in out
    assert "beijing_huairou  北京市怀柔区 (110116), not in all: " in out
    assert out.rstrip().endswith(
        "4 site(s) flagged: beijing_dongcheng, beijing_miyun, beijing_portal, beijing_xicheng"
    )
