"""One report document in, one ``Report`` out: a pure function, no network, no clock."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property
from operator import itemgetter
from typing import Any

import pandas as pd

from extract.catalogue import FORMATS, TABLES, table_catalogue
from extract.checks import CheckResult, check_table
from extract.document import is_heading, read_document_info
from extract.errors import DocumentError
from extract.formats import document_layout, named_format, sniff_format
from extract.layout import html_layout, text_layout
from extract.ocr import MarkingReader
from extract.problems import Problem, codes, texts
from extract.schema import CELL_COLUMNS, CHECK_COLUMNS, frame, frames
from extract.tables import ExtractedCell, TableReader, detected_format
from nianbao_common.decode import decode_document


@dataclass
class Report:
    """A report as extracted: metadata, canonical cell frames, checks, sections and status.

    The cells are kept as plain columns (``table_columns``, ``check_results``); the pandas
    frames are built on first access, so batch jobs that write Arrow directly skip them.
    """

    url: str | None
    sha256: str
    source_format: str
    encoding: str | None = None
    declared_encoding: str | None = None
    title: str | None = None
    agency: str | None = None
    year: int | None = None
    publish_date: str | None = None
    formats: dict[str, str | None] = field(default_factory=dict)
    table_columns: dict[str, dict[str, list]] = field(
        default_factory=lambda: {t: _empty(CELL_COLUMNS) for t in TABLES}
    )
    check_results: list[CheckResult] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    status: str = "no_tables"
    # What could not be read, as ``Problem`` values; ``problems`` is their text.
    issues: list[Problem] = field(default_factory=list)
    # Binary documents (extract/formats.py): whether any value was read by OCR, and
    # which cells were, as (table, row, column); the document the values come from
    # (``source_url``) and the page that linked it (``page_url``), when they differ.
    ocr: bool = False
    ocr_cells: set[tuple[str, str, str]] = field(default_factory=set)
    source_url: str | None = None
    page_url: str | None = None

    @property
    def problems(self) -> list[str]:
        """The problems as text, one string each (``applications: table not found``)."""
        return texts(self.issues)

    @property
    def problem_codes(self) -> list[str]:
        """The problems' codes (see ``extract/labels/problems.csv``), as ``problems``."""
        return codes(self.issues)

    @cached_property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The three long cell frames by table code."""
        return frames(CELL_COLUMNS, self.table_columns)

    @cached_property
    def checks(self) -> pd.DataFrame:
        """One row per identity evaluated."""
        return frame(
            CHECK_COLUMNS,
            {
                c.name: [getattr(r, c.name) for r in self.check_results]
                for c in CHECK_COLUMNS
            },
        )

    @property
    def active_disclosure(self) -> pd.DataFrame:
        """Table 二, one row per cell."""
        return self.tables["active_disclosure"]

    @property
    def applications(self) -> pd.DataFrame:
        """Table 三, one row per cell."""
        return self.tables["applications"]

    @property
    def reviews_litigation(self) -> pd.DataFrame:
        """Table 四, one row per cell."""
        return self.tables["reviews_litigation"]

    def metadata(self) -> dict[str, Any]:
        """Everything but the cells, checks and sections, as plain values."""
        return {
            "url": self.url,
            "sha256": self.sha256,
            "title": self.title,
            "agency": self.agency,
            "year": self.year,
            "publish_date": self.publish_date,
            "source_format": self.source_format,
            "encoding": self.encoding,
            "declared_encoding": self.declared_encoding,
            "formats": self.formats,
            "status": self.status,
            "problems": self.problems,
            "problem_codes": self.problem_codes,
            "source_url": self.source_url,
            "page_url": self.page_url,
            "ocr": self.ocr,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready values (nulls for missing numbers)."""
        return {
            **self.metadata(),
            "tables": {
                table: [
                    dict(zip(columns, row, strict=True))
                    for row in zip(*columns.values(), strict=True)
                ]
                for table, columns in self.table_columns.items()
            },
            "checks": [asdict(result) for result in self.check_results],
            "sections": self.sections,
        }


def _empty(columns) -> dict[str, list]:
    return {c.name: [] for c in columns}


def parse_report(
    data: bytes, url: str | None = None, content_type: str | None = None
) -> Report:
    """Extract one report document (HTML or plain text).

    Never raises for a bad document: what could not be read is listed in ``problems``
    and summed up by ``status``.
    """
    report = Report(url=url, sha256=hashlib.sha256(data).hexdigest(), source_format="")
    try:
        _parse_into(report, data, url, content_type)
    except (ValueError, RecursionError, MemoryError) as error:
        report.issues.append(
            Problem(
                "unreadable_document",
                None,
                f"unreadable document: {type(error).__name__}: {error}",
            )
        )
        report.status = "no_tables"
    return report


def _parse_into(
    report: Report, data: bytes, url: str | None, content_type: str | None
) -> None:
    report.source_format = sniff_format(data, url, content_type)
    report.source_url = url
    if report.source_format not in ("html", "text"):
        report.source_format = named_format(report.source_format, url, content_type)
        try:
            found = document_layout(data, url, content_type)
        except DocumentError as error:
            report.issues.append(
                Problem(
                    "unreadable_document",
                    None,
                    f"unreadable {report.source_format}: {error}",
                )
            )
            return
        report.source_format, report.ocr = found.source_format, found.ocr
        report.issues.extend(found.issues)
        _read_layout(report, found.layout)
        return
    decoded = decode_document(data, content_type)
    report.encoding, report.declared_encoding = decoded.encoding, decoded.declared
    if report.source_format == "html":
        # Valid UTF-8 goes to the parser as it came, saving a re-encode of the text.
        utf8 = decoded.encoding == "utf-8" and not data.startswith(codecs.BOM_UTF8)
        layout = html_layout(data if utf8 else decoded.text)
    else:
        layout = text_layout(decoded.text)
    _read_layout(report, layout)


def _read_layout(report: Report, layout) -> None:
    info = read_document_info(layout.blocks, layout.title)
    report.title, report.agency, report.year = info.title, info.agency, info.year
    report.publish_date, report.sections = info.publish_date, info.sections

    reader = MarkingReader() if report.ocr else TableReader()
    reader.read(layout.blocks, is_heading)
    if isinstance(reader, MarkingReader):
        report.ocr_cells = set(reader.ocr_cells)
    report.issues.extend(reader.problems)
    checks: list[CheckResult] = []
    found_any = False
    for table in TABLES:
        cells = reader.cells[table]
        template_format = detected_format(reader.format_votes[table])
        report.formats[table] = template_format
        report.table_columns[table] = _cell_columns(
            table, cells, template_format, report.ocr_cells
        )
        if not cells:
            report.issues.append(Problem("table_not_found", table, "table not found"))
            continue
        found_any = True
        report.issues.extend(_missing_cells(table, cells, template_format))
        values = {key: cell.value for key, cell in cells.items()}
        checks += check_table(table, values, template_format)
    report.check_results = checks
    if not found_any:
        report.status = "no_tables"
    elif report.issues:
        report.status = "partial"
    elif any(r.status == "fail" for r in checks):
        report.status = "checks_failed"
    else:
        report.status = "ok"


@cache
def _expected(table: str, template_format: str | None) -> list[tuple[str, str]]:
    catalogue = table_catalogue(table)
    if template_format is not None:
        return catalogue.expected_cells(template_format)
    both = [catalogue.expected_cells(f) for f in FORMATS]
    common = set(both[1])
    return [cell for cell in both[0] if cell in common]


def _missing_cells(table: str, cells, template_format: str | None) -> list[Problem]:
    missing = [key for key in _expected(table, template_format) if key not in cells]
    if not missing:
        return []
    rows = dict.fromkeys(row for row, _ in missing)
    whole = [
        r
        for r in rows
        if all((r, c) in missing for c in _columns_of(table, r, template_format))
    ]
    problems = []
    if whole:
        problems.append(
            Problem(
                "template_rows_missing",
                table,
                f"template rows not found: {', '.join(whole)}",
            )
        )
    partly = [f"{r}/{c}" for r, c in missing if r not in whole]
    if partly:
        problems.append(
            Problem(
                "template_cells_missing",
                table,
                f"template cells not found: {', '.join(partly)}",
            )
        )
    return problems


def _columns_of(table: str, row: str, template_format: str | None) -> list[str]:
    return [c for r, c in _expected(table, template_format) if r == row]


# The cell tuples' fields after the sort key; frames take their columns by these names.
_CELL_FIELDS = (
    "row", "column", "row_label", "column_label", "printed_row_label",
    "printed_column_label", "raw", "value", "marker", "unit", "is_ocr",
    "matched_by",
)  # fmt: skip


@cache
def _cell_labels(
    table: str, template_format: str | None
) -> dict[tuple[str, str], tuple[int, str, str]]:
    """(row, column) → print order, official row label, official column label."""
    catalogue = table_catalogue(table)
    return {
        (row, column): (
            order,
            catalogue.label(catalogue.row_kind, row, template_format),
            catalogue.label("column", column, template_format),
        )
        for order, (row, column) in enumerate(_expected(table, template_format))
    }


def _cell_columns(
    table: str,
    cells: dict[tuple[str, str], ExtractedCell],
    template_format: str | None,
    ocr_cells: AbstractSet[tuple[str, str, str]] = frozenset(),
) -> dict[str, list]:
    labels = _cell_labels(table, template_format)
    rows = []
    for key, cell in cells.items():
        known = labels.get(key)
        if known is None:  # a cell of the other format's template
            catalogue = table_catalogue(table)
            known = (
                len(labels),
                catalogue.label(catalogue.row_kind, cell.row, template_format),
                catalogue.label("column", cell.column, template_format),
            )
        rows.append(
            (
                known[0],
                cell.row,
                cell.column,
                known[1],
                known[2],
                cell.printed_row_label,
                cell.printed_column_label,
                cell.raw,
                cell.value,
                cell.marker,
                cell.unit,
                (table, cell.row, cell.column) in ocr_cells if ocr_cells else False,
                cell.matched_by,
            )
        )
    rows.sort(key=itemgetter(0))
    columns = list(zip(*rows, strict=True))[1:] if rows else [()] * len(_CELL_FIELDS)
    return {
        name: list(values) for name, values in zip(_CELL_FIELDS, columns, strict=True)
    }
