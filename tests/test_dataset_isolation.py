"""Every document finishes: failures of one document are its recorded status, never the run's.

The failing sources below stand for what the archive can hand a worker: a record that
cannot be read, one whose read never returns (a hung file system), one that crashes the
worker (a fault in a C library), one too large for the worker's memory cap, and a scan
whose OCR outlasts its time limit. Each must end as that report's status while every other
report is extracted and published.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
import pytest

from extract import load
from extract.dataset.build import build_dataset
from extract.dataset.pool import ExtractionPool
from extract.dataset.reuse import code_digest
from nianbao_common.limits import Limits
from tests.conftest import REPORTS
from tests.test_dataset import FakeSource, sources

FAST = Limits(document_seconds=20, ocr_page_seconds=0, grace_seconds=2)


@dataclass
class FailingRecord(FakeSource):
    """A record whose bytes the driver never reads: its digest comes from the manifest."""

    @property
    def sha256(self) -> str:
        return "0" * 64


@dataclass
class UnreadableRecord(FailingRecord):
    def read_bytes(self) -> bytes:
        raise OSError("Not a gzipped file (b'\\x00\\x00')")


@dataclass
class HungRecord(FailingRecord):
    def read_bytes(self) -> bytes:
        if marks := os.environ.get("HUNG_RECORD_MARKS"):
            (Path(marks) / str(os.getpid())).touch()  # the test sees the worker hang
        time.sleep(600)
        return b""


@dataclass
class CrashingRecord(FailingRecord):
    def read_bytes(self) -> bytes:
        os.kill(os.getpid(), signal.SIGSEGV)
        return b""


@dataclass
class HugeRecord(FailingRecord):
    def read_bytes(self) -> bytes:
        return bytes(64 << 30)


@dataclass
class SlowRecord(FakeSource):
    """A record that a worker reads in a second (a slow disk), well within its limit."""

    def read_bytes(self) -> bytes:
        if multiprocessing.parent_process() is not None:
            time.sleep(1)
        return super().read_bytes()


def scan() -> bytes:
    """Page 3 of a LibreOffice-made report at 200 dpi: OCR takes seconds."""
    document = pypdfium2.PdfDocument((REPORTS / "lo-word-2021-pdf.pdf").read_bytes())
    buffer = io.BytesIO()
    document[2].render(scale=200 / 72).to_pil().convert("L").save(buffer, "PNG")
    return buffer.getvalue()


def _failing(kind: type[FakeSource], number: int) -> FakeSource:
    return kind(
        "beijing_miyun",
        f"https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2023/202401/t20240118_{number}.html",
        "word-2021-gb2312.html",
        agency=f"北京市密云区第{number}镇人民政府",
        report_year=2023,
    )


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def _statuses(data_dir) -> dict[str, tuple[str, list[str]]]:
    reports = load("reports", data_dir=data_dir)
    return {
        url: (status, list(problems))
        for url, status, problems in zip(
            reports["url"], reports["status"], reports["problems"], strict=True
        )
    }


def test_each_failing_document_gets_its_status_and_the_rest_is_published(data_dir):
    failing = {
        "error": _failing(UnreadableRecord, 1),
        "timeout": _failing(HungRecord, 2),
        "crash": _failing(CrashingRecord, 3),
        "too_large": _failing(HugeRecord, 4),
    }
    # Failures first, so the good documents are requeued behind killed workers.
    started = time.monotonic()
    summary = build_dataset(
        [*failing.values(), *sources()],
        data_dir,
        workers=2,
        limits=Limits(document_seconds=5, ocr_page_seconds=0, grace_seconds=1,
                      memory_bytes=2 << 30),
    )  # fmt: skip
    assert time.monotonic() - started < 120
    assert not summary.ok and len(summary.failed) == 4
    assert summary.reports == 9
    statuses = _statuses(data_dir)
    assert statuses[failing["error"].url][0] == "error"
    assert "archive record unreadable: OSError" in statuses[failing["error"].url][1][0]
    assert statuses[failing["timeout"].url] == (
        "timeout",
        ["timeout: the worker did not return and was killed"],
    )
    assert statuses[failing["crash"].url] == (
        "error",
        [f"error: the worker died (exit code {-signal.SIGSEGV})"],
    )
    assert statuses[failing["too_large"].url][0] == "too_large"
    for good in sources():
        assert statuses[good.url][0] == "ok"
    assert "documents that failed (error, timeout, too_large): 4" in summary.render()
    # A failed report has a row and no cells.
    cells = load("applications", year=2023, data_dir=data_dir)
    reports = load("reports", year=2023, data_dir=data_dir)
    failed_ids = set(reports.loc[reports["status"] != "ok", "agency_id"])
    assert failed_ids and not failed_ids & set(cells["agency_id"])


def test_a_batch_longer_than_a_documents_limit_is_not_taken_for_hung(data_dir):
    # One worker takes the five documents as one batch of about 5 s: past the hard
    # deadline of one document (3 + 1 s), which moves on as each document starts.
    slow = [
        SlowRecord(**{name: getattr(s, name) for name in vars(s)}) for s in sources()
    ]
    summary = build_dataset(
        slow,
        data_dir,
        workers=1,
        limits=Limits(document_seconds=3, ocr_page_seconds=0, grace_seconds=1),
    )
    assert summary.ok and summary.reports == 5 and not summary.failed
    assert set(load("reports", data_dir=data_dir)["status"]) == {"ok"}


def test_a_scan_past_its_time_limit_is_a_timeout(data_dir):
    scanned = FakeSource(
        "beijing_miyun",
        "https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/gknb2023/202401/t20240118_9.html",
        "word-2021-gb2312.html",
        agency="北京市密云区十里堡镇人民政府",
        report_year=2023,
        content_type="image/png",
        data=scan(),
    )
    summary = build_dataset(
        [scanned, *sources()[:2]],
        data_dir,
        workers=1,
        limits=Limits(document_seconds=0.3, ocr_page_seconds=0, grace_seconds=5),
    )
    assert summary.failed == [(scanned.url, "timeout: not extracted within 0 s")]
    status, problems = _statuses(data_dir)[scanned.url]
    assert status == "timeout" and problems == ["timeout: not extracted within 0 s"]
    # The same limits again: nothing new to extract, the failure is not retried.
    again = build_dataset([scanned, *sources()[:2]], data_dir, workers=1)
    assert again.extracted == 0 and again.ok


def test_a_small_run_is_extracted_in_this_process_with_the_same_statuses(
    data_dir, monkeypatch
):
    def no_workers(*args, **kwargs):
        raise AssertionError("a run this small starts no worker processes")

    monkeypatch.setattr("extract.dataset.build.ExtractionPool", no_workers)
    failing = {
        "error": _failing(UnreadableRecord, 1),
        "too_large": _failing(HugeRecord, 4),
    }
    summary = build_dataset(
        [*failing.values(), *sources()],
        data_dir,
        limits=Limits(document_seconds=5, ocr_page_seconds=0, memory_bytes=1 << 30),
    )
    assert len(summary.failed) == 2 and summary.reports == 7
    statuses = _statuses(data_dir)
    assert statuses[failing["error"].url][0] == "error"
    assert statuses[failing["too_large"].url] == (
        "too_large",
        ["too_large: the archive record needed more than 1024 MiB"],
    )
    for good in sources():
        assert statuses[good.url][0] == "ok"
    # The address-space cap held only while the documents were extracted.
    assert len(bytes(2 << 30)) == 2 << 30


def test_a_scan_past_its_time_limit_in_this_process_is_a_timeout(data_dir, monkeypatch):
    monkeypatch.setattr("extract.dataset.pool.IN_PROCESS_BELOW_SECONDS", 1e9)
    monkeypatch.setattr("extract.dataset.build.ExtractionPool", None)
    scanned = _failing(FakeSource, 9)
    scanned.content_type, scanned.data = "image/png", scan()
    summary = build_dataset(
        [scanned], data_dir, limits=Limits(document_seconds=0.3, ocr_page_seconds=0)
    )
    assert summary.failed == [(scanned.url, "timeout: not extracted within 0 s")]


def test_a_run_expected_to_take_longer_than_starting_workers_uses_them(
    data_dir, monkeypatch
):
    monkeypatch.setattr("extract.dataset.pool.IN_PROCESS_BELOW_SECONDS", 0)
    monkeypatch.setattr("extract.dataset.build.InProcessExtraction", None)
    assert build_dataset(sources(), data_dir).ok


DRIVER = """
import sys
from pathlib import Path
from extract.dataset.build import build_dataset
from nianbao_common.limits import Limits
from tests.test_dataset_isolation import HungRecord, _failing

build_dataset([_failing(HungRecord, n) for n in range(1, 70)], Path(sys.argv[1]),
              workers=2, limits=Limits(document_seconds=600))
"""


def test_workers_die_with_a_killed_driver(data_dir, tmp_path):
    marks = tmp_path / "hung"
    marks.mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(data_dir)],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "HUNG_RECORD_MARKS": str(marks)},
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name) for p in marks.iterdir()]
        assert len(workers) == 2, "both workers are inside a hung read"
        assert all(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the driver"
    assert not (data_dir / "parquet").exists(), "nothing was published"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_a_kept_alive_pool_extracts_run_after_run_on_one_process(tmp_path):
    """The cluster keeps each Dask worker thread's extraction process between chunks
    (starting one costs as much as a chunk): the next run is served by the same
    process, and ``close`` stops it."""
    documents = sources()
    statuses = {}

    def extract(run: list[FakeSource]) -> list[int]:
        staged = pool.run(run, [document.sha256 for document in run])
        statuses.update({state.url: state.status for state in staged.states})
        return [child.pid for child in multiprocessing.active_children()]

    pool = ExtractionPool(1, tmp_path, FAST, code_digest(), keep_alive=True)
    try:
        kept = extract(documents[:2])
        assert len(kept) == 1
        assert extract(documents[2:4]) == kept
    finally:
        pool.close()
    assert multiprocessing.active_children() == []
    assert statuses == {document.url: "ok" for document in documents[:4]}
