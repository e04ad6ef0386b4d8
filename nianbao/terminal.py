"""One report on one terminal screen: metadata, the three tables, checks and problems."""

from __future__ import annotations

import pandas as pd

from extract.catalogue import TABLES, short_labels_zh, table_catalogue
from extract.report import Report


def number_text(value) -> str:
    """A cell value as the screen shows it: · for blank, no trailing .0."""
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
    short = short_labels_zh()
    header = " " * width + "".join(
        f"{short.get((table, c), c)[:8]:>9}" for c in columns
    )
    lines = [header]
    for row in rows:
        cells = "".join(f"{number_text(values.get((row, c))):>9}" for c in columns)
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
        if catalogue.of_kind("block"):
            # Each block (第二十条 item) has columns of its own: one line per row.
            for row in dict.fromkeys(df["row"]):
                part = df[df["row"] == row]
                cells = "  ".join(
                    f"{c}={number_text(v)}"
                    for c, v in zip(part["column"], part["value"], strict=True)
                )
                lines.append(f"{row:<20}{cells}")
        else:
            order = [e.code for e in catalogue.of_kind(catalogue.row_kind)]
            columns = dict.fromkeys(e.code for e in catalogue.of_kind("column"))
            lines += _grid(df, table, order, list(columns))
    lines.append(
        "checks: " + ", ".join(f"{n} {s}" for s, n in sorted(checks.items()))
        if checks
        else "checks: none"
    )
    failed = report.checks[report.checks["status"] == "fail"]
    for row in failed.itertuples():
        lines.append(
            f"  FAIL {row.check} [{row.subject}]: parts {number_text(row.expected)} ≠ total {number_text(row.found)}"
        )
    for problem in report.problems:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines) + "\n"
