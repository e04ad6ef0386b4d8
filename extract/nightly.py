"""``nianbao run``: the nightly crawl and extract, unattended.

One run at a time (a lock file under the data directory); a run that was killed leaves
an archive that is append-only and crash-safe and a dataset that is switched atomically,
so the next run simply starts again. Every run writes ``runs/<run id>.json``.

Exit code: 0 when every site crawled and every archived document was readable; bit 1 set
when a site broke (an error, or zero reports where earlier runs found some); bit 2 set
when extraction failed on an archived record; 75 when another run holds the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from extract.dataset import ExtractSummary, build_dataset, print_progress

EXIT_SITE_BROKE = 1
EXIT_EXTRACT_FAILED = 2
EXIT_LOCKED = 75  # EX_TEMPFAIL: cron may simply try again next time


class AlreadyRunningError(RuntimeError):
    """Another nianbao run holds the lock."""


@contextmanager
def run_lock(data_dir: Path):
    """Hold ``<data_dir>/run.lock`` for the duration; the kernel frees it if we die."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "run.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        handle.close()
        raise AlreadyRunningError(
            f"another run holds {data_dir / 'run.lock'}"
        ) from error
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def extract_archive(
    data_dir: Path,
    *,
    force: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> ExtractSummary:
    """Build the dataset from the raw archive under ``data_dir`` (no network)."""
    from crawler.archive import iter_latest_reports

    return build_dataset(
        iter_latest_reports(data_dir),
        data_dir,
        force=force,
        workers=workers,
        progress=print_progress() if progress else None,
    )


def nightly_run(
    data_dir: Path,
    sites: tuple[str, ...] = ("all",),
    *,
    mirror: str | None = None,
    crawl_settings: dict | None = None,
    workers: int | None = None,
) -> tuple[int, dict]:
    """Crawl, then extract; returns the exit code and the run summary written to runs/."""
    from crawler.cli import run_crawl

    started = time.monotonic()
    started_at = datetime.now(UTC)
    with run_lock(data_dir):
        crawl = run_crawl(
            sites,
            mirror=mirror,
            data_dir=data_dir,
            settings=crawl_settings,
            progress=True,
        )
        print(crawl.render(), flush=True)
        extract = extract_archive(data_dir, workers=workers)
        print(extract.render(), flush=True)
    code = (0 if crawl.ok else EXIT_SITE_BROKE) | (
        0 if extract.ok else EXIT_EXTRACT_FAILED
    )
    summary = {
        "run_id": crawl.run_id,
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "exit_code": code,
        "sites": {
            s.site: {k: v for k, v in asdict(s).items() if k != "site"} | {"ok": s.ok}
            for s in crawl.sites
        },
        "reports_new": sum(s.new for s in crawl.sites),
        "reports_changed": sum(s.changed for s in crawl.sites),
        "reports_failed": sum(s.failed for s in crawl.sites),
        "extract": {
            "documents": extract.documents,
            "extracted": extract.extracted,
            "agency_years": extract.reports,
            "rows": extract.rows,
            "statuses": extract.statuses,
            "years_written": extract.years_written,
            "unreadable": [{"url": u, "reason": r} for u, r in extract.unreadable],
        },
        "checks_failed": extract.checks_failed,
    }
    runs = data_dir / "runs"
    runs.mkdir(exist_ok=True)
    path = runs / f"{crawl.run_id}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"run summary: {path}", file=sys.stderr)
    return code, summary
