"""The ``nianbao`` command: a thin shell over the library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from crawler.cli import capture, crawl, sites
from nianbao_common.limits import DEFAULT_KEEP, Limits
from nianbao_common.paths import data_location, local_dir

# Commands import what they use when they run: `nianbao --help` and `nianbao parse`
# must not pay for pyarrow, the dataset or the exporters.
EXPORT_FORMATS = ("csv", "xlsx", "dta", "jsonl")
EXPORT_TABLES = (
    "reports, agencies, active_disclosure, applications, reviews_litigation, checks, "
    "cross_year_checks, sections, reports_wide"
)


@click.group()
@click.version_option(package_name="nianbao")
def main() -> None:
    """nianbao: government information disclosure annual reports as data."""


@main.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["summary", "json", "csv"]),
    default="summary",
    show_default=True,
    help="summary: one screen per file; json: one object per line; csv: the long cell frames.",
)
def parse(files: tuple[Path, ...], output_format: str) -> None:
    """Extract report documents (HTML or text) into canonical cells.

    Example:

        nianbao parse report.html --format json
    """
    from extract.report import parse_report

    reports = (
        (path, parse_report(path.read_bytes(), url=path.resolve().as_uri()))
        for path in files
    )
    if output_format == "json":
        for _, report in reports:
            click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    elif output_format == "csv":
        frames = []
        for path, report in reports:
            for table, df in report.tables.items():
                frames.append(df.assign(file=str(path), table=table))
        import pandas as pd

        from extract.schema import CELL_COLUMNS

        columns = ["file", "table", *[c.name for c in CELL_COLUMNS]]
        pd.concat(frames, ignore_index=True)[columns].to_csv(sys.stdout, index=False)
    else:
        from nianbao.terminal import render_summary

        for path, report in reports:
            click.echo(render_summary(path.name, report))


@main.command()
def schema() -> None:
    """Print the data schema as Markdown (the source of docs/schema.md).

    Example:

        nianbao schema > docs/schema.md
    """
    from extract.schema import render_schema_markdown

    click.echo(render_schema_markdown(), nl=False)


def _data_dir_option(function):
    return click.option(
        "--data-dir",
        metavar="PATH|URL",
        default=None,
        help="Data directory, or a URL such as s3://bucket/prefix for the dataset "
        "(default: $NIANBAO_DATA or ./data).",
    )(function)


def _resolve_data_dir(data_dir: str | None):
    """The data location: a Path, or a RemotePath for a URL."""
    try:
        return data_location(data_dir)
    except (RuntimeError, ValueError, ImportError) as error:
        raise click.BadParameter(str(error), param_hint="--data-dir") from error


def _extract_options(function):
    """Options shared by ``extract`` and ``run``: workers and per-document limits."""
    for option in reversed(
        [
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=None,
                help="Extraction worker processes (default: all cores).",
            ),
            click.option(
                "--time-limit",
                type=click.FloatRange(min=1),
                default=Limits.document_seconds,
                envvar="NIANBAO_TIME_LIMIT",
                show_default=True,
                help="Seconds one document may take (plus --ocr-page-seconds a PDF "
                "or image page); past it the report's status is timeout.",
            ),
            click.option(
                "--ocr-page-seconds",
                type=click.FloatRange(min=0),
                default=Limits.ocr_page_seconds,
                envvar="NIANBAO_OCR_PAGE_SECONDS",
                show_default=True,
                help="Extra seconds per PDF or image page, for OCR.",
            ),
            click.option(
                "--memory-limit",
                type=click.IntRange(min=256),
                default=Limits.memory_bytes >> 20,
                envvar="NIANBAO_MEMORY_LIMIT_MB",
                show_default=True,
                help="MiB of address space per worker; past it the status is too_large.",
            ),
            click.option(
                "--scheduler",
                metavar="tcp://HOST:8786",
                envvar="DASK_SCHEDULER_ADDRESS",
                default=None,
                help="Extract on this Dask cluster (pip install -e '.[cluster]'); "
                "default: worker processes on this machine.",
            ),
            click.option(
                "--keep-versions",
                type=click.IntRange(min=1),
                default=DEFAULT_KEEP,
                envvar="NIANBAO_KEEP_VERSIONS",
                show_default=True,
                help="Dataset versions kept for --rollback.",
            ),
        ]
    ):
        function = option(function)
    return function


def _limits(time_limit: float, ocr_page_seconds: float, memory_limit: int) -> Limits:
    return Limits(
        document_seconds=time_limit,
        ocr_page_seconds=ocr_page_seconds,
        memory_bytes=memory_limit << 20,
    )


@main.command("extract")
@click.option(
    "--all", "force", is_flag=True, help="Extract every archived report again."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be extracted again and why; change nothing.",
)
@click.option("--diff", is_flag=True, help="Also list every changed cell.")
@click.option("--versions", is_flag=True, help="List the kept dataset versions.")
@click.option("--rollback", metavar="ID", help="Make a kept version current again.")
@_extract_options
@_data_dir_option
def extract_command(
    force: bool,
    dry_run: bool,
    diff: bool,
    versions: bool,
    rollback: str | None,
    workers: int | None,
    time_limit: float,
    ocr_page_seconds: float,
    memory_limit: int,
    scheduler: str | None,
    keep_versions: int,
    data_dir: str | None,
) -> None:
    """Build the Parquet dataset from the raw archive, offline.

    Only documents whose archived bytes, extractor code or converters changed are
    extracted again. Prints progress, a summary and what changed, writes
    runs/<run id>.json, and exits 2 when a document failed (error, timeout, too_large)
    or the dataset could not be published, 75 when another run holds the lock.

    Example:

    \b
        nianbao extract --dry-run      # what would be extracted again, and why
        nianbao extract --diff         # extract, then list the changed cells
        nianbao extract --versions     # the kept versions
        nianbao extract --scheduler tcp://10.0.0.5:8786 --data-dir s3://b/nianbao
    """
    from nianbao.nightly import (
        EXIT_EXTRACT_FAILED,
        AlreadyRunningError,
        driver_lock,
        extract_archive,
        extract_errors,
        extract_problem,
        extract_record,
        new_run_id,
        write_run_record,
    )

    directory = _resolve_data_dir(data_dir)
    from extract.dataset.store import DatasetStore

    store = DatasetStore(directory)
    if versions:
        _print_versions(store)
        return
    try:
        with driver_lock(directory) as still_held:
            if rollback:
                info = store.rollback(rollback)
                click.echo(f"dataset version {info.id} is current again")
                return
            summary = extract_archive(
                directory,
                force=force,
                workers=workers,
                limits=_limits(time_limit, ocr_page_seconds, memory_limit),
                keep_versions=keep_versions,
                dry_run=dry_run,
                scheduler=scheduler,
                before_publish=still_held,
            )
    except AlreadyRunningError as error:
        click.echo(f"nianbao extract: {error}", err=True)
        sys.exit(error.exit_code)
    except extract_errors() as error:
        click.echo(f"nianbao extract: {extract_problem(error, directory)}", err=True)
        sys.exit(EXIT_EXTRACT_FAILED)
    click.echo(summary.render())
    if dry_run:
        assert summary.plan is not None
        for url, reason in summary.plan.extract.items():
            click.echo(f"  {reason}: {url}")
        return
    if diff:
        _print_cell_changes(summary.changes.cells)
    run_id = new_run_id()
    record = {"run_id": run_id, "command": "extract", **extract_record(summary)}
    path = write_run_record(local_dir(directory), f"{run_id}-extract", record)
    click.echo(f"run summary: {path}", err=True)
    sys.exit(0 if summary.ok else EXIT_EXTRACT_FAILED)


def _print_versions(store) -> None:
    current = store.current_id()
    kept = store.versions()
    if not kept:
        click.echo(
            f"no dataset version under {store.data_dir}; `nianbao extract` builds one"
        )
        return
    click.echo(
        f"{'':2}{'id':<24} {'created':<26} {'reports':>8} {'cells':>10}  extractor"
    )
    for info in kept:
        mark = "* " if info.id == current else "  "
        click.echo(
            f"{mark}{info.id:<24} {info.created_at:<26} {info.reports:>8,} "
            f"{info.cells:>10,}  {info.extractor_version}"
        )


def _print_cell_changes(cells: list[dict]) -> None:
    from nianbao.terminal import number_text

    if not cells:
        click.echo("no cell changed")
        return
    click.echo(
        f"{len(cells)} changed cells (agency, year, table, row, column: old → new):"
    )
    for cell in cells:
        click.echo(
            f"  {cell['agency_id']} {cell['year']} {cell['table']} {cell['row']} "
            f"{cell['column']}: {number_text(cell['old'])} → {number_text(cell['new'])}"
        )


@main.command("export")
@click.option(
    "--format", "output_format", type=click.Choice(EXPORT_FORMATS), required=True,
    help="csv (UTF-8 with BOM, one file per table), xlsx (one sheet per table), "
    "dta (Stata 14+, Chinese variable labels) or jsonl.",
)  # fmt: skip
@click.option(
    "--table", "tables", multiple=True, metavar="TABLE",
    help=f"Only these tables (repeatable): {EXPORT_TABLES}.",
)  # fmt: skip
@click.option("--year", "years", type=int, multiple=True, help="Only these years.")
@click.option(
    "--district",
    "districts",
    multiple=True,
    help="Only these districts (西城区, 西城, 110102).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None,
    help="Folder to write (default: <data dir>/exports/<format>-<time>); must not exist.",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Write into --out even if it exists.")
@_data_dir_option
def export_command(
    output_format: str,
    tables: tuple[str, ...],
    years: tuple[int, ...],
    districts: tuple[str, ...],
    out: Path | None,
    overwrite: bool,
    data_dir: str | None,
) -> None:
    """Export the dataset for Stata, R, Excel or any JSON reader, with a dictionary.

    Writes the long tables, ``reports_wide`` (one row per report, one variable per cell,
    names valid in Stata and R such as app_new_received_total) and a dictionary of every
    variable in Chinese and English.

    Example:

    \b
        nianbao export --format dta --district 西城区 --out xicheng-stata
        nianbao export --format xlsx --year 2023 --year 2024
    """
    from datetime import UTC, datetime

    from extract.export import ExportError, export
    from extract.loader import DatasetNotFoundError, UnknownFilterError

    directory = _resolve_data_dir(data_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = out or local_dir(directory) / "exports" / f"{output_format}-{stamp}"
    try:
        written = export(
            target, output_format, tables=tables, year=list(years) or None,
            district=list(districts) or None, data_dir=directory, overwrite=overwrite,
        )  # fmt: skip
    except (ExportError, DatasetNotFoundError, UnknownFilterError) as error:
        click.echo(f"nianbao export: {error}", err=True)
        sys.exit(2)
    click.echo(f"exported {len(written)} files to {target}:")
    for path in written:
        click.echo(f"  {path.name}")


@main.command("report")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder for the page and PNGs (default: <data dir>/report).",
)  # fmt: skip
@_data_dir_option
def report_command(out: Path | None, data_dir: str | None) -> None:
    """Write the coverage and quality report: one HTML page with its charts, and PNGs.

    Reports per site and year by status, the share of reports whose checks fail per
    year, and requests received and the share granted per district (district
    governments' own reports).

    Example:

        nianbao report && xdg-open data/report/coverage.html
    """
    from extract.coverage import REPORT_DIR, write_report
    from extract.loader import DatasetNotFoundError

    directory = _resolve_data_dir(data_dir)
    try:
        page = write_report(directory, out or local_dir(directory) / REPORT_DIR)
    except DatasetNotFoundError as error:
        click.echo(f"nianbao report: {error}", err=True)
        sys.exit(2)
    click.echo(f"report: {page}")


@main.command("run")
@click.argument("sites", nargs=-1)
@click.option(
    "--mirror",
    metavar="URL",
    help="Crawl a local mirror laid out as URL/{host}/{path}.",
)
@click.option(
    "--demo", is_flag=True, help="Crawl the bundled snapshot served on 127.0.0.1."
)
@_extract_options
@_data_dir_option
def run_command(
    sites: tuple[str, ...],
    mirror: str | None,
    demo: bool,
    workers: int | None,
    time_limit: float,
    ocr_page_seconds: float,
    memory_limit: int,
    scheduler: str | None,
    keep_versions: int,
    data_dir: str | None,
) -> None:
    """The nightly job: crawl (SITE... or all), then extract, under a lock.

    Writes runs/<run id>.json; exits 1 when a site broke, 2 when extraction failed (3 for
    both) and 75 when another run is in progress.

    Example:

    \b
        nianbao run                 # cron: every site, then the dataset
        nianbao run --demo          # the bundled snapshot, no internet needed
        nianbao run --scheduler tcp://10.0.0.5:8786 --data-dir s3://b/nianbao
    """
    from extract.dataset.store import DatasetStoreError
    from nianbao.nightly import EXIT_EXTRACT_FAILED, AlreadyRunningError, nightly_run

    directory = _resolve_data_dir(data_dir)
    limits = _limits(time_limit, ocr_page_seconds, memory_limit)
    try:
        if demo:
            from nianbao.demo import DEMO_CRAWL_SETTINGS, demo_mirror, mark_synthetic

            mark_synthetic(directory)
            with demo_mirror() as url:
                code, _ = nightly_run(
                    directory, sites or ("all",), mirror=url,
                    crawl_settings=DEMO_CRAWL_SETTINGS, workers=workers,
                    limits=limits, keep_versions=keep_versions, scheduler=scheduler,
                )  # fmt: skip
        else:
            code, _ = nightly_run(
                directory, sites or ("all",), mirror=mirror, workers=workers,
                limits=limits, keep_versions=keep_versions, scheduler=scheduler,
            )  # fmt: skip
    except AlreadyRunningError as error:
        click.echo(f"nianbao run: {error}", err=True)
        sys.exit(error.exit_code)
    except DatasetStoreError as error:
        # The lease on object storage could not be taken: nothing ran.
        click.echo(f"nianbao run: {error}", err=True)
        sys.exit(EXIT_EXTRACT_FAILED)
    sys.exit(code)


main.add_command(crawl)
main.add_command(capture)
main.add_command(sites)


if __name__ == "__main__":
    main()
