"""``nianbao run``: the nightly crawl and extract, unattended.

One run at a time (a lock file under the data directory and, for a data location on
object storage, a lease object beside the data there); a run that was killed leaves an
archive that is append-only and crash-safe and a dataset that is switched atomically,
so the next run simply starts again. Every run writes ``runs/<run id>.json``.

Exit code: 0 when every site crawled and every document extracted in this run finished;
bit 1 set when a site broke (an error, or zero reports where earlier runs found some); bit
2 set when extraction failed on a document (error, timeout, too_large) or could not
publish (a full disk, no permission); 75 when another run or extract holds the lock, 4
when that run has held it for more than a day (stuck: an operator should look).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from crawler.archive.manifest import MANIFEST
from crawler.disk import storage_problem, try_lock, unlock
from extract.dataset.build import ExtractSummary, build_dataset, print_progress
from extract.dataset.store import DatasetStore, DatasetStoreError
from nianbao_common.lease import (
    STALE_AFTER_SECONDS,
    LeaseHeldError,
    LeaseLostError,
    StorageLease,
)
from nianbao_common.limits import DEFAULT_KEEP, Limits
from nianbao_common.paths import local_dir
from nianbao_common.storage import RemotePath, unreachable_errors

EXIT_SITE_BROKE = 1
EXIT_EXTRACT_FAILED = 2
EXIT_LOCK_STUCK = 4
EXIT_LOCKED = 75  # EX_TEMPFAIL: cron may simply try again next time
# A nightly run takes minutes to hours; one that has held the lock for a day is stuck, and
# the runs it turns away must not pass for "already running" (75) night after night.
STUCK_AFTER_SECONDS = 24 * 3600


class AlreadyRunningError(RuntimeError):
    """Another nianbao run holds the lock."""

    def __init__(self, message: str, *, stuck: bool = False) -> None:
        super().__init__(message)
        self.stuck = stuck

    @property
    def exit_code(self) -> int:
        """75 for a run in progress, 4 for one that has held the lock for a day."""
        return EXIT_LOCK_STUCK if self.stuck else EXIT_LOCKED


@contextmanager
def run_lock(data_dir: Path):
    """Hold ``<data_dir>/run.lock`` for the duration; the kernel frees it if we die."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "run.lock"
    handle = try_lock(path)
    if handle is None:
        holder = path.read_text().strip() or "?"
        held = time.time() - path.stat().st_mtime
        if held > STUCK_AFTER_SECONDS:
            raise AlreadyRunningError(
                f"run pid {holder} has held {path} for {held / 3600:.0f} h and looks "
                f"stuck: check it (ps -p {holder}), kill it if it is, and run again",
                stuck=True,
            )
        raise AlreadyRunningError(
            f"another run holds {path} (pid {holder}, for {held / 60:.0f} min); "
            "this one exits, try again when it has finished"
        )
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        unlock(handle)


@contextmanager
def driver_lock(data_dir: Path | RemotePath):
    """Hold the run lock of a data location for the duration: ``run.lock`` in its local
    data directory, and for a location on object storage the lease ``<URL>/run.lock``,
    which drivers on other machines meet too.

    Yields the check to run before publishing (None on disk, where the kernel's lock
    cannot be taken away): it raises ``DatasetStoreError`` once another driver has taken
    the lease over. Raises ``AlreadyRunningError`` when another run holds either, and
    ``DatasetStoreError`` when the storage does not let the lease be taken.
    """
    with run_lock(local_dir(data_dir)):
        if not isinstance(data_dir, RemotePath):
            yield None
            return
        lease = StorageLease(data_dir / "run.lock", new_run_id())
        try:
            taken_over = lease.acquire()
        except LeaseHeldError as error:
            raise _lease_refusal(error, lease) from error
        except extract_errors() as error:
            raise DatasetStoreError(
                f"the lease {lease.target} could not be taken: "
                + extract_problem(error, data_dir)
            ) from error
        if taken_over is not None:
            print(
                f"nianbao: took over {lease.target} from pid {taken_over.pid} on "
                f"{taken_over.host} (run {taken_over.run}), whose heartbeat stopped "
                f"at {_utc(taken_over.heartbeat)}",
                file=sys.stderr,
            )

        def still_held() -> None:
            try:
                lease.renew()
            except LeaseLostError as lost:
                raise DatasetStoreError(
                    f"another driver took over the lease {lease.target} while this "
                    "run went on (its heartbeat had not reached the storage for "
                    f"{STALE_AFTER_SECONDS / 60:.0f} min): nothing was published; the "
                    "current dataset version was kept"
                ) from lost

        try:
            yield still_held
        finally:
            unreleased: tuple[type[Exception], ...] = (OSError, *unreachable_errors())
            try:
                lease.release()
            except unreleased as error:
                print(
                    f"nianbao: the lease {lease.target} was not released ({error}); "
                    f"the next run takes it over {STALE_AFTER_SECONDS / 60:.0f} min "
                    "after its last heartbeat, or delete that object to free it now",
                    file=sys.stderr,
                )


def _lease_refusal(error: LeaseHeldError, lease: StorageLease) -> AlreadyRunningError:
    holder, where = error.holder, error.where
    now = time.time()
    who = f"pid {holder.pid} on {holder.host}"
    held = now - holder.since
    if held > STUCK_AFTER_SECONDS:
        return AlreadyRunningError(
            f"run {holder.run} ({who}) has held {where} since {_utc(holder.since)} "
            f"({held / 3600:.0f} h) and looks stuck, though its heartbeat goes on: "
            f"check it on {holder.host} (ps -p {holder.pid}), kill it if it is, and "
            "run again",
            stuck=True,
        )
    stale_at = holder.heartbeat + lease.stale_after_seconds
    return AlreadyRunningError(
        f"another run holds {where}: run {holder.run}, {who}, since "
        f"{_utc(holder.since)} (heartbeat {now - holder.heartbeat:.0f} s ago); this "
        "one exits, try again when it has finished. If that driver is gone, the lease "
        f"goes stale {lease.stale_after_seconds / 60:.0f} min after its last "
        f"heartbeat (at {_utc(stale_at)}) and the next run takes it over"
    )


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def extract_archive(
    data_dir: Path | RemotePath,
    *,
    force: bool = False,
    workers: int | None = None,
    progress: bool = True,
    limits: Limits | None = None,
    keep_versions: int = DEFAULT_KEEP,
    dry_run: bool = False,
    scheduler: str | None = None,
    before_publish: Callable[[], None] | None = None,
) -> ExtractSummary:
    """Build the dataset at ``data_dir`` (a path or URL) from its raw archive (no network).

    The archive is read under ``data_dir``: on disk by absolute path, which Dask workers
    (``scheduler``) read too; on object storage by ranged reads. The caller holds
    ``driver_lock(data_dir)``.
    """
    from crawler.archive.reader import iter_latest_reports

    archive = data_dir if isinstance(data_dir, RemotePath) else data_dir.resolve()
    return build_dataset(
        iter_latest_reports(archive),
        data_dir,
        force=force,
        workers=workers,
        progress=print_progress() if progress else None,
        limits=limits,
        keep_versions=keep_versions,
        dry_run=dry_run,
        scheduler=scheduler,
        before_publish=before_publish,
    )


def extract_record(extract: ExtractSummary) -> dict:
    """The extract part of a run record."""
    return {
        "documents": extract.documents,
        "extracted": extract.extracted,
        "reasons": extract.reasons,
        "agency_years": extract.reports,
        "rows": extract.rows,
        "statuses": extract.statuses,
        "cross_year_checks_failed": extract.cross_year_failed,
        "years_written": extract.years_written,
        "version": extract.version_id,
        "seconds": round(extract.seconds, 3),
        "changes": extract.changes.as_record(),
        "failed": [{"url": u, "problem": p} for u, p in extract.failed],
        "not_in_dataset": [{"url": u, "reason": r} for u, r in extract.not_in_dataset],
    }


def extract_errors() -> tuple[type[Exception], ...]:
    """What stops an extract run as a whole, with a line of ``extract_problem``: storage
    full, refused or unreachable, a damaged manifest, a dataset it cannot publish into."""
    return (OSError, sqlite3.Error, DatasetStoreError, *unreachable_errors())


def extract_problem(error: Exception, data_dir: Path | RemotePath) -> str:
    """One line for why the extract stopped (an error of ``extract_errors``): the
    store's own, object storage that did not answer, else ``storage_problem``'s."""
    if isinstance(error, DatasetStoreError):
        return str(error)
    if not isinstance(error, OSError | sqlite3.Error):
        return (
            f"the object storage of {data_dir} did not answer ({error}): check the "
            "network, the endpoint (AWS_ENDPOINT_URL) and the credentials, then run "
            "again; the archive and the current dataset version were kept"
        )
    # SQLite errors are the archive manifest's (on object storage, its merged copy).
    where = (
        data_dir / "raw" / MANIFEST
        if isinstance(error, sqlite3.Error)
        else str(data_dir)
    )
    # A file size limit reads as a full disk here, as it always has for the extract.
    return storage_problem(
        error,
        where,
        kept="the archive and the current dataset version were kept",
        size_limit_as_full=True,
    )


def _current_version(data_dir: Path | RemotePath) -> str | None:
    """The current dataset version's id; None when the storage cannot tell (the run
    record is written all the same)."""
    try:
        return DatasetStore(data_dir).current_id()
    except extract_errors():
        return None


def _report(data_dir: Path | RemotePath) -> Path | str:
    """The coverage report, or why it could not be drawn (the run itself succeeded)."""
    from extract.coverage import REPORT_DIR, write_report

    try:
        return write_report(data_dir, local_dir(data_dir) / REPORT_DIR)
    except Exception as error:  # noqa: BLE001 - a chart never fails the nightly job
        return f"not written: {type(error).__name__}: {error}"


def write_run_record(data_dir: Path, run_id: str, record: dict) -> Path:
    """Write ``runs/<run id>.json``."""
    runs = data_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{run_id}.json"
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def new_run_id() -> str:
    """A run id like the crawler's: UTC time, sortable."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def nightly_run(
    data_dir: Path | RemotePath,
    sites: tuple[str, ...] = ("all",),
    *,
    mirror: str | None = None,
    crawl_settings: dict | None = None,
    workers: int | None = None,
    limits: Limits | None = None,
    keep_versions: int = DEFAULT_KEEP,
    scheduler: str | None = None,
) -> tuple[int, dict]:
    """Crawl, then extract; returns the exit code and the run summary written to runs/.

    The archive and the dataset go to ``data_dir`` (a path or URL); the run records stay
    in its local data directory. ``scheduler``: crawl shards and extraction run on that
    Dask cluster.
    """
    from crawler.shards import crawl_sites

    started = time.monotonic()
    started_at = datetime.now(UTC)
    local = local_dir(data_dir)
    with driver_lock(data_dir) as still_held:
        crawl = crawl_sites(
            sites,
            data_dir,
            scheduler=scheduler,
            mirror=mirror,
            settings=crawl_settings,
            progress=True,
        )
        print(crawl.render(), flush=True)
        extract, problem = None, None
        try:
            extract = extract_archive(
                data_dir, workers=workers, limits=limits, keep_versions=keep_versions,
                scheduler=scheduler, before_publish=still_held,
            )  # fmt: skip
            print(extract.render(), flush=True)
        except extract_errors() as error:
            problem = extract_problem(error, data_dir)
            print(f"nianbao run: extract stopped: {problem}", file=sys.stderr)
    extract_ok = extract is not None and extract.ok
    code = (0 if crawl.ok else EXIT_SITE_BROKE) | (
        0 if extract_ok else EXIT_EXTRACT_FAILED
    )
    summary = {
        "run_id": crawl.run_id,
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "exit_code": code,
        "sites": {s.site: s.as_record() for s in crawl.sites},
        "reports_new": sum(s.counts.new for s in crawl.sites),
        "reports_changed": sum(s.counts.changed for s in crawl.sites),
        "reports_failed": sum(s.counts.failed for s in crawl.sites),
        "extract": extract_record(extract) if extract else {"error": problem},
        "checks_failed": extract.checks_failed if extract else None,
        "dataset_version": _current_version(data_dir),
    }
    if extract is not None:
        summary["report"] = str(_report(data_dir))
        print(f"report: {summary['report']}", flush=True)
    path = write_run_record(local, crawl.run_id, summary)
    print(f"run summary: {path}", file=sys.stderr)
    return code, summary
