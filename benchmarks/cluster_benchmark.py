"""Issue 19's speed: extraction and a fleet crawl on this machine beside a Dask cluster on 127.0.0.1.

Extraction: builds an archive of ``--reports`` realistic reports (rerun_benchmark's
builder: Word-style HTML pages, ~10% PDF attachments, ~1% DOCX), then times
``nianbao extract --all`` as an operator runs it (a process of its own, imports
included) through the one-machine pool with 1 and 2 workers, and with ``--scheduler``
through a real ``dask scheduler`` with 1 then 2 ``dask worker`` processes of one thread
each, all started here on 127.0.0.1 and stopped on exit. Each is run ``--repeat`` times
and the fastest run counts (other work on the machine only ever adds time). Targets: the
cluster within 10% of the pool at equal cores; 2 workers ≥ 1.8× one.

Crawl: ``--sites`` TRS sites of 东城's shape (crawl_benchmark's pages, one host name
each, ``--site-reports`` reports each) served by one loopback server in this process
through the mirror layout, each site with its own download delay (``--delays``;
AutoThrottle and delay jitter off, so the delay is exactly the politeness). The fleet is
crawled by ``nianbao crawl all`` (its spiders from fleet_sites.py) on one machine, then
with ``--scheduler`` through 2 workers of ``--crawl-threads`` threads, once for each of
``--shard-sites`` (NIANBAO_SHARD_SITES: 25 sites a shard, and 1, a site a shard as before).
Reported: wall time against the politeness floor (the slowest site's requests × its
delay, requests counted by the server) and the manifest's write rate.

Sizes for docs/capacity.md: archive bytes per report and dataset bytes per cell.

    python3 benchmarks/cluster_benchmark.py [--reports 5000] [--sites 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402
from crawl_benchmark import ROOT_URL as TEMPLATE_URL  # noqa: E402
from crawl_benchmark import build_pages  # noqa: E402
from rerun_benchmark import PeakMemory, build_archive  # noqa: E402

from crawler.archive.reader import iter_latest_reports  # noqa: E402
from nianbao.demo.server import Page, SnapshotServer  # noqa: E402
from tests.fixtures.processes import stop_sessions  # noqa: E402

# The `dask` of this interpreter, as tests/test_cluster.py starts it: the workers import
# the project from the environment this script runs in.
DASK = [sys.executable, "-m", "dask"]
NIANBAO = [sys.executable, "-m", "nianbao.cli"]
TEMPLATE_HOST = TEMPLATE_URL.split("/")[2]
# Tables with one row per cell of the template (the others are one row per report,
# agency, check or section).
CELL_TABLES = ("active_disclosure", "applications", "reviews_litigation")
STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line: wall-clock time and time since start, for a terminal or a log."""
    elapsed = time.monotonic() - STARTED
    print(f"[{time.strftime('%H:%M:%S')} +{elapsed:6.0f}s] {message}", flush=True)


def environment() -> dict[str, str]:
    """This environment with the project and the fleet's spiders importable, and no
    scheduler inherited: a pool run must not go to a cluster by DASK_SCHEDULER_ADDRESS."""
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    path = os.pathsep.join(
        filter(None, [str(ROOT), str(BENCHMARKS), env.get("PYTHONPATH")])
    )
    # The README's Dask settings: a worker may start processes (each extraction task's
    # isolated worker), and Dask's own housekeeping keeps off the cores.
    return {
        **env,
        "PYTHONPATH": path,
        "DASK_CONFIG": str(ROOT / "nianbao" / "dask.yaml"),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

    Each is started in a session of its own, so stopping it stops what it started (a
    nanny's worker, a worker's crawl shards); all are stopped when the context ends.
    """

    def __init__(self, scratch: Path, env: dict[str, str]) -> None:
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.workers: list[subprocess.Popen] = []
        self.scheduler: subprocess.Popen | None = None

    def _start(self, command: list[str], name: str) -> subprocess.Popen:
        return subprocess.Popen(
            command, stdout=(self.scratch / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True, env=self.env,
            cwd=self.scratch,
        )  # fmt: skip

    def __enter__(self) -> Cluster:
        self.scheduler = self._start(
            [*DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], "scheduler",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(
                    f"dask scheduler exited: see {self.scratch}/scheduler.log"
                )
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"dask scheduler not listening after 60 s: {self.scratch}")

    def __exit__(self, *exc) -> None:
        self.stop_workers()
        if self.scheduler is not None:
            stop_sessions([self.scheduler], 30)

    def add_workers(self, count: int, nthreads: int) -> None:
        """Start ``count`` more workers and wait until the scheduler counts them all."""
        for _ in range(count):
            number = len(self.workers)
            self.workers.append(
                self._start(
                    [
                        *DASK,
                        "worker",
                        self.address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        str(nthreads),
                        "--no-dashboard",
                        "--memory-limit",
                        "0",
                        "--local-directory",
                        str(self.scratch),
                    ],
                    f"worker-{number}",
                )  # fmt: skip
            )
        self._wait_for(len(self.workers))

    def stop_workers(self) -> None:
        stop_sessions(self.workers, 30)
        self.workers = []
        if self.scheduler is not None and self.scheduler.poll() is None:
            self._wait_for(0)

    def _wait_for(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            deadline = time.monotonic() + 120
            while len(client.scheduler_info(n_workers=-1)["workers"]) != count:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not {count} Dask workers after 120 s: {self.scratch}"
                    )
                time.sleep(0.2)


def run_logged(
    command: list[str], log_path: Path, env: dict[str, str]
) -> tuple[float, int]:
    """Run ``command`` to its end, its output to ``log_path``; (seconds, exit code)."""
    started = time.perf_counter()
    with log_path.open("wb") as output:
        code = subprocess.run(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            check=False,
        ).returncode
    return time.perf_counter() - started, code


def tail(path: Path, lines: int = 8) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def children_cpu() -> float:
    """CPU seconds of this process's ended (waited for) descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- extraction --------------------------------------------------------------------------


@dataclass
class Extraction:
    reports: int
    attached: int
    archive_bytes: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    dataset_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    statuses: str = ""

    def best(self, way: str) -> float:
        return min(self.seconds[way])

    def rate(self, way: str) -> float:
        return self.reports / self.best(way)


def extract_once(
    way: str, data_dir: Path, scratch: Path, env: dict, extra: list[str], reports: int
) -> tuple[float, str]:
    """Seconds of one ``nianbao extract --all`` and its statuses line."""
    log_path = scratch / f"extract-{way.replace(' ', '-')}.log"
    seconds, code = run_logged(
        [*NIANBAO, "extract", "--all", "--data-dir", str(data_dir), *extra],
        log_path,
        env,
    )
    if code != 0:
        raise RuntimeError(f"nianbao extract ({way}) exited {code}:\n{tail(log_path)}")
    output = log_path.read_text(errors="replace")
    # Every run must have extracted the whole archive, or its time means nothing.
    if f", {reports} extracted" not in output:
        raise RuntimeError(
            f"nianbao extract ({way}) left reports out:\n{tail(log_path)}"
        )
    return seconds, next(
        (line for line in output.splitlines() if line.startswith("statuses:")), ""
    )


def dataset_size(data_dir: Path) -> tuple[int, dict[str, int]]:
    """Bytes of the current dataset version and rows of each of its tables."""
    version = (data_dir / "parquet").resolve()
    rows = {
        table.name: sum(
            pq.ParquetFile(f).metadata.num_rows for f in table.rglob("*.parquet")
        )
        for table in sorted(version.iterdir())
        if table.is_dir()
    }
    return tree_bytes(version), rows


def bench_extraction(args, base: Path, env: dict[str, str]) -> Extraction:
    data_dir = base / "extract-data"
    log(f"building an archive of {args.reports} reports in {data_dir}")
    build_archive(data_dir, args.reports, args.seed)
    sources = list(iter_latest_reports(data_dir))
    result = Extraction(
        reports=len(sources),
        attached=sum(1 for s in sources if s.attachments),
        archive_bytes=tree_bytes(data_dir / "raw"),
    )
    log(
        f"archive: {result.reports} reports ({result.attached} with attachments), "
        f"{result.archive_bytes / 1e6:.1f} MB"
    )

    def timed(way: str, extra: list[str]) -> None:
        for attempt in range(1, args.repeat + 1):
            seconds, result.statuses = extract_once(
                way, data_dir, base, env, extra, result.reports
            )
            result.seconds.setdefault(way, []).append(seconds)
            log(
                f"extract --all, {way:<18} run {attempt}/{args.repeat}: {seconds:6.1f} s "
                f"({result.reports / seconds:6.1f} reports/s)"
            )

    timed("pool 1 worker", ["--workers", "1"])
    timed("pool 2 workers", ["--workers", "2"])
    with Cluster(base / "dask-extract", env) as cluster:
        log(f"dask scheduler at {cluster.address}; starting 1 worker (1 thread)")
        cluster.add_workers(1, nthreads=1)
        timed("cluster 1 worker", ["--scheduler", cluster.address])
        log("starting a second worker (1 thread)")
        cluster.add_workers(1, nthreads=1)
        timed("cluster 2 workers", ["--scheduler", cluster.address])
    result.dataset_bytes, result.rows = dataset_size(data_dir)
    return result


# --- crawl -------------------------------------------------------------------------------


@dataclass
class Fleet:
    delays: dict[str, float]  # host → seconds
    names: dict[str, str]  # host → site name
    pages: dict[str, Page]
    spiders: Path


def build_fleet(args, base: Path) -> Fleet:
    """The fleet's pages on one server (crawl_benchmark's site, under one host name per
    site) and the file fleet_sites.py reads its spiders from."""
    rng = random.Random(args.seed)
    low, high = args.site_reports
    by_size: dict[int, dict[str, Page]] = {}
    fleet = Fleet({}, {}, {}, base / "fleet.json")
    rows = {}
    for number in range(args.sites):
        name, host = f"fleet_{number:04d}", f"www.fleet{number:04d}.gov.cn"
        size = rng.randint(low, high)
        if size not in by_size:
            by_size[size] = build_pages(size)[0]
        for path, page in by_size[size].items():
            rest = path.removeprefix(f"/{TEMPLATE_HOST}")
            fleet.pages[f"/{host}{rest}"] = Page(page.body, page.content_type)
        fleet.delays[host] = rng.choice(args.delays)
        fleet.names[host] = name
        root = TEMPLATE_URL.replace(TEMPLATE_HOST, host)
        rows[name] = {
            "row": {
                "division_code": "110101", "agency": f"模拟第{number}区人民政府",
                "platform": "trs", "list_root": root,
                "start_urls": [root + "{year}nb/"], "years": [2020],
            },
            "delay": fleet.delays[host],
        }  # fmt: skip
    fleet.spiders.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return fleet


@dataclass
class Crawl:
    way: str
    seconds: float
    floor: float
    slowest: str
    requests: int
    records: int
    reports: int
    sites_in_error: int
    peak_rss: int
    peak_rate: float
    """Records/s written to the manifest in the busiest progress interval."""
    cpu: float = 0.0
    """CPU seconds of every process the crawl ran in (on the cluster, the scheduler's and
    the workers' from their start to their end too); the server's are not counted."""

    @property
    def write_rate(self) -> float:
        return self.records / self.seconds


def manifest_counts(data_dir: Path) -> tuple[int, int]:
    """(records, report records) in the archive's manifest so far."""
    path = data_dir / "raw" / "manifest.sqlite"
    if not path.is_file():
        return 0, 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(
                "SELECT count(*), coalesce(sum(kind = 'report'), 0) FROM records"
            ).fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:  # the first writer is still creating the tables
        return 0, 0


def crawl_once(
    way: str, fleet: Fleet, server: SnapshotServer, data_dir: Path, scratch: Path,
    env: dict[str, str], extra: list[str], interval: float,
) -> Crawl:  # fmt: skip
    since = len(server.hits())
    log_path = scratch / f"crawl-{way.replace(' ', '-')}.log"
    command = [
        *NIANBAO, "crawl", "all", "--mirror", server.url, "--data-dir", str(data_dir),
        "-s", "SPIDER_MODULES=fleet_sites", "-s", "AUTOTHROTTLE_ENABLED=False",
        "-s", "RANDOMIZE_DOWNLOAD_DELAY=False", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    # Every process this script started, summed: the crawl's (and its shards'), and on
    # the cluster the scheduler's and the workers'; sampled each second, as there are many.
    with log_path.open("wb") as output, PeakMemory(interval=1.0) as memory:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        last, peak_rate = (0.0, 0), 0.0
        while process.poll() is None:
            try:
                process.wait(timeout=interval)
            except subprocess.TimeoutExpired:
                records, reports = manifest_counts(data_dir)
                elapsed = time.perf_counter() - started
                rate = (records - last[1]) / (elapsed - last[0])
                last, peak_rate = (elapsed, records), max(peak_rate, rate)
                log(
                    f"crawl {way}: {elapsed:5.0f} s, {len(server.hits(since))} requests, "
                    f"{records} records ({reports} reports) in the manifest, "
                    f"{rate:.1f} records/s"
                )
    seconds = time.perf_counter() - started
    output_text = log_path.read_text(errors="replace")
    per_host = Counter(hit.path.split("/")[1] for hit in server.hits(since))
    floors = {host: count * fleet.delays[host] for host, count in per_host.items()}
    slowest = max(floors, key=floors.__getitem__)
    records, reports = manifest_counts(data_dir)
    in_error = output_text.count("\nERROR ")
    if process.returncode not in (0, 1):
        raise RuntimeError(
            f"nianbao crawl ({way}) exited {process.returncode}:\n{tail(log_path)}"
        )
    return Crawl(
        way, seconds, floors[slowest],
        f"{fleet.names[slowest]}: {per_host[slowest]} requests × {fleet.delays[slowest]} s",
        sum(per_host.values()), records, reports, in_error, memory.peak,
        peak_rate,
    )  # fmt: skip


def bench_crawl(args, base: Path, env: dict[str, str]) -> tuple[list[Crawl], int]:
    fleet = build_fleet(args, base)
    size = sum(len(p.body) for p in fleet.pages.values())
    log(
        f"fleet: {args.sites} sites, {len(fleet.pages)} URLs ({size / 1e6:.0f} MB), delays "
        f"{sorted(set(fleet.delays.values()))} s"
    )
    env = {**env, "NIANBAO_FLEET": str(fleet.spiders)}
    crawls = []
    with SnapshotServer(fleet.pages) as server:
        log(f"one server for every site at {server.url}; crawling on one machine")
        cpu = children_cpu()
        crawls.append(
            crawl_once(
                "one machine",
                fleet,
                server,
                base / "crawl-one",
                base,
                env,
                [],
                args.interval,
            )  # fmt: skip
        )
        crawls[-1].cpu = children_cpu() - cpu
        for per_shard in args.shard_sites:
            way = f"2 workers, {per_shard} a shard"
            cpu = children_cpu()
            with Cluster(base / f"dask-crawl-{per_shard}", env) as cluster:
                log(
                    f"dask scheduler at {cluster.address}; 2 workers of "
                    f"{args.crawl_threads} threads; {per_shard} sites a shard"
                )
                cluster.add_workers(2, nthreads=args.crawl_threads)
                crawls.append(
                    crawl_once(
                        way,
                        fleet,
                        server,
                        base / f"crawl-cluster-{per_shard}",
                        base,
                        env,
                        [
                            "--scheduler",
                            cluster.address,
                            "-s",
                            f"NIANBAO_SHARD_SITES={per_shard}",
                        ],
                        args.interval,
                    )  # fmt: skip
                )
            # Counted once the workers have ended: a process's CPU reaches its parent's
            # account (and so this one's) only when it has been waited for.
            crawls[-1].cpu = children_cpu() - cpu
    for crawl in crawls:
        log(
            f"crawl {crawl.way}: {crawl.seconds:.1f} s, floor {crawl.floor:.1f} s, "
            f"{crawl.records} records, {crawl.sites_in_error} sites in error"
        )
    return crawls, tree_bytes(base / "crawl-one" / "raw")


# --- summary -----------------------------------------------------------------------------


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor() or "unknown CPU",
    )  # fmt: skip
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()}, {model}"


def summary(
    args, extraction: Extraction | None, crawls: list[Crawl], crawl_bytes: int
) -> str:
    lines = ["", "=" * 78, f"cluster benchmark · {machine()}"]
    if extraction:
        e = extraction
        lines.append(
            f"extraction: {e.reports} reports ({e.attached} with attachments), "
            f"best of {args.repeat}"
        )
        for way in e.seconds:
            lines.append(
                f"  {way:<18} {e.best(way):7.1f} s  {e.rate(way):7.1f} reports/s"
            )
        for cores in (1, 2):
            pool = e.rate(f"pool {cores} worker{'s' * (cores > 1)}")
            cluster = e.rate(f"cluster {cores} worker{'s' * (cores > 1)}")
            lines.append(
                f"  cluster vs pool, {cores} core(s): {cluster / pool:.2f}x "
                f"({cluster / pool - 1:+.0%}; target within ±10%)"
            )
        for way in ("pool", "cluster"):
            ratio = e.rate(f"{way} 2 workers") / e.rate(f"{way} 1 worker")
            lines.append(f"  {way} 2 workers vs 1: {ratio:.2f}x (target ≥ 1.8x)")
        cells = sum(e.rows.get(t, 0) for t in CELL_TABLES)
        lines.append(
            f"  archive {e.archive_bytes / 1e6:.1f} MB = {e.archive_bytes / e.reports / 1e3:.1f} kB "
            f"a report; dataset {e.dataset_bytes / 1e6:.1f} MB, {cells} cells "
            f"= {e.dataset_bytes / max(cells, 1):.1f} B a cell (all tables' bytes)"
        )
        lines.append(
            f"  {e.statuses}; rows: {', '.join(f'{t} {n}' for t, n in e.rows.items())}"
        )
    if crawls:
        lines.append(
            f"crawl: {args.sites} sites of {args.site_reports[0]}-{args.site_reports[1]} "
            f"reports, delays {args.delays} s, {args.crawl_threads} threads a worker"
        )
        for c in crawls:
            lines.append(
                f"  {c.way:<24} {c.seconds:7.1f} s = {c.seconds / c.floor:.2f}x the floor "
                f"{c.floor:.1f} s ({c.slowest}); {c.sites_in_error} sites in error"
            )
            lines.append(
                f"  {'':<24} {c.requests} requests; manifest {c.records} records "
                f"({c.reports} reports) = {c.write_rate:.1f} records/s, busiest "
                f"{c.peak_rate:.1f}/s; peak RSS {c.peak_rss >> 20} MiB; CPU {c.cpu:.0f} s "
                f"= {1000 * c.cpu / c.requests:.1f} ms a request"
            )
        lines.append(
            f"  archive of the crawl: {crawl_bytes / 1e6:.1f} MB = "
            f"{crawl_bytes / max(crawls[0].reports, 1) / 1e3:.1f} kB a report"
        )
    lines.append("=" * 78)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reports", type=int, default=5000, help="archive size to extract"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each extraction")
    parser.add_argument("--sites", type=int, default=200, help="sites in the fleet")
    parser.add_argument(
        "--site-reports", type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(10, 50), help="MIN,MAX reports a site (uniform)",
    )  # fmt: skip
    parser.add_argument(
        "--delays", type=lambda s: [float(x) for x in s.split(",")],
        default=[0.5, 1.0, 1.5], help="download delays (s) a site draws from",
    )  # fmt: skip
    parser.add_argument(
        "--crawl-threads", type=int, default=50,
        help="threads of each crawl worker: the sites it crawls at once",
    )  # fmt: skip
    parser.add_argument(
        "--shard-sites", type=lambda s: [int(x) for x in s.split(",")],
        default=[25, 1], help="NIANBAO_SHARD_SITES of each cluster crawl (1: as before)",
    )  # fmt: skip
    parser.add_argument("--only", choices=("extract", "crawl"), help="run one half")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--quick", action="store_true",
        help="small sizes, to check the script works (a minute or two)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.reports, args.repeat, args.sites = 200, 1, 8
        args.site_reports, args.delays, args.crawl_threads = (2, 5), [0.1, 0.2], 4
    # Seconds between the crawl's progress lines.
    args.interval = 3.0 if args.quick else 15.0
    log(f"cluster benchmark on {machine()}")
    env = environment()
    with ExitStack() as stack:
        base = args.keep or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="nianbao-cluster-"))
        )
        base.mkdir(parents=True, exist_ok=True)
        extraction = bench_extraction(args, base, env) if args.only != "crawl" else None
        crawls, crawl_bytes = (
            bench_crawl(args, base, env) if args.only != "extract" else ([], 0)
        )
        print(summary(args, extraction, crawls, crawl_bytes), flush=True)


if __name__ == "__main__":
    main()
