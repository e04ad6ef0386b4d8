"""Hostile documents (issue 20): each one found to hang, escape or drop a report.

Every case here once kept ``parse_report`` busy without end, raised out of it, or threw
away a report a browser reads: each must now come back promptly as a ``Report`` with a
recorded status, and what can be read is read.
"""

from __future__ import annotations

import http.server
import io
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from extract import layout as layout_module
from extract import ocr, office, parse_report, pdf
from extract.errors import DocumentError, OcrTimeoutError
from extract.layout import html_layout
from extract.pdf import pdf_layout
from extract.tools import run_tool
from tests.conftest import REPORTS
from tests.fixtures import hostile
from tests.test_formats import needs_soffice, needs_tesseract

STATUSES = {"ok", "checks_failed", "partial", "no_tables"}


def _timed(data: bytes, limit: float, **kwargs):
    started = time.monotonic()
    report = parse_report(data, **kwargs)
    assert time.monotonic() - started < limit
    assert report.status in STATUSES
    return report


def _gbk_page() -> bytes:
    return (REPORTS / "word-2021-gb2312.html").read_bytes()


# -- HTML ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "span",
    ["²", "٣", "9" * 5000, "12345678901"],
    ids=["superscript", "arabic-indic", "5000-digits", "11-digits"],
)
def test_unreadable_spans_read_as_one(span):
    layout = html_layout(
        f'<table><tr><td colspan="{span}">a</td><td rowspan="{span}">b</td>'
        "<td>c</td></tr><tr><td>d</td></tr></table>"
    )
    first, second = layout.blocks[0].rows
    assert [(c.text, c.col, c.span) for c in first] == [
        ("a", 0, 1),
        ("b", 1, 1),
        ("c", 2, 1),
    ]
    assert [c.text for c in second] == ["d"]


def test_span_with_leading_zeros_is_its_number():
    layout = html_layout(f'<table><tr><td colspan="{"0" * 5000}2">a</td></tr></table>')
    assert layout.blocks[0].rows[0][0].span == 2


@pytest.mark.parametrize("span", ["²", "9" * 5000], ids=["superscript", "5000-digits"])
def test_report_with_an_unreadable_span_is_still_read(span):
    # One more cell attribute a browser ignores: the report reads exactly as before.
    page = _gbk_page()
    marked = page.replace(b"<td ", f'<td colspan="{span}" '.encode(), 1)
    assert marked != page
    before, after = parse_report(page), _timed(marked, 10)
    assert after.status == before.status == "ok"
    assert after.table_columns == before.table_columns


@pytest.mark.parametrize("charset", ["undefined", "base64", "unicode_escape", "cp037"])
def test_charset_browsers_do_not_know_is_ignored(charset):
    page = _gbk_page().replace(b"charset=gb2312", f"charset={charset}".encode())
    report = _timed(page, 10)
    assert report.status == "ok"
    assert (report.encoding, report.declared_encoding) == ("gb18030", None)


def test_thirty_thousand_nested_tables_are_laid_out_in_seconds():
    # Finding the innermost tables walked from each table to the root: 327 s.
    report = _timed(hostile.nested_tables_html(30_000), 5)
    assert report.status == "no_tables"


def test_a_hundred_thousand_nested_divs_are_parsed_in_seconds():
    # lexbor looks down the whole stack for a <p> at each <div>: 10^5 took 25 s. Past
    # 512 deep they are read as <span>s, and what they hold is still read.
    layout = html_layout(hostile.nested_divs_html(100_000).decode())
    assert [c.text for c in layout.blocks[0].rows[0]] == ["行政许可", "7"]
    _timed(hostile.nested_divs_html(100_000), 5)


def test_a_few_blocks_deep_are_left_alone():
    page = "<div>" * 600 + "x" + "</div>" * 600 + "<i></i>" * 20_000
    assert layout_module._flatten_deep_blocks(page).count("<div") == 512
    assert layout_module._flatten_deep_blocks(page[:9000]) == page[:9000]


def test_rowspans_cannot_multiply_a_table_without_end():
    # 50,000 cells of rowspan=512 over 511 rows were 25 million cells.
    started = time.monotonic()
    rows = html_layout(hostile.rowspan_flood_html(50_000).decode()).blocks[0].rows
    assert time.monotonic() - started < 5
    assert sum(len(row) for row in rows) < 300_000
    report = _timed(hostile.rowspan_flood_html(50_000), 10)
    assert report.status == "no_tables"


def test_a_million_numbers_in_one_cell_are_read_in_seconds():
    # normalize_label cut "1." off one at a time, copying the rest each time: 163 s.
    _timed(hostile.numbered_cell_html(1_000_000), 5)
    # The same run as a paragraph, where the title is looked for.
    _timed(f"<html><body><p>{'1.' * 1_000_000}</p></body></html>".encode(), 5)


# -- PDF -----------------------------------------------------------------------------


def _texts(data: bytes) -> tuple[list, list[str]]:
    found = pdf_layout(data)
    return [b for b in found.layout.blocks if isinstance(b, str)], found.problems


@pytest.mark.parametrize(
    ("make", "objects"),
    [
        (hostile.self_referencing_contents_pdf, "7"),
        (hostile.contents_cycle_pdf, "7, 8"),
    ],
    ids=["self-referencing-contents", "contents-cycle"],
)
def test_contents_referring_to_itself_reads_as_empty(make, objects):
    # pdfminer followed 7 0 R → 7 0 R → … for ever; page one is still read.
    report = _timed(make(), 5, url="https://example.gov.cn/loop.pdf")
    assert report.source_format == "pdf" and report.status == "no_tables"
    assert f"pdf: a circle of references (objects {objects}) read as null" in (
        report.problems
    )
    lines, _ = _texts(make())
    assert any("Hello" in line for line in lines)


def test_mediabox_referring_to_itself_loses_only_its_page():
    report = _timed(hostile.mediabox_cycle_pdf(), 5)
    assert report.status == "no_tables"
    assert any(
        p.startswith("pdf: pages from 2 on unreadable: ") for p in report.problems
    )
    lines, _ = _texts(hostile.mediabox_cycle_pdf())
    assert any("Hello" in line for line in lines)


def test_resources_referring_to_itself_read_as_none():
    report = _timed(hostile.resources_cycle_pdf(), 5)
    assert "pdf: a circle of references (objects 7) read as null" in report.problems
    lines, _ = _texts(hostile.resources_cycle_pdf())
    assert sum("Hello" in line for line in lines) == 2  # the page draws without fonts


def test_page_tree_holding_itself_is_read():
    # /Resources and /MediaBox of the page tree are the tree itself: pdfplumber's
    # resolve_all recursed until RecursionError and lost the page; PDFium reads it.
    report = _timed(hostile.inherited_cycle_pdf(), 5)
    assert report.status == "no_tables"
    lines, problems = _texts(hostile.inherited_cycle_pdf())
    assert any("Hello" in line for line in lines) and problems == []


@pytest.mark.parametrize(
    "make",
    [hostile.nested_forms_pdf, hostile.operator_flood_pdf, hostile.deflate_bomb_pdf],
    ids=["forms-drawing-forms", "operator-flood", "deflate-bomb"],
)
def test_page_with_too_many_operators_is_not_run(make):
    # 10^9 form draws in 2 KiB, 2 MiB of operators (23 s, 700 MiB) in 7 KiB, 256 MiB of
    # spaces in 256 KiB: each page is refused before pdfminer or PDFium run it.
    report = _timed(make(), 5)
    assert report.status == "no_tables"
    assert "pdf: page 1 draws over 1024 KiB of operators; not read" in report.problems


def test_a_deflate_bomb_is_never_inflated():
    from pdfminer.pdftypes import PDFStream
    from pdfminer.psparser import LIT

    bomb = PDFStream(
        {"Filter": LIT("FlateDecode")}, hostile._deflated(b" " * 4096, 4096)
    )
    assert pdf._operators(bomb, pdf.MAX_PAGE_OPERATORS) is None
    assert bomb.data is None  # 16 MiB never unpacked


def test_report_pages_are_far_under_the_operator_caps():
    from pdfminer.pdfpage import PDFPage

    for path in sorted(REPORTS.glob("*.pdf")):
        document = pdf._pdfminer_document(path.read_bytes())
        drawn = [
            pdf._drawn(page.contents, page.resources, 1 << 30, {})
            for page in PDFPage.create_pages(document)
        ]
        assert max(drawn) < pdf.MAX_PAGE_OPERATORS / 10, path.name
        assert sum(drawn) * pdf.MAX_PAGES / len(drawn) < pdf.MAX_DOCUMENT_OPERATORS


def test_document_operator_budget_stops_the_pages_left(monkeypatch):
    monkeypatch.setattr(pdf, "MAX_DOCUMENT_OPERATORS", 50 * 1024)
    found = pdf_layout((REPORTS / "huaian-city-2024.pdf").read_bytes())
    assert found.problems[-1] == (
        "pdf: pages from 3 on not read: the document draws over 50 KiB of operators"
    )


def test_page_of_thousands_of_tiny_paths_is_read_as_text():
    # 20,000 squares 2 pt apart (330 KiB, under the operator cap) join into rulings
    # that took pdfplumber's table finder 6 s; past MAX_PAGE_PATHS they are not read.
    data = hostile.tiny_paths_pdf(20_000)
    report = _timed(data, 5)
    assert report.status == "no_tables"
    lines, problems = _texts(data)
    assert any("Hello" in line for line in lines)
    assert problems == [
        f"pdf: page 1 draws over {pdf.MAX_PAGE_PATHS} paths or "
        f"{pdf.MAX_PAGE_SEGMENTS} path segments; read as text, its rulings not read"
    ]


def test_paths_under_the_cap_are_examined_in_seconds():
    # Just under the cap, every square is examined and made into rulings.
    started = time.monotonic()
    lines, problems = _texts(hostile.tiny_paths_pdf(pdf.MAX_PAGE_PATHS - 100))
    assert time.monotonic() - started < 5
    assert any("Hello" in line for line in lines) and problems == []


def test_rulings_past_their_time_leave_the_page_as_text(monkeypatch):
    monkeypatch.setattr(pdf, "RULINGS_SECONDS", -1.0)
    found = pdf_layout((REPORTS / "huaian-city-2024.pdf").read_bytes())
    assert found.problems == [
        f"pdf: page {n}: its rulings took over -1 s to make into tables; read as "
        "text, its rulings not read"
        for n in (1, 3, 4, 5)  # pages 2 and 6 draw no rulings
    ]
    # No grid: what tables there are, text_layout read from the lines.
    tables = [b for b in found.layout.blocks if not isinstance(b, str)]
    assert tables and not any(table.geometry for table in tables)


@pytest.mark.parametrize("points", [5000, 14400])
def test_page_too_large_to_render_is_not_rendered(points):
    # 5000 pt at 300 dpi is 434 million pixels (4 GiB before), 14400 pt 3.6 billion.
    def ocr(image, seconds):
        pytest.fail("a page over the pixel cap was rendered")

    found = pdf_layout(hostile.image_pages_pdf(points), ocr=ocr)
    assert found.problems == [
        f"pdf: page 1 needs OCR but is {points}x{points} pt, over "
        f"{pdf.MAX_RENDER_PIXELS} pixels at 300 dpi; not rendered"
    ]
    report = _timed(hostile.image_pages_pdf(points), 5)
    assert report.status == "no_tables" and not report.ocr


def test_ocr_stops_when_the_documents_budget_is_spent(monkeypatch):
    monkeypatch.setattr(pdf, "OCR_SECONDS", 0.5)
    allowed = []

    def slow_ocr(image, seconds):
        allowed.append(seconds)
        time.sleep(0.3)
        return []

    found = pdf_layout(hostile.image_pages_pdf(200, pages=4), ocr=slow_ocr)
    assert found.ocr_pages == [1, 2]
    assert allowed[0] == 0.5 and 0 < allowed[1] < 0.25  # the page gets what is left
    assert found.problems == [
        f"pdf: page {n} needs OCR; the document's 0.5 s of OCR are spent"
        for n in (3, 4)
    ]


def test_ocr_failure_on_one_page_keeps_the_others():
    def failing_ocr(image, seconds):
        raise DocumentError("tesseract failed")

    found = pdf_layout(hostile.image_pages_pdf(200, pages=2), ocr=failing_ocr)
    assert found.problems == [f"pdf: page {n}: tesseract failed" for n in (1, 2)]


def test_ocr_stops_at_the_first_page_tesseract_cannot_finish():
    # Stroke-sized dots kept Tesseract 108 s on one page: 13 such pages took the
    # whole budget. One page that times out now ends the document's OCR.
    tried = []

    def timing_out(image, seconds):
        tried.append(seconds)
        raise OcrTimeoutError("OCR took longer than 60 s on a page")

    found = pdf_layout(hostile.image_pages_pdf(200, pages=3), ocr=timing_out)
    assert len(tried) == 1
    assert found.problems == [
        "pdf: page 1: OCR took longer than 60 s on a page",
        "pdf: page 2 needs OCR; OCR stopped at page 1, which it could not finish",
        "pdf: page 3 needs OCR; OCR stopped at page 1, which it could not finish",
    ]


# -- OCR -----------------------------------------------------------------------------


def test_noise_is_refused_before_tesseract(monkeypatch):
    from PIL import Image

    monkeypatch.setattr(ocr, "run_tool", lambda *a, **k: pytest.fail("tesseract ran"))
    image = Image.open(io.BytesIO(hostile.noise_png()))
    with pytest.raises(DocumentError, match="speckled like noise"):
        ocr.ocr_page(image)
    report = _timed(hostile.noise_png(), 5)
    assert report.source_format == "image" and report.status == "no_tables"


@pytest.mark.parametrize("dpi", [100, 300])
def test_text_pages_are_far_from_noise(dpi):
    import numpy as np
    import pypdfium2

    document = pypdfium2.PdfDocument((REPORTS / "huaian-city-2024.pdf").read_bytes())
    try:
        for page in document:
            grey = np.asarray(page.render(scale=dpi / 72, grayscale=True).to_pil())
            assert ocr.ink_runs(grey < 150) < ocr.NOISE_RUNS / 2
    finally:
        document.close()


# -- external tools ------------------------------------------------------------------


def _alive_in_group(group: int) -> list[str]:
    """The names of the group's processes that are still alive (not zombies)."""
    names = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, NotADirectoryError):
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            names.append(name)
    return names


class _Watch:
    """Records the process groups started and every process name seen in them."""

    def __init__(self, monkeypatch):
        self.groups: list[int] = []
        self.seen: set[str] = set()
        self._stop = threading.Event()
        watch = self

        class Recording(subprocess.Popen):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                watch.groups.append(self.pid)

        monkeypatch.setattr(subprocess, "Popen", Recording)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            for group in list(self.groups):
                self.seen.update(_alive_in_group(group))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


needs_linux = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads processes from /proc"
)


@needs_linux
def test_a_timed_out_tool_is_killed_with_its_children(monkeypatch):
    # The shell starts a child and waits: killing the shell alone would leave it.
    watch = _Watch(monkeypatch)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_tool(["sh", "-c", "sleep 60 & sleep 61; wait"], timeout=0.5)
    watch.stop()
    assert time.monotonic() - started < 10
    assert "sleep" in watch.seen
    assert all(_alive_in_group(group) == [] for group in watch.groups)


@needs_linux
@needs_soffice
def test_libreoffice_over_its_time_is_killed_whole(monkeypatch, tmp_path):
    # soffice.bin starts within 0.1 s; a conversion takes over a second.
    monkeypatch.setattr(office, "CONVERT_TIMEOUT", 0.5)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    watch = _Watch(monkeypatch)
    data = (REPORTS / "lo-word-2021-doc.doc").read_bytes()
    with pytest.raises(DocumentError, match="did not convert the doc within 0.5 s"):
        office.convert(data, "doc")
    watch.stop()
    assert "soffice.bin" in watch.seen  # the process the launcher's kill missed
    assert all(_alive_in_group(group) == [] for group in watch.groups)
    assert list(tmp_path.iterdir()) == []  # its folder (profile, copy) is gone


@needs_linux
@needs_tesseract
def test_tesseract_over_its_time_is_killed(monkeypatch):
    import pypdfium2

    monkeypatch.setattr(ocr, "OCR_TIMEOUT", 0.5)
    document = pypdfium2.PdfDocument((REPORTS / "huaian-city-2024.pdf").read_bytes())
    image = document[1].render(scale=300 / 72).to_pil()
    document.close()
    watch = _Watch(monkeypatch)
    with pytest.raises(DocumentError, match="OCR took longer than 0.5 s"):
        ocr.ocr_page(image)
    watch.stop()
    assert watch.groups
    assert all(_alive_in_group(group) == [] for group in watch.groups)


# -- LibreOffice stays offline -------------------------------------------------------


@pytest.fixture
def image_server():
    """An HTTP server on 127.0.0.1 serving img.png; yields (base URL, paths asked)."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server name)
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_docx_linking_an_image_fetches_nothing(image_server):
    base, asked = image_server
    report = parse_report(hostile.linked_image_docx(f"{base}/img.png"), url="r.docx")
    assert report.source_format == "docx" and report.status in STATUSES
    assert asked == []


@needs_soffice
def test_doc_linking_an_image_fetches_nothing(image_server, monkeypatch):
    base, asked = image_server
    url = f"{base}/img.png"
    # The .doc is made by the same offline conversion; it keeps the link as an
    # INCLUDEPICTURE field, which LibreOffice otherwise fetches as it reads the .doc.
    doc = office.convert(hostile.linked_image_docx(url), "docx", target="doc")
    assert url.encode("utf-16-le") in doc
    assert asked == []
    report = parse_report(doc, url="https://example.gov.cn/r.doc")
    assert report.source_format == "doc" and report.status == "no_tables"
    assert asked == []

    # Each guard holds alone: the profile without the namespace...
    monkeypatch.setattr(office, "network_namespace", lambda: [])
    office.convert(doc, "doc")
    assert asked == []
    # ...and, where the system has one, the namespace with a default profile.
    monkeypatch.undo()
    default = '<?xml version="1.0"?><oor:items xmlns:oor="http://openoffice.org/2001/registry"/>'
    monkeypatch.setattr(office, "_OFFLINE_PROFILE", default)
    if office.network_namespace():
        office.convert(doc, "doc")
        assert asked == []
    # Without either, LibreOffice does fetch it: the server would have seen it.
    monkeypatch.setattr(office, "network_namespace", lambda: [])
    office.convert(doc, "doc")
    assert asked, "LibreOffice fetched nothing even unguarded: the test proves nothing"
