"""The coverage and quality report: what the dataset holds and what it says, as one HTML page.

Three pictures, each drawn from a frame that the tests compare with the dataset:

- coverage: reports per site and year, by status (a heat map);
- quality: per year, the share of reports whose identities fail, or that were read only
  in part;
- headline: per district and year, requests received and the share granted, from the
  district government's own report (``agency_kind`` = government) only.

The page embeds its charts, so it can be mailed or archived as one file; the PNGs sit
beside it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from extract.loader import load
from nianbao_common.paths import local_dir
from nianbao_common.storage import RemotePath

REPORT_DIR = "report"
PAGE = "coverage.html"
_CJK_FONTS = [
    "Noto Sans CJK SC",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "DejaVu Sans",
]


def coverage(data_dir: Path | RemotePath | None = None) -> pd.DataFrame:
    """Reports per site, year and status (one row each)."""
    reports = load("reports", columns=["site", "year", "status"], data_dir=data_dir)
    return (
        reports.astype({"site": str, "status": str})
        .groupby(["site", "year", "status"])
        .size()
        .rename("reports")
        .reset_index()
    )


def quality(data_dir: Path | RemotePath | None = None) -> pd.DataFrame:
    """Per year: reports, and the shares that fail a check or were read in part."""
    reports = load("reports", columns=["year", "status"], data_dir=data_dir)
    status = reports["status"].astype(str)
    frame = pd.DataFrame(
        {
            "year": reports["year"],
            "checks_failed": status == "checks_failed",
            "partial_or_worse": status.isin(
                ["partial", "no_tables", "error", "timeout", "too_large"]
            ),
        }
    )
    grouped = frame.groupby("year")
    return pd.DataFrame(
        {
            "reports": grouped.size(),
            "share_checks_failed": grouped["checks_failed"].mean(),
            "share_partial_or_worse": grouped["partial_or_worse"].mean(),
        }
    ).reset_index()


def headline(data_dir: Path | RemotePath | None = None) -> pd.DataFrame:
    """Per district and year, from the district government's report: received, granted."""
    reports = load(
        "reports",
        columns=["agency_id", "year", "district", "agency_kind"],
        data_dir=data_dir,
    )
    governments = reports[reports["agency_kind"].astype(str) == "government"]
    cells = load(
        "applications",
        columns=["agency_id", "year", "row", "column", "value"],
        data_dir=data_dir,
    )
    cells = cells[cells["column"].astype(str) == "total"]
    cells = cells.assign(
        row=cells["row"].astype(str), agency_id=cells["agency_id"].astype(str)
    )
    wide = cells.pivot_table(
        index=["agency_id", "year"], columns="row", values="value", aggfunc="first"
    )
    for row in ("new_received", "granted", "total_handled"):
        if row not in wide.columns:
            wide[row] = float("nan")
    governments = governments.assign(agency_id=governments["agency_id"].astype(str))
    merged = governments.merge(wide.reset_index(), on=["agency_id", "year"], how="left")
    merged["share_granted"] = merged["granted"] / merged["total_handled"]
    return (
        merged[
            [
                "district",
                "year",
                "new_received",
                "granted",
                "total_handled",
                "share_granted",
            ]
        ]
        .astype({"district": str})
        .sort_values(["district", "year"])
        .reset_index(drop=True)
    )


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _charts(
    cover: pd.DataFrame, rates: pd.DataFrame, heads: pd.DataFrame
) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = _CJK_FONTS
    plt.rcParams["axes.unicode_minus"] = False
    charts = {}

    totals = cover.pivot_table(
        index="site", columns="year", values="reports", aggfunc="sum"
    )
    good = (
        cover[cover["status"].isin(["ok", "checks_failed"])]
        .pivot_table(index="site", columns="year", values="reports", aggfunc="sum")
        .reindex_like(totals)
    )
    figure, axis = plt.subplots(
        figsize=(1.2 + 0.6 * len(totals.columns), 1 + 0.45 * len(totals))
    )
    axis.imshow(totals.fillna(0).to_numpy(), cmap="Blues", aspect="auto")
    for i, site in enumerate(totals.index):
        for j, year in enumerate(totals.columns):
            count = totals.loc[site, year]
            if count == count:
                read = good.loc[site, year]
                axis.text(j, i, f"{int(count)}\n({int(read if read == read else 0)} ok)",
                          ha="center", va="center", fontsize=7)  # fmt: skip
    axis.set_xticks(range(len(totals.columns)), [str(y) for y in totals.columns])
    axis.set_yticks(range(len(totals.index)), list(totals.index))
    axis.set_title("Reports per site and year (read in full)")
    charts["coverage.png"] = _png(figure)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.plot(
        rates["year"], rates["share_checks_failed"], marker="o", label="checks fail"
    )
    axis.plot(rates["year"], rates["share_partial_or_worse"], marker="s",
              label="read in part or not at all")  # fmt: skip
    axis.set_ylim(0, 1)
    axis.set_ylabel("share of reports")
    axis.legend()
    axis.set_title("Report quality by year")
    charts["quality.png"] = _png(figure)
    plt.close(figure)

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    years = (
        range(int(heads["year"].min()), int(heads["year"].max()) + 1)
        if len(heads)
        else range(0)
    )
    for district, part in heads.groupby("district"):
        # A year without a report is a gap in the line, not a straight bridge over it.
        part = part.set_index("year").reindex(years)
        left.plot(part.index, part["new_received"], marker="o", label=district)
        right.plot(part.index, part["share_granted"], marker="o", label=district)
    left.set_title("Requests received (district government)")
    right.set_title("Share granted (予以公开 / 总计)")
    right.set_ylim(0, 1)
    if len(heads):
        left.legend(fontsize=7)
    charts["headline.png"] = _png(figure)
    plt.close(figure)
    return charts


def write_report(data_dir: Path | RemotePath, out: Path | None = None) -> Path:
    """Write the HTML page and its PNGs (default ``report/`` in the local data directory
    of ``data_dir``, which is ``data_dir`` itself on disk); returns the page."""
    out = out or local_dir(data_dir) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    cover, rates, heads = coverage(data_dir), quality(data_dir), headline(data_dir)
    charts = _charts(cover, rates, heads)
    for name, data in charts.items():
        (out / name).write_bytes(data)
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"></figure>'
        for name, data in charts.items()
    )
    tables = "".join(
        f"<h2>{html.escape(title)}</h2>{frame.to_html(index=False, na_rep='', float_format=lambda v: f'{v:.3g}')}"
        for title, frame in (
            ("Reports per site, year and status", cover),
            ("Quality by year", rates),
            ("District governments: requests received and share granted", heads),
        )
    )
    page = out / PAGE
    page.write_text(
        "<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>"
        "<title>nianbao coverage and quality</title><style>body{font-family:sans-serif;"
        "max-width:1100px;margin:2em auto}img{max-width:100%}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
        f"<h1>nianbao: coverage and quality</h1><p>{len(cover)} site-year-status cells, "
        f"{int(cover['reports'].sum())} reports.</p>{images}{tables}</body></html>",
        encoding="utf-8",
    )
    return page
