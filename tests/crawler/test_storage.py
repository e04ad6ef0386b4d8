"""A full disk, a file size limit and a held lock end the site's run honestly, in one line."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.archive.manifest import connect, utc_now
from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.archive.record import Fetched
from crawler.archive.writer import ArchiveError, ArchiveWriter
from crawler.disk import storage_problem
from crawler.paths import raw_dir
from nianbao.demo import CONDITIONAL_HOSTS, ROBOTS
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import (
    ROOT,
    crawl_command,
    crawl_env,
    run_crawl_cli,
    run_scrapy_crawl,
)
from tests.fixtures.sites.snapshot import build_snapshot

# Runs ``nianbao crawl`` with a file size limit: every file the crawl writes past it (a WARC
# file, the manifest's write-ahead log) fails with a real EFBIG.
_LIMITED = (
    "import resource, runpy, sys; limit = int(sys.argv.pop(1)); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "runpy.run_module('nianbao.cli', run_name='__main__', alter_sys=True)"
)


def _sqlite_error(sql_setup) -> sqlite3.Error:
    try:
        sql_setup()
    except sqlite3.Error as error:
        return error
    raise AssertionError("no SQLite error")


def test_storage_problems_say_what_happened_and_what_to_do(tmp_path):
    where = tmp_path / "raw"
    full = storage_problem(OSError(errno.ENOSPC, "No space left on device"), where)
    assert (
        full
        == f"the disk is full ({where}): free space, then run again; what was committed is kept"
    )
    assert storage_problem(
        OSError(errno.EFBIG, "File too large", "/r/a.warc.gz"), where
    ) == (
        "file size limit reached (/r/a.warc.gz): free space or raise the limit (ulimit -f), "
        "then run again; what was committed is kept"
    )
    denied = storage_problem(PermissionError(errno.EACCES, "Permission denied"), where)
    assert denied.startswith(f"no permission to write {where}: fix the permissions")
    assert "(--data-dir, NIANBAO_DATA)" in denied

    manifest = tmp_path / "manifest.sqlite"
    holder = sqlite3.connect(manifest, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(manifest, timeout=0)
    busy = _sqlite_error(lambda: other.execute("INSERT INTO t VALUES (1)"))
    holder.execute("ROLLBACK")
    assert storage_problem(busy, manifest) == (
        f"the manifest {manifest} is locked by another process: wait for it to end, then run again"
    )
    read_only = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True)
    refused = _sqlite_error(lambda: read_only.execute("INSERT INTO t VALUES (1)"))
    assert storage_problem(refused, manifest).startswith(
        f"no permission to write {manifest}"
    )
    for con in (holder, other, read_only):
        con.close()
    for problem in (full, denied):
        assert "\n" not in problem


class _FullDisk:
    """A WARC file handle on a disk that has just filled up."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _write(writer: ArchiveWriter, url: str, body: bytes) -> str:
    return writer.write(
        Fetched(
            kind="report",
            url=url,
            final_url=url,
            status=200,
            headers=[(b"Content-Type", b"text/html")],
            body=body,
            fetched_at=utc_now(),
        )
    )


def test_after_a_failed_write_nothing_more_is_written_and_the_commit_stays_whole(
    tmp_path,
):
    writer = ArchiveWriter(raw_dir(tmp_path), "s", "run1")
    _write(writer, "https://a.gov.cn/1.html", b"one")
    writer.commit()
    writer._handle = _FullDisk(writer._handle)
    with pytest.raises(ArchiveError, match=r"^the disk is full \("):
        _write(writer, "https://a.gov.cn/2.html", b"two")
    with pytest.raises(ArchiveError, match=r"^the disk is full \("):
        _write(writer, "https://a.gov.cn/3.html", b"three")
    with pytest.raises(ArchiveError):
        writer.close()
    # The lock and the manifest were released: the next writer opens the site.
    ArchiveWriter(raw_dir(tmp_path), "s", "run2").close()
    assert verify_archive(tmp_path) == []
    assert [r.read_bytes() for r in iter_latest_reports(tmp_path)] == [b"one"]


def test_a_site_being_crawled_elsewhere_ends_in_one_line(tmp_path, server):
    lock_path = tmp_path / "raw" / "beijing_miyun" / ".lock"
    lock_path.parent.mkdir(parents=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_crawl_cli(tmp_path, server.url, "beijing_miyun")
        scrapy_result = run_scrapy_crawl(tmp_path, server.url, "beijing_miyun")
    message = (
        f"beijing_miyun is being crawled by another process (it holds {lock_path}): "
        "wait for it to end, then run again"
    )
    assert result.returncode == 1
    assert f"ERROR beijing_miyun: {message}\n" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert scrapy_result.returncode == 1
    assert message in scrapy_result.stderr
    assert "Traceback" not in scrapy_result.stderr


def test_a_file_size_limit_mid_crawl_is_an_error_and_the_next_run_completes(tmp_path):
    snapshot = build_snapshot()
    connect(raw_dir(tmp_path)).close()  # the manifest's tables exist before the limit
    with SnapshotServer(snapshot.pages, CONDITIONAL_HOSTS, ROBOTS, delay=0.1) as server:
        argv = crawl_command(tmp_path, server.url, "beijing_dongcheng")
        limited = subprocess.run(
            [sys.executable, "-c", _LIMITED, "40000", *argv[3:]],
            cwd=ROOT,
            env=crawl_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = limited.stdout + limited.stderr
        assert limited.returncode == 1, output
        assert "Traceback" not in output
        (line,) = [x for x in limited.stdout.splitlines() if x.startswith("ERROR ")]
        assert line.startswith("ERROR beijing_dongcheng: archive write failed: ")
        assert "then run again; what was committed is kept" in line
        assert limited.stdout.strip().endswith("1 site(s) in error")
        _consistent(tmp_path)
        # The whole site is 29 records (16 lists, 9 reports, 4 attachments), ~50 kB of WARC.
        assert _count_records(tmp_path) < 29
        server.delay = 0.0
        again = run_crawl_cli(tmp_path, server.url, "beijing_dongcheng")
    assert again.returncode == 0, again.stdout + again.stderr
    reports = _consistent(tmp_path)
    assert {r.url for r in reports} == set(
        snapshot.expected_reports("beijing_dongcheng")
    )
    assert _count_records(tmp_path) == 29
    con = sqlite3.connect(raw_dir(tmp_path) / "manifest.sqlite")
    try:
        versions = con.execute("SELECT max(version) FROM records")
        assert versions.fetchone()[0] == 1  # nothing archived twice
    finally:
        con.close()


def _count_records(data_dir: Path) -> int:
    con = sqlite3.connect(raw_dir(data_dir) / "manifest.sqlite")
    try:
        return con.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        con.close()


def _consistent(data_dir: Path) -> list:
    assert verify_archive(data_dir) == []
    reports = list(iter_latest_reports(data_dir))
    for report in reports:
        assert hashlib.sha256(report.read_bytes()).hexdigest() == report.sha256
    return reports
