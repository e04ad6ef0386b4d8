"""Crawl and extraction on a real Dask cluster into a real S3 server: the archive and the
dataset of one process on disk.

The fixtures start what production runs: ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (one declaring the ``ocr`` resource), and ``moto_server``, an S3
server, on a free loopback port. All of them are stopped when the module ends, pass or
fail. The bundled demo snapshot is crawled once into a local archive by one process; the
extraction tests publish that archive to S3 and extract it on the cluster, the crawl
tests crawl the snapshot in shards on the cluster into S3. The failure cases are real
too: two drivers at once against one S3 location, the driver cut off from the S3 server
by a TCP proxy it talks through, a worker SIGKILLed while it stages rows.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from crawler.archive.manifest import utc_now
from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.archive.record import Fetched
from crawler.archive.remote import publish_archive, readable_manifest, stage_sites
from crawler.archive.writer import ArchiveWriter
from crawler.paths import archive_dir
from crawler.registry import declared_sites
from crawler.shards import STAGING, host_groups, plan_shards
from extract import load
from extract.dataset.cluster import _worker_facts, attempt_of, resources_needed
from extract.dataset.package import PRIMARY_KEYS
from extract.dataset.store import DatasetStore, DatasetStoreError
from nianbao.nightly import driver_lock
from nianbao_common.lease import (
    LeaseHeldError,
    LeaseHolder,
    LeaseLostError,
    StorageLease,
)
from nianbao_common.storage import RemotePath
from tests.fixtures.processes import stop_sessions

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "nianbao-test"
TABLES = (
    "reports",
    "agencies",
    "active_disclosure",
    "applications",
    "reviews_litigation",
    "checks",
    "cross_year_checks",
    "sections",
)


# The `dask` command of the interpreter running the tests: the workers import the
# project from the environment it was installed in, whatever `dask` PATH finds first.
DASK = [sys.executable, "-m", "dask"]
# The Dask settings of the README's cluster commands (DASK_CONFIG).
DASK_SETTINGS = ROOT / "nianbao" / "dask.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def _start(command: list[str], log: Path, **options) -> subprocess.Popen:
    # A session of its own: stopping it stops whatever it started (the nannies' workers).
    return subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True, **options,
    )  # fmt: skip


def _start_scheduler(port: int, logs: Path, env: dict[str, str]) -> subprocess.Popen:
    return _start(
        [*DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        logs / "scheduler.log", env=env, cwd=logs,
    )  # fmt: skip


def _start_worker(
    address: str, logs: Path, env: dict[str, str], log: str, *extra: str
) -> subprocess.Popen:
    return _start(
        [*DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
         "--no-dashboard", "--memory-limit", "0", "--local-directory", str(logs),
         *extra],
        logs / log, env=env, cwd=logs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real S3 server on loopback; yields the AWS environment that reaches it."""
    port = _free_port()
    logs = tmp_path_factory.mktemp("s3")
    server = _start(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)], logs / "moto.log"
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        _wait_for_port(port, server)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            RemotePath.from_url(f"s3://{BUCKET}").fs.mkdir(BUCKET)
            yield env
    finally:
        stop_sessions([server])


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory) -> Iterator[str]:
    """A Dask scheduler and two workers on 127.0.0.1; yields the scheduler's address."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    # Workers run where the driver does not (another folder) and reach S3 by the same
    # environment; they read the Dask settings the README starts them with, by which
    # they may start processes (the extraction's isolated workers).
    env = {**os.environ, **s3, "DASK_CONFIG": str(DASK_SETTINGS)}
    scheduler = _start_scheduler(port, logs, env)
    processes = [scheduler]
    try:
        _wait_for_port(port, scheduler)
        for number, extra in enumerate((["--resources", "ocr=1"], [])):
            processes.append(
                _start_worker(address, logs, env, f"worker-{number}.log", *extra)
            )
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        stop_sessions(processes[1:])
        stop_sessions(processes[:1])


def _nianbao(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nianbao.cli", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo snapshot crawled and extracted by one process on local disk."""
    directory = tmp_path_factory.mktemp("demo") / "data"
    done = _nianbao(
        "run", "--demo", "--workers", "1", env={"NIANBAO_DATA": str(directory)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


def _fresh(s3: dict[str, str]) -> str:
    """A fresh data location on the S3 server, marked as the demo's like ``demo``."""
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"
    (RemotePath.from_url(url) / "SYNTHETIC").write_text("the demo snapshot\n")
    return url


def _location(s3: dict[str, str], demo: Path) -> str:
    """A fresh data location on the S3 server holding the demo's archive."""
    url = _fresh(s3)
    publish_archive(demo / "raw", RemotePath.from_url(url) / "raw")
    return url


def _extract(url: str, local: Path, scheduler: str, s3: dict, *args: str):
    return _nianbao(
        "extract", "--scheduler", scheduler, "--data-dir", url, *args,
        env={**s3, "NIANBAO_LOCAL": str(local), "NIANBAO_DATA": ""},
    )  # fmt: skip


def _sorted(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Rows in key order, categoricals as values: the order of a dictionary's values
    follows the order the workers' parts were combined in, not what the data says."""
    categorical = frame.select_dtypes("category").columns
    frame = frame.astype(dict.fromkeys(categorical, object))
    keys = [k for k in PRIMARY_KEYS[table] if k in frame.columns]
    if "year" in frame.columns and "year" not in keys:
        keys.append("year")
    return frame.sort_values(keys).reset_index(drop=True)


def test_cluster_run_to_s3_gives_the_dataset_of_one_process_on_disk(demo, s3, cluster):
    url = _location(s3, demo)
    done = _extract(url, demo, cluster, s3)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "extracted" in done.stdout
    for table in TABLES:
        on_disk = _sorted(load(table, data_dir=demo), table)
        on_s3 = _sorted(load(table, data_dir=url), table)
        assert len(on_s3) > 0, table
        pd.testing.assert_frame_equal(on_s3, on_disk, obj=table)
    # Filters read the agencies table from S3 as from disk.
    pd.testing.assert_frame_equal(
        _sorted(load("applications", district="东城", data_dir=url), "applications"),
        _sorted(load("applications", district="东城", data_dir=demo), "applications"),
    )
    # The pointer names the current version on S3 and, through the symlink, on disk.
    store = DatasetStore(RemotePath.from_url(url))
    assert (RemotePath.from_url(url) / "parquet" / "CURRENT").read_text() == (
        store.current_id()
    )
    assert (demo / "parquet" / "CURRENT").read_text() == (
        (demo / "parquet").resolve().name
    )
    # The staging area is gone; the second run reuses everything.
    assert not (RemotePath.from_url(url) / ".extract-staging").exists()
    again = _extract(url, demo, cluster, s3)
    assert again.returncode == 0, again.stdout + again.stderr
    assert ", 0 extracted" in again.stdout


def test_the_documented_one_liner_reads_the_current_version_with_pandas(
    demo, s3, cluster
):
    url = _location(s3, demo)
    assert _extract(url, demo, cluster, s3).returncode == 0
    # README, "Storage by URL": the current version with plain pandas.
    root = url
    cells = pd.read_parquet(f"{root}/parquet-versions/{pd.read_csv(f'{root}/parquet/CURRENT', header=None).iat[0, 0]}/applications")  # fmt: skip
    assert len(cells) == len(load("applications", data_dir=demo))


def test_publishing_on_s3_is_atomic_and_versions_roll_back(demo, s3, cluster):
    url = _location(s3, demo)
    assert _extract(url, demo, cluster, s3).returncode == 0
    where = RemotePath.from_url(url)
    store = DatasetStore(where)
    first = store.current_id()
    expected = len(load("applications", data_dir=url))
    seen: set[str] = set()
    problems: list[str] = []
    stop = threading.Event()

    def read_while_publishing() -> None:
        # Each read takes the pointer, then the files: they must be of one whole version.
        while not stop.is_set():
            version = (where / "parquet" / "CURRENT").read_text()
            seen.add(version)
            if not (
                where / "parquet-versions" / version / "_nianbao/version.json"
            ).exists():
                problems.append(f"the pointer names {version}, which is incomplete")
            rows = len(load("applications", data_dir=url))
            if rows != expected:
                problems.append(f"{rows} rows read, not {expected}")

    reader = threading.Thread(target=read_while_publishing)
    reader.start()
    try:
        done = _extract(url, demo, cluster, s3, "--all")
    finally:
        stop.set()
        reader.join()
    assert done.returncode == 0, done.stdout + done.stderr
    assert not problems, problems[:3]
    second = store.current_id()
    assert second != first and first in seen
    assert [v.id for v in store.versions()] == [second, first]
    listed = _nianbao(
        "extract", "--versions", "--data-dir", url, env={**s3, "NIANBAO_DATA": ""}
    )
    assert f"* {second}" in listed.stdout, listed.stdout + listed.stderr
    store.rollback(first)
    assert store.current_id() == first
    assert len(load("applications", data_dir=url)) == expected
    assert store.prune(1) == [], "the newest and the current are kept"
    store.rollback(second)
    assert store.prune(1) == [first]
    assert [v.id for v in store.versions()] == [second]


def test_the_driver_sees_the_resources_each_worker_declares(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        facts = client.run(_worker_facts, None)
    assert sorted(str(fact["resources"]) for fact in facts.values()) == [
        "{'ocr': 1.0}",
        "{}",
    ]


def test_the_cluster_runs_with_the_readmes_dask_settings(cluster):
    import dask
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        workers = client.run(_worker_facts, None)
        ticks = client.run(dask.config.get, "distributed.admin.tick.interval")
        profiled = client.run(dask.config.get, "distributed.worker.profile.enabled")
        scheduler_tick = client.run_on_scheduler(
            dask.config.get, "distributed.admin.tick.interval"
        )
    assert [fact["daemon"] for fact in workers.values()] == [False, False]
    assert set(ticks.values()) == {"1s"} and scheduler_tick == "1s"
    assert set(profiled.values()) == {False}


def test_a_worker_started_without_the_settings_is_refused_by_name(demo, tmp_path):
    # Dask's defaults run tasks in daemon threads' processes, which cannot start the
    # extraction's isolated worker: the driver says which setting is missing.
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    scheduler = _start_scheduler(port, tmp_path, env)
    worker = None
    try:
        _wait_for_port(port, scheduler)
        worker = _start_worker(f"tcp://127.0.0.1:{port}", tmp_path, env, "worker.log")
        data = tmp_path / "data"
        shutil.copytree(demo / "raw", data / "raw")
        done = _nianbao(
            "extract", "--scheduler", f"tcp://127.0.0.1:{port}", "--data-dir",
            str(data), env={},
        )  # fmt: skip
    finally:
        stop_sessions([worker] if worker else [])
        stop_sessions([scheduler])
    assert done.returncode != 0
    assert "DASK_CONFIG=nianbao/dask.yaml" in done.stdout + done.stderr
    assert not (data / "parquet").exists()


def test_documents_needing_a_converter_ask_for_its_worker_resource():
    class Document:
        def __init__(self, url, content_type=None, attachments=()):
            self.url, self.content_type = url, content_type
            self.attachments = list(attachments)

    page = "https://example.gov.cn/nb/2023.html"
    assert resources_needed(Document(page, "text/html")) == frozenset()
    scanned = Document(page, "text/html", [Document(page[:-4] + "pdf")])
    assert resources_needed(scanned) == {"ocr"}
    assert resources_needed(Document(page[:-4] + "wps")) == {"office"}
    assert resources_needed(Document(page, "image/jpeg")) == {"ocr"}


# Where and when a crawl archived a record, which no two crawls share.
_CRAWL_PROVENANCE = ("fetched_at", "record_id", "warc_file", "warc_offset")


def _records(where: str | Path) -> list[tuple]:
    """Every archived record of a data location: site, kind, URL and payload digest."""
    with readable_manifest(archive_dir(where)) as path:
        con = sqlite3.connect(path)
        try:
            return sorted(
                con.execute("SELECT site, kind, url, sha256 FROM records").fetchall()
            )
        finally:
            con.close()


def _latest(where: str | Path) -> set[tuple]:
    """Each latest report with its digest and its attachments' URLs and digests."""
    return {
        (
            r.site,
            r.url,
            r.sha256,
            tuple(sorted((a.url, a.sha256) for a in r.attachments)),
        )
        for r in iter_latest_reports(where)
    }


def test_crawl_and_extract_on_the_cluster_to_s3_give_what_one_process_on_disk_gives(
    demo, s3, cluster, tmp_path
):
    url = _fresh(s3)
    done = _nianbao(
        "run", "--demo", "--scheduler", cluster, "--data-dir", url,
        env={**s3, "NIANBAO_LOCAL": str(tmp_path), "NIANBAO_DATA": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # Four sites on four hosts, two workers: two crawl shards of two sites, two tasks.
    assert "(2 of 2)" in done.stderr, done.stderr
    assert f"archive {url}/raw" in done.stdout
    assert _records(url) == _records(demo)
    assert _latest(url) == _latest(demo)
    assert verify_archive(url) == []
    shards = RemotePath.from_url(url) / "raw" / "manifests"
    assert sorted(p.name for p in shards.iterdir()) == [
        f"{site}.sqlite" for site in sorted({r[0] for r in _records(demo)})
    ]
    # Two crawls: the same records by URL and digest, at other times, ids and offsets.
    for table in TABLES:
        on_disk = _sorted(load(table, data_dir=demo), table)
        on_s3 = _sorted(load(table, data_dir=url), table)
        crawled = [c for c in _CRAWL_PROVENANCE if c in on_disk.columns]
        pd.testing.assert_frame_equal(
            on_s3.drop(columns=crawled), on_disk.drop(columns=crawled), obj=table
        )
    # The next crawl reads each site's history from its shard: nothing is new.
    again = _nianbao(
        "crawl", "all", "--scheduler", cluster, "--data-dir", url, "--mirror",
        "http://127.0.0.1:9", "-s", "DOWNLOAD_TIMEOUT=1", "-s", "RETRY_TIMES=0",
        env={**s3, "NIANBAO_LOCAL": str(tmp_path), "NIANBAO_DATA": ""},
    )  # fmt: skip
    assert again.returncode == 1
    assert "found no reports; the archive holds 9 from earlier runs" in again.stdout
    assert _records(url) == _records(demo)


def _committed(manifest: Path) -> set[str]:
    if not manifest.is_file():
        return set()
    con = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=5)
    try:
        return {row[0] for row in con.execute("SELECT record_id FROM records")}
    except sqlite3.OperationalError:  # the tables are still being created
        return set()
    finally:
        con.close()


def test_a_worker_killed_mid_crawl_shard_loses_only_its_uncommitted_group(
    demo, s3, cluster, tmp_path
):
    from distributed import Client

    from nianbao.demo import demo_mirror

    site = "beijing_dongcheng"
    url = _fresh(s3)
    env = {**os.environ, **s3, "NIANBAO_LOCAL": str(tmp_path), "NIANBAO_DATA": ""}
    with demo_mirror() as mirror, Client(cluster, set_as_default=False) as client:
        crawl = subprocess.Popen(
            [sys.executable, "-m", "nianbao.cli", "crawl", site, "--scheduler", cluster,
             "--data-dir", url, "--mirror", mirror, "-s", "DOWNLOAD_DELAY=0.5",
             "-s", "AUTOTHROTTLE_START_DELAY=0.5", "-s", "DOWNLOAD_TIMEOUT=2"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            kept: set[str] = set()
            deadline = time.monotonic() + 120
            while len(kept) < 6:
                assert time.monotonic() < deadline, "the shard never committed records"
                assert crawl.poll() is None, crawl.communicate()
                time.sleep(0.2)
                running = [
                    worker
                    for worker, keys in client.processing().items()
                    if any("crawl_shard" in str(key) for key in keys)
                ]
                if not running:
                    continue
                folder = Path(client.run(os.getcwd, workers=running)[running[0]])
                staged = folder / "data" / STAGING / site / "raw" / "manifest.sqlite"
                kept = _committed(staged)
            pid = client.run(os.getpid, workers=running)[running[0]]
            os.kill(pid, signal.SIGKILL)
            out, err = crawl.communicate(timeout=300)
        finally:
            if crawl.poll() is None:
                crawl.kill()
    assert crawl.returncode == 0, out + err
    assert f"{site} " in out and " ok" in out
    # Dask ran the shard again; the rerun went on from what the killed one committed.
    final = _records(url)
    assert final == [r for r in _records(demo) if r[0] == site]
    with readable_manifest(archive_dir(url)) as path:
        con = sqlite3.connect(path)
        ids = {row[0] for row in con.execute("SELECT record_id FROM records")}
        con.close()
    assert kept <= ids, "records committed before the kill were fetched again"
    assert verify_archive(url) == []


def test_the_writer_uploads_rotated_warc_files_and_reads_earlier_runs_from_s3(
    s3, tmp_path
):
    remote = RemotePath.from_url(_fresh(s3)) / "raw"
    writer = ArchiveWriter(
        tmp_path / "raw", "s", "run1", max_warc_bytes=1, remote=remote
    )
    for number in range(3):
        url = f"https://www.example.gov.cn/{number}.html"
        writer.write(Fetched(
            kind="report", url=url, final_url=url, status=200, headers=[],
            body=f"page {number}".encode(), fetched_at=utc_now(),
        ))  # fmt: skip
    # Each file the writer rotated is on S3; the third is still open.
    assert len(list((remote / "s").iterdir())) == 2
    writer.close()
    assert publish_archive(tmp_path / "raw", remote) == ["s"]
    assert len(list((remote / "s").iterdir())) == 3
    # The next run's staging folder holds the site's history, its records on S3 only.
    stage_sites(remote, tmp_path / "next" / "raw", ["s"])
    writer = ArchiveWriter(tmp_path / "next" / "raw", "s", "run2", remote=remote)
    assert writer.count("report") == 3
    assert writer.latest_payload("report", "https://www.example.gov.cn/1.html") == (
        b"page 1",
        None,
    )
    writer.close()
    assert verify_archive(str(remote.parent)) == []


def test_sites_sharing_a_host_are_one_crawl_shard():
    sites = declared_sites()
    alone = [sites[name] for name in ("beijing_xicheng", "beijing_miyun")]
    assert host_groups(alone) == [["beijing_miyun"], ["beijing_xicheng"]]
    assert plan_shards(alone, workers=2) == [["beijing_miyun"], ["beijing_xicheng"]]
    twin = replace(
        sites["beijing_miyun"], name="beijing_miyun_twin", extra_hosts=frozenset()
    )
    bridge = replace(
        sites["beijing_xicheng"],
        name="bridge",
        extra_hosts=frozenset({"www.bjmy.gov.cn"}),
    )
    together = ["beijing_miyun", "beijing_miyun_twin", "beijing_xicheng", "bridge"]
    assert host_groups([*alone, twin, bridge]) == [together]
    assert plan_shards([*alone, twin, bridge], workers=8) == [together]


def test_crawl_shards_pack_whole_host_groups_to_keep_every_worker_busy():
    sites = declared_sites()
    fleet = [
        replace(
            sites["beijing_xicheng"],
            name=f"district_{number:02d}",
            start_urls=(f"https://www.district{number:02d}.gov.cn/xxgk/",),
            extra_hosts=frozenset(),
        )
        for number in range(10)
    ]
    # Two sites of another on one host: they stay together whatever the packing.
    fleet += [
        replace(fleet[0], name="district_00_twin"),
        replace(fleet[0], name="district_00_triplet"),
    ]
    twins = {"district_00", "district_00_twin", "district_00_triplet"}
    # 12 sites, 5 a shard: three shards of 4, the host group whole in one of them.
    shards = plan_shards(fleet, sites_per_shard=5, workers=1)
    assert sorted(map(len, shards)) == [4, 4, 4]
    assert sum(twins <= set(shard) for shard in shards) == 1
    assert sorted(name for shard in shards for name in shard) == sorted(
        site.name for site in fleet
    )
    # More workers than 12 sites / 25 a shard would give: one shard each.
    assert sorted(map(len, plan_shards(fleet, sites_per_shard=25, workers=4))) == [
        3, 3, 3, 3
    ]  # fmt: skip
    # Never more shards than host groups, however many workers wait.
    assert len(plan_shards(fleet, sites_per_shard=1, workers=50)) == 10


# -- two drivers at once: the lease on the storage --------------------------------------


def _holder(target: RemotePath) -> LeaseHolder:
    holder = LeaseHolder.from_bytes(target.read_bytes())
    assert holder is not None, target.read_bytes()
    return holder


def test_the_lease_beats_refuses_a_second_driver_and_is_taken_over_once_stale(s3):
    target = RemotePath.from_url(_fresh(s3)) / "run.lock"
    first = StorageLease(target, "run-1", heartbeat_seconds=0.2)
    assert first.acquire() is None
    written = _holder(target)
    assert (written.pid, written.host, written.run) == (
        os.getpid(),
        socket.gethostname(),
        "run-1",
    )
    with pytest.raises(LeaseHeldError) as refused:
        StorageLease(target, "run-2").acquire()
    assert refused.value.holder.run == "run-1"
    # The heartbeat rewrites the object while the run lasts (times kept to the second).
    time.sleep(1.5)
    beating = _holder(target)
    assert beating.heartbeat > written.heartbeat and beating.since == written.since
    # A driver for which every heartbeat is stale takes the lease over; the first learns
    # it at its next beat, and its release leaves the new holder's lease alone.
    second = StorageLease(target, "run-2", stale_after_seconds=0)
    taken = second.acquire()
    assert taken is not None and taken.run == "run-1"
    deadline = time.monotonic() + 10
    while not first.lost:
        assert time.monotonic() < deadline, "the first holder never noticed"
        time.sleep(0.1)
    with pytest.raises(LeaseLostError):
        first.renew()
    first.release()
    assert _holder(target).run == "run-2"
    second.release()
    assert not target.exists()


def test_a_driver_whose_lease_was_taken_over_does_not_publish(
    s3, tmp_path, monkeypatch
):
    monkeypatch.setenv("NIANBAO_LOCAL", str(tmp_path))
    where = RemotePath.from_url(_fresh(s3))
    with driver_lock(where) as still_held:
        assert still_held is not None
        still_held()
        # Another driver found this one's heartbeat stale (it was cut off, or paused).
        other = StorageLease(where / "run.lock", "other", stale_after_seconds=0)
        assert other.acquire() is not None
        with pytest.raises(
            DatasetStoreError, match="another driver took over the lease"
        ):
            still_held()
    assert _holder(where / "run.lock").run == "other"
    other.release()


def test_a_second_driver_of_the_same_s3_location_exits_75_naming_the_first(
    demo, s3, cluster, tmp_path
):
    url = _location(s3, demo)
    lease = RemotePath.from_url(url) / "run.lock"
    # Two machines: each driver has a local directory of its own, so only the lease
    # on the storage stands between them.
    first = subprocess.Popen(
        [sys.executable, "-m", "nianbao.cli", "extract", "--scheduler", cluster,
         "--data-dir", url],
        cwd=ROOT, env={**os.environ, **s3, "NIANBAO_LOCAL": str(tmp_path / "a"),
                       "NIANBAO_DATA": ""},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not lease.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first driver never took the lease"
            time.sleep(0.1)
        asked = time.monotonic()
        second = _extract(url, tmp_path / "b", cluster, s3)
        waited = time.monotonic() - asked
        assert first.poll() is None, ("the first driver ended before the second asked",
                                      first.communicate())  # fmt: skip
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 75, second.stdout + second.stderr
    assert f"another run holds {url}/run.lock" in second.stderr
    assert f"pid {first.pid} on {socket.gethostname()}, since 20" in second.stderr
    assert "try again when it has finished" in second.stderr
    assert "goes stale 10 min after its last heartbeat" in second.stderr
    assert waited < 30, f"the second driver took {waited:.0f} s to refuse"
    assert first.returncode == 0, out + err
    assert not lease.exists(), "the first driver left its lease behind"
    for table in TABLES:
        pd.testing.assert_frame_equal(
            _sorted(load(table, data_dir=url), table),
            _sorted(load(table, data_dir=demo), table),
            obj=table,
        )


def test_a_stale_lease_of_a_dead_driver_is_taken_over_and_a_day_old_one_is_stuck(
    demo, s3, cluster, tmp_path
):
    url = _location(s3, demo)
    lease = RemotePath.from_url(url) / "run.lock"
    # A driver that beat for a whole day is alive but stuck: exit 4, as on disk.
    now = time.time()
    lease.write_bytes(
        LeaseHolder("other-host", 4242, "20261201T031700Z", now - 2 * 86400, now)
        .to_bytes()
    )  # fmt: skip
    stuck = _extract(url, tmp_path, cluster, s3)
    assert stuck.returncode == 4, stuck.stdout + stuck.stderr
    assert "looks stuck" in stuck.stderr and "ps -p 4242" in stuck.stderr
    # A driver that died an hour ago: its heartbeat stopped, the next run takes over.
    hour_ago = time.time() - 3600
    lease.write_bytes(
        LeaseHolder("gone-host", 4343, "20261203T031700Z", hour_ago - 60, hour_ago)
        .to_bytes()
    )  # fmt: skip
    done = _extract(url, tmp_path, cluster, s3)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"took over {url}/run.lock from pid 4343 on gone-host (run 20261203T031700Z)"
        in done.stderr
    )
    assert not lease.exists()
    assert DatasetStore(RemotePath.from_url(url)).current_id() is not None


# -- the object storage lost mid-run ----------------------------------------------------


class _Proxy:
    """A TCP forwarder from a loopback port to the S3 server, which the test cuts.

    Cut, it stops accepting and closes every connection it carried: the driver behind it
    meets an object storage that went away mid-run.
    """

    def __init__(self, port: int) -> None:
        self.upstream = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # so that the accepting thread sees the cut
        self.port = self.listener.getsockname()[1]
        self.carried: list[socket.socket] = []
        self.cut_off = threading.Event()
        self.guard = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_off.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(self.upstream)
            with self.guard:
                if self.cut_off.is_set():
                    client.close()
                    server.close()
                    return
                self.carried += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.guard:
            self.cut_off.set()
            self.listener.close()
            for end in self.carried:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


def _extract_chunks_running(client) -> list[str]:
    """The Dask workers running an extraction chunk now."""
    return [
        worker
        for worker, keys in client.processing().items()
        if any("extract_chunk" in str(key) for key in keys)
    ]


def test_s3_lost_mid_run_stops_the_driver_with_a_clear_error_and_keeps_the_version(
    demo, s3, cluster, tmp_path
):
    from distributed import Client

    url = _location(s3, demo)
    assert _extract(url, tmp_path, cluster, s3).returncode == 0
    store = DatasetStore(RemotePath.from_url(url))
    previous = store.current_id()
    # The driver reaches S3 through the proxy; the workers reach it directly.
    proxy = _Proxy(int(s3["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]))
    env = {**os.environ, **s3, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
           "NIANBAO_LOCAL": str(tmp_path), "NIANBAO_DATA": ""}  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "nianbao.cli", "extract", "--all", "--scheduler",
         cluster, "--data-dir", url],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with Client(cluster, set_as_default=False) as client:
            deadline = time.monotonic() + 120
            while not _extract_chunks_running(client):
                assert driver.poll() is None, driver.communicate()
                assert time.monotonic() < deadline, "no extraction chunk ever ran"
                time.sleep(0.05)
        proxy.cut()
        cut = time.monotonic()
        out, err = driver.communicate(timeout=300)
        took = time.monotonic() - cut
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 2, out + err
    assert (
        f"nianbao extract: the object storage of {url} did not answer "
        "(Could not connect to the endpoint URL" in err
    ), err
    assert "check the network, the endpoint (AWS_ENDPOINT_URL)" in err
    assert "the current dataset version were kept" in err
    assert "Traceback" not in err, err
    # Its lease could not be deleted either: the message says what frees it.
    assert f"the lease {url}/run.lock was not released" in err
    assert "delete that object to free it now" in err
    # The chunks running when it was cut finish first; then a few requests that fail
    # in seconds each (bounded retries: nianbao_common.storage).
    assert took < 60, f"the driver took {took:.0f} s to give up"
    # The next driver behind the cut proxy cannot take the lease: it says so, exit 2.
    again = _nianbao("extract", "--data-dir", url, env=env)
    assert again.returncode == 2, again.stdout + again.stderr
    assert (
        f"nianbao extract: the lease {url}/run.lock could not be taken: the object "
        f"storage of {url} did not answer" in again.stderr
    ), again.stderr
    # Read straight from the S3 server: the previous version is current, and whole.
    assert store.current_id() == previous
    for table in TABLES:
        pd.testing.assert_frame_equal(
            _sorted(load(table, data_dir=url), table),
            _sorted(load(table, data_dir=demo), table),
            obj=table,
        )


# -- a worker killed mid-extraction -------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """An archive of 120 generated reports (40 agencies, 3 years), extracted by one
    process on disk: enough documents that a chunk runs for seconds on a worker."""
    from crawler.archive.writer import ArchiveWriter
    from tests.fixtures.wordstyle import Style, random_spec, render_page

    directory = tmp_path_factory.mktemp("many") / "data"
    directory.mkdir()
    # Invented reports, marked as such like the demo's (and like ``_fresh`` locations).
    (directory / "SYNTHETIC").write_text("generated reports\n")
    rng = random.Random(19)
    writer = ArchiveWriter(directory / "raw", "beijing_xicheng", "many")
    for number in range(120):
        spec = random_spec(rng)
        spec.agency = f"北京市西城区第{number // 3 + 1}街道办事处"
        spec.year = 2021 + number % 3
        url = f"https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv{number}pntypepvnbpnnfpv.html"
        writer.write(Fetched(
            kind="report", url=url, final_url=url, status=200,
            headers=[(b"Content-Type", b"text/html")],
            body=render_page(spec, Style()), fetched_at=utc_now(), agency=spec.agency,
            report_year=spec.year, title=f"{spec.agency}{spec.year}年政府信息公开工作年度报告",
        ))  # fmt: skip
    writer.close()
    done = _nianbao("extract", "--workers", "1", env={"NIANBAO_DATA": str(directory)})
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


def test_a_worker_killed_mid_extraction_loses_and_duplicates_nothing(
    many, s3, cluster, tmp_path
):
    from distributed import Client

    def running_attempts() -> list[str]:
        # Run on a Dask worker: the staging names of the chunks its threads extract now
        # (a nested function, so the worker gets it by value, not by importing tests).
        found = []
        for frame in sys._current_frames().values():
            while frame is not None:
                if frame.f_code.co_name == "extract_chunk":
                    found.append(frame.f_locals.get("attempt"))
                frame = frame.f_back
        return [attempt for attempt in found if attempt]

    url = _fresh(s3)
    publish_archive(many / "raw", RemotePath.from_url(url) / "raw")
    staging = RemotePath.from_url(url) / ".extract-staging"
    driver = subprocess.Popen(
        [sys.executable, "-m", "nianbao.cli", "extract", "--scheduler", cluster,
         "--data-dir", url],
        cwd=ROOT, env={**os.environ, **s3, "NIANBAO_LOCAL": str(tmp_path),
                       "NIANBAO_DATA": ""},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with Client(cluster, set_as_default=False) as client:
            victim, staged = None, []
            deadline = time.monotonic() + 180
            while victim is None:
                assert driver.poll() is None, driver.communicate()
                assert time.monotonic() < deadline, "no chunk staged rows while running"
                running = _extract_chunks_running(client)
                attempts = (
                    client.run(running_attempts, workers=running) if running else {}
                )
                names = [path.name for path in staging.rglob("*.arrow")]
                for worker, mine in attempts.items():
                    staged = [n for n in names if attempt_of(n) in mine]
                    if staged:
                        victim = worker
                        break
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out + err
    assert "120 archived reports, 120 extracted" in out, out
    # The killed attempt had staged rows; Dask ran its chunk again elsewhere, and only
    # the attempts whose results reached the driver are in the dataset: the dataset of
    # one process, no row missing or twice.
    assert staged
    for table in TABLES:
        on_s3 = _sorted(load(table, data_dir=url), table)
        assert len(on_s3) > 0, table
        pd.testing.assert_frame_equal(
            on_s3, _sorted(load(table, data_dir=many), table), obj=table
        )
    assert not staging.exists()
