"""Misprinted row labels placed by the template's row order, and only where it is sure."""

from __future__ import annotations

import pytest

from extract import parse_report
from tests.conftest import REPORTS

SPACES = (REPORTS / "text-2019-spaces.txt").read_text(encoding="utf-8")


def _parse(text: str):
    return parse_report(text.encode(), url="https://example.org/r.txt")


def _rows_by(report, how: str) -> dict[str, list[float]]:
    frame = report.applications
    chosen = frame[frame["matched_by"] == how]
    return {
        row: list(chosen[chosen["row"] == row]["value"])
        for row in chosen["row"].unique()
    }


def test_real_misprint_is_placed_by_sequence():
    """洪泽区 2023 prints 2.其他法律行政止公开 for 2.其他法律行政法规禁止公开."""
    path = REPORTS / "huaian-hongze-district-2023.pdf"
    report = parse_report(path.read_bytes(), url=path.as_uri())
    assert _rows_by(report, "sequence") == {"withheld.prohibited_by_law": [0.0] * 7}
    placed = report.applications[report.applications["matched_by"] == "sequence"]
    assert set(placed["printed_row_label"]) == {"2.其他法律行政止公开"}
    assert set(report.applications["matched_by"]) == {"label", "sequence"}
    assert report.status == "partial"
    assert (
        "applications: row label '2.其他法律行政止公开' matched no template label; "
        "placed by sequence as withheld.prohibited_by_law"
    ) in report.problems


def test_two_misprints_in_a_row_are_placed_when_their_gap_fits():
    text = SPACES.replace("4.保护第三方合法权益", "4.保护第三方合法权力").replace(
        "5.属于三类内部事务信息", "5.属于三类内部事物信"
    )
    report = _parse(text)
    assert _rows_by(report, "sequence") == {
        "withheld.third_party_rights": [1, 0, 0, 0, 0, 0, 1],
        "withheld.internal_affairs": [0] * 7,
    }
    assert len(report.applications) == len(_parse(SPACES).applications)


@pytest.mark.parametrize(
    ("printed", "replacing"),
    [
        # No matched row above it: the neighbours do not anchor it.
        ("一、本年新收政府信息申请数", "一、本年新收政府信息公开申请数量"),
        # Anchored, but the wording is nothing like the one row left there.
        ("2.其他情况说明", "2.其他法律行政法规禁止公开"),
    ],
)
def test_misprint_not_placed_without_anchor_or_likeness(printed, replacing):
    report = _parse(SPACES.replace(replacing, printed))
    assert _rows_by(report, "sequence") == {}
    assert f"applications: unmatched row label {printed!r}" in report.problems
    assert not (report.applications["printed_row_label"] == printed).any()


def test_misprint_not_placed_when_the_gap_has_two_rows():
    """A row omitted beside a misprinted one leaves two rows for one label: unread."""
    lines = [line for line in SPACES.splitlines() if not line.startswith("3.危及")]
    text = "\n".join(lines).replace("4.保护第三方合法权益", "4.保护第三方合法权力")
    report = _parse(text)
    assert _rows_by(report, "sequence") == {}
    assert "applications: unmatched row label '4.保护第三方合法权力'" in report.problems


def test_every_correct_label_is_matched_by_label():
    report = _parse(SPACES)
    for frame in report.tables.values():
        assert set(frame["matched_by"]) <= {"label"}


def test_a_garbled_total_is_placed_where_its_values_confirm_it():
    """OCR of a noisy scan read （七）总计 as (七六和冰计: too unlike any label, but the
    one row its neighbours leave, and its values are the sums of the result rows."""
    report = _parse(SPACES.replace("（七）总计", "(七六和冰计"))
    clean = _parse(SPACES).applications
    assert _rows_by(report, "sequence") == {
        "total_handled": list(clean[clean["row"] == "total_handled"]["value"])
    }
    assert (
        "applications: row label '(七六和冰计' matched no template label; placed by "
        "sequence as total_handled (its values pass applications.results_total in 5 "
        "columns, fail in 0)"
    ) in report.problems


@pytest.mark.parametrize(
    "printed",
    [
        # Sums that are not the result rows' in three columns.
        "(七六和冰计   91   7   0   1   0   2   101",
        # Only zeros beside one non-zero column: nothing confirms it.
        "(七六和冰计   0   0   0   0   0   38   38",
    ],
)
def test_a_garbled_row_whose_values_do_not_confirm_it_stays_unread(printed):
    report = _parse(SPACES.replace("（七）总计   31   4   0   1   0   2   38", printed))
    assert _rows_by(report, "sequence") == {}
    assert "applications: unmatched row label '(七六和冰计'" in report.problems
    assert "total_handled" not in set(report.applications["row"])
