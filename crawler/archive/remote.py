"""The archive on object storage: WARC files uploaded whole, a manifest shard per site, merged to read.

Layout under ``<URL>/raw/`` (``s3://bucket/prefix/raw/``)::

    <site>/<site>-<UTC time>-<random>-<nnnn>.warc.gz    as on disk, uploaded once closed
    manifests/<site>.sqlite                              the site's manifest shard

Object storage has no appends and no shared SQLite, so a crawl writes a local archive (a
staging folder of the crawl shard, ``crawler.shards``) and publishes it: its WARC files
are uploaded when the writer rotates them and when the crawl ends, then each site's rows
are written to the site's manifest shard, replaced in one PUT. A shard names only WARC
files uploaded before it, so a reader sees a site as of one crawl or the next, never a
row without its record. Records are read back by ranged GETs (``warc.read_record_bytes``).

``stage_sites`` starts a staging folder from the sites' shards, and from what an
earlier attempt killed on this machine left there: per site, the source whose newest run
is the latest wins, so the rerun of a killed shard keeps what that attempt committed and
loses at most its uncommitted group. ``readable_manifest`` merges every shard into one
local SQLite file for the readers (``iter_latest_reports``, ``verify_archive``,
``nianbao sites``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from crawler.archive.manifest import MANIFEST, connect
from nianbao_common.storage import RemotePath

MANIFESTS = "manifests"
# The tables whose rows belong to a site by their ``site`` column; report_attachments
# belongs to its report's site.
_SITE_TABLES = ("records", "warc_files", "runs", "failures", "run_years", "sites")


# What says when a manifest last ran a site: its runs, else that it holds the site at all.
_SITE_AT = {"runs": "started_at", "records": "''", "warc_files": "''"}


def shard_of(remote: RemotePath, site: str) -> RemotePath:
    """The manifest shard of a site in the archive ``remote``."""
    return remote / MANIFESTS / f"{site}.sqlite"


def _tables(con: sqlite3.Connection, schema: str) -> dict[str, list[str]]:
    names = [
        row[0]
        for row in con.execute(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'"
        )
    ]
    return {
        name: [row[1] for row in con.execute(f"PRAGMA {schema}.table_info({name})")]
        for name in names
    }


def _latest_runs(source: Path) -> dict[str, str]:
    """Each site a manifest holds, with the start of its newest run ('' if none)."""
    con = sqlite3.connect(source, timeout=30)
    try:
        tables = _tables(con, "main")
        parts = [
            f"SELECT site, {at} AS at FROM {table}"
            for table, at in _SITE_AT.items()
            if table in tables
        ]
        if not parts:
            return {}
        rows = con.execute(
            f"SELECT site, max(at) FROM ({' UNION ALL '.join(parts)}) GROUP BY site"
        ).fetchall()
    finally:
        con.close()
    return {site: at or "" for site, at in rows}


def merge_manifests(
    sources: Sequence[Path], target: Path, sites: Collection[str] | None = None
) -> set[str]:
    """Write ``target/manifest.sqlite`` from the manifests ``sources``; the sites merged.

    Each site's rows come whole from one source: the one whose newest run of the site
    started last (a later source on a tie), so that two copies of a site's history are
    never mixed. ``sites`` limits the merge to those sites. Rows keep their order.
    """
    owner: dict[str, tuple[str, int]] = {}
    for index, source in enumerate(sources):
        for site, at in _latest_runs(source).items():
            if (sites is None or site in sites) and at >= owner.get(site, ("", -1))[0]:
                owner[site] = (at, index)
    target.mkdir(parents=True, exist_ok=True)
    con = connect(target)
    try:
        into = _tables(con, "main")
        for index, source in enumerate(sources):
            owned = [site for site, (_, i) in owner.items() if i == index]
            if owned:
                _copy_sites(con, into, source, owned)
    finally:
        con.close()
    return set(owner)


def _copy_sites(
    con: sqlite3.Connection,
    into: dict[str, list[str]],
    source: Path,
    owned: list[str],
) -> None:
    con.execute("ATTACH DATABASE ? AS source", (str(source),))
    try:
        present = _tables(con, "source")
        con.execute("BEGIN")
        con.execute("CREATE TEMP TABLE owned (site TEXT PRIMARY KEY)")
        con.executemany("INSERT INTO temp.owned VALUES (?)", [(s,) for s in owned])
        for table in (*_SITE_TABLES, "report_attachments"):
            if table not in present:
                continue
            columns = ", ".join(c for c in into[table] if c in present[table])
            if table == "report_attachments":
                where = (
                    "report_record_id IN (SELECT record_id FROM source.records "
                    "WHERE site IN (SELECT site FROM temp.owned))"
                )
            else:
                where = "site IN (SELECT site FROM temp.owned)"
            con.execute(
                f"INSERT OR IGNORE INTO main.{table} ({columns}) "
                f"SELECT {columns} FROM source.{table} WHERE {where} ORDER BY rowid"
            )
        con.execute("DROP TABLE temp.owned")
        con.execute("COMMIT")
    finally:
        if con.in_transaction:
            con.rollback()
        con.execute("DETACH DATABASE source")


def _settle(manifest: Path) -> None:
    """Fold a manifest's write-ahead log into it, so the file alone holds its rows."""
    con = sqlite3.connect(manifest, timeout=30)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def stage_sites(remote: RemotePath, staging: Path, sites: Collection[str]) -> None:
    """Make ``staging/manifest.sqlite`` hold the sites' history, for a crawl to write.

    Downloads each site's shard; a manifest already in ``staging`` (left by an attempt
    that was killed) is merged in, its sites kept where it ran them last.
    """
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging, prefix=".stage-") as scratch:
        work = Path(scratch)
        sources = []
        for site in sorted(sites):
            copy = work / f"{site}.sqlite"
            try:
                shard_of(remote, site).download(copy)
            except FileNotFoundError:
                continue
            sources.append(copy)
        left = staging / MANIFEST
        if left.is_file():
            _settle(left)
            sources.append(left)
        merge_manifests(sources, work / "merged", sites)
        # The merged file replaces the leftover whole; the leftover's log was folded in
        # and emptied above, so no stale log applies to the new file.
        for suffix in ("-wal", "-shm"):
            Path(f"{left}{suffix}").unlink(missing_ok=True)
        (work / "merged" / MANIFEST).replace(left)


def upload_warc(raw: Path, remote: RemotePath, warc_file: str, size: int) -> None:
    """Upload a closed WARC file's committed bytes (past them lies what a killed writer
    appended, which is cut off first); nothing when the object already has them."""
    path = raw / warc_file
    target = remote / warc_file
    if target.is_file() and target.stat_size() == size:
        return
    if path.stat().st_size > size:
        with path.open("r+b") as handle:
            handle.truncate(size)
    target.upload(path)


def publish_archive(
    raw: Path, remote: RemotePath, sites: Collection[str] | None = None
) -> list[str]:
    """Upload a local archive ``raw`` (every site, or ``sites``) to ``remote``; the sites
    published.

    WARC files first, then each site's manifest shard, so a shard never names a file not
    yet uploaded. Also moves an archive crawled on disk to object storage:
    ``publish_archive(Path("data/raw"), RemotePath.from_url("s3://bucket/nianbao/raw"))``.
    """
    _settle(raw / MANIFEST)
    con = sqlite3.connect(raw / MANIFEST, timeout=30)
    try:
        files = con.execute(
            "SELECT warc_file, committed_size, site FROM warc_files ORDER BY rowid"
        ).fetchall()
    finally:
        con.close()
    for warc_file, size, site in files:
        if (sites is None or site in sites) and (raw / warc_file).exists():
            upload_warc(raw, remote, warc_file, size)
    published = []
    with tempfile.TemporaryDirectory(prefix="nianbao-shard-") as scratch:
        for site in sorted(_latest_runs(raw / MANIFEST)):
            if sites is not None and site not in sites:
                continue
            shard = Path(scratch) / site
            merge_manifests([raw / MANIFEST], shard, {site})
            shard_of(remote, site).upload(shard / MANIFEST)
            published.append(site)
    return published


@contextlib.contextmanager
def readable_manifest(
    raw: Path | RemotePath, problems: list[str] | None = None
) -> Iterator[Path]:
    """A local manifest of the archive ``raw`` to read (it may not exist: no archive).

    On disk, ``raw/manifest.sqlite`` itself. On object storage, every site's shard merged
    into a temporary file, removed when the block ends. A shard that cannot be read is
    a line in ``problems`` when given, else its error is raised.
    """
    if isinstance(raw, Path):
        yield raw / MANIFEST
        return
    with tempfile.TemporaryDirectory(prefix="nianbao-manifest-") as scratch:
        work = Path(scratch)
        sources = []
        for shard in (raw / MANIFESTS).glob("*.sqlite"):
            copy = work / shard.name
            shard.download(copy)
            try:
                _latest_runs(copy)
            except sqlite3.DatabaseError as error:
                if problems is None:
                    raise
                problems.append(f"{shard}: unreadable ({error})")
                continue
            sources.append(copy)
        if sources:
            merge_manifests(sources, work / "merged")
        yield work / "merged" / MANIFEST
