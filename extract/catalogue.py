"""The national template as data: every table, row, column and label variant.

The label tables live in extract/labels/<table>.csv, one line per canonical code and
template format. Columns:

- kind: ``row`` and ``column`` carry data; ``row_group`` and ``column_group`` are the
  spanning labels above them (（三）不予公开, 法人或其他组织); ``block`` is a 第二十条第（X）项
  sub-table of table 二; ``heading`` is template text that carries no data (信息内容, 申请人情况).
- code: the canonical code (the public contract, see ../docs/schema.md).
- parent: the group or block(s) the entry sits under, space-separated.
- formats: the template formats (2019, 2021) that print this label.
- unit: the money unit a column is printed in, where the template fixes it.
- label_zh: the official label; variants: other printed forms, ``|``-separated.

Labels are matched on ``normalize_label`` keys, so variants need only list real wording
differences, never spacing, numbering or bracket styles.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib import resources

from extract.normalize import normalize_label

TABLES: dict[str, str] = {
    "active_disclosure": "主动公开政府信息情况",
    "applications": "收到和处理政府信息公开申请情况",
    "reviews_litigation": "政府信息公开行政复议、行政诉讼情况",
}
FORMATS = ("2019", "2021")


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalogue line: a label of the template and what it means."""

    table: str
    kind: str
    code: str
    parent: tuple[str, ...]
    formats: frozenset[str]
    unit: str | None
    label_zh: str


@dataclass(frozen=True, slots=True)
class Section:
    """A narrative section heading of the report skeleton."""

    number: int
    code: str
    label_zh: str
    pattern: str


class TableCatalogue:
    """The labels of one table, indexed by match key."""

    def __init__(self, table: str, entries: list[Entry], keys: dict[str, list[Entry]]):
        self.table = table
        self.entries = entries
        self._by_key = keys
        self._labels: dict[tuple[str, str, str | None], str] = {}

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
        # Table 四 prints its three groups (行政复议, 未经复议直接起诉, 复议后起诉) as column
        # groups; the long frame keeps them as rows so each code stays a template code.
        row_kind = "column_group" if self.table == "reviews_litigation" else "row"
        rows = self.of_kind(row_kind, template_format)
        columns = self.of_kind("column", template_format)
        cells = []
        for row in rows:
            for column in columns:
                if self.table == "active_disclosure" and not set(row.parent) & set(
                    column.parent
                ):
                    continue
                cells.append((row.code, column.code))
        return cells


def _read_csv(name: str) -> list[dict[str, str]]:
    path = resources.files("extract") / "labels" / name
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


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
            unit=line["unit"] or None,
            label_zh=line["label_zh"],
        )
        entries.append(entry)
        for text in [line["label_zh"], *filter(None, line["variants"].split("|"))]:
            key = normalize_label(text)
            if entry not in keys[key]:
                keys[key].append(entry)
    return TableCatalogue(table, entries, dict(keys))


@cache
def sections() -> tuple[Section, ...]:
    """The six narrative sections, with the heading pattern each is found by."""
    return tuple(
        Section(int(line["number"]), line["code"], line["label_zh"], line["pattern"])
        for line in _read_csv("sections.csv")
    )


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
