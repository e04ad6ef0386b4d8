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
