"""The versioned Parquet store: complete versions side by side, one current, switched atomically.

Layout under the data location (a local directory, or a URL such as ``s3://bucket/prefix``)::

    parquet/CURRENT                             the current version's id: the pointer
    parquet-versions/<id>/<table>/year=YYYY/part-0.parquet
    parquet-versions/<id>/agencies/part-0.parquet
    parquet-versions/<id>/_nianbao/version.json     written last: the version is complete
    parquet-versions/<id>/_nianbao/sources.parquet  the state it was built from
    parquet-versions/<id>/_nianbao/changes.parquet  the cells it changed

On disk ``parquet`` is a symlink to the current version's directory, switched in one
rename, and ``CURRENT`` is a file in each version naming itself: ``parquet/CURRENT``
reads the current id there too, and plain readers open ``parquet/<table>``. Object
storage holds no symlinks: there ``parquet/CURRENT`` is one small object, replaced in
one PUT. Either way a reader that reads the pointer and then the files sees the old
version or the new one, never a mix. (A dataset from before the pointer lacks the file;
its symlink still names the current version.)

A version directory without ``version.json`` is one being written (or left by a killed
run); readers never see it, and only a later run holding the lock removes it. The newest
``keep`` complete versions and the current one are kept; older ones are pruned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nianbao_common.storage import (
    RemotePath,
    arrow_path,
    copy_file,
    remove_tree,
    replacing,
)

CURRENT = "parquet"
VERSIONS = "parquet-versions"
POINTER = "CURRENT"
INFO_FILE = "_nianbao/version.json"
# Row groups of 16k rows: with rows sorted by agency_id, a filter on one agency reads one
# or two groups of a year file (see docs/schema.md, *Physical layout*).
ROW_GROUP_ROWS = 16_384
Where = Path | RemotePath


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
    """The dataset versions under one data location (a directory or a URL)."""

    def __init__(self, data_dir: Where) -> None:
        self.data_dir = data_dir
        self.link = data_dir / CURRENT
        self.versions_dir = data_dir / VERSIONS

    def current(self) -> Where | None:
        """The directory of the current version, or None before the first publish."""
        if isinstance(self.link, RemotePath):
            pointer = self.link / POINTER
            if not pointer.exists():
                return None
            return self.versions_dir / pointer.read_text("utf-8").strip()
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

    def new_version(self) -> Where:
        """An empty directory for the version this run writes."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.versions_dir / stamp
        path.mkdir(parents=True)
        return path

    def complete(self, version_dir: Where, info: VersionInfo) -> None:
        """Mark a version complete: everything else in it is written and flushed."""
        text = json.dumps(asdict(info), ensure_ascii=False, indent=1)
        with replacing(version_dir / INFO_FILE) as target:
            target.write_text(text, encoding="utf-8")

    def publish(self, version_dir: Where) -> None:
        """Make a complete version current: ``parquet/CURRENT`` names it, atomically."""
        if not (version_dir / INFO_FILE).exists():
            raise DatasetStoreError(f"{version_dir.name} is not a complete version")
        if isinstance(self.link, RemotePath):
            # One PUT: readers get the old object or the new one.
            (self.link / POINTER).write_text(version_dir.name)
            return
        self.current()  # refuses a real directory in the link's place
        with replacing(version_dir / POINTER) as pointer:
            pointer.write_text(version_dir.name, encoding="utf-8")
        temporary = self.link.with_name(".parquet.new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(Path(VERSIONS) / version_dir.name)
        temporary.replace(self.link)

    def versions(self) -> list[VersionInfo]:
        """Complete versions, newest first."""
        found = []
        for path in self.versions_dir.iterdir() if self.versions_dir.is_dir() else ():
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

    def prune(self, keep: int, writing: Where | None = None) -> list[str]:
        """Remove all but the newest ``keep`` complete versions and the current one.

        Directories of versions never completed (a killed run's) go too, except the one
        this run is ``writing``. Call it only while holding the run lock.
        """
        kept = {v.id for v in self.versions()[: max(keep, 1)]}
        kept |= {name for name in (self.current_id(), writing and writing.name) if name}
        removed: list[str] = []
        if not self.versions_dir.is_dir():
            return removed
        versions: list[Where] = list(self.versions_dir.iterdir())
        for path in sorted(versions, key=lambda p: p.name):
            if path.name in kept:
                continue
            remove_tree(path)
            removed.append(path.name)
        return removed


def link_or_copy(source: Where, target: Where) -> None:
    """Reuse an unchanged file in a new version: a hard link on disk, else a copy."""
    copy_file(source, target)


def year_path(version_dir: Where, table: str, year: int) -> Where:
    """The file of one table and year in a version."""
    return version_dir / table / f"year={year}" / "part-0.parquet"


def years_in(version_dir: Where | None, table: str) -> set[int]:
    """The years a version holds for a table."""
    if version_dir is None or not (version_dir / table).exists():
        return set()
    return {int(p.name.split("=", 1)[1]) for p in (version_dir / table).glob("year=*")}


def read_parquet(path: Where, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file of the dataset, on disk or on object storage."""
    where, filesystem = arrow_path(path)
    return pq.read_table(where, columns=columns, filesystem=filesystem)


def write_parquet(table: pa.Table, target: Where) -> None:
    """Write one Parquet file of the dataset (zstd, row-group statistics), whole."""
    with replacing(target) as temporary:
        where, filesystem = arrow_path(temporary)
        pq.write_table(
            table,
            where,
            filesystem=filesystem,
            row_group_size=ROW_GROUP_ROWS,
            compression="zstd",
            use_dictionary=True,
            write_statistics=True,
        )


@contextmanager
def parquet_writer(target: Where, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A writer of one Parquet file of the dataset, in parts; the file appears whole."""
    with replacing(target) as temporary:
        where, filesystem = arrow_path(temporary)
        with pq.ParquetWriter(
            where,
            schema,
            filesystem=filesystem,
            compression="zstd",
            use_dictionary=True,
            write_statistics=True,
        ) as writer:
            yield writer


def release_freed_memory() -> None:
    """Give the memory Arrow has freed back to the system.

    Its allocator keeps freed pages for reuse, so without this the driver's resident
    memory would climb with each year file it assembles, to the largest it has seen.
    """
    pa.default_memory_pool().release_unused()


def open_parquet(path: Where) -> pq.ParquetFile:
    """One Parquet file of the dataset, opened to read by row groups."""
    where, filesystem = arrow_path(path)
    if filesystem is None:
        return pq.ParquetFile(where)
    return pq.ParquetFile(filesystem.open_input_file(where))


def parquet_metadata(path: Where) -> pq.FileMetaData:
    """The footer of one Parquet file (its schema, row groups and row count)."""
    where, filesystem = arrow_path(path)
    return pq.read_metadata(where, filesystem=filesystem)


def count_rows(table_dir: Where) -> int:
    """Rows in all year files of a table."""
    return sum(parquet_metadata(p).num_rows for p in table_dir.glob("year=*/*.parquet"))
