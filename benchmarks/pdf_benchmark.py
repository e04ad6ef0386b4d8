"""Milliseconds per PDF page: the PDFium reader beside the pdfplumber reader it replaced.

Run from the repo root: ``python3 benchmarks/pdf_benchmark.py [--repeat N] [--before
REV]``. Every PDF in tests/fixtures/ and ../shared/fixtures/real/ (where present) is laid
out by ``extract.pdf.pdf_layout`` as it is now and as it was at git revision ``REV``
(default: the last commit before the PDFium reader, whose ``extract/pdf.py`` is loaded
from git as a module of its own; it needs pdfplumber, which the project no longer
depends on: ``pip install pdfplumber``). The two are timed interleaved, page counts from
PDFium, without OCR; every document's blocks (lines and grid cells) and problems are
compared, and any that differ are listed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pypdfium2

from extract import pdf
from extract.layout import Table

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = [ROOT / "tests" / "fixtures", ROOT.parent / "shared" / "fixtures" / "real"]
BEFORE = "16a0bb5"  # the last change to extract/pdf.py before the PDFium reader


def _old_reader(revision: str):
    """extract/pdf.py at ``revision``, loaded as extract._pdf_before."""
    source = subprocess.run(
        ["git", "show", f"{revision}:extract/pdf.py"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="pdf-before-"))
    path = folder / "pdf_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("extract._pdf_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _pages(data: bytes) -> int | None:
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return None
    try:
        return len(document)
    finally:
        document.close()


def _outcome(reader, data: bytes):
    """What a reader makes of a document: its blocks and problems, or its refusal."""
    try:
        found = reader.pdf_layout(data)
    except reader.DocumentError as error:
        return ("refused", str(error))
    blocks = [
        [[(c.text, c.col, c.span, c.carried) for c in row] for row in b.rows]
        if isinstance(b, Table)
        else b
        for b in found.layout.blocks
    ]
    return (blocks, found.problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    old = _old_reader(args.before)
    documents = []
    for folder in FOLDERS:
        for path in sorted(folder.rglob("*.pdf")):
            data = path.read_bytes()
            pages = _pages(data)
            if pages:  # the fixtures' few-byte stand-ins are no PDF
                documents.append((path, data, pages))
    total = {"new": 0.0, "old": 0.0}
    pages_read = 0
    differ = []
    print(f"{'document':44} {'pages':>5} {'new ms/p':>9} {'old ms/p':>9} {'ratio':>6}")
    for path, data, pages in documents:
        spent = {"new": 0.0, "old": 0.0}
        for _ in range(args.repeat):
            for name, reader in (("new", pdf), ("old", old)):
                started = time.perf_counter()
                _outcome(reader, data)
                spent[name] += time.perf_counter() - started
        if _outcome(pdf, data) != _outcome(old, data):
            differ.append(path.relative_to(ROOT.parent))
        per_page = {k: v / args.repeat / pages * 1000 for k, v in spent.items()}
        for name in total:
            total[name] += spent[name] / args.repeat
        pages_read += pages
        print(
            f"{str(path.relative_to(ROOT.parent))[-44:]:44} {pages:5d} "
            f"{per_page['new']:9.2f} {per_page['old']:9.2f} "
            f"{per_page['old'] / per_page['new']:5.1f}x"
        )
    new, old_ms = (total[k] / pages_read * 1000 for k in ("new", "old"))
    print(
        f"{'all':44} {pages_read:5d} {new:9.2f} {old_ms:9.2f} {old_ms / new:5.1f}x "
        f"(PDFium {new:.2f} ms a page, pdfplumber {old_ms:.2f})"
    )
    print(
        "identical blocks and problems"
        if not differ
        else "differ: " + ", ".join(map(str, differ))
    )


if __name__ == "__main__":
    main()
