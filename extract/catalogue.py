"""The national template as data: every table, row, column, label variant and identity.

extract/labels/tables.csv lists the three tables and how each is laid out:

- number: the table's number in the template (二, 三, 四); label_zh: its title.
- row_kind: the kind of entry a cell's ``row`` is. ``row`` for tables printed as rows of
  values; ``column_group`` for table 四, which prints its groups (行政复议, 未经复议直接起诉,
  复议后起诉) side by side as column groups: every labelled row of it is a header, its
  values sit in one unlabelled row, and the long frame keeps each group as a row so each
  code stays a template code.
- transposed: ``yes`` where reports sometimes print the table with its columns as rows
  (table 三 with the applicant types down the side).

The label tables live in extract/labels/<table>.csv, one line per canonical code and
template format. Columns:

- kind: ``row`` and ``column`` carry data; ``row_group`` and ``column_group`` are the
  spanning labels above them (（三）不予公开, 法人或其他组织); ``block`` is a 第二十条第（X）项
  sub-table of table 二; ``heading`` is template text that carries no data (信息内容, 申请人情况).
- code: the canonical code (the public contract, see ../docs/schema.md).
- parent: the group or block(s) the entry sits under, space-separated.
- formats: the template formats (2019, 2021) that print this label.
- money: ``yes`` for a column of money, converted to 万元 from the unit its header prints.
- unit: the money unit a column is printed in, where the template fixes it.
- label_zh: the official label; variants: other printed forms, ``|``-separated.

Labels are matched on ``normalize_label`` keys, so variants need only list real wording
differences, never spacing, numbering or bracket styles.

extract/labels/identities.csv lists the template's accounting identities (see checks.py):
``parts`` and ``totals`` are codes of one axis, checked ``for_each`` code of the other
(``column``: every column of the template; ``row``: every row of the template; ``printed
row``: every row the report printed). A code with children in the report's format (a group
such as 不予公开, by the catalogue's parent relations) stands for its children.

extract/labels/export_names.csv gives codes short names: ``short`` for the variable names
of exports, ``short_zh`` for a column header on a terminal.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib import resources

from extract.normalize import normalize_label

FORMATS = ("2019", "2021")


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalogue line: a label of the template and what it means."""

    table: str
    kind: str
    code: str
    parent: tuple[str, ...]
    formats: frozenset[str]
    money: bool
    unit: str | None
    label_zh: str


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table of the template and how it is laid out (a line of tables.csv)."""

    table: str
    number: str
    row_kind: str
    transposed: bool
    label_zh: str


@dataclass(frozen=True, slots=True)
class Identity:
    """One accounting identity of a table, as identities.csv states it."""

    check: str
    table: str
    for_each: str
    parts: tuple[str, ...]
    totals: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class Section:
    """A narrative section heading of the report skeleton."""

    number: int
    code: str
    label_zh: str
    pattern: str


class TableCatalogue:
    """The labels of one table, indexed by match key, and its layout."""

    def __init__(
        self, spec: TableSpec, entries: list[Entry], keys: dict[str, list[Entry]]
    ):
        self.table = spec.table
        self.spec = spec
        self.entries = entries
        self._by_key = keys
        self._labels: dict[tuple[str, str, str | None], str] = {}
        self.row_groups = frozenset(e.code for e in entries if e.kind == "row_group")

    @property
    def row_kind(self) -> str:
        """The kind of entry a cell's row is: ``row``, or ``column_group`` (table 四)."""
        return self.spec.row_kind

    @property
    def groups_as_rows(self) -> bool:
        """Whether the table prints its rows side by side as column groups (table 四)."""
        return self.spec.row_kind == "column_group"

    def children(self, code: str, kind: str, template_format: str) -> list[str]:
        """The codes of one kind printed under ``code`` in one format, in print order."""
        return [
            e.code
            for e in self.entries
            if code in e.parent and e.kind == kind and template_format in e.formats
        ]

    def leaves(
        self, codes: tuple[str, ...], kind: str, template_format: str
    ) -> tuple[str, ...]:
        """Codes with each one that has children in the format replaced by its children."""
        out: list[str] = []
        for code in codes:
            children = self.children(code, kind, template_format)
            out += (
                self.leaves(tuple(children), kind, template_format)
                if children
                else [code]
            )
        return tuple(out)

    def lookup(self, key: str) -> list[Entry]:
        """Entries whose label or variant normalises to ``key``."""
        return self._by_key.get(key, [])

    def of_kind(self, kind: str, template_format: str | None = None) -> list[Entry]:
        """Entries of one kind in catalogue order, optionally for one format only."""
        return [
            e
            for e in self.entries
            if e.kind == kind
            and (template_format is None or template_format in e.formats)
        ]

    def label(self, kind: str, code: str, template_format: str | None) -> str:
        """The official Chinese label of a code, in the given format where they differ."""
        key = (kind, code, template_format)
        if key not in self._labels:
            candidates = [e for e in self.entries if e.kind == kind and e.code == code]
            matching = [
                e
                for e in candidates
                if template_format is None or template_format in e.formats
            ]
            self._labels[key] = (matching or candidates)[0].label_zh
        return self._labels[key]

    def expected_cells(self, template_format: str) -> list[tuple[str, str]]:
        """Every (row, column) cell the template prints in this format, in print order."""
        rows = self.of_kind(self.row_kind, template_format)
        columns = self.of_kind("column", template_format)
        blocks = {e.code for e in self.entries if e.kind == "block"}
        cells = []
        for row in rows:
            for column in columns:
                # A table of blocks (table 二's 第二十条 items) is a set of sub-tables: a row
                # has only the columns of its own block.
                row_blocks, column_blocks = (
                    set(e.parent) & blocks for e in (row, column)
                )
                if row_blocks and column_blocks and not row_blocks & column_blocks:
                    continue
                cells.append((row.code, column.code))
        return cells


def _read_csv(name: str) -> list[dict[str, str]]:
    text = (resources.files("extract") / "labels" / name).read_bytes().decode("utf-8")
    # As open(newline=""): a quoted field's line breaks reach the reader as they are.
    return list(csv.DictReader(io.StringIO(text, newline="")))


@cache
def table_specs() -> tuple[TableSpec, ...]:
    """The three tables in template order."""
    return tuple(
        TableSpec(
            line["table"],
            line["number"],
            line["row_kind"],
            line["transposed"] == "yes",
            line["label_zh"],
        )
        for line in _read_csv("tables.csv")
    )


TABLES: dict[str, str] = {spec.table: spec.label_zh for spec in table_specs()}


@cache
def identities() -> tuple[Identity, ...]:
    """The template's accounting identities in the order they are checked."""
    return tuple(
        Identity(
            line["check"],
            line["table"],
            line["for_each"],
            tuple(line["parts"].split()),
            tuple(line["totals"].split()),
            line["description"],
        )
        for line in _read_csv("identities.csv")
    )


@cache
def table_catalogue(table: str) -> TableCatalogue:
    """The catalogue of one canonical table, loaded once."""
    entries: list[Entry] = []
    keys: dict[str, list[Entry]] = defaultdict(list)
    for line in _read_csv(f"{table}.csv"):
        entry = Entry(
            table=table,
            kind=line["kind"],
            code=line["code"],
            parent=tuple(line["parent"].split()),
            formats=frozenset(line["formats"].split()),
            money=line["money"] == "yes",
            unit=line["unit"] or None,
            label_zh=line["label_zh"],
        )
        entries.append(entry)
        for text in [line["label_zh"], *filter(None, line["variants"].split("|"))]:
            key = normalize_label(text)
            if entry not in keys[key]:
                keys[key].append(entry)
    spec = next(s for s in table_specs() if s.table == table)
    return TableCatalogue(spec, entries, dict(keys))


@cache
def sections() -> tuple[Section, ...]:
    """The six narrative sections, with the heading pattern each is found by."""
    return tuple(
        Section(int(line["number"]), line["code"], line["label_zh"], line["pattern"])
        for line in _read_csv("sections.csv")
    )


@cache
def short_names() -> dict[tuple[str, str], str]:
    """(table, code) → the short ASCII name of exports (``app``, ``wh_state_secret``)."""
    return {(r["table"], r["code"]): r["short"] for r in _read_csv("export_names.csv")}


@cache
def short_labels_zh() -> dict[tuple[str, str], str]:
    """(table, code) → a column header short enough for a terminal (自然人, 商业)."""
    return {
        (r["table"], r["code"]): r["short_zh"]
        for r in _read_csv("export_names.csv")
        if r["short_zh"]
    }


@dataclass(frozen=True, slots=True)
class AgencyKind:
    """A kind of agency, recognised by the end of its name."""

    kind: str
    label_zh: str
    pattern: str
    description: str


@cache
def agency_kinds() -> tuple[AgencyKind, ...]:
    """The kinds of agency in the order they are tried (the first match wins)."""
    return tuple(AgencyKind(**line) for line in _read_csv("agency_kinds.csv"))


@cache
def all_keys() -> dict[str, list[Entry]]:
    """Match key → entries across all three tables."""
    merged: dict[str, list[Entry]] = defaultdict(list)
    for table in TABLES:
        for key, entries in table_catalogue(table)._by_key.items():
            merged[key].extend(entries)
    return dict(merged)
