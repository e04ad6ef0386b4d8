"""The bundled default for ``nianbao run --demo``: four Beijing sites served on 127.0.0.1.

The pages are the captured folders of the tests' snapshot (``sites/``, package data: real
URL patterns and pagination, invented numbers), with attachments, a GBK page and a 404
link. The server adds what a folder cannot hold: a 500 that recovers, a slow first answer,
robots.txt, and conditional requests on the static TRS hosts. So the whole pipeline runs
with no internet, and from an installed package as from the source checkout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from extract.dataset.build import SYNTHETIC_MARK
from nianbao.demo.captured import captured_pages, server_path
from nianbao.demo.server import Page, SnapshotServer

SITES_FOLDER = Path(__file__).parent / "sites"
DEMO_SITES = ("beijing_xicheng", "beijing_portal", "beijing_dongcheng", "beijing_miyun")
ROBOTS = "User-agent: *\nDisallow: /zt/xxgkzl/nbtest/\n"
CONDITIONAL_HOSTS = frozenset(
    {"www.beijing.gov.cn", "www.bjdch.gov.cn", "www.bjmy.gov.cn"}
)
_XICHENG_REPORTS = "https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/"
# A report that answers 500 once, and one whose first answer outlasts the crawl's timeout:
# the demo's run summary shows the retries they cost.
FAILS_ONCE = frozenset({_XICHENG_REPORTS + "pnidpv360pntypepvnbpnnfpv2024.html"})
SLOW_ONCE = {_XICHENG_REPORTS + "pnidpv379pntypepvnbpnnfpv2025.html": 2.5}
# Polite settings stay on (robots.txt, AutoThrottle, 2 per domain); loopback needs no waits.
DEMO_CRAWL_SETTINGS = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_START_DELAY": 0,
    "DOWNLOAD_TIMEOUT": 2,
    "NIANBAO_RETRY_BACKOFF": 0.05,
}


def demo_pages() -> dict[str, Page]:
    """The demo sites' pages keyed as the server answers them, with their behaviours."""
    pages: dict[str, Page] = {}
    for site in DEMO_SITES:
        pages.update(captured_pages(site, SITES_FOLDER))
    for url in FAILS_ONCE:
        pages[server_path(url)].fail_times = 1
    for url, seconds in SLOW_ONCE.items():
        pages[server_path(url)].delay_once = seconds
    return pages


def mark_synthetic(data_dir: Path) -> None:
    """Mark a data directory as the demo's: its dataset says the numbers are invented."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / SYNTHETIC_MARK).write_text(
        "This data directory holds the bundled demo snapshot (nianbao run --demo): real\n"
        "URL patterns, invented numbers. Its dataset marks every report synthetic.\n",
        encoding="utf-8",
    )


@contextmanager
def demo_mirror() -> Iterator[str]:
    """Serve the demo sites; yields the mirror URL to crawl."""
    with SnapshotServer(demo_pages(), set(CONDITIONAL_HOSTS), ROBOTS) as server:
        yield server.url
