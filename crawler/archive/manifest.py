"""The SQLite manifest: its tables, and opening it (older manifests brought up to date).

The manifest indexes every WARC record of an archive directory (docs/crawler.md).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from crawler.archive.record import RUN_COUNTS, Record, column_definitions

MANIFEST = "manifest.sqlite"


def _table(name: str, columns: list[str]) -> str:
    body = ",\n".join(f"    {c}" for c in columns)
    return f"CREATE TABLE IF NOT EXISTS {name} (\n{body}\n);\n"


_RECORDS = [
    definition.replace("record_id TEXT NOT NULL", "record_id TEXT PRIMARY KEY")
    for definition in column_definitions(Record)
]
# Counts are NULL from the run's start until it finishes.
_RUN_COLUMNS = [
    "run_id TEXT NOT NULL",
    "site TEXT NOT NULL",
    "started_at TEXT NOT NULL",
    "finished_at TEXT",
    *(f"{name} INTEGER" for name in RUN_COUNTS),
    "ok INTEGER",
    "error TEXT",
    "warning TEXT",
    "PRIMARY KEY (run_id, site)",
]
SCHEMA = (
    _table("records", _RECORDS)
    + "CREATE INDEX IF NOT EXISTS records_site_url ON records (site, url, kind);\n"
    + _table(
        "report_attachments",
        [
            "report_record_id TEXT NOT NULL",
            "attachment_url TEXT NOT NULL",
            "label TEXT",
            "PRIMARY KEY (report_record_id, attachment_url)",
        ],
    )
    + _table(
        "warc_files",
        [
            "warc_file TEXT PRIMARY KEY",
            "site TEXT NOT NULL",
            "committed_size INTEGER NOT NULL",
            "created_at TEXT NOT NULL",
        ],
    )
    + _table("runs", _RUN_COLUMNS)
    + _table(
        "failures",
        [
            "run_id TEXT NOT NULL",
            "site TEXT NOT NULL",
            "kind TEXT NOT NULL",
            "url TEXT NOT NULL",
            "status INTEGER",
            "error TEXT NOT NULL",
            "at TEXT NOT NULL",
        ],
    )
)
# Added after the first manifests were written: a writer creates them (and the columns of
# _ADDED_COLUMNS) when it opens an older manifest; readers do without them.
ADDED_SCHEMA = _table(
    "sites",
    [
        "site TEXT PRIMARY KEY",
        "division_code TEXT",
        "province TEXT",
        "city TEXT",
        "district TEXT",
        "agency TEXT",
        "start_urls TEXT",
        "in_all INTEGER",
        "note TEXT",
        "updated_at TEXT NOT NULL",
    ],
) + _table(
    "run_years",
    [
        "run_id TEXT NOT NULL",
        "site TEXT NOT NULL",
        "report_year INTEGER",
        "reports INTEGER NOT NULL",
    ],
)
_ADDED_COLUMNS = {
    "runs": {"warning": "TEXT", "refused": "INTEGER", "skipped": "INTEGER"}
}


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a Z suffix, to the microsecond."""
    # isoformat without the "+00:00": the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ").
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def connect(raw: Path) -> sqlite3.Connection:
    """Open (creating if needed) the manifest of an archive directory, for writing."""
    raw.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(raw / MANIFEST, timeout=30, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(SCHEMA + ADDED_SCHEMA)
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        for column, kind in columns.items():
            if column not in present:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    return con
