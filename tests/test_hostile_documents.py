"""Hostile documents (issue 20): each one found to hang, escape or drop a report.

Every case here once kept ``parse_report`` busy without end, raised out of it, or threw
away a report a browser reads: each must now come back promptly as a ``Report`` with a
recorded status, and what can be read is read.
"""

from __future__ import annotations

import time

import pytest

from extract import parse_report
from extract.layout import html_layout
from tests.conftest import REPORTS

STATUSES = {"ok", "checks_failed", "partial", "no_tables"}


def _timed(data: bytes, limit: float, **kwargs):
    started = time.monotonic()
    report = parse_report(data, **kwargs)
    assert time.monotonic() - started < limit
    assert report.status in STATUSES
    return report


def _gbk_page() -> bytes:
    return (REPORTS / "word-2021-gb2312.html").read_bytes()


# -- HTML ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "span",
    ["²", "٣", "9" * 5000, "12345678901"],
    ids=["superscript", "arabic-indic", "5000-digits", "11-digits"],
)
def test_unreadable_spans_read_as_one(span):
    layout = html_layout(
        f'<table><tr><td colspan="{span}">a</td><td rowspan="{span}">b</td>'
        "<td>c</td></tr><tr><td>d</td></tr></table>"
    )
    first, second = layout.blocks[0].rows
    assert [(c.text, c.col, c.span) for c in first] == [
        ("a", 0, 1),
        ("b", 1, 1),
        ("c", 2, 1),
    ]
    assert [c.text for c in second] == ["d"]


def test_span_with_leading_zeros_is_its_number():
    layout = html_layout(f'<table><tr><td colspan="{"0" * 5000}2">a</td></tr></table>')
    assert layout.blocks[0].rows[0][0].span == 2


@pytest.mark.parametrize("span", ["²", "9" * 5000], ids=["superscript", "5000-digits"])
def test_report_with_an_unreadable_span_is_still_read(span):
    # One more cell attribute a browser ignores: the report reads exactly as before.
    page = _gbk_page()
    marked = page.replace(b"<td ", f'<td colspan="{span}" '.encode(), 1)
    assert marked != page
    before, after = parse_report(page), _timed(marked, 10)
    assert after.status == before.status == "ok"
    assert after.table_columns == before.table_columns


@pytest.mark.parametrize("charset", ["undefined", "base64", "unicode_escape", "cp037"])
def test_charset_browsers_do_not_know_is_ignored(charset):
    page = _gbk_page().replace(b"charset=gb2312", f"charset={charset}".encode())
    report = _timed(page, 10)
    assert report.status == "ok"
    assert (report.encoding, report.declared_encoding) == ("gb18030", None)


def test_thirty_thousand_nested_tables_are_laid_out_in_seconds():
    depth = 30_000
    page = (
        "<html><body>"
        + "<table><tr><td>" * depth
        + "三、收到和处理政府信息公开申请情况"
        + "</td></tr></table>" * depth
        + "</body></html>"
    ).encode()
    report = _timed(page, 5)
    assert report.status == "no_tables"


def test_a_million_numbers_in_one_cell_are_read_in_seconds():
    cell = "1." * 1_000_000
    page = f"<html><body><table><tr><td>{cell}</td><td>5</td></tr></table>".encode()
    _timed(page, 5)
    # The same run as a paragraph, where the title is looked for.
    _timed(f"<html><body><p>{cell}</p></body></html>".encode(), 5)
