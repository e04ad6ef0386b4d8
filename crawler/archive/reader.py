"""Reading the archive back: the latest version of each report, and verifying the whole.

Offline: reads only the manifest and WARC files under ``<data_dir>/raw``, needs neither
network nor Scrapy, and writes nothing (a manifest from before a table or column was added
is read as it is). On object storage (``s3://…/raw``) the sites' manifest shards are
merged first, and records are read by ranged GETs (``crawler.archive.remote``).
"""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from crawler.archive.manifest import MANIFEST, SCHEMA
from crawler.archive.record import RECORD_FIELDS, Record
from crawler.archive.remote import MANIFESTS, readable_manifest
from crawler.archive.warc import read_record_bytes
from crawler.paths import archive_dir
from crawler.registry import Place, declared_sites
from nianbao_common.storage import RemotePath


@dataclass(slots=True)
class ArchivedAttachment(Record):
    """One archived attachment (latest version) of a report."""

    raw: Path | RemotePath = field(repr=False)

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


_SELECT = f"SELECT {', '.join(f'r.{name}' for name in RECORD_FIELDS)} FROM records r "


# Fields whose values repeat from record to record: the site, its list pages, the WARC
# file, the crawl run, the agency, the type. A listing of 20,000 reports held 2.1 kB a
# report, most of it the strings of its records, each row a copy of its own.
_REPEATED = (
    "site", "kind", "agency", "content_type", "warc_file", "encoding",
    "declared_encoding", "parent_url", "parent_record_id", "run_id",
)  # fmt: skip


def _shared_strings(row: sqlite3.Row) -> dict[str, Any]:
    """A manifest row as a dict whose repeated strings are one object each (interned)."""
    values = dict(row)
    for name in _REPEATED:
        if isinstance(value := values.get(name), str):
            values[name] = sys.intern(value)
    if values.get("final_url") == values["url"]:
        values["final_url"] = values["url"]
    return values


def _latest_rows(
    con: sqlite3.Connection, kind: str, site: str | None
) -> Iterator[dict[str, Any]]:
    """The latest row of each (site, URL) of a kind, repeated strings shared."""
    where = "WHERE r.kind = ? AND r.rowid = (SELECT max(rowid) FROM records s WHERE s.site = r.site AND s.url = r.url AND s.kind = r.kind)"
    params: list = [kind]
    if site:
        where += " AND r.site = ?"
        params.append(site)
    for row in con.execute(_SELECT + where + " ORDER BY r.site, r.url", params):
        yield _shared_strings(row)


def iter_latest_reports(
    data_dir: str | Path | RemotePath | None = None, site: str | None = None
) -> Iterator[ArchivedReport]:
    """Each archived report (site + URL) in its latest version, with its attachments.

    ``data_dir``: the data location (a path or URL; default ``$NIANBAO_DATA``).

    Example:
        >>> for report in iter_latest_reports():            # doctest: +SKIP
        ...     html = report.read_bytes()
    """
    raw = archive_dir(data_dir)
    with readable_manifest(raw) as path:
        if not path.exists():
            return
        con = sqlite3.connect(path, timeout=30)
        con.row_factory = sqlite3.Row
        # Each row becomes its report as it is read, so no copy of a repeated string
        # outlives its row.
        try:
            attachments = {
                (row["site"], row["url"]): row
                for row in _latest_rows(con, "attachment", site)
            }
            links: dict[str, list[str]] = {}
            for row in con.execute(
                "SELECT report_record_id, attachment_url FROM report_attachments "
                "ORDER BY rowid"
            ):
                links.setdefault(row[0], []).append(row[1])
            places = site_places(con)
            reports = [
                _report(row, raw, attachments, links, places)
                for row in _latest_rows(con, "report", site)
            ]
        finally:
            con.close()
    yield from reports


def _report(
    row: dict[str, Any],
    raw: Path | RemotePath,
    attachments: dict[tuple[str, str], dict[str, Any]],
    links: dict[str, list[str]],
    places: dict[str, Place],
) -> ArchivedReport:
    """A report's manifest row with its archived attachments and its site's place."""
    linked = links.get(row["record_id"], [])
    found = [
        ArchivedAttachment(**attachments[(row["site"], a)], raw=raw)
        for a in linked
        if (row["site"], a) in attachments
    ]
    missing = [a for a in linked if (row["site"], a) not in attachments]
    place = places.get(row["site"]) or _declared_place(row["site"])
    return ArchivedReport(
        **row,
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


# The tables every manifest has had from the first.
_TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))


def verify_archive(data_dir: str | Path | RemotePath | None = None) -> list[str]:
    """Problems found when every manifest row is read back and every WARC file is walked.

    Checks that each row's payload hashes to its sha256, and that each WARC file, up to its
    committed size, holds exactly the records the manifest lists. A manifest that is
    missing, unreadable or without some of its tables (a first run stopped while creating
    it) is a problem too, never an exception. An empty list means the archive and manifest
    agree.
    """
    raw = archive_dir(data_dir)
    problems: list[str] = []
    with readable_manifest(raw, problems) as path:
        return _verify(raw, path, problems)


def _verify(raw: Path | RemotePath, path: Path, problems: list[str]) -> list[str]:
    if not path.is_file():
        shown = raw / MANIFEST if isinstance(raw, Path) else raw / MANIFESTS
        return [*problems, f"{shown}: no manifest"]
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
    raw: Path | RemotePath,
    warc_file: str,
    committed_size: int,
    indexed: set[tuple[str, int]],
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
