"""OCR of scanned pages and images of tables, with OpenCV and Tesseract (chi_sim, eng).

A page image is read in these steps:

1. Refused when speckled like noise (``NOISE_RUNS``): Tesseract spends minutes on such a
   page and reads nothing. A page with scanner grain (``GRAIN``) is median-filtered.
2. Deskewed: the angle whose turn gives the sharpest row profile of the ink (rulings and
   text lines lie along rows), searched within ``MAX_SKEW`` degrees.
3. Table rulings found with OpenCV: a morphological opening keeps only dark runs far
   longer than any stroke of a character, as edges; a table left open at a
   page break gets its missing border. The edge → intersection → cell functions of
   ``extract.geometry`` cut the cell boxes, as in the PDF path. The rulings and specks
   smaller than a printed point (``SPECK``) are erased.
4. Each cell's ink is pasted on a line of its own in a strip, and one Tesseract run
   (chi_sim) reads every cell of the page. Cells where a number is expected (they read
   as one, or stand in a column or row of numbers) are read twice more, digits only (eng
   with a whitelist, so 1 is not read as l or 丨), each crop scaled on its own to two
   heights; the reading two of the three agree on is kept. Cells of text that read as
   no template label are read again at another scale, and the second reading kept where
   it reads as one. ``normalize.ocr_text`` undoes the usual confusions (〈〉 for （）, ;
   for ：, l/I/丨 for 1 and O for 0 in numbers); the lines of each cell, in Tesseract's
   order, go through ``grid_rows`` as in the PDF path. A label misread by a character or
   so is read as the template label nearest it (``nearest_label``); a column header
   garbled past that is placed by the template's column order where its neighbours
   anchor it (``place_columns``); a problem lists each.
5. Text outside the tables is read by one run over the page with the tables blanked, at
   no more than ``PAGE_DPI``.

A page whose words Tesseract itself trusts too little (``MIN_CONFIDENCE``) is not taken
as read: Tesseract's orientation detection (``--psm 0``) is asked whether it lies
turned, and a page turned 90°, 180° or 270° is read again upright, with a problem saying
so; a page that still reads as garbage raises ``OcrGarbageError`` rather than give a
guess.

Every table so made is an ``OcrTable``; ``MarkingReader`` records which canonical cells
came from one, so OCR values are never mixed silently with text-extracted ones
(``Report.ocr`` and ``Report.ocr_cells``). ``ocr_page`` returns ("problem", Problem)
items beside lines and tables for what the reader should record (codes ``ocr_deskewed``,
``ocr_page_turned``, ``ocr_label_snapped``, ``ocr_column_placed``, ``ocr_no_rulings``).

Limits: images larger than ``MAX_PIXELS`` are refused (decompression bombs); Tesseract
gets ``OCR_TIMEOUT`` seconds a page, all its runs together (less where the document's
OCR budget has less left, ``extract.pdf.OCR_SECONDS``), each run in a process group
that is killed whole when it overruns.
"""

from __future__ import annotations

import bisect
import csv
import io
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache, lru_cache
from typing import Any

from extract.catalogue import TABLES, all_keys, table_catalogue
from extract.errors import DocumentError, OcrGarbageError, OcrTimeoutError
from extract.geometry import (
    assemble,
    cells_to_tables,
    edges_to_intersections,
    grid_rows,
    intersections_to_cells,
    merge_edges,
    text_lines,
)
from extract.layout import Cell, Layout
from extract.normalize import is_value_like, normalize_label, ocr_text, parse_value
from extract.pdf import OcrTable
from extract.problems import Problem
from extract.tables import TableReader
from extract.tools import run_tool

MAX_PIXELS = 40_000_000
OCR_TIMEOUT = 60  # a page of A4 at 300 dpi takes 10 s, of A2 35 s
# Runs of ink per pixel, along the rows: a page of text at 300 dpi has about 0.01, at
# 100 dpi 0.03; salt-and-pepper noise Tesseract needs 15 s and more for has 0.065 and up.
NOISE_RUNS = 0.06
# What Tesseract is given: a page's text at no more than 200 dpi (time grows with pixels,
# and it reads body text as well at 200 dpi as at 300); the labels of table cells
# scaled to 40 pixels high (chi_sim misreads 10.5-pt labels of a 200-dpi scan, 29 pixels
# high: 部分公开 as 部分公居), and those that read as no label again at 52 and 32 (its
# misreadings change with the size); numbers at 30 and again at 44, each crop on its own
# (the eng model reads digits well at that); cells a gap of 32 pixels apart.
PAGE_DPI = 200
LABEL_HEIGHT = 40
LABEL_HEIGHTS_AGAIN = (52, 32)
GAP = 32
NUMBER_HEIGHT = 30
NUMBER_HEIGHT_AGAIN = 44
# A cell whose ink is higher than this times the numbers beside it is hanzi, not digits.
DIGIT_SLACK = 1.15
# Scanner grain (``grain``) from which a page is median-filtered before it is read: a
# clean scan has 0.05-0.4, a copy with noise of 18 grey levels 4-5.
GRAIN = 1.5
# Ink smaller than this times the square of the ruling tolerance (12 pixels at 300 dpi)
# is a speck.
SPECK = 0.3
MAX_SKEW = 5.0  # degrees; a scan turned further is a page turned by hand
# Degrees: less is the search's own error (and moves a ruling 3 px across A4).
MIN_SKEW = 0.15
# Mean confidence (0-100) of Tesseract's words below which a page is not taken as read:
# an upright 150-dpi scan gives 85-95, the same page upside down 30-45.
MIN_CONFIDENCE = 60
# How alike an OCR'd label must be to a template label to be read as it, and how much
# less alike the next one must be (see ``nearest_label``).
SNAP_SIMILARITY, SNAP_MARGIN = 0.75, 0.1
SHORT_SIMILARITY, SHORT_MARGIN = 0.5, 0.2  # labels of two or three characters
# A label of six characters or more two thirds like one and far from any other
# (结转下年席符给办理 → 结转下年度继续办理: 0.67, the next 0.4).
LOOSE_SIMILARITY, LOOSE_MARGIN = 0.6, 0.25
_OSD_CONFIDENCE = 2.0  # orientation confidence Tesseract's OSD must reach to be trusted
_DARK = 150  # grey level below which a pixel is ink
# One core: the runs of a page are short, and two threads on a shared machine lose time.
_ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}
_NUMBER_LIKE = re.compile(r"[\d０-９lI|!\]()（）OoＯ.,，\s]+")
_HANZI = re.compile(r"[\u3400-\u9fff]")


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


def ink_runs(ink) -> float:
    """Runs of ink per pixel, along the rows of a binary image (True = ink)."""
    import numpy as np

    starts = np.count_nonzero(ink[:, 1:] & ~ink[:, :-1]) + np.count_nonzero(ink[:, 0])
    return starts / max(ink.size, 1)


# -- the image ---------------------------------------------------------------------


def _binary(grey, smooth: bool = False):
    """Ink as 255 on 0, at the level Otsu picks; ``smooth`` first takes scanner speckle
    with a median filter (which would also take a ruling one pixel thin)."""
    import cv2

    if smooth:
        grey = cv2.medianBlur(grey, 3)
    _, ink = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return ink


def grain(grey) -> float:
    """Scanner grain: the mean difference of the paper's pixels from their 5x5 mean,
    where no ink lies within two pixels (so thin rulings and strokes do not count).
    0.05-0.4 grey levels for a clean scan, 4-5 for a copy with noise of 18 levels."""
    import cv2
    import numpy as np

    paper = cv2.erode(grey, np.ones((5, 5), np.uint8)) > 180
    if not paper.any():
        return 0.0
    smooth = cv2.blur(grey, (5, 5))
    return float(np.abs(grey.astype(np.int16) - smooth)[paper].mean())


def _denoised(grey):
    """The page with scanner grain taken out where it has any (``GRAIN``)."""
    import cv2

    if grain(grey) < GRAIN:
        return grey
    return cv2.medianBlur(grey, 3)


def dpi(grey) -> float:
    """The resolution of a page image, taking its shorter side for A4's 8.27 inches
    (reports are A4; an image of part of a page comes out lower, which errs safe)."""
    return min(grey.shape) / 8.27


def _profile_score(ink, angle: float) -> float:
    import cv2
    import numpy as np

    height, width = ink.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    turned = cv2.warpAffine(ink, turn, (width, height), flags=cv2.INTER_NEAREST)
    rows = turned.sum(axis=1, dtype=np.float64)
    return float(np.square(np.diff(rows)).sum())


def skew_angle(ink) -> float:
    """Degrees (counter-clockwise, as OpenCV turns) that make the ink's rows level."""
    import cv2
    import numpy as np

    scale = min(1.0, 800 / max(ink.shape[1], 1))
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    best = 0.0
    for step, span in ((0.5, MAX_SKEW), (0.1, 0.5), (0.02, 0.1)):
        angles = best + np.arange(-span, span + step / 2, step)
        best = max(angles.tolist(), key=lambda a: _profile_score(small, a))
    return round(best, 2)


def _turn(grey, angle: float):
    """The image turned ``angle`` degrees counter-clockwise about its centre, in white."""
    import cv2

    height, width = grey.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(
        grey, turn, (width, height), flags=cv2.INTER_LINEAR, borderValue=255
    )


# -- rulings and cells -------------------------------------------------------------


def _segments(mask, orientation: str) -> list[dict]:
    """Edges of the rulings in a mask of long horizontal or vertical runs."""
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    edges = []
    for x, y, w, h, _area in stats[1:count].tolist():
        if orientation == "h":
            mid = y + h / 2
            edges.append(
                {"x0": x, "x1": x + w, "top": mid, "bottom": mid, "width": w,
                 "height": 0, "orientation": "h", "object_type": "line"}
            )  # fmt: skip
        else:
            mid = x + w / 2
            edges.append(
                {"x0": mid, "x1": mid, "top": y, "bottom": y + h, "width": 0,
                 "height": h, "orientation": "v", "object_type": "line"}
            )  # fmt: skip
    return edges


def find_rulings(grey, tolerance: float) -> tuple[list[dict], Any]:
    """Table rulings of a page: edges (``extract.geometry``), and their mask (255 = ruling).

    A ruling is a run of ink longer than any stroke of a character: across, a 25th of
    the page; down, 0.3 inches (a stroke of an 18-pt heading is 0.25; a row of a table
    is rarely under 0.3, and a column's ruling runs through several). Each direction is
    looked for in the page smoothed along it, which keeps a ruling whole where scanner
    noise breaks it into dashes. ``merge_edges`` joins the pieces of a ruling a scan
    left apart.
    """
    import cv2

    height, width = grey.shape
    level, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    reach = 2 * int(tolerance) + 1
    tall = max(int(0.3 * dpi(grey)), 20)
    masks = []
    for blur, span in (
        ((reach, 1), (max(width // 25, 20), 1)),
        ((1, reach), (1, tall)),
    ):
        _, ink = cv2.threshold(cv2.blur(grey, blur), level, 255, cv2.THRESH_BINARY_INV)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, span)
        masks.append(cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel))
    horizontal, vertical = masks
    edges = _segments(horizontal, "h") + _segments(vertical, "v")
    return edges + _open_ends(edges, tolerance), cv2.bitwise_or(horizontal, vertical)


def _open_ends(edges: list[dict], tolerance: float) -> list[dict]:
    """Borders of a table the page break left open: where three or more verticals that
    cross a ruling end together with no ruling there, one is drawn across their ends
    (verticals crossing none are strokes of a heading)."""
    horizontals = [e for e in edges if e["orientation"] == "h"]
    verticals = [
        v
        for v in edges
        if v["orientation"] == "v"
        and any(
            h["x0"] - tolerance <= v["x0"] <= h["x1"] + tolerance
            and v["top"] - tolerance <= h["top"] <= v["bottom"] + tolerance
            for h in horizontals
        )
    ]
    added = []
    for end in ("top", "bottom"):
        ends = sorted(verticals, key=lambda e: e[end])
        groups: list[list[dict]] = []
        for edge in ends:
            if groups and edge[end] - groups[-1][-1][end] <= tolerance:
                groups[-1].append(edge)
            else:
                groups.append([edge])
        for group in groups:
            if len(group) < 3:
                continue
            y = sum(e[end] for e in group) / len(group)
            x0, x1 = min(e["x0"] for e in group), max(e["x0"] for e in group)
            covered = any(
                abs(h["top"] - y) <= tolerance
                and h["x0"] <= x0 + tolerance
                and h["x1"] >= x1 - tolerance
                for h in horizontals
            )
            if not covered:
                added.append(
                    {"x0": x0, "x1": x1, "top": y, "bottom": y, "width": x1 - x0,
                     "height": 0, "orientation": "h", "object_type": "line"}
                )  # fmt: skip
    return added


def _tables(edges: list[dict], tolerance: float) -> list[list[tuple]]:
    """Cell boxes (x0, top, x1, bottom) of each table the edges make."""
    t = tolerance
    merged = merge_edges(edges, t, t, t, t)
    cells = intersections_to_cells(edges_to_intersections(merged, t, t))
    return [t for t in cells_to_tables(cells) if len(t) >= 2]


# -- Tesseract ---------------------------------------------------------------------


@dataclass
class _Clock:
    """The seconds a page's Tesseract runs may still take, together (the OpenCV work
    between them is not counted: it takes well under a second)."""

    allowed: float
    spent: float = 0.0

    def left(self) -> float:
        left = self.allowed - self.spent
        if left <= 0:
            raise OcrTimeoutError(
                f"OCR took longer than {self.allowed:.3g} s on a page"
            )
        return left


def _run(image, arguments: list[str], clock: _Clock) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    started = time.monotonic()
    try:
        done = run_tool(
            ["tesseract", "stdin", "stdout", *arguments],
            timeout=clock.left(),
            stdin=buffer.getvalue(),
            env=_ENV,
        )
    except subprocess.TimeoutExpired:
        raise OcrTimeoutError(
            f"OCR took longer than {clock.allowed:.3g} s on a page"
        ) from None
    finally:
        clock.spent += time.monotonic() - started
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DocumentError("tesseract failed" + (f": {reason[-1]}" if reason else ""))
    return done.stdout.decode("utf-8", "replace")


def _words(image, clock: _Clock, *options: str) -> list[dict]:
    """Words with boxes (pixels) and confidence, from one Tesseract run (``--psm 6``)."""
    output = _run(image, ["--psm", "6", *options, "tsv"], clock)
    words = []
    rows = csv.DictReader(io.StringIO(output), delimiter="\t", quoting=csv.QUOTE_NONE)
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
                "conf": float(row["conf"]),
                "line": (row["block_num"], row["par_num"], row["line_num"]),
            }
        )
    return words


def orientation(grey, clock: _Clock) -> tuple[int, float]:
    """Degrees the page must turn clockwise to be upright, and OSD's confidence in it."""
    try:
        output = _run(grey, ["--psm", "0"], clock)
    except DocumentError:  # too little text for OSD
        return 0, 0.0
    turn = re.search(r"Rotate: (\d+)", output)
    confidence = re.search(r"Orientation confidence: ([\d.]+)", output)
    if turn is None or confidence is None:
        return 0, 0.0
    return int(turn[1]), float(confidence[1])


# -- one page ----------------------------------------------------------------------


@dataclass
class _Cell:
    box: tuple[float, float, float, float]  # x0, top, x1, bottom on the page
    crop: tuple[int, int, int, int] | None  # x0, top, x1, bottom of its ink
    words: list[dict] = field(default_factory=list)
    number: bool = False


def _ink_box(ink, box, inset: int, min_area: int):
    """The bounding box of a cell's ink (rulings erased), or None for a blank cell."""
    import cv2

    x0, top, x1, bottom = (int(round(v)) for v in box)
    x0, top, x1, bottom = x0 + inset, top + inset, x1 - inset, bottom - inset
    if x1 - x0 < 2 or bottom - top < 2:
        return None
    count, _, stats, _ = cv2.connectedComponentsWithStats(
        ink[top:bottom, x0:x1], connectivity=8
    )
    keep = stats[1:count][stats[1:count, cv2.CC_STAT_AREA] >= min_area]
    if not len(keep):
        return None
    left = int(keep[:, 0].min())
    upper = int(keep[:, 1].min())
    right = int((keep[:, 0] + keep[:, 2]).max())
    lower = int((keep[:, 1] + keep[:, 3]).max())
    return (x0 + left, top + upper, x0 + right, top + lower)


def _read_cells(
    page, cells: list[_Cell], clock: _Clock, height: int, *options: str, each=False
):
    """Read cells in one Tesseract run: each cell's ink is pasted on a line of its own
    in a strip (a cell's words can never run into the next cell's), scaled so its lines
    of text are ``height`` pixels high, and every word is given back to the cell whose
    line holds its centre, in page coordinates. The lines of a page's labels are scaled
    alike (a cell of two lines is twice as high); with ``each``, every crop is one line
    (a number) and is scaled to ``height`` on its own, so the large digits of table 四
    and the small ones of table 三 reach Tesseract at one size."""
    import cv2
    import numpy as np

    if not cells:
        return
    # The height of a line of text: crops at least twice as wide as high are one line
    # of a label or a long number (a lone 0 is lower than a hanzi).
    boxes = [c.crop for c in cells if c.crop is not None]
    if len(boxes) != len(cells):
        raise ValueError("only cells with ink are read")
    sizes = [bottom - top for _, top, _, bottom in boxes]
    wide = [
        h for (x0, _, x1, _), h in zip(boxes, sizes, strict=True) if x1 - x0 >= 2 * h
    ]
    line = max(float(np.median(wide or sizes)), 1.0)
    crops = []
    for cell, box, size in zip(cells, boxes, sizes, strict=True):
        x0, top, x1, bottom = box
        factor = height / max(size if each else line, 1)
        crop = cv2.resize(
            page[top:bottom, x0:x1],
            None,
            fx=factor,
            fy=factor,
            interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC,
        )
        crops.append((crop, factor))
        cell.words = []
    width = max(crop.shape[1] for crop, _ in crops) + 2 * GAP
    strip = np.full(
        (sum(crop.shape[0] for crop, _ in crops) + GAP * (len(cells) + 1), width),
        255,
        np.uint8,
    )
    tops, places = [], []
    y = GAP
    for (crop, factor), box in zip(crops, boxes, strict=True):
        strip[y : y + crop.shape[0], GAP : GAP + crop.shape[1]] = crop
        tops.append(y - GAP // 2)
        places.append((y, factor, box[0], box[1]))
        y += crop.shape[0] + GAP
    for word in _words(strip, clock, *options):
        n = bisect.bisect_right(tops, (word["top"] + word["bottom"]) / 2) - 1
        if n >= 0:
            y, factor, x0, top = places[n]
            cells[n].words.append(
                {**word,
                 "x0": (word["x0"] - GAP) / factor + x0,
                 "x1": (word["x1"] - GAP) / factor + x0,
                 "top": (word["top"] - y) / factor + top,
                 "bottom": (word["bottom"] - y) / factor + top}
            )  # fmt: skip


def _is_number(words: list[dict]) -> bool:
    """Whether chi_sim's reading of a cell looks like a number it misread: no hanzi, and
    digits (3985758 as 3984974S8) or only what digits are misread as (l0, (0), ])."""
    text = "".join(w["text"] for w in words)
    if not text or _HANZI.search(text):
        return False
    return any(ch.isdigit() for ch in text) or bool(_NUMBER_LIKE.fullmatch(text))


def _numeric_cells(cells: list[_Cell], xs: list[float], ys: list[float]) -> None:
    """Mark the cells where a number is expected: those that read as one; the short
    cells below the first number of a column where numbers are most of what it holds;
    and short cells in a row where numbers are most of what is not a label (table 四 has
    one row of values, and its first 72 read as 允)."""
    columns: dict[int, list[_Cell]] = {}
    rows: dict[int, list[_Cell]] = {}
    for cell in cells:
        first = bisect.bisect_left(xs, cell.box[0] - 2)
        last = bisect.bisect_left(xs, cell.box[2] - 2)
        cell.number = _is_number(cell.words)
        if last - first == 1 and cell.crop is not None:
            columns.setdefault(first, []).append(cell)
            rows.setdefault(bisect.bisect_left(ys, cell.box[1] - 2), []).append(cell)
    for column in columns.values():
        column.sort(key=lambda c: c.box[1])
        numbers = [c for c in column if c.number]
        if len(numbers) < 2 or 2 * len(numbers) < len(column):
            continue
        first_top = numbers[0].box[1]
        for cell in column:
            text = "".join(w["text"] for w in cell.words)
            if (
                cell.box[1] >= first_top
                and len(text) <= 3
                and _digit_high(cell, numbers)
            ):
                cell.number = True
    for row in rows.values():
        texts = {id(c): "".join(w["text"] for w in c.words) for c in row}
        others = [c for c in row if not _is_label(texts[id(c)])]
        numbers = [c for c in others if c.number]
        if len(numbers) < 2 or 3 * len(numbers) < 2 * len(others):
            continue
        for cell in others:
            if len(texts[id(cell)]) <= 3 and _digit_high(cell, numbers):
                cell.number = True


def _digit_high(cell: _Cell, numbers: list[_Cell]) -> bool:
    """Whether a cell's ink is no higher than the numbers beside it: a label chi_sim
    lost (read as nothing) is hanzi, a third higher than digits, and must not be read
    again as digits (本年收费金额 came out as 77 and took the column's place)."""
    import numpy as np

    assert cell.crop is not None
    digits = float(np.median([c.crop[3] - c.crop[1] for c in numbers if c.crop]))
    return cell.crop[3] - cell.crop[1] <= DIGIT_SLACK * digits


def _is_label(text: str) -> bool:
    """Whether OCR'd text reads as a template label, or near enough to be taken for one."""
    return normalize_label(text) in all_keys() or nearest_label(text) is not None


def _label_text(words: list[dict]) -> str:
    return _joined([ocr_text(w["text"], False) for w in words])


def _read_labels_again(page, cells: list[_Cell], clock: _Clock) -> None:
    """Read again, at other scales (``LABEL_HEIGHTS_AGAIN``), the cells of text that read
    as no template label (nor near enough to one), and keep a later reading where it
    does: chi_sim's misreadings of a label change with the size it is given (予以公开 as
    他有次弄)."""
    for height in LABEL_HEIGHTS_AGAIN:
        unread = [c for c in cells if not _is_label(_label_text(c.words))]
        first = {id(c): c.words for c in unread}
        _read_cells(page, unread, clock, height, "-l", "chi_sim")
        for cell in unread:
            if not _is_label(_label_text(cell.words)):
                cell.words = first[id(cell)]


def _digits(words: list[dict]) -> str:
    return "".join(ocr_text(w["text"], True) for w in words).replace(" ", "")


def _read_numbers(page, cells: list[_Cell], clock: _Clock) -> None:
    """Read the cells where a number is expected twice more, digits only (eng with a
    whitelist, so 1 is not read as l or 丨), at two scales, and keep the reading two of
    the three agree on. Where all three differ the first digits-only reading stays, as
    it did before the vote: the identities of the table are what catch it then."""
    chinese = {id(c): c.words for c in cells}
    # The space too: without it the LSTM runs the digits of "1 0" into one word.
    whitelist = "tessedit_char_whitelist=0123456789.- "
    readings = []
    for height in (NUMBER_HEIGHT, NUMBER_HEIGHT_AGAIN):
        _read_cells(page, cells, clock, height, "-l", "eng", "-c", whitelist, each=True)
        readings.append({id(c): c.words for c in cells})
    first, second = readings
    for cell in cells:
        candidates = [first[id(cell)], second[id(cell)], chinese[id(cell)]]
        texts = [_digits(words) for words in candidates]
        if texts[0] == texts[1] or not texts[0] and not texts[1]:
            chosen = candidates[0] or candidates[2]
        elif texts[2] and texts[2] in texts[:2]:
            chosen = candidates[texts.index(texts[2])]
        else:
            chosen = candidates[0] or candidates[1] or candidates[2]
        cell.words = chosen


@lru_cache(maxsize=4096)
def nearest_label(text: str) -> str | None:
    """The template label an OCR'd label misread by a character or more stands for, or
    None when it reads as one already or no label is near enough and clearly nearest.

    Labels of four characters and more need ``SNAP_SIMILARITY`` (行政处站 → 行政处罚)
    with no label of another meaning within ``SNAP_MARGIN``, or ``LOOSE_SIMILARITY``
    with none within ``LOOSE_MARGIN``; shorter ones (总讨 → 总计) the ``SHORT_`` values.
    """
    read = normalize_label(text)
    # Stray marks before a label: the 一 of 一、 lost to the ruling beside it.
    key = read.lstrip("、.,，:：;`'-_·")
    if not _HANZI.search(key) or read in all_keys():
        return None
    if key in all_keys():
        return key
    # Labels that mean the same (本年新收… and 本年度新收…) are one candidate: the
    # margin is to the nearest label that means something else.
    nearest: dict[frozenset, tuple[float, str]] = {}
    for label, entries in all_keys().items():
        if _HANZI.search(label):
            meaning = frozenset((e.table, e.kind, e.code) for e in entries)
            ratio = SequenceMatcher(None, key, label, autojunk=False).ratio()
            nearest[meaning] = max(nearest.get(meaning, (0.0, "")), (ratio, label))
    ranked = sorted(nearest.values())
    (second, _), (best, label) = ranked[-2], ranked[-1]
    if len(label) < 4:
        similarity, margin = SHORT_SIMILARITY, SHORT_MARGIN
    elif best - second >= LOOSE_MARGIN and len(key) >= 6:
        similarity, margin = LOOSE_SIMILARITY, LOOSE_MARGIN
    else:
        similarity, margin = SNAP_SIMILARITY, SNAP_MARGIN
    return label if best >= similarity and best - second >= margin else None


@cache
def _column_orders() -> dict[str, tuple[tuple[str, str], ...]]:
    """Template table → its columns in print order, as (code, label): table 三's seven,
    table 四's five measures once under each of its three groups. Tables of blocks
    (table 二) have no one order of columns and are left out."""
    orders = {}
    for table in TABLES:
        catalogue = table_catalogue(table)
        blocks = {e.code for e in catalogue.entries if e.kind == "block"}
        columns = [
            (e.code, e.label_zh)
            for e in catalogue.of_kind("column")
            if not set(e.parent) & blocks
        ]
        if columns:
            groups = catalogue.of_kind("column_group")
            orders[table] = tuple(columns) * (
                len(groups) if catalogue.groups_as_rows else 1
            )
    return orders


def _reads_as_number(text: str) -> bool:
    return parse_value(text).marker == "number"


def place_columns(rows: list[list[Cell]]) -> Problem | None:
    """Column headers OCR garbled past matching (总计 as 族计), placed by the template's
    column order, with a problem listing them; None when none was placed.

    The columns are those holding numbers; their headers are the cells of the row above
    the first row of numbers. A table is taken for a template table only when it has as
    many such columns as the template, at least half of the headers read as the
    template's column at their place and none as another column; a header is then
    placed only when each neighbour it has was read at its place, so no header is ever
    placed by position alone.
    """
    first = next(
        (n for n, row in enumerate(rows) if any(_reads_as_number(c.text) for c in row)),
        0,
    )
    if first == 0:
        return None
    positions = sorted(
        {
            c.col
            for row in rows[first:]
            for c in row
            if c.span == 1 and _reads_as_number(c.text)
        }
    )
    header = []
    for position in positions:
        above = [c for c in rows[first - 1] if c.col <= position < c.col + c.span]
        if len(above) != 1 or above[0].span != 1:
            return None
        header.append(above[0])
    for table, order in _column_orders().items():
        if len(order) != len(header):
            continue
        catalogue = table_catalogue(table)
        read = [
            {
                e.code
                for e in catalogue.lookup(normalize_label(c.text))
                if e.kind == "column"
            }
            for c in header
        ]
        matched = [code in codes for (code, _), codes in zip(order, read, strict=True)]
        if any(codes and not ok for codes, ok in zip(read, matched, strict=True)):
            continue
        if 2 * sum(matched) < len(order):
            continue
        placed = []
        for n, cell in enumerate(header):
            neighbours = matched[max(n - 1, 0) : n] + matched[n + 1 : n + 2]
            if matched[n] or not all(neighbours):
                continue
            label = order[n][1]
            placed.append(f"{cell.text or '(blank)'} → {label} (column {n + 1})")
            # The same box over several rows is a cell in each (``carried``).
            for row in rows[:first]:
                for other in row:
                    if (other.col, other.span, other.text) == (
                        cell.col,
                        cell.span,
                        cell.text,
                    ) and other is not cell:
                        other.text = label
            cell.text = label
        if placed:
            return Problem(
                "ocr_column_placed",
                table,
                f"ocr: {len(placed)} column headers misread were placed by the "
                "template's column order: " + ", ".join(placed),
            )
        return None
    return None


def _page_words(grey, clock: _Clock) -> list[dict]:
    """Words of a page (chi_sim), read at no more than ``PAGE_DPI``, in page
    coordinates."""
    import cv2

    factor = min(PAGE_DPI / dpi(grey), 1.0)
    if factor < 0.9:
        grey = cv2.resize(
            grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA
        )
    else:
        factor = 1.0
    return [
        {**w, "x0": w["x0"] / factor, "x1": w["x1"] / factor,
         "top": w["top"] / factor, "bottom": w["bottom"] / factor}
        for w in _words(grey, clock, "-l", "chi_sim")
    ]  # fmt: skip


def _read_upright(grey, clock: _Clock) -> tuple[list[tuple[str, object]], list[dict]]:
    """Items of an upright page, and every word read (for their confidence)."""
    import cv2
    import numpy as np

    tolerance = max(3.0, grey.shape[1] / 400)
    edges, rulings = find_rulings(grey, tolerance)
    tables = _tables(edges, tolerance) if edges else []
    # Ink without the rulings (grown a little, as a scanned ruling is ragged). Not
    # smoothed again: a median filter wider than 3 takes the thin strokes of small
    # digits with the specks, which the least area of a cell's ink (``min_area``) and
    # the speck area below take instead.
    ink = _binary(grey)
    grown = cv2.dilate(rulings, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    text_ink = cv2.bitwise_and(ink, cv2.bitwise_not(grown))
    clean = grey.copy()
    clean[grown > 0] = 255
    inset = int(tolerance) // 2
    min_area = max(4, int(tolerance**2 / 2))
    # Specks the median filter left (a speck of a 200-dpi scan is 2x2 pixels at 300)
    # are blanked, or Tesseract reads them as points and commas; a printed point is
    # four times their size.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(text_ink, connectivity=8)
    specks = stats[:, cv2.CC_STAT_AREA] < SPECK * tolerance**2
    specks[0] = False
    clean[specks[labels]] = 255
    found: list[tuple[list[tuple], list[_Cell]]] = []
    for boxes in tables:
        cells = [_Cell(box, _ink_box(text_ink, box, inset, min_area)) for box in boxes]
        found.append((boxes, cells))
    every = [c for _, cells in found for c in cells if c.crop is not None]
    _read_cells(clean, every, clock, LABEL_HEIGHT, "-l", "chi_sim")
    numbers: list[_Cell] = []
    for boxes, cells in found:
        xs = sorted({b[0] for b in boxes} | {b[2] for b in boxes})
        ys = sorted({b[1] for b in boxes} | {b[3] for b in boxes})
        _numeric_cells(cells, xs, ys)
        numbers.extend(c for c in cells if c.number and c.crop is not None)
    _read_numbers(clean, numbers, clock)
    _read_labels_again(clean, [c for c in every if not c.number], clock)
    positioned: list[tuple[float, tuple[str, object]]] = []
    words: list[dict] = []
    outside = clean.copy()
    snapped: set[tuple[str, str]] = set()
    for boxes, cells in found:
        atoms = []
        for cell in cells:
            read = [
                {**word, "text": ocr_text(word["text"], cell.number)}
                for word in cell.words
            ]
            words.extend(read)
            atoms.extend(_lines(read))
        rows, _ = grid_rows(
            [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in boxes], atoms
        )
        for grid_cell in (grid_cell for row in rows for grid_cell in row):
            if grid_cell.text and not is_value_like(grid_cell.text):
                label = nearest_label(grid_cell.text)
                if label is not None:
                    snapped.add((grid_cell.text, label))
                    grid_cell.text = label
        x0 = int(min(b[0] for b in boxes))
        top = int(min(b[1] for b in boxes))
        x1 = int(max(b[2] for b in boxes))
        bottom = int(max(b[3] for b in boxes))
        outside[max(top - 2, 0) : bottom + 2, max(x0 - 2, 0) : x1 + 2] = 255
        if rows:
            placed = place_columns(rows)
            if placed is not None:
                positioned.append((top, ("problem", placed)))
            positioned.append((top, ("table", OcrTable(rows))))
    if np.any(outside < 128):
        lines = [
            {**w, "text": ocr_text(w["text"], False)}
            for w in _page_words(outside, clock)
        ]
        words.extend(lines)
        for line_top, text in text_lines(lines):
            positioned.append((line_top, ("line", text)))
    positioned.sort(key=lambda item: item[0])
    items = [item for _, item in positioned]
    if snapped:
        items.append(
            (
                "problem",
                Problem(
                    "ocr_label_snapped",
                    None,
                    f"ocr: {len(snapped)} labels misread were taken as the template "
                    "labels nearest them: "
                    + ", ".join(f"{read} → {label}" for read, label in sorted(snapped)),
                ),
            )
        )
    return items, words


def _lines(words: list[dict]) -> list[dict]:
    """A cell's words as the lines Tesseract read them in, one atom a line: the words
    of a wrapped label keep Tesseract's order (a comma or 一 boxed lower or higher than
    the hanzi beside it would otherwise start a line of its own)."""
    lines: dict[tuple, list[dict]] = {}
    for word in words:
        lines.setdefault(word["line"], []).append(word)
    return [
        {"text": _joined([w["text"] for w in line]),
         "x0": min(w["x0"] for w in line), "x1": max(w["x1"] for w in line),
         "top": min(w["top"] for w in line),
         "bottom": max(w["bottom"] for w in line)}
        for line in lines.values()
    ]  # fmt: skip


def _joined(texts: list[str]) -> str:
    """Words of a line as one text: a space only between two latin letters or digits
    (chi_sim gives each run of hanzi as a word of its own)."""
    out = ""
    for text in texts:
        if out and out[-1].isascii() and out[-1].isalnum() and text[0].isascii():
            out += " "
        out += text
    return out


def _confidence(words: list[dict]) -> float:
    """Tesseract's mean confidence in the words, weighted by their length."""
    weights = [len(w["text"]) for w in words]
    total = sum(weights)
    if not total:
        return 0.0
    return sum(w["conf"] * n for w, n in zip(words, weights, strict=True)) / total


def ocr_page(image, seconds: float = OCR_TIMEOUT) -> list[tuple[str, object]]:
    """Items ("line", text) / ("table", OcrTable) / ("problem", Problem) of one page
    image, in reading order; Tesseract gets at most ``seconds`` (never over
    ``OCR_TIMEOUT``). A page read as garbage raises ``OcrGarbageError``."""
    import numpy as np

    allowed = min(seconds, OCR_TIMEOUT)
    clock = _Clock(allowed)
    grey = np.asarray(image.convert("L"))
    runs = ink_runs(grey < _DARK)
    if runs > NOISE_RUNS:
        raise OcrGarbageError(
            f"the page is speckled like noise ({runs:.3f} ink runs a pixel, over "
            f"{NOISE_RUNS}), not OCR'd"
        )
    problems: list[Problem] = []
    grey = _denoised(grey)
    angle = skew_angle(_binary(grey, smooth=True))
    if abs(angle) >= MIN_SKEW:
        grey = _turn(grey, angle)
        problems.append(
            Problem(
                "ocr_deskewed",
                None,
                f"ocr: the scan was turned {angle:+.2f}° before reading",
            )
        )
    try:
        items, words = _read_upright(grey, clock)
    except OcrTimeoutError:
        raise
    except DocumentError:
        # Tesseract fails on some strips of a page lying turned (cells of text
        # standing on end): such a page goes on to the orientation check.
        items, words = [], [{"text": "?", "conf": 0.0}]
    if not words:
        return [("problem", p) for p in problems]
    confidence = _confidence(words)
    if confidence < MIN_CONFIDENCE:
        turn, sure = orientation(grey, clock)
        if turn and sure >= _OSD_CONFIDENCE:
            import cv2

            turns = {
                90: cv2.ROTATE_90_CLOCKWISE,
                180: cv2.ROTATE_180,
                270: cv2.ROTATE_90_COUNTERCLOCKWISE,
            }
            upright = cv2.rotate(grey, turns[turn])
            items, words = _read_upright(upright, clock)
            confidence = _confidence(words)
            problems.append(
                Problem(
                    "ocr_page_turned",
                    None,
                    f"ocr: the page lay turned; read after turning it {turn}° "
                    "clockwise",
                )
            )
        if confidence < MIN_CONFIDENCE:
            raise OcrGarbageError(
                f"OCR reads garbage (Tesseract's confidence {confidence:.0f} of 100, "
                f"under {MIN_CONFIDENCE}); the page is not taken as read"
            )
    if not any(kind == "table" for kind, _ in items) and any(
        len(re.findall(r"(?<!\S)\d+(?!\S)", text)) >= 3
        for kind, text in items
        if kind == "line" and isinstance(text, str)
    ):
        problems.append(
            Problem(
                "ocr_no_rulings",
                None,
                "ocr: no ruling lines on a page with rows of numbers; "
                "its rows were read from text lines",
            )
        )
    return items + [("problem", p) for p in problems]


def image_layout(data: bytes) -> tuple[Layout, list[Problem]]:
    """Lay out an image document (PNG, JPEG, GIF; every frame of a TIFF-like file),
    with the problems its reading met."""
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
    problems = [found for kind, found in items if isinstance(found, Problem)]
    return assemble([i for i in items if i[0] != "problem"]), problems
