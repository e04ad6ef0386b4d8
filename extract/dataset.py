"""The Parquet dataset, rebuilt from the raw archive: atomic, incremental, on every core.

Layout under ``$NIANBAO_DATA``::

    parquet -> parquet-versions/<version>/     a symlink, switched atomically per run
    parquet-versions/<version>/<table>/year=YYYY/part-0.parquet
    parquet-versions/<version>/agencies/part-0.parquet
    extract-state.sqlite                        which archived document each row came from

A run writes a complete new version directory (unchanged year files are hard links to the
previous version's) and then repoints ``parquet``: a run killed at any point leaves the
previous dataset whole, and a reader never sees a half-written one. Only documents whose
archived sha256 or extractor version changed are extracted again; only the year files of
the agency-years they change are rewritten.

When several archived documents give the same agency and year (the municipal portal re-hosts
the district governments' reports), the best one is kept: by status (ok, checks_failed,
partial, no_tables), then the latest fetch.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import extract
from extract.agencies import district_of_site, identify
from extract.catalogue import TABLES
from extract.report import Report, parse_report
from extract.schema import DATASET_TABLES, Column

SCHEMA_VERSION = "1"
CELL_TABLES = (*TABLES, "checks", "sections")
YEAR_TABLES = ("reports", *CELL_TABLES)
STATUS_RANK = {"ok": 0, "checks_failed": 1, "partial": 2, "no_tables": 3}
# Row groups of 16k rows: with rows sorted by agency_id, a filter on one agency reads one
# or two groups of a year file (see docs/schema.md, *Physical layout*).
ROW_GROUP_ROWS = 16_384
_ARROW_TYPES = {
    "string": pa.string(),
    "Float64": pa.float64(),
    "Int64": pa.int64(),
    "list<string>": pa.list_(pa.string()),
    "boolean": pa.bool_(),
}


def extractor_version() -> str:
    """The package version plus a digest of the label catalogue, which changes extraction."""
    digest = hashlib.sha256()
    for path in sorted(
        resources.files("extract").joinpath("labels").iterdir(), key=str
    ):
        digest.update(path.read_bytes())
    return f"{extract.__version__}+{digest.hexdigest()[:8]}"


# Cell tables repeat a few hundred distinct strings over millions of rows: stored as Arrow
# dictionaries they load as pandas categoricals, about 3x faster than plain strings.
# agency_id stays a plain string: pyarrow prunes row groups by the min/max statistics of
# plain columns only, and a filter on one agency must skip all row groups but its own.
_DICTIONARY_TABLES = (*TABLES, "checks", "sections")
_DICTIONARY_STRING = pa.dictionary(pa.int32(), pa.string())
_PLAIN_STRINGS = ("agency_id", "text")


def _arrow_type(table: str, column: Column) -> pa.DataType:
    if (
        column.dtype == "string"
        and table in _DICTIONARY_TABLES
        and column.name not in _PLAIN_STRINGS
    ):
        return _DICTIONARY_STRING
    return _ARROW_TYPES[column.dtype]


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


class Source(Protocol):
    """An archived report document, as the crawler's archive reader yields it."""

    site: str
    url: str
    agency: str | None
    report_year: int | None
    title: str | None
    content_type: str | None
    sha256: str
    fetched_at: str
    warc_file: str
    warc_offset: int
    record_id: str

    def read_bytes(self) -> bytes: ...


@dataclass
class Extracted:
    """One archived document extracted: its agency-year and the rows of every table."""

    url: str
    sha256: str
    version: str
    site: str
    fetched_at: str
    agency_id: str | None = None
    year: int | None = None
    status: str = "no_tables"
    agency: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, dict[str, list]] = field(default_factory=dict)
    error: str | None = None


def extract_source(source: Source, version: str) -> Extracted:
    """Read one archived document and turn it into dataset rows (runs in a worker)."""
    result = Extracted(
        source.url, source.sha256, version, source.site, source.fetched_at
    )
    try:
        data = source.read_bytes()
    except Exception as error:  # noqa: BLE001 - any unreadable record is reported, not raised
        result.error = f"archive record unreadable: {type(error).__name__}: {error}"
        return result
    report = _parse(source, data)
    printed = source.agency or report.agency
    result.year = report.year or source.report_year
    result.status = report.status
    if not printed or result.year is None:
        result.error = (
            "no agency name" if not printed else "no report year in title or list"
        )
        return result
    agency = identify(printed, district_of_site(source.site))
    result.agency_id = agency.agency_id
    result.agency = {
        "agency_id": agency.agency_id,
        "agency": agency.name,
        "district": agency.district,
        "division_code": agency.division_code,
        "site": source.site,
    }
    rows = _rows(source, report, agency.agency_id, printed, version)
    rows["reports"].update(
        agency=[agency.name],
        district=[agency.district],
        division_code=[agency.division_code],
    )
    # Plain lists cross the process boundary: pickling repeats each distinct string once,
    # where an Arrow table per report cost more to build and pickle than to extract.
    result.rows = rows
    return result


def _to_arrow(table: str, reports: list[dict[str, list]]) -> pa.Table:
    """The rows of many reports as one Arrow table of the dataset schema."""
    schema = arrow_schema(table)
    arrays = []
    for field_ in schema:
        values = list(chain.from_iterable(rows[field_.name] for rows in reports))
        if pa.types.is_dictionary(field_.type):
            # Encoding plain strings is ~3x faster than building dictionary arrays from lists.
            arrays.append(pa.array(values, pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(values, field_.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _parse(source: Source, data: bytes) -> Report:
    attachments = getattr(source, "attachments", None) or []
    try:
        from extract.report import parse_report_with_attachments
    except ImportError:
        return parse_report(data, url=source.url, content_type=source.content_type)
    files = []
    for attachment in attachments:
        try:
            files.append(
                (attachment.read_bytes(), attachment.url, attachment.content_type)
            )
        except Exception:  # noqa: BLE001, S112 - an unreadable attachment is skipped
            continue
    return parse_report_with_attachments(data, source.url, source.content_type, files)


def _rows(
    source: Source, report: Report, agency_id: str, printed: str, version: str
) -> dict:
    statuses = Counter(r.status for r in report.check_results)
    rows: dict[str, dict[str, list]] = {}
    rows["reports"] = {
        "agency_id": [agency_id],
        "agency": [None],
        "printed_agency": [printed],
        "district": [None],
        "division_code": [None],
        "site": [source.site],
        "title": [report.title or source.title],
        "url": [source.url],
        "source_url": [getattr(report, "source_url", None) or source.url],
        "publish_date": [report.publish_date],
        "fetched_at": [source.fetched_at],
        "sha256": [source.sha256],
        "warc_file": [source.warc_file],
        "warc_offset": [source.warc_offset],
        "record_id": [source.record_id],
        "source_format": [report.source_format],
        "ocr": [report.ocr],
        "encoding": [report.encoding],
        "format_active_disclosure": [report.formats.get("active_disclosure")],
        "format_applications": [report.formats.get("applications")],
        "format_reviews_litigation": [report.formats.get("reviews_litigation")],
        "status": [report.status],
        "checks_passed": [statuses["pass"]],
        "checks_failed": [statuses["fail"]],
        "checks_incomplete": [statuses["incomplete"]],
        "problems": [list(report.problems)],
        "extractor_version": [version],
    }
    for table in TABLES:
        columns = report.table_columns[table]
        count = len(columns["row"])
        rows[table] = {"agency_id": [agency_id] * count, **columns}
    rows["checks"] = {
        "agency_id": [agency_id] * len(report.check_results),
        **{
            c.name: [getattr(r, c.name) for r in report.check_results]
            for c in DATASET_TABLES["checks"][1:]
        },
    }
    numbers = {code: i + 1 for i, code in enumerate(_SECTION_CODES)}
    rows["sections"] = {
        "agency_id": [agency_id] * len(report.sections),
        "section": list(report.sections),
        "number": [numbers.get(code) for code in report.sections],
        "text": list(report.sections.values()),
    }
    return rows


_SECTION_CODES = (
    "overview",
    "active_disclosure",
    "applications",
    "reviews_litigation",
    "problems_and_improvements",
    "other_matters",
)


# -- state --------------------------------------------------------------------------------

_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    url TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    extractor_version TEXT NOT NULL,
    agency_id TEXT,
    year INTEGER,
    status TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    is_primary INTEGER NOT NULL,
    agency_json TEXT,
    error TEXT
);
"""


@dataclass
class _SourceState:
    url: str
    site: str
    sha256: str
    version: str
    agency_id: str | None
    year: int | None
    status: str
    fetched_at: str
    is_primary: bool
    agency: dict[str, Any]
    error: str | None

    @classmethod
    def of(cls, result: Extracted) -> _SourceState:
        return cls(
            result.url,
            result.site,
            result.sha256,
            result.version,
            result.agency_id,
            result.year,
            result.status,
            result.fetched_at,
            False,
            result.agency,
            result.error,
        )

    def rank(self) -> tuple:
        return (STATUS_RANK.get(self.status, 9), _negated(self.fetched_at), self.url)


def _negated(text: str) -> str:
    # Sort the latest fetch first with an ascending key.
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


def _load_state(path: Path) -> dict[str, _SourceState]:
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        db.executescript(_STATE_SCHEMA)
        rows = db.execute(
            "SELECT url, site, sha256, extractor_version, agency_id, year, status, fetched_at,"
            " is_primary, agency_json, error FROM sources"
        ).fetchall()
    return {
        r[0]: _SourceState(*r[:8], bool(r[8]), json.loads(r[9] or "{}"), r[10])
        for r in rows
    }


def _save_state(path: Path, states: dict[str, _SourceState]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    with sqlite3.connect(temporary) as db:
        db.executescript(_STATE_SCHEMA)
        db.executemany(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.url,
                    s.site,
                    s.sha256,
                    s.version,
                    s.agency_id,
                    s.year,
                    s.status,
                    s.fetched_at,
                    int(s.is_primary),
                    json.dumps(s.agency, ensure_ascii=False),
                    s.error,
                )  # fmt: skip
                for s in states.values()
            ],
        )
    db.close()
    temporary.replace(path)


# -- the run ------------------------------------------------------------------------------


@dataclass
class ExtractSummary:
    """What one extract run did."""

    documents: int = 0
    extracted: int = 0
    reused: int = 0
    reports: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    checks_failed: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    years_written: list[int] = field(default_factory=list)
    seconds: float = 0.0
    version_dir: str | None = None

    @property
    def ok(self) -> bool:
        """No archived document was unreadable."""
        return not any(
            reason.startswith("archive record") for _, reason in self.unreadable
        )

    def render(self) -> str:
        """A one-screen summary."""
        lines = [
            f"extract: {self.documents} archived reports, {self.extracted} extracted, "
            f"{self.reused} unchanged, in {self.seconds:.1f} s",
            f"dataset: {self.reports} agency-years; "
            + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()),
            "statuses: "
            + ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items())),
            f"reports with failed checks: {self.checks_failed}",
            f"year files rewritten: {', '.join(map(str, self.years_written)) or 'none'}",
        ]
        if self.unreadable:
            lines.append(f"documents not in the dataset: {len(self.unreadable)}")
            reasons = Counter(reason for _, reason in self.unreadable)
            lines += [f"  {n} × {reason}" for reason, n in reasons.most_common(8)]
        return "\n".join(lines)


Progress = Callable[[int, int], None]


def print_progress(stream=sys.stderr) -> Progress:
    """A progress callback printing done/total, rate and ETA at most once a second."""
    started = time.monotonic()
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 1 and done < total:
            return
        last[0] = now
        rate = done / max(now - started, 1e-9)
        eta = (total - done) / rate if rate else 0
        stream.write(
            f"\rextract {done}/{total}  {rate:.1f} reports/s  ETA {eta:.0f} s   "
        )
        if done >= total:
            stream.write("\n")
        stream.flush()

    return report


def _extract_all(
    sources: list[Source], workers: int, progress: Progress | None
) -> list[Extracted]:
    version = extractor_version()
    results: list[Extracted] = []
    total = len(sources)
    if workers <= 1 or total < 8:
        for done, source in enumerate(sources, 1):
            results.append(extract_source(source, version))
            if progress:
                progress(done, total)
        return results
    # spawn, not fork: the caller may run a Twisted reactor (nianbao run crawls first).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        batches = [sources[i : i + 32] for i in range(0, total, 32)]
        futures = [pool.submit(_extract_batch, batch, version) for batch in batches]
        done = 0
        for future in as_completed(futures):
            batch_results = future.result()
            results.extend(batch_results)
            done += len(batch_results)
            if progress:
                progress(done, total)
    return results


def _extract_batch(sources: list[Source], version: str) -> list[Extracted]:
    return [extract_source(source, version) for source in sources]


def build_dataset(
    sources: Iterable[Source],
    data_dir: Path,
    *,
    force: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> ExtractSummary:
    """Extract what changed in ``sources`` and publish a new dataset version under data_dir."""
    started = time.monotonic()
    summary = ExtractSummary()
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path = data_dir / "extract-state.sqlite"
    previous = _load_state(state_path)
    current_link = data_dir / "parquet"
    previous_dir = current_link.resolve() if current_link.exists() else None
    # Without a published dataset, or with one of another schema, the state says nothing
    # about what can be reused.
    force = force or previous_dir is None or not _same_schema(previous_dir)
    version = extractor_version()

    sources = list(sources)
    summary.documents = len(sources)
    by_url = {s.url: s for s in sources}
    changed = [
        s
        for s in sources
        if force
        or s.url not in previous
        or previous[s.url].sha256 != s.sha256
        or previous[s.url].version != version
    ]
    summary.reused = len(sources) - len(changed)
    fresh: dict[str, Extracted] = {
        r.url: r
        for r in _extract_all(changed, workers or os.cpu_count() or 1, progress)
    }

    states = {
        url: previous[url] for url in by_url if url in previous and url not in fresh
    }
    states.update({url: _SourceState.of(r) for url, r in fresh.items()})
    old_primary = {(s.agency_id, s.year): s for s in previous.values() if s.is_primary}
    groups: dict[tuple[str, int], list[_SourceState]] = defaultdict(list)
    for state in states.values():
        state.is_primary = False
        if state.agency_id and state.year is not None and not state.error:
            groups[(state.agency_id, state.year)].append(state)
    primary = {
        key: min(members, key=_SourceState.rank) for key, members in groups.items()
    }
    for state in primary.values():
        state.is_primary = True

    # A primary that was neither extracted now nor kept in the dataset before needs its
    # rows: extract it (its group's previous primary left the archive or lost the rank).
    missing = [
        by_url[s.url]
        for key, s in primary.items()
        if s.url not in fresh
        and not (
            key in old_primary
            and old_primary[key].url == s.url
            and old_primary[key].sha256 == s.sha256
        )
    ]
    for result in _extract_all(missing, workers or 1, None):
        fresh[result.url] = result

    rewrite = {
        key
        for key, s in primary.items()
        if s.url in fresh or key not in old_primary or old_primary[key].url != s.url
    } | {key for key in old_primary if key not in primary}
    years = sorted({year for _, year in rewrite})
    summary.extracted = len(fresh)
    summary.years_written = years

    new_dir = (
        data_dir / "parquet-versions" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    )
    new_dir.mkdir(parents=True)
    for table in YEAR_TABLES:
        all_years = set(years) | _years_in(previous_dir, table)
        for year in sorted(all_years):
            target = new_dir / table / f"year={year}" / "part-0.parquet"
            if year not in years:
                _link_or_copy(
                    previous_dir / table / f"year={year}" / "part-0.parquet", target
                )
                continue
            replaced = {agency_id for agency_id, y in rewrite if y == year}
            kept = (
                None
                if force
                else _read_year(previous_dir, table, year, exclude=replaced)
            )
            added = _to_arrow(
                table,
                [
                    fresh[s.url].rows[table]
                    for key, s in primary.items()
                    if key[1] == year and key in rewrite and s.url in fresh
                ],
            )
            _write_year(target, kept, [added] if added.num_rows else [])
    _write_agencies(new_dir / "agencies" / "part-0.parquet", primary.values())

    _publish(current_link, new_dir)
    _save_state(state_path, states)
    _prune_versions(data_dir / "parquet-versions", keep=new_dir)

    summary.version_dir = str(new_dir)
    summary.reports = len(primary)
    summary.statuses = dict(Counter(s.status for s in primary.values()))
    summary.checks_failed = sum(
        1 for s in primary.values() if s.status == "checks_failed"
    )
    summary.unreadable = [(s.url, s.error) for s in states.values() if s.error]
    summary.rows = {t: _count_rows(new_dir / t) for t in ("reports", *TABLES)}
    summary.seconds = time.monotonic() - started
    return summary


def _same_schema(version_dir: Path) -> bool:
    for path in version_dir.glob("*/year=*/part-0.parquet"):
        table = path.parent.parent.name
        if table in DATASET_TABLES and not pq.read_schema(path).equals(
            arrow_schema(table)
        ):
            return False
    return True


def _years_in(version_dir: Path | None, table: str) -> set[int]:
    if version_dir is None or not (version_dir / table).exists():
        return set()
    return {int(p.name.split("=", 1)[1]) for p in (version_dir / table).glob("year=*")}


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _read_year(
    version_dir: Path | None, table: str, year: int, exclude: set[str]
) -> pa.Table | None:
    if version_dir is None:
        return None
    path = version_dir / table / f"year={year}" / "part-0.parquet"
    if not path.exists():
        return None
    existing = pq.read_table(path)
    if not exclude:
        return existing
    agency_ids = existing["agency_id"].cast(pa.string())
    mask = pc.invert(
        pc.is_in(agency_ids, value_set=pa.array(sorted(exclude), pa.string()))
    )
    return existing.filter(mask)


def _write_year(target: Path, kept: pa.Table | None, added: list[pa.Table]) -> None:
    parts = added
    if kept is not None and kept.num_rows:
        parts = [kept.cast(added[0].schema) if added else kept, *added]
    if not parts:
        return
    combined = pa.concat_tables(parts).unify_dictionaries().combine_chunks()
    if combined.num_rows == 0:
        return
    # A stable sort keeps each report's cells in template order within its agency.
    combined = combined.take(pc.sort_indices(combined["agency_id"]))
    _write_parquet(combined, target)


def _write_parquet(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    pq.write_table(
        table,
        temporary,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        use_dictionary=True,
        write_statistics=True,
    )
    temporary.replace(target)


def _write_agencies(target: Path, primaries: Iterable[_SourceState]) -> None:
    latest: dict[str, dict] = {}
    for state in sorted(primaries, key=lambda s: s.year or 0):
        latest[state.agency_id] = state.agency
    schema = arrow_schema("agencies")
    columns = {
        name: [latest[a].get(name) for a in sorted(latest)] for name in schema.names
    }
    _write_parquet(pa.table(columns, schema=schema), target)


def _publish(link: Path, version_dir: Path) -> None:
    """Point ``parquet`` at the new version in one atomic rename."""
    if link.exists() and not link.is_symlink():
        raise RuntimeError(
            f"{link} is a directory, not the dataset symlink; move it away"
        )
    temporary = link.with_name(".parquet.new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(version_dir.relative_to(link.parent))
    temporary.replace(link)


def _prune_versions(versions: Path, keep: Path) -> None:
    for directory in versions.iterdir():
        if directory != keep:
            shutil.rmtree(directory, ignore_errors=True)


def _count_rows(table_dir: Path) -> int:
    return sum(
        pq.ParquetFile(p).metadata.num_rows for p in table_dir.glob("year=*/*.parquet")
    )
