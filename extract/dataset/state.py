"""The state store: which archived document each dataset row came from, kept in each version.

The state is written inside the version it describes (``_nianbao/sources.parquet``), so a
version and the knowledge of what it reused are published, kept and rolled back together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pyarrow as pa

from extract.dataset.plan import SourceState, share_descriptions
from extract.dataset.store import (
    Where,
    read_parquet,
    release_freed_memory,
    write_parquet,
)

SOURCES_FILE = "_nianbao/sources.parquet"
_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("site", pa.string()),
        ("content", pa.string()),
        ("code", pa.string()),
        ("converters", pa.string()),
        ("agency_id", pa.string()),
        ("year", pa.int64()),
        ("status", pa.string()),
        ("fetched_at", pa.string()),
        ("is_primary", pa.bool_()),
        ("agency", pa.string()),
        ("error", pa.string()),
        ("failure", pa.string()),
    ]
)


def save_state(version_dir: Where, states: Iterable[SourceState]) -> None:
    """Write the states of every archived document into a version directory."""
    columns: dict[str, list] = {name: [] for name in _SCHEMA.names}
    for state in states:
        for name, values in columns.items():
            values.append(getattr(state, name))
    columns["converters"] = [
        json.dumps(c, sort_keys=True) for c in columns["converters"]
    ]
    columns["agency"] = [
        json.dumps(a, ensure_ascii=False, sort_keys=True) for a in columns["agency"]
    ]
    write_parquet(pa.table(columns, schema=_SCHEMA), version_dir / SOURCES_FILE)
    del columns
    release_freed_memory()


def load_state(version_dir: Where | None) -> dict[str, SourceState]:
    """The states a version was built from, by URL; empty for none or an older layout."""
    if version_dir is None or not (version_dir / SOURCES_FILE).exists():
        return {}
    table = read_parquet(version_dir / SOURCES_FILE)
    shared: dict[str, dict] = {}
    states = {}
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            row["converters"] = json.loads(row["converters"])
            row["agency"] = json.loads(row["agency"])
            states[row["url"]] = share_descriptions(SourceState(**row), shared)
    del table
    release_freed_memory()
    return states
