"""Staged rows: the Arrow files in which a batch's rows go from a worker to the driver.

Workers write the rows of each batch under a staging directory (or a prefix on object
storage) themselves and send back only each document's state: the driver never holds the
cells of the whole run, and reads them back a table and year at a time when it writes the
year files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from extract.dataset.guarded import extract_guarded
from extract.dataset.plan import SourceState
from extract.dataset.rows import YEAR_TABLES, Extracted, Source, to_arrow
from nianbao_common.limits import Limits
from nianbao_common.storage import RemotePath, replacing


@dataclass
class Staged:
    """What a worker sends back for a batch: each document's state and cell counts."""

    states: list[SourceState]
    cells: dict[str, int] = field(default_factory=dict)

    def add(self, states: Iterable[SourceState], cells: Mapping[str, int]) -> None:
        """Count in another batch's states and cells (a run's total, batch by batch)."""
        self.states.extend(states)
        for table, count in cells.items():
            self.cells[table] = self.cells.get(table, 0) + count


def state_of(result: Extracted, content: str, code: str) -> SourceState:
    """The state the dataset keeps of an extracted document."""
    return SourceState(
        url=result.url,
        site=result.site,
        content=content,
        code=code,
        converters=result.converters,
        agency_id=result.agency_id,
        year=result.year,
        status=result.status,
        fetched_at=result.fetched_at,
        agency=result.agency,
        error=result.error,
        failure=result.failure,
    )


def write_staged(
    staging: Path | RemotePath, name: str, results: list[Extracted]
) -> dict[str, int]:
    """Write a batch's rows as ``staging/<table>/year=Y.<name>.arrow`` with ``_url``.

    Arrow IPC streams, uncompressed: the files live for one run, and writing Parquet for
    every table, year and batch cost more than half of what the parsing did. A stream,
    without the IPC file format's footer, opens in half the time, and the driver opens
    thousands in a large rerun. Each file appears whole or not at all, so a worker
    killed while writing leaves nothing to misread. A folder a table, not a table and
    year: creating a folder costs as much as writing a small file, and the demo's 27
    reports were written into 54 of them.
    """
    counts: dict[str, int] = {}
    by_year: dict[int, list[Extracted]] = {}
    for result in results:
        if result.rows and result.year is not None:
            by_year.setdefault(result.year, []).append(result)
    for year, members in by_year.items():
        urls = pa.array([r.url for r in members], pa.string())
        for table in YEAR_TABLES:
            sizes = np.array([len(r.rows[table]["agency_id"]) for r in members])
            if not sizes.any():
                continue
            # Each row's document, as an index into the batch's URLs: a URL a row
            # made the staged files several times larger than their cells.
            documents = np.repeat(np.arange(len(members), dtype=np.int32), sizes)
            rows = to_arrow(
                table,
                [r.rows[table] for r in members],
                {"_url": pa.DictionaryArray.from_arrays(documents, urls)},
            )
            target = staging / table / staged_name(year, name)
            with (
                replacing(target) as temporary,
                temporary.open("wb") as sink,
                pa.ipc.new_stream(sink, rows.schema) as writer,
            ):
                writer.write_table(rows)
            counts[table] = counts.get(table, 0) + rows.num_rows
    return counts


def staged_name(year: int, batch: str) -> str:
    """The file name of a batch's staged rows of one year (``year=Y.<batch>.arrow``)."""
    return f"year={year}.{batch}.arrow"


def staged_batch(file_name: str) -> str:
    """The batch that wrote a staged file, from its name (``staged_name``'s inverse)."""
    return file_name.split(".", 1)[1].removesuffix(".arrow")


def read_staged(path: Path | RemotePath) -> pa.Table:
    """The rows of one staged file (memory-mapped on disk)."""
    if isinstance(path, RemotePath):
        with path.open("rb") as source:
            return pa.ipc.open_stream(source).read_all()
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def extract_batch(
    name: str,
    sources: Sequence[Source],
    contents: Sequence[str],
    code: str,
    limits: Limits,
    staging: Path | RemotePath,
    started: Callable[[int, float], None] | None = None,
) -> Staged:
    """Extract a batch of documents and stage their rows as ``name``; ``started`` is told
    each document's index and time limit as it starts."""
    results = []
    for index, source in enumerate(sources):
        if started:
            started(index, limits.document_seconds)  # while its bytes are read
        told = None if started is None else partial(started, index)
        results.append(extract_guarded(source, limits, told))
    cells = write_staged(staging, name, results)
    states = [
        state_of(r, content, code) for r, content in zip(results, contents, strict=True)
    ]
    return Staged(states, cells)
