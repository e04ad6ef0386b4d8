"""OCR of scanned pages and images of tables, with Tesseract (chi_sim).

A scan of a ruled table is read in three steps: the table rulings are found in the image
(dark runs far longer than any stroke of a character), turned into cell boxes with
pdfplumber's own edge → intersection → cell functions, and erased; Tesseract then reads
the whole page once (``--psm 6``, TSV with word boxes), and each word goes to the cell
that holds its centre through the same ``grid_rows`` the PDF path uses. Words outside
every table are text lines. Every table so made is an ``OcrTable``; ``MarkingReader``
records which canonical cells came from one, so OCR values are never mixed silently
with text-extracted ones (``Report.ocr`` and ``Report.ocr_cells``).

Limits: images larger than ``MAX_PIXELS`` are refused (decompression bombs); Tesseract
gets ``OCR_TIMEOUT`` seconds a page (less where the document's OCR budget has less left,
``extract.pdf.OCR_SECONDS``), in a process group that is killed whole when it overruns;
a PDF's OCR stops at the first page Tesseract cannot finish.
A page whose ink is speckled like noise (``NOISE_RUNS``) is refused before Tesseract
sees it: Tesseract spends minutes on such a page and reads nothing.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from functools import cache

from extract.formats import run_tool
from extract.layout import Layout
from extract.pdf import (
    DocumentError,
    OcrTable,
    OcrTimeoutError,
    assemble,
    grid_rows,
    text_lines,
)
from extract.tables import TableReader

MAX_PIXELS = 40_000_000
OCR_TIMEOUT = 60  # a page of A4 at 300 dpi takes 10 s, of A2 35 s
# Runs of ink per pixel, along the rows: a page of text at 300 dpi has about 0.01, at
# 100 dpi 0.03; salt-and-pepper noise Tesseract needs 15 s and more for has 0.065 and up.
NOISE_RUNS = 0.06
_DARK = 150  # grey level below which a pixel is ink


@cache
def available() -> bool:
    """Whether the tesseract binary and its chi_sim data are installed."""
    if shutil.which("tesseract") is None:
        return False
    try:
        done = subprocess.run(
            ["tesseract", "--list-langs"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "chi_sim" in done.stdout.decode("utf-8", "replace").split()


class MarkingReader(TableReader):
    """A ``TableReader`` that records which cells came from OCR tables."""

    def read(self, blocks, is_heading) -> None:
        self.ocr_cells: list[tuple[str, str, str]] = []
        for block in blocks:
            before = {t: set(found) for t, found in self.cells.items()}
            super().read([block], is_heading)
            if isinstance(block, OcrTable):
                for table, found in self.cells.items():
                    self.ocr_cells.extend(
                        (table, *key) for key in found if key not in before[table]
                    )


def _runs(line, min_length: int) -> list[tuple[int, int]]:
    """Start and end of every run of True at least ``min_length`` long."""
    import numpy as np

    padded = np.concatenate(([False], line, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    keep = ends - starts >= min_length
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


def find_rulings(ink) -> tuple[list[dict], object]:
    """Table rulings of a binary image (True = ink): pdfplumber edges, and their mask."""
    import numpy as np

    height, width = ink.shape
    mask = np.zeros_like(ink)
    edges: list[dict] = []
    min_h = max(width // 25, 20)
    for y in np.flatnonzero(ink.sum(axis=1) >= min_h).tolist():
        for x0, x1 in _runs(ink[y], min_h):
            mask[y, x0:x1] = True
            edges.append(
                {"x0": x0, "x1": x1, "top": y, "bottom": y + 1, "width": x1 - x0,
                 "height": 1, "orientation": "h", "object_type": "line"}
            )  # fmt: skip
    min_v = max(height // 60, 20)
    for x in np.flatnonzero(ink.sum(axis=0) >= min_v).tolist():
        for y0, y1 in _runs(ink[:, x], min_v):
            mask[y0:y1, x] = True
            edges.append(
                {"x0": x, "x1": x + 1, "top": y0, "bottom": y1, "width": 1,
                 "height": y1 - y0, "orientation": "v", "object_type": "line"}
            )  # fmt: skip
    return edges, mask


def _tables(edges: list[dict]) -> list[list[tuple]]:
    from pdfplumber.table import (
        cells_to_tables,
        edges_to_intersections,
        intersections_to_cells,
        merge_edges,
    )

    merged = merge_edges(edges, 4, 4, 4, 4)
    cells = intersections_to_cells(edges_to_intersections(merged, 4, 4))
    return [t for t in cells_to_tables(cells) if len(t) >= 2]


def _tesseract(image, seconds: float) -> list[dict]:
    """Words with boxes (pixels), from one Tesseract run over the image."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    try:
        done = run_tool(
            ["tesseract", "stdin", "stdout", "-l", "chi_sim", "--psm", "6", "tsv"],
            timeout=seconds,
            stdin=buffer.getvalue(),
        )
    except subprocess.TimeoutExpired:
        raise OcrTimeoutError(
            f"OCR took longer than {seconds:.3g} s on a page"
        ) from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DocumentError("tesseract failed" + (f": {reason[-1]}" if reason else ""))
    words = []
    rows = csv.DictReader(
        io.StringIO(done.stdout.decode("utf-8", "replace")),
        delimiter="\t",
        quoting=csv.QUOTE_NONE,
    )
    for row in rows:
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        left, top = int(row["left"]), int(row["top"])
        words.append(
            {
                "text": text,
                "x0": left,
                "x1": left + int(row["width"]),
                "top": top,
                "bottom": top + int(row["height"]),
            }
        )
    return words


def ink_runs(ink) -> float:
    """Runs of ink per pixel, along the rows of a binary image (True = ink)."""
    import numpy as np

    starts = np.count_nonzero(ink[:, 1:] & ~ink[:, :-1]) + np.count_nonzero(ink[:, 0])
    return starts / max(ink.size, 1)


def ocr_page(image, seconds: float = OCR_TIMEOUT) -> list[tuple[str, object]]:
    """Items ("line", text) / ("table", OcrTable) of one page image, in reading order;
    Tesseract gets at most ``seconds`` (and never more than ``OCR_TIMEOUT``)."""
    import numpy as np

    grey = image.convert("L")
    pixels = np.asarray(grey)
    ink = pixels < _DARK
    runs = ink_runs(ink)
    if runs > NOISE_RUNS:
        raise DocumentError(
            f"the page is speckled like noise ({runs:.3f} ink runs a pixel, over "
            f"{NOISE_RUNS}), not OCR'd"
        )
    edges, mask = find_rulings(ink)
    boxes_by_table = _tables(edges) if edges else []
    cleaned = pixels.copy()
    # Erase the rulings (and a pixel around them) so Tesseract sees only the text.
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    cleaned[grown] = 255
    from PIL import Image

    words = _tesseract(Image.fromarray(cleaned), min(seconds, OCR_TIMEOUT))
    positioned: list[tuple[float, tuple[str, object]]] = []
    remaining = words
    for boxes in boxes_by_table:
        rows, remaining = grid_rows([tuple(map(float, b)) for b in boxes], remaining)
        if rows:
            top = min(b[1] for b in boxes)
            positioned.append((top, ("table", OcrTable(rows))))
    for top, text in text_lines(remaining):
        positioned.append((top, ("line", text)))
    positioned.sort(key=lambda item: item[0])
    return [item for _, item in positioned]


def image_layout(data: bytes) -> Layout:
    """Lay out an image document (PNG, JPEG, GIF; every frame of a TIFF-like file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise DocumentError(
                    f"image of {image.width}x{image.height} pixels, more than {MAX_PIXELS}"
                )
            image.load()
            items = ocr_page(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise DocumentError(f"unreadable image: {error}") from None
    return assemble(items)
