"""Load the Parquet dataset into pandas, filtered by year, agency or district.

The dataset is read at a data location, a directory or a URL (``s3://bucket/prefix``):

>>> from extract import load
>>> load("applications", year=2023, district="西城区")      # doctest: +SKIP
>>> load("reports", data_dir="s3://bucket/nianbao")          # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from extract.schema import DATASET_TABLES
from nianbao_common.paths import data_location
from nianbao_common.storage import RemotePath, arrow_path

# Tables kept as one file rather than one per year.
UNPARTITIONED = ("agencies", "cross_year_checks")
# The pointer that names the current version (extract/dataset/store.py writes it).
POINTER = "parquet/CURRENT"


class DatasetNotFoundError(FileNotFoundError):
    """No published dataset where the reader looked."""


class UnknownFilterError(ValueError):
    """A filter value that names nothing in the dataset."""


def current_version(
    data_dir: Path | RemotePath | str | None = None,
) -> Path | RemotePath:
    """The folder of the current dataset version at a data location (path or URL)."""
    base = data_location(data_dir)
    pointer = base / POINTER
    if pointer.exists():
        root = base / "parquet-versions" / pointer.read_text("utf-8").strip()
    else:
        # On disk before the first pointer: the parquet symlink names the version.
        root = base / "parquet"
    if not (root / "reports").is_dir():
        how = (
            "the data_dir= argument"
            if data_dir is not None
            else "NIANBAO_DATA, or ./data when it is unset (pass data_dir= to choose)"
        )
        raise DatasetNotFoundError(
            f"no dataset at {root.resolve()} (chosen by {how}); "
            "`nianbao run --demo` builds a demo dataset, `nianbao extract` one "
            "from your archive"
        )
    return root


def _dataset(path: Path | RemotePath, **options) -> ds.Dataset:
    where, filesystem = arrow_path(path)
    return ds.dataset(where, filesystem=filesystem, **options)


def _closest(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(set(known)), n=5, cutoff=0.3)
    return ", ".join(close) if close else "none is close"


def _districts(values: list, table: pa.Table) -> set[str]:
    """District names for 西城区, 西城 or 110102; an unknown value raises."""
    pairs = {
        (d, c)
        for d, c in zip(
            table["district"].to_pylist(),
            table["division_code"].to_pylist(),
            strict=True,
        )
        if d
    }
    chosen = set()
    for value in map(str, values):
        found = {d for d, c in pairs if value in (d, c)} or {
            d for d, _ in pairs if d.startswith(value) and len(d) - len(value) == 1
        }
        if not found:
            raise UnknownFilterError(
                f"no district {value!r} in the dataset; closest: "
                f"{_closest(value, [d for d, _ in pairs])}"
            )
        chosen |= found
    return chosen


def _agency_ids(values: list, table: pa.Table) -> list[str]:
    """Agency ids for ids or names (full, or a part that names one agency)."""
    names = dict(
        zip(table["agency_id"].to_pylist(), table["agency"].to_pylist(), strict=True)
    )
    chosen: list[str] = []
    for value in map(str, values):
        if value in names:
            chosen.append(value)
            continue
        exact = [a for a, name in names.items() if name == value]
        partial = [a for a, name in names.items() if name and value in name]
        found = exact or (partial if len(partial) == 1 else [])
        if not found:
            if len(partial) > 1:
                raise UnknownFilterError(
                    f"agency {value!r} names {len(partial)} agencies: "
                    + ", ".join(sorted(names[a] for a in partial)[:8])
                )
            raise UnknownFilterError(
                f"no agency {value!r} (id or name) in the dataset; closest: "
                f"{_closest(value, [n for n in names.values() if n])}"
            )
        chosen += found
    return chosen


def _as_list(value) -> list | None:
    if value is None:
        return None
    # numbers.Integral: a year taken from a frame is a numpy integer, not an int.
    return [value] if isinstance(value, str | Integral) else list(value)


def load_arrow(
    table: str,
    *,
    year: int | Iterable[int] | None = None,
    agency: str | Iterable[str] | None = None,
    district: str | Iterable[str] | None = None,
    columns: list[str] | None = None,
    data_dir: Path | RemotePath | str | None = None,
) -> pa.Table:
    """One dataset table as Arrow, filtered before reading (partitions and row groups)."""
    if table not in DATASET_TABLES:
        raise ValueError(f"unknown table {table!r}; one of {', '.join(DATASET_TABLES)}")
    root = current_version(data_dir)
    agencies = _as_list(agency)
    districts = _as_list(district)
    if agencies is not None or districts is not None:
        known = _dataset(root / "agencies").to_table(
            columns=["agency_id", "agency", "district", "division_code"]
        )
        if agencies is not None:
            agencies = _agency_ids(agencies, known)
        if districts is not None:
            names = _districts(districts, known)
            ids = [
                a
                for a, d in zip(
                    known["agency_id"].to_pylist(),
                    known["district"].to_pylist(),
                    strict=True,
                )
                if d in names
            ]
            agencies = ids if agencies is None else [a for a in agencies if a in ids]
    # Without an agency filter agency_id is read as a dictionary too (a categorical in
    # pandas); with one it stays plain so that row groups are pruned by their statistics.
    file_format = ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(
            dictionary_columns={"agency_id"} if agencies is None else set()
        )
    )
    partitioning = None if table in UNPARTITIONED else "hive"
    dataset = _dataset(root / table, format=file_format, partitioning=partitioning)
    condition = None
    years = _as_list(year)
    if years is not None and table not in UNPARTITIONED:
        condition = ds.field("year").isin(years)
        present = {int(p.name.split("=", 1)[1]) for p in (root / table).glob("year=*")}
        if missing := sorted(set(map(int, years)) - present):
            warnings.warn(
                f"no {table} for year {', '.join(map(str, missing))} in the dataset; "
                f"it holds {', '.join(map(str, sorted(present))) or 'no year'}",
                stacklevel=3,
            )
    if agencies is not None:
        by_agency = (
            ds.field("agency_id") == agencies[0]
            if len(agencies) == 1
            else ds.field("agency_id").isin(pa.array(agencies, pa.string()))
        )
        condition = by_agency if condition is None else condition & by_agency
    return dataset.to_table(columns=columns, filter=condition)


def load(
    table: str,
    *,
    year: int | Iterable[int] | None = None,
    agency: str | Iterable[str] | None = None,
    district: str | Iterable[str] | None = None,
    columns: list[str] | None = None,
    data_dir: Path | RemotePath | str | None = None,
) -> pd.DataFrame:
    """One dataset table as a pandas frame (``year`` as an integer column).

    ``agency`` takes agency ids or names (a part of a name that names one agency will
    do); ``district`` takes 西城区, 西城 or the division code 110102. A value that names
    nothing raises ``UnknownFilterError`` with the closest known values; a year with no
    data warns and gives no rows.
    """
    frame = load_arrow(
        table,
        year=year,
        agency=agency,
        district=district,
        columns=columns,
        data_dir=data_dir,
    ).to_pandas()
    if "year" in frame.columns:
        frame["year"] = frame["year"].astype("int32")
    return frame


def load_applications_wide(
    *,
    year: int | Iterable[int] | None = None,
    agency: str | Iterable[str] | None = None,
    district: str | Iterable[str] | None = None,
    data_dir: Path | RemotePath | str | None = None,
) -> pd.DataFrame:
    """Table 三 one row per report (agency_id, year), one column per ``row:column`` code."""
    cells = load(
        "applications",
        year=year,
        agency=agency,
        district=district,
        columns=["agency_id", "year", "row", "column", "value"],
        data_dir=data_dir,
    )
    return wide_cells(cells)


def _codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and the values they stand for (categories, or sorted uniques)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(np.int64), column.cat.categories
    codes, uniques = pd.factorize(column, sort=True)
    return codes.astype(np.int64), pd.Index(uniques)


def wide_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Long cells (agency_id, year, row, column, value) → one row per report.

    Columns are ``row:column`` in the order cells first appear (template order); rows
    are the reports present, sorted by agency and year. Built on integer codes with
    numpy, never a Python loop over cells (a pandas pivot of "row:column" strings took
    over 4 s for 3 million cells).
    """
    agency_codes, agencies = _codes(cells["agency_id"])
    row_codes, rows = _codes(cells["row"])
    column_codes, columns = _codes(cells["column"])
    years = cells["year"].to_numpy(np.int64)
    first_year = int(years.min()) if len(years) else 0
    span = int(years.max()) - first_year + 1 if len(years) else 1
    # Keys are small integers (agency × year, row × column): lookup tables, not sorts.
    report_of_cell = agency_codes * span + (years - first_year)
    present = np.zeros(len(agencies) * span, dtype=bool)
    present[report_of_cell] = True
    report_keys = np.flatnonzero(present)  # sorted by agency, then year
    report_position = np.cumsum(present) - 1
    cell_of_row = row_codes * len(columns) + column_codes
    ordered = pd.unique(cell_of_row)  # in order of first appearance
    cell_position = np.empty(len(rows) * len(columns), dtype=np.int64)
    cell_position[ordered] = np.arange(len(ordered))
    values = np.full((len(report_keys), len(ordered)), np.nan)
    values[report_position[report_of_cell], cell_position[cell_of_row]] = cells[
        "value"
    ].to_numpy(np.float64, na_value=np.nan)
    names = [
        f"{rows[key // len(columns)]}:{columns[key % len(columns)]}" for key in ordered
    ]
    agency_id = (
        pd.Categorical.from_codes(report_keys // span, dtype=cells["agency_id"].dtype)
        if isinstance(cells["agency_id"].dtype, pd.CategoricalDtype)
        else pd.Series(
            np.asarray(agencies)[report_keys // span], dtype=cells["agency_id"].dtype
        )
    )
    # A Series takes the cells' dtype whether numpy's or an extension's (Int16, Arrow).
    year = pd.Series(report_keys % span + first_year, dtype=cells["year"].dtype)
    front = pd.DataFrame({"agency_id": agency_id, "year": year})
    return pd.concat([front, pd.DataFrame(values, columns=names)], axis=1)
