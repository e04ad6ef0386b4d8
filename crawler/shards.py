"""Crawl shards: sites grouped by host, each group crawled in a process of its own, here or on Dask.

No host is crawled from two places at once.

``crawl_sites`` is what ``nianbao crawl`` and ``nianbao run`` call. With the data on disk and
no scheduler it is ``run_crawl``, as always. With a scheduler (``--scheduler``,
``DASK_SCHEDULER_ADDRESS``) or a data location on object storage, the sites are grouped
into shards: sites that share a host (of their start URLs or extra hosts) go into one,
since Scrapy keeps its politeness per host within one process. Each shard runs
``run_crawl`` in a child process (the Twisted reactor starts once per process) and returns
its sites' ``SiteSummary``; the driver puts them into one ``CrawlSummary``, so the summary,
the zero-report alarm and the exit code read as on one machine.

Where a shard writes: with the data on disk, straight into the archive (the workers run on
this machine or share its filesystem; one writer per site by its lock). On object storage,
into a staging folder on the worker (``crawl-staging/<first site>`` under
``$NIANBAO_LOCAL``, else ``./data``), started from its sites' manifest shards and published
when the crawl ends (``crawler.archive.remote``). A Dask worker killed mid-crawl takes the
shard's process with it; Dask runs the task again, and a run on the same machine finds
the staging folder, cuts off what the killed writer left uncommitted and goes on from what
it committed, so no more than the uncommitted group is fetched again.

Dask is imported here only, and only when a scheduler is given.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from pathlib import Path
from urllib.parse import urlsplit

import click

from crawler.archive.remote import publish_archive, stage_sites
from crawler.cli import (
    CrawlSummary,
    SiteSummary,
    new_run_id,
    run_crawl,
    scrapy_settings,
    wanted_sites,
)
from crawler.disk import storage_problem
from crawler.registry import Site
from nianbao_common.paths import data_location, local_dir
from nianbao_common.storage import RemotePath

STAGING = "crawl-staging"
# Lines of a shard process's log quoted when it ends without its summary.
_LOG_LINES_SHOWN = 3
_PR_SET_PDEATHSIG = 1


def site_hosts(site: Site) -> set[str]:
    """The hosts a site is known to be crawled on: its start URLs' and its extra hosts."""
    hosts = {urlsplit(url).hostname or "" for url in site.start_urls}
    return (hosts | set(site.extra_hosts)) - {""}


def host_groups(sites: Sequence[Site]) -> list[list[str]]:
    """The sites' names in groups that share no host with one another (sorted).

    Sites sharing a host, directly or through another site, are one group.
    """
    group = {site.name: site.name for site in sites}

    def root(name: str) -> str:
        while group[name] != name:
            group[name] = group[group[name]]
            name = group[name]
        return name

    first_of_host: dict[str, str] = {}
    for site in sites:
        for host in site_hosts(site):
            other = first_of_host.setdefault(host, site.name)
            group[root(site.name)] = root(other)
    groups: dict[str, list[str]] = {}
    for site in sites:
        groups.setdefault(root(site.name), []).append(site.name)
    return sorted(sorted(names) for names in groups.values())


def plan_shards(
    sites: Sequence[Site], *, sites_per_shard: int = 1, workers: int = 1
) -> list[list[str]]:
    """The sites' names in shards (sorted): whole host groups packed into as few shards
    of about ``sites_per_shard`` sites as keep every one of ``workers`` busy.

    A process crawls many sites at once as cheaply as one (Scrapy keeps each host's
    politeness), while a process of its own costs ~1.4 CPU s and ~90 MB: on two workers
    a 200-site crawl took 2.13× its politeness floor a site a shard, 1.04× in shards of
    25. The largest groups are placed first, each into the shard holding the fewest.
    """
    groups = sorted(host_groups(sites), key=lambda names: (-len(names), names))
    count = max(-(-len(sites) // max(sites_per_shard, 1)), min(workers, len(groups)))
    shards: list[list[str]] = [[] for _ in range(min(count, len(groups)))]
    for names in groups:
        min(shards, key=len).extend(names)
    return sorted(sorted(names) for names in shards)


def crawl_shard(
    names: list[str],
    where: str,
    run_id: str,
    mirror: str | None,
    settings: dict,
    ad_hoc: Site | None,
    progress: bool = False,
) -> list[SiteSummary]:
    """The task: crawl one shard's sites (``ad_hoc`` among them when given) in a child
    process into the data location ``where``; their summaries.

    On object storage the shard is staged and published (see the module's docstring);
    a storage error there is each site's error, and the staging folder is kept for the
    next run of the shard.
    """
    location = data_location(where)
    if isinstance(location, Path):
        return _crawl_in_child(
            names, location, run_id, mirror, settings, ad_hoc, progress
        )
    remote = location / "raw"
    staging = local_dir(location).resolve() / STAGING / names[0]
    kept = f"the crawl stays staged in {staging} for the next run of these sites"
    try:
        stage_sites(remote, staging / "raw", names)
    except (OSError, sqlite3.Error) as error:
        problem = storage_problem(error, str(remote), kept="nothing was crawled")
        return [
            SiteSummary(name, error=f"archive not read: {problem}") for name in names
        ]
    summaries = _crawl_in_child(
        names, staging, run_id, mirror,
        {**settings, "NIANBAO_ARCHIVE_URL": str(remote)}, ad_hoc, progress,
    )  # fmt: skip
    try:
        publish_archive(staging / "raw", remote, names)
    except (OSError, sqlite3.Error) as error:
        problem = storage_problem(error, str(remote), kept=kept)
        for summary in summaries:
            summary.error = summary.error or f"archive upload failed: {problem}"
        return summaries
    shutil.rmtree(staging, ignore_errors=True)
    return summaries


def _crawl_in_child(
    names: list[str],
    data_dir: Path,
    run_id: str,
    mirror: str | None,
    settings: dict,
    ad_hoc: Site | None,
    progress: bool,
) -> list[SiteSummary]:
    declared = [name for name in names if ad_hoc is None or name != ad_hoc.name]
    with tempfile.TemporaryDirectory(prefix="nianbao-shard-") as scratch:
        job = Path(scratch) / "job.pickle"
        result = Path(scratch) / "result.pickle"
        log = Path(scratch) / "crawl.log"
        job.write_bytes(
            pickle.dumps(
                {
                    "sites": declared, "mirror": mirror, "data_dir": data_dir,
                    "settings": settings, "ad_hoc": ad_hoc, "run_id": run_id,
                    "progress": progress, "parent": os.getpid(), "result": result,
                }
            )
        )  # fmt: skip
        with log.open("wb") as output:
            # Progress goes to the terminal of a shard crawled here; a worker's to its log.
            process = subprocess.Popen(
                [sys.executable, "-m", "crawler.shards", str(job)],
                stdout=None if progress else output,
                stderr=None if progress else subprocess.STDOUT,
            )
            code = _wait(process)
        if result.is_file():
            return pickle.loads(result.read_bytes())
        tail = log.read_text(errors="replace").strip().splitlines()[-_LOG_LINES_SHOWN:]
    reason = f"the crawl shard's process ended with exit code {code}" + (
        f": {' | '.join(tail)}" if tail else ""
    )
    return [SiteSummary(name, error=reason) for name in names]


def _wait(process: subprocess.Popen) -> int:
    """The child's exit code. Ctrl-C reaches the child too, which stops gracefully and
    still writes its summary, so the parent waits on."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def crawl_sites(
    sites: list[str] | tuple[str, ...],
    location: str | Path | RemotePath | None = None,
    *,
    scheduler: str | None = None,
    mirror: str | None = None,
    settings: dict | None = None,
    progress: bool = False,
    ad_hoc: Site | None = None,
) -> CrawlSummary:
    """Crawl the named sites (or ``all``) into the archive of the data location
    ``location`` (default ``$NIANBAO_DATA``), in shards on the Dask cluster at
    ``scheduler`` when given; the run's summary, as ``run_crawl`` gives it.

    Example:
        >>> summary = crawl_sites(["all"], "s3://bucket/nianbao",
        ...                       scheduler="tcp://10.0.0.5:8786")   # doctest: +SKIP
    """
    where = data_location(location)
    if scheduler is None and isinstance(where, Path):
        return run_crawl(
            sites, mirror=mirror, data_dir=where, settings=settings,
            progress=progress, ad_hoc=ad_hoc,
        )  # fmt: skip
    overrides = dict(settings or {})
    merged = scrapy_settings(overrides)
    wanted = wanted_sites(sites, merged, ad_hoc)
    from scrapy.spiderloader import SpiderLoader

    from crawler.platforms import declared_site

    loader = SpiderLoader.from_settings(merged)
    declared = [declared_site(loader.load(name)) for name in wanted]
    if ad_hoc is not None:
        wanted.append(ad_hoc.name)
        declared.append(ad_hoc)
    run_id = new_run_id()
    target = str(where if isinstance(where, RemotePath) else where.resolve())
    if scheduler is None:
        shards = [sorted(wanted)]
        results = [
            crawl_shard(shards[0], target, run_id, mirror, overrides, ad_hoc, progress)
        ]
    else:
        sites_per_shard = merged.getint("NIANBAO_SHARD_SITES")

        def jobs(workers: int) -> list[tuple]:
            shards = plan_shards(
                declared, sites_per_shard=sites_per_shard, workers=workers
            )
            return [
                (names, target, run_id, mirror, overrides, ad_hoc) for names in shards
            ]

        results = _on_cluster(scheduler, jobs, progress)
    by_site = {s.site: s for result in results for s in result}
    summary = CrawlSummary(run_id=run_id, data_dir=where)
    summary.sites = [
        by_site.get(name) or SiteSummary(name, error="its crawl shard returned nothing")
        for name in wanted
    ]
    return summary


def _on_cluster(
    scheduler: str, plan: Callable[[int], list[tuple]], progress: bool
) -> list[list[SiteSummary]]:
    """The summaries of the jobs ``plan`` gives for the cluster's number of workers,
    each shard crawled as a task on the Dask cluster; a shard that could not run has
    every site in error."""

    def failed(names: list[str], reason: str) -> list[SiteSummary]:
        return [SiteSummary(name, error=reason) for name in names]

    try:
        from distributed import Client
    except ImportError:
        reason = '--scheduler needs the cluster extra: pip install -e ".[cluster]"'
        return [failed(job[0], reason) for job in plan(1)]
    try:
        client = Client(scheduler, timeout=30, set_as_default=False)
    except OSError as error:
        reason = f"no Dask scheduler answers at {scheduler}: {error}"
        return [failed(job[0], reason) for job in plan(1)]
    with client:
        jobs = plan(max(len(client.nthreads()), 1))
        results: list[list[SiteSummary]] = [[] for _ in jobs]
        executor = client.get_executor(pure=False)
        futures = {
            executor.submit(crawl_shard, *job): index for index, job in enumerate(jobs)
        }
        for done, future in enumerate(as_completed(futures), 1):
            index = futures[future]
            names = jobs[index][0]
            try:
                results[index] = future.result()
            except Exception as error:  # noqa: BLE001 - a shard's failure is its sites' error
                results[index] = failed(
                    names, f"the crawl shard failed: {type(error).__name__}: {error}"
                )
            if progress:
                click.echo(
                    f"… crawl shard of {_named(names)} ended ({done} of {len(jobs)})",
                    err=True,
                )
    return results


def _named(names: list[str]) -> str:
    """A shard's sites for a progress line: a few names, then how many more."""
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"


def _die_with_parent(parent: int) -> None:
    """Be killed when the parent dies (Linux): a Dask worker killed mid-crawl must not
    leave its crawl running, holding the sites' locks against the task's rerun."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _child(job_path: str) -> None:
    """The shard's process: ``run_crawl`` of the job, its sites' summaries to a file."""
    job = pickle.loads(Path(job_path).read_bytes())
    _die_with_parent(job["parent"])
    summary = run_crawl(
        job["sites"], mirror=job["mirror"], data_dir=job["data_dir"],
        settings=job["settings"], progress=job["progress"], ad_hoc=job["ad_hoc"],
        run_id=job["run_id"],
    )  # fmt: skip
    job["result"].write_bytes(pickle.dumps(summary.sites))


if __name__ == "__main__":
    _child(sys.argv[1])
