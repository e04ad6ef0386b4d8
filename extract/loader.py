"""Load the Parquet dataset into pandas, filtered by year, agency or district.

>>> from extract import load
>>> load("applications", year=2023, district="西城区")      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from extract.schema import DATASET_TABLES


def _data_dir(data_dir: Path | str | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    from crawler.paths import data_dir as default_data_dir

    return default_data_dir()


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
    data_dir: Path | str | None = None,
) -> pa.Table:
    """One dataset table as Arrow, filtered before reading (partitions and row groups)."""
    if table not in DATASET_TABLES:
        raise ValueError(f"unknown table {table!r}; one of {', '.join(DATASET_TABLES)}")
    root = _data_dir(data_dir) / "parquet"
    agencies = _as_list(agency)
    districts = _as_list(district)
    if districts is not None:
        in_districts = load_arrow(
            "agencies", data_dir=data_dir, columns=["agency_id", "district"]
        )
        ids = [
            a
            for a, d in zip(*(c.to_pylist() for c in in_districts.columns), strict=True)
            if d in districts
        ]
        agencies = ids if agencies is None else [a for a in agencies if a in ids]
    # Without an agency filter agency_id is read as a dictionary too (a categorical in
    # pandas); with one it stays plain so that row groups are pruned by their statistics.
    file_format = ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(
            dictionary_columns={"agency_id"} if agencies is None else set()
        )
    )
    partitioning = None if table == "agencies" else "hive"
    dataset = ds.dataset(root / table, format=file_format, partitioning=partitioning)
    condition = None
    years = _as_list(year)
    if years is not None and table != "agencies":
        condition = ds.field("year").isin(years)
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
    data_dir: Path | str | None = None,
) -> pd.DataFrame:
    """One dataset table as a pandas frame (``year`` as an integer column).

    ``agency`` takes agency ids; ``district`` takes district names such as 西城区.
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
    data_dir: Path | str | None = None,
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
    cells["cell"] = cells["row"].astype(str) + ":" + cells["column"].astype(str)
    # pivot, not pivot_table: pivot_table(dropna=False) fills in every agency for every
    # year, reports that do not exist; the dataset holds one value per report and cell.
    wide = cells.pivot(index=["agency_id", "year"], columns="cell", values="value")
    order = list(dict.fromkeys(cells["cell"]))
    return wide.reindex(columns=order).reset_index().rename_axis(columns=None)
