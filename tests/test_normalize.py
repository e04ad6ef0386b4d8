"""Label keys and value markers, as parametrised tables of what real reports print."""

from __future__ import annotations

import pytest

from extract.catalogue import TABLES, all_keys, table_catalogue
from extract.normalize import (
    normalize_label,
    parse_value,
    split_merged_labels,
    to_10k_yuan,
)


@pytest.mark.parametrize(
    ("printed", "key"),
    [
        ("（二）部分公开（区分处理的，只计这一情形，不计其他情形）", "部分公开"),
        ("(二)部分公开", "部分公开"),
        ("商 业 企\n业", "商业企业"),
        ("自然\u3000人", "自然人"),
        ("一、本年新收政府信息公开申请数量", "本年新收政府信息公开申请数量"),
        ("1、属于国家秘密", "属于国家秘密"),
        ("1．属于国家秘密", "属于国家秘密"),
        ("3.危及“三安全一稳定”", "危及三安全一稳定"),
        ('3.危及"三安全一稳定"', "危及三安全一稳定"),
        ("现行有效件数（历史累计）", "现行有效件数"),
        ("本年收费金额（单位：万元）", "本年收费金额"),
        ("第二十条第（一）项", "第二十条第(一)项"),
        ("第二十条第(九)项", "第二十条第(九)项"),
        ("（七）总计", "总计"),
        ("四、结转下年度继续办理", "结转下年度继续办理"),
        (
            "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）",
            "(本列数据的勾稽关系为:第一项加第二项之和,等于第三项加第四项之和)",
        ),
    ],
)
def test_label_keys(printed, key):
    assert normalize_label(printed) == key


@pytest.mark.parametrize(
    ("raw", "value", "marker", "unit"),
    [
        ("", None, "blank", None),
        ("\xa0", None, "blank", None),
        ("0", 0.0, "number", None),
        ("０", 0.0, "number", None),
        ("0件", 0.0, "number", None),
        ("无", 0.0, "none_word", None),
        ("—", None, "dash", None),
        ("-", None, "dash", None),
        ("/", None, "slash", None),
        ("1,234", 1234.0, "number", None),
        ("１，２３４", 1234.0, "number", None),
        ("+3", 3.0, "number", None),
        ("-8", -8.0, "number", None),
        ("--253", -253.0, "number", None),
        ("0.092", 0.092, "number", None),
        ("251000元", 251000.0, "number", "元"),
        ("103.3879万元", 103.3879, "number", "万元"),
        ("75394432.52元", 75394432.52, "number", "元"),
        ("见附件", None, "unparsed", None),
    ],
)
def test_values(raw, value, marker, unit):
    parsed = parse_value(raw)
    assert (parsed.value, parsed.marker, parsed.unit) == (value, marker, unit)


@pytest.mark.parametrize(
    ("raw", "column_unit", "expected"),
    [
        ("251000元", None, (25.1, "元")),
        ("75394432.52元", None, (7539.443252, "元")),
        ("103.3879万元", None, (103.3879, "万元")),
        ("12.5", "万元", (12.5, "万元")),
        ("125000", "元", (12.5, "元")),
        ("12.5", None, (12.5, None)),
    ],
)
def test_money_in_10k_yuan(raw, column_unit, expected):
    assert to_10k_yuan(parse_value(raw), column_unit) == expected


def test_merged_labels_split_at_outline_numbers():
    assert split_merged_labels("（三）不予公开1.属于国家秘密") == [
        "（三）不予公开",
        "1.属于国家秘密",
    ]
    assert split_merged_labels("第二十条第（一）项") == ["第二十条第（一）项"]
    assert split_merged_labels("金额0.092万元") == ["金额0.092万元"]


@pytest.mark.parametrize("table", list(TABLES))
def test_every_catalogue_label_matches_its_own_entry(table):
    for entry in table_catalogue(table).entries:
        assert entry in all_keys()[normalize_label(entry.label_zh)], entry


def test_catalogue_codes_are_the_template_contract():
    applications = table_catalogue("applications")
    assert len(applications.of_kind("row", "2019")) == 23
    assert len(applications.of_kind("row", "2021")) == 25
    assert [e.code for e in applications.of_kind("column")] == [
        "natural_person", "commercial_enterprise", "research_institution",
        "public_interest_org", "legal_service_org", "other_org", "total",
    ]  # fmt: skip
    assert len(table_catalogue("reviews_litigation").expected_cells("2021")) == 15
