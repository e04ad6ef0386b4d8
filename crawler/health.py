"""Each site's health over time, from the manifest: last run, reports per year, failures, drops.

A site is flagged DROP when its last run found fewer reports than its best earlier run (in
all, or in a report year): the zero-report alarm of the crawl, generalised to any drop and
kept until a run finds as many again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from crawler.archive.reader import site_places
from crawler.archive.remote import readable_manifest
from crawler.paths import archive_dir
from crawler.registry import Place, declared_sites
from nianbao_common.storage import RemotePath

# Failure reasons shown per site, at most.
_REASONS_SHOWN = 3


@dataclass(slots=True)
class LastRun:
    """A site's last run, as its ``runs`` row and its failures say."""

    run_id: str
    started_at: str
    finished_at: str | None
    ok: bool
    error: str | None
    reports_found: int
    failed: int
    years: dict[int | None, int]
    reasons: list[str]
    """The commonest failure reasons of the run, with their counts."""


@dataclass(slots=True)
class SiteHealth:
    """One site: its declaration (if any), its last run and what its history expects."""

    site: str
    place: Place | None
    declared: bool
    in_all: bool
    note: str
    runs: int = 0
    last: LastRun | None = None
    best: int = 0
    """The most reports an earlier run found."""
    best_years: dict[int | None, int] = field(default_factory=dict)
    """Per report year, the most an earlier run found."""

    @property
    def drops(self) -> list[str]:
        """The report years (or the total) where the last run found fewer than before."""
        if self.last is None or self.last.error:
            return []
        fewer = [
            f"{year}: {self.last.years.get(year, 0)} of {best}"
            for year, best in sorted(self.best_years.items(), key=lambda i: i[0] or 0)
            if self.last.years.get(year, 0) < best
        ]
        if fewer or self.last.reports_found < self.best:
            return [f"{self.last.reports_found} of {self.best}", *fewer]
        return []

    @property
    def status(self) -> str:
        """never run, running (or killed), ERROR, DROP or ok."""
        if self.last is None:
            return "never run"
        if self.last.finished_at is None:
            return "running or killed"
        if self.last.error:
            return "ERROR"
        return "DROP" if self.drops else "ok"


def site_health(
    data_dir: str | Path | RemotePath | None = None,
) -> list[SiteHealth]:
    """Every declared site and every site the manifest knows (ad hoc columns too).

    ``data_dir``: the data location, a path or a URL (default ``$NIANBAO_DATA``).
    """
    sites = {
        name: SiteHealth(name, s.place, True, s.in_all, s.note)
        for name, s in declared_sites().items()
    }
    with readable_manifest(archive_dir(data_dir)) as path:
        if path.is_file():
            _read_runs(path, sites)
    return sorted(sites.values(), key=lambda h: h.site)


def _read_runs(path: Path, sites: dict[str, SiteHealth]) -> None:
    """Each run of the manifest ``path`` into the health of its site."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        for name, place in site_places(con).items():
            health = sites.setdefault(name, SiteHealth(name, place, False, False, ""))
            health.place = health.place or place
        runs = con.execute(
            "SELECT * FROM runs ORDER BY site, started_at, run_id"
        ).fetchall()
        years = _run_years(con)
        for row in runs:
            health = sites.setdefault(
                row["site"], SiteHealth(row["site"], None, False, False, "")
            )
            health.runs += 1
            if health.last is not None and health.last.finished_at:
                health.best = max(health.best, health.last.reports_found)
                for year, n in health.last.years.items():
                    health.best_years[year] = max(health.best_years.get(year, 0), n)
            health.last = _last_run(con, row, years)
    finally:
        con.close()


def _run_years(con: sqlite3.Connection) -> dict[tuple[str, str], dict]:
    try:
        rows = con.execute("SELECT * FROM run_years").fetchall()
    except sqlite3.OperationalError:  # a manifest from before run_years
        return {}
    years: dict[tuple[str, str], dict] = {}
    for row in rows:
        years.setdefault((row["run_id"], row["site"]), {})[row["report_year"]] = row[
            "reports"
        ]
    return years


def _last_run(con: sqlite3.Connection, row: sqlite3.Row, years: dict) -> LastRun:
    reasons = con.execute(
        "SELECT error, count(*) FROM failures WHERE run_id = ? AND site = ? "
        "GROUP BY error ORDER BY count(*) DESC, error LIMIT ?",
        (row["run_id"], row["site"], _REASONS_SHOWN),
    ).fetchall()
    failed = con.execute(
        "SELECT count(*) FROM failures WHERE run_id = ? AND site = ?",
        (row["run_id"], row["site"]),
    ).fetchone()[0]
    return LastRun(
        run_id=row["run_id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        ok=bool(row["ok"]),
        error=row["error"],
        reports_found=row["reports_found"] or 0,
        failed=failed,
        years=years.get((row["run_id"], row["site"]), {}),
        reasons=[f"{n}× {error}" for error, n in reasons],
    )


def render(sites: list[SiteHealth]) -> str:
    """One block per site: place, last run, reports per year, failures, the flag."""
    lines = []
    for health in sites:
        place = health.place
        where = "place unknown"
        if place is not None:
            names = dict.fromkeys(
                n for n in (place.province, place.city, place.district) if n
            )
            where = f"{''.join(names)} ({place.division_code})"
        scope = "in all" if health.in_all else "not in all"
        if not health.declared:
            scope = "not declared (an ad hoc column or a removed site)"
        elif health.note and not health.in_all:
            scope += f": {health.note}"
        lines.append(f"{health.site}  {where}, {scope}")
        last = health.last
        if last is None:
            lines.append("  never crawled")
            continue
        lines.append(
            f"  last run {last.run_id} ({health.runs} in all): {health.status}, "
            f"{last.reports_found} reports found, {last.failed} failed"
        )
        if last.years:
            per_year = ", ".join(
                f"{year or 'year unknown'}: {n}"
                for year, n in sorted(last.years.items(), key=lambda i: i[0] or 0)
            )
            lines.append(f"  per report year: {per_year}")
        lines.extend(f"  failed: {reason}" for reason in last.reasons)
        if last.error:
            lines.append(f"  ERROR: {last.error}")
        if health.drops:
            lines.append(
                f"  DROP: fewer reports than its best earlier run: {'; '.join(health.drops)}"
            )
    flagged = [h.site for h in sites if h.status in ("ERROR", "DROP")]
    lines.append(
        f"{len(flagged)} site(s) flagged: {', '.join(flagged)}"
        if flagged
        else "no site flagged"
    )
    return "\n".join(lines)
