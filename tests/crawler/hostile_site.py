"""Sites that try to steer the crawler to other hosts, or to crawl without end (tests only).

``HostileSiteSpider`` (``SPIDER_MODULES=tests.crawler.hostile_site``) starts at
``http://www.hostile.gov.cn:{HOSTILE_SITE_PORT}/nb/index.html``. Crawled by name, the test
resolver table ``NIANBAO_TEST_HOSTS`` answers 127.0.0.1 for that host and
``NIANBAO_ALLOWED_TEST_ADDRESSES`` lets the loopback test server through; crawled through a
mirror, the pages sit under ``/{host}:{port}/``. The "internal service" on another port must
never see a request. ``endless_pages`` is a site whose pager never ends, for the limits.
"""

from __future__ import annotations

import dataclasses

from crawler.platforms import ReportSpider
from crawler.registry import Place, Site
from nianbao.demo.server import Page

HOST = "www.hostile.gov.cn"
FOREIGN_HOST = "www.example.com"
# A *.gov.cn name whose DNS answer is a loopback address other than the test server's.
INTRANET_HOST = "intranet.hostile.gov.cn"
AGENCY = "北京市测试区"
PDF = b"%PDF-1.4\n%%EOF\n"


class HostileSiteSpider(ReportSpider):
    """One list page at ``/nb/index.html`` of HOST on port ``HOSTILE_SITE_PORT``."""

    name = "hostile_site"
    site = Site(
        name="hostile_site",
        place=Place("110199", "北京市", "北京市", "测试区"),
        agency=f"{AGENCY}人民政府",
        platform="page",
        start_urls=(),
    )

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        port = crawler.settings.getint("HOSTILE_SITE_PORT")
        # On the class, before the base reads it (host_schemes: http, for the mirror).
        cls.site = dataclasses.replace(
            cls.site, start_urls=(f"http://{HOST}:{port}/nb/index.html",)
        )
        return super().from_crawler(crawler, *args, **kwargs)


def title(unit: str) -> str:
    """The report title of one unit."""
    return f"{AGENCY}{unit}2023年政府信息公开工作年度报告"


def _report(unit: str, body: str = "", head: str = "") -> bytes:
    return (
        f"<html><head><title>{title(unit)}</title>{head}</head><body>"
        f'<div class="TRS_Editor"><p>{title(unit)}</p>{body}</div></body></html>'
    ).encode()


def hostile_pages(
    site: str, internal: str, prefix: str = "", by_name: bool = True
) -> dict[str, Page]:
    """The pages of the site, keyed by server path.

    ``site``: the site's base URL as the spider knows it; ``internal``: the internal
    service's base URL; ``prefix``: the mirror's host folder (empty when crawled by name);
    ``by_name``: include the links that need the test resolver table.
    """
    links = [
        ("/nb/ok.html", "财政局"),
        ("/nb/to-loopback.html", "审计局"),
        ("/nb/to-localhost.html", "统计局"),
        ("/nb/to-foreign.html", "商务局"),
        ("/nb/hop1.html", "水务局"),
        ("/nb/refresh.html", "民政局"),
        # Read by browsers and w3lib as host 127.0.0.1, by urllib as host www.hostile.gov.cn.
        (f"{internal}\\@{HOST}/nb/backslash.html", "司法局"),
        (f"http://{HOST}@{internal.split('://')[1]}/secret.html", "城管委"),
        (f"http://{FOREIGN_HOST}/nb/foreign.html", "外事办"),
    ]
    if by_name:
        links.append(
            (f"http://{INTRANET_HOST}:{site.rsplit(':', 1)[1]}/nb/in.html", "内网")
        )
    items = "".join(
        f'<li><a href="{href}">{title(unit)}</a></li>' for href, unit in links
    )
    pages = {
        "/nb/index.html": Page(f"<html><body><ul>{items}</ul></body></html>".encode()),
        "/nb/ok.html": Page(
            _report("财政局", '<a href="ok.pdf">附件</a><a href="moved.pdf">附件2</a>')
        ),
        "/nb/ok.pdf": Page(PDF, "application/pdf"),
        "/nb/moved.pdf": Page(b"", redirect=f"{internal}/secret.pdf"),
        "/nb/to-loopback.html": Page(b"", redirect=f"{internal}/secret.html"),
        "/nb/to-localhost.html": Page(
            b"", redirect=internal.replace("127.0.0.1", "localhost") + "/secret.html"
        ),
        "/nb/to-foreign.html": Page(
            b"",
            redirect=f"http://{FOREIGN_HOST}:{site.rsplit(':', 1)[1]}/nb/foreign.html",
        ),
        "/nb/hop1.html": Page(b"", redirect=f"{prefix}/nb/hop2.html"),
        "/nb/hop2.html": Page(b"", redirect=f"{internal}/secret.html"),
        "/nb/refresh.html": Page(
            _report(
                "民政局",
                head=f'<meta http-equiv="refresh" content="0; url={internal}/secret.html">',
            )
        ),
        # Served, so that a request that got through would be seen and archived.
        "/nb/foreign.html": Page(_report("外事办")),
        "/nb/in.html": Page(_report("内网")),
        "/nb/backslash.html": Page(_report("司法局")),
    }
    return {prefix + path: page for path, page in pages.items()}


INTERNAL_PAGES = {
    "/secret.html": Page(_report("内部服务")),
    "/secret.pdf": Page(PDF, "application/pdf"),
}


def endless_pages(prefix: str, reports_per_page: int = 10, attachments: int = 3):
    """A list whose 下一页 always leads to one more page, each listing new reports."""
    pages = {}
    for n in range(100):
        here = "index.html" if n == 0 else f"index_{n}.html"
        items = "".join(
            f'<li><a href="r{n}_{i}.html">{title(f"第{n}_{i}局")}</a></li>'
            for i in range(reports_per_page)
        )
        pager = f'<a href="index_{n + 1}.html">下一页</a>'
        pages[f"{prefix}/nb/{here}"] = Page(
            f"<html><body><ul>{items}</ul>{pager}</body></html>".encode()
        )
        for i in range(reports_per_page):
            links = "".join(
                f'<a href="r{n}_{i}_{k}.pdf">附件{k}</a>' for k in range(attachments)
            )
            pages[f"{prefix}/nb/r{n}_{i}.html"] = Page(_report(f"第{n}_{i}局", links))
            for k in range(attachments):
                pages[f"{prefix}/nb/r{n}_{i}_{k}.pdf"] = Page(PDF, "application/pdf")
    return pages
