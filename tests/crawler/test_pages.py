"""The pure page functions on saved pages: list pages, report pages, the fetch policy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from crawler.archive.record import Latest
from crawler.pages import (
    fetch_headers,
    read_list_page,
    read_report_page,
    shown_report_url,
)
from crawler.registry import declared_sites
from tests.fixtures.sites.snapshot import (
    DONGCHENG,
    MIYUN,
    XICHENG,
    build_snapshot,
    xicheng_report_url,
)


@pytest.fixture(scope="module")
def snapshot():
    return build_snapshot()


def _page(snapshot, url: str) -> str:
    return snapshot.pages["/" + url.split("://", 1)[1]].body.decode("utf-8")


def test_a_list_page_gives_titled_reports_pages_and_no_traps(snapshot):
    site = declared_sites()["beijing_xicheng"]
    url = f"{XICHENG}/zt/xxgkzl/zfxxgknb.html"
    page = read_list_page(_page(snapshot, url), url, site)
    assert page.lists == [f"{url}?page=2"]
    by_url = {r.url: r for r in page.reports}
    # Titled links give agency and year; the 「2023年」 link is taken by its URL shape.
    assert by_url[xicheng_report_url(183, 2020)].named.year == 2020
    assert by_url[xicheng_report_url(155, 2023)].named is None
    assert by_url[xicheng_report_url(155, 2023)].label == "2023年"
    # The 解读 of the same shape and the mirror copy are not reports.
    assert not any("pntypepvjd" in u or "xzscdzx" in u for u in by_url)


def test_trs_columns_and_pager_scripts_are_list_pages(snapshot):
    site = declared_sites()["beijing_dongcheng"]
    year = f"{DONGCHENG}/2023nb/"
    page = read_list_page(_page(snapshot, year), year, site)
    assert page.lists == [
        f"{year}dcqzf2023/",
        f"{year}dcgzfbm2023/",
        f"{year}dcqid2023/",
    ]
    column = f"{DONGCHENG}/2024nb/dcqzfbm2024/"
    page = read_list_page(_page(snapshot, column), column, site)
    assert page.lists == [f"{column}index_1.html"]
    assert [r.named.agency for r in page.reports] == [
        "北京市东城区卫生健康委员会",
        "北京市东城区教育委员会",
    ]


def test_a_column_outside_the_declared_pattern_is_not_followed(snapshot):
    site = declared_sites()["beijing_portal"]
    url = "https://www.beijing.gov.cn/gongkai/zfxxgk/zfxxgknb/2018nb/"
    page = read_list_page(_page(snapshot, url), url, site)
    assert page.lists == [f"{url}qzf/"]  # not szfbm/


def test_a_report_page_gives_its_title_and_attachments(snapshot):
    site = declared_sites()["beijing_miyun"]
    url = f"{MIYUN}/gknb2023/202401/t20240118_273722.html"
    page = read_report_page(_page(snapshot, url), url, site)
    assert (
        page.named.title == "北京市密云区大城子镇人民政府2023年政府信息公开工作年度报告"
    )
    assert [a.url for a in page.attachments] == [
        f"{MIYUN}/gknb2023/202401/P020240118_273722.pdf",
        f"{MIYUN}/gknb2023/202401/W020240118_273722.png",
    ]


def test_a_page_that_names_no_report_is_none_and_the_list_label_counts():
    site = declared_sites()["beijing_miyun"]
    html = "<html><head><title>解读</title></head><body>问答</body></html>"
    assert read_report_page(html, "https://www.bjmy.gov.cn/a.html", site).named is None
    titled = read_report_page(
        "<html><body>正文</body></html>",
        "https://www.bjmy.gov.cn/a.html",
        site,
        listed_title="北京市密云区统计局2017年政府信息公开工作年度报告",
    )
    assert titled.named.agency == "北京市密云区统计局"


def test_a_column_that_shows_a_report_itself_gives_it_keyed_by_year():
    site = dataclasses.replace(
        declared_sites()["beijing_xicheng"], list_shows_report=True
    )
    url = "https://zyk.bjhd.gov.cn/jbdt/auto10489_51767/zfwj_59297/zfwj_59339/"
    html = (
        "<html><head><title>北京市海淀区人民政府2024年政府信息公开工作年度报告</title></head>"
        '<body><a href="../jd/t1.html">北京市海淀区人民政府2024年政府信息公开工作年度报告的问答解读</a>'
        '<div class="view"><a href="P1.pdf">附件</a></div></body></html>'
    )
    page = read_list_page(html, url, site)
    assert page.reports == []  # the 解读 is no report
    assert page.shown_report.named.year == 2024
    assert [a.url for a in page.shown_report.attachments] == [url + "P1.pdf"]
    assert shown_report_url(url, 2024) == url + "#2024"


def test_a_trs_list_api_column_says_how_many_documents_it_does_not_render():
    site = declared_sites()["beijing_miyun"]
    html = """<ul><li><a href="202601/t20260313_105587.htm">平潭综合实验区2025年政府信息公开工作年度报告</a></li></ul>
    <script>require(["list2.trsapi"], function () { listModel({quickMode: "动静结合",
    maxStaticIndex: 1, listArgs: {channelid: SiteInfo.searchId},
    pagebar: {prepage: 10, recordCount: '20', pgTemp: "pgBar_xxgk.html"}}); });</script>"""
    page = read_list_page(
        html, "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/", site
    )
    assert len(page.reports) == 1
    assert page.unrendered == 10


def _latest(etag=None, modified=None, days_old=0.0) -> Latest:
    fetched = datetime.now(UTC) - timedelta(days=days_old)
    return Latest(
        "<urn:uuid:x>",
        "0" * 64,
        etag,
        modified,
        fetched.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        1,
    )


@pytest.mark.parametrize(
    ("latest", "revisit", "headers"),
    [
        (None, 30, {}),
        (_latest(etag='"a"'), 30, {"If-None-Match": '"a"'}),
        (
            _latest(modified="Mon, 20 Jan 2025 08:00:00 GMT"),
            30,
            {"If-Modified-Since": "Mon, 20 Jan 2025 08:00:00 GMT"},
        ),
        (_latest(days_old=1), 30, None),
        (_latest(days_old=31), 30, {}),
        (_latest(days_old=400), 0, None),
    ],
)
def test_the_fetch_policy(latest, revisit, headers):
    assert fetch_headers(latest, timedelta(days=revisit)) == headers
