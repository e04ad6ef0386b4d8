"""A crawl killed or interrupted mid-run leaves a readable archive whose manifest agrees
with it, and an interrupted crawl is not ok."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.platforms import INTERRUPTED
from nianbao.demo import CONDITIONAL_HOSTS, ROBOTS
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import ROOT, crawl_command, crawl_env
from tests.fixtures.sites.snapshot import build_snapshot


def _count(data_dir) -> int:
    path = data_dir / "raw" / "manifest.sqlite"
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(path, timeout=1)
        try:
            return con.execute(
                "SELECT count(*) FROM records WHERE kind = 'report'"
            ).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def _check_consistent(data_dir) -> list:
    assert verify_archive(data_dir) == []
    reports = list(iter_latest_reports(data_dir))
    for report in reports:
        assert hashlib.sha256(report.read_bytes()).hexdigest() == report.sha256
    return reports


def test_killed_crawl_leaves_a_consistent_archive_and_resumes(tmp_path):
    snapshot = build_snapshot()
    sites = ("beijing_dongcheng", "beijing_portal")
    with SnapshotServer(
        snapshot.pages, CONDITIONAL_HOSTS, ROBOTS, delay=0.15
    ) as server:
        process = subprocess.Popen(
            crawl_command(tmp_path, server.url, *sites),
            cwd=ROOT,
            env=crawl_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while (
            _count(tmp_path) < 3
            and time.monotonic() < deadline
            and process.poll() is None
        ):
            time.sleep(0.05)
        assert process.poll() is None, "the crawl ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        partial = _check_consistent(tmp_path)
        assert 3 <= len(partial) < 15
        server.delay = 0.0
        resumed = subprocess.run(
            crawl_command(tmp_path, server.url, *sites),
            cwd=ROOT,
            env=crawl_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    reports = _check_consistent(tmp_path)
    expected = set(snapshot.expected_reports("beijing_dongcheng")) | set(
        snapshot.expected_reports("beijing_portal")
    )
    assert {r.url for r in reports} == expected
    con = sqlite3.connect(tmp_path / "raw" / "manifest.sqlite")
    try:
        # Nothing archived twice, and every WARC file ends at its last committed record.
        assert (
            con.execute(
                "SELECT max(version) FROM records WHERE kind != 'list'"
            ).fetchone()[0]
            == 1
        )
        for name, size in con.execute(
            "SELECT warc_file, committed_size FROM warc_files"
        ):
            assert (tmp_path / "raw" / name).stat().st_size == size
    finally:
        con.close()


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
    ids=["ctrl-c", "sigterm", "ctrl-c-twice"],
)
def test_an_interrupted_crawl_is_not_ok(tmp_path, signals):
    """One signal stops the crawl gracefully; a second forces it (no spider is closed)."""
    snapshot = build_snapshot()
    site = "beijing_dongcheng"  # one site: another could end before the signal
    with SnapshotServer(
        snapshot.pages, CONDITIONAL_HOSTS, ROBOTS, delay=0.15
    ) as server:
        process = subprocess.Popen(
            crawl_command(tmp_path, server.url, site),
            cwd=ROOT,
            env=crawl_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while (
            _count(tmp_path) < 2
            and time.monotonic() < deadline
            and process.poll() is None
        ):
            time.sleep(0.05)
        assert process.poll() is None, "the crawl ended before it could be stopped"
        for number in signals:
            process.send_signal(number)
            time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert f"ERROR {site}: {INTERRUPTED}\n" in stdout
    assert stdout.strip().endswith("1 site(s) in error")
    _check_consistent(tmp_path)
    con = sqlite3.connect(tmp_path / "raw" / "manifest.sqlite")
    try:
        runs = con.execute("SELECT ok, error FROM runs").fetchall()
    finally:
        con.close()
    # A forced stop closes no spider: its runs rows stay unfinished.
    expected = (0, INTERRUPTED) if len(signals) == 1 else (None, None)
    assert runs == [expected]
