"""Seconds per scanned page: the OCR path (``extract.ocr.ocr_page``) beside Tesseract's
own time on the same page (``tesseract page.png - -l chi_sim``), one core each.

Pages are the real text PDFs' pages rendered at 200 dpi (tests/fixtures/reports).
Run: python3 benchmarks/ocr_benchmark.py
"""

from __future__ import annotations

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
DPI = 200


def main() -> None:
    import pypdfium2

    from extract import ocr

    one_core = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    ours = tesseract = 0.0
    pages = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in DOCUMENTS:
            document = pypdfium2.PdfDocument((REPORTS / name).read_bytes())
            for number, page in enumerate(document, 1):
                image = page.render(scale=DPI / 72, grayscale=True).to_pil()
                path = Path(folder) / f"{name}-{number}.png"
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
                print(
                    f"{name} page {number}: ocr_page {mine:.2f} s, tesseract {theirs:.2f} s"
                )
                ours, tesseract, pages = ours + mine, tesseract + theirs, pages + 1
            document.close()
    print(
        f"{pages} pages at {DPI} dpi: ocr_page {ours / pages:.2f} s a page, "
        f"plain tesseract {tesseract / pages:.2f} s a page"
    )


if __name__ == "__main__":
    main()
