"""nianbao run: the nightly job on the bundled snapshot, its lock and its run summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extract import load
from nianbao.nightly import AlreadyRunningError, run_lock

ROOT = Path(__file__).resolve().parent.parent


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NIANBAO_DATA": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "nianbao.cli", "run", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_lock_admits_one_run(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(AlreadyRunningError), run_lock(tmp_path):
            pass
        blocked = _run(tmp_path, "--demo")
        assert blocked.returncode == 75, blocked.stderr
        assert "another run holds" in blocked.stderr
    with run_lock(tmp_path):
        pass


def test_demo_run_crawls_extracts_and_summarises_then_does_nothing_twice(tmp_path):
    first = _run(tmp_path, "--demo")
    assert first.returncode == 0, first.stdout + first.stderr
    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 1
    summary = json.loads(runs[0].read_text(encoding="utf-8"))
    assert summary["exit_code"] == 0
    assert set(summary["sites"]) == {
        "beijing_xicheng",
        "beijing_portal",
        "beijing_dongcheng",
        "beijing_miyun",
    }
    assert summary["reports_new"] == summary["extract"]["documents"] > 0
    reports = load("reports", data_dir=tmp_path)
    assert len(reports) == summary["extract"]["agency_years"]
    assert (reports.groupby(["agency_id", "year"], observed=True).size() == 1).all()
    assert "ok" in set(reports["status"])
    assert (
        len(load("applications", data_dir=tmp_path))
        == summary["extract"]["rows"]["applications"]
    )

    second = _run(tmp_path, "--demo")
    assert second.returncode == 0, second.stdout + second.stderr
    again = json.loads(
        sorted((tmp_path / "runs").glob("*.json"))[-1].read_text(encoding="utf-8")
    )
    assert again["reports_new"] == again["reports_changed"] == 0
    assert again["extract"]["extracted"] == 0
    assert len(load("reports", data_dir=tmp_path)) == len(reports)


def test_a_lock_held_for_a_day_is_reported_stuck_not_busy(tmp_path):
    with run_lock(tmp_path):
        two_days_ago = time.time() - 2 * 86400
        os.utime(tmp_path / "run.lock", (two_days_ago, two_days_ago))
        blocked = _run(tmp_path, "--demo")
    assert blocked.returncode == 4, blocked.stderr
    assert "looks stuck" in blocked.stderr and f"ps -p {os.getpid()}" in blocked.stderr
