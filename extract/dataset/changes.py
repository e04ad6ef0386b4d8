"""What an extract run changed: reports added, re-extracted and removed, statuses, cells.

Cells are compared by (agency_id, row, column) within each rewritten agency-year; a cell
that appears or disappears counts as changed too, with the missing side null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extract.dataset.plan import SourceState

CHANGE_SCHEMA = pa.schema(
    [
        ("agency_id", pa.string()),
        ("year", pa.int64()),
        ("table", pa.string()),
        ("row", pa.string()),
        ("column", pa.string()),
        ("old", pa.float64()),
        ("new", pa.float64()),
    ]
)


@dataclass
class Changes:
    """The difference between the previous version and the new one."""

    added: int = 0
    re_extracted: int = 0
    removed: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "ok → partial": n
    cells_changed: dict[str, int] = field(default_factory=dict)  # per table
    cells: list[dict] = field(default_factory=list)

    def as_record(self) -> dict:
        """The counts, for the run record and version.json (not the cell list)."""
        return {
            "reports_added": self.added,
            "reports_re_extracted": self.re_extracted,
            "reports_removed": self.removed,
            "status_transitions": self.transitions,
            "cells_changed": self.cells_changed,
        }

    def render(self) -> str:
        """Two or three lines for the run summary."""
        lines = [
            f"changes: {self.added} reports added, {self.re_extracted} re-extracted, "
            f"{self.removed} removed; cells changed: "
            + (
                ", ".join(f"{t} {n}" for t, n in self.cells_changed.items() if n)
                or "none"
            )
        ]
        if self.transitions:
            lines.append(
                "status changes: "
                + ", ".join(f"{k} {n}" for k, n in sorted(self.transitions.items()))
            )
        return "\n".join(lines)

    def add_cells(self, other: Changes) -> None:
        """Add the changed cells another part of the run found (other tables or years)."""
        self.cells.extend(other.cells)
        for table, count in other.cells_changed.items():
            self.cells_changed[table] = self.cells_changed.get(table, 0) + count

    def cell_table(self) -> pa.Table:
        """The changed cells as an Arrow table."""
        return pa.Table.from_pylist(self.cells, schema=CHANGE_SCHEMA)


def report_changes(
    old_primary: Mapping[tuple[str, int], SourceState],
    primary: Mapping[tuple[str, int], SourceState],
    rewritten: set[tuple[str, int]],
) -> Changes:
    """Reports added, re-extracted and removed, and their status transitions."""
    changes = Changes()
    transitions: Counter[str] = Counter()
    for key in rewritten:
        old, new = old_primary.get(key), primary.get(key)
        if old is None and new is not None:
            changes.added += 1
        elif new is None:
            changes.removed += 1
        else:
            assert old is not None
            changes.re_extracted += 1
            if old.status != new.status:
                transitions[f"{old.status} → {new.status}"] += 1
    changes.transitions = dict(transitions)
    return changes


_KEYS = ["agency_id", "row", "column"]
# The columns of a cell table that ``cell_changes`` compares.
COMPARED_COLUMNS = [*_KEYS, "value"]


def _cells(rows: pa.Table | None, compared: set[str], side: str) -> pa.Table:
    """The compared agencies' cells as plain strings, with a column saying they exist."""
    schema = pa.schema(
        [*(pa.field(k, pa.string()) for k in _KEYS), ("value", pa.float64())]
    )
    if rows is None or rows.num_rows == 0:
        cells = schema.empty_table()
    else:
        cells = rows.select(schema.names).cast(schema)
        chosen = pc.is_in(
            cells["agency_id"], value_set=pa.array(sorted(compared), pa.string())
        )
        cells = cells.filter(chosen)
    return cells.rename_columns([*_KEYS, f"value_{side}"]).append_column(
        f"in_{side}", pa.array([True] * cells.num_rows, pa.bool_())
    )


def cell_changes(
    changes: Changes,
    table: str,
    year: int,
    old: pa.Table | None,
    new: pa.Table | None,
    compared: set[str],
) -> None:
    """Add the cells of ``compared`` agencies that differ between old and new rows."""
    before, after = _cells(old, compared, "old"), _cells(new, compared, "new")
    if _same_cells(before, after):
        # A rerun that changed nothing, the usual case, needs no join.
        changes.cells_changed.setdefault(table, 0)
        return
    # One Arrow join: a run that re-extracts everything compares millions of cells, and
    # Python objects for each of them would cost more memory than the rest of the run.
    joined = before.join(after, keys=_KEYS, join_type="full outer")
    was, now = joined["value_old"], joined["value_new"]
    same_value = pc.or_kleene(
        pc.fill_null(pc.equal(was, now), False),
        pc.and_(pc.is_null(was), pc.is_null(now)),
    )
    both = pc.and_(pc.is_valid(joined["in_old"]), pc.is_valid(joined["in_new"]))
    diff = joined.filter(pc.invert(pc.and_(both, same_value)))
    diff = diff.sort_by([(k, "ascending") for k in _KEYS])
    changes.cells.extend(
        {
            "agency_id": cell["agency_id"],
            "year": year,
            "table": table,
            "row": cell["row"],
            "column": cell["column"],
            "old": cell["value_old"],
            "new": cell["value_new"],
        }
        for cell in diff.select([*_KEYS, "value_old", "value_new"]).to_pylist()
    )
    changed = diff.num_rows
    changes.cells_changed[table] = changes.cells_changed.get(table, 0) + changed


def _same_cells(before: pa.Table, after: pa.Table) -> bool:
    """Whether both sides hold the same cells in the same order, agency by agency.

    ``before`` is read from the previous version's year file, which is written sorted by
    agency: only ``after`` is put in that order (were ``before`` not in it, the sides
    would differ and the caller's join would compare them).
    """
    if before.num_rows != after.num_rows:
        return False
    # Each agency's cells keep their template order: a stable sort by agency lines up
    # the two sides whatever order their agencies came in. The keys and the value are
    # compared; the side's name in the value column and its in_ flag are not.
    compared = len(_KEYS) + 1
    return all(
        left.equals(right)
        for left, right in zip(
            before.columns[:compared], by_agency(after).columns[:compared], strict=True
        )
    )


def by_agency(rows: pa.Table) -> pa.Table:
    """The rows in agency order, each agency's rows in the order they came (a stable sort:
    a report's cells stay in template order)."""
    # Sorting the few distinct agencies and then the rows by their integer rank took
    # half the time of sorting the rows' strings.
    agencies = rows["agency_id"].combine_chunks().dictionary_encode()
    rank = pc.rank(agencies.dictionary, sort_keys="ascending").to_numpy()
    order = np.argsort(rank[agencies.indices.to_numpy()], kind="stable")
    return rows.take(pa.array(order))
