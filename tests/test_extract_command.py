"""``nianbao extract`` on a real archive: dry run, diff, two at once, a full disk."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extract import load
from tests.conftest import write_archive

ROOT = Path(__file__).resolve().parent.parent
STEMS = [
    "xicheng-liaison-office-2023",
    "word-2021-gb2312",
    "word-2019-fullwidth-misdeclared",
    "word-2021-transposed",
    "shanghai-gov-office-2019",
]


def extract(data_dir: Path, *args: str, limit_file_bytes: int | None = None):
    """Run ``nianbao extract`` in a child process; optionally cap the size of its files."""

    def cap() -> None:
        # A real EFBIG from the kernel, as a full disk gives ENOSPC: writes past the
        # cap fail (SIGXFSZ ignored, so the write returns the error instead).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.Popen(
        [sys.executable, "-m", "nianbao.cli", "extract", "--data-dir", str(data_dir),
         "--workers", "1", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=cap if limit_file_bytes else None,
    )  # fmt: skip


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


@pytest.fixture
def data_dir(tmp_path) -> Path:
    directory = tmp_path / "data"
    write_archive(directory, STEMS)
    return directory


def test_dry_run_then_extract_then_diff(data_dir):
    code, out, _ = finished(extract(data_dir, "--dry-run"))
    assert code == 0
    assert "5 archived reports, 5 extracted (5 no dataset to reuse)" in out
    assert out.count("  no dataset to reuse: https://www.bjxch.gov.cn/") == 5
    assert not (data_dir / "parquet").exists()

    code, out, err = finished(extract(data_dir))
    assert code == 0, err
    assert "5 reports added, 0 re-extracted, 0 removed" in out
    (record,) = (data_dir / "runs").glob("*-extract.json")
    saved = json.loads(record.read_text(encoding="utf-8"))
    assert saved["changes"]["reports_added"] == 5 and saved["failed"] == []

    code, out, err = finished(extract(data_dir, "--all", "--diff"))
    assert code == 0, err
    assert "5 extracted (5 --all)" in out and "no cell changed" in out


def test_two_extracts_at_once_one_writer_and_a_whole_dataset(data_dir):
    finished(extract(data_dir))
    before = load("applications", data_dir=data_dir)
    for _ in range(3):
        first = extract(data_dir, "--all")
        time.sleep(0.15)
        second = extract(data_dir, "--all")
        codes = sorted([finished(first)[0], finished(second)[0]])
        assert codes in ([0, 0], [0, 75]), codes
        assert (data_dir / "parquet").resolve().is_dir()
        assert len(load("applications", data_dir=data_dir)) == len(before)


def test_a_full_disk_ends_with_one_line_and_keeps_the_dataset(tmp_path):
    # Enough reports that the rows outgrow the cap while the manifest stays under it.
    data_dir = tmp_path / "data"
    write_archive(data_dir, STEMS * 6)
    code, _, err = finished(extract(data_dir))
    assert code == 0, err
    current = (data_dir / "parquet").resolve()
    code, out, err = finished(extract(data_dir, "--all", limit_file_bytes=150_000))
    assert code == 2
    assert "is full" in err and "Traceback" not in err, err
    assert (data_dir / "parquet").resolve() == current
    assert len(load("reports", data_dir=data_dir)) == 30
    versions = sorted((data_dir / "parquet-versions").iterdir())
    assert versions == [current], "the half-written version was removed"
    staging = data_dir / ".extract-staging"
    assert not staging.exists() or not any(staging.iterdir())
