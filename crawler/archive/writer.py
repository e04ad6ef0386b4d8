"""The archive writer: appends a site's responses to its WARC files and the manifest.

Layout under ``$NIANBAO_DATA/raw/``::

    manifest.sqlite                      index of every record (see docs/crawler.md)
    <site>/<site>-<UTC time>-<nnnn>.warc.gz

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
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO, TextIO

from crawler.archive.manifest import MANIFEST, connect, utc_now
from crawler.archive.record import (
    GIVEN,
    LATEST_FIELDS,
    RECORD_FIELDS,
    RUN_COUNTS,
    Fetched,
    Latest,
    Record,
    RunCounts,
)
from crawler.archive.remote import upload_warc
from crawler.archive.warc import (
    kept_headers,
    read_record_bytes,
    response_record,
    warcinfo_record,
)
from crawler.disk import storage_problem, try_lock, unlock
from crawler.registry import Site
from nianbao_common.storage import RemotePath

DEFAULT_MAX_WARC_BYTES = 512 * 1024 * 1024
_WRITE_BUFFER = 1024 * 1024
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(RECORD_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_FIELDS))})"
)
# Tuples of a dataclass's fields: dataclasses.astuple deep-copies every value.
_record_row = attrgetter(*RECORD_FIELDS)
_latest_of = attrgetter(*LATEST_FIELDS)
_counts_row = attrgetter(*RUN_COUNTS)
_FINISH_RUN = (
    "UPDATE runs SET finished_at = ?, "
    + "".join(f"{name} = ?, " for name in RUN_COUNTS)
    + "ok = ?, error = ?, warning = ? WHERE run_id = ? AND site = ?"
)


class ArchiveError(Exception):
    """The archive cannot be written; the message is one line: what happened, what to do."""


def _problem(error: OSError | sqlite3.Error, raw: Path) -> str:
    """``storage_problem`` of an error met in the archive ``raw``: the manifest or a file."""
    return storage_problem(
        error, raw / MANIFEST if isinstance(error, sqlite3.Error) else raw
    )


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
            writer.stage(con)
        con.execute("COMMIT")

    def detach(self, writer: ArchiveWriter) -> None:
        self.writers.remove(writer)
        if not self.writers:
            self.con.close()
            self._open.pop(self.raw.resolve(), None)


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
        remote: RemotePath | None = None,
    ) -> None:
        self.raw = Path(raw)
        # The archive on object storage this one is staged for: WARC files are uploaded
        # there when rotated, and records of earlier runs are read from there.
        self.remote = remote
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
        self._rows: list[tuple] = []
        self._links: list[tuple[str, str, str]] = []
        self._file: str | None = None
        self._size = 0
        self._handle: BinaryIO | None = None
        self._serial = 0
        self._latest: dict[tuple[str, str], Latest] = {}
        self._lock: TextIO | None = None
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
        self._lock = try_lock(lock_path)
        if self._lock is None:
            raise ArchiveError(
                f"{self.site} is being crawled by another process (it holds "
                f"{lock_path}): wait for it to end, then run again"
            )
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
            f"SELECT kind, url, {', '.join(LATEST_FIELDS)} FROM records "
            "WHERE site = ? ORDER BY rowid",
            (self.site,),
        ):
            self._latest[(row[0], row[1])] = Latest(*row[2:])

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
        self._append(warcinfo_record(name.rsplit("/", 1)[-1], self.site))
        self._handle.flush()
        self.con.execute(
            "UPDATE warc_files SET committed_size = ? WHERE warc_file = ?",
            (self._size, self._file),
        )

    def _append(self, data: bytes) -> int:
        assert self._handle is not None
        offset = self._size
        self._handle.write(data)
        self._size += len(data)
        return offset

    def write(self, fetched: Fetched) -> str:
        """Append one response; returns its WARC-Record-ID.

        Its manifest row is committed with the next group (``commit``).
        """
        with self._storage():
            if self._handle is None or self._size >= self.max_warc_bytes:
                if self._handle is not None:
                    self.commit()
                    self._handle.close()
                    if self.remote is not None:
                        assert self._file is not None
                        upload_warc(self.raw, self.remote, self._file, self._size)
                self._open_file()
        body = fetched.body
        headers = kept_headers(fetched.headers, len(body))
        digest = fetched.sha256 or hashlib.sha256(body).hexdigest()
        record_id = f"<urn:uuid:{uuid.uuid4()}>"
        data = response_record(
            fetched.final_url,
            fetched.status,
            headers,
            body,
            digest,
            record_id,
            fetched.fetched_at,
            {
                "Nianbao-Request-URI": fetched.url,
                "Nianbao-Site": self.site,
                "Nianbao-Kind": fetched.kind,
            },
        )
        with self._storage():
            offset = self._append(data)
        lowered = {k.lower(): v for k, v in headers}
        key = (fetched.kind, fetched.url)
        previous = self._latest.get(key)
        assert self._file is not None
        record = Record(
            **{name: getattr(fetched, name) for name in GIVEN},
            record_id=record_id,
            site=self.site,
            content_type=lowered.get("content-type"),
            length=len(body),
            sha256=digest,
            warc_file=self._file,
            warc_offset=offset,
            warc_length=len(data),
            etag=lowered.get("etag"),
            last_modified=lowered.get("last-modified"),
            run_id=self.run_id,
            version=previous.version + 1 if previous else 1,
        )
        self._rows.append(_record_row(record))
        self._links.extend(
            (record_id, url, label) for url, label in fetched.attachments
        )
        self._pending += 1
        if (
            self._pending >= self.commit_every
            or time.monotonic() - self._last_commit >= self.commit_seconds
        ):
            self.commit()
        self._latest[key] = Latest(*_latest_of(record))
        return record_id

    def stage(self, con: sqlite3.Connection) -> None:
        """Flush this writer's records and put their rows, with the WARC file's new
        committed size, into the transaction the shared connection ``con`` commits."""
        if self._handle is not None:
            self._handle.flush()
        self._insert_rows()
        if self._file is not None:
            con.execute(
                "UPDATE warc_files SET committed_size = ? WHERE warc_file = ?",
                (self._size, self._file),
            )
        self._pending = 0
        self._last_commit = time.monotonic()

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
            # Read here unless the file is only in object storage already.
            remote = self.remote is not None and not (self.raw / row[0]).exists()
            where = self.remote if remote and self.remote is not None else self.raw
            return read_record_bytes(where, row[0], row[1], row[2]), row[3]

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
        counts: RunCounts,
        ok: bool,
        error: str | None,
        warning: str | None = None,
        years: dict[int | None, int] | None = None,
    ) -> None:
        """Store the run's counts for this site, and the reports it found per report
        year (attempted after a storage error too)."""
        with self._storage(after_failure=True):
            self.con.execute(
                _FINISH_RUN,
                (
                    utc_now(),
                    *_counts_row(counts),
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
            unlock(self._lock)
            self._lock = None
        self.manifest.detach(self)
