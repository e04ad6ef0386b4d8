"""load_applications_wide on millions of cells, beside reading the same rows from one file.

Generates a dataset of table 三 cells (the template's rows × columns for thousands of
agencies over three years, some cells missing or blank), then times, methods taking turns
and the best of three counting:

- reading the same cells from one Parquet file (pyarrow → pandas): the baseline;
- ``load_applications_wide()`` (vectorised on category codes);
- the pandas pivot of "row:column" strings it replaced.

Target (issue 18): the wide table within 3× the one-file read, on ≥ 3 million cells.

    python3 benchmarks/wide_benchmark.py [--reports 6000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq  # noqa: E402

from extract.loader import load, load_applications_wide  # noqa: E402
from tests.test_wide import pivot_reference, write_cells  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=6000, help="agencies per year")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="nianbao-wide-"))
    write_cells(data_dir, reports=args.reports)
    columns = ["agency_id", "year", "row", "column", "value"]
    cells = load("applications", columns=columns, data_dir=data_dir)
    one_file = data_dir / "one.parquet"
    pq.write_table(pq.read_table(data_dir / "parquet" / "applications"), one_file)
    methods = {
        "one Parquet file → pandas": lambda: pq.read_table(one_file).to_pandas(),
        "load_applications_wide()": lambda: load_applications_wide(data_dir=data_dir),
        "pandas pivot of row:column strings": lambda: pivot_reference(
            load("applications", columns=columns, data_dir=data_dir)
        ),
    }
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(3):
        for name, method in methods.items():
            started = time.perf_counter()
            method()
            best[name] = min(best[name], time.perf_counter() - started)
    baseline = best["one Parquet file → pandas"]
    print(f"{len(cells):,} cells, {args.reports * 3:,} reports")
    for name, seconds in best.items():
        print(
            f"  {name:<36} {seconds:6.2f} s  {seconds / baseline:5.2f}x the one-file read"
        )
    print("target: load_applications_wide ≤ 3x the one-file read")


if __name__ == "__main__":
    main()
