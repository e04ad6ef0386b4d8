"""Report titles: whether a text names an annual report, and the agency and year it names.

One pattern for the crawler (link texts, page headings) and the extractor (a document's
first lines): "北京市西城区财政局2020年政府信息公开工作年度报告", the year first or in
Chinese numerals ("二〇二三年度"), 年报 or 工作报告 for 年度报告.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# OCR and typists print the zero of Chinese-numeral years as any round glyph.
_CHINESE_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {
    "零": "0",
    "О": "0",
    "○": "0",
    "Ｏ": "0",
    "O": "0",
}
TITLE = re.compile(
    r"(?P<before>[^。；;,，\n]{0,60}?)\s*"
    r"(?P<year>(?:19|20)\d{2}|[二一][〇零○ＯОO一二三四五六七八九]{3})\s*年\s*度?\s*"
    r"(?P<between>[^。；;,，\n]{0,60}?)\s*"
    r"政府信息公开(?:工作)?\s*(?:年度)?(?:年度|工作)?(?:报告|年报)"
)
# Pages that sit in 年报 columns and name a report in their title but are not one.
_NOT_REPORT = re.compile(
    r"解读|专题|问答|图解|一图读懂|集中公开|答记者问|政策解读|汇总"
)
_AGENCY_STRIP = " 《「“\"'：:-—_·|"
# A title opens its text: only this much is searched (the pattern tries 60 starts at every
# character, seconds on a line of 10^6).
TITLE_WINDOW = 1000


@dataclass(frozen=True, slots=True)
class ReportTitle:
    """A report title read from a link, a page or a document."""

    title: str
    year: int
    agency: str


def title_year(match: re.Match) -> int:
    """The year a title match names, Chinese numerals read as digits."""
    return int("".join(_CHINESE_DIGITS.get(c, c) for c in match["year"]))


def title_agency(match: re.Match) -> str:
    """The agency a title match names: before the year, or between year and 政府信息公开."""
    return (match["before"] or match["between"]).strip(_AGENCY_STRIP)


def is_excluded_title(text: str) -> bool:
    """Titles of pages that sit in 年报 columns but are not reports (解读, 专题页 …)."""
    return bool(_NOT_REPORT.search(text))


def parse_report_title(text: str | None) -> ReportTitle | None:
    """The year and agency named by a report title, or None if it is not a report's title.

    >>> parse_report_title("北京市西城区财政局2020年政府信息公开工作年度报告").agency
    '北京市西城区财政局'
    >>> parse_report_title("二〇二三年度北京市密云区政府信息公开工作年报").year
    2023
    >>> parse_report_title("2023年政府信息公开工作年度报告解读") is None
    True
    """
    if not text:
        return None
    title = " ".join(text.replace("\u3000", " ").split())
    if is_excluded_title(title):
        return None
    match = TITLE.search(title[:TITLE_WINDOW])
    if not match:
        return None
    # Up to the end of 年度报告/年报: drops a site name after it ("…_首都之窗").
    return ReportTitle(
        title=title[: match.end()].strip(" 《「“\"'"),
        year=title_year(match),
        agency=title_agency(match),
    )
