"""The template's accounting identities, checked on the cells as printed.

Only the first identity is printed in the table (its header cell says 本列数据的勾稽关系为：
第一项加第二项之和，等于第三项加第四项之和); the others follow from arithmetic and are often
broken in real reports. They are data (extract/labels/identities.csv, its groups spelled out
by the catalogue's parent relations). Nothing is corrected: each check records the sum of
its parts (``expected``), the printed total (``found``) and a status:

- ``pass`` / ``fail``: both sides have printed values (a blank, dash or slash part counts 0);
- ``incomplete``: the total is blank (reports often leave intermediate 总计 cells empty), every
  part is blank under a printed total, or a cell the check needs is missing from the table;
- ``empty``: every cell involved is blank, so there is nothing to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from extract.catalogue import FORMATS, Identity, identities, table_catalogue

# The identities, as documented in docs/schema.md.
IDENTITIES = {identity.check: identity.description for identity in identities()}


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


# Without a detected format no format-specific row was read (table 三's other_handling
# rows): the parts are taken from the latest format, so such a check is incomplete.
_LATEST = FORMATS[-1]


def check_table(
    table: str, cells: Cells, template_format: str | None
) -> list[CheckResult]:
    """Every identity of one table, in the order identities.csv lists them."""
    results: list[CheckResult] = []
    for identity in identities():
        if identity.table != table:
            continue
        subjects: Sequence[str]
        if identity.for_each == "printed row":
            order = _row_order(table)
            subjects = sorted(
                {row for row, _ in cells}, key=lambda r: order.get(r, len(order))
            )
        else:
            subjects = _subjects(identity, template_format)
        results.extend(
            _evaluate(
                identity.check,
                table,
                subject,
                cells,
                *_keys(identity, template_format, subject),
            )
            for subject in subjects
        )
    return results


@cache
def identities_of_row(
    table: str, row: str, template_format: str | None
) -> frozenset[str]:
    """The column-by-column identities of ``table`` whose parts or totals hold ``row``."""
    catalogue = table_catalogue(table)
    fmt = template_format or _LATEST
    return frozenset(
        identity.check
        for identity in identities()
        if identity.table == table
        and identity.for_each == "column"
        and row
        in catalogue.leaves(identity.parts + identity.totals, catalogue.row_kind, fmt)
    )


def _axis_kinds(identity: Identity) -> tuple[str, str]:
    """The kinds of entry an identity's parts are, and its subjects are."""
    row_kind = table_catalogue(identity.table).row_kind
    if identity.for_each == "column":
        return row_kind, "column"
    return "column", row_kind


@cache
def _subjects(identity: Identity, template_format: str | None) -> tuple[str, ...]:
    """Every column, or every row, of the template in this format."""
    entries = table_catalogue(identity.table).of_kind(
        _axis_kinds(identity)[1], template_format or _LATEST
    )
    return tuple(dict.fromkeys(e.code for e in entries))


@cache
def _keys(
    identity: Identity, template_format: str | None, subject: str
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The cells of the parts and of the totals of one subject, as (row, column)."""
    catalogue = table_catalogue(identity.table)
    kind = _axis_kinds(identity)[0]
    fmt = template_format or _LATEST
    parts = catalogue.leaves(identity.parts, kind, fmt)
    totals = catalogue.leaves(identity.totals, kind, fmt)
    if identity.for_each == "column":
        return (
            tuple((part, subject) for part in parts),
            tuple((total, subject) for total in totals),
        )
    return (
        tuple((subject, part) for part in parts),
        tuple((subject, total) for total in totals),
    )


@cache
def _row_order(table: str) -> dict[str, int]:
    """Row code → its place in the template, counting both formats' rows."""
    catalogue = table_catalogue(table)
    codes = dict.fromkeys(e.code for e in catalogue.of_kind(catalogue.row_kind))
    return {code: i for i, code in enumerate(codes)}
