"""The declared sites: one row each in crawler/sites.toml, read into ``Site`` declarations.

A site is where a place publishes its reports: a division code and the names of its
province, city and district, the agency that runs the site, a platform (which sets the
report URL shape and pagination the site shares with others) and the URLs of its 年报
columns. A new district on a known platform is one row; a column no row declares is
crawled with ``nianbao crawl --list-url URL --division CODE`` (``ad_hoc_site``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

SITES_TOML = Path(__file__).with_name("sites.toml")

# Report detail URLs of each platform, a second signal beside the link's title (a list
# may print only 「2023年」); columns and pagers are read the same way on every platform.
PLATFORMS: dict[str, re.Pattern | None] = {
    # Links whose title names a report; nothing by URL shape.
    "page": None,
    # TRS: details {YYYYMM}/t{YYYYMMDD}_{id}.html (.shtml, .htm), lists index.html,
    # index_1.html … written by createPageHTML.
    "trs": re.compile(r"/\d{6}/t\d{8}_\d+\.s?html?$"),
}

# GB/T 2260 province-level codes: the province of a division code no row declares.
PROVINCES = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}
# Province-level cities: their districts sit directly below them.
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DIVISION = re.compile(r"\d{6}")
_KEYS = {
    "division_code",
    "province",
    "city",
    "district",
    "agency",
    "platform",
    "start_urls",
    "years",
    "list_root",
    "column_pattern",
    "report_url_pattern",
    "list_selector",
    "extra_hosts",
    "list_shows_report",
    "all",
    "note",
}


class DeclarationError(ValueError):
    """A row of the registry (or an ad hoc site) that cannot be crawled as written."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a site's reports come from: a GB/T 2260 division code and its names."""

    division_code: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    """None for a province or city site (a municipal portal)."""


@dataclass(frozen=True, slots=True)
class Site:
    """One declared site: what the spider needs to find its reports."""

    name: str
    place: Place
    agency: str
    """The agency that runs the site: a report page naming no agency is its."""
    platform: str
    start_urls: tuple[str, ...]
    list_root: str = ""
    """List pages below this URL prefix are followed (year and category columns)."""
    column_pattern: re.Pattern | None = None
    """If set, only column links whose URL matches it are followed."""
    report_url_pattern: re.Pattern | None = None
    """The URL shape of a report page: such links are fetched even if their text names no
    report, and kept when the page's own title does."""
    list_selector: str = ""
    """XPath of the list area; links outside it are still read when it finds none."""
    extra_hosts: frozenset[str] = frozenset()
    list_shows_report: bool = False
    """The column page shows the latest report itself (海淀's 区政府 column)."""
    in_all: bool = True
    """Crawled by ``nianbao crawl all``; False where the list page is not known."""
    note: str = ""
    """What is unverified about the site, or why it is not in ``all``."""


def yearly(template: str, first: int, last: int | None = None) -> tuple[str, ...]:
    """Year column URLs from ``first`` to the last report year (last calendar year).

    >>> yearly("https://x.gov.cn/{year}nb/", 2023, 2024)
    ('https://x.gov.cn/2023nb/', 'https://x.gov.cn/2024nb/')
    """
    last = last if last is not None else datetime.now(UTC).year - 1
    return tuple(template.format(year=y) for y in range(first, last + 1))


def _pattern(name: str, key: str, value) -> re.Pattern | None:
    if value is None:
        return None
    try:
        return re.compile(value)
    except (re.error, TypeError) as error:
        raise DeclarationError(
            f"{name}: {key} is not a regular expression: {error}"
        ) from None


def _start_urls(name: str, row: dict) -> tuple[str, ...]:
    urls = row.get("start_urls")
    if not urls or not isinstance(urls, list):
        raise DeclarationError(f"{name}: start_urls must list at least one URL")
    years = row.get("years", [])
    expanded: list[str] = []
    for url in urls:
        if "{year}" not in url:
            expanded.append(url)
        elif not years:
            raise DeclarationError(f"{name}: {url} has {{year}} but no years = [first]")
        else:
            expanded.extend(yearly(url, *years))
    return tuple(expanded)


def site_from_row(name: str, row: dict) -> Site:
    """A registry row as a ``Site``; raises ``DeclarationError`` on what cannot work."""
    if not _NAME.fullmatch(name):
        raise DeclarationError(f"{name}: site names are lower case, digits and _")
    unknown = set(row) - _KEYS
    if unknown:
        raise DeclarationError(f"{name}: unknown key(s) {', '.join(sorted(unknown))}")
    code = str(row.get("division_code", ""))
    if not _DIVISION.fullmatch(code):
        raise DeclarationError(f"{name}: division_code must be 6 digits, got {code!r}")
    platform = row.get("platform", "page")
    if platform not in PLATFORMS:
        raise DeclarationError(
            f"{name}: unknown platform {platform!r}; known: {', '.join(PLATFORMS)}"
        )
    report_pattern = _pattern(name, "report_url_pattern", row.get("report_url_pattern"))
    return Site(
        name=name,
        place=Place(
            code,
            row.get("province") or PROVINCES.get(code[:2]),
            row.get("city"),
            row.get("district"),
        ),
        agency=row.get("agency", ""),
        platform=platform,
        start_urls=_start_urls(name, row),
        list_root=row.get("list_root", ""),
        column_pattern=_pattern(name, "column_pattern", row.get("column_pattern")),
        report_url_pattern=report_pattern or PLATFORMS[platform],
        list_selector=row.get("list_selector", ""),
        extra_hosts=frozenset(row.get("extra_hosts", ())),
        list_shows_report=bool(row.get("list_shows_report", False)),
        in_all=bool(row.get("all", True)),
        note=row.get("note", ""),
    )


def load_sites(path: Path = SITES_TOML) -> dict[str, Site]:
    """Every row of a registry file, by site name."""
    with path.open("rb") as handle:
        try:
            table = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise DeclarationError(f"{path}: {error}") from None
    return {name: site_from_row(name, row) for name, row in table.items()}


@cache
def declared_sites() -> dict[str, Site]:
    """The project's declared sites (crawler/sites.toml), by name."""
    return load_sites()


def place_of_division(code: str, district: str | None = None) -> Place:
    """The place of a division code: a declared site's when one has that code, else the
    province the code's first two digits name (and the city, for Beijing, Tianjin,
    Shanghai and Chongqing)."""
    if not _DIVISION.fullmatch(code):
        raise DeclarationError(f"division code must be 6 digits, got {code!r}")
    for site in declared_sites().values():
        if site.place.division_code == code:
            known = site.place
            return Place(code, known.province, known.city, district or known.district)
    province = PROVINCES.get(code[:2])
    city = province if code[:2] in MUNICIPALITIES else None
    return Place(code, province, city, district)


def ad_hoc_site(
    list_url: str,
    division_code: str,
    name: str | None = None,
    district: str | None = None,
    platform: str = "page",
) -> Site:
    """A site for one report column that no row declares (``nianbao crawl --list-url``).

    Columns below the list's folder (year and category sub-columns) and its pages are
    followed; reports are found by their titles, as on every declared site.
    """
    parts = urlsplit(list_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DeclarationError(f"--list-url must be an http(s) URL, got {list_url!r}")
    if platform not in PLATFORMS:
        raise DeclarationError(
            f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}"
        )
    host = parts.hostname or ""
    slug = name or "column_" + re.sub(
        r"[^a-z0-9]+", "_", host.removeprefix("www.").removesuffix(".gov.cn")
    ).strip("_")
    if not _NAME.fullmatch(slug):
        raise DeclarationError(f"--name {slug!r}: use lower case, digits and _")
    if slug in declared_sites():
        raise DeclarationError(
            f"--name {slug!r} is a declared site; choose another name for this column"
        )
    place = place_of_division(division_code, district)
    folder = list_url[: list_url.rfind("/") + 1]
    return Site(
        name=slug,
        place=place,
        agency="",
        platform=platform,
        start_urls=(list_url,),
        list_root=folder,
        report_url_pattern=PLATFORMS[platform],
        note=f"ad hoc column {list_url}",
    )
