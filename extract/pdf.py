"""PDF documents to a ``Layout``: ruled tables as grids, everything else as text lines.

- Text is read with pdfminer.six through pdfplumber (chars with positions). Where pdfminer
  only yields ``(cid:N)`` (a CID font without a usable ToUnicode map) the page's chars are
  taken from PDFium (pypdfium2) instead, which also reads the embedded font's own cmap.
- Ruled tables come from pdfplumber's table finder fed only with real rulings: WPS and
  Word fill every text line with a white, unstroked rectangle, which the finder would
  otherwise read as a one-column table around the narrative. Each table's cell boxes are
  turned into grid rows (``Cell.col``/``span`` from the column boundaries; a box spanning
  several rows is repeated below with ``carried``), with each char placed in the box that
  holds its centre. Text stacked one character per line (三/、/本/年…) joins into one
  label; 商 业 企/业 loses its breaks the same way.
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
per document, and stops at the first page Tesseract cannot finish.

Damage: whatever pdfminer, pdfplumber or PDFium raise on a broken page makes that page a
problem (``raised_by_library``), and the other pages are read; an object that is only a
reference to itself, or a circle of such references, reads as null instead of keeping
pdfminer busy for ever. A page that would have pdfminer run more than
``MAX_PAGE_OPERATORS`` bytes of drawing operators (forms counted each time they are
drawn, deflated streams inflated only that far) is not read, nor are the pages after
``MAX_DOCUMENT_OPERATORS``: a few KiB can hold 10^9 form draws or a deflate bomb.
"""

from __future__ import annotations

import bisect
import io
import itertools
import re
import time
import zlib
from dataclasses import dataclass, field

from extract.catalogue import all_keys
from extract.layout import Cell, Layout, Table, text_layout
from extract.normalize import normalize_label, parse_value

MAX_BYTES = 60 * 1024 * 1024
MAX_PAGES = 120
MAX_OCR_PAGES = 12
OCR_SECONDS = 180  # of Tesseract for one document, all its pages together
# Bytes of drawing operators pdfminer may run, forms counted as often as they are drawn:
# a report's page has under 50 KiB; pdfminer runs 100 to 250 KiB a second, keeping an
# object for every char (2 MiB of text took 23 s and 700 MiB).
MAX_PAGE_OPERATORS = 1024 * 1024
MAX_DOCUMENT_OPERATORS = 8 * 1024 * 1024
_FORM_COST = 64  # drawing a form costs pdfminer what 64 bytes of operators do
_MAX_FORM_DEPTH = 32
MAX_RENDER_PIXELS = 40_000_000  # a page rendered for OCR at 300 dpi: A2 fits, A1 not
RENDER_DPI = 300
_SNAP = 2.0  # points: boundaries closer than this are one grid line
_PAGE_NUMBER = re.compile(
    r"^(?:[-—－–\s]*\d{1,3}[-—－–\s]*|第\s*\d+\s*页(?:\s*[,，/共]\s*共?\s*\d+\s*页)?|\d+\s*/\s*\d+)$"
)
_CID = re.compile(r"\(cid:\d+\)")


class DocumentError(Exception):
    """A document that cannot be read at all; the message says why."""


class OcrTimeoutError(DocumentError):
    """Tesseract did not finish a page within its time."""


def raised_by_library(error: BaseException) -> bool:
    """Whether an exception comes from inside a library (a document it could not read),
    not from this package's own code, whose errors are bugs to be seen, not problems.

    Libraries reading damaged files raise anything (zlib.error, KeyError, TypeError,
    NotImplementedError, RecursionError): where it was raised tells them apart.
    """
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "")
    return not (module == "extract" or module.startswith("extract."))


def describe(error: BaseException) -> str:
    """The exception's type and a short message, for a problem."""
    name = type(error).__name__
    # pdfplumber wraps pdfminer's errors in its own: name both.
    if error.args and isinstance(error.args[0], BaseException):
        name += f" ({type(error.args[0]).__name__})"
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 160:
        message = message[:157] + "..."
    return f"{name}: {message}" if message else name


@dataclass(slots=True)
class OcrTable(Table):
    """A table whose text was read by OCR from an image."""


@dataclass
class PdfResult:
    layout: Layout
    problems: list[str] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)
    pages: int = 0


# -- geometry helpers shared with the OCR path ---------------------------------------


def _snap(values: list[float]) -> list[float]:
    """Sorted boundaries with near-duplicates merged."""
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > _SNAP:
            out.append(v)
    return out


def _index(bounds: list[float], value: float) -> int:
    i = bisect.bisect_left(bounds, value - _SNAP)
    return min(i, len(bounds) - 1)


def _join_cell_text(atoms: list[dict]) -> str:
    """The text of a cell's chars (or OCR words): lines top to bottom, joined."""
    if not atoms:
        return ""
    lines = _group_lines(atoms)
    texts = [
        _line_text(sorted(line, key=lambda a: a["x0"]), wide=False) for line in lines
    ]
    out = texts[0]
    for text in texts[1:]:
        if (
            out
            and text
            and out[-1].isascii()
            and out[-1].isalnum()
            and text[0].isascii()
        ):
            out += " " + text
        else:
            out += text
    return out.strip()


def _group_lines(atoms: list[dict]) -> list[list[dict]]:
    """Atoms grouped into lines: an atom whose vertical centre falls inside a line's
    band joins it (OCR boxes of one line differ in height and top)."""
    lines: list[list[dict]] = []
    bands: list[list[float]] = []
    for atom in sorted(atoms, key=lambda a: (a["top"] + a["bottom"]) / 2):
        centre = (atom["top"] + atom["bottom"]) / 2
        for band, line in zip(reversed(bands[-3:]), reversed(lines[-3:]), strict=True):
            if band[0] <= centre <= band[1]:
                line.append(atom)
                break
        else:
            lines.append([atom])
            bands.append([atom["top"], atom["bottom"]])
    return lines


def _line_text(atoms: list[dict], wide: bool) -> str:
    """Chars of one line; a gap of a char's width is a space, of two (``wide``) a field."""
    out = ""
    previous = None
    for atom in atoms:
        if previous is not None:
            size = max(atom["bottom"] - atom["top"], 1.0)
            gap = atom["x0"] - previous["x1"]
            if wide and gap > 1.6 * size:
                out += "  "
            elif (
                gap > 0.45 * size
                and (atom["text"][:1].isascii() or previous["text"][-1:].isascii())
                or gap > 1.0 * size
            ):
                out += " "
        out += atom["text"]
        previous = atom
    return out


def grid_rows(
    boxes: list[tuple[float, float, float, float]], atoms: list[dict]
) -> tuple[list[list[Cell]], list[dict]]:
    """Rows of grid cells from cell boxes (x0, top, x1, bottom); atoms not inside any
    box are returned. A box covering several rows is repeated with ``carried``."""
    xs = _snap([b[0] for b in boxes] + [b[2] for b in boxes])
    ys = _snap([b[1] for b in boxes] + [b[3] for b in boxes])
    placed: list[tuple[int, int, int, int]] = []
    for x0, top, x1, bottom in boxes:
        c0, c1 = _index(xs, x0), _index(xs, x1)
        r0, r1 = _index(ys, top), _index(ys, bottom)
        if c1 > c0 and r1 > r0:
            placed.append((r0, r1, c0, c1))
    owner: dict[tuple[int, int], int] = {}
    for n, (r0, r1, c0, c1) in enumerate(placed):
        for r in range(r0, r1):
            for c in range(c0, c1):
                owner.setdefault((r, c), n)
    texts: list[list[dict]] = [[] for _ in placed]
    outside = []
    for atom in atoms:
        cx = (atom["x0"] + atom["x1"]) / 2
        cy = (atom["top"] + atom["bottom"]) / 2
        c = bisect.bisect_right(xs, cx) - 1
        r = bisect.bisect_right(ys, cy) - 1
        n = owner.get((r, c)) if 0 <= c < len(xs) - 1 and 0 <= r < len(ys) - 1 else None
        if n is None:
            outside.append(atom)
        else:
            texts[n].append(atom)
    joined = [_join_cell_text(t) for t in texts]
    rows: dict[int, list[Cell]] = {}
    for n, (r0, r1, c0, c1) in enumerate(placed):
        for r in range(r0, r1):
            rows.setdefault(r, []).append(Cell(joined[n], c0, c1 - c0, r > r0))
    ordered = []
    for r in sorted(rows):
        row = sorted(rows[r], key=lambda cell: cell.col)
        if any(cell.text for cell in row):
            ordered.append(row)
    return ordered, outside


def text_lines(atoms: list[dict]) -> list[tuple[float, str]]:
    """Atoms grouped into lines (top, text), wide gaps kept as two spaces."""
    lines = _group_lines(atoms)
    out = []
    for line in lines:
        line.sort(key=lambda a: a["x0"])
        text = _line_text(line, wide=True).strip()
        if text:
            out.append((min(a["top"] for a in line), text))
    out.sort(key=lambda item: item[0])
    return out


def assemble(items: list[tuple[str, object]]) -> Layout:
    """Page items ("line", text) / ("table", Table) in reading order, into a Layout."""
    layout = Layout()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            layout.blocks.extend(text_layout("\n".join(pending)).blocks)
            pending.clear()

    for kind, value in items:
        if kind == "line":
            pending.append(value)  # type: ignore[arg-type]
        else:
            flush()
            layout.blocks.append(value)  # type: ignore[arg-type]
    flush()
    return layout


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


def _is_ruling(obj: dict) -> bool:
    if obj["object_type"] == "line":
        return True
    if obj["object_type"] == "rect":
        thin = min(obj["width"], obj["height"]) < 2.5
        return bool(obj.get("stroke")) or thin
    return obj["object_type"] != "curve"


def _pdfium_chars(pdfium_page, height: float, page_number: int) -> list[dict]:
    """The page's chars as PDFium reads them, in pdfplumber's shape."""
    textpage = pdfium_page.get_textpage()
    chars = []
    try:
        for i in range(textpage.count_chars()):
            text = textpage.get_text_range(i, 1)
            if not text or text.isspace():
                continue
            left, bottom, right, top = textpage.get_charbox(i)
            chars.append(
                {
                    "object_type": "char",
                    "text": text,
                    "x0": left,
                    "x1": right,
                    "top": height - top,
                    "bottom": height - bottom,
                    "page_number": page_number,
                }
            )
    finally:
        textpage.close()
    return chars


def _readable(chars: list[dict]) -> bool:
    """Whether most chars are printable text (not control codes or private-use glyphs)."""
    good = sum(
        1
        for c in chars
        if c["text"].isprintable() and not 0xE000 <= ord(c["text"][0]) <= 0xF8FF
    )
    return good * 10 >= len(chars) * 9


def _page_atoms(page, pdfium_doc, problems: list[str]) -> list[dict] | None:
    """The page's chars; None when its text cannot be decoded (a CID font with no
    Unicode map in either engine), so the page has to be read as an image."""
    chars = [c for c in page.chars if c["text"].strip()]
    cid = sum(1 for c in chars if _CID.search(c["text"]))
    if cid and cid * 5 >= len(chars):
        fallback = _pdfium_chars(
            pdfium_doc[page.page_number - 1], page.height, page.page_number
        )
        if fallback and _readable(fallback):
            problems.append(
                f"pdf: page {page.page_number} text read by PDFium (pdfminer gave (cid:N))"
            )
            return fallback
        problems.append(
            f"pdf: page {page.page_number} text is undecodable (CID font without a "
            "Unicode map)"
        )
        return None
    if cid:
        chars = [c for c in chars if not _CID.search(c["text"])]
    return chars


def _page_tables(page) -> list:
    return page.find_tables(
        {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
    )


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


def _has_image(page) -> bool:
    area = page.width * page.height
    return any(
        (img["x1"] - img["x0"]) * (img["bottom"] - img["top"]) > area * 0.2
        for img in page.images
    )


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


def _pdfplumber_pages(pdf, problems: list[str]):
    """The document's pages, one at a time: a page pdfminer cannot make is a problem and
    the pages before it are kept (pdfplumber's ``pages`` makes all or none)."""
    from pdfminer.pdfpage import PDFPage
    from pdfplumber.page import Page

    found = PDFPage.create_pages(pdf.doc)
    for number in itertools.count(1):
        try:
            page_obj = next(found)
        except StopIteration:
            return
        except Exception as error:
            if not raised_by_library(error):
                raise
            problems.append(
                f"pdf: pages from {number} on unreadable: {describe(error)}"
            )
            return
        if number > MAX_PAGES:  # pdfminer may find pages PDFium did not count
            problems.append(f"pdf: pages from {number} on not read (over {MAX_PAGES})")
            return
        try:
            yield Page(pdf, page_obj, page_number=number)
        except Exception as error:
            if not raised_by_library(error):
                raise
            problems.append(f"pdf: page {number} unreadable: {describe(error)}")


@dataclass
class _Budget:
    """What one document may still spend: pages and seconds of OCR, bytes of operators."""

    pages: int
    seconds: float
    operators: int
    stopped: str | None = None  # why OCR stopped before its pages or seconds ran out


def _page_items(
    page, pdfium_doc, result: PdfResult, ocr, budget: _Budget
) -> list[tuple[str, object]] | None:
    """A page's items, or None when it cannot be read (the problem says why)."""
    number = page.page_number
    try:
        drawn = _drawn(
            page.page_obj.contents, page.page_obj.resources, MAX_PAGE_OPERATORS, {}
        )
        if drawn > MAX_PAGE_OPERATORS:
            result.problems.append(
                f"pdf: page {number} draws over {MAX_PAGE_OPERATORS >> 10} KiB of "
                "operators; not read"
            )
            return None
        budget.operators -= drawn
        if budget.operators < 0:
            result.problems.append(
                f"pdf: pages from {number} on not read: the document draws over "
                f"{MAX_DOCUMENT_OPERATORS >> 10} KiB of operators"
            )
            return None
        return _read_page(page, pdfium_doc, result, ocr, budget)
    except DocumentError as error:
        result.problems.append(f"pdf: page {number}: {error}")
    except Exception as error:
        if not raised_by_library(error):
            raise
        result.problems.append(f"pdf: page {number} unreadable: {describe(error)}")
    return None


def pdf_layout(data: bytes, ocr=None) -> PdfResult:
    """Lay out a PDF; ``ocr`` is a callable(PIL image, seconds allowed) -> list of items
    for scans."""
    import pdfplumber
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
        try:
            pdf = pdfplumber.open(io.BytesIO(data))
        except Exception as error:
            if not raised_by_library(error):
                raise
            raise DocumentError(f"broken pdf: {describe(error)}") from None
        cycles: list[int] = []
        _null_reference_cycles(pdf.doc, cycles)
        items: list[tuple[str, object]] = []
        last_table: Table | None = None
        budget = _Budget(MAX_OCR_PAGES, OCR_SECONDS, MAX_DOCUMENT_OPERATORS)
        # Not pdf.close(), which would make every page pdfminer failed on again.
        for page in _pdfplumber_pages(pdf, result.problems):
            try:
                page_items = _page_items(page, pdfium_doc, result, ocr, budget)
            finally:
                page.close()
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
            tables = [v for k, v in page_items if k == "table"]
            # A table that ends the page may go on at the top of the next one.
            last_table = (
                tables[-1]
                if tables and page_items and page_items[-1][0] == "table"
                else None
            )
            items.extend(page_items)
        if cycles:
            result.problems.append(
                "pdf: a circle of references (objects "
                + ", ".join(map(str, sorted(set(cycles))))
                + ") read as null"
            )
        result.layout = assemble(items)
        title = (pdf.metadata or {}).get("Title")
        if isinstance(title, str) and title.strip():
            result.layout.title = title.strip()
        return result
    finally:
        pdfium_doc.close()


def _ocr_page(
    number: int, pdfium_doc, result: PdfResult, ocr, budget: _Budget
) -> list[tuple[str, object]]:
    """A page read as an image, within the document's OCR budget and pixel cap."""
    if ocr is None:
        result.problems.append(f"pdf: page {number} is an image, not read")
        return []
    if budget.pages <= 0:
        result.problems.append(
            f"pdf: page {number} needs OCR; OCR stops at {MAX_OCR_PAGES} pages"
        )
        return []
    if budget.seconds <= 0:
        result.problems.append(
            f"pdf: page {number} needs OCR; the document's {OCR_SECONDS} s of OCR "
            "are spent"
        )
        return []
    if budget.stopped:
        result.problems.append(f"pdf: page {number} needs OCR; {budget.stopped}")
        return []
    pdfium_page = pdfium_doc[number - 1]
    width, height = pdfium_page.get_size()
    scale = RENDER_DPI / 72
    pixels = width * scale * height * scale
    if not 0 < pixels <= MAX_RENDER_PIXELS:
        result.problems.append(
            f"pdf: page {number} needs OCR but is {width:.0f}x{height:.0f} pt, "
            f"over {MAX_RENDER_PIXELS} pixels at {RENDER_DPI} dpi; not rendered"
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
    return items


def _read_page(
    page, pdfium_doc, result: PdfResult, ocr, budget: _Budget
) -> list[tuple[str, object]]:
    atoms = _page_atoms(page, pdfium_doc, result.problems)
    if atoms is None or (len(atoms) < 10 and _has_image(page)):
        return _ocr_page(page.page_number, pdfium_doc, result, ocr, budget)
    positioned: list[tuple[float, tuple[str, object]]] = []
    for found in _page_tables(page):
        boxes = list(found.cells)
        if len(boxes) < 2:
            continue
        x0, top, x1, bottom = found.bbox
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
