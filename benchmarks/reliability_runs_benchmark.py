"""Hostile sites, full disks, concurrent extracts and kills, repeated: what the job publishes.

The companion of reliability_benchmark.py (which damages documents): here whole runs are
attacked, each on loopback only, and the script counts what must stay zero:

- requests to disallowed hosts: a hostile site crawled by name (its gov.cn name mapped
  to 127.0.0.1) redirects and links to an internal service, localhost, a foreign host
  and a gov.cn name resolving to 127.0.0.2; every request the internal service or the
  foreign pages receive counts;
- false "ok" runs: a crawl under a file-size limit (a real EFBIG, as a full disk gives
  ENOSPC) that exits 0 although its archive misses records;
- corrupted datasets: after two ``nianbao extract --all`` started 0.15 s apart, or an
  extract killed with SIGKILL at a random moment and run again, the published dataset
  is unreadable, a version is missing tables, or its rows differ from a clean build.

    python3 benchmarks/reliability_runs_benchmark.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from crawler.archive.manifest import connect  # noqa: E402
from crawler.archive.reader import iter_latest_reports  # noqa: E402
from crawler.paths import raw_dir  # noqa: E402
from extract.loader import load  # noqa: E402
from nianbao.demo import CONDITIONAL_HOSTS, ROBOTS  # noqa: E402
from nianbao.demo.server import SnapshotServer  # noqa: E402
from tests.conftest import write_archive  # noqa: E402
from tests.crawler.conftest import (  # noqa: E402
    crawl_command,
    crawl_env,
    run_hostile_site,
)
from tests.crawler.hostile_site import (  # noqa: E402
    FOREIGN_HOST,
    HOST,
    INTERNAL_PAGES,
    INTRANET_HOST,
    hostile_pages,
)
from tests.fixtures.sites.snapshot import build_snapshot  # noqa: E402

STEMS = ["xicheng-liaison-office-2023", "word-2021-gb2312", "word-2021-transposed",
         "word-2019-fullwidth-misdeclared", "shanghai-gov-office-2019"] * 4  # fmt: skip
_LIMITED = (
    "import resource, runpy, signal, sys; limit = int(sys.argv.pop(1)); "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "runpy.run_module('nianbao.cli', run_name='__main__', alter_sys=True)"
)


def hostile_rounds(rounds: int, work: Path) -> tuple[int, int]:
    """(crawls, requests that reached a disallowed host)."""
    disallowed = 0
    for number in range(rounds):
        with SnapshotServer(INTERNAL_PAGES) as internal, SnapshotServer({}) as server:
            port = server.url.rsplit(":", 1)[1]
            server.pages.update(hostile_pages(f"http://{HOST}:{port}", internal.url))
            answers = {
                HOST: "127.0.0.1",
                FOREIGN_HOST: "127.0.0.1",
                INTRANET_HOST: "127.0.0.2",
            }
            run_hostile_site(
                work / f"hostile-{number}", "-s", f"HOSTILE_SITE_PORT={port}",
                "-s", f"NIANBAO_TEST_HOSTS={json.dumps(answers)}",
                "-s", "NIANBAO_ALLOWED_TEST_ADDRESSES=127.0.0.1",
            )  # fmt: skip
            # The foreign host's and the intranet name's pages, which share this server.
            foreign = [
                h
                for h in server.hits()
                if h.path in ("/nb/foreign.html", "/nb/in.html")
            ]
            disallowed += len(internal.hits()) + len(foreign)
    return rounds, disallowed


def full_disk_rounds(rounds: int, work: Path) -> tuple[int, int]:
    """(crawls under a file-size limit, those that exited 0 with records missing)."""
    snapshot = build_snapshot()
    expected = len(snapshot.expected_reports("beijing_dongcheng"))
    false_ok = 0
    for number in range(rounds):
        data_dir = work / f"disk-{number}"
        connect(raw_dir(data_dir)).close()
        limit = 20_000 + number * 15_000
        with SnapshotServer(snapshot.pages, CONDITIONAL_HOSTS, ROBOTS) as server:
            argv = crawl_command(data_dir, server.url, "beijing_dongcheng")
            done = subprocess.run(
                [sys.executable, "-c", _LIMITED, str(limit), *argv[3:]], cwd=ROOT,
                env=crawl_env(data_dir), capture_output=True, text=True, timeout=300,
                check=False,
            )  # fmt: skip
        archived = len(list(iter_latest_reports(data_dir, "beijing_dongcheng")))
        if done.returncode == 0 and archived < expected:
            false_ok += 1
    return rounds, false_ok


def _extract(data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nianbao.cli", "extract", "--data-dir", str(data_dir), *args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _frames(data_dir: Path) -> dict[str, pd.DataFrame] | None:
    try:
        return {
            table: load(table, data_dir=data_dir)
            # Where each archive keeps its bytes differs between the two archives.
            .drop(
                columns=[
                    "fetched_at",
                    "warc_file",
                    "warc_offset",
                    "record_id",
                    "extractor_version",
                ],
                errors="ignore",
            )
            .sort_values(["agency_id", "year"], kind="stable")
            .reset_index(drop=True)
            for table in ("reports", "applications", "checks")
        }
    except Exception:  # noqa: BLE001 - an unreadable dataset is what is counted
        return None


def _same(a: dict | None, b: dict) -> bool:
    if a is None:
        return False
    for table, frame in b.items():
        try:
            pd.testing.assert_frame_equal(a[table], frame, check_categorical=False)
        except AssertionError:
            return False
    return True


def dataset_rounds(rounds: int, work: Path) -> tuple[int, int, int]:
    """(concurrent pairs, kills, corrupted datasets after either)."""
    clean_dir = work / "clean"
    write_archive(clean_dir, STEMS)
    _extract(clean_dir).wait()
    clean = _frames(clean_dir)
    assert clean is not None, "the clean build failed"
    data_dir = work / "attacked"
    write_archive(data_dir, STEMS)
    _extract(data_dir).wait()
    corrupted = 0
    rng = random.Random(1)
    for _ in range(rounds):
        first = _extract(data_dir, "--all")
        time.sleep(0.15)
        second = _extract(data_dir, "--all")
        first.wait()
        second.wait()
        corrupted += not _same(_frames(data_dir), clean)
    for _ in range(rounds):
        victim = _extract(data_dir, "--all")
        time.sleep(rng.uniform(0.2, 4.0))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        corrupted += not _same(_frames(data_dir), clean)  # the previous version
        _extract(data_dir).wait()
        corrupted += not _same(_frames(data_dir), clean)  # the next run completes
    return rounds, rounds, corrupted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nianbao-runs-"))
    started = time.monotonic()
    crawls, disallowed = hostile_rounds(args.rounds, work)
    print(
        f"hostile site crawls: {crawls}; requests to disallowed hosts: {disallowed}",
        flush=True,
    )
    limited, false_ok = full_disk_rounds(args.rounds, work)
    print(
        f"crawls under a file-size limit: {limited}; false ok runs: {false_ok}",
        flush=True,
    )
    pairs, kills, corrupted = dataset_rounds(args.rounds, work)
    print(
        f"concurrent extract pairs: {pairs}; extracts killed: {kills}; corrupted "
        f"datasets: {corrupted}",
        flush=True,
    )
    print(f"in {time.monotonic() - started:.0f} s; target: every count of failures 0")


if __name__ == "__main__":
    main()
