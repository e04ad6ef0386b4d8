"""Span expansion and text layouts on the shapes Word, WPS and copied text produce."""

from __future__ import annotations

import re

from extract import parse_report
from extract.layout import Table, html_layout, text_layout
from tests.conftest import REPORTS


def _grid(html: str) -> list[list[tuple[str, int, int, bool]]]:
    (table,) = [
        b
        for b in html_layout(f"<html><body>{html}</body></html>").blocks
        if isinstance(b, Table)
    ]
    return [[(c.text, c.col, c.span, c.carried) for c in row] for row in table.rows]


def test_rowspan_cells_are_carried_into_the_rows_they_cover():
    grid = _grid(
        "<table><tr><td rowspan=3>三、本年度办理结果</td><td>（一）予以公开</td><td>1</td></tr>"
        "<tr><td>（二）部分公开</td><td>2</td></tr><tr><td>（七）总计</td><td>3</td></tr></table>"
    )
    assert grid == [
        [
            ("三、本年度办理结果", 0, 1, False),
            ("（一）予以公开", 1, 1, False),
            ("1", 2, 1, False),
        ],
        [
            ("三、本年度办理结果", 0, 1, True),
            ("（二）部分公开", 1, 1, False),
            ("2", 2, 1, False),
        ],
        [
            ("三、本年度办理结果", 0, 1, True),
            ("（七）总计", 1, 1, False),
            ("3", 2, 1, False),
        ],
    ]


def test_malformed_spans_are_read_as_browsers_would():
    grid = _grid(
        '<table><tr><td colspan="2;">自然</span>人</td><td rowspan="0">x</td></tr>'
        '<tr><td colspan="abc">a</td><td rowspan=99>b</td></tr></table>'
    )
    assert grid[0] == [("自然人", 0, 2, False), ("x", 2, 1, False)]
    assert grid[1] == [("a", 0, 1, False), ("b", 1, 1, False)]


def test_cells_join_text_split_over_spans_and_line_breaks():
    grid = _grid(
        "<table><tr><td><p><span>商业</span><br><span>企业</span><o:p>&nbsp;</o:p></p></td>"
        "<td><span>自然</span><span>人</span></td></tr></table>"
    )
    assert [c[0] for c in grid[0]] == ["商业企业", "自然人"]


def test_layout_tables_are_transparent_and_data_tables_kept_in_order():
    layout = html_layout(
        "<html><head><title>T</title><script>var a='<table>';</script></head><body>"
        "<table><tr><td><p>一、总体情况</p><p>正文</p>"
        "<table><tr><td>规章</td><td>0</td></tr></table><p>二、主动公开政府信息情况</p>"
        "</td></tr></table></body></html>"
    )
    assert layout.title == "T"
    assert layout.blocks[:2] == ["一、总体情况", "正文"]
    assert isinstance(layout.blocks[2], Table)
    assert layout.blocks[3] == "二、主动公开政府信息情况"


def test_scripts_and_styles_in_the_body_never_reach_text_or_cells():
    layout = html_layout(
        "<html><head><style>p {margin: 0}</style></head><body>"
        "<p>一、总体情况<script>document.write('统计')</script></p>"
        "<STYLE>td {border: 1px}</STYLE><noscript><p>请启用脚本</p></noscript>"
        "<table><tr><td><table><tr><td>规章<script>var n = 1;</script></td>"
        "<td>0<template><b>9</b></template></td></tr></table></td></tr></table>"
        "<p>二、主动公开政府信息情况</p></body></html>"
    )
    table = layout.blocks[1]
    assert layout.blocks[0] == "一、总体情况"
    assert [[c.text for c in row] for row in table.rows] == [["规章", "0"]]
    assert layout.blocks[2:] == ["二、主动公开政府信息情况"]


def test_line_breaks_in_the_source_are_spaces_not_new_lines():
    # Word's "save as web page" wraps long source lines; editors break lines between
    # inline elements. A browser shows one paragraph, and so does the layout. Between two
    # Chinese characters the break joins them (the CSS line-breaking rule), elsewhere it
    # is a space.
    layout = html_layout(
        "<html><head><title>北京市西城区2023年政府信息公开\r\n工作年度报告</title></head>"
        "<body><p>本机关依据《条例》\n第五十条编制本报告。The report\nfollows the template.</p>"
        "<p><span>二、主动公开</span>\n  <span>政府信息情况</span></p>"
        "<table><tr><td><p>商业</p>\n<p>企业</p></td><td>1 \n 234</td></tr></table>"
        "</body></html>"
    )
    assert layout.title == "北京市西城区2023年政府信息公开工作年度报告"
    assert layout.blocks[:2] == [
        "本机关依据《条例》第五十条编制本报告。The report follows the template.",
        "二、主动公开政府信息情况",
    ]
    assert [c.text for c in layout.blocks[2].rows[0]] == ["商业企业", "1 234"]


def test_preformatted_text_keeps_its_lines():
    layout = html_layout(
        "<html><body><script>var a = 1;</script><noscript><pre>请启用\n脚本</pre></noscript>"
        "<pre>一、总体情况\n本机关  全年\n\n二、主动公开政府信息情况</pre>"
        "<table><tr><td><pre>商业\n企业</pre></td><td>0</td></tr></table></body></html>"
    )
    assert layout.blocks[:3] == [
        "一、总体情况",
        "本机关 全年",
        "二、主动公开政府信息情况",
    ]
    assert [c.text for c in layout.blocks[3].rows[0]] == ["商业企业", "0"]


def test_tables_and_pre_inside_pre_are_each_read_once():
    layout = html_layout(
        "<html><body><pre>a\n<pre>b\nc</pre>d</pre>"
        "<pre>x<table><tr><td>1</td><td>2</td></tr></table>y\nz</pre></body></html>"
    )
    table = layout.blocks[4]
    assert [b for b in layout.blocks if isinstance(b, str)] == [
        "a",
        "b",
        "cd",
        "x",
        "y",
        "z",
    ]
    assert [[c.text for c in row] for row in table.rows] == [["1", "2"]]


_CHINESE = re.compile("[\u4e00-\u9fff，。、；：（）《》“”]")


def _wrap_source_lines(html: str, width: int) -> str:
    """The page as Word's HTML export lays it out: long text runs broken onto new lines.

    Breaks go only between two Chinese characters, so that no entity (&nbsp;), number
    or word is split.
    """

    def wrap(match: re.Match) -> str:
        text, out, run = match.group(1), [], 0
        for i, char in enumerate(text):
            if run >= width and _CHINESE.match(char) and _CHINESE.match(text[i - 1]):
                out.append("\r\n")
                run = 0
            out.append(char)
            run += 1
        return ">" + "".join(out) + "<"

    head, body = html.split("<body", 1)
    return head + "<body" + re.sub(">([^<]+)<", wrap, body)


def test_a_report_with_wrapped_source_lines_reads_as_the_unwrapped_one():
    page = (REPORTS / "shanghai-gov-office-2019.html").read_text(encoding="utf-8")
    wrapped = _wrap_source_lines(page, 17)
    assert wrapped.count("\r\n") > 100
    plain = parse_report(page.encode()).to_dict()
    found = parse_report(wrapped.encode()).to_dict()
    for report in (plain, found):
        report.pop("sha256")
    assert found == plain
    assert plain["status"] == "ok"


def test_cell_per_line_text_joins_wrapped_labels():
    layout = text_layout(
        "标题\n\n\t\n\t商业\n企业\n\t科研\n机构\n\n\t一、本年新收\n\t2\n\t0\n\n正文。\n"
    )
    table = layout.blocks[1]
    assert isinstance(table, Table) and not table.geometry
    assert [c.text for c in table.rows[0]] == ["", "商业企业", "科研机构"]
    assert [c.text for c in table.rows[1]] == ["一、本年新收", "2", "0"]
    assert layout.blocks[2] == "正文。"


def test_row_per_line_text_splits_on_tabs_and_runs_of_spaces():
    layout = text_layout(
        "规章\t0\t1\t2\n行政许可    3\n一句话  不是表格，因为它是一句很长的叙述性文字，带有标点。\n"
    )
    table = layout.blocks[0]
    assert [[c.text for c in row] for row in table.rows] == [
        ["规章", "0", "1", "2"],
        ["行政许可", "3"],
    ]
    assert layout.blocks[1].startswith("一句话")
