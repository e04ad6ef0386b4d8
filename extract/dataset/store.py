"""The versioned Parquet store: complete versions side by side, one current, switched atomically.

Layout under the data directory::

    parquet -> parquet-versions/<id>/          a symlink, switched in one rename
    parquet-versions/<id>/<table>/year=YYYY/part-0.parquet
    parquet-versions/<id>/agencies/part-0.parquet
    parquet-versions/<id>/_nianbao/version.json     written last: the version is complete
    parquet-versions/<id>/_nianbao/sources.parquet  the state it was built from
    parquet-versions/<id>/_nianbao/changes.parquet  the cells it changed

A version directory without ``version.json`` is one being written (or left by a killed
run); readers never see it, and only a later run holding the lock removes it. The newest
``keep`` complete versions and the current one are kept; older ones are pruned.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extract.dataset.rows import arrow_schema

CURRENT = "parquet"
VERSIONS = "parquet-versions"
INFO_FILE = "_nianbao/version.json"
# Row groups of 16k rows: with rows sorted by agency_id, a filter on one agency reads one
# or two groups of a year file (see docs/schema.md, *Physical layout*).
ROW_GROUP_ROWS = 16_384


class DatasetStoreError(RuntimeError):
    """The dataset directory is not in a state this run can publish into."""


@dataclass
class VersionInfo:
    """What one published dataset version holds."""

    id: str
    created_at: str
    reports: int
    cells: int
    extractor_version: str
    previous: str | None = None
    changes: dict = field(default_factory=dict)


class DatasetStore:
    """The dataset versions under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.link = data_dir / CURRENT
        self.versions_dir = data_dir / VERSIONS

    def current(self) -> Path | None:
        """The directory of the current version, or None before the first publish."""
        if self.link.is_symlink() and self.link.exists():
            return self.link.resolve()
        if self.link.exists():
            raise DatasetStoreError(
                f"{self.link} is a directory, not the dataset symlink; move it away"
            )
        return None

    def current_id(self) -> str | None:
        """The id of the current version, or None."""
        current = self.current()
        return current.name if current else None

    def new_version(self) -> Path:
        """An empty directory for the version this run writes."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.versions_dir / stamp
        path.mkdir(parents=True)
        return path

    def complete(self, version_dir: Path, info: VersionInfo) -> None:
        """Mark a version complete: everything else in it is written and flushed."""
        target = version_dir / INFO_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(asdict(info), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        temporary.replace(target)

    def publish(self, version_dir: Path) -> None:
        """Point ``parquet`` at a complete version in one atomic rename."""
        if not (version_dir / INFO_FILE).exists():
            raise DatasetStoreError(f"{version_dir.name} is not a complete version")
        self.current()  # refuses a real directory in the link's place
        temporary = self.link.with_name(".parquet.new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(version_dir.relative_to(self.link.parent))
        temporary.replace(self.link)

    def versions(self) -> list[VersionInfo]:
        """Complete versions, newest first."""
        found = []
        if self.versions_dir.is_dir():
            for path in self.versions_dir.iterdir():
                info = path / INFO_FILE
                if info.exists():
                    found.append(VersionInfo(**json.loads(info.read_text("utf-8"))))
        return sorted(found, key=lambda v: v.id, reverse=True)

    def rollback(self, version_id: str) -> VersionInfo:
        """Make a kept version current again."""
        for info in self.versions():
            if info.id == version_id:
                self.publish(self.versions_dir / version_id)
                return info
        known = ", ".join(v.id for v in self.versions()) or "none"
        raise DatasetStoreError(f"no kept version {version_id!r}; kept: {known}")

    def prune(self, keep: int, writing: Path | None = None) -> list[str]:
        """Remove all but the newest ``keep`` complete versions and the current one.

        Directories of versions never completed (a killed run's) go too, except the one
        this run is ``writing``. Call it only while holding the run lock.
        """
        current = self.current()
        kept = {v.id for v in self.versions()[: max(keep, 1)]}
        removed: list[str] = []
        if not self.versions_dir.is_dir():
            return removed
        for path in sorted(self.versions_dir.iterdir()):
            if path in (current, writing) or path.name in kept:
                continue
            shutil.rmtree(path)
            removed.append(path.name)
        return removed


def link_or_copy(source: Path, target: Path) -> None:
    """Reuse an unchanged file in a new version: a hard link, or a copy across devices."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def year_path(version_dir: Path, table: str, year: int) -> Path:
    """The file of one table and year in a version."""
    return version_dir / table / f"year={year}" / "part-0.parquet"


def years_in(version_dir: Path | None, table: str) -> set[int]:
    """The years a version holds for a table."""
    if version_dir is None or not (version_dir / table).exists():
        return set()
    return {int(p.name.split("=", 1)[1]) for p in (version_dir / table).glob("year=*")}


def read_rows(path: Path, agencies: set[str] | None, *, keep: bool) -> pa.Table | None:
    """A year file's rows of ``agencies`` (keep=True) or of all other agencies (keep=False)."""
    if not path.exists():
        return None
    rows = pq.read_table(path)
    if agencies is None:
        return rows
    chosen = pc.is_in(
        rows["agency_id"].cast(pa.string()),
        value_set=pa.array(sorted(agencies), pa.string()),
    )
    return rows.filter(chosen if keep else pc.invert(chosen))


def write_year(target: Path, table: str, parts: list[pa.Table]) -> int:
    """Write a table's year file from parts, sorted by agency; returns the rows written."""
    schema = arrow_schema(table)
    parts = [
        p.select(schema.names).cast(schema)
        for p in parts
        if p is not None and p.num_rows
    ]
    if not parts:
        return 0
    combined = pa.concat_tables(parts).unify_dictionaries().combine_chunks()
    # A stable sort keeps each report's cells in template order within its agency.
    combined = combined.take(pc.sort_indices(combined["agency_id"]))
    write_parquet(combined, target)
    return combined.num_rows


def write_parquet(table: pa.Table, target: Path) -> None:
    """Write one Parquet file of the dataset (zstd, row-group statistics)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    pq.write_table(
        table,
        temporary,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        use_dictionary=True,
        write_statistics=True,
    )
    temporary.replace(target)


def count_rows(table_dir: Path) -> int:
    """Rows in all year files of a table."""
    return sum(
        pq.ParquetFile(p).metadata.num_rows for p in table_dir.glob("year=*/*.parquet")
    )
