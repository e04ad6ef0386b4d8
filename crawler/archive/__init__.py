"""The raw archive: every fetched response as WARC records, indexed by a SQLite manifest.

Layout under ``$NIANBAO_DATA/raw/``::

    manifest.sqlite                      index of every record (see docs/crawler.md)
    <site>/<site>-<UTC time>-<nnnn>.warc.gz

Modules: ``record`` (the manifest's rows as dataclasses), ``manifest`` (its tables and
connection), ``warc`` (WARC serialisation), ``writer`` (appending, crash-safe) and
``reader`` (the latest reports, verification). Their public names are imported here.
"""

from crawler.archive.manifest import MANIFEST, connect, utc_now
from crawler.archive.reader import (
    ArchivedAttachment,
    ArchivedReport,
    iter_latest_reports,
    site_places,
    verify_archive,
)
from crawler.archive.record import RECORD_FIELDS, Fetched, Latest, Record, RunCounts
from crawler.archive.warc import read_record_bytes
from crawler.archive.writer import ArchiveError, ArchiveWriter, PreviousRun
from crawler.disk import storage_problem

__all__ = [
    "MANIFEST",
    "RECORD_FIELDS",
    "ArchiveError",
    "ArchiveWriter",
    "ArchivedAttachment",
    "ArchivedReport",
    "Fetched",
    "Latest",
    "PreviousRun",
    "Record",
    "RunCounts",
    "connect",
    "iter_latest_reports",
    "read_record_bytes",
    "site_places",
    "storage_problem",
    "utc_now",
    "verify_archive",
]
