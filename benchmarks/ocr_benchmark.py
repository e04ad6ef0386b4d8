"""Seconds per scanned page: the OCR path (``extract.ocr.ocr_page``) beside Tesseract's
own time on the same page (``tesseract page.png - -l chi_sim``), one core each.

Pages are the scans tests/test_ocr_scans.py reads: the real text PDFs' pages
(tests/fixtures/reports) rendered at 200 and 150 dpi, turned 1°, and with scanner noise,
each saved as an image-only PDF and rendered back as ``extract.pdf`` renders a page for
OCR (``RENDER_DPI``), so both get the image the reader gets.
Run: python3 benchmarks/ocr_benchmark.py
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REPORTS = ROOT / "tests" / "fixtures" / "reports"
DOCUMENTS = ["huaian-hongze-district-2023.pdf", "huaian-city-2024.pdf"]
VARIANTS = [("200 dpi", 200), ("150 dpi", 150), ("turned 1°", 200), ("noisy", 200)]


def _scans(name: str, variant: str, dpi: int):
    """The pages of one scan as the PDF reader renders them for OCR."""
    import pypdfium2

    from extract import pdf
    from tests.test_ocr_scans import _noisy, _turned

    document = pypdfium2.PdfDocument((REPORTS / name).read_bytes())
    try:
        images = [
            page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            for page in document
        ]
    finally:
        document.close()
    if variant.startswith("turned"):
        images = [_turned(image, 1.0) for image in images]
    elif variant == "noisy":
        images = [_noisy(image) for image in images]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="PDF", save_all=True, append_images=images[1:], resolution=dpi
    )
    scan = pypdfium2.PdfDocument(buffer.getvalue())
    try:
        return [
            page.render(scale=pdf.RENDER_DPI / 72, grayscale=True).to_pil()
            for page in scan
        ]
    finally:
        scan.close()


def main() -> None:
    from extract import ocr

    one_core = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    with tempfile.TemporaryDirectory() as folder:
        for variant, dpi in VARIANTS:
            ours = tesseract = 0.0
            pages = 0
            for name in DOCUMENTS:
                for number, image in enumerate(_scans(name, variant, dpi), 1):
                    path = Path(folder) / "page.png"
                    image.save(path)
                    started = time.perf_counter()
                    try:
                        ocr.ocr_page(image)
                    except ocr.DocumentError as error:
                        print(f"  {name} p{number}: {error}")
                    mine = time.perf_counter() - started
                    started = time.perf_counter()
                    subprocess.run(
                        ["tesseract", str(path), "-", "-l", "chi_sim"],
                        capture_output=True,
                        check=True,
                        env=one_core,
                    )
                    theirs = time.perf_counter() - started
                    ours, tesseract, pages = ours + mine, tesseract + theirs, pages + 1
            print(
                f"{variant}: {pages} pages, ocr_page {ours / pages:.2f} s a page "
                f"(target 10 s), plain tesseract {tesseract / pages:.2f} s a page",
                flush=True,
            )


if __name__ == "__main__":
    main()
