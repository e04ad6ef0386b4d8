"""PDF documents to a ``Layout``: ruled tables as grids, everything else as text lines.

- Each page is read by PDFium (pypdfium2): its chars from the text page, with the boxes
  pdfminer gave them (from the pen position to the advance, from the font's descent one
  font size up), and its paths from the page objects, classed as pdfminer classes them
  (one segment a line, a closed axis-aligned four-sided path a rectangle, anything else
  a curve) and turned into rulings. A char PDFium can only give as its raw code (a CID
  font with no Unicode map) is dropped; a page where a fifth of the chars are such is
  read as an image instead.
- Ruled tables come from the rulings by pdfplumber's table finder (``extract.geometry``
  holds it): WPS and Word fill every text line with a white, unstroked rectangle, so
  narrative next to a table comes out as rows of one full-width cell, which
  ``_split_narrative`` turns back into text lines. Each table's cell boxes are turned
  into grid rows (``Cell.col``/``span`` from the column boundaries; a box spanning
  several rows is repeated below with ``carried``), with each char placed in the box
  that holds its centre. Text stacked one character per line (三/、/本/年…) joins into
  one label; 商 业 企/业 loses its breaks the same way.
- A table broken by a page break arrives as two grids, one per page; a row label split
  by the break (（四）无 / 法提供) is joined back when the two halves together are a
  catalogue label and neither alone is.
- Text outside the tables keeps its line structure, with wide gaps kept as two spaces, and
  goes through ``text_layout``: a table with no ruling reads as a row-per-line text table.
- A page with (almost) no text but an image is a scan: it is rendered and read by OCR
  (``extract.ocr``), and every table it yields is an ``OcrTable``.

Limits: ``MAX_PAGES`` pages and ``MAX_BYTES`` bytes; past them the document is refused
with a ``DocumentError`` that names why, as for encrypted or broken files. A page is
rendered for OCR only up to ``MAX_RENDER_PIXELS`` (at 300 dpi); a larger one is skipped
with a problem. OCR reads at most ``MAX_OCR_PAGES`` pages in ``OCR_SECONDS`` of Tesseract
per document, and stops at the first page Tesseract cannot finish. A page drawing more
than ``MAX_PAGE_PATHS`` paths or ``MAX_PAGE_SEGMENTS`` path segments, or whose rulings
take over ``RULINGS_SECONDS`` to make into tables, is read as text alone.

Damage: before PDFium loads a page, pdfminer.six parses the file's objects (not its
drawing) to count what the page would draw: PDFium draws a form every time it is used,
so a few KiB of forms drawing forms would keep it busy for ever. A page that draws more
than ``MAX_PAGE_OPERATORS`` bytes of operators (forms counted each time they are drawn,
deflated streams inflated only that far) is not read, nor are the pages after
``MAX_DOCUMENT_OPERATORS``; a file pdfminer cannot parse is refused as broken, and the
pages from one its page tree cannot give are not read. An object that is only a
reference to itself, or a circle of such references, reads as null there. Whatever
pdfminer or PDFium raise on a broken page makes that page a problem
(``raised_by_library``), and the other pages are read.
"""

from __future__ import annotations

import ctypes
import functools
import io
import itertools
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from extract.catalogue import all_keys
from extract.errors import (
    DocumentError,
    OcrGarbageError,
    OcrTimeoutError,
    describe,
    raised_by_library,
)
from extract.geometry import (
    RulingsTimeoutError,
    assemble,
    grid_rows,
    table_boxes,
    text_lines,
)
from extract.layout import Cell, Layout, Table
from extract.normalize import normalize_label, parse_value
from extract.problems import Problem, texts

MAX_BYTES = 60 * 1024 * 1024
MAX_PAGES = 120
MAX_OCR_PAGES = 12
OCR_SECONDS = 180  # of Tesseract for one document, all its pages together
# Bytes of drawing operators a page may run, forms counted as often as they are drawn:
# a report's page has under 50 KiB; PDFium draws a form anew each time it is used.
MAX_PAGE_OPERATORS = 1024 * 1024
MAX_DOCUMENT_OPERATORS = 8 * 1024 * 1024
_FORM_COST = 64  # drawing a form costs what 64 bytes of operators do
_MAX_FORM_DEPTH = 32
# Paths a page may draw for its rulings to be read: the reports' pages draw up to 170
# (WPS draws a filled box behind every text line). Hatching, a map or text drawn as
# outlines draws thousands, and their rulings would cost seconds to make into tables.
MAX_PAGE_PATHS = 5_000
MAX_PAGE_SEGMENTS = 50_000
RULINGS_SECONDS = 5.0
MAX_RENDER_PIXELS = 40_000_000  # a page rendered for OCR at 300 dpi: A2 fits, A1 not
RENDER_DPI = 300
# pdfminer logs every token it parses at debug level; under a root logger at DEBUG (as
# Scrapy leaves it in `nianbao run`) each call builds a record that no handler prints:
# 1,200 for the demo's one PDF. Its own level stops that unless someone has set one.
if logging.getLogger("pdfminer").level == logging.NOTSET:
    logging.getLogger("pdfminer").setLevel(logging.INFO)
_PAGE_NUMBER = re.compile(
    r"^(?:[-—－–\s]*\d{1,3}[-—－–\s]*|第\s*\d+\s*页(?:\s*[,，/共]\s*共?\s*\d+\s*页)?|\d+\s*/\s*\d+)$"
)


@dataclass(slots=True)
class OcrTable(Table):
    """A table whose text was read by OCR from an image."""


@dataclass
class PdfResult:
    layout: Layout
    issues: list[Problem] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)
    pages: int = 0

    @property
    def problems(self) -> list[str]:
        """The problems met, as text."""
        return texts(self.issues)


# -- tables across page breaks -------------------------------------------------------


def _is_label(text: str) -> bool:
    return bool(text) and normalize_label(text) in all_keys()


def join_split_labels(previous: Table, following: Table) -> None:
    """Join a row label cut by a page break: the last row of ``previous`` and the first
    of ``following`` hold the halves in the same column (（四）无 / 法提供)."""
    if not previous.rows or not following.rows:
        return
    last, first = previous.rows[-1], following.rows[0]
    by_col = {cell.col: cell for cell in last}
    for cell in first:
        above = by_col.get(cell.col)
        if (
            above is None
            or not cell.text
            or not above.text
            or parse_value(cell.text).marker != "unparsed"
        ):
            continue
        joined = above.text + cell.text
        if _is_label(joined) and not _is_label(above.text) and not _is_label(cell.text):
            above.text = joined
            cell.text = joined
            cell.carried = True


# -- the PDF reader ------------------------------------------------------------------


_Matrix = tuple[float, float, float, float, float, float]


def _multiply(m: _Matrix, n: _Matrix) -> _Matrix:
    """``m`` then ``n``: the matrix mapping a point through m, then through n."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (
        a * p + b * r,
        a * q + b * s,
        c * p + d * r,
        c * q + d * s,
        e * p + f * r + t,
        e * q + f * s + u,
    )


def _page_space(pdfium_page) -> tuple[_Matrix, float, float]:
    """The matrix from PDF space to the page as read (origin top left, y down, the
    page's /Rotate applied, as pdfminer and pdfplumber placed things), and the page's
    width and height."""
    x0, y0, x1, y1 = pdfium_page.get_mediabox()
    rotation = pdfium_page.get_rotation()
    if rotation == 90:
        ctm, width, height = (0.0, -1.0, 1.0, 0.0, -y0, x1), y1 - y0, x1 - x0
        left, top = y0, height - x1
    elif rotation == 180:
        ctm, width, height = (-1.0, 0.0, 0.0, -1.0, x1, y1), x1 - x0, y1 - y0
        left, top = x0, height - y1
    elif rotation == 270:
        ctm, width, height = (0.0, 1.0, -1.0, 0.0, y1, -x0), y1 - y0, x1 - x0
        left, top = y0, height - x1
    else:
        ctm, width, height = (1.0, 0.0, 0.0, 1.0, -x0, -y0), x1 - x0, y1 - y0
        left, top = x0, height - y1
    flip = (1.0, 0.0, 0.0, -1.0, left, height + top)
    return _multiply(ctm, flip), width, height


def _box(space: _Matrix, x0: float, y0: float, x1: float, y1: float) -> tuple:
    """A PDF-space box as (x0, top, x1, bottom) on the page as read."""
    a, b, c, d, e, f = space
    if b == 0 and c == 0:  # the page is not rotated
        xs = (a * x0 + e, a * x1 + e)
        ys = (d * y0 + f, d * y1 + f)
        return min(xs), min(ys), max(xs), max(ys)
    corners = [
        (a * x + c * y + e, b * x + d * y + f) for x in (x0, x1) for y in (y0, y1)
    ]
    return (
        min(p[0] for p in corners),
        min(p[1] for p in corners),
        max(p[0] for p in corners),
        max(p[1] for p in corners),
    )


def _vertical_fonts(resources, depth: int = 0) -> dict[bytes, tuple[float, float]]:
    """The base names of the page's fonts written top to bottom (a vertical CMap), with
    their /DW2 (the vertical origin's height and the advance, in 1/1000 em), forms'
    fonts included."""
    from pdfminer.pdftypes import PDFStream, resolve1
    from pdfminer.psparser import PSLiteral

    def name(value) -> bytes:
        value = value.name if isinstance(value, PSLiteral) else value
        return value.encode() if isinstance(value, str) else bytes(value or b"")

    found: dict[bytes, tuple[float, float]] = {}
    resources = resolve1(resources)
    if not isinstance(resources, dict) or depth > 4:
        return found
    fonts = resolve1(resources.get("Font"))
    for font in (fonts or {}).values() if isinstance(fonts, dict) else ():
        font = resolve1(font)
        if not isinstance(font, dict):
            continue
        encoding = resolve1(font.get("Encoding"))
        vertical = name(encoding).endswith(b"-V") or (
            isinstance(encoding, PDFStream) and resolve1(encoding.get("WMode")) == 1
        )
        if vertical:
            descendants = resolve1(font.get("DescendantFonts"))
            dw2 = None
            if isinstance(descendants, list) and descendants:
                descendant = resolve1(descendants[0])
                if isinstance(descendant, dict):
                    dw2 = resolve1(descendant.get("DW2"))
            if not (isinstance(dw2, list) and len(dw2) == 2):
                dw2 = [880, -1000]
            found[name(font.get("BaseFont"))] = (float(dw2[0]), float(dw2[1]))
    xobjects = resolve1(resources.get("XObject"))
    for xobject in (xobjects or {}).values() if isinstance(xobjects, dict) else ():
        xobject = resolve1(xobject)
        if isinstance(xobject, PDFStream) and xobject.get("Resources") is not None:
            found.update(_vertical_fonts(xobject.get("Resources"), depth + 1))
    return found


def _font_name(textpage, index: int, names: dict) -> bytes:
    """The base name of the font of a char (names caches it by font)."""
    import pypdfium2.raw as pdfium

    font = pdfium.FPDFTextObj_GetFont(pdfium.FPDFText_GetTextObject(textpage, index))
    key = ctypes.cast(font, ctypes.c_void_p).value
    if key not in names:
        size = pdfium.FPDFFont_GetBaseFontName(font, None, 0)
        buffer = ctypes.create_string_buffer(max(size, 1))
        pdfium.FPDFFont_GetBaseFontName(font, buffer, size)
        names[key] = buffer.value
    return names[key]


def _chars(
    textpage, space: _Matrix, vertical: dict[bytes, tuple[float, float]]
) -> tuple[list[dict], int]:
    """The page's chars with pdfminer's boxes, and how many PDFium could give only as
    raw codes (no Unicode map); those are left out. ``vertical``: the page's fonts
    written top to bottom (``_vertical_fonts``)."""
    import pypdfium2.raw as pdfium

    count = pdfium.FPDFText_CountChars(textpage)
    if count <= 0:
        return [], 0
    units = (ctypes.c_ushort * (count + 1))()
    pdfium.FPDFText_GetText(textpage, 0, count, units)
    loose_box = pdfium.FPDFText_GetLooseCharBox
    font_size = pdfium.FPDFText_GetFontSize
    char_matrix = pdfium.FPDFText_GetMatrix
    unmapped = pdfium.FPDFText_HasUnicodeMapError
    rect, matrix = pdfium.FS_RECTF(), pdfium.FS_MATRIX()
    origin_x, origin_y = ctypes.c_double(), ctypes.c_double()
    chars, raw_codes = [], 0
    names: dict = {}
    skip = False
    for i in range(count):
        if skip:  # the low half of a surrogate pair, read with its high half
            skip = False
            continue
        text = chr(units[i])
        if 0xD800 <= units[i] < 0xDC00 and 0xDC00 <= units[i + 1] < 0xE000:
            text = (
                (text + chr(units[i + 1]))
                .encode("utf-16", "surrogatepass")
                .decode("utf-16")
            )
            skip = True
        if text.isspace() or text == "\0":
            continue
        if unmapped(textpage, i):
            raw_codes += 1
            continue
        loose_box(textpage, i, rect)
        char_matrix(textpage, i, matrix)
        bottom = rect.bottom
        size = font_size(textpage, i)
        # PDFium's box of a glyph written top to bottom is one unscaled font size wide
        # (its base font name alone does not tell: WPS names both directions alike).
        dw2 = (
            vertical.get(_font_name(textpage, i, names))
            if vertical and abs(rect.right - rect.left - size) < 0.01
            else None
        )
        if dw2 is not None and matrix.b == 0 and matrix.c == 0:
            # pdfminer's box: one font size wide, centred on the pen, from the /DW2
            # origin down one advance.
            x0, x1 = matrix.e - size / 2 * matrix.a, matrix.e + size / 2 * matrix.a
            top = matrix.f + (1000 - dw2[0]) / 1000 * size * matrix.d
            bottom = top + dw2[1] / 1000 * size * matrix.d
            x0, top, x1, bottom = _box(space, x0, bottom, x1, top)
            chars.append(
                {"text": text, "x0": x0, "x1": x1, "top": top, "bottom": bottom}
            )
            continue
        if matrix.b == 0 and matrix.c == 0:
            # pdfminer's box: the font's descent (which PDFium scales by the matrix's
            # a, pdfminer by its d) up one font size; PDFium's goes up to the ascent.
            if matrix.a != matrix.d and matrix.a:
                pdfium.FPDFText_GetCharOrigin(textpage, i, origin_x, origin_y)
                bottom = (
                    origin_y.value + (bottom - origin_y.value) * matrix.d / matrix.a
                )
            top = bottom + size * matrix.d
        else:
            top = rect.top
        x0, top, x1, bottom = _box(space, rect.left, bottom, rect.right, top)
        chars.append({"text": text, "x0": x0, "x1": x1, "top": top, "bottom": bottom})
    return chars, raw_codes


@dataclass
class _Drawing:
    """A page's paths and images, read from its objects."""

    edges: list[dict] = field(default_factory=list)
    image_areas: list[float] = field(default_factory=list)
    paths: int = 0
    segments: int = 0

    def over(self) -> bool:
        return self.paths > MAX_PAGE_PATHS or self.segments > MAX_PAGE_SEGMENTS


def _edge(x0: float, top: float, x1: float, bottom: float, orientation) -> dict:
    return {
        "x0": x0,
        "x1": x1,
        "top": top,
        "bottom": bottom,
        "width": x1 - x0,
        "height": bottom - top,
        "orientation": orientation,
    }


def _subpath_edges(ops: str, points: list[tuple[float, float]]) -> list[dict]:
    """The rulings of one subpath (ops m/l/c/h, points on the page as read), as
    pdfplumber made them from pdfminer's line, rectangle or curve."""
    if len(ops) > 3 and ops[-2:] == "lh" and points[-2] == points[0]:
        ops, points = ops[:-2] + "h", points[:-1]  # pdfminer drops the redundant l
    if ops in ("mlh", "ml"):
        (ax, ay), (bx, by) = points[0], points[1]
        x0, x1, top, bottom = min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)
        return [_edge(x0, top, x1, bottom, "h" if top == bottom else "v")]
    if ops in ("mlllh", "mllll"):
        (ax, ay), (bx, by), (cx, cy), (dx, dy), _ = points
        square = (ax == bx and by == cy and cx == dx and dy == ay) or (
            ay == by and bx == cx and cy == dy and dx == ax
        )
        if points[0] == points[4] and square:
            x0, x1, top, bottom = min(ax, cx), max(ax, cx), min(ay, cy), max(ay, cy)
            return [
                _edge(x0, top, x1, top, "h"),
                _edge(x0, bottom, x1, bottom, "h"),
                _edge(x0, top, x0, bottom, "v"),
                _edge(x1, top, x1, bottom, "v"),
            ]
    edges = []
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        if ax == bx:
            edges.append(_edge(ax, min(ay, by), bx, max(ay, by), "v"))
        elif ay == by:
            edges.append(_edge(min(ax, bx), ay, max(ax, bx), by, "h"))
    return edges


def _path_edges(obj, space: _Matrix, drawing: _Drawing) -> None:
    """A path object's rulings; pdfminer splits a path at each move."""
    import pypdfium2.raw as pdfium

    count = pdfium.FPDFPath_CountSegments(obj)
    drawing.segments += max(count, 0)
    if count <= 0 or drawing.over():
        return
    a, b, c, d, e, f = space
    x, y = ctypes.c_float(), ctypes.c_float()
    get_segment = pdfium.FPDFPath_GetPathSegment
    get_point = pdfium.FPDFPathSegment_GetPoint
    get_type = pdfium.FPDFPathSegment_GetType
    closes = pdfium.FPDFPathSegment_GetClose
    ops: list[str] = []
    points: list[tuple[float, float]] = []
    subpaths = []
    i = 0
    while i < count:
        kind = get_type(get_segment(obj, i))
        if kind == pdfium.FPDF_SEGMENT_BEZIERTO:
            i += 2  # a curve's two control points, then its end point
            if i >= count:
                break
            op = "c"
        else:
            op = "m" if kind == pdfium.FPDF_SEGMENT_MOVETO else "l"
        segment = get_segment(obj, i)
        get_point(segment, x, y)
        point = (a * x.value + c * y.value + e, b * x.value + d * y.value + f)
        if op == "m" and ops:
            subpaths.append((ops, points))
            ops, points = [], []
        ops.append(op)
        points.append(point)
        if closes(segment) and points:
            ops.append("h")
            points.append(points[0])
        i += 1
    subpaths.append((ops, points))
    for ops, points in subpaths:
        if ops and ops[0] == "m" and len(ops) > 1:
            drawing.edges.extend(_subpath_edges("".join(ops), points))


def _object_matrix(obj) -> _Matrix:
    import pypdfium2.raw as pdfium

    matrix = pdfium.FS_MATRIX()
    if not pdfium.FPDFPageObj_GetMatrix(obj, matrix):
        return (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    return (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)


def _drawing(pdfium_page, space: _Matrix) -> _Drawing:
    """The page's rulings and the areas of its images, forms' objects included, read
    until the page draws more than ``MAX_PAGE_PATHS`` paths or ``MAX_PAGE_SEGMENTS``
    segments."""
    import pypdfium2.raw as pdfium

    drawing = _Drawing()
    # Each level: the objects' count and getter, and the matrix to the page as read.
    stack: list[tuple[int, Callable[[int], Any], _Matrix, int]] = [
        (
            pdfium.FPDFPage_CountObjects(pdfium_page.raw),
            lambda n: pdfium.FPDFPage_GetObject(pdfium_page.raw, n),
            space,
            0,
        )
    ]
    while stack and not drawing.over():
        count, get, to_page, depth = stack.pop()
        for n in range(count):
            obj = get(n)
            kind = pdfium.FPDFPageObj_GetType(obj)
            if kind == pdfium.FPDF_PAGEOBJ_PATH:
                drawing.paths += 1
                if drawing.over():
                    break
                _path_edges(obj, _multiply(_object_matrix(obj), to_page), drawing)
            elif kind == pdfium.FPDF_PAGEOBJ_IMAGE:
                x0, top, x1, bottom = _box(
                    _multiply(_object_matrix(obj), to_page), 0, 0, 1, 1
                )
                drawing.image_areas.append((x1 - x0) * (bottom - top))
            elif kind == pdfium.FPDF_PAGEOBJ_FORM and depth < _MAX_FORM_DEPTH:
                stack.append(
                    (
                        pdfium.FPDFFormObj_CountObjects(obj),
                        functools.partial(pdfium.FPDFFormObj_GetObject, obj),
                        _multiply(_object_matrix(obj), to_page),
                        depth + 1,
                    )
                )
    return drawing


def _page_atoms(
    textpage, space: _Matrix, vertical, number: int, problems: list[Problem]
):
    """The page's chars; None when its text cannot be decoded (a CID font with no
    Unicode map), so the page has to be read as an image."""
    chars, raw_codes = _chars(textpage, space, vertical)
    if raw_codes and raw_codes * 5 >= len(chars) + raw_codes:
        problems.append(
            Problem(
                "undecodable_text",
                None,
                f"pdf: page {number} text is undecodable (CID font without a Unicode "
                "map)",
            )
        )
        return None
    return chars


def _split_narrative(rows: list[list[Cell]]) -> list[tuple[str, object]]:
    """A found grid as table rows and text lines: WPS and Word draw a filled box behind
    every text line, so narrative next to a table (or a page of it) arrives as rows of
    one full-width cell. Such a row is a text line unless it is a catalogue label
    (第二十条第（一）项 spans the table in table 二)."""
    width = max((c.col + c.span for row in rows for c in row), default=0)
    items: list[tuple[str, object]] = []
    current: list[list[Cell]] = []
    for row in rows:
        texts = [c for c in row if c.text]
        single = len(row) == 1 and row[0].col == 0 and row[0].span == width
        if (width <= 1 or single) and not (
            len(texts) == 1 and _is_label(texts[0].text)
        ):
            if current:
                items.append(("table", Table(current)))
                current = []
            items.extend(("line", c.text) for c in texts if not c.carried)
        else:
            current.append(row)
    if current:
        items.append(("table", Table(current)))
    return items


def _null_reference_cycles(document, cycles: list[int]) -> None:
    """Make an object that is only a reference round a circle back to itself (``4 0 obj
    4 0 R``, or 4 → 5 → 4) read as null, as a reference to a missing object does.

    pdfminer follows such references until it finds something else, which it never
    does: a page whose /Contents or /MediaBox is one kept it busy for ever. The objects
    met are listed in ``cycles``.
    """
    from pdfminer.pdftypes import PDFObjRef

    getobj = document.getobj

    def getobj_without_cycles(objid: int) -> object:
        obj = getobj(objid)
        seen = {objid}
        while isinstance(obj, PDFObjRef):
            if obj.objid in seen:
                cycles.extend(seen)
                return None
            seen.add(obj.objid)
            obj = getobj(obj.objid)
        return obj

    document.getobj = getobj_without_cycles


# A name before the Do operator; #xx escapes are decoded as pdfminer decodes them.
_DO = re.compile(rb"/([^\s/\[\]<>(){}%]+)\s*Do(?![^\s/\[\]<>(){}%])")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def _operators(stream, cap: int) -> bytes | None:
    """A content stream's operators, or None when they are over ``cap`` bytes. A
    deflated stream is inflated only as far as the cap, so that a bomb (a few KiB
    that inflate to GiB) never is."""
    from pdfminer.pdftypes import LITERALS_FLATE_DECODE

    filters = stream.get_filters()
    if (
        stream.data is None
        and stream.rawdata is not None
        and not stream.decipher
        and len(filters) == 1
        and filters[0][0] in LITERALS_FLATE_DECODE
    ):
        try:
            head = zlib.decompressobj().decompress(stream.rawdata, cap + 1)
        except zlib.error:
            head = b""  # pdfminer reads what it can of a damaged stream
        if len(head) > cap:
            return None
    data = stream.get_data()
    return data if len(data) <= cap else None


def _drawn(streams, resources, cap: int, forms: dict, depth: int = 0) -> int:
    """Bytes of operators a page (or form) runs, each form counted every time it is
    drawn; past ``cap``, any number over it. A form that draws forms that draw forms
    (ten deep, ten each) makes a KiB into 10^10 operators."""
    from pdfminer.pdftypes import PDFStream, resolve1
    from pdfminer.psparser import LIT

    if depth > _MAX_FORM_DEPTH:
        return cap + 1
    resources = resolve1(resources)
    xobjects = (
        resolve1(resources.get("XObject")) if isinstance(resources, dict) else None
    )
    total = 0
    for stream in streams:
        stream = resolve1(stream)
        if not isinstance(stream, PDFStream):
            continue
        data = _operators(stream, cap - total)
        if data is None:
            return cap + 1
        total += len(data)
        if not isinstance(xobjects, dict) or b"Do" not in data:
            continue
        for raw in _DO.findall(data):
            name = _NAME_ESCAPE.sub(lambda m: bytes.fromhex(m[1].decode()), raw)
            form = resolve1(xobjects.get(name.decode("latin-1")))
            if not isinstance(form, PDFStream) or form.get("Subtype") is not LIT(
                "Form"
            ):
                continue
            key = id(form)
            if key not in forms:
                forms[key] = 0  # drawing itself: pdfminer refuses, so nothing
                own = form.get("Resources") or resources
                forms[key] = _drawn([form], own, cap, forms, depth + 1)
            total += forms[key] + _FORM_COST
            if total > cap:
                return cap + 1
    return total


def _pdfminer_pages(document, problems: list[Problem]):
    """The document's page objects as pdfminer finds them, one at a time: where its
    page tree cannot give one, that is a problem and the pages before it are kept."""
    from pdfminer.pdfpage import PDFPage

    found = PDFPage.create_pages(document)
    for number in itertools.count(1):
        try:
            page_obj = next(found)
        except StopIteration:
            return
        except Exception as error:
            if not raised_by_library(error):
                raise
            problems.append(
                Problem(
                    "pdf_pages_unreadable",
                    None,
                    f"pdf: pages from {number} on unreadable: {describe(error)}",
                )
            )
            return
        if number > MAX_PAGES:  # pdfminer may find pages PDFium did not count
            problems.append(
                Problem(
                    "pdf_pages_over_limit",
                    None,
                    f"pdf: pages from {number} on not read (over {MAX_PAGES})",
                )
            )
            return
        yield number, page_obj


@dataclass
class _Budget:
    """What one document may still spend: pages and seconds of OCR, bytes of operators."""

    pages: int
    seconds: float
    operators: int
    stopped: str | None = None  # why OCR stopped before its pages or seconds ran out


def _page_items(
    number: int, page_obj, pdfium_doc, result: PdfResult, ocr, budget: _Budget
) -> list[tuple[str, object]] | None:
    """A page's items, or None when it cannot be read (the problem says why)."""
    try:
        drawn = _drawn(page_obj.contents, page_obj.resources, MAX_PAGE_OPERATORS, {})
        if drawn > MAX_PAGE_OPERATORS:
            result.issues.append(
                Problem(
                    "page_over_operator_limit",
                    None,
                    f"pdf: page {number} draws over {MAX_PAGE_OPERATORS >> 10} KiB of "
                    "operators; not read",
                )
            )
            return None
        budget.operators -= drawn
        if budget.operators < 0:
            result.issues.append(
                Problem(
                    "document_over_operator_limit",
                    None,
                    f"pdf: pages from {number} on not read: the document draws over "
                    f"{MAX_DOCUMENT_OPERATORS >> 10} KiB of operators",
                )
            )
            return None
        vertical = _vertical_fonts(page_obj.resources)
        return _read_page(number, vertical, pdfium_doc, result, ocr, budget)
    except OcrGarbageError as error:
        result.issues.append(
            Problem("ocr_garbage_page", None, f"pdf: page {number}: {error}")
        )
    except DocumentError as error:
        result.issues.append(
            Problem("page_unreadable", None, f"pdf: page {number}: {error}")
        )
    except Exception as error:
        if not raised_by_library(error):
            raise
        result.issues.append(
            Problem(
                "page_unreadable",
                None,
                f"pdf: page {number} unreadable: {describe(error)}",
            )
        )
    return None


def _pdfminer_document(data: bytes):
    """The file's objects parsed by pdfminer (nothing drawn), for counting what each
    page draws before PDFium does."""
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfparser import PDFParser

    try:
        return PDFDocument(PDFParser(io.BytesIO(data)))
    except Exception as error:
        if not raised_by_library(error):
            raise
        raise DocumentError(f"broken pdf: {describe(error)}") from None


def pdf_layout(data: bytes, ocr=None) -> PdfResult:
    """Lay out a PDF; ``ocr`` is a callable(PIL image, seconds allowed) -> list of items
    for scans."""
    import pypdfium2

    if len(data) > MAX_BYTES:
        raise DocumentError(f"pdf larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        pdfium_doc = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        message = str(error)
        if "password" in message.lower() or "security" in message.lower():
            raise DocumentError("encrypted pdf (needs a password)") from None
        raise DocumentError(f"broken pdf: {message}") from None
    result = PdfResult(Layout())
    try:
        result.pages = len(pdfium_doc)
        if result.pages > MAX_PAGES:
            raise DocumentError(f"pdf has {result.pages} pages, more than {MAX_PAGES}")
        document = _pdfminer_document(data)
        cycles: list[int] = []
        _null_reference_cycles(document, cycles)
        items: list[tuple[str, object]] = []
        last_table: Table | None = None
        budget = _Budget(MAX_OCR_PAGES, OCR_SECONDS, MAX_DOCUMENT_OPERATORS)
        for number, page_obj in _pdfminer_pages(document, result.issues):
            page_items = _page_items(number, page_obj, pdfium_doc, result, ocr, budget)
            if budget.operators < 0:
                break
            if page_items is None:
                last_table = None
                continue
            first_table = next((v for k, v in page_items if k == "table"), None)
            if (
                last_table is not None
                and isinstance(first_table, Table)
                and page_items
                and page_items[0][0] == "table"
            ):
                join_split_labels(last_table, first_table)
            tables = [v for k, v in page_items if k == "table" and isinstance(v, Table)]
            # A table that ends the page may go on at the top of the next one.
            last_table = (
                tables[-1]
                if tables and page_items and page_items[-1][0] == "table"
                else None
            )
            items.extend(page_items)
        if cycles:
            result.issues.append(
                Problem(
                    "reference_cycle",
                    None,
                    "pdf: a circle of references (objects "
                    + ", ".join(map(str, sorted(set(cycles))))
                    + ") read as null",
                )
            )
        result.layout = assemble(items)
        title = pdfium_doc.get_metadata_value("Title")
        if title.strip():
            result.layout.title = title.strip()
        return result
    finally:
        pdfium_doc.close()


def _ocr_page(
    number: int, pdfium_doc, result: PdfResult, ocr, budget: _Budget
) -> list[tuple[str, object]]:
    """A page read as an image, within the document's OCR budget and pixel cap."""
    if ocr is None:
        result.issues.append(
            Problem(
                "image_page_not_read", None, f"pdf: page {number} is an image, not read"
            )
        )
        return []
    if budget.pages <= 0:
        result.issues.append(
            Problem(
                "ocr_budget_spent",
                None,
                f"pdf: page {number} needs OCR; OCR stops at {MAX_OCR_PAGES} pages",
            )
        )
        return []
    if budget.seconds <= 0:
        result.issues.append(
            Problem(
                "ocr_budget_spent",
                None,
                f"pdf: page {number} needs OCR; the document's {OCR_SECONDS} s of OCR "
                "are spent",
            )
        )
        return []
    if budget.stopped:
        result.issues.append(
            Problem(
                "ocr_budget_spent",
                None,
                f"pdf: page {number} needs OCR; {budget.stopped}",
            )
        )
        return []
    pdfium_page = pdfium_doc[number - 1]
    width, height = pdfium_page.get_size()
    scale = RENDER_DPI / 72
    pixels = width * scale * height * scale
    if not 0 < pixels <= MAX_RENDER_PIXELS:
        result.issues.append(
            Problem(
                "page_too_large_to_render",
                None,
                f"pdf: page {number} needs OCR but is {width:.0f}x{height:.0f} pt, "
                f"over {MAX_RENDER_PIXELS} pixels at {RENDER_DPI} dpi; not rendered",
            )
        )
        return []
    budget.pages -= 1
    image = pdfium_page.render(scale=scale, grayscale=True).to_pil()
    started = time.monotonic()
    try:
        items = ocr(image, budget.seconds)
    except OcrTimeoutError:
        # Pages Tesseract cannot finish are noise or worse, and rarely come alone.
        budget.stopped = f"OCR stopped at page {number}, which it could not finish"
        raise
    finally:
        budget.seconds -= time.monotonic() - started
    result.ocr_pages.append(number)
    # What the OCR of the page met (a turned scan, no rulings) is the page's problem.
    result.issues.extend(
        Problem(found.code, found.table, f"{found.detail} (page {number})")
        for kind, found in items
        if isinstance(found, Problem)
    )
    return [item for item in items if item[0] != "problem"]


def _read_page(
    number: int, vertical, pdfium_doc, result: PdfResult, ocr, budget: _Budget
) -> list[tuple[str, object]]:
    pdfium_page = pdfium_doc[number - 1]
    try:
        space, width, height = _page_space(pdfium_page)
        textpage = pdfium_page.get_textpage()
        try:
            atoms = _page_atoms(textpage, space, vertical, number, result.issues)
        finally:
            textpage.close()
        drawing = _drawing(pdfium_page, space)
    finally:
        pdfium_page.close()
    scan = any(area > width * height * 0.2 for area in drawing.image_areas)
    if atoms is None or (len(atoms) < 10 and scan):
        return _ocr_page(number, pdfium_doc, result, ocr, budget)
    positioned: list[tuple[float, tuple[str, object]]] = []
    for boxes in _tables(drawing, number, result.issues):
        x0, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
        inside = [
            a
            for a in atoms
            if x0 - 1 <= (a["x0"] + a["x1"]) / 2 <= x1 + 1
            and top - 1 <= (a["top"] + a["bottom"]) / 2 <= bottom + 1
        ]
        rows, outside = grid_rows(boxes, inside)
        inside_ids = {id(a) for a in inside} - {id(a) for a in outside}
        atoms = [a for a in atoms if id(a) not in inside_ids]
        for n, item in enumerate(_split_narrative(rows)):
            positioned.append((top + n * 1e-3, item))
    for top, text in text_lines(atoms):
        if _PAGE_NUMBER.match(text):
            continue
        positioned.append((top, ("line", text)))
    positioned.sort(key=lambda item: item[0])
    return [item for _, item in positioned]


def _tables(
    drawing: _Drawing, number: int, problems: list[Problem]
) -> list[list[tuple]]:
    """The cell boxes of the page's ruled tables; none, with a problem, where the page
    draws too much for its rulings to be read."""
    if drawing.over():
        problems.append(
            Problem(
                "rulings_not_read",
                None,
                f"pdf: page {number} draws over {MAX_PAGE_PATHS} paths or "
                f"{MAX_PAGE_SEGMENTS} path segments; read as text, its rulings not "
                "read",
            )
        )
        return []
    try:
        return table_boxes(drawing.edges, time.monotonic() + RULINGS_SECONDS)
    except RulingsTimeoutError:
        problems.append(
            Problem(
                "rulings_not_read",
                None,
                f"pdf: page {number}: its rulings took over {RULINGS_SECONDS:g} s to "
                "make into tables; read as text, its rulings not read",
            )
        )
        return []
