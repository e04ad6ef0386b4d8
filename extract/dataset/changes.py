"""What an extract run changed: reports added, re-extracted and removed, statuses, cells.

Cells are compared by (agency_id, row, column) within each rewritten agency-year; a cell
that appears or disappears counts as changed too, with the missing side null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

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


def _cells(rows: pa.Table | None, compared: set[str]) -> pd.DataFrame:
    if rows is None or rows.num_rows == 0:
        return pd.DataFrame(
            {name: pd.Series(dtype=object) for name in [*_KEYS, "value"]}
        )
    frame = rows.select([*_KEYS, "value"]).to_pandas()
    for name in _KEYS:
        frame[name] = frame[name].astype(str)
    return frame[frame["agency_id"].isin(compared)]


def cell_changes(
    changes: Changes,
    table: str,
    year: int,
    old: pa.Table | None,
    new: pa.Table | None,
    compared: set[str],
) -> None:
    """Add the cells of ``compared`` agencies that differ between old and new rows."""
    # One vectorised outer join: a run that re-extracts everything compares millions of
    # cells, and building Python dicts of them cost more than the extraction's writing.
    merged = _cells(old, compared).merge(
        _cells(new, compared), on=_KEYS, how="outer", suffixes=("_old", "_new"),
        indicator=True,
    )  # fmt: skip
    was, now = merged["value_old"], merged["value_new"]
    differs = (merged["_merge"] != "both") | ~((was == now) | (was.isna() & now.isna()))
    diff = merged[differs].sort_values(_KEYS)
    changes.cells.extend(
        {
            "agency_id": agency,
            "year": year,
            "table": table,
            "row": row,
            "column": column,
            "old": None if pd.isna(old_value) else float(old_value),
            "new": None if pd.isna(new_value) else float(new_value),
        }
        for agency, row, column, old_value, new_value in zip(
            diff["agency_id"],
            diff["row"],
            diff["column"],
            diff["value_old"],
            diff["value_new"],
            strict=True,
        )  # fmt: skip
    )
    changed = len(diff)
    changes.cells_changed[table] = changes.cells_changed.get(table, 0) + changed
