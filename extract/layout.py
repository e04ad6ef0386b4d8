"""Documents to a flat sequence of text lines and table grids.

Both layouts the sites publish reduce to the same shape: ``Block`` items in reading order,
each either a line of narrative text or a table whose rows are lists of ``Cell``.

- HTML pasted from Word or WPS: cells carry rowspan/colspan (sometimes malformed, such as
  colspan="2;" or spans running past the table), text split over <p>/<span>/<o:p>, and
  layout tables wrapped around the report. Every table that holds no other table is a data
  table; its spans are expanded into grid positions, so each row lists the cells that
  cover it (``carried`` marks copies of a rowspan cell from the row above). Text lines are
  the page's blocks as a browser shows them: a line break in the source (Word's export
  wraps long lines) is a space, or nothing between two Chinese characters; only <pre>
  keeps its lines.
- Plain text: either one cell per line, tab-indented, rows separated by blank lines (the
  seed report, as copied from the page), or one row per line with cells separated by
  tabs or runs of spaces. Text grids have no geometry, only cell order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import AnyStr

from selectolax.lexbor import LexborDocumentOptions, LexborHTMLParser, LexborNode

# Browsers read a span's ASCII digits only (colspan="²" or "٣" is no number), and a
# number too long for their integers as no number either: both are 1.
_DIGITS = re.compile(r"[0-9]+")
_SPAN_DIGITS = 9
_MAX_COLSPAN = 64
_MAX_ROWSPAN = 512
# Copies of rowspan cells are how a table multiplies: 5000 cells of rowspan=512 over 511
# rows made 2.5 million (4 s, 300 MiB from 116 KiB). Past this many in one table, the
# rowspans end; the template's tables carry a few hundred.
_MAX_CARRIED = 100_000
# Private-use characters, which no report prints: where a table stood, and where a block
# element ends. Line breaks in the HTML source are only spaces, as a browser shows them.
_TABLE_MARK = "\ue000table:"
_BREAK = "\ue001"


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


# A line break in the source between two Chinese characters, full-width forms or the
# quotes and dashes Chinese text uses joins them, as the CSS line-breaking rules have
# browsers do; anywhere else it is a space.
_WIDE = r"[\u2014-\u2026\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]"
_WRAPPED = re.compile(rf"(?<={_WIDE})\s*\n\s*(?={_WIDE})")


def _clean(text: str) -> str:
    words = text.split()
    # Most text has no line break between two of its words: the regex is not run.
    if len(words) > 1 and "\n" in text:
        words = _WRAPPED.sub("", text.strip()).split()
    return " ".join(words)


def _span(value: str | None, limit: int) -> int:
    # Word exports write colspan="2;" and the odd rowspan="0"; anything unreadable is 1.
    if not value:
        return 1
    if not (value.isascii() and value.isdigit()):  # most spans are plain numbers
        match = _DIGITS.search(value)
        if match is None:
            return 1
        value = match.group()
    digits = value.lstrip("0")
    if not digits or len(digits) > _SPAN_DIGITS:
        return 1
    return min(int(digits), limit)


def grid(rows: list[list[tuple[str, str | None, str | None]]]) -> list[list[Cell]]:
    """Place cells given as (text, colspan, rowspan) rows on the grid, as browsers do."""
    placed: list[list[Cell]] = []
    carry: dict[int, list] = {}  # column -> [text, colspan, rows still covered]
    carried = 0
    for cells in rows:
        row: list[Cell] = []
        col = 0
        # Cells from the rows above that reach into this one, left to right: one at the
        # column where a new cell would go pushes it right; one that a wide cell has
        # overrun (malformed spans) keeps its own column.
        held = sorted(carry.items()) if carry else ()
        carried += len(held)
        if carried > _MAX_CARRIED:
            held = ()
            carry.clear()
        next_held = 0
        for text, colspan, rowspan in cells:
            while next_held < len(held) and held[next_held][0] <= col:
                start, (held_text, held_width, _) = held[next_held]
                row.append(Cell(held_text, start, held_width, True))
                if start == col:
                    col += held_width
                next_held += 1
            width = _span(colspan, _MAX_COLSPAN) if colspan else 1
            row.append(Cell(text, col, width))
            if (
                rowspan
                and carried <= _MAX_CARRIED
                and (height := _span(rowspan, _MAX_ROWSPAN)) > 1
            ):
                carry[col] = [text, width, height]
            col += width
        for start, (held_text, held_width, _) in held[next_held:]:
            row.append(Cell(held_text, start, held_width, True))
        for start, covering in list(carry.items()):
            if covering[2] > 1:
                covering[2] -= 1
            else:
                del carry[start]
        placed.append(row)
    return placed


_TAGS = LexborHTMLParser("")


def _tag_id(tag: str) -> int:
    return _TAGS.create_node(tag).tag_id


_CELL_IDS = frozenset(map(_tag_id, ("td", "th")))


def table_grid(table: LexborNode) -> list[list[Cell]]:
    """Expand a <table>'s rowspan/colspan into rows of grid-placed cells."""
    rows = []
    for tr in table.css("tr"):
        cells = []
        for td in tr.iter():
            if td.tag_id in _CELL_IDS:
                attributes = td.attributes
                cells.append(
                    (
                        _clean(td.text_lexbor()),
                        attributes.get("colspan"),
                        attributes.get("rowspan"),
                    )
                )
        rows.append(cells)
    return grid(rows)


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
    "p", "div", "br", "li", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "blockquote", "pre", "center", "dd", "dt",
)  # fmt: skip
# Whatever of these the body holds would leak code into the text.
_NOT_TEXT = ["script", "style", "noscript", "template"]
_NOT_TEXT_IDS = frozenset(map(_tag_id, _NOT_TEXT))
_PRE_ID = _tag_id("pre")


# Elements are told apart by lexbor's tag ids: walking the tree once with "*" and testing
# ids costs a third of matching a selector list of twenty tags against every element.
_BLOCK_IDS = frozenset(map(_tag_id, _BLOCK_TAGS))
_TABLE_ID = _tag_id("table")
# Tables, code, and <pre>, whose line breaks are kept.
_SPECIAL = ", ".join(["table", "pre", *_NOT_TEXT])


def _special_nodes(root: LexborNode) -> tuple[list[LexborNode], list[LexborNode], bool]:
    """The body's tables, its <pre> elements, and whether it holds any code."""
    tables, preformatted, code = [], [], False
    for node in root.css(_SPECIAL):
        tag = node.tag_id
        if tag == _TABLE_ID:
            tables.append(node)
        elif tag in _NOT_TEXT_IDS:
            code = True
        else:
            preformatted.append(node)
    return tables, preformatted, code


def _nearest_marked(nodes: list[LexborNode], marked: set[int]) -> list[int | None]:
    """For each node, the ``mem_id`` of its nearest ancestor in ``marked``, or None.

    What is learnt of an ancestor is kept for the nodes below it, so each ancestor is
    walked past once: 3·10^4 tables nested in each other cost 3·10^4 steps, not 10^9.
    """
    # An ancestor walked past → the nearest marked node at or above it.
    nearest: dict[int, int | None] = {}
    found = []
    for node in nodes:
        path = []
        parent = node.parent
        answer = None
        while parent is not None:
            key = parent.mem_id
            if key in nearest:
                answer = nearest[key]
                break
            if key in marked:
                answer = key
                break
            path.append(key)
            parent = parent.parent
        for key in path:
            nearest[key] = answer
        found.append(answer)
    return found


def _leaf_tables(tables: list[LexborNode]) -> list[LexborNode]:
    """The tables that hold no other table (the rest are page layout)."""
    ids = {table.mem_id for table in tables}
    containers = set(_nearest_marked(tables, ids))
    return [t for t in tables if t.mem_id not in containers]


def _outside(nodes: list[LexborNode], containers: list[LexborNode]) -> list[LexborNode]:
    """The nodes that none of ``containers`` holds."""
    inside = {container.mem_id for container in containers}
    held = _nearest_marked(nodes, inside)
    return [node for node, holder in zip(nodes, held, strict=True) if holder is None]


# Block elements whose start tag has the parser look down the whole stack of open
# elements for a <p> to close: nested in one another, each costs the depth, so 10^5
# nested <div>s took lexbor 25 s. Past _MAX_BLOCK_DEPTH they are read as <span>s, as
# Chrome stops nesting elements at 512. Only pages with many tags are looked at.
_BLOCK_NAMES = (
    "address|article|aside|blockquote|center|details|dialog|dir|div|dl|fieldset|"
    "figcaption|figure|footer|header|hgroup|main|menu|nav|ol|section|summary|ul|"
    "h[1-6]|pre|listing|form|xmp"
)
_BLOCK_TAG = re.compile(rf"<(/?)(?:{_BLOCK_NAMES})(?=[\s/>])", re.IGNORECASE)
_BLOCK_TAG_BYTES = re.compile(_BLOCK_TAG.pattern.encode(), re.IGNORECASE)
_MAX_BLOCK_DEPTH = 512
_MANY_TAGS = 20_000


def _flatten_deep_blocks(page: str | bytes) -> str | bytes:
    """The page with block elements nested past ``_MAX_BLOCK_DEPTH`` made <span>s."""
    if isinstance(page, str):
        if page.count("<") < _MANY_TAGS:
            return page
        return _BLOCK_TAG.sub(_span_past_depth("<span", "</span"), page)
    if page.count(b"<") < _MANY_TAGS:
        return page
    return _BLOCK_TAG_BYTES.sub(_span_past_depth(b"<span", b"</span"), page)


def _span_past_depth(
    opening: AnyStr, closing_tag: AnyStr
) -> Callable[[re.Match[AnyStr]], AnyStr]:
    """A ``re.sub`` replacement that renames a block tag past the depth limit a span."""
    depth = 0

    def rename(tag: re.Match[AnyStr]) -> AnyStr:
        nonlocal depth
        closing = bool(tag.group(1))
        if not closing:
            depth += 1
        deep = depth > _MAX_BLOCK_DEPTH
        if closing:
            depth = max(depth - 1, 0)
        if not deep:
            return tag.group(0)
        return closing_tag if closing else opening

    return rename


def html_layout(page: str | bytes) -> Layout:
    """Lay out an HTML page: data tables as grids, everything else as text lines.

    Parsed with lexbor (an HTML5 parser, so broken markup is repaired as browsers
    repair it). ``page`` is text, or UTF-8 bytes, which lexbor reads as they are (text
    is encoded to UTF-8 for it first).
    """
    # Without DOM mutation events: they only mirror <option>s into <selectedcontent>,
    # and cost 3% of the parse.
    tree = LexborHTMLParser(
        _flatten_deep_blocks(page), options=LexborDocumentOptions.WO_EVENTS
    )
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node is not None else ""
    root = tree.body or tree.root
    if root is None:
        return Layout(title=title or None)
    # Word pages keep their CSS in <head>, which is never read; scripts and styles in the
    # body are removed before any text is taken.
    table_nodes, preformatted, code = _special_nodes(root)
    if code:
        tree.strip_tags(_NOT_TEXT)  # which frees what they held: find the rest again
        table_nodes, preformatted, _ = _special_nodes(root)
    data_tables = _leaf_tables(table_nodes)
    # Preformatted text (a plain-text report put in a page) keeps its lines; in a data
    # cell it is cell text like any other. Chosen before the tree changes: a replaced
    # node takes what it held with it.
    if preformatted:
        preformatted = _outside(preformatted, data_tables + preformatted)
    tables: list[Table] = []
    for table in data_tables:
        tables.append(Table(table_grid(table)))
        table.replace_with(f"{_BREAK}{_TABLE_MARK}{len(tables) - 1}{_BREAK}")
    for pre in preformatted:
        text = pre.text(deep=True).replace("\n", _BREAK)
        pre.replace_with(f"{_BREAK}{text}{_BREAK}")
    # A break after every block element makes the page's text come out one block per
    # line; layout tables left in the tree read as blocks too.
    for element in root.css("*"):
        if element.tag_id in _BLOCK_IDS:
            element.insert_after(_BREAK)
    layout = Layout(title=title or None)
    for line in root.text(deep=True, separator="").split(_BREAK):
        if not line or line.isspace():  # most lines: the break after a closing block
            continue
        line = _clean(line)
        if line.startswith(_TABLE_MARK):
            layout.blocks.append(tables[int(line[len(_TABLE_MARK) :])])
        else:
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


# Markdown pipe tables (| 规章 | 0 | 0 | 0 |) and +---+ grid text tables: a row line
# opens and closes with a bar; a rule line is bars, dashes, colons, pluses and = only.
_PIPE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_RULE = re.compile(r"^\s*[|+]?[\s|+:=-]*-[\s|+:=-]*$")
_GRID_RULE = re.compile(r"^\s*\+[-=+:]+\+\s*$")
# A value as a single-space row prints it, and a label followed by digits run together.
_VALUE_TOKEN = re.compile(
    r"^(?:[+-]?\d[\d,]*(?:\.\d+)?(?:万元|元|件|个|项)?|—+|-+|/|无)$"
)
_RUN_TOGETHER = re.compile(r"^(?P<label>.*\D)(?P<digits>\d+)$")
_LABEL_PUNCT = re.compile(r"[。，；：:]")


def _known_label(text: str) -> bool:
    """Whether text is a template label (or labels typed into one cell)."""
    from extract.catalogue import all_keys
    from extract.normalize import normalize_label, split_merged_labels

    keys = all_keys()
    if normalize_label(text) in keys:
        return True
    parts = split_merged_labels(text)
    return len(parts) > 1 and all(normalize_label(p) in keys for p in parts)


def _pipe_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip()[1:-1].split("|")]


def _spaced_row(line: str, in_table: bool) -> list[str] | None:
    """Cells of a row whose cells are set one space apart, or run together with digits.

    Values at the end follow template labels, or (two or more of them, inside a table)
    labels that are no sentence; a header row is template labels only. A label followed straight by
    digits (规章15130) is a template label and one cell of digits, which the reader
    splits only where the table's identities admit one split.
    """
    tokens = line.split()
    if not tokens or len(line) > 400:
        return None
    values = 0
    while values < len(tokens) and _VALUE_TOKEN.match(tokens[-1 - values]):
        values += 1
    labels = tokens[: len(tokens) - values]
    if labels and values:
        label = " ".join(labels)
        if (
            _known_label(label)
            or all(map(_known_label, labels))
            or (
                in_table
                and values >= 2
                and len(label) <= 60
                and not _LABEL_PUNCT.search(label)
            )
        ):
            return tokens
    if not labels and values >= 3 and in_table:
        return tokens
    if not values and len(tokens) >= 2 and all(map(_known_label, tokens)):
        return tokens
    if len(tokens) == 1:
        run = _RUN_TOGETHER.match(tokens[0])
        if run and _known_label(run["label"]):
            return [run["label"], run["digits"]]
    return None


def text_layout(text: str) -> Layout:
    """Lay out a plain-text report (cell-per-line or row-per-line tables)."""
    layout = Layout()
    rows: list[list[Cell]] = []
    cells: list[str] | None = None
    previous_was_cell = False
    grid_row: list[str] | None = None  # a +---+ table's row, over its lines

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
        if _GRID_RULE.match(line) or (_RULE.match(line) and "|" in line):
            close_row()
            if grid_row is not None:
                rows.append([Cell(t, i) for i, t in enumerate(grid_row)])
            grid_row = [] if _GRID_RULE.match(line) else None
            previous_was_cell = False
            continue
        if _PIPE_ROW.match(line):
            close_row()
            found = _pipe_cells(line)
            if grid_row is None:
                rows.append([Cell(t, i) for i, t in enumerate(found)])
            elif not grid_row:
                grid_row = found
            elif len(found) == len(grid_row):
                # A cell wrapped over lines of its grid row: its parts joined.
                grid_row = [
                    _clean(f"{a}\n{b}") if a and b else a or b
                    for a, b in zip(grid_row, found, strict=True)
                ]
            else:
                rows.append([Cell(t, i) for i, t in enumerate(grid_row)])
                grid_row = found
            previous_was_cell = False
            continue
        if grid_row is not None:
            if grid_row:
                rows.append([Cell(t, i) for i, t in enumerate(grid_row)])
            grid_row = None
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
            if " " in fields[-1]:
                # 三、本年度办理结果   （一）予以公开 102000113: the last field's own row.
                fields[-1:] = _spaced_row(fields[-1], True) or fields[-1:]
            rows.append([Cell(t, i) for i, t in enumerate(fields)])
            previous_was_cell = False
            continue
        spaced = _spaced_row(stripped, bool(rows)) if len(fields) < 2 else None
        if spaced is not None:
            close_row()
            rows.append([Cell(t, i) for i, t in enumerate(spaced)])
            previous_was_cell = False
            continue
        close_table()
        previous_was_cell = False
        layout.blocks.append(stripped)
    if grid_row:
        rows.append([Cell(t, i) for i, t in enumerate(grid_row)])
    close_table()
    return layout
