"""Bad documents get a status and recorded problems, never an exception."""

from __future__ import annotations

import random
import time

import pandas as pd
import pytest

from extract import parse_report
from tests.conftest import REPORTS, same_value
from tests.fixtures.make_variants import expected_values


def _page() -> bytes:
    return (REPORTS / "word-2021-gb2312.html").read_bytes()


def test_truncated_html_keeps_what_was_read():
    data = _page()
    table_start = data.index("三、收到和处理政府信息公开申请情况".encode("gbk"))
    cut = data[: data.index(b"mso-yfti-irow:15", table_start)]
    report = parse_report(cut)
    assert report.status == "partial"
    assert report.formats["active_disclosure"] == "2021"
    assert len(report.active_disclosure) == 10
    assert any(
        p.startswith("applications: template rows not found: unavailable.not_held")
        for p in report.problems
    )
    assert "reviews_litigation: table not found" in report.problems
    granted = report.applications.query(
        "row == 'granted' and column == 'natural_person'"
    )
    assert granted["value"].tolist() == [40.0]


def test_page_without_tables_is_no_tables():
    index_page = (
        "<html><head><meta charset=utf-8><title>政府信息公开年报</title></head><body><ul>"
        + "".join(
            f"<li><a href='t2024011{i}_35{i}.html'>北京市东城区某局2023年政府信息公开工作年度报告</a></li>"
            for i in range(9)
        )
        + "</ul></body></html>"
    ).encode()
    report = parse_report(
        index_page, url="https://www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/2023nb/"
    )
    assert report.status == "no_tables"
    assert all(df.empty for df in report.tables.values())
    assert report.checks.empty


def test_binary_garbage_is_no_tables():
    garbage = random.Random(7).randbytes(200_000)
    report = parse_report(garbage)
    assert report.status == "no_tables"
    assert report.problems


@pytest.mark.parametrize("data", [b"", b"   \n\t ", b"<html></html>", b"\xff\xfe\x00"])
def test_empty_documents(data):
    report = parse_report(data)
    assert report.status == "no_tables"


def test_unsupported_binary_formats_say_so():
    report = parse_report(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert report.status == "no_tables"
    assert report.source_format == "image"
    assert report.problems


def test_five_megabyte_page_is_read_in_reasonable_time():
    page = _page()
    filler = (
        "<p class=MsoNormal><span>" + "政务公开工作稳步推进，" * 40 + "</span></p>\n"
    ).encode("gbk")
    head, tail = page.split(b"<body", 1)
    big = (
        head
        + b"<body"
        + tail.replace(b"</div>", filler * (5_000_000 // len(filler)) + b"</div>", 1)
    )
    assert len(big) > 5_000_000
    started = time.perf_counter()
    report = parse_report(big)
    assert time.perf_counter() - started < 30
    assert report.status == "ok"
    assert len(report.applications) == 175


def test_wrongly_declared_latin1_gbk_page_is_decoded_as_chinese():
    page = _page().replace(b"charset=gb2312", b"charset=iso-8859-1")
    report = parse_report(page, content_type="text/html; charset=ISO-8859-1")
    assert report.encoding == "gb18030"
    assert report.declared_encoding == "iso8859-1"
    assert report.status == "ok"


def test_gbk_shortcut_decodes_exactly_as_gb18030():
    # decode_document reads GB18030 pages with the faster GBK codec when it can: that is
    # only right if every byte pair GBK accepts means the same character in GB18030.
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            pair = bytes([lead, trail])
            try:
                text = pair.decode("gbk")
            except UnicodeDecodeError:
                continue
            assert text == pair.decode("gb18030"), pair.hex()


def test_gb18030_only_characters_are_decoded():
    # € (A2E3) and 㐀 (a four-byte sequence) exist in GB18030 but not in GBK.
    note = "本年度未收取信息处理费。"
    page = _page().replace(note.encode("gbk"), f"{note}€㐀".encode("gb18030"))
    report = parse_report(page)
    assert report.encoding == "gb18030"
    assert report.sections["other_matters"] == f"{note}€㐀"
    assert report.status == "ok"


def _assert_cells_as_expected(report, stem: str, tables: list[str]) -> None:
    expected = expected_values(stem)
    for table in tables:
        frame = report.tables[table]
        found = {
            (row, column): None if pd.isna(value) else float(value)
            for row, column, value in zip(
                frame["row"], frame["column"], frame["value"], strict=True
            )
        }
        assert sorted(found) == sorted(expected[table]), table
        for key, value in expected[table].items():
            assert same_value(found[key], value), (table, key, found[key], value)


@pytest.mark.parametrize(
    ("stem", "encoding"),
    [("shanghai-gov-office-2019", "utf-8"), ("word-2021-gb2312", "gb18030")],
)
def test_page_cut_off_inside_a_character_keeps_its_encoding(stem, encoding):
    # A download that stops in the middle of a multi-byte character, one byte into the
    # heading of table 四: tables 二 and 三 are whole and must read as before, not as
    # mojibake of another codec.
    data = (REPORTS / f"{stem}.html").read_bytes()
    heading = "四、政府信息公开行政复议".encode(
        "utf-8" if encoding == "utf-8" else "gbk"
    )
    cut = data[: data.index(heading) + 1]
    report = parse_report(cut)
    assert report.encoding == encoding
    assert report.status == "partial"
    assert "reviews_litigation: table not found" in report.problems
    _assert_cells_as_expected(report, stem, ["active_disclosure", "applications"])


def test_short_utf8_page_cut_off_inside_a_character_is_still_utf8():
    # Cut one byte into the title: too little text for any statistical guess, which
    # took these 65 bytes for cp1252.
    data = (REPORTS / "shanghai-gov-office-2019.html").read_bytes()
    cut = data[: data.index("年上海市".encode()) + 1]
    report = parse_report(cut)
    assert report.encoding == "utf-8"
    assert report.status == "no_tables"


@pytest.mark.parametrize(
    ("stem", "encoding", "sentence", "stray", "replaced"),
    [
        # 年 in GBK is C4 EA: C4 is a lone UTF-8 lead byte; EA with the A0 after it is
        # the start of a three-byte sequence that stops short. One U+FFFD each.
        (
            "shanghai-gov-office-2019",
            "utf-8",
            "按时编辑出版",
            "年".encode("gbk") + b"\xa0",
            2,
        ),
        # 0x80 and 0xFF are never bytes of a GBK character.
        ("word-2021-gb2312", "gb18030", "全面贯彻落实", b"\x80\xff", 2),
    ],
)
def test_page_with_stray_bytes_keeps_its_encoding(
    stem, encoding, sentence, stray, replaced
):
    # Bytes pasted from another encoding: the bad bytes are replaced, the rest of the page
    # reads as it would without them (not as the mojibake of a statistical guess).
    data = (REPORTS / f"{stem}.html").read_bytes()
    printed = sentence.encode("utf-8" if encoding == "utf-8" else "gbk")
    report = parse_report(data.replace(printed, stray + printed, 1))
    assert report.encoding == encoding
    assert report.status == "ok"
    _assert_cells_as_expected(
        report, stem, ["active_disclosure", "applications", "reviews_litigation"]
    )
    overview = report.sections["overview"]
    assert "\ufffd" + sentence in overview
    assert overview.count("\ufffd") == replaced


def test_gbk_page_with_a_few_utf8_looking_characters_stays_gbk():
    # 中 is D6 D0 in GBK, which is also a valid two-byte UTF-8 sequence: a GBK page that
    # opens with such characters must not be taken for damaged UTF-8.
    data = _page().replace(b"<title>", "<title>中中中".encode("gbk"), 1)
    report = parse_report(data)
    assert report.encoding == "gb18030"
    assert report.title is not None and "\ufffd" not in report.title
