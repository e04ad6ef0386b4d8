"""Stable agency ids and places from agency names as reports and list pages print them.

The same agency is listed as 西城区对外联络服务办公室 on its district's site and as
北京市西城区对外联络服务办公室 in its report title, and a 街道 page may print only
金融街街道办事处. Names are completed with the city and district they belong to (the
district named in the name, else the place of the site that published it: its
declaration's division code and names, carried by the archive) before the id is made, so
all three get one id: ``<division code>-<pinyin>-<hash>``, ASCII, stable run after run,
and short enough for paths.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from pypinyin import lazy_pinyin

from extract.catalogue import agency_kinds

# Districts recognised inside printed names, whatever site printed them (北京市's portal
# prints every district's 区政府), with their 行政区划代码 (GB/T 2260), per
# province-level city.
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
TIANJIN_DISTRICTS = {
    "和平区": "120101",
    "河东区": "120102",
    "河西区": "120103",
    "南开区": "120104",
    "河北区": "120105",
    "红桥区": "120106",
    "东丽区": "120110",
    "西青区": "120111",
    "津南区": "120112",
    "北辰区": "120113",
    "武清区": "120114",
    "宝坻区": "120115",
    "滨海新区": "120116",
    "宁河区": "120117",
    "静海区": "120118",
    "蓟州区": "120119",
}
CITY_DISTRICTS = {"北京市": DISTRICTS, "天津市": TIANJIN_DISTRICTS}
# The code of a province-level city: its province's.
CITY_CODES = {
    city: next(iter(d.values()))[:2] + "0000" for city, d in CITY_DISTRICTS.items()
}
_NON_ASCII_WORD = re.compile(r"[^a-z0-9]+")
# A name part that names another city or province before a district (沈阳市和平区 is not
# 天津市's 和平区).
_OTHER_PLACE = re.compile(r"[省市州盟]$")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a report was published: its site's division code and names (None: unknown)."""

    division_code: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None

    @classmethod
    def of(cls, source: object) -> Place:
        """The place an archived report carries (``crawler.archive.reader.ArchivedReport``)."""
        return cls(
            *(
                getattr(source, name, None)
                for name in ("division_code", "province", "city", "district")
            )
        )

    @property
    def municipal(self) -> bool:
        """A province-level city (北京市, 天津市 …): names there start with the city."""
        return bool(self.city) and self.city == self.province

    @property
    def city_code(self) -> str | None:
        """The division code of the place's city."""
        if self.city in CITY_CODES:
            return CITY_CODES[self.city]
        code = self.division_code
        if not code:
            return None
        return code[:2] + "0000" if self.municipal else code[:4] + "00"


def _place_of_district(name: str) -> Place:
    """The place of a district printed by name alone (西城区)."""
    for city, districts in CITY_DISTRICTS.items():
        if name in districts:
            return Place(districts[name], city, city, name)
    return Place(district=name)


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


def _districts(place: Place) -> list[tuple[str, str | None, str | None]]:
    """(district, code, its province-level city) recognised in names, in the order tried:
    the tables', then the place's own district when they lack it."""
    known: list[tuple[str, str | None, str | None]] = [
        (district, code, city)
        for city, districts in CITY_DISTRICTS.items()
        for district, code in districts.items()
    ]
    if place.district and all(place.district != d for d, _, _ in known):
        city = place.city if place.municipal else None
        known.append((place.district, place.division_code, city))
    return known


def _district_in(name: str, place: Place) -> tuple[str, str | None, str | None] | None:
    """The first known district the name names, unless another city precedes it."""
    for district, code, city in _districts(place):
        at = name.find(district)
        if at < 0:
            continue
        before = name[:at]
        if before and _OTHER_PLACE.search(before) and not (city and city in before):
            continue
        return district, code, city
    return None


def _starts_with_city(name: str, place: Place) -> str | None:
    """The province-level city or the place's city the name starts with."""
    for city in (*CITY_DISTRICTS, place.city):
        if city and name.startswith(city):
            return city
    return None


def identify(printed: str, place: Place | str | None = None) -> Agency:
    """The agency behind a printed name.

    ``place`` is where the name was published (a ``Place``, or a district printed by
    name, 西城区): it completes bare unit names (金融街街道办事处) and gives their division
    code. A district named in the name wins over the place.
    """
    place = _place_of_district(place) if isinstance(place, str) else place or Place()
    name = "".join(unicodedata.normalize("NFKC", printed).split())
    hit = _district_in(name, place)
    if hit is None and place.district and not _starts_with_city(name, place):
        city = place.city if place.municipal else ""
        name = f"{city or ''}{place.district}{name}"
        hit = _district_in(name, place)
    if hit is not None:
        district, code, city = hit
        if city and name.startswith(district):
            name = city + name
    else:
        district, city = None, _starts_with_city(name, place)
        code = (CITY_CODES.get(city) or place.city_code) if city else None
    local = name
    for prefix in (city or "", district or ""):
        if prefix and local.startswith(prefix):
            local = local[len(prefix) :]
    words = _pinyin_words(local)
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    return Agency(f"{code or 'x'}-{words}-{digest}", name, district, code)


@lru_cache(maxsize=1 << 16)
def _pinyin_words(local: str) -> str:
    # Cached: converting a name to pinyin costs a rerun 0.2 ms a report, and an agency
    # publishes a report a year.
    return _NON_ASCII_WORD.sub("", "".join(lazy_pinyin(local)).lower())[:40] or "agency"
