"""One archived document → the dataset rows of every table (the part of a run that workers do).

The page is read together with its archived attachments, exactly as
``parse_report_with_attachments`` chooses: when the page holds no table, the attachment
that reads best gives the cells, and ``source_url`` names it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import chain, count
from pathlib import PurePosixPath
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from extract.agencies import Place, agency_kind, identify
from extract.attachments import parse_report_with_attachments
from extract.catalogue import TABLES, sections
from extract.dataset.reuse import package_version, reuse_key
from extract.formats import sniff_format
from extract.problems import Problem
from extract.report import Report
from extract.schema import DATASET_TABLES, Column

SCHEMA_VERSION = "3"
CELL_TABLES = (*TABLES, "checks", "sections")
YEAR_TABLES = ("reports", *CELL_TABLES)
_ARROW_TYPES = {
    "string": pa.string(),
    "Float64": pa.float64(),
    "Int64": pa.int64(),
    "list<string>": pa.list_(pa.string()),
    "boolean": pa.bool_(),
}
# Cell tables repeat a few hundred distinct strings over millions of rows: stored as Arrow
# dictionaries they load as pandas categoricals, about 3x faster than plain strings.
# agency_id stays a plain string: pyarrow prunes row groups by the min/max statistics of
# plain columns only, and a filter on one agency must skip all row groups but its own.
_DICTIONARY_STRING = pa.dictionary(pa.int32(), pa.string())
_PLAIN_STRINGS = ("agency_id", "text")
_SECTION_NUMBERS = {section.code: section.number for section in sections()}


@cache
def extractor_version() -> str:
    """The nianbao version and the digest of the code that extracts (see ``reuse``)."""
    return f"{package_version()}+{reuse_key(set()).code}"


def _arrow_type(table: str, column: Column) -> pa.DataType:
    if (
        column.dtype == "string"
        and table in CELL_TABLES
        and column.name not in _PLAIN_STRINGS
    ):
        return _DICTIONARY_STRING
    return _ARROW_TYPES[column.dtype]


@cache
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a dataset table, with schema and extractor versions attached."""
    fields = [pa.field(c.name, _arrow_type(table, c)) for c in DATASET_TABLES[table]]
    return pa.schema(
        fields,
        metadata={
            "nianbao.schema_version": SCHEMA_VERSION,
            "nianbao.extractor_version": extractor_version(),
            "nianbao.table": table,
        },
    )


class ArchivedDocument(Protocol):
    """An archived page or attachment, as the crawler's archive reader yields it."""

    site: str
    url: str
    content_type: str | None
    sha256: str
    length: int
    fetched_at: str
    warc_file: str
    warc_offset: int
    record_id: str

    def read_bytes(self) -> bytes: ...


class Source(ArchivedDocument, Protocol):
    """An archived report page with its list metadata and archived attachments."""

    agency: str | None
    report_year: int | None
    title: str | None

    @property
    def attachments(self) -> Sequence[ArchivedDocument]: ...


@dataclass
class Extracted:
    """One archived document extracted: what the state keeps, and its rows per table."""

    url: str
    site: str
    fetched_at: str
    agency_id: str | None = None
    year: int | None = None
    status: str = "no_tables"
    converters: dict[str, str] = field(default_factory=dict)
    agency: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, dict[str, list]] = field(default_factory=dict)
    error: str | None = None
    failure: str | None = None


def read_documents(
    source: Source,
) -> tuple[bytes, list[tuple[bytes, str | None, str | None]], list[Problem]]:
    """The page's bytes, its readable attachments, and a problem per unreadable one.

    Raises when the page itself cannot be read (the caller records it).
    """
    page = source.read_bytes()
    files: list[tuple[bytes, str | None, str | None]] = []
    problems: list[Problem] = []
    for attachment in source.attachments:
        try:
            files.append(
                (attachment.read_bytes(), attachment.url, attachment.content_type)
            )
        except Exception as error:  # noqa: BLE001 - reported on the report, not raised
            problems.append(
                Problem(
                    "attachment_unreadable",
                    None,
                    f"attachment unreadable in the archive: {attachment.url}: "
                    f"{type(error).__name__}: {error}",
                )
            )
    for url in getattr(source, "missing_attachments", ()):
        problems.append(
            Problem("attachment_missing", None, f"attachment not in the archive: {url}")
        )
    return page, files, problems


# What a document's URL suffix or Content-Type says it may need converted, before any of
# its bytes is read: PDFs and images may be scans (Tesseract), Word and WPS files go
# through LibreOffice.
_SUFFIXES_OF_CONVERTER = {
    "tesseract": {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif"},
    "libreoffice": {".doc", ".wps", ".rtf", ".docx", ".xls", ".xlsx", ".et"},
}


def guessed_converters(document: ArchivedDocument) -> frozenset[str]:
    """The converters one archived document may need, guessed from its metadata."""
    suffix = PurePosixPath(document.url.split("?", 1)[0]).suffix.lower()
    kind = (document.content_type or "").lower()
    needed = set()
    if (
        suffix in _SUFFIXES_OF_CONVERTER["tesseract"]
        or "pdf" in kind
        or kind.startswith("image/")
    ):
        needed.add("tesseract")
    if (
        suffix in _SUFFIXES_OF_CONVERTER["libreoffice"]
        or "msword" in kind
        or "officedocument" in kind
    ):
        needed.add("libreoffice")
    return frozenset(needed)


def document_kinds(
    page: bytes, source: Source, files: list[tuple[bytes, str | None, str | None]]
) -> set[str]:
    """The sniffed kinds (html, text, pdf, zip, ole, image …) of a page and its files."""
    kinds = {sniff_format(page, source.url, source.content_type)}
    kinds.update(sniff_format(data, url, kind) for data, url, kind in files)
    return kinds


def extract_report(
    source: Source,
    page: bytes,
    files: list[tuple[bytes, str | None, str | None]],
    problems: list[Problem],
) -> tuple[Report, Extracted]:
    """Parse a page with its attachments and turn the report into dataset rows."""
    report = parse_report_with_attachments(page, source.url, source.content_type, files)
    report.issues.extend(problems)
    return report, rows_of_report(source, report)


def rows_of_report(source: Source, report: Report) -> Extracted:
    """The dataset rows of a parsed report, keyed by the agency and year it gives."""
    result = Extracted(source.url, source.site, source.fetched_at)
    printed = source.agency or report.agency
    result.year = report.year or source.report_year
    result.status = report.status
    if not printed or result.year is None:
        result.error = (
            "no agency name" if not printed else "no report year in title or list"
        )
        return result
    _identify(result, source, printed)
    result.rows = _rows(source, report, result, printed)
    return result


def failed_document(source: Source, status: str, problem: Problem) -> Extracted:
    """The rows of a document that could not be extracted (error, timeout, too_large).

    It enters the dataset as a report without cells when the list page gave its agency
    and year, so a researcher sees that the report exists and why it has no values.
    """
    result = Extracted(source.url, source.site, source.fetched_at, status=status)
    result.failure = str(problem)
    result.year = source.report_year
    if not source.agency or result.year is None:
        result.error = f"{status}: {problem}"
        return result
    _identify(result, source, source.agency)
    report = Report(
        url=source.url,
        sha256=source.sha256,
        source_format="unknown",
        status=status,
        issues=[problem],
    )
    result.rows = _rows(source, report, result, source.agency)
    return result


def _identify(result: Extracted, source: Source, printed: str) -> None:
    place = Place.of(source)
    agency = identify(printed, place)
    result.agency_id = agency.agency_id
    result.agency = {
        "agency_id": agency.agency_id,
        "agency": agency.name,
        "agency_kind": agency_kind(agency.name),
        "province": place.province,
        "city": place.city,
        "district": agency.district,
        "division_code": agency.division_code,
        "site": source.site,
    }


def _source_sha256(source: Source, report: Report) -> str:
    if report.source_url and report.source_url != source.url:
        for attachment in source.attachments:
            if attachment.url == report.source_url:
                return attachment.sha256
    return source.sha256


def _rows(
    source: Source,
    report: Report,
    result: Extracted,
    printed: str,
) -> dict[str, dict[str, list]]:
    statuses = Counter(r.status for r in report.check_results)
    agency_id = result.agency_id
    rows: dict[str, dict[str, list]] = {}
    rows["reports"] = {
        "agency_id": [agency_id],
        "agency": [result.agency["agency"]],
        "agency_kind": [result.agency["agency_kind"]],
        "province": [result.agency["province"]],
        "city": [result.agency["city"]],
        "printed_agency": [printed],
        "district": [result.agency["district"]],
        "division_code": [result.agency["division_code"]],
        "site": [source.site],
        "title": [report.title or source.title],
        "url": [source.url],
        "source_url": [report.source_url or source.url],
        "source_sha256": [_source_sha256(source, report)],
        "publish_date": [report.publish_date],
        "fetched_at": [source.fetched_at],
        "sha256": [source.sha256],
        "warc_file": [source.warc_file],
        "warc_offset": [source.warc_offset],
        "record_id": [source.record_id],
        "source_format": [report.source_format],
        "ocr": [report.ocr],
        "encoding": [report.encoding],
        **{f"format_{table}": [report.formats.get(table)] for table in TABLES},
        "status": [report.status],
        "checks_passed": [statuses["pass"]],
        "checks_failed": [statuses["fail"]],
        "checks_incomplete": [statuses["incomplete"]],
        "problems": [report.problems],
        "problem_codes": [report.problem_codes],
        "extractor_version": [extractor_version()],
        # Set for the whole run by the driver (the data directory says it is a demo).
        "synthetic": [False],
    }
    for table in TABLES:
        columns = report.table_columns[table]
        rows[table] = {"agency_id": [agency_id] * len(columns["row"]), **columns}
    rows["checks"] = {
        "agency_id": [agency_id] * len(report.check_results),
        **{
            c.name: [getattr(r, c.name) for r in report.check_results]
            for c in DATASET_TABLES["checks"][1:]
        },
    }
    rows["sections"] = {
        "agency_id": [agency_id] * len(report.sections),
        "section": list(report.sections),
        "number": [_SECTION_NUMBERS.get(code) for code in report.sections],
        "text": list(report.sections.values()),
    }
    return rows


def to_arrow(
    table: str, reports: list[dict[str, list]], extra: dict[str, pa.Array] | None = None
) -> pa.Table:
    """The rows of many reports as one Arrow table of the dataset schema (plus ``extra``)."""
    schema = arrow_schema(table)
    arrays = []
    for field_ in schema:
        columns = [rows[field_.name] for rows in reports]
        values = chain.from_iterable(columns)
        if pa.types.is_dictionary(field_.type):
            arrays.append(_dictionary_array(values, sum(map(len, columns))))
        else:
            arrays.append(pa.array(list(values), field_.type))
    result = pa.Table.from_arrays(arrays, schema=schema)
    for name, array in (extra or {}).items():
        result = result.append_column(name, array)
    return result


def _dictionary_array(values: Iterable[str | None], size: int) -> pa.DictionaryArray:
    """Strings of a few hundred distinct values as an Arrow dictionary array.

    Coded by a dict lookup a value (a new value takes the next code), which costs a
    batch about a fifth less than converting every string and encoding the result.
    """
    codes_of: defaultdict[str | None, int] = defaultdict(count(1).__next__, {None: 0})
    codes = np.fromiter(map(codes_of.__getitem__, values), np.int32, size)
    nulls = codes == 0
    indices = pa.array(codes - 1, mask=nulls if nulls.any() else None)
    dictionary = pa.array(list(codes_of)[1:], pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary)
