"""Reports published as attachments reach the dataset: crawled, archived, extracted, published.

Each report page of the loopback 密云 snapshot only links its report: a real PDF, a DOCX
and a scanned page (PNG). The dataset's cells for each must equal what ``parse_report``
reads from the attachment alone, with ``source_url`` naming the attachment.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pypdfium2
import pytest

from extract import load, parse_report
from extract.catalogue import TABLES
from nianbao.demo import CONDITIONAL_HOSTS, ROBOTS
from nianbao.demo.server import SnapshotServer
from nianbao.nightly import extract_archive
from tests.conftest import REPORTS
from tests.fixtures.sites.snapshot import add_miyun_attachment_report, build_snapshot

ROOT = Path(__file__).resolve().parent.parent
FAST = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_START_DELAY=0",
        "-s", "DOWNLOAD_TIMEOUT=5", "-s", "NIANBAO_RETRY_BACKOFF=0.05"]  # fmt: skip


def scanned_page() -> bytes:
    """Page 3 (table 三) of a LibreOffice-made report at 200 dpi, as a scanner would."""
    document = pypdfium2.PdfDocument((REPORTS / "lo-word-2021-pdf.pdf").read_bytes())
    image = document[2].render(scale=200 / 72).to_pil().convert("L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# Agency → (year the attachment prints, its kind, its bytes).
ATTACHMENTS = {
    "北京市密云区溪翁庄镇人民政府": (2024, "pdf", (REPORTS / "huaian-city-2024.pdf").read_bytes()),
    "北京市密云区西田各庄镇人民政府": (2023, "docx", (REPORTS / "lo-word-2021-docx.docx").read_bytes()),
    "北京市密云区十里堡镇人民政府": (2023, "png", scanned_page()),
}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The 密云 site with three attachment-only reports, crawled and extracted."""
    data_dir = tmp_path_factory.mktemp("attachments") / "data"
    snap = build_snapshot()
    added = {
        agency: add_miyun_attachment_report(snap, agency, year, 9001 + i, (kind, data))
        for i, (agency, (year, kind, data)) in enumerate(ATTACHMENTS.items())
    }
    with SnapshotServer(snap.pages, CONDITIONAL_HOSTS, ROBOTS) as server:
        crawl = subprocess.run(
            [sys.executable, "-m", "nianbao.cli", "crawl", "beijing_miyun",
             "--mirror", server.url, "--data-dir", str(data_dir), *FAST],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    assert crawl.returncode == 0, crawl.stdout + crawl.stderr
    summary = extract_archive(data_dir, workers=2, progress=False)
    return data_dir, added, summary


def _cells(frame: pd.DataFrame) -> list[tuple]:
    return [
        (row, column, None if pd.isna(value) else float(value))
        for row, column, value in zip(
            frame["row"].astype(str),
            frame["column"].astype(str),
            frame["value"],
            strict=True,
        )
    ]


@pytest.mark.parametrize("agency", list(ATTACHMENTS))
def test_attachment_cells_reach_the_dataset(dataset, agency):
    data_dir, added, summary = dataset
    assert summary.ok, summary.render()
    page = added[agency]
    href = next(iter(page.attachments), None) or page.images[0]
    data = ATTACHMENTS[agency][2]
    attachment_url = page.url.rsplit("/", 1)[0] + "/" + href.removeprefix("./")
    alone = parse_report(data, url=attachment_url)
    assert alone.status != "no_tables", alone.problems

    reports = load("reports", data_dir=data_dir)
    row = reports[reports["url"] == page.url]
    assert len(row) == 1, f"{page.url} not in the dataset"
    row = row.iloc[0]
    assert row["source_url"] == attachment_url
    assert row["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert row["sha256"] != row["source_sha256"]
    assert row["status"] == alone.status
    assert row["source_format"] == alone.source_format
    assert (row["printed_agency"], row["year"]) == (agency, ATTACHMENTS[agency][0])
    for table in TABLES:
        cells = load(
            table, year=row["year"], agency=row["agency_id"], data_dir=data_dir
        )
        assert _cells(cells) == _cells(alone.tables[table]), table
    assert len(load("applications", year=row["year"], agency=row["agency_id"],
                    data_dir=data_dir)) > 0  # fmt: skip
