"""Stable agency ids and districts from agency names as reports and list pages print them.

The same agency is listed as 西城区对外联络服务办公室 on its district's site and as
北京市西城区对外联络服务办公室 in its report title, and a 街道 page may print only
金融街街道办事处. Names are completed with the city and district they belong to before the
id is made, so all three get one id: ``<division code>-<pinyin>-<hash>``, ASCII, stable run
after run, and short enough for paths.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from pypinyin import lazy_pinyin

from extract.catalogue import agency_kinds

CITY = "北京市"
# 北京市's districts and their 行政区划代码 (GB/T 2260).
DISTRICTS = {
    "东城区": "110101",
    "西城区": "110102",
    "朝阳区": "110105",
    "丰台区": "110106",
    "石景山区": "110107",
    "海淀区": "110108",
    "门头沟区": "110109",
    "房山区": "110111",
    "通州区": "110112",
    "顺义区": "110113",
    "昌平区": "110114",
    "大兴区": "110115",
    "怀柔区": "110116",
    "平谷区": "110117",
    "密云区": "110118",
    "延庆区": "110119",
}
CITY_CODE = "110000"
_NON_ASCII_WORD = re.compile(r"[^a-z0-9]+")


def district_of_site(site: str) -> str | None:
    """The district a spider's site belongs to, from its ``division_code`` (None for the city)."""
    import importlib

    try:
        module = importlib.import_module(f"crawler.sites.{site}")
    except ImportError:
        return None
    codes = {getattr(obj, "division_code", None) for obj in vars(module).values()}
    return next((d for d, code in DISTRICTS.items() if code in codes), None)


@cache
def _kind_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((k.kind, re.compile(k.pattern)) for k in agency_kinds())


def agency_kind(name: str | None) -> str | None:
    """The kind of agency a name is (extract/labels/agency_kinds.csv), or None.

    Rules are tried in order and the first match wins: 区政府办公室 is a general office
    before it is a department, 某某镇人民政府 a township before a government.

    >>> agency_kind("北京市东城区人民政府"), agency_kind("北京市西城区金融街街道办事处")
    ('government', 'street')
    """
    if not name:
        return None
    name = name.strip()
    return next((kind for kind, rule in _kind_patterns() if rule.search(name)), None)


@dataclass(frozen=True, slots=True)
class Agency:
    """An agency as identified across sources."""

    agency_id: str
    name: str
    district: str | None
    division_code: str | None


def canonical_name(printed: str, site_district: str | None = None) -> str:
    """The agency name with its city and district, whitespace and width normalised."""
    name = "".join(unicodedata.normalize("NFKC", printed).split())
    district = next((d for d in DISTRICTS if d in name), None)
    if district is not None:
        if not name.startswith(CITY) and name.startswith(district):
            name = CITY + name
        return name
    if name.startswith(CITY) or site_district is None:
        return name
    return CITY + site_district + name


def identify(printed: str, site_district: str | None = None) -> Agency:
    """The agency behind a printed name (``site_district`` completes bare unit names)."""
    name = canonical_name(printed, site_district)
    district = next((d for d in DISTRICTS if d in name), None)
    code = (
        DISTRICTS[district]
        if district
        else (CITY_CODE if name.startswith(CITY) else None)
    )
    local = name
    for prefix in (CITY, district or ""):
        if prefix and local.startswith(prefix):
            local = local[len(prefix) :]
    words = (
        _NON_ASCII_WORD.sub("", "".join(lazy_pinyin(local)).lower())[:40] or "agency"
    )
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    return Agency(f"{code or 'x'}-{words}-{digest}", name, district, code)
