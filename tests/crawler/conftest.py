"""Crawler test helpers: the loopback snapshot server and crawls run in a subprocess.

Scrapy's reactor starts once per process, so every crawl runs as ``python -m nianbao.cli
crawl`` (the ``nianbao crawl`` command) in a child process against the snapshot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nianbao.demo import CONDITIONAL_HOSTS, ROBOTS
from nianbao.demo.server import SnapshotServer
from tests.fixtures.sites.snapshot import build_snapshot

ROOT = Path(__file__).resolve().parents[2]
# Polite defaults kept (robots.txt, AutoThrottle, 2 per domain); only the waits shrink.
FAST = [
    "-s",
    "DOWNLOAD_DELAY=0",
    "-s",
    "AUTOTHROTTLE_START_DELAY=0",
    "-s",
    "DOWNLOAD_TIMEOUT=1",
    "-s",
    "NIANBAO_RETRY_BACKOFF=0.05",
]


def crawl_command(data_dir: Path, mirror: str, *sites: str) -> list[str]:
    """The argv of ``nianbao crawl`` with test settings."""
    return [
        sys.executable,
        "-m",
        "nianbao.cli",
        "crawl",
        *sites,
        "--mirror",
        mirror,
        "--data-dir",
        str(data_dir),
        *FAST,
    ]


def scrapy_crawl_command(data_dir: Path, mirror: str, site: str) -> list[str]:
    """The argv of ``scrapy crawl SITE`` with test settings."""
    return [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        site,
        "-a",
        f"mirror={mirror}",
        "-s",
        f"NIANBAO_DATA={data_dir}",
        *FAST,
    ]


def crawl_env(data_dir: Path) -> dict[str, str]:
    """Environment for a crawl child process."""
    env = dict(os.environ)
    env["NIANBAO_DATA"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_crawl_cli(
    data_dir: Path, mirror: str, *sites: str
) -> subprocess.CompletedProcess:
    """Run one crawl to the end; returns the completed process (output captured)."""
    return _run(crawl_command(data_dir, mirror, *sites), data_dir)


def run_scrapy_crawl(
    data_dir: Path, mirror: str, site: str
) -> subprocess.CompletedProcess:
    """Run ``scrapy crawl SITE`` to the end; returns the completed process."""
    return _run(scrapy_crawl_command(data_dir, mirror, site), data_dir)


def run_hostile_site(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """``nianbao crawl hostile_site`` (tests/crawler/hostile_site.py), not through a
    mirror unless ``args`` name one; returns the completed process."""
    argv = [
        sys.executable,
        "-m",
        "nianbao.cli",
        "crawl",
        "hostile_site",
        "--data-dir",
        str(data_dir),
        "-s",
        "SPIDER_MODULES=tests.crawler.hostile_site",
        *FAST,
        *args,
    ]
    return _run(argv, data_dir)


def _run(argv: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=crawl_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def snapshot():
    """A fresh snapshot of the four sites (mutable: tests add and change reports)."""
    return build_snapshot()


@pytest.fixture(scope="module")
def server(snapshot):
    """The snapshot served on 127.0.0.1."""
    with SnapshotServer(snapshot.pages, CONDITIONAL_HOSTS, ROBOTS) as running:
        yield running
