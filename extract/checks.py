"""The template's accounting identities, checked on the cells as printed.

Only the first identity is printed in the table (its header cell says 本列数据的勾稽关系为：
第一项加第二项之和，等于第三项加第四项之和); the others follow from arithmetic and are often
broken in real reports. Nothing is corrected: each check records the sum of its parts
(``expected``), the printed total (``found``) and a status:

- ``pass`` / ``fail``: both sides have printed values (a blank, dash or slash part counts 0);
- ``incomplete``: the total is blank (reports often leave intermediate 总计 cells empty), every
  part is blank under a printed total, or a cell the check needs is missing from the table;
- ``empty``: every cell involved is blank, so there is nothing to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

APPLICANT_COLUMNS = (
    "natural_person",
    "commercial_enterprise",
    "research_institution",
    "public_interest_org",
    "legal_service_org",
    "other_org",
)
APPLICATION_COLUMNS = (*APPLICANT_COLUMNS, "total")
RESULT_ROWS = (
    "granted",
    "partially_granted",
    "withheld.state_secret",
    "withheld.prohibited_by_law",
    "withheld.security_stability",
    "withheld.third_party_rights",
    "withheld.internal_affairs",
    "withheld.process_information",
    "withheld.enforcement_files",
    "withheld.inquiry_matters",
    "unavailable.not_held",
    "unavailable.needs_creation",
    "unavailable.unclear_after_correction",
    "not_processed.petition_or_complaint",
    "not_processed.duplicate",
    "not_processed.publications",
    "not_processed.excessive_repeated",
    "not_processed.reissue_request",
)
OTHER_HANDLING_ROWS = {
    "2019": ("other_handling",),
    "2021": (
        "other_handling.overdue_correction",
        "other_handling.overdue_fee",
        "other_handling.other",
    ),
}
REVIEW_GROUPS = ("review", "litigation_direct", "litigation_after_review")
REVIEW_PARTS = ("upheld", "corrected", "other", "pending")

# The identities, as documented in docs/schema.md.
IDENTITIES = {
    "applications.balance": "new_received + carried_over = total_handled + carried_forward, "
    "for every applicant column",
    "applications.row_total": "total = the six applicant columns, for every row",
    "applications.results_total": "total_handled = every result row from granted to the last "
    "other_handling row, for every applicant column",
    "reviews_litigation.group_total": "total = upheld + corrected + other + pending, for each "
    "of review, litigation_direct and litigation_after_review",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One identity evaluated on one column, row or group."""

    check: str
    table: str
    subject: str
    expected: float | None
    found: float | None
    status: str


Cells = dict[tuple[str, str], float | None]


def _evaluate(
    check: str,
    table: str,
    subject: str,
    cells: Cells,
    parts: tuple[tuple[str, str], ...],
    totals: tuple[tuple[str, str], ...],
) -> CheckResult:
    try:
        part_values = [cells[key] for key in parts]
        total_values = [cells[key] for key in totals]
    except KeyError:
        return CheckResult(check, table, subject, None, None, "incomplete")
    printed_parts = [v for v in part_values if v is not None]
    printed_totals = [v for v in total_values if v is not None]
    if not printed_parts and not printed_totals:
        return CheckResult(check, table, subject, None, None, "empty")
    expected = sum(printed_parts)
    if not printed_totals:
        return CheckResult(check, table, subject, expected, None, "incomplete")
    found = sum(printed_totals)
    if not printed_parts:
        # The parts were left blank under a printed total: nothing to compare it with.
        return CheckResult(check, table, subject, None, found, "incomplete")
    status = "pass" if abs(expected - found) < 1e-9 else "fail"
    return CheckResult(check, table, subject, expected, found, status)


@cache
def _application_identities(
    template_format: str | None,
) -> tuple[tuple[str, str, tuple, tuple], ...]:
    """(check, subject, parts, totals) of the column identities of table 三."""
    # Without a detected format no other_handling row was read: the check is incomplete.
    other_rows = OTHER_HANDLING_ROWS[template_format or "2021"]
    balance = tuple(
        (
            "applications.balance",
            column,
            (("new_received", column), ("carried_over", column)),
            (("total_handled", column), ("carried_forward", column)),
        )
        for column in APPLICATION_COLUMNS
    )
    results_total = tuple(
        (
            "applications.results_total",
            column,
            tuple((row, column) for row in (*RESULT_ROWS, *other_rows)),
            (("total_handled", column),),
        )
        for column in APPLICATION_COLUMNS
    )
    return balance, results_total


@cache
def _row_total_keys(row: str) -> tuple[tuple, tuple]:
    return tuple((row, column) for column in APPLICANT_COLUMNS), ((row, "total"),)


def check_applications(cells: Cells, template_format: str | None) -> list[CheckResult]:
    """The three identities of table 三."""
    table = "applications"
    balance, results_total = _application_identities(template_format)
    results = [
        _evaluate(check, table, subject, cells, parts, totals)
        for check, subject, parts, totals in balance
    ]
    for row in sorted({row for row, _ in cells}, key=_row_order):
        results.append(
            _evaluate(
                "applications.row_total", table, row, cells, *_row_total_keys(row)
            )
        )
    results.extend(
        _evaluate(check, table, subject, cells, parts, totals)
        for check, subject, parts, totals in results_total
    )
    return results


def check_reviews(cells: Cells) -> list[CheckResult]:
    """The group totals of table 四."""
    return [
        _evaluate(
            "reviews_litigation.group_total",
            "reviews_litigation",
            group,
            cells,
            tuple((group, part) for part in REVIEW_PARTS),
            ((group, "total"),),
        )
        for group in REVIEW_GROUPS
    ]


_ORDER = {
    code: i
    for i, code in enumerate(
        ["new_received", "carried_over", *RESULT_ROWS, *OTHER_HANDLING_ROWS["2019"],
         *OTHER_HANDLING_ROWS["2021"], "total_handled", "carried_forward"]
    )
}  # fmt: skip


def _row_order(code: str) -> int:
    return _ORDER.get(code, len(_ORDER))
