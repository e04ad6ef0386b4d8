"""One table-year file of a new dataset version, assembled agency chunk by agency chunk.

A year file holds the rows kept from the previous version and the rows the workers staged
for the reports extracted again, sorted by agency. Reading both whole held memory in
proportion to the archive (a rerun of 20,000 reports took the driver past 1.1 GB); here
the memory is bounded by ``MERGE_BYTES`` and ``MERGE_AGENCIES``. The staged rows are
split by agency chunk in one pass: in memory when they are no larger than
``MERGE_BYTES`` (a year of one chunk is read straight from the staged files), else into
local spill files. Then runs of chunks are merged with the previous version's rows of
the same agencies (only the row groups whose statistics overlap them: year files are
sorted by agency), compared for what changed, and appended to the new file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extract.catalogue import TABLES
from extract.dataset.changes import COMPARED_COLUMNS, Changes, by_agency, cell_changes
from extract.dataset.rows import arrow_schema
from extract.dataset.staging import read_staged
from extract.dataset.store import (
    ROW_GROUP_ROWS,
    Where,
    open_parquet,
    parquet_writer,
    release_freed_memory,
)
from nianbao_common.storage import size_of

# Staged rows are spilled in chunks of this many agencies; consecutive chunks are merged
# while their spilled rows stay under MERGE_BYTES and their agencies under MERGE_AGENCIES
# (the previous version's rows of those agencies are read too). A table of cells merges
# hundreds of agencies at once, the narrative sections a few dozen.
CHUNK_AGENCIES = 32
MERGE_BYTES = 24 << 20
MERGE_AGENCIES = 512
# Spill files open at once at most: a larger year spills larger chunks.
MAX_CHUNKS = 256


@dataclass(frozen=True)
class YearFile:
    """What goes into one table-year file of the new version."""

    table: str
    year: int
    previous: Where | None
    """The previous version's file, None when it has none."""
    keep_previous: bool
    """False when nothing is reused: every row comes from the staged files."""
    replaced: frozenset[str]
    """Agencies whose previous rows are dropped (extracted again, or gone)."""
    added: frozenset[str]
    """Agencies whose staged rows enter the file."""
    rejected: frozenset[str]
    """Documents extracted in this run whose staged rows stay out of the file (not the
    primary document of their agency-year)."""
    compared: frozenset[str]
    """Agencies in both versions, whose cells are compared for what changed."""
    synthetic: bool


def assemble_year(
    target: Where, year_file: YearFile, staged: Sequence[Where], changes: Changes
) -> int:
    """Write ``target`` from the previous rows and the staged ones; returns the rows.

    Nothing is written when no row enters the file.
    """
    previous = _PreviousFile.open(year_file.previous)
    kept = set()
    if previous is not None and year_file.keep_previous:
        kept = previous.agencies() - year_file.replaced
    agencies = sorted(kept | year_file.added)
    if not agencies:
        return 0
    schema = arrow_schema(year_file.table)
    compare = year_file.table in TABLES and previous is not None
    written = 0
    with ExitStack() as stack:
        chunk = max(CHUNK_AGENCIES, -(-len(agencies) // MAX_CHUNKS))
        merges: Iterable[tuple[list[str], pa.Table | None]]
        if len(agencies) <= chunk:
            # One chunk (the demo's years, a small nightly's): spilling it only to read
            # it back whole would cost more than the merge.
            merges = [(agencies, _one_chunk(staged, year_file, agencies, schema))]
        elif sum(size_of(path) for path in staged) <= MERGE_BYTES:
            # Rows that fit one merge are split by chunk in memory: writing and reading
            # back spill files cost a rerun of 10,000 reports 4 s of its 9 s assembly.
            merges = _split_in_memory(staged, year_file, agencies, chunk, schema)
        else:
            spill = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="chunks-"))
            )
            _spill_staged(staged, year_file, agencies, chunk, schema, spill)
            merges = (
                (
                    agencies[first * chunk : (last + 1) * chunk],
                    _read_spill(spill, range(first, last + 1)),
                )
                for first, last in _merged_chunks(spill, len(agencies), chunk)
            )
        writer = None
        # Without kept rows, the previous file is read only to compare cells with.
        reads = previous if year_file.keep_previous or compare else None
        columns = None if year_file.keep_previous else COMPARED_COLUMNS
        for members, new in merges:
            old = reads.rows(members, columns) if reads is not None else None
            compared = year_file.compared.intersection(members)
            if compare and compared:
                cell_changes(
                    changes, year_file.table, year_file.year, old, new, set(compared)
                )
            kept_rows = None
            if old is not None and year_file.keep_previous:
                kept_rows = _agencies_in(old, kept.intersection(members))
            if new is not None and year_file.table == "reports":
                new = _mark_synthetic(new, year_file.synthetic)
            rows = _sorted_by_agency(schema, [kept_rows, new])
            if rows is None:
                continue
            if writer is None:
                writer = stack.enter_context(parquet_writer(target, schema))
            writer.write_table(rows, row_group_size=ROW_GROUP_ROWS)
            written += rows.num_rows
            del rows, new, old, kept_rows
            release_freed_memory()
    return written


def _one_chunk(
    staged: Iterable[Where], year_file: YearFile, agencies: list[str], schema: pa.Schema
) -> pa.Table | None:
    parts = list(_chosen_rows(staged, year_file, schema))
    if not parts:
        return None
    rows = pa.concat_tables(parts)
    _check_planned(pc.unique(rows["agency_id"].cast(pa.string())).to_pylist(), agencies)
    return rows


def _check_planned(found: Iterable[str], planned: Container[str]) -> None:
    """Raise when staged rows hold an agency the plan does not name."""
    # Every staged agency was planned; a stray one is a bug, never dropped.
    stray = sorted(agency for agency in found if agency not in planned)
    if stray:
        raise RuntimeError(f"staged rows of an unplanned agency: {stray[0]}")


class _PreviousFile:
    """The previous version's year file, read by the row groups a chunk needs."""

    def __init__(self, parquet: pq.ParquetFile) -> None:
        self.parquet = parquet
        column = parquet.schema_arrow.get_field_index("agency_id")
        self.ranges: list[tuple[str, str] | None] = []
        for index in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(index).column(column).statistics
            has = stats is not None and stats.has_min_max
            self.ranges.append((str(stats.min), str(stats.max)) if has else None)

    @classmethod
    def open(cls, path: Where | None) -> _PreviousFile | None:
        if path is None or not path.exists():
            return None
        return cls(open_parquet(path))

    def agencies(self) -> set[str]:
        column = self.parquet.read(columns=["agency_id"])["agency_id"]
        return set(pc.unique(column.cast(pa.string())).to_pylist())

    def rows(
        self, members: list[str], columns: list[str] | None = None
    ) -> pa.Table | None:
        low, high = members[0], members[-1]
        groups = [
            index
            for index, span in enumerate(self.ranges)
            if span is None or (span[0] <= high and span[1] >= low)
        ]
        if not groups:
            return None
        read = self.parquet.read_row_groups(groups, columns=columns)
        rows = _agencies_in(read, set(members))
        return rows if rows.num_rows else None


def _agencies_in(rows: pa.Table, agencies: set[str]) -> pa.Table:
    chosen = pc.is_in(
        rows["agency_id"].cast(pa.string()),
        value_set=pa.array(sorted(agencies), pa.string()),
    )
    return rows.filter(chosen)


def _chosen_rows(
    staged: Iterable[Where], year_file: YearFile, schema: pa.Schema
) -> Iterator[pa.Table]:
    """The rows of each staged file that enter the year file, in the file's schema.

    A rerun reads thousands of small staged files per table and year: each is filtered
    by the few URLs it holds (looked up in a Python set), never against the year's
    thousands.
    """
    for path in staged:
        rows = read_staged(path)
        left_out = year_file.rejected.intersection(pc.unique(rows["_url"]).to_pylist())
        if left_out:
            rows = rows.filter(
                pc.invert(pc.is_in(rows["_url"], value_set=pa.array(left_out)))
            )
        if not rows.num_rows:
            continue
        rows = rows.drop_columns(["_url"])
        yield rows if rows.schema == schema else rows.cast(schema)


def _spill_staged(
    staged: Iterable[Where],
    year_file: YearFile,
    agencies: list[str],
    chunk: int,
    schema: pa.Schema,
    spill: Path,
) -> None:
    """Split the chosen staged rows by agency chunk into spill files."""
    chunk_of = {agency: position // chunk for position, agency in enumerate(agencies)}
    with ExitStack() as stack:
        writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        for rows in _chosen_rows(staged, year_file, schema):
            for index, part in _by_chunk(rows, chunk_of):
                if index not in writers:
                    sink = stack.enter_context(_spill_path(spill, index).open("wb"))
                    writers[index] = stack.enter_context(
                        pa.ipc.new_stream(sink, schema)
                    )
                writers[index].write_table(part)


def _split_in_memory(
    staged: Iterable[Where],
    year_file: YearFile,
    agencies: list[str],
    chunk: int,
    schema: pa.Schema,
) -> Iterator[tuple[list[str], pa.Table | None]]:
    """The chosen staged rows by run of chunks (MERGE_AGENCIES), without spill files."""
    parts = list(_chosen_rows(staged, year_file, schema))
    run = max(1, MERGE_AGENCIES // chunk) * chunk
    chunk_of = {agency: position // run for position, agency in enumerate(agencies)}
    found = dict(_by_chunk(pa.concat_tables(parts), chunk_of)) if parts else {}
    for index in range(-(-len(agencies) // run)):
        yield agencies[index * run : (index + 1) * run], found.pop(index, None)


def _by_chunk(
    rows: pa.Table, chunk_of: dict[str, int]
) -> Iterator[tuple[int, pa.Table]]:
    """The rows of each agency chunk, by one stable sort on the chunk and slices."""
    encoded = rows["agency_id"].combine_chunks().dictionary_encode()
    names = encoded.dictionary.to_pylist()
    _check_planned(names, chunk_of)
    lookup = np.asarray([chunk_of[a] for a in names], dtype=np.int64)
    chunks = lookup[encoded.indices.to_numpy()]
    order = np.argsort(chunks, kind="stable")
    ordered = chunks[order]
    present = np.unique(ordered)
    starts = np.searchsorted(ordered, present, side="left")
    ends = np.searchsorted(ordered, present, side="right")
    if len(present) > 1:
        rows = rows.take(pa.array(order))
    for index, start, end in zip(present.tolist(), starts, ends, strict=True):
        yield index, rows.slice(int(start), int(end - start))


def _spill_path(spill: Path, index: int) -> Path:
    return spill / f"chunk-{index:06d}.arrow"


def _merged_chunks(spill: Path, agencies: int, chunk: int) -> list[tuple[int, int]]:
    """Runs of consecutive chunks (first, last) to merge, by spilled size and agencies."""
    runs: list[tuple[int, int]] = []
    count = -(-agencies // chunk)
    first, size = 0, 0
    for index in range(count):
        path = _spill_path(spill, index)
        size += path.stat().st_size if path.exists() else 0
        span = (index - first + 1) * chunk
        if size >= MERGE_BYTES or span >= MERGE_AGENCIES or index == count - 1:
            runs.append((first, index))
            first, size = index + 1, 0
    return runs


def _read_spill(spill: Path, chunks: range) -> pa.Table | None:
    parts = []
    for index in chunks:
        path = _spill_path(spill, index)
        if path.exists():
            with pa.memory_map(str(path)) as source:
                parts.append(pa.ipc.open_stream(source).read_all())
    return pa.concat_tables(parts) if parts else None


def _mark_synthetic(rows: pa.Table, synthetic: bool) -> pa.Table:
    position = rows.schema.get_field_index("synthetic")
    return rows.set_column(
        position,
        rows.schema.field(position),
        pa.array([synthetic] * rows.num_rows, pa.bool_()),
    )


def _sorted_by_agency(
    schema: pa.Schema, parts: list[pa.Table | None]
) -> pa.Table | None:
    chosen = [
        p.select(schema.names).cast(schema)
        for p in parts
        if p is not None and p.num_rows
    ]
    if not chosen:
        return None
    return by_agency(pa.concat_tables(chosen).unify_dictionaries().combine_chunks())
