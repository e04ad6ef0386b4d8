"""Text tables as other tools save them: markdown pipes, +---+ grids, single spaces,
digits run together (split only where the identities admit exactly one split)."""

from __future__ import annotations

from extract import parse_report
from extract.layout import Table, text_layout
from tests.conftest import REPORTS


def _parse(text: str, name: str = "r.txt"):
    return parse_report(text.encode(), url=f"https://example.org/{name}")


def _rows(text: str) -> list[list[str]]:
    return [
        [cell.text for cell in row]
        for block in text_layout(text).blocks
        if isinstance(block, Table)
        for row in block.rows
    ]


def test_pipe_rows_and_rules():
    text = "| 信息内容 | 本年制发件数 |\n|:---|---:|\n| 规章 | 0 |\n| | 3 |\n"
    assert _rows(text) == [["信息内容", "本年制发件数"], ["规章", "0"], ["", "3"]]


def test_grid_rows_join_wrapped_cells():
    text = "+----+----+\n| 行政 | 1 |\n| 许可 |   |\n+----+----+\n| 规章 | 2 |\n+----+----+\n"
    assert _rows(text) == [["行政许可", "1"], ["规章", "2"]]


def test_single_space_rows():
    text = "信息内容 本年制发件数 本年废止件数 现行有效件数\n规章 1 0 5\n行政许可 7\n"
    assert _rows(text) == [
        ["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"],
        ["规章", "1", "0", "5"],
        ["行政许可", "7"],
    ]


def test_sentences_with_single_spaces_stay_text():
    lines = [
        "发布日期：2024-01-11 来源：本站",
        "2023年 本办共收到申请 12 件，办结 12 件。",
        "联系电话 010 6601",
        "邮编100032",
    ]
    layout = text_layout("\n".join(lines))
    assert layout.blocks == lines


def test_run_together_digits_split_by_the_row_identity():
    path = REPORTS / "text-2019-run-together.txt"
    report = parse_report(path.read_bytes(), url=path.as_uri())
    applications = report.applications
    assert set(applications["matched_by"]) == {"split"}
    assert set(report.active_disclosure["matched_by"]) == {"label"}
    granted = applications[applications["row"] == "granted"]
    assert list(granted["raw"]) == ["10", "2", "0", "0", "0", "1", "13"]
    assert (
        "applications: digits '102000113' in row '（一）予以公开' read as "
        "10 2 0 0 0 1 13, the one split the row's identity admits"
    ) in report.problems
    for label, digits in (("规章", "2215"), ("行政强制", "5012")):
        assert (
            f"active_disclosure: digits {digits!r} in row {label!r} admit more than "
            "one split into 3 columns; not read"
        ) in report.problems


def test_digits_that_admit_no_split_are_not_read():
    spaces = (REPORTS / "text-2019-spaces.txt").read_text(encoding="utf-8")
    # 10 2 0 0 0 1 14: no split of 102000114 makes 总计 the sum of the others.
    text = spaces.replace(
        "（一）予以公开   10   2   0   0   0   1   13", "（一）予以公开 102000114"
    )
    report = _parse(text)
    assert not (report.applications["row"] == "granted").any()
    assert (
        "applications: digits '102000114' in row '（一）予以公开' admit no split "
        "into 7 columns; not read"
    ) in report.problems
    assert report.status == "partial"


def test_markdown_without_tables():
    text = (
        "# 某区2023年政府信息公开工作年度报告\n\n## 一、总体情况\n\n本年度工作平稳。\n"
    )
    report = _parse(text, "a.md")
    assert report.status == "no_tables"
    assert report.year == 2023
    assert all(frame.empty for frame in report.tables.values())
    assert "active_disclosure: table not found" in report.problems


def test_markdown_fixture_reads_every_cell_by_label():
    path = REPORTS / "text-2019-markdown.md"
    report = parse_report(path.read_bytes(), url=path.as_uri())
    assert report.status == "ok"
    assert report.agency == "北京市大兴区示例镇人民政府"
    assert sum(len(frame) for frame in report.tables.values()) == 22 + 161 + 15
