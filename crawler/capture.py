"""Captured pages: a site walked as its spider walks it, saved byte for byte as a test fixture.

``capture_site`` crawls one site into a scratch archive and writes every page and attachment
the spider fetched to ``<out>/<site>/`` in the mirror layout (``{host}/{path}``, a folder URL
as ``{path}index.html``, a query kept in the file name), with ``capture.json``: each file's
URL and Content-Type, the redirects met, and what the spider found (reports with agency,
year and title, and their attachments). tests/crawler/test_sites.py serves every captured
folder on 127.0.0.1 and checks that each spider still finds exactly that.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from crawler.archive.manifest import MANIFEST, utc_now
from crawler.archive.reader import iter_latest_reports
from crawler.archive.warc import read_record_bytes
from crawler.cli import CrawlSummary, run_crawl
from crawler.paths import raw_dir

CAPTURE_MANIFEST = "capture.json"


class CaptureError(Exception):
    """A capture that cannot be written as a fixture; the message says why."""


@dataclass(frozen=True, slots=True)
class Capture:
    """A written capture: where, and its manifest."""

    folder: Path
    manifest: dict


def mirror_path(url: str) -> str:
    """The file of a URL in the mirror layout, relative to the capture folder.

    >>> mirror_path("https://www.bjmy.gov.cn/zwgk/gknb2023/")
    'www.bjmy.gov.cn/zwgk/gknb2023/index.html'
    >>> mirror_path("https://www.bjxch.gov.cn/zt/zfxxgknb.html?page=2")
    'www.bjxch.gov.cn/zt/zfxxgknb.html?page=2'
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    if path.endswith("/"):
        path += "index.html"
    query = f"?{parts.query}" if parts.query else ""
    relative = f"{parts.netloc}{path}{query}"
    if ".." in relative.split("/"):
        raise CaptureError(f"{url}: a path with '..' cannot be saved")
    return relative


def capture_site(
    site: str,
    out: Path,
    mirror: str | None = None,
    settings: dict | None = None,
) -> tuple[CrawlSummary, Capture | None]:
    """Crawl ``site`` (through ``mirror`` if given) and save what it fetched under
    ``out/site``, replacing an earlier capture there; nothing is written when the crawl
    is in error.

    Starts the Twisted reactor, so it can run once per process.
    """
    with tempfile.TemporaryDirectory(prefix="nianbao-capture-") as scratch:
        summary = run_crawl(
            [site], mirror=mirror, data_dir=Path(scratch), settings=settings
        )
        if not summary.ok:
            return summary, None
        return summary, write_capture(
            Path(scratch), site, Path(out) / site, source="mirror" if mirror else "live"
        )


def write_capture(data_dir: Path, site: str, folder: Path, source: str) -> Capture:
    """Write the latest record of every URL the site's archive holds, and the manifest.

    ``source``: ``live`` or ``mirror``, what the pages were fetched from.
    """
    raw = raw_dir(data_dir)
    con = sqlite3.connect(raw / MANIFEST)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT kind, url, final_url, content_type, warc_file, warc_offset, warc_length "
            "FROM records r WHERE site = ? AND rowid = (SELECT max(rowid) FROM records s "
            "WHERE s.site = r.site AND s.url = r.url AND s.kind = r.kind) ORDER BY rowid",
            (site,),
        ).fetchall()
    finally:
        con.close()
    if folder.exists():
        if not (folder / CAPTURE_MANIFEST).is_file():
            raise CaptureError(f"{folder} exists and is not a capture: not replaced")
        shutil.rmtree(folder)
    files: dict[str, dict] = {}
    redirects: dict[str, str] = {}
    contents: dict[str, bytes] = {}
    for row in rows:
        requested = row["url"].split("#", 1)[0]
        if requested != row["final_url"]:
            redirects[requested] = row["final_url"]
        path = mirror_path(row["final_url"])
        data = read_record_bytes(
            raw, row["warc_file"], row["warc_offset"], row["warc_length"]
        )
        if contents.setdefault(path, data) != data:
            raise CaptureError(f"two different pages would be saved as {path}")
        files[path] = {
            "url": row["final_url"],
            "path": path,
            "content_type": row["content_type"],
        }
    for path, data in contents.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    reports = [
        {
            "url": report.url,
            "agency": report.agency,
            "year": report.report_year,
            "title": report.title,
            "attachments": sorted(a.url for a in report.attachments),
        }
        for report in iter_latest_reports(data_dir, site=site)
    ]
    manifest = {
        "site": site,
        "captured_at": utc_now(),
        "source": source,
        "reports": sorted(reports, key=lambda r: str(r["url"])),
        "files": sorted(files.values(), key=lambda f: f["path"]),
        "redirects": [{"url": u, "to": t} for u, t in sorted(redirects.items())],
    }
    (folder / CAPTURE_MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return Capture(folder, manifest)
