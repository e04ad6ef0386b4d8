"""Captured folders (``nianbao capture``) as the loopback server serves them: bytes, types, redirects.

A captured folder ``<folder>/<site>/`` holds a site's pages in the mirror layout and
``capture.json`` (crawler/capture.py). ``captured_pages`` gives them as ``Page`` objects
keyed as ``SnapshotServer`` serves them (``/{host}/{path}?{query}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from crawler.capture import CAPTURE_MANIFEST
from nianbao.demo.server import Page


def capture_manifest(site: str, folder: Path) -> dict | None:
    """The manifest of a site's captured folder, None when it has none."""
    path = folder / site / CAPTURE_MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def server_path(url: str) -> str:
    """Where the snapshot server answers a real URL (the mirror layout)."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"/{parts.netloc}{parts.path or '/'}{query}"


def captured_pages(site: str, folder: Path) -> dict[str, Page]:
    """A site's captured pages, with their Content-Types and redirects."""
    manifest = capture_manifest(site, folder)
    if manifest is None:
        return {}
    pages = {
        server_path(f["url"]): Page(
            (folder / site / f["path"]).read_bytes(), f["content_type"] or ""
        )
        for f in manifest["files"]
    }
    for redirect in manifest["redirects"]:
        pages[server_path(redirect["url"])] = Page(
            b"", redirect=server_path(redirect["to"])
        )
    return pages
