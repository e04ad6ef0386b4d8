"""Pages per second by document format, beside pdfplumber's bare extract_tables.

Run from the repo root: ``python3 benchmarks/formats_benchmark.py [--repeat N]``. Reads
the PDF, DOCX and DOC fixtures in tests/fixtures/reports/ through ``parse_report`` (the
whole path: layout, tables, checks) and, on the same PDFs, pdfplumber's
``page.extract_tables()`` alone, where pdfplumber is installed (it is no dependency of
the project: ``pip install pdfplumber``); OCR is timed on one page image when Tesseract
is installed. DOCX/DOC have no pages: their figure is documents per second.
"""

from __future__ import annotations

import argparse
import io
import shutil
import time
from pathlib import Path

import pypdfium2

try:
    import pdfplumber
except ImportError:  # the comparison is skipped
    pdfplumber = None

from extract import parse_report

REPORTS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reports"


def _pages(data: bytes) -> int:
    document = pypdfium2.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def _time(function, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    pdfs = [(p.name, p.read_bytes()) for p in sorted(REPORTS.glob("*.pdf"))]
    pages = sum(_pages(data) for _, data in pdfs)

    def ours() -> None:
        for name, data in pdfs:
            parse_report(data, url=name)

    def bare() -> None:
        for _, data in pdfs:
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                for page in pdf.pages:
                    page.extract_tables()

    seconds = _time(ours, repeat)
    print(
        f"pdf  nianbao parse_report:      {pages / seconds:7.1f} pages/s ({len(pdfs)} files, {pages} pages)"
    )
    if pdfplumber is None:
        print("pdf  pdfplumber extract_tables: skipped (pdfplumber is not installed)")
    else:
        seconds = _time(bare, repeat)
        print(
            f"pdf  pdfplumber extract_tables: {pages / seconds:7.1f} pages/s (same files)"
        )
    for ext in ("docx", "doc"):
        docs = [(p.name, p.read_bytes()) for p in sorted(REPORTS.glob(f"*.{ext}"))]
        if not docs or (ext == "doc" and shutil.which("soffice") is None):
            print(f"{ext:4} skipped")
            continue
        seconds = _time(
            lambda docs=docs: [parse_report(d, url=n) for n, d in docs], repeat
        )
        print(
            f"{ext:4} nianbao parse_report:      {len(docs) / seconds:7.2f} documents/s ({len(docs)} files)"
        )
    if shutil.which("tesseract"):
        lo = REPORTS / "lo-word-2021-pdf.pdf"
        document = pypdfium2.PdfDocument(lo.read_bytes())
        buffer = io.BytesIO()
        document[1].render(scale=200 / 72).to_pil().convert("L").save(buffer, "PNG")
        document.close()
        image = buffer.getvalue()
        seconds = _time(lambda: parse_report(image, url="page.png"), 1)
        print(f"image nianbao OCR (200 dpi):    {1 / seconds:7.2f} pages/s")


if __name__ == "__main__":
    main()
