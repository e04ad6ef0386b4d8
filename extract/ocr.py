"""OCR of scanned pages and images of tables, with OpenCV and Tesseract (chi_sim, eng).

A page image is read in these steps:

1. Refused when speckled like noise (``NOISE_RUNS``): Tesseract spends minutes on such a
   page and reads nothing.
2. Deskewed: the angle whose turn gives the sharpest row profile of the ink (rulings and
   text lines lie along rows), searched within ``MAX_SKEW`` degrees.
3. Table rulings found with OpenCV: a morphological opening keeps only dark runs far
   longer than any stroke of a character, as edges; a table left open at a
   page break gets its missing border. the edge → intersection → cell functions of
   ``extract.geometry`` cut the cell boxes, as in the PDF path.
4. Each cell's ink, rulings erased, is pasted on a line of its own in a strip, and one
   Tesseract run (chi_sim) reads every cell of the page. Cells where a number is
   expected (they read as one, or stand in a column of numbers) are read again in one
   digits-only run (eng with a whitelist), so 1 is not read as l or 丨. The words go back
   to their cells and through ``grid_rows``, as in the PDF path, after
   ``normalize.ocr_text`` undoes the usual confusions (〈〉 for （）, ; for ：, l/I/丨 for 1
   and O for 0 in numbers); a label misread by a character or so is read as the template
   label nearest it (``nearest_label``), and a problem lists each one.
5. Text outside the tables is read by one run over the page with the tables blanked, at
   no more than ``PAGE_DPI``.

A page whose words Tesseract itself trusts too little (``MIN_CONFIDENCE``) is not taken
as read: Tesseract's orientation detection (``--psm 0``) is asked whether it lies
turned, and a page turned 90°, 180° or 270° is read again upright, with a problem saying
so; a page that still reads as garbage raises ``DocumentError`` rather than give a guess.

Every table so made is an ``OcrTable``; ``MarkingReader`` records which canonical cells
came from one, so OCR values are never mixed silently with text-extracted ones
(``Report.ocr`` and ``Report.ocr_cells``). ``ocr_page`` returns ("problem", text) items
beside lines and tables for what the reader should record.

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

from extract.catalogue import all_keys
from extract.errors import DocumentError, OcrTimeoutError
from extract.geometry import (
    assemble,
    cells_to_tables,
    edges_to_intersections,
    grid_rows,
    intersections_to_cells,
    merge_edges,
    text_lines,
)
from extract.layout import Layout
from extract.normalize import is_value_like, normalize_label, ocr_text
from extract.pdf import OcrTable
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
# high: 部分公开 as 部分公居); numbers at 30 (the eng model reads digits well at that);
# cells a gap of 32 pixels apart (twice that between the cells of a row of numbers).
PAGE_DPI = 200
LABEL_HEIGHT = 40
GAP = 32
NUMBER_HEIGHT = 30
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


def find_rulings(grey, tolerance: float) -> tuple[list[dict], object]:
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
    for blur, kernel in (
        ((reach, 1), (max(width // 25, 20), 1)),
        ((1, reach), (1, tall)),
    ):
        _, ink = cv2.threshold(cv2.blur(grey, blur), level, 255, cv2.THRESH_BINARY_INV)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, kernel)
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


def _read_cells(page, cells: list[_Cell], clock: _Clock, height: int, *options: str):
    """Read cells in one Tesseract run: each cell's ink is pasted on a line of its own
    in a strip (a cell's words can never run into the next cell's), the strip scaled so
    its lines of text are ``height`` pixels high, and every word is given back to the
    cell whose line holds its centre, in page coordinates."""
    import cv2
    import numpy as np

    if not cells:
        return
    # The height of a line of text: crops at least twice as wide as high are one line
    # of a label or a long number (a lone 0 is lower than a hanzi).
    sizes = [c.crop[3] - c.crop[1] for c in cells]
    wide = [
        h for c, h in zip(cells, sizes, strict=True) if c.crop[2] - c.crop[0] >= 2 * h
    ]
    factor = height / max(float(np.median(wide or sizes)), 1.0)
    gap = int(GAP / factor)
    width = max(c.crop[2] - c.crop[0] for c in cells) + 2 * gap
    strip = np.full((sum(sizes) + gap * (len(cells) + 1), width), 255, np.uint8)
    tops, offsets = [], []
    y = gap
    for cell, size in zip(cells, sizes, strict=True):
        x0, top, x1, bottom = cell.crop
        strip[y : y + size, gap : gap + x1 - x0] = page[top:bottom, x0:x1]
        tops.append(y - gap // 2)
        offsets.append((x0 - gap, top - y))
        cell.words = []
        y += size + gap
    scaled = cv2.resize(
        strip,
        None,
        fx=factor,
        fy=factor,
        interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC,
    )
    for word in _words(scaled, clock, *options):
        x0, x1 = word["x0"] / factor, word["x1"] / factor
        top, bottom = word["top"] / factor, word["bottom"] / factor
        n = bisect.bisect_right(tops, (top + bottom) / 2) - 1
        if n >= 0:
            dx, dy = offsets[n]
            cells[n].words.append(
                {**word, "x0": x0 + dx, "x1": x1 + dx, "top": top + dy,
                 "bottom": bottom + dy}
            )  # fmt: skip


def _is_number(words: list[dict]) -> bool:
    """Whether chi_sim's reading of a cell looks like a number it misread: no hanzi, and
    digits (3985758 as 3984974S8) or only what digits are misread as (l0, (0), ])."""
    text = "".join(w["text"] for w in words)
    if not text or _HANZI.search(text):
        return False
    return any(ch.isdigit() for ch in text) or bool(_NUMBER_LIKE.fullmatch(text))


def _numeric_columns(cells: list[_Cell], xs: list[float]) -> None:
    """Mark the cells where a number is expected: those that read as one, and the short
    cells below the first number of a column where numbers are most of what it holds."""
    columns: dict[int, list[_Cell]] = {}
    for cell in cells:
        first = bisect.bisect_left(xs, cell.box[0] - 2)
        last = bisect.bisect_left(xs, cell.box[2] - 2)
        cell.number = _is_number(cell.words)
        if last - first == 1 and cell.crop is not None:
            columns.setdefault(first, []).append(cell)
    for column in columns.values():
        column.sort(key=lambda c: c.box[1])
        numbers = [c for c in column if c.number]
        if len(numbers) < 2 or 2 * len(numbers) < len(column):
            continue
        first_top = numbers[0].box[1]
        for cell in column:
            text = "".join(w["text"] for w in cell.words)
            if cell.box[1] >= first_top and len(text) <= 3:
                cell.number = True


@lru_cache(maxsize=4096)
def nearest_label(text: str) -> str | None:
    """The template label an OCR'd label misread by a character or more stands for, or
    None when it reads as one already or no label is near enough and clearly nearest.

    Labels of four characters and more need ``SNAP_SIMILARITY`` (行政处站 → 行政处罚)
    with no other label within ``SNAP_MARGIN``; shorter ones (总讨 → 总计) the
    ``SHORT_`` values.
    """
    read = normalize_label(text)
    # Stray marks before a label: the 一 of 一、 lost to the ruling beside it.
    key = read.lstrip("、.,，:：;`'-_·")
    if not _HANZI.search(key) or read in all_keys():
        return None
    if key in all_keys():
        return key
    ranked = sorted(
        (SequenceMatcher(None, key, label, autojunk=False).ratio(), label)
        for label in all_keys()
        if _HANZI.search(label)
    )
    (second, _), (best, label) = ranked[-2], ranked[-1]
    short = len(label) < 4
    if best - second < (SHORT_MARGIN if short else SNAP_MARGIN):
        return None
    return label if best >= (SHORT_SIMILARITY if short else SNAP_SIMILARITY) else None


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
    # smoothed: a median filter takes the thin strokes of small digits with the specks,
    # which the least area of a cell's ink (``min_area``) takes instead.
    ink = _binary(grey)
    grown = cv2.dilate(rulings, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    text_ink = cv2.bitwise_and(ink, cv2.bitwise_not(grown))
    clean = grey.copy()
    clean[grown > 0] = 255
    inset = int(tolerance) // 2
    min_area = max(4, int(tolerance**2 / 2))
    found: list[tuple[list[tuple], list[_Cell]]] = []
    for boxes in tables:
        cells = [_Cell(box, _ink_box(text_ink, box, inset, min_area)) for box in boxes]
        found.append((boxes, cells))
    every = [c for _, cells in found for c in cells if c.crop is not None]
    _read_cells(clean, every, clock, LABEL_HEIGHT, "-l", "chi_sim")
    numbers = []
    for boxes, cells in found:
        xs = sorted({b[0] for b in boxes} | {b[2] for b in boxes})
        _numeric_columns(cells, xs)
        numbers.extend(c for c in cells if c.number and c.crop is not None)
    chinese = {id(c): c.words for c in numbers}
    # The space too: without it the LSTM runs the digits of "1 0" into one word.
    whitelist = "tessedit_char_whitelist=0123456789.- "
    _read_cells(clean, numbers, clock, NUMBER_HEIGHT, "-l", "eng", "-c", whitelist)
    for cell in numbers:
        if not cell.words:  # nothing a digit: what chi_sim read stays
            cell.words = chinese[id(cell)]
    positioned: list[tuple[float, tuple[str, object]]] = []
    words: list[dict] = []
    outside = clean.copy()
    snapped: set[tuple[str, str]] = set()
    for boxes, cells in found:
        atoms = []
        for cell in cells:
            for word in cell.words:
                atoms.append({**word, "text": ocr_text(word["text"], cell.number)})
        words.extend(atoms)
        rows, _ = grid_rows([tuple(map(float, b)) for b in boxes], atoms)
        for cell in (cell for row in rows for cell in row):
            if cell.text and not is_value_like(cell.text):
                label = nearest_label(cell.text)
                if label is not None:
                    snapped.add((cell.text, label))
                    cell.text = label
        x0 = int(min(b[0] for b in boxes))
        top = int(min(b[1] for b in boxes))
        x1 = int(max(b[2] for b in boxes))
        bottom = int(max(b[3] for b in boxes))
        outside[max(top - 2, 0) : bottom + 2, max(x0 - 2, 0) : x1 + 2] = 255
        if rows:
            positioned.append((top, ("table", OcrTable(rows))))
    if np.any(outside < 128):
        lines = [
            {**w, "text": ocr_text(w["text"], False)}
            for w in _page_words(outside, clock)
        ]
        words.extend(lines)
        for top, text in text_lines(lines):
            positioned.append((top, ("line", text)))
    positioned.sort(key=lambda item: item[0])
    items = [item for _, item in positioned]
    if snapped:
        items.append(
            (
                "problem",
                f"ocr: {len(snapped)} labels misread were taken as the template "
                "labels nearest them: "
                + ", ".join(f"{read} → {label}" for read, label in sorted(snapped)),
            )
        )
    return items, words


def _confidence(words: list[dict]) -> float:
    """Tesseract's mean confidence in the words, weighted by their length."""
    weights = [len(w["text"]) for w in words]
    total = sum(weights)
    if not total:
        return 0.0
    return sum(w["conf"] * n for w, n in zip(words, weights, strict=True)) / total


def ocr_page(image, seconds: float = OCR_TIMEOUT) -> list[tuple[str, object]]:
    """Items ("line", text) / ("table", OcrTable) / ("problem", text) of one page image,
    in reading order; Tesseract gets at most ``seconds`` (never over ``OCR_TIMEOUT``)."""
    import numpy as np

    allowed = min(seconds, OCR_TIMEOUT)
    clock = _Clock(allowed)
    grey = np.asarray(image.convert("L"))
    runs = ink_runs(grey < _DARK)
    if runs > NOISE_RUNS:
        raise DocumentError(
            f"the page is speckled like noise ({runs:.3f} ink runs a pixel, over "
            f"{NOISE_RUNS}), not OCR'd"
        )
    problems = []
    angle = skew_angle(_binary(grey, smooth=True))
    if abs(angle) >= MIN_SKEW:
        grey = _turn(grey, angle)
        problems.append(f"ocr: the scan was turned {angle:+.2f}° before reading")
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
                f"ocr: the page lay turned; read after turning it {turn}° clockwise"
            )
        if confidence < MIN_CONFIDENCE:
            raise DocumentError(
                f"OCR reads garbage (Tesseract's confidence {confidence:.0f} of 100, "
                f"under {MIN_CONFIDENCE}); the page is not taken as read"
            )
    if not any(kind == "table" for kind, _ in items) and any(
        len(re.findall(r"(?<!\S)\d+(?!\S)", text)) >= 3
        for kind, text in items
        if kind == "line"
    ):
        problems.append(
            "ocr: no ruling lines on a page with rows of numbers; "
            "its rows were read from text lines"
        )
    return items + [("problem", p) for p in problems]


def image_layout(data: bytes) -> tuple[Layout, list[str]]:
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
    problems = [text for kind, text in items if kind == "problem"]
    return assemble([i for i in items if i[0] != "problem"]), problems
