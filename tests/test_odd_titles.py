"""Titles as agencies and other crawlers print them: wrapped, after a preamble, prefixed."""

from __future__ import annotations

import pytest

from extract import parse_report
from extract.document import read_document_info

AGENCY = "北京市西城区示例街道办事处"
TITLE = f"{AGENCY}2023年政府信息公开工作年度报告"

CASES = {
    "wrapped over two lines": [AGENCY, "2023年政府信息公开工作年度报告"],
    "wrapped inside the name": [f"{AGENCY}2023年", "政府信息公开工作年度报告"],
    "wrapped over three lines": [AGENCY, "2023年政府信息公开", "工作年度报告"],
    "after 正文": ["正文", TITLE],
    "after 正文, wrapped": ["正文", AGENCY, "2023年政府信息公开工作年度报告"],
    "markdown heading": [f"# {TITLE}"],
    "markdown heading, wrapped": [f"## {AGENCY}", "## 2023年政府信息公开工作年度报告"],
    "bold markdown": [f"**{TITLE}**"],
    "numbered": [f"1. {TITLE}"],
    "索引号 block": [
        "索引号：11110102000/2024-00012",
        f"发布机构：{AGENCY}",
        "发布日期：2024-01-15",
        f"名称：{TITLE}",
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_title_in_odd_places(name):
    lines = CASES[name] + ["一、总体情况", "2023年，本办认真贯彻落实《条例》。"]
    info = read_document_info(lines, None)
    assert (info.title, info.agency, info.year) == (TITLE, AGENCY, 2023)


@pytest.mark.parametrize("year_text", ["二〇二三", "二○二三", "二零二三", "二O二三"])
def test_year_in_chinese_numerals(year_text):
    info = read_document_info(
        [f"{AGENCY}{year_text}年度政府信息公开工作年度报告"], None
    )
    assert (info.agency, info.year) == (AGENCY, 2023)


def test_preamble_line_is_never_the_agency():
    info = read_document_info(["正文", "2023年政府信息公开工作年度报告"], None)
    assert (info.agency, info.year) == (None, 2023)


def test_body_sentence_is_not_joined_into_a_title():
    lines = ["各位领导：", "本办2023年工作总结如下。", "政府信息公开工作年度报告"]
    assert read_document_info(lines, None).agency is None


def test_markdown_document_title_end_to_end():
    text = (
        f"# {AGENCY}\n# 2023年政府信息公开工作年度报告\n\n正文\n\n## 一、总体情况\n\n"
    )
    report = parse_report(text.encode(), url="https://example.org/a.md")
    assert (report.title, report.agency, report.year) == (TITLE, AGENCY, 2023)
