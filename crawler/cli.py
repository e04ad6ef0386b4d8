"""``nianbao crawl``: run the spiders into the raw archive and print a run summary."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import click

from crawler.archive.record import RunCounts
from crawler.registry import PLATFORMS, DeclarationError, Site, ad_hoc_site
from nianbao_common.paths import data_dir as default_data_dir
from nianbao_common.paths import data_location
from nianbao_common.storage import RemotePath

# The counts shown per site, under _HEADINGS.
_COLUMNS = (
    "list_pages",
    "reports_found",
    "new",
    "changed",
    "unchanged",
    "failed",
    "refused",
    "attachments_new",
)
_HEADINGS = (
    "lists",
    "reports",
    "new",
    "changed",
    "same",
    "failed",
    "refused",
    "attach.",
)


@dataclass(slots=True)
class SiteSummary:
    """One site's counts in one run; ``error`` is set when the site's run is not usable."""

    site: str
    counts: RunCounts = field(default_factory=RunCounts)
    limits: list[str] = field(default_factory=list)
    """Per-site limits reached (NIANBAO_MAX_*), one line each; not an error."""
    notes: list[str] = field(default_factory=list)
    """What the operator should know and is not an error: a list page that redirects to
    another host, a list that renders only part of its documents."""
    warning: str | None = None
    """Fewer reports found than the site's last good run found (not an error)."""
    error: str | None = None
    seconds: float | None = None
    """From the spider's opening to its closing (Scrapy's ``elapsed_time_seconds``)."""

    @property
    def ok(self) -> bool:
        """No error (failed fetches alone are counted, not errors)."""
        return self.error is None

    @property
    def status(self) -> str:
        """ok, DROP (fewer reports than the last good run) or ERROR."""
        if self.error:
            return "ERROR"
        return "DROP" if self.warning else "ok"

    def as_record(self) -> dict:
        """This site in the nightly run record: its counts, the rest, and ``ok``."""
        rest = {k: v for k, v in asdict(self).items() if k not in ("site", "counts")}
        return asdict(self.counts) | rest | {"ok": self.ok}


@dataclass(slots=True)
class CrawlSummary:
    """The counts of one ``run_crawl`` call, per site."""

    run_id: str
    data_dir: Path | RemotePath
    sites: list[SiteSummary] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every site ran without error."""
        return all(s.ok for s in self.sites)

    @property
    def exit_code(self) -> int:
        """0 when ok, 1 otherwise."""
        return 0 if self.ok else 1

    def site(self, name: str) -> SiteSummary:
        """The summary of one site."""
        return next(s for s in self.sites if s.site == name)

    def render(self) -> str:
        """One screen: a row per site, then the limits reached and the errors."""
        width = max([len("site"), *(len(s.site) for s in self.sites)])
        lines = [f"run {self.run_id} · archive {self.data_dir / 'raw'}"]
        lines.append(
            f"{'site':<{width}}" + "".join(f"{h:>9}" for h in _HEADINGS) + "  status"
        )
        for s in self.sites:
            cells = "".join(f"{getattr(s.counts, c):>9}" for c in _COLUMNS)
            lines.append(f"{s.site:<{width}}{cells}  {s.status}")
        for s in self.sites:
            lines.extend(f"LIMIT {s.site}: {note}" for note in s.limits)
        for s in self.sites:
            lines.extend(f"NOTE {s.site}: {note}" for note in s.notes)
        for s in self.sites:
            if s.warning:
                lines.append(f"DROP {s.site}: {s.warning}")
        for s in self.sites:
            if s.error:
                lines.append(f"ERROR {s.site}: {s.error}")
        lines.append(
            "ok" if self.ok else f"{sum(not s.ok for s in self.sites)} site(s) in error"
        )
        return "\n".join(lines)


def spider_names(settings=None, in_all: bool = False) -> list[str]:
    """Every registered spider (of ``SPIDER_MODULES`` in ``settings``, default the project's);
    with ``in_all``, those ``nianbao crawl all`` crawls."""
    from scrapy.spiderloader import SpiderLoader

    from crawler.platforms import declared_site

    loader = SpiderLoader.from_settings(
        settings if settings is not None else scrapy_settings()
    )
    return sorted(
        name
        for name in loader.list()
        if not in_all or declared_site(loader.load(name)).in_all
    )


def scrapy_settings(overrides: dict | None = None):
    """The project's Scrapy settings, with ``overrides`` as if given on the command line."""
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    if overrides:
        settings.setdict(overrides, priority="cmdline")
    return settings


def new_run_id() -> str:
    """A crawl's run id: the UTC time to the microsecond, sortable."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def wanted_sites(
    sites: list[str] | tuple[str, ...], settings, ad_hoc: Site | None = None
) -> list[str]:
    """The spiders a crawl of ``sites`` (names or ``all``) runs; refuses unknown names."""
    names = spider_names(settings)
    if "all" in sites or (not sites and ad_hoc is None):
        wanted = spider_names(settings, in_all=True)
    else:
        wanted = list(dict.fromkeys(sites))
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise click.BadParameter(
            f"unknown site(s) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    return wanted


def run_crawl(
    sites: list[str] | tuple[str, ...],
    mirror: str | None = None,
    data_dir: Path | None = None,
    settings: dict | None = None,
    progress: bool = False,
    ad_hoc: Site | None = None,
    run_id: str | None = None,
) -> CrawlSummary:
    """Crawl the named sites (or ``all``) into ``<data_dir>/raw`` and return the counts.

    ``ad_hoc``: a column no spider declares (``registry.ad_hoc_site``), crawled beside
    the named sites (alone when none is named). ``run_id``: the run's id (default: a new
    one; a crawl shard gets its run's). Starts the Twisted reactor, so it can run once per
    process.

    Example:
        >>> summary = run_crawl(["beijing_xicheng"])           # doctest: +SKIP
        >>> summary.ok, summary.site("beijing_xicheng").counts.new    # doctest: +SKIP
    """
    from scrapy.crawler import CrawlerProcess

    from crawler.platforms import ReportSpider, spider_class

    base = Path(data_dir) if data_dir is not None else default_data_dir()
    run_id = run_id or new_run_id()
    overrides = {"LOG_LEVEL": "WARNING", **(settings or {})}
    overrides.update({"NIANBAO_DATA": str(base), "NIANBAO_RUN_ID": run_id})
    if mirror:
        overrides["NIANBAO_MIRROR"] = mirror
    merged = scrapy_settings(overrides)
    wanted = wanted_sites(sites, merged, ad_hoc)
    process = CrawlerProcess(merged)
    crawlers = []
    targets: list = list(wanted)
    if ad_hoc is not None:
        wanted.append(ad_hoc.name)
        targets.append(spider_class(ad_hoc))
    for target in targets:
        crawler = process.create_crawler(target)
        crawlers.append(crawler)
        process.crawl(crawler)
    if progress:
        _start_progress(crawlers)
    process.start()
    summary = CrawlSummary(run_id=run_id, data_dir=base)
    for name, crawler in zip(wanted, crawlers, strict=True):
        spider = crawler.spider
        if not isinstance(spider, ReportSpider):  # None: it did not start
            summary.sites.append(SiteSummary(name, error="the spider did not start"))
            continue
        row = SiteSummary(
            name,
            replace(spider.counts, reports_found=len(spider.found)),
            limits=spider.limit_notes(),
            notes=list(dict.fromkeys(spider.notes)),
            warning=spider.warning,
            error=spider.final_error,
            seconds=crawler.stats.get_value("elapsed_time_seconds"),
        )
        summary.sites.append(row)
    return summary


def _start_progress(crawlers) -> None:
    from twisted.internet import reactor, task

    def report() -> None:
        parts = []
        for crawler in crawlers:
            spider = crawler.spider
            if spider is not None and hasattr(spider, "counts"):
                c = spider.counts
                parts.append(
                    f"{spider.name}: {c.list_pages} lists, {len(spider.found)} reports, "
                    f"{c.new} new, {c.changed} changed, {c.failed} failed"
                )
        if parts:
            click.echo("… " + " | ".join(parts), err=True)

    loop = task.LoopingCall(report)
    reactor.callWhenRunning(loop.start, 5.0, now=False)


def _location(value: str | None) -> Path | RemotePath:
    """The data location of ``--data-dir`` (else ``$NIANBAO_DATA``, else ./data)."""
    try:
        return data_location(value)
    except (RuntimeError, ValueError, ImportError) as error:
        raise click.BadParameter(str(error), param_hint="--data-dir") from error


def _parse_set(values: tuple[str, ...]) -> dict:
    pairs = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}")
        pairs[key.strip()] = setting
    return pairs


@click.command()
@click.argument("sites", nargs=-1)
@click.option(
    "--mirror",
    metavar="URL",
    help="Fetch from a local mirror laid out as URL/{host}/{path}; the archive keeps the real URLs.",
)
@click.option(
    "--list-url",
    metavar="URL",
    help="Also crawl this report column, which no site declares (needs --division).",
)
@click.option(
    "--division",
    metavar="CODE",
    help="The 6-digit division code (GB/T 2260) of the --list-url column's place.",
)
@click.option(
    "--name",
    "slug",
    metavar="SLUG",
    help="The --list-url column's site name in the archive (default: from its host).",
)
@click.option(
    "--district",
    metavar="NAME",
    help="The district's name, when no declared site has the --division code.",
)
@click.option(
    "--platform",
    type=click.Choice(sorted(PLATFORMS)),
    default="page",
    show_default=True,
    help="The --list-url column's platform: trs also takes report links by URL shape.",
)
@click.option(
    "--data-dir",
    metavar="PATH|URL",
    default=None,
    help="Data directory, or a URL such as s3://bucket/prefix (default: $NIANBAO_DATA "
    "or ./data); the archive is its raw/.",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:8786",
    envvar="DASK_SCHEDULER_ADDRESS",
    default=None,
    help="Crawl on this Dask cluster, a shard of sites per task "
    "(pip install -e '.[cluster]'); default: this process.",
)
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a Scrapy setting.",
)
def crawl(
    sites: tuple[str, ...],
    mirror: str | None,
    list_url: str | None,
    division: str | None,
    slug: str | None,
    district: str | None,
    platform: str,
    data_dir: str | None,
    scheduler: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Crawl district sites (SITE... or all) or a report column into the raw archive.

    Prints progress while running and a one-screen summary at the end; exits 1 when a site
    is in error (for example it found no reports where earlier runs found some). With
    --list-url, a column no site declares is crawled the same way, as site SLUG.

    Example:

    \b
        nianbao crawl all
        nianbao crawl beijing_xicheng --mirror http://127.0.0.1:8000
        nianbao crawl --list-url http://www.tjhq.gov.cn/zwgk/zfxxgkqjjg/qzwfwb/zfxxgknb30/ --division 120105
        nianbao crawl all --scheduler tcp://10.0.0.5:8786 --data-dir s3://b/nianbao
    """
    from crawler.shards import crawl_sites

    ad_hoc = None
    if list_url or division:
        if not (list_url and division):
            raise click.UsageError("--list-url and --division go together")
        try:
            ad_hoc = ad_hoc_site(list_url, division, slug, district, platform)
        except DeclarationError as error:
            raise click.BadParameter(str(error)) from None
    summary = crawl_sites(
        sites or (() if ad_hoc else ("all",)),
        _location(data_dir),
        scheduler=scheduler,
        mirror=mirror,
        settings=_parse_set(overrides),
        progress=True,
        ad_hoc=ad_hoc,
    )
    click.echo(summary.render())
    sys.exit(summary.exit_code)


@click.command()
@click.argument("site")
@click.option(
    "--mirror",
    metavar="URL",
    help="Walk a local mirror laid out as URL/{host}/{path} instead of the live site.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tests/fixtures/sites"),
    show_default=True,
    help="The captured folder is OUT/SITE/ (replaced if it holds a capture).",
)
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a Scrapy setting.",
)
def capture(
    site: str, mirror: str | None, out: Path, overrides: tuple[str, ...]
) -> None:
    """Capture a site as its test: every page and attachment its spider fetches, byte for
    byte, in the mirror layout (host/path), with capture.json saying what it found.

    tests/crawler/test_sites.py serves each captured folder on 127.0.0.1 and checks the
    spider finds exactly those reports and attachments. Nothing is written when the crawl
    is in error (exit 1).

    Example:

    \b
        nianbao capture beijing_huairou
        nianbao capture beijing_xicheng --mirror http://127.0.0.1:8000
    """
    from crawler.capture import CaptureError, capture_site

    try:
        summary, captured = capture_site(
            site, out, mirror=mirror, settings=_parse_set(overrides)
        )
    except CaptureError as error:
        raise click.ClickException(str(error)) from None
    click.echo(summary.render())
    if captured is None:
        sys.exit(1)
    manifest = captured.manifest
    click.echo(
        f"captured {len(manifest['files'])} files, {len(manifest['reports'])} reports "
        f"into {captured.folder}"
    )


@click.command("sites")
@click.option(
    "--data-dir",
    metavar="PATH|URL",
    default=None,
    help="Data directory, or a URL such as s3://bucket/prefix (default: $NIANBAO_DATA "
    "or ./data); the archive is its raw/.",
)
def sites(data_dir: str | None) -> None:
    """List every site: its place, its last run, the reports it found per report year,
    its failures, and a flag (ERROR, or DROP when it found fewer reports than its best
    earlier run).

    Reads the archive's manifest only; sites that were never crawled say so.

    Example:

    \b
        nianbao sites
        NIANBAO_DATA=/srv/nianbao/data nianbao sites
    """
    from crawler.health import render, site_health

    click.echo(render(site_health(_location(data_dir))))
