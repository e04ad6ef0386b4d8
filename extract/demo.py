"""The bundled default for ``nianbao run --demo``: the crawler's test snapshot of the four
sites (real URL patterns and pagination, with attachments, a GBK page, a 404, a 500 that
recovers, a redirect and a slow page), served on 127.0.0.1 so the whole pipeline runs with
no internet. It ships with the source checkout (tests/fixtures/sites/).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Polite settings stay on (robots.txt, AutoThrottle, 2 per domain); loopback needs no waits.
DEMO_CRAWL_SETTINGS = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_START_DELAY": 0,
    "DOWNLOAD_TIMEOUT": 2,
    "NIANBAO_RETRY_BACKOFF": 0.05,
}


def mark_synthetic(data_dir: Path) -> None:
    """Mark a data directory as the demo's: its dataset says the numbers are invented."""
    from extract.dataset.build import SYNTHETIC_MARK

    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / SYNTHETIC_MARK).write_text(
        "This data directory holds the bundled demo snapshot (nianbao run --demo): real\n"
        "URL patterns, invented numbers. Its dataset marks every report synthetic.\n",
        encoding="utf-8",
    )


@contextmanager
def demo_mirror() -> Iterator[str]:
    """Serve the snapshot; yields the mirror URL to crawl."""
    if not (ROOT / "tests" / "fixtures" / "sites" / "snapshot.py").exists():
        raise FileNotFoundError(
            "the demo snapshot ships with the source checkout (tests/fixtures/sites)"
        )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fixtures.sites.server import SnapshotServer
    from tests.fixtures.sites.snapshot import CONDITIONAL_HOSTS, ROBOTS, build_snapshot

    with SnapshotServer(build_snapshot().pages, CONDITIONAL_HOSTS, ROBOTS) as server:
        yield server.url
