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
    check: str, table: str, subject: str, cells: Cells, parts: list, totals: list
) -> CheckResult:
    if any(key not in cells for key in parts + totals):
        return CheckResult(check, table, subject, None, None, "incomplete")
    part_values = [cells[key] for key in parts]
    total_values = [cells[key] for key in totals]
    expected = sum(v for v in part_values if v is not None)
    if all(v is None for v in part_values + total_values):
        return CheckResult(check, table, subject, None, None, "empty")
    if all(v is None for v in total_values):
        return CheckResult(check, table, subject, expected, None, "incomplete")
    if all(v is None for v in part_values):
        # The parts were left blank under a printed total: nothing to compare it with.
        found = sum(v for v in total_values if v is not None)
        return CheckResult(check, table, subject, None, found, "incomplete")
    found = sum(v for v in total_values if v is not None)
    status = "pass" if abs(expected - found) < 1e-9 else "fail"
    return CheckResult(check, table, subject, expected, found, status)


def check_applications(cells: Cells, template_format: str | None) -> list[CheckResult]:
    """The three identities of table 三."""
    table = "applications"
    results = []
    for column in APPLICATION_COLUMNS:
        results.append(
            _evaluate(
                "applications.balance",
                table,
                column,
                cells,
                [("new_received", column), ("carried_over", column)],
                [("total_handled", column), ("carried_forward", column)],
            )
        )
    rows = sorted({row for row, _ in cells}, key=_row_order)
    for row in rows:
        results.append(
            _evaluate(
                "applications.row_total",
                table,
                row,
                cells,
                [(row, column) for column in APPLICANT_COLUMNS],
                [(row, "total")],
            )
        )
    # Without a detected format no other_handling row was read: the check is incomplete.
    other_rows = OTHER_HANDLING_ROWS[template_format or "2021"]
    for column in APPLICATION_COLUMNS:
        results.append(
            _evaluate(
                "applications.results_total",
                table,
                column,
                cells,
                [(row, column) for row in (*RESULT_ROWS, *other_rows)],
                [("total_handled", column)],
            )
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
            [(group, part) for part in REVIEW_PARTS],
            [(group, "total")],
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
