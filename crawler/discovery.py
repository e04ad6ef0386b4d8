"""Pure parsers for list and report pages: which links are reports, their year and agency.

Nothing here touches the network or Scrapy; every function takes text and URLs and returns
values, so the rules can be tested on saved pages.

What the district sites publish (see docs/crawler.md and the shared sites reference):

- A report is named by its title, 「{agency}{Y}年(度)政府信息公开工作年度报告」 or 「…年报」.
  The year printed in the title is the report year; the dates in URLs are publication or
  re-posting dates, and column slugs can hold another year.
- 年报 columns also list 解读 pages (问答解读, 图解), 专题页 (beijing.gov.cn's 2024
  集中公开专题页面) and yearly summaries: these are not reports.
- Mirror hosts copy government paths one to one and inject spam; beijing.gov.cn serves
  traditional-character copies under /gate/big5/. Only ``*.gov.cn`` hosts are crawled.
- Attachments are links ending .pdf .doc .docx .wps .xls .xlsx; images count when they sit
  inside the report body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html

from nianbao_common.titles import parse_report_title

MIRROR_HOSTS = frozenset(
    {
        "xzscdzx.com",
        "bjbahr.com",
        "jingchikouqiang.com",
        "tan007.com",
        "dblyj.com",
        "yrdcpcn.com",
        "021jzzz.com",
    }
)
ATTACHMENT_EXTENSIONS = frozenset({"pdf", "doc", "docx", "wps", "xls", "xlsx"})
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "bmp", "webp"})
_PAGE_EXTENSIONS = frozenset({"", "html", "htm", "shtml", "jsp", "php"})
# TRS list pages write their pager with a script: createPageHTML(total, current, "index", "html").
_TRS_PAGER = re.compile(
    r"createPageHTML\(\s*['\"]?(\d+)['\"]?\s*,\s*['\"]?(\d+)['\"]?\s*,\s*['\"]([\w-]+)['\"]\s*,\s*['\"](\w+)['\"]"
)
_PAGER_TEXT = re.compile(
    r"^\s*(?:\d{1,4}|下一页|下页|尾页|末页|上一页|首页|>|>>|»)\s*$"
)
_TRS_INDEX = re.compile(r"/index(?:_\d+)?\.s?html?$")
_TAG_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HEADING = re.compile(r"<h[1-3][^>]*>(.*?)</h[1-3]>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
# File links with their text up to the next tag, and image sources, in one scan: report
# pages run to hundreds of kilobytes of Word markup, where every "<" costs each pattern an
# attempt: the tag names are matched by character class, as re.IGNORECASE makes every
# attempt slower.
_FILE_OR_IMAGE = re.compile(
    r"""<(?:[aA]\b(?i:[^>]*?\bhref\s*=\s*["']?([^"'\s>]+\.(?:pdf|docx?|wps|xlsx?)(?:\?[^"'\s>]*)?)["']?[^>]*>)([^<]{0,300})"""
    r"""|[iI][mM][gG]\b(?i:[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)))"""
)
# Body containers of the report page templates: 西城 (gknbxq_detail), TRS editors
# (TRS_Editor / TRS_UEDITOR), and the common 正文 ids/classes.
_BODY_START = re.compile(
    r"""<div[^>]+(?:class|id)\s*=\s*["'][^"']*\b(?:gknbxq_detail|TRS_Editor|TRS_UEDITOR|zoom|article-content|xl_content|view)\b""",
    re.IGNORECASE,
)
_BODY_END = re.compile(
    r"""<div[^>]+(?:class|id)\s*=\s*["'][^"']*\b(?:footer|foot|bottom)\b|<!--\s*footer""",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Link:
    """A link as the page shows it: absolute URL, anchor text and title attribute."""

    url: str
    text: str
    title: str = ""

    @property
    def label(self) -> str:
        """The longer of title attribute and text: lists truncate the text with …."""
        return self.title if len(self.title) > len(self.text) else self.text


def _squash(text: str) -> str:
    return " ".join(text.replace("\u3000", " ").split())


# The authority of a URL as every HTTP client reads it alike: a host name or IP literal and
# an optional port. Userinfo ("a@b"), backslashes, spaces and percent-escapes are read
# differently by browsers, urllib, w3lib and Twisted (the same link can name one host to the
# check and send the request to another), so such URLs are not followed at all.
_AUTHORITY = re.compile(
    r"(?P<host>[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])(?::(?P<port>\d{1,5}))?",
    re.IGNORECASE,
)


def url_host(url: str) -> str | None:
    r"""The host a request for ``url`` goes to: lower case, IDNA, no trailing dot.

    None when the URL is not http(s) or its authority is anything but ``host[:port]``.

    >>> url_host("https://WWW.BJXCH.GOV.CN.:443/a.html")
    'www.bjxch.gov.cn'
    >>> url_host("http://127.0.0.1:9999\\@www.bjxch.gov.cn/x.html") is None
    True
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    netloc = parts.netloc
    if not netloc.isascii():
        # As the client sends it: IDNA maps full-width letters and 。 to ASCII.
        try:
            netloc = netloc.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    match = _AUTHORITY.fullmatch(netloc)
    if match is None or int(match["port"] or 0) > 65535:
        return None
    return match["host"].strip("[]").rstrip(".").lower()


_MIRROR_SUFFIXES = tuple("." + m for m in MIRROR_HOSTS)


def is_mirror_host(host: str) -> bool:
    """A known third-party copy of government pages."""
    return host in MIRROR_HOSTS or host.endswith(_MIRROR_SUFFIXES)


def is_allowed_host(host: str, extra: frozenset[str] = frozenset()) -> bool:
    """Government hosts (``*.gov.cn``) and hosts a site names explicitly."""
    if host in extra:
        return True
    if is_mirror_host(host):
        return False
    return host == "gov.cn" or host.endswith(".gov.cn")


def clean_url(url: str, extra_hosts: frozenset[str] = frozenset()) -> str | None:
    """The URL to crawl, without fragment; None for other hosts, mirrors, big5 copies,
    non-http links and links whose host clients could read differently (``url_host``)."""
    url = url.strip()
    host = url_host(url)
    if host is None or not is_allowed_host(host, extra_hosts):
        return None
    parts = urlsplit(url)
    if parts.path.startswith("/gate/big5/"):
        return None
    # The host as it is sent: one archive key for WWW.X.GOV.CN, ｗｗｗ.x.gov.cn and www.x.gov.cn.
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def extension(url: str) -> str:
    """The file extension of the URL path, lower case, without the dot."""
    path = urlsplit(url).path
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def is_attachment_url(url: str) -> bool:
    """Office and PDF files published with a report."""
    return extension(url) in ATTACHMENT_EXTENSIONS


def xpath_strings(root: lxml.html.HtmlElement, path: str) -> list[str]:
    """The strings (attribute values, text) an XPath expression selects in ``root``."""
    found = root.xpath(path)
    return [s for s in found if isinstance(s, str)] if isinstance(found, list) else []


def extract_links(html: str, base_url: str) -> list[Link]:
    """Every <a href> of a page, absolute, with its text and title attribute."""
    if not html.strip():
        return []
    try:
        root = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return []
    base = xpath_strings(root, "//base/@href")
    base_url = urljoin(base_url, base[0]) if base else base_url
    links = []
    for anchor in root.iter("a"):
        if not isinstance(anchor, lxml.html.HtmlElement):  # as every element parsed
            continue
        href = anchor.get("href")
        if not href or href.startswith(("javascript:", "mailto:", "#")):
            continue
        links.append(
            Link(
                urljoin(base_url, href.strip()),
                _squash(anchor.text_content()),
                _squash(anchor.get("title") or ""),
            )
        )
    return links


def trs_pages(html: str, list_url: str) -> list[str]:
    """Further pages of a TRS list, from its createPageHTML(total, current, "index", "html") call.

    The first page is ``index.html``; page n+1 is ``index_n.html``.
    """
    match = _TRS_PAGER.search(html)
    if not match:
        return []
    total, stem, ext = int(match.group(1)), match.group(3), match.group(4)
    directory = list_url.rsplit("/", 1)[0] + "/"
    return [f"{directory}{stem}_{n}.{ext}" for n in range(1, min(total, 500))]


def is_pager_link(link: Link, list_url: str) -> bool:
    """A numbered or next/last-page link that stays in the list's own folder."""
    if not _PAGER_TEXT.match(link.text or ""):
        return False
    if extension(link.url) not in _PAGE_EXTENSIONS:
        return False
    here, there = urlsplit(list_url), urlsplit(link.url)
    return (
        here.netloc == there.netloc
        and there.path.rsplit("/", 1)[0] == here.path.rsplit("/", 1)[0]
    )


def is_column_link(url: str, list_root: str) -> bool:
    """A list page (a folder or its index page) below the site's 年报 root."""
    if not url.startswith(list_root) or url == list_root:
        return False
    path = urlsplit(url).path
    return path.endswith("/") or bool(_TRS_INDEX.search(path))


def page_title(html: str) -> str:
    """The report title a page shows: its <title> or a heading naming a report, else <title>."""
    match = _TAG_TITLE.search(html[:20_000])
    tag_title = _squash(_TAGS.sub("", match.group(1))) if match else ""
    # <title> often carries the site name after _ or - ("…年度报告_首都之窗").
    for text in (tag_title, *tag_title.split("_"), *tag_title.split("-")):
        named = parse_report_title(text)
        if named:
            return named.title
    for heading in _HEADING.findall(html[:200_000]):
        named = parse_report_title(_squash(_TAGS.sub("", heading)))
        if named:
            return named.title
    return tag_title


def attachment_links(html: str, page_url: str) -> list[Link]:
    """Attachments of a report page: file links anywhere on it, images inside its body.

    Uses regular expressions rather than a DOM: report pages run to hundreds of kilobytes
    and only their links are needed here.
    """
    files: list[tuple[str, str]] = []
    images: list[tuple[int, str]] = []
    for match in _FILE_OR_IMAGE.finditer(html):
        href, text, src = match.groups()
        if src is None:
            files.append((href, text))
        else:
            images.append((match.start(), src))
    found: dict[str, Link] = {}
    for href, text in files:
        url = urljoin(page_url, href.strip())
        if is_attachment_url(url) and url not in found:
            found[url] = Link(url, _squash(text))
    for src in _body_images(html, images):
        url = urljoin(page_url, src.strip())
        if extension(url) in IMAGE_EXTENSIONS and url not in found:
            found[url] = Link(url, "")
    return list(found.values())


def _body_images(html: str, images: list[tuple[int, str]]) -> list[str]:
    """The sources of the images (position, src) that sit in the report body.

    The body is the content container up to the footer; a page without a known container
    is all body.
    """
    if not images:
        return []
    start = _BODY_START.search(html)
    if not start:
        return [src for _, src in images]
    inside = [(at, src) for at, src in images if at >= start.start()]
    if not inside:
        return []
    # Only a footer that opens before the last image can leave images out.
    end = _BODY_END.search(html, start.end(), inside[-1][0])
    limit = end.start() if end else len(html)
    return [src for at, src in inside if at < limit]
