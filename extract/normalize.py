"""Normalise printed labels and cell values.

Reports are typed by hand into Word or WPS, so one label arrives as 商业企业, 商 业 企\n业,
（一）予以公开, (一)予以公开 or 1、予以公开, and one zero as 0, ０, 0件, 无 or a blank cell.
Labels are reduced to a match key; values to a number, a marker saying how the cell was
read, and the money unit the number was converted from.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_WHITESPACE = re.compile(r"\s+")
_QUOTES = re.compile("[\"'“”‘’「」『』〝〞]")
# Outline numbering as printed before labels: 一、 (一) 1. 1、 (1) ①. Matched at a
# position (``match(key, start)``), not with ^, so a run of them is read in one pass.
_NUMBERING = re.compile(
    r"(?:[一二三四五六七八九十]+[、.]"
    r"|\([一二三四五六七八九十]+\)"
    r"|\(\d+\)"
    r"|\d+(?:[.、]|\)(?!\d))"
    r"|[①②③④⑤⑥⑦⑧⑨⑩])"
)
# Notes in brackets after a label: 现行有效件数（历史累计）, 本年收费金额（单位：万元）. Single
# characters in brackets are kept: they are item numbers, as in 第二十条第（一）项.
_BRACKETED_NOTE = re.compile(r"[(\[【〔][^()\[\]【】〔〕]{2,}[)\]】〕]")
_TRAILING_PUNCT = re.compile(r"[:;。,.、]+$")


@lru_cache(maxsize=1 << 16)
def normalize_label(text: str) -> str:
    """Reduce a printed label to the key it is matched on.

    >>> normalize_label("（二）部分公开（区分处理的，只计这一情形，不计其他情形）")
    '部分公开'
    >>> normalize_label("商 业 企\\n业")
    '商业企业'
    """
    key = unicodedata.normalize("NFKC", text)
    key = _WHITESPACE.sub("", key)
    key = _QUOTES.sub("", key)
    # Every leading number goes ((一)1.), but never the whole key. Stripped by position:
    # cutting one number at a time would copy a cell of 10^6 "1." 10^6 times.
    start = 0
    while (number := _NUMBERING.match(key, start)) and number.end() < len(key):
        start = number.end()
    key = key[start:]
    without_notes = _BRACKETED_NOTE.sub("", key)
    if without_notes:
        key = without_notes
    key = _TRAILING_PUNCT.sub("", key)
    return key


# Glyphs Tesseract (chi_sim) reads for others in these tables: angle brackets for round
# ones, a semicolon for the colon (单位：万元 came out as 单位 ;万元). No template label
# prints 〈〉《》 or a semicolon, so mapping them never spoils a label.
OCR_GLYPHS = str.maketrans(
    {"〈": "（", "〉": "）", "《": "（", "》": "）", ";": "：", "；": "："}
)
# In a cell where a number is expected: strokes and rings read as letters or hanzi.
OCR_DIGITS = str.maketrans(
    {"l": "1", "I": "1", "|": "1", "丨": "1", "!": "1", "]": "1", "O": "0", "o": "0", "〇": "0",
     "Ｏ": "0", "，": ","}
)  # fmt: skip


def ocr_text(text: str, number: bool) -> str:
    """Text as OCR read it with the usual confusions undone (``OCR_GLYPHS``; and in a
    cell where a number is expected, ``OCR_DIGITS``).

    >>> ocr_text("本年收费金额〈单位 ;万元)", False)
    '本年收费金额（单位 ：万元)'
    >>> ocr_text("l0O", True)
    '100'
    """
    text = text.translate(OCR_GLYPHS)
    if not number:
        return text
    # The LSTM now and then sees a point after the last digit of a clean 3.
    return text.translate(OCR_DIGITS).strip(".")


# Where two labels were typed into one cell ("（三）不予公开1.属于国家秘密") they are split
# before each outline number that does not follow 第 (第二十条第（一）项 stays whole).
_INNER_NUMBERING = re.compile(
    r"(?<=[^\s第(（])(?=(?:[(（][一二三四五六七八九十]+[)）]|(?<![\d.])\d{1,2}[.、．](?!\d)))"
)


def split_merged_labels(text: str) -> list[str]:
    """Split a cell holding a group label and its item label into both."""
    parts = [part.strip() for part in _INNER_NUMBERING.split(text)]
    return [part for part in parts if part]


# Markers that stand for "nothing here" in a value cell, and the marker name recorded.
_EMPTY_MARKERS = {
    "": "blank",
    "—": "dash",
    "——": "dash",
    "-": "dash",
    "--": "dash",
    "–": "dash",
    "―": "dash",
    "/": "slash",
    "\\": "slash",
    "无": "none_word",
    "空": "blank",
}
_NUMBER = re.compile(
    r"^(?P<sign>[+-]{0,2})(?P<number>\d[\d,]*(?:\.\d+)?|\.\d+)"
    r"(?P<unit>万元|元|件|个|项|条|次|宗|人次|家|人)?$"
)
MONEY_UNITS = {"元": 0.0001, "万元": 1.0}


@dataclass(frozen=True, slots=True)
class CellValue:
    """A value cell as read: the number (or None), how it was read, the printed unit."""

    value: float | None
    marker: str
    unit: str | None = None


@lru_cache(maxsize=1 << 14)
def parse_value(raw: str) -> CellValue:
    """Read one value cell.

    Markers (documented in docs/schema.md): blank, dash and slash give no value (a dash can
    mean zero or "not applicable", and the report does not say which); 无 ("none") and 0件
    give 0; a number keeps its sign (+3, -8; the --253 seen in one report is read as -253).

    >>> parse_value("1,234")
    CellValue(value=1234.0, marker='number', unit=None)
    >>> parse_value("251000元")
    CellValue(value=251000.0, marker='number', unit='元')
    """
    text = _WHITESPACE.sub("", unicodedata.normalize("NFKC", raw))
    if text in _EMPTY_MARKERS:
        marker = _EMPTY_MARKERS[text]
        return CellValue(0.0 if marker == "none_word" else None, marker)
    match = _NUMBER.match(text)
    if match is None:
        return CellValue(None, "unparsed")
    number = float(match["number"].replace(",", ""))
    if "-" in match["sign"]:
        number = -number
    unit = match["unit"]
    return CellValue(number, "number", unit if unit in MONEY_UNITS else None)


def is_value_like(raw: str) -> bool:
    """Whether a cell reads as a value (a number or an empty marker) rather than a label."""
    return parse_value(raw).marker != "unparsed"


def to_10k_yuan(
    cell: CellValue, column_unit: str | None
) -> tuple[float | None, str | None]:
    """Express a money cell in 万元; return the value and the unit it was converted from."""
    unit = cell.unit or column_unit
    if cell.value is None or unit is None:
        return cell.value, unit
    return round(cell.value * MONEY_UNITS[unit], 6), unit
