"""What the manifest holds, as dataclasses whose fields are its columns (docs/crawler.md).

``Record`` is a row of ``records``: its fields give the table's DDL, the writer's insert
and the reader's columns. ``RunCounts`` are the counts of a site's run: the spider's
tallies, the columns of ``runs``, the crawl summary and the nightly run record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

# Field annotations as SQLite column types: an optional field is a nullable column.
_SQL_TYPES = {
    "str": "TEXT NOT NULL",
    "str | None": "TEXT",
    "int": "INTEGER NOT NULL",
    "int | None": "INTEGER",
}


@dataclass(slots=True)
class Record:
    """One archived response: a row of the manifest's ``records`` table."""

    record_id: str
    """WARC-Record-ID (``<urn:uuid:…>``), the table's primary key."""
    site: str
    kind: str
    url: str
    final_url: str
    status: int
    agency: str | None
    report_year: int | None
    title: str | None
    content_type: str | None
    length: int
    sha256: str
    warc_file: str
    warc_offset: int
    warc_length: int
    encoding: str | None
    declared_encoding: str | None
    parent_url: str | None
    parent_record_id: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: str
    run_id: str
    version: int


RECORD_FIELDS = [f.name for f in fields(Record)]


def column_definitions(cls: type) -> list[str]:
    """``name TYPE`` of each field of a dataclass, typed by its annotation."""
    return [f"{f.name} {_SQL_TYPES[str(f.type)]}" for f in fields(cls)]


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response for ``ArchiveWriter.write``: its bytes and the columns the spider
    knows; the writer adds the rest of its ``Record`` (where it is, its digest, version)."""

    kind: str
    """``list``, ``report`` or ``attachment``."""
    url: str
    final_url: str
    status: int
    headers: Iterable[tuple[bytes, bytes]]
    body: bytes
    fetched_at: str
    agency: str | None = None
    report_year: int | None = None
    title: str | None = None
    encoding: str | None = None
    declared_encoding: str | None = None
    parent_url: str | None = None
    parent_record_id: str | None = None
    attachments: Iterable[tuple[str, str]] = ()
    """A report's links to its attachments: (URL, label)."""
    sha256: str | None = None
    """The body's, when the spider has hashed it already."""


# The columns of a record that its Fetched gives as they are (its sha256 may be None: the
# writer's digest then).
GIVEN = tuple(
    name
    for name in RECORD_FIELDS
    if name in Fetched.__dataclass_fields__ and name != "sha256"
)


@dataclass(frozen=True, slots=True)
class Latest:
    """What the archive holds of a URL, for deciding whether to fetch it again."""

    record_id: str
    sha256: str
    etag: str | None
    last_modified: str | None
    fetched_at: str
    version: int
    report_year: int | None = None


LATEST_FIELDS = [f.name for f in fields(Latest)]


@dataclass(slots=True)
class RunCounts:
    """What one site's run counted; ``runs`` has a column for each."""

    list_pages: int = 0
    reports_found: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    """Fetches that failed after their retries."""
    attachments_new: int = 0
    refused: int = 0
    """Requests not sent: a host not allowed or not public, after a redirect too."""
    skipped: int = 0
    """Pages not archived: a report link whose page names no report, a URL robots.txt
    forbids."""


RUN_COUNTS = [f.name for f in fields(RunCounts)]
