"""What a spider makes of a page, as pure functions of (HTML, URL, site declaration).

``read_list_page`` gives the reports a list names and the further list pages it leads to;
``read_report_page`` the report a page is and its attachments; ``fetch_headers`` whether
and how to ask again for a URL the archive holds. Nothing here touches the network, the
archive or Scrapy, so a site's rules are tested on its saved pages alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urljoin

import lxml.html

from crawler import discovery
from crawler.registry import Site
from nianbao_common.titles import ReportTitle, is_excluded_title, parse_report_title

# TRS "动静结合" lists render page 1 as HTML and the rest through a search API, from a
# script: listModel({…, pagebar: {prepage: 10, recordCount: '20', …}}).
_LIST_MODEL = re.compile(r"listModel\s*\(")
_PREPAGE = re.compile(r"prepage\s*:\s*['\"]?(\d+)")
_RECORD_COUNT = re.compile(r"recordCount\s*:\s*['\"]?(\d+)")


@dataclass(frozen=True, slots=True)
class ListedReport:
    """A link a list page gives as a report: its URL, its label and what the label names."""

    url: str
    label: str
    named: ReportTitle | None
    """The title read from the label; None when only the URL shape says report."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file linked from a report page, or an image in its body."""

    url: str
    label: str


@dataclass(frozen=True, slots=True)
class ReportPage:
    """A report page read: the report it names (None: not a report) and its attachments."""

    named: ReportTitle | None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ListPage:
    """A list page read."""

    reports: list[ListedReport] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    """Further list pages: its other pages and the columns below the site's list root."""
    shown_report: ReportPage | None = None
    """The report the page shows itself (``Site.list_shows_report`` columns)."""
    unrendered: int = 0
    """Documents the list counts but renders only through a script (a TRS list API)."""


def read_list_page(html: str, url: str, site: Site) -> ListPage:
    """The reports a list page names and the list pages it leads to.

    A link is a report when its label names one (「…2023年政府信息公开工作年度报告」) or,
    unless the label names something else (a 解读), when its URL has the site's report
    shape. Links off the allowed hosts, to mirrors or to big5 copies are dropped.
    """
    scoped = _scoped_links(html, url, site) if site.list_selector else None
    lists: dict[str, None] = {}
    reports: dict[str, ListedReport] = {}
    for link in discovery.extract_links(html, url):
        target = discovery.clean_url(link.url, site.extra_hosts)
        if target is None:
            continue
        if _is_list(link, target, url, site):
            lists.setdefault(target)
            continue
        if scoped and target not in scoped:
            continue
        named = parse_report_title(link.label)
        if target not in reports and (
            named is not None or _looks_like_report(target, link.label, site)
        ):
            reports[target] = ListedReport(target, link.label, named)
    for page in discovery.trs_pages(html, url):
        lists.setdefault(page)
    shown: ReportPage | None = None
    if site.list_shows_report:
        report_page = read_report_page(html, url, site)
        if report_page.named is not None:
            shown = report_page
            # The report's own files, titled like it, are its attachments.
            for attachment in report_page.attachments:
                reports.pop(attachment.url, None)
    lists.pop(url, None)
    return ListPage(list(reports.values()), list(lists), shown, _unrendered(html))


def _scoped_links(html: str, url: str, site: Site) -> set[str]:
    try:
        root = lxml.html.fromstring(html)
        hrefs = discovery.xpath_strings(root, f"({site.list_selector})//a/@href")
    except (lxml.etree.ParserError, lxml.etree.XPathError, ValueError):
        return set()
    cleaned = {discovery.clean_url(urljoin(url, h), site.extra_hosts) for h in hrefs}
    return {c for c in cleaned if c}


def _is_list(link: discovery.Link, target: str, list_url: str, site: Site) -> bool:
    if discovery.is_pager_link(link, list_url):
        return True
    if not site.list_root or not discovery.is_column_link(target, site.list_root):
        return False
    return site.column_pattern is None or bool(site.column_pattern.search(target))


def _looks_like_report(url: str, label: str, site: Site) -> bool:
    # A detail link whose text names something else (a 解读, a 专题页) is not fetched.
    if label and is_excluded_title(label):
        return False
    return bool(site.report_url_pattern and site.report_url_pattern.search(url))


def _unrendered(html: str) -> int:
    model = _LIST_MODEL.search(html)
    if model is None:
        return 0
    script = html[model.end() : model.end() + 4000]
    per_page, total = _PREPAGE.search(script), _RECORD_COUNT.search(script)
    if per_page is None or total is None:
        return 0
    return max(0, int(total.group(1)) - int(per_page.group(1)))


def shown_report_url(column_url: str, year: int) -> str:
    """The archive URL of a report a column page shows itself: the column's, with the
    report year as fragment (never sent).

    Such a column shows next year's report in place of this year's: each is kept as a
    report of its own instead of a new version of one.

    >>> shown_report_url("https://zyk.bjhd.gov.cn/jbdt/a/", 2024)
    'https://zyk.bjhd.gov.cn/jbdt/a/#2024'
    """
    return f"{column_url}#{year}"


def read_report_page(
    html: str, url: str, site: Site, listed_title: str = ""
) -> ReportPage:
    """The report a page is, from its own title (or heading) first, then the list's label.

    Attachments are file links anywhere on the page and images inside its body, on the
    allowed hosts.
    """
    named = parse_report_title(discovery.page_title(html)) or parse_report_title(
        listed_title
    )
    if named is None:
        return ReportPage(None)
    return ReportPage(named, report_attachments(html, url, site))


def report_attachments(html: str, url: str, site: Site) -> tuple[Attachment, ...]:
    """The attachments a report page links, on the allowed hosts."""
    return tuple(
        Attachment(a_url, link.text)
        for link in discovery.attachment_links(html, url)
        if (a_url := discovery.clean_url(link.url, site.extra_hosts))
    )


class Archived(Protocol):
    """What the archive holds of a URL (``crawler.archive.record.Latest``)."""

    @property
    def etag(self) -> str | None: ...
    @property
    def last_modified(self) -> str | None: ...
    @property
    def fetched_at(self) -> str: ...


def fetch_headers(
    archived: Archived | None, revisit: timedelta, now: datetime | None = None
) -> dict[str, str] | None:
    """The headers to ask for a report or attachment again; None: do not ask this run.

    Nothing archived: a plain request. An ETag or Last-Modified: a conditional request
    (a 304 means unchanged). Neither: asked again only once the archived copy is older
    than ``revisit`` (a zero ``revisit``: never).

    >>> fetch_headers(None, timedelta(days=30))
    {}
    """
    if archived is None:
        return {}
    headers = {}
    if archived.etag:
        headers["If-None-Match"] = archived.etag
    if archived.last_modified:
        headers["If-Modified-Since"] = archived.last_modified
    if headers:
        return headers
    if not revisit:
        return None
    fetched = datetime.strptime(archived.fetched_at[:19], "%Y-%m-%dT%H:%M:%S")
    age = (now or datetime.now(UTC)) - fetched.replace(tzinfo=UTC)
    return {} if age > revisit else None
