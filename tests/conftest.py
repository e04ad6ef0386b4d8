"""Shared test helpers: fixture paths and expected-value files."""

from __future__ import annotations

import csv
import json
import math
import shutil
import socket
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPORTS = FIXTURES / "reports"
EXPECTED = FIXTURES / "expected"


def report_path(stem: str) -> Path:
    """The one document in tests/fixtures/reports/ named by an expected directory."""
    matches = sorted(REPORTS.glob(f"{stem}.*"))
    assert len(matches) == 1, f"expected one report file for {stem}, found {matches}"
    return matches[0]


def _number(text: str) -> float | None:
    return None if text.strip() == "" else float(text)


def load_expected_cells(path: Path) -> dict[tuple[str, str], float | None]:
    """An expected table: long (row,column,value) or wide (row, then one column per code)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        cells = {}
        for line in reader:
            if fields[:3] == ["row", "column", "value"]:
                cells[(line["row"], line["column"])] = _number(line["value"])
            else:
                for column in fields[1:]:
                    cells[(line["row"], column)] = _number(line[column])
        return cells


def write_archive(
    data_dir: Path, stems: list[str], site: str = "beijing_xicheng"
) -> None:
    """A raw archive (WARC + manifest, by the crawler's writer) of fixture reports."""
    from crawler.archive.manifest import utc_now
    from crawler.archive.record import Fetched
    from crawler.archive.writer import ArchiveWriter

    writer = ArchiveWriter(data_dir / "raw", site, "test")
    for number, stem in enumerate(stems, 1):
        path = report_path(stem)
        kind = "text/plain" if path.suffix == ".txt" else "text/html"
        url = f"https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv{number}pntypepvnbpnnfpv.html"
        writer.write(Fetched(
            kind="report", url=url, final_url=url, status=200,
            headers=[(b"Content-Type", kind.encode())], body=path.read_bytes(),
            fetched_at=utc_now(), agency=f"西城区第{number}办公室",
        ))  # fmt: skip
    writer.close()


def load_expected_meta(stem: str) -> dict:
    """meta.json of an expected directory."""
    return json.loads((EXPECTED / stem / "meta.json").read_text(encoding="utf-8"))


def same_value(a: float | None, b: float | None) -> bool:
    """Equal numbers, or both missing."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Tests never reach beyond the loopback interface."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.")
            or host in ("localhost", "::1")
            or host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


# The converters that DOC/WPS and scanned reports need, by the Debian packages that bring
# them (.ci/run installs them).
CONVERTER_PACKAGES = {
    "soffice": "libreoffice-writer-nogui",
    "tesseract": "tesseract-ocr tesseract-ocr-chi-sim",
}


def require_converter(tool: str) -> None:
    """Fail, never skip, where a test's converter is missing: a skipped test would let the
    run pass while proving nothing about those documents. The message says what to
    install."""
    if shutil.which(tool) is None:
        pytest.fail(
            f"{tool} is not installed: apt-get install {CONVERTER_PACKAGES[tool]} "
            "(.ci/run does)",
            pytrace=False,
        )


@pytest.fixture
def soffice() -> None:
    """LibreOffice, which converts DOC and WPS."""
    require_converter("soffice")


@pytest.fixture
def tesseract() -> None:
    """Tesseract with its simplified Chinese data, which reads scans."""
    require_converter("tesseract")
