"""Scans made from the real text PDFs read back by OCR: cells against the text reading.

Each scan is made here from tests/fixtures/reports: pages rendered with PDFium at 150 or
200 dpi, one copy turned 1° and one with scanner noise (blur, grain, specks), saved as an
image-only PDF. The text PDF's own reading is the truth. What must hold on every copy is
that no value lands in a wrong cell unless an identity of the table fails on it; the
share of cells read exactly is held at 97% on each (asked for; the copies short of 100%
say why).
"""

from __future__ import annotations

import io

import pytest

from extract import ocr, parse_report
from extract.errors import OcrGarbageError
from extract.layout import Cell
from extract.pdf import DocumentError
from extract.problems import Problem
from tests.conftest import REPORTS

pytestmark = pytest.mark.usefixtures("tesseract")


def _pages(name: str, dpi: int, first: int, last: int):
    import pypdfium2

    document = pypdfium2.PdfDocument((REPORTS / name).read_bytes())
    try:
        return [
            document[n].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            for n in range(first - 1, last)
        ]
    finally:
        document.close()


def _turned(image, degrees: float):
    from PIL import Image

    return image.rotate(degrees, resample=Image.BICUBIC, fillcolor=255)


def _noisy(image, seed: int = 7):
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    grey = np.asarray(image.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    grey = grey + rng.normal(0, 18, grey.shape)
    specks = rng.random(grey.shape)
    grey[specks < 0.002] = 0
    grey[specks > 0.998] = 255
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))


def _scan_pdf(images, dpi: int) -> bytes:
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="PDF", save_all=True, append_images=images[1:], resolution=dpi
    )
    return buffer.getvalue()


def _cells(report) -> dict[tuple[str, str, str], tuple]:
    return {
        (table, row, column): (value, marker)
        for table, columns in report.table_columns.items()
        for row, column, value, marker in zip(
            columns["row"],
            columns["column"],
            columns["value"],
            columns["marker"],
            strict=True,
        )
    }


# name, variant, dpi, least share of cells read exactly (as measured when written)
HONGZE, CITY = "huaian-hongze-district-2023.pdf", "huaian-city-2024.pdf"
SCANS = [
    (HONGZE, "plain", 200, 0.97),  # 186 of 186
    (HONGZE, "plain", 150, 0.97),  # 186 of 186
    (HONGZE, "turned", 200, 0.97),  # 186 of 186
    (HONGZE, "noisy", 200, 0.97),  # 186 of 186
    (CITY, "plain", 200, 0.97),  # 200 of 200
    (CITY, "plain", 150, 0.97),  # 200 of 200
    (CITY, "turned", 200, 0.97),  # 200 of 200
    # 197 of 200: chi_sim reads （七）总计 as (七六和冰计, too garbled for its label,
    # which its values place (the one row its neighbours leave, and the sums of the
    # result rows); eng reads 447 as 147, 12 as 2 and 11 as 1 at both its scales (grain
    # in the strokes), which the identities flag.
    (CITY, "noisy", 200, 0.97),  # 197 of 200
]


@pytest.mark.parametrize(("name", "variant", "dpi", "least"), SCANS)
def test_scan_reads_the_tables_of_the_text_pdf(name, variant, dpi, least):
    truth = parse_report((REPORTS / name).read_bytes())
    images = _pages(name, dpi, 2, 6 if "city" in name else 5)
    if variant == "turned":
        images = [_turned(image, 1.0) for image in images]
    elif variant == "noisy":
        images = [_noisy(image) for image in images]
    report = parse_report(_scan_pdf(images, dpi))
    expected, read = _cells(truth), _cells(report)
    exact = sum(read.get(key) == value for key, value in expected.items())
    assert exact / len(expected) >= least, (exact, len(expected))
    assert report.ocr and report.ocr_cells == set(read)
    assert not set(read) - set(expected)
    failed = {
        subject
        for check in report.check_results
        if check.status == "fail"
        for subject in (check.subject,)
    }
    for (table, row, column), value in read.items():
        if value != expected[(table, row, column)]:
            # A wrong value is one an identity of its row or column fails on.
            assert row in failed or column in failed, (table, row, column, value)


def test_title_agency_and_year_come_from_the_ocr_text():
    report = parse_report(
        _scan_pdf(_pages("huaian-hongze-district-2023.pdf", 200, 1, 1), 200)
    )
    assert (report.agency, report.year) == ("洪泽区人民政府", 2023)
    assert report.title.startswith("洪泽区人民政府2023")


def test_a_turned_scan_is_deskewed_with_a_problem():
    [page] = _pages("huaian-hongze-district-2023.pdf", 200, 3, 3)
    items = ocr.ocr_page(_turned(page, 1.0))
    problems = [p for kind, p in items if kind == "problem"]
    assert all(isinstance(p, Problem) for p in problems)
    turned = [str(p) for p in problems if p.code == "ocr_deskewed"]
    assert any("turned -1.0" in p or "turned -0.9" in p for p in turned), problems
    assert any(kind == "table" for kind, _ in items)


@pytest.mark.parametrize("degrees", [180, 90])
def test_a_page_lying_turned_is_read_upright_or_refused(degrees):
    [page] = _pages("huaian-hongze-district-2023.pdf", 200, 3, 3)
    try:
        items = ocr.ocr_page(page.rotate(degrees, expand=True, fillcolor=255))
    except DocumentError as error:  # refused: never a guess
        assert "garbage" in str(error)
        return
    problems = [p for kind, p in items if kind == "problem"]
    assert any(
        p.code == "ocr_page_turned" and "read after turning it" in str(p)
        for p in problems
    ), problems
    tables = [value for kind, value in items if kind == "table"]
    texts = {cell.text for table in tables for row in table.rows for cell in row}
    assert "4119" in texts and "7730.28" in texts


def test_ocr_garbage_is_refused():
    import numpy as np
    from PIL import Image

    # Strokes shaped like no script: Tesseract reads something, and trusts none of it.
    rng = np.random.default_rng(3)
    grey = np.full((1200, 900), 255, np.uint8)
    for _ in range(400):
        y, x = rng.integers(50, 1150), rng.integers(50, 850)
        h, w = rng.integers(8, 30), rng.integers(2, 6)
        grey[y : y + h, x : x + w] = 0
    with pytest.raises(OcrGarbageError, match="garbage"):
        ocr.ocr_page(Image.fromarray(grey))


def test_a_table_without_rulings_is_read_from_lines_with_a_problem():
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(
        next(
            str(p)
            for p in __import__("pathlib").Path("/usr/share/fonts").rglob("*CJK*")
            if p.suffix in (".ttc", ".otf", ".ttf")
        ),
        32,
    )
    image = Image.new("L", (1400, 400), 255)
    draw = ImageDraw.Draw(image)
    for n, (label, values) in enumerate(
        [("规章", "0   1   2"), ("行政规范性文件", "3   4   5")]
    ):
        draw.text((60, 80 + 80 * n), label, font=font, fill=0)
        draw.text((700, 80 + 80 * n), values, font=font, fill=0)
    # Either way a problem is recorded: rows read from lines, or a reading refused.
    try:
        items = ocr.ocr_page(image)
    except DocumentError as error:
        assert "garbage" in str(error)
        return
    assert not any(kind == "table" for kind, _ in items)
    problems = [p for kind, p in items if kind == "problem"]
    assert any(
        p.code == "ocr_no_rulings" and "no ruling lines" in str(p) for p in problems
    ), items


def _applications_grid(header: list[str]) -> list[list[Cell]]:
    """Table 三 as OCR gives it: the label column, seven column headers, a row of values."""
    return [
        [Cell("申请人情况", 0), *(Cell(text, n + 1) for n, text in enumerate(header))],
        [
            Cell("本年新收政府信息公开申请数量", 0),
            *(Cell("1", n + 1) for n in range(7)),
        ],
    ]


HEADER = [
    "自然人",
    "商业企业",
    "科研机构",
    "社会公益组织",
    "法律服务机构",
    "其他",
    "总计",
]


def test_a_garbled_column_header_is_placed_by_the_template_order_with_a_problem():
    rows = _applications_grid([*HEADER[:6], "族计"])
    problem = ocr.place_columns(rows)
    assert problem is not None and problem.code == "ocr_column_placed"
    assert str(problem) == (
        "applications: ocr: 1 column headers misread were placed by the template's "
        "column order: 族计 → 总计 (column 7)"
    )
    assert rows[0][-1].text == "总计"


def test_a_header_is_not_placed_without_its_neighbours_or_in_a_table_of_other_width():
    # Two garbled headers side by side: neither has both neighbours read.
    rows = _applications_grid([HEADER[0], "商止企亚", "料研札构", *HEADER[3:]])
    assert ocr.place_columns(rows) is None
    assert rows[0][2].text == "商止企亚"
    # Six columns of numbers: not table 三's seven, so nothing is placed.
    rows = _applications_grid([*HEADER[:5], "族计", "总计"])
    rows[1].pop()
    rows[0].pop()
    assert ocr.place_columns(rows) is None


def test_a_page_read_as_garbage_is_a_problem_of_its_code():
    from extract.pdf import pdf_layout
    from tests.fixtures import hostile

    def garbage(image, seconds):
        raise OcrGarbageError("OCR reads garbage")

    found = pdf_layout(hostile.image_pages_pdf(200), ocr=garbage)
    assert [p.code for p in found.issues] == ["ocr_garbage_page"]
    assert found.problems == ["pdf: page 1: OCR reads garbage"]
