"""Report metadata and narrative sections, read from a document's text lines.

Titles come in three shapes: 北京市西城区人民政府2023年政府信息公开工作年度报告 (agency, year),
2019年上海市人民政府办公厅政府信息公开工作年度报告 (year, agency), and the agency on a line of
its own above 2023年政府信息公开工作年度报告 (the seed report). Some pages start straight
with the body (东城): then the agency and year stay empty, for the crawl's list metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from extract.catalogue import sections
from extract.layout import Table
from extract.normalize import normalize_label
from nianbao_common.titles import TITLE, TITLE_WINDOW, title_agency, title_year

_LABELLED_DATE = re.compile(
    r"(?:发布日期|发布时间|成文日期|日期)\s*[:：]\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})"
)
_SIGNATURE_DATE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$")
_AGENCY_LINE = re.compile(r"^[^\d。，；:：,;（(]{2,40}$")
# What a title line may be prefixed by: markdown headings, quotes and emphasis, list
# numbering, a label such as 标题： or 正文： (索引号 blocks), and what is left of it.
_TITLE_PREFIX = re.compile(
    r"^(?:\s|[#>*_|\-+·•【】\[\]]|(?:[一二三四五六七八九十]+|\d{1,2})[、.．)）]"
    r"|(?:正文|标题|名称|文件名称|题名|主题|文章标题)\s*[:：]?)+"
)
_TITLE_SUFFIX = re.compile(r"[\s#*_|】\]]+$")
# A line of a page's preamble, never an agency: 正文, 索引号：…, 发布机构：… and their kind.
_PREAMBLE = re.compile(
    r"^[#*\s]*(?:正文|索引号|发布机构|发文机关|发布日期|发布时间|成文日期|生成日期|主题分类|"
    r"文号|发文字号|来源|信息来源|分类|浏览次数|字体|打印|关闭|当前位置|首页|名称|标题|"
    r"有效性|体裁分类|公开方式|公开范围|责任部门)"
)
# A title wrapped over at most this many lines, each at most this long.
_WRAP_LINES = 3
_WRAP_WIDTH = 40
_HEADING_MAX = 40


@dataclass(slots=True)
class DocumentInfo:
    """What the document says about itself."""

    title: str | None = None
    agency: str | None = None
    year: int | None = None
    publish_date: str | None = None
    sections: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1 << 13)  # asked twice per line: for the sections and by the reader
def section_of(line: str) -> str | None:
    """The section code a heading line opens, or None for any other line."""
    if len(line) > _HEADING_MAX:
        return None
    key = normalize_label(line)
    for section in sections():
        if re.fullmatch(section.pattern, key):
            return section.code
    return None


def is_heading(line: str) -> bool:
    """Whether a text line is one of the six section headings."""
    return section_of(line) is not None


def _title_text(line: str) -> str:
    return _TITLE_SUFFIX.sub("", _TITLE_PREFIX.sub("", line.strip()))


def _wrappable(line: str) -> bool:
    return (
        0 < len(line) <= _WRAP_WIDTH and "。" not in line and not _PREAMBLE.match(line)
    )


def _title_match(text: str) -> re.Match | None:
    return TITLE.search(_title_text(text)[:TITLE_WINDOW])


def _find_title(
    title_tag: str | None, lines: list[str]
) -> tuple[str | None, str | None, int | None]:
    head = [_title_text(line) for line in lines[:20]]
    candidates: list[tuple[str, str | None]] = []
    if title_tag:
        candidates.append((_title_text(title_tag), None))
    for i, line in enumerate(head):
        above = head[i - 1] if i and not _PREAMBLE.match(lines[i - 1]) else None
        candidates.append((line, above))
        # A title wrapped over two or three lines: joined, when the lines after the
        # first hold no title of their own and the title starts in the first.
        if not _wrappable(lines[i]) or _title_match(line):
            continue
        joined = line
        for j in range(i + 1, min(i + _WRAP_LINES, len(head))):
            if not _wrappable(lines[j]) or _title_match(head[j]):
                break
            joined += head[j]
            candidates.append((joined, above))
    for text, line_above in candidates:
        match = TITLE.search(text[:TITLE_WINDOW])
        if match is None:
            continue
        agency = _title_text(title_agency(match)).strip(" -_|·:：")
        title = match.group(0).strip()
        if not agency and line_above and _AGENCY_LINE.match(line_above):
            agency = line_above.strip()
            title = agency + title
        return title, agency or None, title_year(match)
    return None, None, None


def _find_date(lines: list[str]) -> str | None:
    for line in lines[:40]:
        match = _LABELLED_DATE.search(line)
        if match:
            return "{}-{:0>2}-{:0>2}".format(*match.groups())
    for line in reversed(lines[-15:]):
        match = _SIGNATURE_DATE.match(line)
        if match:
            return "{}-{:0>2}-{:0>2}".format(*match.groups())
    return None


def read_document_info(
    blocks: list[str | Table], title_tag: str | None
) -> DocumentInfo:
    """Title, agency, year, publish date and the six narrative sections."""
    lines = [b for b in blocks if isinstance(b, str)]
    title, agency, year = _find_title(title_tag, lines)
    info = DocumentInfo(
        title=title, agency=agency, year=year, publish_date=_find_date(lines)
    )
    current: str | None = None
    texts: dict[str, list[str]] = {}
    for line in lines:
        code = section_of(line)
        if code is not None:
            current = code
            texts.setdefault(code, [])
        elif current is not None:
            texts[current].append(line)
    info.sections = {code: "\n".join(body) for code, body in texts.items()}
    return info
