"""The ``nianbao`` command: a thin shell over the library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pandas as pd

from extract.catalogue import TABLES, table_catalogue
from extract.report import Report, parse_report
from extract.schema import CELL_COLUMNS, render_schema_markdown

_SHORT_COLUMNS = {
    "natural_person": "自然人",
    "commercial_enterprise": "商业",
    "research_institution": "科研",
    "public_interest_org": "公益",
    "legal_service_org": "法律",
    "other_org": "其他",
    "total": "总计",
}


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
        columns = ["file", "table", *[c.name for c in CELL_COLUMNS]]
        pd.concat(frames, ignore_index=True)[columns].to_csv(sys.stdout, index=False)
    else:
        for path, report in reports:
            click.echo(render_summary(path.name, report))


@main.command()
def schema() -> None:
    """Print the data schema as Markdown (the source of docs/schema.md).

    Example:

        nianbao schema > docs/schema.md
    """
    click.echo(render_schema_markdown(), nl=False)


def _data_dir_option(function):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default: $NIANBAO_DATA or ./data).",
    )(function)


def _resolve_data_dir(data_dir: Path | None) -> Path:
    from crawler.paths import data_dir as default_data_dir

    return data_dir if data_dir is not None else default_data_dir()


@main.command("extract")
@click.option(
    "--all", "force", is_flag=True, help="Extract every archived report again."
)
@click.option(
    "--workers", type=int, default=None, help="Worker processes (default: all cores)."
)
@_data_dir_option
def extract_command(force: bool, workers: int | None, data_dir: Path | None) -> None:
    """Build the Parquet dataset from the raw archive, offline.

    Only reports whose archived bytes or extractor version changed are extracted again;
    prints progress and a summary, and exits 2 when an archived record was unreadable.

    Example:

        nianbao extract --all
    """
    from extract.nightly import EXIT_EXTRACT_FAILED, extract_archive

    summary = extract_archive(_resolve_data_dir(data_dir), force=force, workers=workers)
    click.echo(summary.render())
    sys.exit(0 if summary.ok else EXIT_EXTRACT_FAILED)


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
@click.option("--workers", type=int, default=None, help="Extraction worker processes.")
@_data_dir_option
def run_command(
    sites: tuple[str, ...],
    mirror: str | None,
    demo: bool,
    workers: int | None,
    data_dir: Path | None,
) -> None:
    """The nightly job: crawl (SITE... or all), then extract, under a lock.

    Writes runs/<run id>.json; exits 1 when a site broke, 2 when extraction failed (3 for
    both) and 75 when another run is in progress.

    Example:

    \b
        nianbao run                 # cron: every site, then the dataset
        nianbao run --demo          # the bundled snapshot, no internet needed
    """
    from extract.nightly import EXIT_LOCKED, AlreadyRunningError, nightly_run

    directory = _resolve_data_dir(data_dir)
    try:
        if demo:
            from extract.demo import DEMO_CRAWL_SETTINGS, demo_mirror

            with demo_mirror() as url:
                code, _ = nightly_run(
                    directory, sites or ("all",), mirror=url,
                    crawl_settings=DEMO_CRAWL_SETTINGS, workers=workers,
                )  # fmt: skip
        else:
            code, _ = nightly_run(
                directory, sites or ("all",), mirror=mirror, workers=workers
            )
    except AlreadyRunningError as error:
        click.echo(f"nianbao run: {error}", err=True)
        sys.exit(EXIT_LOCKED)
    sys.exit(code)


def _number(value) -> str:
    if value is None or value is pd.NA or value != value:
        return "·"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _grid(
    df: pd.DataFrame, table: str, row_order: list[str], columns: list[str]
) -> list[str]:
    values = {
        (r, c): v for r, c, v in zip(df["row"], df["column"], df["value"], strict=True)
    }
    rows = [r for r in row_order if any((r, c) in values for c in columns)]
    width = max((len(r) for r in rows), default=4)
    header = " " * width + "".join(
        f"{_SHORT_COLUMNS.get(c, c)[:8]:>9}" for c in columns
    )
    lines = [header]
    for row in rows:
        cells = "".join(f"{_number(values.get((row, c))):>9}" for c in columns)
        lines.append(f"{row:<{width}}{cells}")
    return lines


def render_summary(name: str, report: Report) -> str:
    """One screen about one report: metadata, the three tables, checks and problems."""
    checks = report.checks["status"].value_counts().to_dict()
    formats = ", ".join(f"{t} {f or '—'}" for t, f in report.formats.items())
    lines = [
        f"== {name} ==",
        report.title or "(no title found)",
        f"agency {report.agency or '?'} · year {report.year or '?'} · published "
        f"{report.publish_date or '?'} · {report.source_format}"
        + (f", {report.encoding}" if report.encoding else ""),
        f"status {report.status} · formats: {formats}",
    ]
    for table in TABLES:
        df = report.tables[table]
        if df.empty:
            continue
        lines.append(f"-- {table} ({len(df)} cells)")
        catalogue = table_catalogue(table)
        if table == "active_disclosure":
            for row in dict.fromkeys(df["row"]):
                part = df[df["row"] == row]
                cells = "  ".join(
                    f"{c}={_number(v)}"
                    for c, v in zip(part["column"], part["value"], strict=True)
                )
                lines.append(f"{row:<20}{cells}")
        elif table == "applications":
            order = [e.code for e in catalogue.of_kind("row")]
            lines += _grid(df, table, order, list(_SHORT_COLUMNS))
        else:
            order = [e.code for e in catalogue.of_kind("column_group")]
            lines += _grid(
                df, table, order, [e.code for e in catalogue.of_kind("column")]
            )
    lines.append(
        "checks: " + ", ".join(f"{n} {s}" for s, n in sorted(checks.items()))
        if checks
        else "checks: none"
    )
    failed = report.checks[report.checks["status"] == "fail"]
    for row in failed.itertuples():
        lines.append(
            f"  FAIL {row.check} [{row.subject}]: parts {_number(row.expected)} ≠ total {_number(row.found)}"
        )
    for problem in report.problems:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines) + "\n"


from crawler.cli import crawl  # noqa: E402

main.add_command(crawl)


if __name__ == "__main__":
    main()
