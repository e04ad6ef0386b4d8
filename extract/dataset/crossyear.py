"""Checks across years: what an agency carried forward in Y is what it carried over in Y+1.

Table 三 prints 结转下年度继续办理 (carried_forward) at the end of a year and
上年结转政府信息公开申请数量 (carried_over) at the start of the next: for every agency with
reports of consecutive years they must agree, column by column. Disagreements are flagged,
never corrected.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from extract.dataset.store import release_freed_memory
from nianbao_common.storage import RemotePath, arrow_path

FORWARD, OVER = "carried_forward", "carried_over"
_COLUMNS = ["agency_id", "year", "next_year", "column", FORWARD, OVER, "status"]
# Reports read at once, at most (unless two years alone hold more).
WINDOW_REPORTS = 20_000


def _dataset(path: Path | RemotePath) -> ds.Dataset:
    where, filesystem = arrow_path(path)
    return ds.dataset(where, filesystem=filesystem, partitioning="hive")


def cross_year_checks(version_dir: Path | RemotePath) -> pd.DataFrame:
    """One row per agency, consecutive year pair and applicant column.

    Read a few consecutive years at a time (up to WINDOW_REPORTS reports): the driver's
    memory stays that of a window however many years the dataset holds, and a small
    dataset is read at once.
    """
    applications = version_dir / "applications"
    if not applications.is_dir():
        return pd.DataFrame(columns=_COLUMNS)
    cells, reports = _dataset(applications), _dataset(version_dir / "reports")
    per_year = Counter(reports.to_table(columns=["year"])["year"].to_pylist())
    parts = []
    for window in _windows(sorted(per_year), per_year):
        parts.append(_window_checks(cells, reports, window))
        release_freed_memory()
    checks = pd.concat(parts) if parts else pd.DataFrame(columns=_COLUMNS)
    return checks.sort_values(["agency_id", "year", "column"]).reset_index(drop=True)


def _windows(years: list[int], per_year: Counter) -> list[list[int]]:
    """Runs of consecutive years, each ending where the next begins (so every pair of
    consecutive years falls in one run), of at most WINDOW_REPORTS reports or two years."""
    windows = []
    start = 0
    while start < len(years) - 1:
        end = start + 1
        total = per_year[years[start]] + per_year[years[end]]
        while (
            end + 1 < len(years) and total + per_year[years[end + 1]] <= WINDOW_REPORTS
        ):
            end += 1
            total += per_year[years[end]]
        windows.append(years[start : end + 1])
        start = end
    return windows


def _window_checks(
    cells_set: ds.Dataset, reports_set: ds.Dataset, years: list[int]
) -> pd.DataFrame:
    """The checks of the pairs of consecutive years among ``years``."""
    in_window = ds.field("year").isin(pa.array(years))
    cells = cells_set.to_table(
        columns=["agency_id", "year", "row", "column", "value"],
        filter=in_window & ds.field("row").isin(pa.array([FORWARD, OVER])),
    ).to_pandas()
    reports = reports_set.to_table(
        columns=["agency_id", "year"], filter=in_window
    ).to_pandas()
    for frame in (cells, reports):
        frame["agency_id"] = frame["agency_id"].astype(str)
        frame["year"] = frame["year"].astype("int64")
    cells["row"] = cells["row"].astype(str)
    cells["column"] = cells["column"].astype(str)
    pairs = reports.merge(
        reports.assign(year=reports["year"] - 1), on=["agency_id", "year"]
    ).assign(next_year=lambda f: f["year"] + 1)
    forward = cells[cells["row"] == FORWARD][["agency_id", "year", "column", "value"]]
    over = cells[cells["row"] == OVER][["agency_id", "year", "column", "value"]]
    over = over.assign(year=over["year"] - 1)
    keys = pd.concat(
        [
            forward[["agency_id", "year", "column"]],
            over[["agency_id", "year", "column"]],
        ]
    ).drop_duplicates()
    checks = (
        pairs.merge(keys, on=["agency_id", "year"])
        .merge(forward.rename(columns={"value": FORWARD}), how="left",
               on=["agency_id", "year", "column"])
        .merge(over.rename(columns={"value": OVER}), how="left",
               on=["agency_id", "year", "column"])
    )  # fmt: skip
    both = checks[FORWARD].notna() & checks[OVER].notna()
    checks["status"] = "incomplete"
    checks.loc[both & (checks[FORWARD] == checks[OVER]), "status"] = "pass"
    checks.loc[both & (checks[FORWARD] != checks[OVER]), "status"] = "fail"
    return checks[_COLUMNS]
