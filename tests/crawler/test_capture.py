"""``nianbao capture``: a site walked as its spider walks it, saved byte for byte."""

from __future__ import annotations

import json
import sys

import pytest

from crawler.capture import mirror_path
from nianbao.demo import CONDITIONAL_HOSTS, ROBOTS
from nianbao.demo.captured import captured_pages, server_path
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import FAST, _run
from tests.fixtures.sites.snapshot import build_snapshot, xicheng_report_url

CAPTURE = "import sys; from crawler.cli import capture; sys.argv[0] = 'nianbao capture'; capture()"


def _capture(out, mirror: str, site: str):
    argv = [
        sys.executable,
        "-c",
        CAPTURE,
        site,
        "--mirror",
        mirror,
        "--out",
        str(out),
        *FAST,
    ]
    return _run(argv, out)  # fmt: skip


@pytest.fixture(scope="module")
def snapshot():
    snap = build_snapshot()
    with SnapshotServer(snap.pages, CONDITIONAL_HOSTS, ROBOTS) as server:
        yield snap, server


def test_a_capture_holds_every_fetched_page_byte_for_byte(snapshot, tmp_path):
    snap, server = snapshot
    result = _capture(tmp_path, server.url, "beijing_xicheng")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "captured 12 files, 7 reports" in result.stdout
    folder = tmp_path / "beijing_xicheng"
    manifest = json.loads((folder / "capture.json").read_text(encoding="utf-8"))
    assert manifest["source"] == "mirror"
    for entry in manifest["files"]:
        served = snap.pages[server_path(entry["url"])]
        assert (folder / entry["path"]).read_bytes() == served.body, entry["url"]
        assert entry["content_type"] == served.content_type
    # The redirect is replayed; the GBK page keeps its bytes and its charset-less type.
    moved = xicheng_report_url(197, 2025)
    assert manifest["redirects"] == [
        {"url": moved, "to": moved.replace("gknbxq/", "gknbxq/v2/")}
    ]
    assert {(r["url"], r["agency"], r["year"]) for r in manifest["reports"]} == {
        (r.url, r.agency, r.year)
        for r in snap.expected_reports("beijing_xicheng").values()
    }
    pages = captured_pages("beijing_xicheng", tmp_path)
    assert pages[server_path(moved)].redirect.endswith(
        "/v2/pnidpv197pntypepvnbpnnfpv2025.html"
    )
    # Captured again: the folder is replaced, not added to.
    (folder / "www.bjxch.gov.cn" / "stale.html").write_bytes(b"old")
    assert _capture(tmp_path, server.url, "beijing_xicheng").returncode == 0
    assert not (folder / "www.bjxch.gov.cn" / "stale.html").exists()


def test_a_crawl_in_error_writes_nothing_and_a_foreign_folder_is_kept(tmp_path):
    with SnapshotServer({}) as empty:
        result = _capture(tmp_path, empty.url, "beijing_miyun")
    assert result.returncode == 1
    assert "ERROR beijing_miyun: no list page could be fetched" in result.stdout
    assert not (tmp_path / "beijing_miyun").exists()
    (tmp_path / "beijing_portal").mkdir()
    (tmp_path / "beijing_portal" / "notes.txt").write_text("mine")
    snap = build_snapshot()
    with SnapshotServer(snap.pages) as server:
        result = _capture(tmp_path, server.url, "beijing_portal")
    assert result.returncode == 1
    assert "is not a capture: not replaced" in result.stderr
    assert (tmp_path / "beijing_portal" / "notes.txt").read_text() == "mine"


def test_mirror_paths():
    assert mirror_path("http://127.0.0.1:8080/a/") == "127.0.0.1:8080/a/index.html"
    with pytest.raises(Exception, match="'..'"):
        mirror_path("https://x.gov.cn/a/../../b.html")
