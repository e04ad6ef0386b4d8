"""The pure parsers: report titles, hosts, pagination, attachments."""

from __future__ import annotations

import pytest

from crawler import discovery
from crawler.discovery import Link
from crawler.middlewares import from_mirror, to_mirror
from nianbao_common.titles import parse_report_title


@pytest.mark.parametrize(
    ("title", "year", "agency"),
    [
        (
            "北京市西城区财政局2020年政府信息公开工作年度报告",
            2020,
            "北京市西城区财政局",
        ),
        (
            "北京市东城区卫生健康委员会2024年度政府信息公开工作年度报告",
            2024,
            "北京市东城区卫生健康委员会",
        ),
        (
            "北京市密云区穆家峪镇人民政府2023年政府信息公开年报",
            2023,
            "北京市密云区穆家峪镇人民政府",
        ),
        (
            "  北京市延庆区人民政府 2019 年政府信息公开工作年度报告 ",
            2019,
            "北京市延庆区人民政府",
        ),
        ("2023年政府信息公开工作年度报告", 2023, ""),
    ],
)
def test_report_titles_give_year_and_agency(title, year, agency):
    parsed = parse_report_title(title)
    assert parsed is not None
    assert (parsed.year, parsed.agency) == (year, agency)


@pytest.mark.parametrize(
    "title",
    [
        "2024年北京市“政府信息公开工作年度报告”集中公开专题页面",
        "北京市海淀区人民政府2024年政府信息公开工作年度报告的问答解读",
        "《北京市西城区政务服务管理局2023年政府信息公开工作年度报告》解读",
        "政府信息公开工作年度报告",
        "2023年政府信息公开指南",
        "",
    ],
)
def test_non_reports_are_rejected(title):
    assert parse_report_title(title) is None


def test_year_comes_from_the_title_not_the_url():
    html = "<html><head><title>北京市西城区人民政府2017年政府信息公开工作年度报告_首都之窗</title></head><body></body></html>"
    assert (
        discovery.page_title(html)
        == "北京市西城区人民政府2017年政府信息公开工作年度报告"
    )


@pytest.mark.parametrize(
    ("url", "cleaned"),
    [
        (
            "https://www.bjxch.gov.cn/zt/a.html#top",
            "https://www.bjxch.gov.cn/zt/a.html",
        ),
        ("https://WWW.BJDCH.GOV.CN/x/", "https://www.bjdch.gov.cn/x/"),
        ("http://www.beijing.gov.cn/gate/big5/www.beijing.gov.cn/gongkai/a.html", None),
        ("https://www.xzscdzx.com/gongkai/zfxxgk/zfxxgknb/2017nb/qzf/a.html", None),
        ("https://bjbahr.com/zyk/jbdt/a", None),
        ("https://example.com/a.html", None),
        ("javascript:void(0)", None),
        ("mailto:a@b.gov.cn", None),
    ],
)
def test_only_government_hosts_are_crawled(url, cleaned):
    assert discovery.clean_url(url) == cleaned


def test_trs_pager_script_gives_the_other_pages():
    html = '<script>createPageHTML(3, 0, "index", "html");</script>'
    assert discovery.trs_pages(html, "https://www.bjmy.gov.cn/a/gknb2023/") == [
        "https://www.bjmy.gov.cn/a/gknb2023/index_1.html",
        "https://www.bjmy.gov.cn/a/gknb2023/index_2.html",
    ]
    assert discovery.trs_pages("<p>no pager</p>", "https://x.gov.cn/") == []


def test_pager_and_column_links():
    here = "https://www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html"
    assert discovery.is_pager_link(
        Link("https://www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html?page=2", "下一页"), here
    )
    assert not discovery.is_pager_link(
        Link("https://www.bjxch.gov.cn/zt/other/list.html", "2"), here
    )
    assert not discovery.is_pager_link(
        Link("https://www.bjxch.gov.cn/zt/xxgkzl/a.pdf", "2"), here
    )
    root = "https://www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/"
    assert discovery.is_column_link(root + "2024nb/dcqzfbm2024/", root)
    assert discovery.is_column_link(root + "2024nb/dcqzfbm2024/index_1.html", root)
    assert not discovery.is_column_link(
        root + "2024nb/dcqzfbm2024/202501/t20250120_3994172.html", root
    )
    assert not discovery.is_column_link("https://www.bjdch.gov.cn/other/", root)


def test_attachments_are_files_anywhere_and_images_in_the_body():
    html = """<html><body><div class="header"><img src="/images/logo.png"></div>
    <div class="view TRS_UEDITOR"><p>正文</p><img src="./W020240118.png">
    <a href="./P020240118.pdf">附件1</a><a href="P1.DOCX">附件2</a><a href="other.html">链接</a></div>
    <div class="footer"><img src="/images/police.png"></div>
    <a href="/files/a.wps">附件3</a><A Class=f HREF='/files/B.XLS'>附件4</A></body></html>"""
    links = discovery.attachment_links(
        html, "https://www.bjmy.gov.cn/z/gknb2023/202401/t20240118_273722.html"
    )
    assert [link.url for link in links] == [
        "https://www.bjmy.gov.cn/z/gknb2023/202401/P020240118.pdf",
        "https://www.bjmy.gov.cn/z/gknb2023/202401/P1.DOCX",
        "https://www.bjmy.gov.cn/files/a.wps",
        "https://www.bjmy.gov.cn/files/B.XLS",
        "https://www.bjmy.gov.cn/z/gknb2023/202401/W020240118.png",
    ]
    assert [links[0].text, links[3].text] == ["附件1", "附件4"]


@pytest.mark.parametrize(
    ("html", "images"),
    [
        # No known body container: the whole page is the body.
        (
            '<IMG SRC="a.png"><div class="main"><img src=b.jpg></div>',
            ["a.png", "b.jpg"],
        ),
        # Images of the chrome only, before the body.
        ('<img src="logo.png"><div class="zoom"><p>正文</p></div>', []),
        # The footer can be a comment; images after it are chrome.
        (
            '<div id="zoom"><Img src="in.gif"><!-- footer --><img src="out.gif">',
            ["in.gif"],
        ),
        # An image inside a file link still counts, in the body.
        (
            '<div class="view"><a href="f.pdf"><img src="in.png"></a>'
            '<div class="bottom"><img src="out.png"></div></div>',
            ["f.pdf", "in.png"],
        ),
    ],
)
def test_body_images_end_at_the_footer(html, images):
    links = discovery.attachment_links(html, "https://x.gov.cn/a/")
    assert [link.url.removeprefix("https://x.gov.cn/a/") for link in links] == images


def test_extract_links_survives_garbage():
    assert discovery.extract_links("", "https://x.gov.cn/") == []
    assert discovery.extract_links("\x00\x01<<a href=", "https://x.gov.cn/") == []
    links = discovery.extract_links(
        '<a href="a.html" title="T">t</a>', "https://x.gov.cn/d/"
    )
    assert links == [Link("https://x.gov.cn/d/a.html", "t", "T")]


def test_mirror_mapping_round_trips():
    mirror = "http://127.0.0.1:8000"
    real = "https://www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html?page=2"
    mirrored = to_mirror(real, mirror)
    assert (
        mirrored
        == "http://127.0.0.1:8000/www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html?page=2"
    )
    assert from_mirror(mirrored, mirror, {"www.bjxch.gov.cn": "https"}) == real
    assert (
        from_mirror("http://127.0.0.1:8000/robots.txt", mirror, {})
        == "http://127.0.0.1:8000/robots.txt"
    )
