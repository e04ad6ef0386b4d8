"""PDF, Word and image reports: layouts, OCR marking, attachments and bad documents.

The real documents and the LibreOffice-made ones are compared cell by cell in
test_reports.py (tests/fixtures/expected/); these tests cover what is particular to the
formats. Documents that need LibreOffice or Tesseract to be made or read are generated
here at test time from small Word-style pages whose values are written below, and skip
only when the binary is absent (.ci/run installs both).

Regenerate the committed LibreOffice fixtures (lo-word-2021-*) with:

    python3 -m tests.test_formats
"""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from extract import parse_report
from extract.attachments import parse_report_with_attachments
from extract.layout import Table
from extract.office import docx_layout
from extract.pdf import pdf_layout
from tests.conftest import REPORTS, require_converter

# Tests of DOC/WPS and scans fail where their converter is missing (tests/conftest.py).
needs_soffice = pytest.mark.usefixtures("soffice")
needs_tesseract = pytest.mark.usefixtures("tesseract")

# Table 二 and table 四 of a small report, in values written here by hand.
DISCLOSURE = {
    ("regulations", "issued"): 3,
    ("regulations", "repealed"): 1,
    ("regulations", "in_force"): 27,
    ("normative_documents", "issued"): 12,
    ("normative_documents", "repealed"): 4,
    ("normative_documents", "in_force"): 85,
    ("licensing", "decisions"): 6190,
    ("punishment", "decisions"): 418,
    ("coercion", "decisions"): 36,
    ("fees", "amount_10k_yuan"): 52,
}
REVIEWS = [7, 2, 1, 0, 10, 3, 1, 0, 1, 5, 2, 0, 1, 0, 3]


def small_report_html(border: int = 1) -> str:
    """A Word-style page with table 二 and table 四 (ruled, or not with border=0)."""
    d = {k: str(v) for k, v in DISCLOSURE.items()}
    td = f'td style="border:{"1px solid black" if border else "none"};padding:4px"'

    def row(*cells: str) -> str:
        return "<tr>" + "".join(f"<{td}>{c}</td>" for c in cells) + "</tr>"

    def wide(text: str, span: int) -> str:
        return f'<tr><{td} colspan="{span}">{text}</td></tr>'

    disclosure = "".join(
        [
            wide("第二十条第（一）项", 4),
            row("信息内容", "本年制发件数", "本年废止件数", "现行有效件数"),
            row("规章", d["regulations", "issued"], d["regulations", "repealed"],
                d["regulations", "in_force"]),
            row("行政规范性文件", d["normative_documents", "issued"],
                d["normative_documents", "repealed"], d["normative_documents", "in_force"]),
            wide("第二十条第（五）项", 4),
            row("信息内容", "本年处理决定数量"),
            row("行政许可", d["licensing", "decisions"]),
            wide("第二十条第（六）项", 4),
            row("信息内容", "本年处理决定数量"),
            row("行政处罚", d["punishment", "decisions"]),
            row("行政强制", d["coercion", "decisions"]),
            wide("第二十条第（八）项", 4),
            row("信息内容", "本年收费金额（单位：万元）"),
            row("行政事业性收费", d["fees", "amount_10k_yuan"]),
        ]
    )  # fmt: skip
    measures = ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"]
    reviews = (
        f'<tr><{td} colspan="5">行政复议</td><{td} colspan="10">行政诉讼</td></tr>'
        + "<tr>"
        + "".join(f'<{td} rowspan="2">{m}</td>' for m in measures)
        + f'<{td} colspan="5">未经复议直接起诉</td><{td} colspan="5">复议后起诉</td></tr>'
        + "<tr>"
        + "".join(f"<{td}>{m}</td>" for m in measures * 2)
        + "</tr>"
        + row(*map(str, REVIEWS))
    )
    table = '<table style="border-collapse:collapse;font-size:10.5pt" cellspacing="0">'
    return (
        '<html><head><meta charset="utf-8"><title>示例县人民政府2024年政府信息公开工作年度报告'
        "</title></head><body style=\"font-family:'Noto Serif CJK SC'\">"
        "<p>示例县人民政府2024年政府信息公开工作年度报告</p>"
        "<p>一、总体情况</p><p>2024年，示例县坚持以公开为常态、不公开为例外。</p>"
        f"<p>二、主动公开政府信息情况</p>{table}{disclosure}</table>"
        f"<p>四、政府信息公开行政复议、行政诉讼情况</p>{table}{reviews}</table>"
        "<p>五、存在的主要问题及改进情况</p><p>公开工作仍有不足。</p>"
        "</body></html>"
    )


def convert(source: Path, target: str, outdir: Path, html: bool = True) -> Path:
    """Convert with LibreOffice headless into ``outdir``."""
    command = [
        "soffice",
        f"-env:UserInstallation={(outdir / 'profile').as_uri()}",
        "--headless",
        "--norestore",
    ]
    if html:
        command.append("--infilter=HTML (StarWriter)")
    command += ["--convert-to", target, "--outdir", str(outdir), str(source)]
    subprocess.run(command, capture_output=True, timeout=180, check=True)
    return outdir / f"{source.stem}.{target.split(':')[0]}"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Small PDFs made by LibreOffice from the page above: ruled, unruled, encrypted."""
    require_converter("soffice")
    out = tmp_path_factory.mktemp("made")
    (out / "ruled.html").write_text(small_report_html(1), encoding="utf-8")
    (out / "unruled.html").write_text(small_report_html(0), encoding="utf-8")
    files = {
        "ruled": convert(out / "ruled.html", "pdf:writer_pdf_Export", out),
        "unruled": convert(out / "unruled.html", "pdf:writer_pdf_Export", out),
    }
    (out / "secret.html").write_text(small_report_html(1), encoding="utf-8")
    options = (
        '{"EncryptFile":{"type":"boolean","value":"true"},'
        '"DocumentOpenPassword":{"type":"string","value":"nianbao"}}'
    )
    files["encrypted"] = convert(
        out / "secret.html", f"pdf:writer_pdf_Export:{options}", out
    )
    return {name: path.read_bytes() for name, path in files.items()}


def _values(report, table: str) -> dict:
    df = report.tables[table]
    return dict(
        zip(zip(df["row"], df["column"], strict=True), df["value"], strict=True)
    )


def _reviews(report) -> list:
    got = _values(report, "reviews_litigation")
    order = [
        (g, m)
        for g in ("review", "litigation_direct", "litigation_after_review")
        for m in ("upheld", "corrected", "other", "pending", "total")
    ]
    return [got.get(key) for key in order]


# -- layouts -------------------------------------------------------------------------


def _rows(layout) -> list[list]:
    return [
        row for block in layout.blocks if isinstance(block, Table) for row in block.rows
    ]


def test_docx_merged_cells_expand_on_the_grid():
    layout = docx_layout((REPORTS / "template-2021-blank.docx").read_bytes())
    rows = _rows(layout)
    by_label = {row[-8].text if len(row) > 8 else row[0].text: row for row in rows}
    granted = next(r for r in rows if any(c.text == "（一）予以公开" for c in r))
    # The vertical header 三、本年度办理结果 (vMerge restart) is carried down its rows.
    assert granted[0].text == "三、本年度办理结果" and not granted[0].carried
    secret = next(r for r in rows if any(c.text == "1.属于国家秘密" for c in r))
    assert secret[0].text == "三、本年度办理结果" and secret[0].carried
    assert [c.col for c in secret] == list(range(10))
    # （一）予以公开 spans the group and item columns (gridSpan 2).
    cell = next(c for c in granted if c.text == "（一）予以公开")
    assert (cell.col, cell.span) == (1, 2)
    header = next(r for r in rows if any(c.text == "申请人情况" for c in r))
    assert [(c.col, c.span) for c in header] == [(0, 3), (3, 7)]
    assert by_label
    assert "一、总体情况" in layout.blocks and "（文字描述）" in layout.blocks


def test_pdf_vertical_header_and_split_label_are_joined():
    hongze = _rows(
        pdf_layout((REPORTS / "huaian-hongze-district-2023.pdf").read_bytes()).layout
    )
    assert any(c.text == "三、本年度办理结果" for row in hongze for c in row)
    city = pdf_layout((REPORTS / "huaian-city-2024.pdf").read_bytes()).layout
    tables = [b for b in city.blocks if isinstance(b, Table)]
    # Table 三 is cut by the page break inside （四）无法提供: both halves read whole.
    cut = [t for t in tables if any("法提供" in c.text for r in t.rows for c in r)]
    assert len(cut) == 2
    assert cut[0].rows[-1][1].text == "（四）无法提供"
    assert cut[1].rows[0][1].text == "（四）无法提供" and cut[1].rows[0][1].carried
    # 商 业 企/业 comes out as one label.
    assert any(c.text == "商业企业" for t in tables for r in t.rows for c in r)


def test_text_pdf_is_not_ocr():
    report = parse_report((REPORTS / "huaian-city-2024.pdf").read_bytes())
    assert report.source_format == "pdf"
    assert not report.ocr and not report.ocr_cells


def test_ruled_pdf_tables(made):
    report = parse_report(made["ruled"], url="https://example.gov.cn/ruled.pdf")
    assert report.source_format == "pdf" and report.status == "partial"
    assert _values(report, "active_disclosure") == DISCLOSURE
    assert _reviews(report) == REVIEWS
    assert report.title == "示例县人民政府2024年政府信息公开工作年度报告"
    assert report.problems == ["applications: table not found"]


def test_unruled_pdf_table_rows_that_keep_their_gaps(made):
    # With no ruling, cells are told apart by wide gaps between words only: rows whose
    # cells sit far apart are read, cells set tight (行政规范性文件12) or header text
    # wrapped over lines are not, and the report says so (a known limit, docs/formats.md).
    report = parse_report(made["unruled"], url="https://example.gov.cn/unruled.pdf")
    got = _values(report, "active_disclosure")
    assert report.status == "partial"
    for key in (("licensing", "decisions"), ("punishment", "decisions")):
        assert got[key] == DISCLOSURE[key]
    assert all(DISCLOSURE[key] == value for key, value in got.items())


@needs_soffice
def test_wps_is_converted_like_doc():
    data = (REPORTS / "lo-word-2021-doc.doc").read_bytes()
    doc = parse_report(data, url="https://example.gov.cn/a/report.doc")
    wps = parse_report(data, url="https://example.gov.cn/a/report.wps")
    assert (doc.source_format, wps.source_format) == ("doc", "wps")
    assert doc.status == wps.status == "ok"
    assert _values(doc, "applications") == _values(wps, "applications")


# -- OCR -----------------------------------------------------------------------------


def _page_image(pdf_bytes: bytes, dpi: int = 200):
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf_bytes)
    try:
        return document[0].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        document.close()


def _assert_marked_ocr(report):
    assert report.ocr
    assert report.status != "ok"  # an OCR report is never silently ok
    assert any(p.startswith("ocr:") for p in report.problems)
    found = {
        (table, row, column)
        for table, df in report.tables.items()
        for row, column in zip(df["row"], df["column"], strict=True)
    }
    assert found and found == report.ocr_cells
    # OCR of these 10.5pt table labels is rough (headers come out garbled), so what
    # is checked is that every value read is a number printed in the image: OCR digits
    # are never invented. Cells it places are listed; where they land is not checked
    # here (a garbled header can shift a row's column: see docs/formats.md).
    printed = set(DISCLOSURE.values()) | set(REVIEWS)
    values = [
        v
        for df in report.tables.values()
        for v in df["value"]
        if v == v and v is not None
    ]
    assert values and all(v in printed for v in values), values


@needs_tesseract
def test_image_of_tables_is_read_by_ocr_and_marked(made):
    buffer = io.BytesIO()
    _page_image(made["ruled"]).save(buffer, format="PNG")
    report = parse_report(buffer.getvalue(), url="https://example.gov.cn/scan.png")
    assert report.source_format == "image"
    _assert_marked_ocr(report)


@needs_tesseract
def test_scanned_pdf_is_read_by_ocr_and_marked(made):
    buffer = io.BytesIO()
    _page_image(made["ruled"], dpi=150).save(buffer, format="PDF", resolution=150)
    report = parse_report(buffer.getvalue(), url="https://example.gov.cn/scan.pdf")
    assert report.source_format == "pdf"
    assert any("read by OCR" in p for p in report.problems)
    _assert_marked_ocr(report)


@needs_tesseract
def test_cid_font_pdf_without_unicode_map_falls_back(made):
    # Hide every ToUnicode map (same length, so the xref stays valid): pdfminer gives
    # (cid:N), PDFium has no map either, so the page is read by OCR.
    data = made["ruled"].replace(b"/ToUnicode", b"/ToUnicodX")
    assert b"/ToUnicodX" in data
    report = parse_report(data, url="https://example.gov.cn/cid.pdf")
    assert any("undecodable" in p for p in report.problems)
    _assert_marked_ocr(report)


# -- attachments ---------------------------------------------------------------------


def test_page_without_tables_takes_its_attachment():
    page = (
        "<html><head><title>淮安市人民政府2024年政府信息公开工作年度报告</title></head><body>"
        "<p>淮安市人民政府2024年政府信息公开工作年度报告</p>"
        '<p>详见附件：<a href="report.pdf">年度报告.pdf</a></p></body></html>'
    ).encode()
    pdf = (REPORTS / "huaian-city-2024.pdf").read_bytes()
    report = parse_report_with_attachments(
        page,
        "https://www.huaian.gov.cn/a/page.html",
        "text/html",
        [
            (b"not a document", "https://www.huaian.gov.cn/a/other.bin", None),
            (pdf, "https://www.huaian.gov.cn/a/report.pdf", "application/pdf"),
        ],
    )
    assert report.status == "ok" and report.source_format == "pdf"
    assert report.source_url == "https://www.huaian.gov.cn/a/report.pdf"
    assert report.page_url == "https://www.huaian.gov.cn/a/page.html"
    assert _values(report, "applications")[("new_received", "total")] == 3119


def test_page_with_tables_stays_the_source():
    page = (REPORTS / "shanghai-gov-office-2019.html").read_bytes()
    report = parse_report_with_attachments(
        page,
        "https://example.gov.cn/p.html",
        "text/html",
        [((REPORTS / "huaian-city-2024.pdf").read_bytes(), "https://x/r.pdf", None)],
    )
    assert report.source_format == "html"
    assert report.source_url == report.page_url == "https://example.gov.cn/p.html"


# -- bad documents -------------------------------------------------------------------


def _bad(data: bytes, url: str, limit: float = 30.0):
    started = time.monotonic()
    report = parse_report(data, url=url)
    assert time.monotonic() - started < limit
    assert report.status == "no_tables"
    return report


def test_encrypted_pdf(made):
    report = _bad(made["encrypted"], "https://example.gov.cn/locked.pdf")
    assert any("encrypted pdf" in p for p in report.problems), report.problems


def test_truncated_pdf():
    data = (REPORTS / "huaian-city-2024.pdf").read_bytes()
    report = _bad(data[: len(data) // 3], "https://example.gov.cn/cut.pdf")
    assert report.source_format == "pdf"
    assert report.problems


def test_docx_that_is_really_html_is_read_as_html():
    data = (REPORTS / "word-2021-gb2312.html").read_bytes()
    report = parse_report(data, url="https://example.gov.cn/report.docx")
    assert report.source_format == "html"
    assert report.status == "ok"


def test_zip_bomb_is_refused_unopened():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(block)
    started = time.monotonic()
    report = _bad(buffer.getvalue(), "https://example.gov.cn/bomb.docx", limit=5)
    assert time.monotonic() - started < 5
    assert any("zip bomb" in p for p in report.problems), report.problems


def test_zip_that_is_not_word():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    report = _bad(buffer.getvalue(), "https://example.gov.cn/files.zip")
    assert any("not a Word document" in p for p in report.problems)


@needs_soffice
def test_ole_file_that_cannot_be_converted():
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + b"garbage" * 200
    report = _bad(data, "https://example.gov.cn/broken.doc", limit=120)
    assert report.source_format == "doc"
    assert any("LibreOffice" in p for p in report.problems), report.problems


@needs_tesseract
def test_image_with_no_table():
    from PIL import Image, ImageDraw

    image = Image.new("L", (900, 600), 255)
    draw = ImageDraw.Draw(image)
    for y in range(100, 500, 40):
        draw.ellipse((100, y, 140, y + 30), outline=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    report = _bad(buffer.getvalue(), "https://example.gov.cn/photo.png")
    assert report.source_format == "image" and report.ocr
    assert not report.ocr_cells


@needs_tesseract
def test_image_too_large_is_refused():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (9000, 9000), 1).save(buffer, format="PNG")
    report = _bad(buffer.getvalue(), "https://example.gov.cn/huge.png", limit=10)
    assert any("pixels" in p for p in report.problems), report.problems


def test_garbage_pdf():
    report = _bad(b"%PDF-1.7\n" + b"\x13\x37" * 5000, "https://example.gov.cn/x.pdf")
    assert report.problems


def _regenerate() -> None:  # pragma: no cover - run by hand
    """Write tests/fixtures/reports/lo-word-2021-{docx,doc,pdf} with LibreOffice."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        source = out / "word-2021-gb2312.html"
        source.write_bytes((REPORTS / "word-2021-gb2312.html").read_bytes())
        for ext, target in (
            ("docx", "docx:MS Word 2007 XML"),
            ("doc", "doc:MS Word 97"),
            ("pdf", "pdf:writer_pdf_Export"),
        ):
            made = convert(source, target, out)
            (REPORTS / f"lo-word-2021-{ext}.{ext}").write_bytes(made.read_bytes())


if __name__ == "__main__":
    _regenerate()
