"""The wide table of table 三, built on category codes, equals the plain pandas pivot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extract.catalogue import table_catalogue
from extract.dataset.rows import arrow_schema
from extract.loader import load, load_applications_wide

ROWS = [e.code for e in table_catalogue("applications").of_kind("row")]
COLUMNS = [e.code for e in table_catalogue("applications").of_kind("column")]


def pivot_reference(cells: pd.DataFrame) -> pd.DataFrame:
    """The straightforward pivot the vectorised version replaces."""
    cells = cells.assign(
        cell=cells["row"].astype(str) + ":" + cells["column"].astype(str)
    )
    wide = cells.pivot(index=["agency_id", "year"], columns="cell", values="value")
    order = list(dict.fromkeys(cells["cell"]))
    return wide.reindex(columns=order).reset_index().rename_axis(columns=None)


def write_cells(data_dir, reports: int, seed: int = 7) -> None:
    """A generated dataset: reports × the template's cells, some blank, some missing."""
    rng = np.random.default_rng(seed)
    root = data_dir / "parquet"
    for year in (2021, 2022, 2023):
        agencies = [f"110102-unit{n:05d}-{n:06x}" for n in rng.permutation(reports)]
        pairs = [(r, c) for r in ROWS for c in COLUMNS]
        keep = rng.random((len(agencies), len(pairs))) > 0.05  # some cells not printed
        chosen = [
            (a, *p)
            for i, a in enumerate(agencies)
            for j, p in enumerate(pairs)
            if keep[i, j]
        ]
        values = rng.integers(0, 500, len(chosen)).astype(float)
        values[rng.random(len(chosen)) < 0.1] = np.nan
        columns = {
            name: [None] * len(chosen) for name in arrow_schema("applications").names
        }
        columns.update(
            agency_id=[c[0] for c in chosen], row=[c[1] for c in chosen],
            column=[c[2] for c in chosen], value=list(values),
        )  # fmt: skip
        table = pa.table(
            {
                f.name: pa.array(columns[f.name], pa.string()).dictionary_encode()
                if pa.types.is_dictionary(f.type)
                else pa.array(columns[f.name], f.type)
                for f in arrow_schema("applications")
            }
        )
        for name, rows in (("applications", table), ("reports", table.slice(0, 0))):
            target = root / name / f"year={year}" / "part-0.parquet"
            target.parent.mkdir(parents=True)
            pq.write_table(
                rows.select(["agency_id"]) if name == "reports" else rows, target
            )
    ids = sorted(f"110102-unit{n:05d}-{n:06x}" for n in range(reports))
    schema = arrow_schema("agencies")
    agencies = {name: [None] * len(ids) for name in schema.names}
    agencies.update(
        agency_id=ids, agency=[f"北京市西城区第{n}局" for n in range(len(ids))]
    )
    (root / "agencies").mkdir()
    pq.write_table(
        pa.table(agencies, schema=schema), root / "agencies" / "part-0.parquet"
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wide")
    write_cells(directory, reports=240)
    return directory


def test_wide_equals_the_pivot_on_over_100_000_cells(data_dir):
    cells = load("applications", columns=["agency_id", "year", "row", "column", "value"],
                 data_dir=data_dir)  # fmt: skip
    assert len(cells) >= 100_000
    pd.testing.assert_frame_equal(
        load_applications_wide(data_dir=data_dir), pivot_reference(cells)
    )


def test_wide_with_an_agency_filter_keeps_plain_ids(data_dir):
    some = load("applications", columns=["agency_id"], data_dir=data_dir)["agency_id"]
    chosen = sorted(set(some.astype(str)))[:5]
    cells = load("applications", agency=chosen,
                 columns=["agency_id", "year", "row", "column", "value"], data_dir=data_dir)  # fmt: skip
    wide = load_applications_wide(agency=chosen, data_dir=data_dir)
    pd.testing.assert_frame_equal(wide, pivot_reference(cells))
    assert len(wide) == 15
