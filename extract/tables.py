"""Read the three template tables out of a document's rows, by their labels.

Rows arrive in reading order from every grid of the document (a table may be split over
several <table> elements, or all of table 二 may sit in one). Each row is split into label
cells and value cells (the trailing run of cells that read as numbers or empty markers);
labels are matched to the catalogue, which says which table the row belongs to and
whether it is a column header, a group or block heading, or a data row. Header rows set
the column map of their table; data rows map their values onto it: by grid position where
the layout has geometry, by order where it has not (text) or where positions disagree.
Nothing is placed by position alone: a value whose row or column label is unknown is
reported, not guessed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache, lru_cache, partial
from typing import NamedTuple

from extract.catalogue import TABLES, Entry, all_keys, identities, table_catalogue
from extract.checks import check_table, identities_of_row
from extract.layout import Cell, Table, transpose
from extract.normalize import (
    CellValue,
    normalize_label,
    parse_value,
    split_merged_labels,
    to_10k_yuan,
)
from extract.problems import Problem

_COLUMN_KINDS = frozenset({"column", "column_group"})
_ROW_KINDS = frozenset({"row", "row_group", "block"})


@dataclass(slots=True)
class ExtractedCell:
    """One canonical cell as found in the document."""

    row: str
    column: str
    printed_row_label: str
    printed_column_label: str
    raw: str
    value: float | None
    marker: str
    unit: str | None
    matched_by: str = "label"


@dataclass(slots=True)
class _Unmatched:
    """A data row whose printed label matched nothing, waiting for its next neighbour."""

    printed: str
    values: list[Cell]
    geometry: bool
    after: str | None  # the row code matched last before it in its table


# A misprinted label is placed by sequence only where it is at least this similar to the
# one template label its matched neighbours leave for it (2.其他法律行政止公开 against
# 2.其他法律行政法规禁止公开 is 0.9; unrelated labels of the template score under 0.4).
SEQUENCE_SIMILARITY = 0.6
# A row too garbled for that is placed when the identities it enters pass on this many
# columns of non-zero values at least (and at least twice as often as they fail).
CONFIRMING_COLUMNS = 3


@dataclass(slots=True)
class ColumnSpec:
    """A data column as the header printed it: grid span, code and printed label."""

    start: int
    end: int
    code: str
    printed: str
    group: str | None = None
    unit: str | None = None
    group_printed: str = ""
    money: bool = False


class _HeaderCell(NamedTuple):
    """A matched header label and the grid columns it spans."""

    text: str
    col: int
    span: int


# A table's header rows, each with whether its positions are grid positions.
_HeaderRows = tuple[tuple[tuple[_HeaderCell, ...], bool], ...]


@dataclass(frozen=True, slots=True)
class _Columns:
    """A table's data columns as resolved from its header rows."""

    specs: list[ColumnSpec]
    positional: bool  # whether values are placed by grid position (else by order)
    positions: dict[int, int]  # grid position → index into specs
    format_votes: tuple[str, ...]  # one per column label printed in one format only


@dataclass(slots=True)
class _Header:
    rows: list[tuple[tuple[_HeaderCell, ...], bool]] = field(default_factory=list)
    columns: _Columns | None = None
    closed: bool = False


@dataclass(slots=True)
class _Label:
    text: str
    by_table: dict[str, list[Entry]]


@dataclass(frozen=True, slots=True)
class _LabelRole:
    """What one label can be inside one table: a block, a row, a row group, or nothing."""

    text: str
    entries: list[Entry]
    block: Entry | None
    rows: tuple[Entry, ...]
    group: Entry | None


@dataclass(frozen=True, slots=True)
class _RowInTable:
    """A row's labels read as part of one table."""

    roles: tuple[_LabelRole, ...]
    has_column: bool  # a label that can only be a column (自然人): a header row
    has_row: bool


class _RowShape:
    """Everything about a row that follows from its label texts alone.

    Reports repeat the template's labels, so this is computed once per distinct tuple of
    label texts and shared by every row (of every report) that prints the same labels.
    """

    __slots__ = ("labels", "_best", "_in_table")

    def __init__(self, texts: tuple[str, ...]) -> None:
        self.labels = _labels(texts)
        votes: dict[str, int] = {}
        for label in self.labels:
            for table in label.by_table:
                votes[table] = votes.get(table, 0) + 1
        top = max(votes.values(), default=0)
        self._best = tuple(t for t in TABLES if votes.get(t) == top) if top else ()
        self._in_table: dict[str, _RowInTable] = {}

    def choose_table(self, current: str | None) -> str | None:
        """The table most labels belong to; the current one wins a tie."""
        if not self._best:
            return None
        return current if current in self._best else self._best[0]

    def in_table(self, table: str) -> _RowInTable:
        found = self._in_table.get(table)
        if found is None:
            roles = []
            for label in self.labels:
                entries = label.by_table.get(table, [])
                roles.append(
                    _LabelRole(
                        label.text,
                        entries,
                        next((e for e in entries if e.kind == "block"), None),
                        tuple(e for e in entries if e.kind == "row"),
                        next((e for e in entries if e.kind == "row_group"), None),
                    )
                )
            # A header row has a label that can only be a column (自然人), or neither a
            # row label nor numbers (申请人情况 alone); （七）总计 can be either and counts
            # as a row.
            found = self._in_table[table] = _RowInTable(
                tuple(roles),
                has_column=any(
                    role.entries and all(e.kind in _COLUMN_KINDS for e in role.entries)
                    for role in roles
                ),
                has_row=any(
                    e.kind in _ROW_KINDS for role in roles for e in role.entries
                ),
            )
        return found


_NO_ENTRIES: dict[str, list[Entry]] = {}


@lru_cache(maxsize=1 << 14)
def _entries_by_table(key: str) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for entry in all_keys().get(key, ()):
        grouped.setdefault(entry.table, []).append(entry)
    return grouped


def _labels(texts: tuple[str, ...]) -> list[_Label]:
    labels = []
    for text in texts:
        by_table = _entries_by_table(normalize_label(text))
        if by_table:
            labels.append(_Label(text, by_table))
            continue
        parts = [
            (p, _entries_by_table(normalize_label(p)))
            for p in split_merged_labels(text)
        ]
        if len(parts) > 1 and all(by_part for _, by_part in parts):
            labels.extend(_Label(p, by_part) for p, by_part in parts)
        else:
            labels.append(_Label(text, _NO_ENTRIES))
    return labels


_row_shape = lru_cache(maxsize=1 << 14)(_RowShape)


class TableReader:
    """Feed it a document's blocks; it collects canonical cells and problems per table."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[tuple[str, str], ExtractedCell]] = {
            t: {} for t in TABLES
        }
        self.problems: list[Problem] = []
        self.format_votes: dict[str, Counter[str]] = {t: Counter() for t in TABLES}
        self._headers: dict[str, _Header] = {t: _Header() for t in TABLES}
        self._current: str | None = None
        self._group: str | None = None
        self._block: str | None = None
        self._last_row: dict[str, str | None] = dict.fromkeys(TABLES)
        self._unmatched: dict[str, list[_Unmatched]] = {t: [] for t in TABLES}

    # -- input -------------------------------------------------------------------------

    def read(self, blocks: list[str | Table], is_heading) -> None:
        """Read every table block; a section heading line ends the current table."""
        for block in blocks:
            if isinstance(block, Table):
                rows = _oriented(block)
                for row in rows:
                    self._feed(row, block.geometry)
            elif is_heading(block):
                self._end_table()
                self._current = None
                self._group = self._block = None
        self._end_table()

    def _feed(self, row: list[Cell], geometry: bool) -> None:
        split = len(row)
        while split > 0 and parse_value(row[split - 1].text).marker != "unparsed":
            split -= 1
        shape = _row_shape(tuple(c.text for c in row[:split] if c.text))
        values = [c for c in row[split:] if not c.carried]
        table = shape.choose_table(self._current)
        if table is None:
            self._feed_unlabelled(shape.labels, values, geometry)
            return
        if table != self._current:
            self._end_table()
            self._current = table
            self._group = self._block = None
        in_table = shape.in_table(table)
        # A table printing its rows as column groups (table 四) has only header rows above
        # its one unlabelled row of values.
        if (
            table_catalogue(table).groups_as_rows
            or in_table.has_column
            or not (
                in_table.has_row
                or any(parse_value(c.text).value is not None for c in values)
            )
        ):
            self._add_header(table, row, geometry)
        else:
            self._add_data_row(table, in_table.roles, values, geometry)

    def _feed_unlabelled(
        self, labels: list[_Label], values: list[Cell], geometry: bool
    ) -> None:
        numbers = [c for c in values if parse_value(c.text).value is not None]
        table = self._current
        if table is None or not numbers:
            return
        unknown = [label.text for label in labels]
        groups_as_rows = table_catalogue(table).groups_as_rows
        if groups_as_rows and not unknown:
            self._assign(table, "", values, geometry, row_label="")
        elif len(unknown) == 1 and not groups_as_rows:
            self._unmatched[table].append(
                _Unmatched(unknown[0], values, geometry, self._last_row[table])
            )
        elif unknown:
            self.problems.append(
                Problem(
                    "unmatched_row_label",
                    table,
                    f"unmatched row label {' / '.join(unknown)!r}",
                )
            )
        else:
            self.problems.append(
                Problem("row_without_label", table, "a row of values without a label")
            )

    # -- headers -----------------------------------------------------------------------

    def _add_header(self, table: str, row: list[Cell], geometry: bool) -> None:
        header = self._headers[table]
        if header.closed:
            self._headers[table] = header = _Header()
        matched = []
        for cell in row:
            if not cell.text or (cell.carried and not geometry):
                continue
            if _header_entries(table, cell.text):
                matched.append(_HeaderCell(cell.text, cell.col, cell.span))
            elif not cell.carried and parse_value(cell.text).marker == "unparsed":
                self.problems.append(
                    Problem(
                        "unmatched_column_label",
                        table,
                        f"unmatched column label {cell.text!r}",
                    )
                )
        header.rows.append((tuple(matched), geometry))
        header.columns = None
        self._group = None

    def _columns(self, table: str) -> _Columns:
        header = self._headers[table]
        header.closed = True
        if header.columns is None:
            header.columns = _resolve_columns(table, tuple(header.rows))
            self.format_votes[table].update(header.columns.format_votes)
        return header.columns

    # -- data rows ---------------------------------------------------------------------

    def _add_data_row(
        self,
        table: str,
        roles: tuple[_LabelRole, ...],
        values: list[Cell],
        geometry: bool,
    ) -> None:
        row_entry: Entry | None = None
        printed = ""
        last = len(roles) - 1
        for position, role in enumerate(roles):
            if role.block is not None:
                self._block = role.block.code
                self._vote(table, role.block)
                continue
            if role.group is not None and (
                not role.rows or position != last or not values
            ):
                self._group = role.group.code
                continue
            if role.rows:
                chosen = self._pick_row(role.rows)
                if chosen is None:
                    self.problems.append(
                        Problem(
                            "ambiguous_row_label",
                            table,
                            f"ambiguous row label {role.text!r}",
                        )
                    )
                    return
                row_entry, printed = chosen, role.text
            elif not role.entries and position == last:
                row_entry = None
                printed = role.text
        if not values:
            return
        if row_entry is None:
            if printed:
                if table_catalogue(table).groups_as_rows:
                    self.problems.append(
                        Problem(
                            "unmatched_row_label",
                            table,
                            f"unmatched row label {printed!r}",
                        )
                    )
                else:
                    self._unmatched[table].append(
                        _Unmatched(printed, values, geometry, self._last_row[table])
                    )
            return
        # A row under a row group (1.属于国家秘密 under （三）不予公开) keeps the group for the
        # next rows; a row under a block (table 二) or under nothing ends it.
        self._group = (
            row_entry.parent[0]
            if row_entry.parent
            and row_entry.parent[0] in table_catalogue(table).row_groups
            else None
        )
        self._vote(table, row_entry)
        self._place_unmatched(table, row_entry.code)
        self._assign(table, row_entry.code, values, geometry, row_label=printed)
        self._last_row[table] = row_entry.code

    # -- misprinted labels -------------------------------------------------------------

    def _end_table(self) -> None:
        """Rows still unmatched when their table ends have no neighbour below them."""
        for table in TABLES:
            self._place_unmatched(table, None)

    def _place_unmatched(self, table: str, before: str | None) -> None:
        """Place the unmatched rows printed since the last matched row, by sequence.

        The template's row order leaves the rows strictly between the matched rows
        above (``after``) and below (``before``) for them; a row is placed only where
        both neighbours are matched, the rows left over are exactly as many as the
        unmatched rows, not already read, and each printed label is similar enough to
        the one template label at its place. A single row whose label is too garbled
        for that (OCR reads （七）总计 as (七六和冰计) is placed where its values confirm
        it: see ``_confirmed_by_identities``. Otherwise it stays unread, as a problem.
        """
        waiting = self._unmatched[table]
        if not waiting:
            return
        self._unmatched[table] = []
        order = _row_order(table)
        after = waiting[0].after
        gap: list[Entry] = []  # never fits: ``waiting`` is not empty
        if after in order and before in order:
            start, end = order.index(after), order.index(before)
            # Rows of the other format (2021's other_handling rows in a 2019 table)
            # leave no place for a printed row.
            template_format = detected_format(self.format_votes[table])
            gap = [
                entry
                for entry in map(partial(_row_entry, table), order[start + 1 : end])
                if not any(key[0] == entry.code for key in self.cells[table])
                and (template_format is None or template_format in entry.formats)
            ]
        anchored = len(gap) == len(waiting) and all(w.after == after for w in waiting)
        fits = anchored and all(
            _similarity(w.printed, entry) >= SEQUENCE_SIMILARITY
            for w, entry in zip(waiting, gap, strict=True)
        )
        confirmed = None
        if anchored and not fits and len(waiting) == 1:
            confirmed = self._confirmed_by_identities(table, gap[0].code, waiting[0])
        for position, row in enumerate(waiting):
            if not (fits or confirmed):
                self.problems.append(
                    Problem(
                        "unmatched_row_label",
                        table,
                        f"unmatched row label {row.printed!r}",
                    )
                )
                continue
            entry = gap[position]
            self.problems.append(
                Problem(
                    "placed_by_sequence",
                    table,
                    f"row label {row.printed!r} matched no template label; "
                    f"placed by sequence as {entry.code}"
                    + (f" ({confirmed})" if confirmed else ""),
                )
            )
            self._assign(
                table,
                entry.code,
                row.values,
                row.geometry,
                row_label=row.printed,
                matched_by="sequence",
            )

    def _confirmed_by_identities(
        self, table: str, code: str, row: _Unmatched
    ) -> str | None:
        """Why the row's values confirm it as the template row ``code``, or None.

        The row is placed on trial and the identities it enters are checked column by
        column: it is confirmed where at least CONFIRMING_COLUMNS of them pass on
        non-zero values and they pass at least twice as often as they fail (a misread
        digit elsewhere in a column fails it; a row that is not this one passes by
        chance in no column but those of zeros). Nothing of the trial is kept.
        """
        kept_cells, kept_problems = dict(self.cells[table]), len(self.problems)
        try:
            self._assign(table, code, row.values, row.geometry, row_label=row.printed)
            values = {key: cell.value for key, cell in self.cells[table].items()}
        finally:
            self.cells[table] = kept_cells
            del self.problems[kept_problems:]
        template_format = detected_format(self.format_votes[table])
        involved = identities_of_row(table, code, template_format)
        results = [
            r
            for r in check_table(table, values, template_format)
            if r.check in involved
        ]
        passed = [r for r in results if r.status == "pass" and r.found]
        failed = [r for r in results if r.status == "fail"]
        if len(passed) < CONFIRMING_COLUMNS or len(passed) < 2 * len(failed):
            return None
        checks = ", ".join(sorted({r.check for r in passed}))
        return (
            f"its values pass {checks} in {len(passed)} columns, fail in {len(failed)}"
        )

    def _pick_row(self, rows: tuple[Entry, ...]) -> Entry | None:
        in_group = [e for e in rows if self._group and self._group in e.parent]
        if in_group:
            return in_group[0]
        codes = {e.code for e in rows}
        if len(codes) == 1:
            return rows[0]
        top_level = [e for e in rows if not e.parent or e.kind == "block"]
        return top_level[0] if len({e.code for e in top_level}) == 1 else None

    def _vote(self, table: str, entry: Entry) -> None:
        if len(entry.formats) == 1:
            self.format_votes[table][next(iter(entry.formats))] += 1

    def _assign(
        self,
        table: str,
        row_code: str,
        values: list[Cell],
        geometry: bool,
        row_label: str,
        matched_by: str = "label",
    ) -> None:
        resolved = self._columns(table)
        columns = resolved.specs
        if not columns:
            self.problems.append(
                Problem(
                    "values_before_header",
                    table,
                    f"values before any column header ({row_label!r})",
                )
            )
            return
        pairs = _map_values(
            columns, resolved.positions, values, geometry and resolved.positional
        )
        if pairs is None and _run_together(values, columns, geometry):
            splits = _digit_splits(table, values[0].text, [c.code for c in columns])
            if len(splits) == 1:
                self.problems.append(
                    Problem(
                        "digits_split",
                        table,
                        f"digits {values[0].text!r} in row {row_label!r} read as "
                        f"{' '.join(splits[0])}, the one split the row's identity "
                        "admits",
                    )
                )
                parts = [Cell(part, i) for i, part in enumerate(splits[0])]
                pairs = list(zip(columns, parts, strict=True))
                matched_by = "split" if matched_by == "label" else matched_by
            else:
                self.problems.append(
                    Problem(
                        "digits_not_split",
                        table,
                        f"digits {values[0].text!r} in row {row_label!r} admit "
                        f"{'no split' if not splits else 'more than one split'} into "
                        f"{len(columns)} columns; not read",
                    )
                )
                return
        if pairs is None:
            self.problems.append(
                Problem(
                    "values_do_not_fit",
                    table,
                    f"{len(values)} values do not fit {len(columns)} columns "
                    f"in row {row_label or '(unlabelled)'!r}",
                )
            )
            return
        found = self.cells[table]
        groups_as_rows = table_catalogue(table).groups_as_rows
        for column, cell in pairs:
            key = (
                (column.group or "", column.code)
                if groups_as_rows
                else (row_code, column.code)
            )
            previous = found.get(key)
            if previous is not None:
                if previous.raw != cell.text:
                    self.problems.append(
                        Problem(
                            "cell_printed_twice",
                            table,
                            f"cell {key[0]}/{key[1]} printed twice "
                            f"({previous.raw!r}, then {cell.text!r}); the first is kept",
                        )
                    )
                continue
            parsed: CellValue = parse_value(cell.text)
            if column.money:
                value, unit = to_10k_yuan(parsed, column.unit)
            else:
                value, unit = parsed.value, None
            found[key] = ExtractedCell(
                key[0],
                key[1],
                column.group_printed if groups_as_rows else row_label,
                column.printed,
                cell.text,
                value,
                parsed.marker,
                unit,
                matched_by,
            )


# Longest run of digits split into a row's columns (C(29, 6) = 475,020 splits at most).
_MAX_RUN = 30


def _run_together(
    values: list[Cell], columns: list[ColumnSpec], geometry: bool
) -> bool:
    """One cell of digits where the row has more columns: values printed together."""
    return (
        not geometry
        and len(values) == 1
        and len(columns) > 1
        and values[0].text.isascii()
        and values[0].text.isdigit()
        and len(columns) <= len(values[0].text) <= _MAX_RUN
    )


def _digit_splits(table: str, digits: str, codes: list[str]) -> list[list[str]]:
    """Every split of a run of digits into one number per column that the table's
    identities admit: no number with a leading zero, and where a column totals each row
    (table 三's 总计), that column the sum of the others. Stops counting past two: only
    one split is ever used."""
    from itertools import combinations

    row_total = _row_total(table)
    total = codes.index(row_total) if row_total in codes else -1
    found: list[list[str]] = []
    for cuts in combinations(range(1, len(digits)), len(codes) - 1):
        bounds = (0, *cuts, len(digits))
        parts = [digits[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        if any(len(p) > 1 and p[0] == "0" for p in parts):
            continue
        if total >= 0:
            numbers = [int(p) for p in parts]
            if numbers[total] != sum(numbers) - numbers[total]:
                continue
        found.append(parts)
        if len(found) > 1:
            break
    return found


@cache
def _row_total(table: str) -> str | None:
    """The column an identity makes the sum of each row's others (table 三's 总计).

    None for a table whose one row of values holds all its column groups (table 四),
    each group with a total of its own.
    """
    if table_catalogue(table).groups_as_rows:
        return None
    return next(
        (
            identity.totals[0]
            for identity in identities()
            if identity.table == table
            and identity.for_each != "column"
            and len(identity.totals) == 1
        ),
        None,
    )


@cache
def _row_order(table: str) -> list[str]:
    """The data rows of a table in the order the template prints them (both formats)."""
    codes: list[str] = []
    for entry in table_catalogue(table).entries:
        if entry.kind == "row" and entry.code not in codes:
            codes.append(entry.code)
    return codes


def _row_entry(table: str, code: str) -> Entry:
    return next(
        e for e in table_catalogue(table).entries if e.kind == "row" and e.code == code
    )


@lru_cache(maxsize=1 << 10)
def _label_similarity(printed: str, official: str) -> float:
    return SequenceMatcher(None, printed, official, autojunk=False).ratio()


def detected_format(votes: Counter[str]) -> str | None:
    """The template format the table's rows and columns voted for; None on a tie."""
    if not votes:
        return None
    ranked = votes.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def _similarity(printed: str, entry: Entry) -> float:
    """How alike a printed label is to a template row's label or any of its variants."""
    key = normalize_label(printed)
    return max(
        _label_similarity(key, other)
        for other, entries in table_catalogue(entry.table)._by_key.items()
        if entry in entries
    )


def _oriented(block: Table) -> list[list[Cell]]:
    """The block's rows, transposed when a table was printed with its columns as rows
    (table 三 with the applicant types down the side)."""
    if not block.geometry or len(block.rows) < 3:
        return block.rows
    leading_cells = {cell.text for row in block.rows for cell in row[:2]}
    for table, totals in _transposable():
        column_labels = sum(
            1
            for text in leading_cells
            if any(
                e.kind == "column" and e.code not in totals
                for e in _entries_by_table(normalize_label(text)).get(table, ())
            )
        )
        if column_labels >= 3:
            return transpose(block.rows)
    return block.rows


@cache
def _transposable() -> tuple[tuple[str, frozenset[str]], ...]:
    """The tables reports sometimes print turned, each with the codes its identities
    total: a total (总计) is also a row label, so it does not show a table turned."""
    return tuple(
        (
            table,
            frozenset(
                code
                for identity in identities()
                if identity.table == table
                for code in identity.totals
            ),
        )
        for table in TABLES
        if table_catalogue(table).spec.transposed
    )


def _header_unit(text: str) -> str | None:
    if "万元" in text:
        return "万元"
    if "元" in text:
        return "元"
    return None


def _header_entries(table: str, text: str) -> list[Entry]:
    return _entries_by_table(normalize_label(text)).get(table, [])


@lru_cache(maxsize=1 << 12)
def _resolve_columns(table: str, header_rows: _HeaderRows) -> _Columns:
    """The table's data columns, and whether their grid positions can be trusted.

    Cached: the header rows of most reports are the template's, printed the same way.
    """
    if not header_rows:
        return _Columns([], False, {}, ())
    votes = tuple(
        next(iter(entry.formats))
        for cells, _ in header_rows
        for cell in cells
        for entry in _header_entries(table, cell.text)
        if entry.kind == "column" and len(entry.formats) == 1
    )
    specs, positional = None, False
    if all(geometry for _, geometry in header_rows):
        specs = _columns_by_position(table, header_rows)
        positional = specs is not None
    if specs is None:
        specs = _columns_by_order(table, header_rows)
    return _Columns(specs, positional, _positions(specs), votes)


def _column_entry(entries: list[Entry]) -> Entry | None:
    columns = [e for e in entries if e.kind == "column"]
    return columns[0] if columns else None


def _columns_by_position(
    table: str, header_rows: _HeaderRows
) -> list[ColumnSpec] | None:
    """Columns from grid positions; None when the positions contradict each other.

    An HTML table typed without merged cells (自然人 · 法人或其他组织 · 总计 in one row, the
    five organisation types in the next, each starting at the left) has positions that do
    not line up with its values; its header order is read instead.
    """
    leaf: dict[int, tuple[Entry, str]] = {}
    group: dict[int, tuple[Entry, str]] = {}
    for matched, _ in header_rows:
        for cell in matched:
            entries = _header_entries(table, cell.text)
            column = _column_entry(entries)
            groups = [e for e in entries if e.kind == "column_group"]
            for position in range(cell.col, cell.col + cell.span):
                if column is not None:
                    if position in leaf and leaf[position][0].code != column.code:
                        return None  # two labels over one column: positions lie
                    leaf[position] = (column, cell.text)
                elif groups:
                    group[position] = (groups[0], cell.text)
    specs: list[ColumnSpec] = []
    for position in sorted(leaf):
        entry, printed = leaf[position]
        group_entry = group.get(position)
        group_code = (
            group_entry[0].code
            if group_entry and table_catalogue(table).groups_as_rows
            else None
        )
        last = specs[-1] if specs else None
        if (
            last is not None
            and last.end == position
            and last.code == entry.code
            and last.group == group_code
            and last.printed == printed
        ):
            last.end = position + 1
            continue
        spec = ColumnSpec(position, position + 1, entry.code, printed, group_code)
        spec.money = entry.money
        spec.unit = entry.unit or (_header_unit(printed) if spec.money else None)
        spec.group_printed = group_entry[1] if group_entry else ""
        specs.append(spec)
    if table_catalogue(table).groups_as_rows and not all(s.group for s in specs):
        return None  # a measure under no group: the groups were not printed above it
    return specs


def _columns_by_order(table: str, header_rows: _HeaderRows) -> list[ColumnSpec]:
    """Columns of a text table, where only the order of header cells is known.

    Table 三 prints 自然人 · 法人或其他组织 · 总计 on one line and the five organisation
    types on the next: each group label is replaced by its children. Table 四 prints its
    groups on one line and the five measures (repeated per group) on the others.
    """
    groups_as_rows = table_catalogue(table).groups_as_rows
    sequence: list[tuple[Entry, str]] = []
    groups: list[tuple[Entry, str]] = []
    measures: list[tuple[Entry, str]] = []
    for matched, _ in header_rows:
        for cell in matched:
            entries = _header_entries(table, cell.text)
            column = _column_entry(entries)
            group = next((e for e in entries if e.kind == "column_group"), None)
            if groups_as_rows:
                if group and all(g.code != group.code for g, _ in groups):
                    groups.append((group, cell.text))
                elif column and all(m.code != column.code for m, _ in measures):
                    measures.append((column, cell.text))
                continue
            if column is not None:
                if any(e.code == column.code for e, _ in sequence):
                    continue
                placeholder = next(
                    (i for i, (e, _) in enumerate(sequence) if e.code in column.parent),
                    None,
                )
                if placeholder is None:
                    sequence.append((column, cell.text))
                else:
                    # The group stays after its child, so its later children follow.
                    sequence.insert(placeholder, (column, cell.text))
            elif group is not None and all(e.code != group.code for e, _ in sequence):
                sequence.append((group, cell.text))
    if groups_as_rows:
        specs: list[ColumnSpec] = []
        for group, group_text in groups:
            for measure, text in measures:
                spec = ColumnSpec(
                    len(specs), len(specs) + 1, measure.code, text, group.code
                )
                spec.group_printed = group_text
                specs.append(spec)
        return specs
    specs = []
    for entry, text in sequence:
        if entry.kind != "column":
            continue
        spec = ColumnSpec(len(specs), len(specs) + 1, entry.code, text)
        spec.money = entry.money
        spec.unit = entry.unit or (_header_unit(text) if spec.money else None)
        specs.append(spec)
    return specs


def _positions(columns: list[ColumnSpec]) -> dict[int, int]:
    """Grid position → index of the column covering it."""
    return {
        p: i
        for i, column in enumerate(columns)
        for p in range(column.start, column.end)
    }


def _map_values(
    columns: list[ColumnSpec],
    positions: dict[int, int],
    values: list[Cell],
    geometry: bool,
) -> list[tuple[ColumnSpec, Cell]] | None:
    """Pair a data row's value cells with the table's columns."""
    if geometry:
        pairs: dict[int, Cell] = {}
        unplaced = 0
        clash = False
        for cell in values:
            if cell.span == 1:
                best = positions.get(cell.col)
            else:
                covered = [
                    positions[p]
                    for p in range(cell.col, cell.col + cell.span)
                    if p in positions
                ]
                # A value spanning two columns belongs to the one it starts in, else to
                # the one it covers most.
                best = positions.get(
                    cell.col, max(covered, key=covered.count) if covered else None
                )
            if best is None:
                unplaced += 1
                clash = clash or bool(cell.text)
            elif best in pairs:
                clash = True
            else:
                pairs[best] = cell
        # A row with exactly one value per column whose positions miss a column was
        # shifted (a table continued in a second <table> without its left label column):
        # its order is more trustworthy than its positions.
        shifted = unplaced and len(values) == len(columns)
        if not clash and not shifted:
            return [(columns[i], cell) for i, cell in sorted(pairs.items())]
    trimmed = list(values)
    while len(trimmed) > len(columns) and trimmed and not trimmed[-1].text:
        trimmed.pop()
    while len(trimmed) > len(columns) and trimmed and not trimmed[0].text:
        trimmed.pop(0)
    if len(trimmed) != len(columns):
        return None
    return list(zip(columns, trimmed, strict=True))
