"""The raw archive: every fetched response as WARC records, indexed by a SQLite manifest.

Layout under ``$NIANBAO_DATA/raw/``::

    manifest.sqlite                      index of every record (see docs/crawler.md)
    <site>/<site>-<UTC time>-<nnnn>.warc.gz

Each WARC record is its own gzip member, so a record can be read from its offset alone.
The archive is append-only: a report whose bytes changed is written as a new record beside
the old one, and nothing is rewritten or deleted.

Crash safety: a record is appended to its WARC file, and the file flushed, before the
manifest row that points to it is committed, together with the file's new committed size.
A process killed between the two leaves bytes past the committed size; the next writer of
that site cuts them off before it appends. Readers only follow manifest rows, so they never
see a half-written record.

Storage errors (a full disk, a file size limit, permissions, a locked manifest) raise
``ArchiveError`` with a one-line message saying what to do. After an error writing records
or committing them the writers of the archive refuse every further record: what was
committed before stays whole, the rest is cut off by the next writer and fetched again.

The reader (``iter_latest_reports``) needs neither network nor Scrapy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from crawler.paths import raw_dir
from crawler.registry import Place, Site, declared_sites

MANIFEST = "manifest.sqlite"
DEFAULT_MAX_WARC_BYTES = 512 * 1024 * 1024
_WRITE_BUFFER = 1024 * 1024
# ISA-L's level 1 deflates report HTML ~6x faster than zlib's level 3, 2% larger; the
# members are ordinary gzip, read back by warcio, zlib, gzip and any WARC tool.
_GZIP_LEVEL = 1


def _gzip_member(*parts: bytes) -> bytes:
    packer = isal_zlib.compressobj(
        _GZIP_LEVEL, isal_zlib.DEFLATED, isal_zlib.MAX_WBITS + 16
    )
    return b"".join([*(packer.compress(part) for part in parts), packer.flush()])


# Hop-by-hop and transfer headers describe the bytes on the wire, not the payload kept.
_DROPPED_HEADERS = {
    b"content-encoding",
    b"transfer-encoding",
    b"content-length",
    b"connection",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    status INTEGER NOT NULL,
    agency TEXT,
    report_year INTEGER,
    title TEXT,
    content_type TEXT,
    length INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    warc_file TEXT NOT NULL,
    warc_offset INTEGER NOT NULL,
    warc_length INTEGER NOT NULL,
    encoding TEXT,
    declared_encoding TEXT,
    parent_url TEXT,
    parent_record_id TEXT,
    etag TEXT,
    last_modified TEXT,
    fetched_at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_site_url ON records (site, url, kind);
CREATE TABLE IF NOT EXISTS report_attachments (
    report_record_id TEXT NOT NULL,
    attachment_url TEXT NOT NULL,
    label TEXT,
    PRIMARY KEY (report_record_id, attachment_url)
);
CREATE TABLE IF NOT EXISTS warc_files (
    warc_file TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    committed_size INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT NOT NULL,
    site TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    list_pages INTEGER,
    reports_found INTEGER,
    new INTEGER,
    changed INTEGER,
    unchanged INTEGER,
    failed INTEGER,
    attachments_new INTEGER,
    ok INTEGER,
    error TEXT,
    PRIMARY KEY (run_id, site)
);
CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER,
    error TEXT NOT NULL,
    at TEXT NOT NULL
);
"""
# Added after the first manifests were written: a writer creates them (and the columns of
# _ADDED_COLUMNS) when it opens an older manifest; readers do without them.
_ADDED_SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    division_code TEXT,
    province TEXT,
    city TEXT,
    district TEXT,
    agency TEXT,
    start_urls TEXT,
    in_all INTEGER,
    note TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_years (
    run_id TEXT NOT NULL,
    site TEXT NOT NULL,
    report_year INTEGER,
    reports INTEGER NOT NULL
);
"""
_ADDED_COLUMNS = {"runs": {"warning": "TEXT"}}

RECORD_FIELDS = [
    "record_id",
    "site",
    "kind",
    "url",
    "final_url",
    "status",
    "agency",
    "report_year",
    "title",
    "content_type",
    "length",
    "sha256",
    "warc_file",
    "warc_offset",
    "warc_length",
    "encoding",
    "declared_encoding",
    "parent_url",
    "parent_record_id",
    "etag",
    "last_modified",
    "fetched_at",
    "run_id",
    "version",
]


class ArchiveError(Exception):
    """The archive cannot be written; the message is one line: what happened, what to do."""


_KEPT = "what was committed is kept"


def storage_problem(error: OSError | sqlite3.Error, where: Path) -> str:
    """One line for an OS or SQLite error met writing ``where``: what happened, what to do.

    >>> storage_problem(OSError(errno.ENOSPC, "No space left on device"), Path("raw"))
    'the disk is full (raw): free space, then run again; what was committed is kept'
    """
    if isinstance(error, OSError):
        where = Path(error.filename) if error.filename else where
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"the disk is full ({where}): free space, then run again; {_KEPT}"
        if error.errno == errno.EFBIG:
            return (
                f"file size limit reached ({where}): free space or raise the limit "
                f"(ulimit -f), then run again; {_KEPT}"
            )
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return _no_permission(where)
        return f"{error.strerror or error} ({where}); {_KEPT}"
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return f"the disk is full ({where}): free space, then run again; {_KEPT}"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return f"the manifest {where} is locked by another process: wait for it to end, then run again"
    if code in (
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_AUTH,
    ):
        return _no_permission(where)
    if code == sqlite3.SQLITE_IOERR:
        return (
            f"I/O error writing {where} ({error}): the disk may be full or failing; "
            f"check it, then run again; {_KEPT}"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return f"the manifest {where} is damaged ({error}): restore it from a backup"
    return f"manifest error ({where}): {error}"


def _problem(error: OSError | sqlite3.Error, raw: Path) -> str:
    """``storage_problem`` of an error met in the archive ``raw``: the manifest or a file."""
    return storage_problem(
        error, raw / MANIFEST if isinstance(error, sqlite3.Error) else raw
    )


def _no_permission(where: Path) -> str:
    return (
        f"no permission to write {where}: fix the permissions or choose another data "
        "directory (--data-dir, NIANBAO_DATA), then run again"
    )


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a Z suffix, to the microsecond."""
    # isoformat without the "+00:00": the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ").
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def connect(raw: Path) -> sqlite3.Connection:
    """Open (creating if needed) the manifest of an archive directory."""
    raw.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(raw / MANIFEST, timeout=30, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(SCHEMA + _ADDED_SCHEMA)
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        for column, kind in columns.items():
            if column not in present:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    return con


def read_record_bytes(raw: Path, warc_file: str, offset: int, length: int) -> bytes:
    """The unmodified payload of the WARC record at ``offset``."""
    with (raw / warc_file).open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    for record in ArchiveIterator(io.BytesIO(data)):
        return record.raw_stream.read()
    raise ValueError(f"no WARC record at {warc_file}:{offset}")


class _Manifest:
    """One manifest connection per process and archive, shared by the writers of all sites.

    Writers append rows inside one open transaction; a commit writes every open WARC file's
    size with them, so no committed row ever points past its file's committed size.
    """

    _open: dict[Path, _Manifest] = {}

    def __init__(self, raw: Path) -> None:
        self.raw = raw
        self.con = connect(raw)
        self.writers: list[ArchiveWriter] = []
        # Why records can no longer be written (storage_problem), once that happened.
        self.failed: str | None = None

    @classmethod
    def attach(cls, raw: Path, writer: ArchiveWriter) -> _Manifest:
        key = raw.resolve()
        manifest = cls._open.get(key)
        if manifest is None:
            manifest = cls._open[key] = cls(raw)
        manifest.writers.append(writer)
        return manifest

    def fail(self, error: OSError | sqlite3.Error) -> ArchiveError:
        """Stop every writer of this archive after a storage error; returns the error to raise.

        The open transaction is rolled back, so that no row is committed with a WARC size
        that takes in bytes whose rows were lost; the next writer cuts those bytes off.
        """
        self.failed = self.failed or _problem(error, self.raw)
        with contextlib.suppress(sqlite3.Error):
            if self.con.in_transaction:
                self.con.rollback()
        return ArchiveError(self.failed)

    def commit(self) -> None:
        if self.failed:
            raise ArchiveError(self.failed)
        try:
            self._commit()
        except (OSError, sqlite3.Error) as error:
            raise self.fail(error) from error

    def _commit(self) -> None:
        con = self.con
        if not con.in_transaction:
            con.execute("BEGIN")
        for writer in self.writers:
            if writer._handle is not None:
                writer._handle.flush()
            writer._insert_rows()
            if writer._file is not None:
                con.execute(
                    "UPDATE warc_files SET committed_size = ? WHERE warc_file = ?",
                    (writer._size, writer._file),
                )
            writer._pending = 0
            writer._last_commit = time.monotonic()
        con.execute("COMMIT")

    def detach(self, writer: ArchiveWriter) -> None:
        self.writers.remove(writer)
        if not self.writers:
            self.con.close()
            self._open.pop(self.raw.resolve(), None)


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


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """A site's last good run before this one: what the drop alarm compares with."""

    run_id: str
    reports_found: int
    years: dict[int | None, int]


class ArchiveWriter:
    """Appends records of one site to its WARC files and the shared manifest."""

    def __init__(
        self,
        raw: Path,
        site: str,
        run_id: str,
        max_warc_bytes: int = DEFAULT_MAX_WARC_BYTES,
        commit_every: int = 256,
        commit_seconds: float = 1.0,
        declaration: Site | None = None,
    ) -> None:
        self.raw = Path(raw)
        self.site = site
        # Written to the ``sites`` table at the start of each run: the place reaches the
        # dataset through it.
        self.declaration = declaration
        self.run_id = run_id
        self.max_warc_bytes = max_warc_bytes
        self.commit_every = commit_every
        self.commit_seconds = commit_seconds
        self._pending = 0
        self._last_commit = time.monotonic()
        # Manifest rows of flushed records, inserted together when they are committed.
        self._rows: list[list] = []
        self._links: list[tuple[str, str, str]] = []
        self._file: str | None = None
        self._size = 0
        self._handle: io.BufferedWriter | None = None
        self._serial = 0
        self._latest: dict[tuple[str, str], Latest] = {}
        self._lock = None
        try:
            self.manifest = _Manifest.attach(self.raw, self)
        except (OSError, sqlite3.Error) as error:
            raise ArchiveError(_problem(error, self.raw)) from error
        self.con = self.manifest.con
        # An error here concerns this site only: the other writers of the archive go on.
        try:
            self._open_site()
        except (OSError, sqlite3.Error) as error:
            self._release()
            raise ArchiveError(_problem(error, self.raw)) from error
        except ArchiveError:
            self._release()
            raise

    def _open_site(self) -> None:
        (self.raw / self.site).mkdir(parents=True, exist_ok=True)
        # One writer per site at a time: recovery below cuts what another writer appended.
        lock_path = self.raw / self.site / ".lock"
        self._lock = lock_path.open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ArchiveError(
                f"{self.site} is being crawled by another process (it holds "
                f"{lock_path}): wait for it to end, then run again"
            ) from None
        self._recover()
        self._load_latest()

    # -- state -----------------------------------------------------------------------
    def _recover(self) -> None:
        """Cut off bytes a killed writer appended past the last committed record."""
        rows = self.con.execute(
            "SELECT warc_file, committed_size FROM warc_files WHERE site = ?",
            (self.site,),
        ).fetchall()
        for row in rows:
            path = self.raw / row["warc_file"]
            if path.exists() and path.stat().st_size > row["committed_size"]:
                with path.open("r+b") as handle:
                    handle.truncate(row["committed_size"])

    def _load_latest(self) -> None:
        for row in self.con.execute(
            "SELECT kind, url, record_id, sha256, etag, last_modified, fetched_at, version, "
            "report_year FROM records WHERE site = ? ORDER BY rowid",
            (self.site,),
        ):
            self._latest[(row["kind"], row["url"])] = Latest(
                row["record_id"],
                row["sha256"],
                row["etag"],
                row["last_modified"],
                row["fetched_at"],
                row["version"],
                row["report_year"],
            )

    def latest(self, kind: str, url: str) -> Latest | None:
        """The newest record of a URL of this site, if any."""
        return self._latest.get((kind, url))

    def count(self, kind: str) -> int:
        """How many URLs of this kind the site has in the archive, over all runs."""
        return sum(1 for k, _ in self._latest if k == kind)

    # -- writing ---------------------------------------------------------------------
    def _open_file(self) -> None:
        self._serial += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{self.site}/{self.site}-{stamp}-{uuid.uuid4().hex[:6]}-{self._serial:04d}.warc.gz"
        self.con.execute(
            "INSERT INTO warc_files VALUES (?, ?, 0, ?)", (name, self.site, utc_now())
        )
        # Records are flushed with each commit, not one by one: a row is committed only
        # after its bytes are out of the buffer.
        self._handle = (self.raw / name).open("ab", buffering=_WRITE_BUFFER)
        self._file = name
        self._size = 0
        info = WARCWriter(
            io.BytesIO(), gzip=False, warc_version="1.1"
        ).create_warcinfo_record(
            name.rsplit("/", 1)[-1],
            {
                "software": "nianbao crawler",
                "format": "WARC File Format 1.1",
                "site": self.site,
            },
        )
        self._append(self._serialize(info))
        self._handle.flush()
        self.con.execute(
            "UPDATE warc_files SET committed_size = ? WHERE warc_file = ?",
            (self._size, self._file),
        )

    @staticmethod
    def _serialize(record) -> bytes:
        buffer = io.BytesIO()
        WARCWriter(buffer, gzip=False, warc_version="1.1").write_record(record)
        return _gzip_member(buffer.getvalue())

    def _append(self, data: bytes) -> int:
        assert self._handle is not None
        offset = self._size
        self._handle.write(data)
        self._size += len(data)
        return offset

    def write(
        self,
        *,
        kind: str,
        url: str,
        final_url: str,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        fetched_at: str,
        agency: str | None = None,
        report_year: int | None = None,
        title: str | None = None,
        encoding: str | None = None,
        declared_encoding: str | None = None,
        parent_url: str | None = None,
        parent_record_id: str | None = None,
        attachments: Iterable[tuple[str, str]] = (),
        sha256: str | None = None,
    ) -> str:
        """Append one response and commit its manifest row; returns the WARC-Record-ID."""
        with self._storage():
            if self._handle is None or self._size >= self.max_warc_bytes:
                if self._handle is not None:
                    self.commit()
                    self._handle.close()
                self._open_file()
        header_list = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in headers
            if k.lower() not in _DROPPED_HEADERS
        ]
        header_list.append(("Content-Length", str(len(body))))
        digest = sha256 or hashlib.sha256(body).hexdigest()
        record_id = f"<urn:uuid:{uuid.uuid4()}>"
        data = _response_record(
            final_url,
            status,
            header_list,
            body,
            digest,
            {
                "WARC-Record-ID": record_id,
                "WARC-Date": fetched_at,
                "Nianbao-Request-URI": url,
                "Nianbao-Site": self.site,
                "Nianbao-Kind": kind,
            },
        )
        with self._storage():
            offset = self._append(data)
        lowered = {k.lower(): v for k, v in header_list}
        previous = self._latest.get((kind, url))
        version = previous.version + 1 if previous else 1
        row = {
            "record_id": record_id,
            "site": self.site,
            "kind": kind,
            "url": url,
            "final_url": final_url,
            "status": status,
            "agency": agency,
            "report_year": report_year,
            "title": title,
            "content_type": lowered.get("content-type"),
            "length": len(body),
            "sha256": digest,
            "warc_file": self._file,
            "warc_offset": offset,
            "warc_length": len(data),
            "encoding": encoding,
            "declared_encoding": declared_encoding,
            "parent_url": parent_url,
            "parent_record_id": parent_record_id,
            "etag": lowered.get("etag"),
            "last_modified": lowered.get("last-modified"),
            "fetched_at": fetched_at,
            "run_id": self.run_id,
            "version": version,
        }
        self._rows.append([row[f] for f in RECORD_FIELDS])
        if attachments:
            self._links.extend(
                (record_id, a_url, label) for a_url, label in attachments
            )
        self._pending += 1
        if (
            self._pending >= self.commit_every
            or time.monotonic() - self._last_commit >= self.commit_seconds
        ):
            self.commit()
        self._latest[(kind, url)] = Latest(
            record_id,
            digest,
            row["etag"],
            row["last_modified"],
            fetched_at,
            version,
            report_year,
        )
        return record_id

    def _insert_rows(self) -> None:
        """Insert the rows of records already flushed to their WARC file (not committed)."""
        con = self.con
        if self._rows:
            if not con.in_transaction:
                con.execute("BEGIN")
            con.executemany(_INSERT_RECORD, self._rows)
            self._rows = []
        if self._links:
            if not con.in_transaction:
                con.execute("BEGIN")
            con.executemany(
                "INSERT OR IGNORE INTO report_attachments VALUES (?, ?, ?)", self._links
            )
            self._links = []

    @contextlib.contextmanager
    def _storage(self, after_failure: bool = False):
        """Storage errors inside become ``ArchiveError`` and stop every writer of the archive.

        Once stopped, only what ``after_failure`` allows is still attempted.
        """
        if self.manifest.failed and not after_failure:
            raise ArchiveError(self.manifest.failed)
        try:
            yield
        except (OSError, sqlite3.Error) as error:
            raise self.manifest.fail(error) from error

    def commit(self) -> None:
        """Commit the pending manifest rows with the WARC sizes that now hold them.

        Rows are committed in groups (every ``commit_every`` records or ``commit_seconds``):
        a crash loses at most the last group, whose bytes the next writer cuts off.
        """
        self.manifest.commit()

    def latest_payload(self, kind: str, url: str) -> tuple[bytes, str | None]:
        """The payload and Content-Type of the newest record of a URL of this site."""
        self.commit()  # rows of this run are inserted at commit time
        with self._storage():
            row = self.con.execute(
                "SELECT warc_file, warc_offset, warc_length, content_type FROM records "
                "WHERE site = ? AND kind = ? AND url = ? ORDER BY rowid DESC LIMIT 1",
                (self.site, kind, url),
            ).fetchone()
            return read_record_bytes(self.raw, row[0], row[1], row[2]), row[3]

    def add_failure(self, kind: str, url: str, status: int | None, error: str) -> None:
        """Record a fetch that failed after its retries."""
        with self._storage():
            self.con.execute(
                "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, self.site, kind, url, status, error[:500], utc_now()),
            )

    def start_run(self) -> None:
        """Note the start of this site's run, and its declaration's place."""
        with self._storage():
            self.con.execute(
                "INSERT OR REPLACE INTO runs (run_id, site, started_at) VALUES (?, ?, ?)",
                (self.run_id, self.site, utc_now()),
            )
            if self.declaration is not None:
                site, place = self.declaration, self.declaration.place
                self.con.execute(
                    "INSERT OR REPLACE INTO sites VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.site,
                        place.division_code,
                        place.province,
                        place.city,
                        place.district,
                        site.agency or None,
                        "\n".join(site.start_urls),
                        int(site.in_all),
                        site.note or None,
                        utc_now(),
                    ),
                )

    def finish_run(
        self,
        counts: dict,
        ok: bool,
        error: str | None,
        warning: str | None = None,
        years: dict[int | None, int] | None = None,
    ) -> None:
        """Store the run's counts for this site, and the reports it found per report
        year (attempted after a storage error too)."""
        with self._storage(after_failure=True):
            self.con.execute(
                "UPDATE runs SET finished_at = ?, list_pages = ?, reports_found = ?, new = ?, changed = ?, "
                "unchanged = ?, failed = ?, attachments_new = ?, ok = ?, error = ?, warning = ? "
                "WHERE run_id = ? AND site = ?",
                (
                    utc_now(),
                    counts["list_pages"],
                    counts["reports_found"],
                    counts["new"],
                    counts["changed"],
                    counts["unchanged"],
                    counts["failed"],
                    counts["attachments_new"],
                    int(ok),
                    error,
                    warning,
                    self.run_id,
                    self.site,
                ),
            )
            self.con.executemany(
                "INSERT INTO run_years VALUES (?, ?, ?, ?)",
                [
                    (self.run_id, self.site, year, n)
                    for year, n in (years or {}).items()
                ],
            )

    def previous_good_run(self) -> PreviousRun | None:
        """The site's last run before this one that ended without error, if any."""
        with self._storage():
            row = self.con.execute(
                "SELECT run_id, reports_found FROM runs WHERE site = ? AND run_id != ? "
                "AND ok = 1 AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1",
                (self.site, self.run_id),
            ).fetchone()
            if row is None:
                return None
            years = dict(
                self.con.execute(
                    "SELECT report_year, reports FROM run_years WHERE run_id = ? AND site = ?",
                    (row["run_id"], self.site),
                ).fetchall()
            )
        return PreviousRun(row["run_id"], row["reports_found"] or 0, years)

    def close(self) -> None:
        """Commit, then close the current WARC file, the manifest connection and the lock.

        Raises ``ArchiveError`` when the commit fails; everything is released all the same.
        """
        try:
            self.commit()
        finally:
            self._release()

    def _release(self) -> None:
        if self._handle is not None:
            # After a storage error the buffer may not flush: its bytes would lie past the
            # committed size, which the next writer cuts off anyway.
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.manifest.detach(self)


_INSERT_RECORD = f"INSERT INTO records ({', '.join(RECORD_FIELDS)}) VALUES ({', '.join('?' * len(RECORD_FIELDS))})"


def _response_record(
    uri: str,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    sha256: str,
    fields: dict[str, str],
) -> bytes:
    """One WARC/1.1 response record as its own gzip member.

    Written directly rather than through warcio's builder, which hashes every payload twice
    more with SHA-1: the payload digest is the SHA-256 the manifest keeps anyway.
    """
    http = (
        f"HTTP/1.1 {status} {_reason(status)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers)
        + "\r\n"
    )
    block_head = http.encode("latin-1", "replace")
    warc = [
        "WARC/1.1",
        "WARC-Type: response",
        f"WARC-Record-ID: {fields.pop('WARC-Record-ID')}",
        f"WARC-Date: {fields.pop('WARC-Date')}",
        f"WARC-Target-URI: {uri}",
        f"WARC-Payload-Digest: sha256:{sha256}",
        *(f"{k}: {v}" for k, v in fields.items()),
        "Content-Type: application/http; msgtype=response",
        f"Content-Length: {len(block_head) + len(body)}",
    ]
    return _gzip_member(
        ("\r\n".join(warc) + "\r\n\r\n").encode("utf-8"),
        block_head,
        body,
        b"\r\n\r\n",
    )


def _reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


_REASONS = {s.value: s.phrase for s in HTTPStatus}


# -- reading ---------------------------------------------------------------------------
@dataclass(slots=True)
class ArchivedAttachment:
    """One archived attachment (latest version) of a report."""

    site: str
    url: str
    final_url: str
    agency: str | None
    report_year: int | None
    title: str | None
    content_type: str | None
    sha256: str
    fetched_at: str
    warc_file: str
    warc_offset: int
    warc_length: int
    record_id: str
    encoding: str | None
    parent_url: str | None
    version: int
    raw: Path = field(repr=False)

    def read_bytes(self) -> bytes:
        """The payload exactly as the server sent it (after transfer decoding)."""
        return read_record_bytes(
            self.raw, self.warc_file, self.warc_offset, self.warc_length
        )


@dataclass(slots=True)
class ArchivedReport(ArchivedAttachment):
    """The latest archived version of one report page, with its attachments and place."""

    attachments: list[ArchivedAttachment] = field(default_factory=list)
    missing_attachments: list[str] = field(default_factory=list)
    """Attachment URLs the page links that the archive does not hold (not fetched yet,
    failed, or past a limit)."""
    division_code: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    """The place of the site's declaration (None when unknown)."""


_SELECT = (
    "SELECT site, url, final_url, agency, report_year, title, content_type, sha256, fetched_at, "
    "warc_file, warc_offset, warc_length, record_id, encoding, parent_url, version FROM records r "
)


def _latest_rows(
    con: sqlite3.Connection, kind: str, site: str | None
) -> list[sqlite3.Row]:
    where = "WHERE r.kind = ? AND r.rowid = (SELECT max(rowid) FROM records s WHERE s.site = r.site AND s.url = r.url AND s.kind = r.kind)"
    params: list = [kind]
    if site:
        where += " AND r.site = ?"
        params.append(site)
    return con.execute(_SELECT + where + " ORDER BY r.site, r.url", params).fetchall()


def iter_latest_reports(
    data_dir: Path | None = None, site: str | None = None
) -> Iterator[ArchivedReport]:
    """Each archived report (site + URL) in its latest version, with its attachments.

    Offline: reads only the manifest and WARC files under ``<data_dir>/raw``.

    Example:
        >>> for report in iter_latest_reports():            # doctest: +SKIP
        ...     html = report.read_bytes()
    """
    raw = raw_dir(data_dir)
    if not (raw / MANIFEST).exists():
        return
    con = sqlite3.connect(raw / MANIFEST, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        attachments = {
            (row["site"], row["url"]): row
            for row in _latest_rows(con, "attachment", site)
        }
        links: dict[str, list[str]] = {}
        for row in con.execute(
            "SELECT report_record_id, attachment_url FROM report_attachments ORDER BY rowid"
        ):
            links.setdefault(row[0], []).append(row[1])
        reports = _latest_rows(con, "report", site)
        places = site_places(con)
    finally:
        con.close()
    for row in reports:
        linked = links.get(row["record_id"], [])
        found = [
            ArchivedAttachment(**dict(attachments[(row["site"], a)]), raw=raw)
            for a in linked
            if (row["site"], a) in attachments
        ]
        missing = [a for a in linked if (row["site"], a) not in attachments]
        place = places.get(row["site"]) or _declared_place(row["site"])
        yield ArchivedReport(
            **dict(row),
            raw=raw,
            attachments=found,
            missing_attachments=missing,
            division_code=place.division_code if place else None,
            province=place.province if place else None,
            city=place.city if place else None,
            district=place.district if place else None,
        )


def site_places(con: sqlite3.Connection) -> dict[str, Place]:
    """The place each site was declared with at its last run (the ``sites`` table).

    Empty for a manifest written before the table existed.
    """
    try:
        rows = con.execute(
            "SELECT site, division_code, province, city, district FROM sites"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {row[0]: Place(*row[1:]) for row in rows if row[1]}


def _declared_place(site: str) -> Place | None:
    """A site's place from its declaration: archives crawled before places were kept."""
    declared = declared_sites().get(site)
    return declared.place if declared else None


_TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))


def verify_archive(data_dir: Path | None = None) -> list[str]:
    """Problems found when every manifest row is read back and every WARC file is walked.

    Checks that each row's payload hashes to its sha256, and that each WARC file, up to its
    committed size, holds exactly the records the manifest lists. A manifest that is
    missing, unreadable or without some of its tables (a first run stopped while creating
    it) is a problem too, never an exception. An empty list means the archive and manifest
    agree.
    """
    raw = raw_dir(data_dir)
    path = raw / MANIFEST
    if not path.is_file():
        return [f"{path}: no manifest"]
    problems: list[str] = []
    con = sqlite3.connect(path, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        tables = {
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            problems.append(
                f"{path}: table(s) {', '.join(missing)} missing (the manifest was never "
                "fully created)"
            )
        if "records" not in tables or "warc_files" not in tables:
            return problems
        rows = con.execute("SELECT * FROM records ORDER BY rowid").fetchall()
        files = con.execute(
            "SELECT warc_file, committed_size FROM warc_files"
        ).fetchall()
    except sqlite3.DatabaseError as error:
        return [*problems, f"{path}: unreadable ({error})"]
    finally:
        con.close()
    for row in rows:
        try:
            data = read_record_bytes(
                raw, row["warc_file"], row["warc_offset"], row["warc_length"]
            )
        except Exception as exc:  # noqa: BLE001 - any unreadable record is a finding
            problems.append(f"{row['record_id']}: unreadable ({exc})")
            continue
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            problems.append(f"{row['record_id']}: sha256 mismatch")
    indexed = {(row["warc_file"], row["warc_offset"]) for row in rows}
    for entry in files:
        problems.extend(
            _verify_warc_file(raw, entry["warc_file"], entry["committed_size"], indexed)
        )
    return problems


def _verify_warc_file(
    raw: Path, warc_file: str, committed_size: int, indexed: set[tuple[str, int]]
) -> list[str]:
    """Problems of one WARC file: missing, short, or holding records the manifest lacks."""
    try:
        with (raw / warc_file).open("rb") as handle:
            data = handle.read(committed_size)
    except OSError as error:
        return [f"{warc_file}: unreadable ({error.strerror or error})"]
    if len(data) < committed_size:
        return [
            f"{warc_file}: {len(data)} bytes, shorter than the {committed_size} committed"
        ]
    problems = []
    iterator = ArchiveIterator(io.BytesIO(data))
    try:
        for record in iterator:
            offset = iterator.get_record_offset()
            if record.rec_type == "response" and (warc_file, offset) not in indexed:
                problems.append(f"{warc_file}:{offset}: record not in the manifest")
    except Exception as exc:  # noqa: BLE001 - a file that cannot be walked is a finding
        problems.append(f"{warc_file}: unreadable WARC ({exc})")
    return problems


def sha256_file(path: os.PathLike) -> str:
    """sha256 of a file, for checks."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
