"""Documents to a flat sequence of text lines and table grids.

Both layouts the sites publish reduce to the same shape: ``Block`` items in reading order,
each either a line of narrative text or a table whose rows are lists of ``Cell``.

- HTML pasted from Word or WPS: cells carry rowspan/colspan (sometimes malformed, such as
  colspan="2;" or spans running past the table), text split over <p>/<span>/<o:p>, and
  layout tables wrapped around the report. Every table that holds no other table is a data
  table; its spans are expanded into grid positions, so each row lists the cells that
  cover it (``carried`` marks copies of a rowspan cell from the row above).
- Plain text: either one cell per line, tab-indented, rows separated by blank lines (the
  seed report, as copied from the page), or one row per line with cells separated by
  tabs or runs of spaces. Text grids have no geometry, only cell order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import lxml.etree

_DIGITS = re.compile(r"\d+")
_MAX_COLSPAN = 64
_MAX_ROWSPAN = 512
_TABLE_MARK = "\ue000table:"  # private-use characters, which no report prints
_CELL_MARK = "\ue001"


@dataclass(slots=True)
class Cell:
    """One table cell placed on the grid: its text, first column and width."""

    text: str
    col: int
    span: int = 1
    carried: bool = False


@dataclass(slots=True)
class Table:
    """A table's rows; ``geometry`` says whether cell columns are real grid positions."""

    rows: list[list[Cell]]
    geometry: bool = True


@dataclass(slots=True)
class Layout:
    """A document as blocks in reading order, plus the <title> where there is one."""

    blocks: list[str | Table] = field(default_factory=list)
    title: str | None = None


def _clean(text: str) -> str:
    return " ".join(text.split())


def _span(value: str | None, limit: int) -> int:
    # Word exports write colspan="2;" and the odd rowspan="0"; anything unreadable is 1.
    if not value:
        return 1
    match = _DIGITS.search(value)
    return min(max(int(match.group()), 1), limit) if match else 1


def _cell_texts(
    table: lxml.etree._Element, cells: list[lxml.etree._Element]
) -> list[str]:
    """The text of every cell, from one serialisation of the table.

    Joining each cell's text nodes in Python costs more than the parse itself on a Word
    page (a cell is a <p> of several <span>s and an <o:p>): each cell gets a marker
    character in front, the table is serialised to text once and split on the markers.
    """
    for cell in cells:
        cell.text = _CELL_MARK + cell.text if cell.text else _CELL_MARK
    chunks = lxml.etree.tostring(
        table, method="text", encoding="unicode", with_tail=False
    )
    texts = chunks.split(_CELL_MARK)[1:]
    if len(texts) != len(cells):
        texts = ["".join(cell.itertext()).replace(_CELL_MARK, "") for cell in cells]
    return [" ".join(text.split()) for text in texts]


def table_grid(table: lxml.etree._Element) -> list[list[Cell]]:
    """Expand a <table>'s rowspan/colspan into rows of grid-placed cells."""
    row_cells = [[td for td in tr if td.tag in ("td", "th")] for tr in table.iter("tr")]
    texts = iter(_cell_texts(table, [td for row in row_cells for td in row]))
    rows: list[list[Cell]] = []
    carry: dict[int, list] = {}  # column -> [text, colspan, rows still covered]
    for tds in row_cells:
        row: list[Cell] = []
        used: set[int] = set()
        col = 0
        for td in tds:
            while col in carry and col not in used:
                text, width, _ = carry[col]
                row.append(Cell(text, col, width, True))
                used.add(col)
                col += width
            text = next(texts)
            width = _span(td.get("colspan"), _MAX_COLSPAN)
            height = _span(td.get("rowspan"), _MAX_ROWSPAN)
            row.append(Cell(text, col, width))
            if height > 1:
                carry[col] = [text, width, height]
                used.add(col)
            col += width
        if carry:
            for start in sorted(carry):
                if start not in used:
                    text, width, _ = carry[start]
                    row.append(Cell(text, start, width, True))
                    used.add(start)
            for start in list(carry):
                carry[start][2] -= 1
                if carry[start][2] <= 0:
                    del carry[start]
            row.sort(key=lambda cell: cell.col)
        rows.append(row)
    return rows


def transpose(rows: list[list[Cell]]) -> list[list[Cell]]:
    """The same table read column by column (for tables printed transposed)."""
    dense: dict[tuple[int, int], Cell] = {}
    for r, row in enumerate(rows):
        for cell in row:
            for offset in range(cell.span):
                dense[(r, cell.col + offset)] = Cell(
                    cell.text, r, 1, cell.carried or offset > 0
                )
    width = max((c for _, c in dense), default=-1) + 1
    return [
        [dense[(r, c)] for r in range(len(rows)) if (r, c) in dense]
        for c in range(width)
    ]


_BLOCK_TAGS = (
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "blockquote", "pre", "center", "dd", "dt",
)  # fmt: skip


@cache
def _parser(encoding: str | None) -> lxml.etree.HTMLParser:
    return lxml.etree.HTMLParser(
        encoding=encoding, remove_comments=True, remove_pis=True, no_network=True
    )


def html_layout(page: str | bytes, encoding: str | None = None) -> Layout:
    """Lay out an HTML page: data tables as grids, everything else as text lines.

    ``page`` is text, or bytes in ``encoding`` (parsing the bytes skips a re-encode).
    """
    if isinstance(page, str):
        # lxml refuses str input that carries an XML encoding declaration.
        page = re.sub(r"^\s*<\?xml[^>]*>", "", page)
        encoding = None
    root = lxml.etree.fromstring(page, _parser(encoding))
    if root is None:
        return Layout()
    for element in root.iter("script", "style", "noscript"):
        element.text = None
        for child in list(element):
            element.remove(child)
    title = root.findtext(".//title")
    tables: list[Table] = []
    for table in list(root.iter("table")):
        if table.find(".//table") is not None:
            continue
        tables.append(Table(table_grid(table)))
        marker = lxml.etree.Element("p")
        marker.text = f"{_TABLE_MARK}{len(tables) - 1}"
        marker.tail = table.tail
        table.getparent().replace(table, marker)
    # A line break after every block element makes the page's text come out one block
    # per line; layout tables left in the tree read as blocks too.
    for element in root.iter(*_BLOCK_TAGS, "td", "th", "table"):
        element.tail = "\n" + element.tail if element.tail else "\n"
    body = root.find("body")
    content = lxml.etree.tostring(
        body if body is not None else root, method="text", encoding="unicode"
    )
    layout = Layout(title=_clean(title) if title else None)
    for line in content.split("\n"):
        line = _clean(line)
        if line.startswith(_TABLE_MARK):
            layout.blocks.append(tables[int(line[len(_TABLE_MARK) :])])
        elif line:
            layout.blocks.append(line)
    return layout


_FIELD_SEPARATOR = re.compile(r"\t+| {2,}|\u3000+")
_SENTENCE = re.compile(r"[。，；]")


def _split_fields(line: str) -> list[str]:
    return [field.strip() for field in _FIELD_SEPARATOR.split(line.strip())]


def _is_row_line(line: str, fields: list[str]) -> bool:
    """A line whose fields look like table cells, not a sentence with wide spaces."""
    from extract.normalize import is_value_like

    if len(fields) < 2:
        return False
    if "\t" in line:
        return True
    if any(is_value_like(f) and f for f in fields):
        return True
    return all(len(f) <= 20 and not _SENTENCE.search(f) for f in fields)


def text_layout(text: str) -> Layout:
    """Lay out a plain-text report (cell-per-line or row-per-line tables)."""
    layout = Layout()
    rows: list[list[Cell]] = []
    cells: list[str] | None = None
    previous_was_cell = False

    def close_row() -> None:
        nonlocal cells
        if cells is not None:
            rows.append([Cell(t.strip(), i) for i, t in enumerate(cells)])
            cells = None

    def close_table() -> None:
        close_row()
        if rows:
            layout.blocks.append(Table(list(rows), geometry=False))
            rows.clear()

    for raw_line in text.splitlines():
        line = raw_line.rstrip()
        if raw_line.startswith("\t"):
            content = raw_line.lstrip("\t").rstrip("\r\n")
            if "\t" in content.strip():
                close_row()
                rows.append(
                    [
                        Cell(t.strip(), i)
                        for i, t in enumerate(content.strip().split("\t"))
                    ]
                )
                previous_was_cell = False
            else:
                if cells is None:
                    cells = []
                cells.append(content.strip())
                previous_was_cell = True
            continue
        if not line.strip():
            close_row()
            previous_was_cell = False
            continue
        stripped = _clean(line)
        if (
            previous_was_cell
            and cells
            and len(stripped) <= 20
            and not _SENTENCE.search(stripped)
        ):
            # A label wrapped onto the next line without the tab (商业\n企业 in the seed).
            cells[-1] += stripped
            continue
        fields = _split_fields(line)
        if _is_row_line(line, fields):
            close_row()
            rows.append([Cell(t, i) for i, t in enumerate(fields)])
            previous_was_cell = False
            continue
        close_table()
        previous_was_cell = False
        layout.blocks.append(stripped)
    close_table()
    return layout
