"""The extract run: plan, extract on the pool or a Dask cluster, assemble the changed year files, publish.

The driver holds the archive listing and one state per document; the cells go from the
workers' staging files into the new version one table and year at a time. Staging and
versions live under the data location, a directory or a URL (``s3://…``): workers on
other machines write their rows there, and only the driver publishes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from extract.catalogue import TABLES
from extract.dataset.assemble import YearFile, assemble_year
from extract.dataset.changes import Changes, report_changes
from extract.dataset.crossyear import cross_year_checks
from extract.dataset.package import write_package
from extract.dataset.plan import (
    FAILED_STATUSES,
    REASON_FORCED,
    REASON_NO_DATASET,
    Listed,
    Plan,
    SourceState,
    choose_primaries,
    content_digest,
    keys_to_rewrite,
    plan_extraction,
    rows_needed,
)
from extract.dataset.pool import (
    ExtractionPool,
    InProcessExtraction,
    in_process_fits,
)
from extract.dataset.reuse import code_digest, converter_versions
from extract.dataset.rows import YEAR_TABLES, Source, arrow_schema, extractor_version
from extract.dataset.staging import staged_name
from extract.dataset.state import load_state, save_state
from extract.dataset.store import (
    DatasetStore,
    DatasetStoreError,
    VersionInfo,
    Where,
    count_rows,
    link_or_copy,
    parquet_metadata,
    read_parquet,
    write_parquet,
    year_path,
    years_in,
)
from nianbao_common.limits import DEFAULT_KEEP, Limits
from nianbao_common.storage import remove_tree

STAGING = ".extract-staging"
# A file `nianbao run --demo` leaves in its data directory: the reports are invented.
SYNTHETIC_MARK = "SYNTHETIC"
REASON_SCHEMA = "new dataset schema"
Progress = Callable[[int, int], None]


@dataclass
class ExtractSummary:
    """What one extract run did (or, with dry_run, would do)."""

    documents: int = 0
    extracted: int = 0
    reused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    reports: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    checks_failed: int = 0
    # Documents extracted in this run that ended in error, timeout or too_large.
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Agencies in the dataset whose name matches no kind (extract/labels/agency_kinds.csv).
    unknown_kinds: int = 0
    # Applicant columns whose carried_forward in Y differs from carried_over in Y+1.
    cross_year_failed: int = 0
    # Documents that give no agency-year (no agency name or year anywhere), by reason.
    not_in_dataset: list[tuple[str, str]] = field(default_factory=list)
    years_written: list[int] = field(default_factory=list)
    seconds: float = 0.0
    version_id: str | None = None
    pruned: list[str] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)
    plan: Plan | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """No document extracted in this run failed (error, timeout, too_large)."""
        return not self.failed

    def render(self) -> str:
        """A one-screen summary."""
        why = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items()))
        head = "extract (dry run)" if self.dry_run else "extract"
        lines = [
            f"{head}: {self.documents} archived reports, {self.extracted} extracted"
            + (f" ({why})" if why else "")
            + f", {self.reused} unchanged, in {self.seconds:.1f} s"
        ]
        if self.dry_run:
            return "\n".join(lines)
        lines += [
            f"dataset {self.version_id}: {self.reports} agency-years; "
            + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()),
            "statuses: "
            + ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items())),
            f"reports with failed checks: {self.checks_failed}; cross-year checks "
            f"failed: {self.cross_year_failed}; agencies of unknown kind: "
            f"{self.unknown_kinds}",
            f"year files rewritten: {', '.join(map(str, self.years_written)) or 'none'}",
            self.changes.render(),
        ]
        if self.failed:
            lines.append(
                f"documents that failed (error, timeout, too_large): {len(self.failed)}"
            )
            lines += [f"  {url}: {problem}" for url, problem in self.failed[:8]]
        if self.not_in_dataset:
            lines.append(f"documents not in the dataset: {len(self.not_in_dataset)}")
            reasons = Counter(reason for _, reason in self.not_in_dataset)
            lines += [f"  {n} × {reason}" for reason, n in reasons.most_common(8)]
        return "\n".join(lines)


def print_progress(stream=sys.stderr) -> Progress:
    """A progress callback: done/total, rate and ETA, at most every 2 s, one line each.

    Plain lines rather than a carriage-return bar, so a log file reads as well as a
    terminal.
    """
    started = time.monotonic()
    last = [started]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 2 and done < total:
            return
        last[0] = now
        rate = done / max(now - started, 1e-9)
        eta = (total - done) / rate if rate else 0
        stream.write(
            f"extract {done}/{total} ({done / total:.0%})  {rate:.1f} reports/s  "
            f"ETA {eta:.0f} s\n"
        )
        stream.flush()

    return report


def _same_schema(version_dir: Where) -> bool:
    for path in version_dir.glob("*/year=*/part-0.parquet"):
        table = path.parent.parent.name
        if table in YEAR_TABLES and not parquet_metadata(
            path
        ).schema.to_arrow_schema().equals(arrow_schema(table)):
            return False
    return True


def list_sources(sources: Iterable[Source]) -> tuple[dict[str, Source], list[Listed]]:
    """The archived documents by URL, and the listing the planner reads."""
    by_url: dict[str, Source] = {}
    listing = []
    for source in sources:
        by_url[source.url] = source
        attachments = [(a.url, a.sha256) for a in source.attachments]
        listing.append(
            Listed(
                source.url,
                source.site,
                content_digest(source.sha256, attachments),
                source.fetched_at,
            )
        )
    return by_url, listing


def build_dataset(
    sources: Iterable[Source],
    data_dir: Where,
    *,
    force: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    limits: Limits | None = None,
    keep_versions: int = DEFAULT_KEEP,
    dry_run: bool = False,
    scheduler: str | None = None,
    before_publish: Callable[[], None] | None = None,
) -> ExtractSummary:
    """Extract what changed in ``sources`` and publish a new dataset version under data_dir.

    ``data_dir`` is a directory or a ``RemotePath`` (``s3://…``). With ``scheduler``
    (``tcp://host:8786``) the documents are extracted on that Dask cluster, else on
    worker processes of this machine. The caller holds the run lock (``nianbao
    extract`` and ``nianbao run`` do); ``before_publish`` is called once the version is
    written, just before it is marked complete and made current, and raises to keep it
    from being published (the run's lease on object storage was taken over): it stays
    an incomplete version, which no reader sees and the next run removes.
    """
    started = time.monotonic()
    summary = ExtractSummary(dry_run=dry_run)
    store = DatasetStore(data_dir)
    previous_dir = store.current()
    previous = load_state(previous_dir)
    force_reason = None
    if force:
        force_reason = REASON_FORCED
    elif previous_dir is None or not previous:
        force_reason = REASON_NO_DATASET
    elif not _same_schema(previous_dir):
        force_reason = REASON_SCHEMA
    code = code_digest()
    synthetic = (data_dir / SYNTHETIC_MARK).exists()
    by_url, listing = list_sources(sources)
    if not listing and previous:
        raise DatasetStoreError(
            f"the archive under {data_dir} lists no report, but the current dataset "
            f"was built from {len(previous)}: nothing was published. Check that "
            "NIANBAO_DATA (or --data-dir) names the data directory with raw/"
        )
    contents = {listed.url: listed.content for listed in listing}
    plan = plan_extraction(
        listing, previous, code, converter_versions(), force_reason=force_reason
    )
    summary.plan = plan
    summary.documents = len(listing)
    summary.reused = len(plan.reuse)
    summary.reasons = plan.reasons()
    summary.extracted = len(plan.extract)
    unchanged = previous_dir is not None and not plan.extract and not plan.gone
    if dry_run or unchanged:
        # Nothing to extract and nothing gone: the current version stays current, and
        # the kept versions are not pushed out by runs that changed nothing.
        if unchanged and not dry_run:
            assert previous_dir is not None
            _describe_unchanged(summary, previous_dir, previous)
        summary.seconds = time.monotonic() - started
        return summary

    with _staging_area(data_dir) as staging:
        to_extract = [by_url[url] for url in plan.extract]
        pool = _extraction(
            scheduler, workers, staging, limits or Limits(), code, to_extract
        )
        fresh = pool.run(to_extract, [contents[s.url] for s in to_extract], progress)
        states = {url: previous[url] for url in plan.reuse}
        states.update({s.url: s for s in fresh.states})
        primary = choose_primaries(states.values())
        old_primary = {s.key: s for s in previous.values() if s.is_primary and s.key}
        extracted = {s.url for s in fresh.states}
        needed = rows_needed(primary, old_primary, extracted)
        if needed:
            again = pool.run([by_url[u] for u in needed], [contents[u] for u in needed])
            states.update({s.url: s for s in again.states})
            extracted |= set(needed)
            primary = choose_primaries(states.values())
        rewrite = keys_to_rewrite(primary, old_primary, extracted)
        summary.changes = report_changes(old_primary, primary, rewrite)
        new_dir = store.new_version()
        try:
            _write_version(
                new_dir, previous_dir, staging, states, primary, old_primary, rewrite,
                extracted, summary.changes, reuse_nothing=force_reason is not None,
                synthetic=synthetic, threads=workers or _cores(),
            )  # fmt: skip
        except BaseException:
            # A full disk or an interrupt: the half-written version goes.
            with contextlib.suppress(OSError):
                remove_tree(new_dir)
            raise

    summary.extracted = len(extracted)
    summary.years_written = sorted({year for _, year in rewrite})
    _describe(summary, new_dir, states, primary)
    summary.failed = [
        (s.url, _failure(s)) for s in states.values()
        if s.url in extracted and s.status in FAILED_STATUSES
    ]  # fmt: skip
    if before_publish is not None:
        before_publish()
    store.complete(
        new_dir,
        VersionInfo(
            id=new_dir.name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            reports=summary.reports,
            cells=sum(summary.rows.get(t, 0) for t in TABLES),
            extractor_version=extractor_version(),
            previous=previous_dir.name if previous_dir else None,
            changes=summary.changes.as_record(),
        ),
    )
    store.publish(new_dir)
    summary.pruned = store.prune(keep_versions, writing=new_dir)
    summary.seconds = time.monotonic() - started
    return summary


def _extraction(
    scheduler: str | None,
    workers: int | None,
    staging: Where,
    limits: Limits,
    code: str,
    sources: list[Source],
):
    """The Dask cluster at ``scheduler``; else this process for a run too small to pay
    for starting workers (unless a worker count is asked for); else this machine's
    worker processes."""
    if scheduler is not None:
        # Imported only here: the one-machine default needs no Dask installed.
        from extract.dataset.cluster import ClusterExtraction

        return ClusterExtraction(scheduler, staging, limits, code)
    if workers is None and in_process_fits(sources):
        return InProcessExtraction(staging, limits, code)
    return ExtractionPool(workers or _cores(), staging, limits, code)


@contextmanager
def _staging_area(data_dir: Where) -> Iterator[Where]:
    """A fresh folder for the workers' rows, removed whatever happens."""
    root = data_dir / STAGING
    with contextlib.suppress(OSError):
        remove_tree(root)  # a killed run's leftovers
    staging = root / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        with contextlib.suppress(OSError):
            remove_tree(root)


def _describe(
    summary: ExtractSummary,
    version_dir: Where,
    states: dict[str, SourceState],
    primary: dict[tuple[str, int], SourceState],
) -> None:
    summary.version_id = version_dir.name
    summary.reports = len(primary)
    summary.rows = {t: count_rows(version_dir / t) for t in ("reports", *TABLES)}
    summary.statuses = dict(Counter(s.status for s in primary.values()))
    summary.checks_failed = sum(
        1 for s in primary.values() if s.status == "checks_failed"
    )
    summary.not_in_dataset = [
        (s.url, s.error) for s in states.values() if s.key is None and s.error
    ]
    crossed = version_dir / "cross_year_checks" / "part-0.parquet"
    if crossed.exists():
        status = read_parquet(crossed, columns=["status"])["status"]
        summary.cross_year_failed = pc.sum(pc.equal(status, "fail")).as_py() or 0
    summary.unknown_kinds = len(
        {s.agency_id for s in primary.values() if not s.agency.get("agency_kind")}
    )


def _describe_unchanged(
    summary: ExtractSummary, version_dir: Where, states: dict[str, SourceState]
) -> None:
    primary = {s.key: s for s in states.values() if s.is_primary and s.key}
    _describe(summary, version_dir, states, primary)


def _failure(state: SourceState) -> str:
    return state.failure or state.status


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _write_version(
    new_dir: Where,
    previous_dir: Where | None,
    staging: Where,
    states: dict[str, SourceState],
    primary: dict[tuple[str, int], SourceState],
    old_primary: dict[tuple[str, int], SourceState],
    rewrite: set[tuple[str, int]],
    extracted: set[str],
    changes: Changes,
    *,
    reuse_nothing: bool,
    synthetic: bool,
    threads: int,
) -> None:
    years = {year for _, year in rewrite}
    staged_urls: dict[int, set[str]] = {}
    for url in extracted:
        if (year := states[url].year) is not None:
            staged_urls.setdefault(year, set()).add(url)
    jobs = []
    for table in YEAR_TABLES:
        for year in sorted(years | years_in(previous_dir, table)):
            target = year_path(new_dir, table, year)
            if year not in years:
                assert previous_dir is not None
                link_or_copy(year_path(previous_dir, table, year), target)
                continue
            chosen = [key for key in rewrite if key[1] == year and key in primary]
            year_file = YearFile(
                table=table,
                year=year,
                previous=year_path(previous_dir, table, year) if previous_dir else None,
                keep_previous=not reuse_nothing,
                replaced=frozenset(agency for agency, y in rewrite if y == year),
                added=frozenset(agency for agency, _ in chosen),
                rejected=frozenset(
                    staged_urls.get(year, set()) - {primary[key].url for key in chosen}
                ),
                compared=frozenset(
                    agency for agency, _ in chosen if (agency, year) in old_primary
                ),
                synthetic=synthetic,
            )
            staged: list[Where] = list((staging / table).glob(staged_name(year, "*")))
            staged.sort(key=lambda path: path.name)
            jobs.append((target, year_file, staged))
    # Year files are independent: they are assembled on as many threads as the run has
    # workers (Arrow's reading, joins and writing run outside the GIL), and their changed
    # cells are added up in table and year order.
    with ThreadPoolExecutor(max_workers=threads) as executor:
        for part in [executor.submit(_assemble_year, *job) for job in jobs]:
            changes.add_cells(part.result())
    _write_agencies(new_dir / "agencies" / "part-0.parquet", primary.values())
    write_parquet(
        cross_year_checks(new_dir), new_dir / "cross_year_checks" / "part-0.parquet"
    )
    write_parquet(changes.cell_table(), new_dir / "_nianbao" / "changes.parquet")
    write_package(new_dir, version=new_dir.name, synthetic=synthetic)
    save_state(new_dir, states.values())


def _assemble_year(target: Where, year_file: YearFile, staged: list[Where]) -> Changes:
    changes = Changes()
    assemble_year(target, year_file, staged, changes)
    return changes


def _write_agencies(target: Where, primaries: Iterable[SourceState]) -> None:
    latest: dict[str, dict] = {}
    for state in sorted(primaries, key=lambda s: s.year or 0):
        if state.agency_id:
            latest[state.agency_id] = state.agency
    schema = arrow_schema("agencies")
    columns = {
        name: [latest[a].get(name) for a in sorted(latest)] for name in schema.names
    }
    write_parquet(pa.table(columns, schema=schema), target)
