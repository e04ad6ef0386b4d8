"""Checks across years: what an agency carried forward in Y is what it carried over in Y+1.

Table 三 prints 结转下年度继续办理 (carried_forward) at the end of a year and
上年结转政府信息公开申请数量 (carried_over) at the start of the next: for every agency with
reports of consecutive years they must agree, column by column. Disagreements are flagged,
never corrected.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from nianbao_common.storage import RemotePath, arrow_path

FORWARD, OVER = "carried_forward", "carried_over"
_COLUMNS = ["agency_id", "year", "next_year", "column", FORWARD, OVER, "status"]


def _dataset(path: Path | RemotePath) -> ds.Dataset:
    where, filesystem = arrow_path(path)
    return ds.dataset(where, filesystem=filesystem, partitioning="hive")


def cross_year_checks(version_dir: Path | RemotePath) -> pd.DataFrame:
    """One row per agency, consecutive year pair and applicant column.

    Read one pair of years at a time: the driver's memory stays that of two years'
    carried rows however many years the dataset holds.
    """
    applications = version_dir / "applications"
    if not applications.is_dir():
        return pd.DataFrame(columns=_COLUMNS)
    cells, reports = _dataset(applications), _dataset(version_dir / "reports")
    years = sorted(set(reports.to_table(columns=["year"])["year"].to_pylist()))
    pairs = [_pair_checks(cells, reports, year) for year in years if year + 1 in years]
    checks = pd.concat(pairs) if pairs else pd.DataFrame(columns=_COLUMNS)
    return checks.sort_values(["agency_id", "year", "column"]).reset_index(drop=True)


def _pair_checks(
    cells_set: ds.Dataset, reports_set: ds.Dataset, year: int
) -> pd.DataFrame:
    """The checks of the agencies with reports of ``year`` and ``year + 1``."""
    both_years = ds.field("year").isin(pa.array([year, year + 1]))
    cells = cells_set.to_table(
        columns=["agency_id", "year", "row", "column", "value"],
        filter=both_years & ds.field("row").isin(pa.array([FORWARD, OVER])),
    ).to_pandas()
    reports = reports_set.to_table(
        columns=["agency_id", "year"], filter=both_years
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
