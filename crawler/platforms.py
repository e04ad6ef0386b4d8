"""The spider: glue between Scrapy, the pure page functions and the raw archive.

``ReportSpider`` walks a site's list pages, requests the reports they name, archives every
response and requests each report's attachments. What a page holds is read by
``crawler.pages`` (pure functions of HTML, URL and the site's declaration); whether a URL
the archive holds is asked again is ``pages.fetch_headers``. ``spider_class`` makes the
spider of one declared site (crawler/sites.toml) or of an ad hoc column.

Incremental behaviour, per report URL already in the archive:
- with an ETag or Last-Modified: a conditional request; 304 means unchanged;
- without: not fetched again until the archived copy is NIANBAO_REVISIT_DAYS old;
- a 200 whose bytes differ from the archived ones is archived as a new version.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.http import Request, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError

from crawler import pages
from crawler.archive.manifest import utc_now
from crawler.archive.record import Fetched, RunCounts
from crawler.archive.writer import ArchiveError, ArchiveWriter
from crawler.middlewares import RefusedRequest, from_mirror
from crawler.paths import raw_dir
from crawler.registry import Site
from nianbao_common.decode import DecodedText, declared_encoding, decode_document
from nianbao_common.storage import RemotePath

_KINDS = ("list", "report", "attachment")
# Per site and run: how many URLs of each kind are followed at most (0: no limit).
_LIMIT_SETTINGS = {
    "list": "NIANBAO_MAX_LIST_PAGES",
    "report": "NIANBAO_MAX_REPORTS",
    "attachment": "NIANBAO_MAX_ATTACHMENTS",
}
_LIMITED_URLS = {"list": "list page", "report": "report", "attachment": "attachment"}
INTERRUPTED = (
    "interrupted (Ctrl-C or SIGTERM) before the crawl ended: run again to finish; "
    "what was committed is kept"
)
# List pages named in a site's error, at most.
_LIST_PROBLEMS_SHOWN = 3


def spider_class(site: Site) -> type[ReportSpider]:
    """The spider of one site declaration."""
    class_name = "".join(part.title() for part in site.name.split("_")) + "Spider"
    return type(
        class_name,
        (ReportSpider,),
        {"name": site.name, "site": site, "__doc__": f"The spider of {site.name}."},
    )


def declared_site(spider: type) -> Site:
    """The site declaration a registered spider class crawls."""
    if not issubclass(spider, ReportSpider):
        raise TypeError(f"{spider.__name__} is not a ReportSpider: it crawls no site")
    return spider.site


class ReportSpider(scrapy.Spider):
    """Base of all site spiders; ``site`` is the declaration it crawls."""

    name = ""
    site: Site
    # Set by ``from_crawler`` from the settings and the archive.
    revisit: timedelta
    had_reports: int

    def __init__(
        self, *args, mirror: str | None = None, data_dir: str | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = mirror.rstrip("/") if mirror else None
        self.data_dir = data_dir
        self.host_schemes = {
            urlsplit(u).netloc: urlsplit(u).scheme for u in self.site.start_urls
        }
        self.counts = RunCounts()
        # Report URL → its report year (None until read): the reports found in this run.
        self.found: dict[str, int | None] = {}
        self.seen_lists: set[str] = set()
        self.requested: set[str] = set()
        self.limits = dict.fromkeys(_KINDS, 0)
        self.followed = dict.fromkeys(_KINDS, 0)
        # URLs left out because their kind's limit was reached.
        self.over_limit = dict.fromkeys(_KINDS, 0)
        # Why list pages could not be read ("URL: reason"), for the site's error.
        self.list_problems: list[str] = []
        # Things the operator should know that are not errors (a moved host …).
        self.notes: list[str] = []
        self.error: str | None = None
        # Fewer reports found than the site's previous good run found.
        self.warning: str | None = None
        # Why Scrapy closed the spider ("finished" …); None while it runs or if it never did.
        self.closed_reason: str | None = None
        self.archive: ArchiveWriter | None = None

    @property
    def writer(self) -> ArchiveWriter:
        """The open archive: a run whose archive could not open requests nothing."""
        if self.archive is None:
            raise RuntimeError(f"{self.name}: the archive is not open")
        return self.archive

    @property
    def extra_hosts(self) -> frozenset[str]:
        """Hosts allowed beside ``*.gov.cn`` (read by ``HostGuardMiddleware``)."""
        return self.site.extra_hosts

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.mirror = (
            spider.mirror or (settings.get("NIANBAO_MIRROR") or "").rstrip("/") or None
        )
        base = spider.data_dir or settings.get("NIANBAO_DATA")
        run_id = settings.get("NIANBAO_RUN_ID") or datetime.now(UTC).strftime(
            "%Y%m%dT%H%M%S.%fZ"
        )
        spider.revisit = timedelta(days=settings.getfloat("NIANBAO_REVISIT_DAYS", 30))
        spider.limits = {
            k: settings.getint(name) for k, name in _LIMIT_SETTINGS.items()
        }
        spider.had_reports = 0
        crawler.signals.connect(spider.on_closed, signal=signals.spider_closed)
        # A crawl shard staged for object storage (crawler.shards) names the archive there.
        remote = settings.get("NIANBAO_ARCHIVE_URL")
        try:
            spider.archive = ArchiveWriter(
                raw_dir(Path(base) if base else None),
                spider.name,
                run_id,
                max_warc_bytes=settings.getint("NIANBAO_WARC_MAX_BYTES"),
                declaration=cls.site,
                remote=RemotePath.from_url(remote) if remote else None,
            )
            spider.archive.start_run()
        except ArchiveError as error:
            # Nothing is fetched (``start``): the run ends at once with this error.
            spider.error = str(error)
        else:
            spider.had_reports = spider.archive.count("report")
        return spider

    # -- start -----------------------------------------------------------------------
    async def start(self):
        if self.error:
            return
        for url in self.site.start_urls:
            if (request := self.list_request(url)) is not None:
                yield request

    def list_request(self, url: str) -> Request | None:
        """The request for a list page, or None past NIANBAO_MAX_LIST_PAGES."""
        self.seen_lists.add(url)
        if not self._within_limit("list"):
            return None
        return Request(
            url,
            callback=self.parse_list,
            errback=self.on_error,
            cb_kwargs={"kind": "list", "url": url},
            dont_filter=True,
            priority=10,
        )

    # -- list pages ------------------------------------------------------------------
    def parse_list(self, response: Response, kind: str, url: str) -> list[Request]:
        """A list page: follow its pages and columns, request the reports it names."""
        # Callbacks return lists: Scrapy inspects the source of generator callbacks.
        return list(self._parse_list(response, url))

    def _parse_list(self, response: Response, url: str):
        self.counts.list_pages += 1
        decoded = _decode(response)
        self._archive_if_changed(response, "list", url, decoded)
        # Links are read against the page's real URL: after a redirect, its own.
        here = self.real_url(response.url)
        if urlsplit(here).netloc != urlsplit(url).netloc:
            self.notes.append(
                f"list page {url} redirects to {here}: update the site's declaration"
            )
        page = pages.read_list_page(decoded.text, here, self.site)
        for target in page.lists:
            if target not in self.seen_lists and (
                (request := self.list_request(target)) is not None
            ):
                yield request
        for listed in page.reports:
            if (request := self.report_request(listed)) is not None:
                yield request
        if page.shown_report is not None:
            yield from self._shown_report(response, url, decoded, page.shown_report)
        if page.unrendered:
            self.notes.append(
                f"list page {url} counts {page.unrendered} more documents than it "
                "renders (the rest come from a TRS list API, not crawled)"
            )

    def _shown_report(self, response, url, decoded, shown: pages.ReportPage):
        """The report a column page shows itself, kept under the column URL and its year."""
        if shown.named is None:  # a list page shows a report only when it names one
            return
        key = pages.shown_report_url(url, shown.named.year)
        if key in self.requested:
            return
        self.requested.add(key)
        yield from self._report_response(
            response, key, decoded, shown, None, self.writer.latest("report", key)
        )

    # -- reports ---------------------------------------------------------------------
    def report_request(self, listed: pages.ListedReport) -> Request | None:
        """The request for a report link, or None when the archive already has it (or
        NIANBAO_MAX_REPORTS report URLs were taken already)."""
        url = listed.url
        if url in self.requested:
            return None
        self.requested.add(url)
        if not self._within_limit("report"):
            return None
        named = listed.named
        meta = {
            "kind": "report",
            "url": url,
            "listed_title": named.title if named else listed.label,
            "agency": named.agency if named else None,
        }
        return self._conditional(url, "report", self.parse_report, meta)

    def _conditional(
        self, url: str, kind: str, callback, cb_kwargs: dict
    ) -> Request | None:
        latest = self.writer.latest(kind, url)
        if latest is not None and kind == "report":
            self.found[url] = latest.report_year
        headers = pages.fetch_headers(latest, self.revisit)
        if headers is None:
            if kind == "report":
                self.counts.unchanged += 1
            return None
        # dont_filter: ``self.requested`` already lets each URL through once per run, so
        # Scrapy's duplicate filter would only fingerprint every request to drop none.
        return Request(
            url,
            callback=callback,
            errback=self.on_error,
            headers=headers or None,
            cb_kwargs=cb_kwargs,
            meta={"handle_httpstatus_list": [304]} if headers else {},
            dont_filter=True,
        )

    def parse_report(
        self, response: Response, kind: str, url: str, listed_title: str, agency
    ) -> list[Request]:
        """A report page: archive it if new or changed, then request its attachments."""
        return list(self._parse_report(response, url, listed_title, agency))

    def _parse_report(self, response: Response, url: str, listed_title: str, agency):
        latest = self.writer.latest("report", url)
        if response.status == 304 and latest is not None:
            self.found[url] = latest.report_year
            self.counts.unchanged += 1
            archived = pages.report_attachments(
                self._archived_html(url), url, self.site
            )
            yield from self._attachment_requests(
                archived, url, latest.record_id, agency, latest.report_year
            )
            return
        decoded = _decode(response)
        page = pages.read_report_page(
            decoded.text, self.real_url(response.url), self.site, listed_title
        )
        if page.named is None:
            # Reached by URL shape only, and the page names no report (a 解读 or a summary).
            self.counts.skipped += 1
            return
        yield from self._report_response(response, url, decoded, page, agency, latest)

    def _report_response(self, response, url, decoded, page, agency, latest):
        """Archive a report page unless the archive has its bytes; request attachments."""
        named = page.named
        self.found[url] = named.year
        agency = agency or named.agency or self.site.agency
        body = response.body
        digest = hashlib.sha256(body).hexdigest()
        if latest is not None and latest.sha256 == digest:
            self.counts.unchanged += 1
            return
        record_id = self._write(
            response,
            "report",
            url,
            body,
            decoded,
            agency=agency,
            report_year=named.year,
            title=named.title,
            attachments=[(a.url, a.label) for a in page.attachments],
            sha256=digest,
        )
        if latest is not None:
            self.counts.changed += 1
        else:
            self.counts.new += 1
        yield from self._attachment_requests(
            page.attachments, url, record_id, agency, named.year
        )

    def _archived_html(self, url: str) -> str:
        try:
            data, content_type = self.writer.latest_payload("report", url)
        except ArchiveError as error:
            raise self._stop(error) from None
        return decode_document(data, content_type).text

    def _attachment_requests(self, attachments, report_url, record_id, agency, year):
        for attachment in attachments:
            a_url = attachment.url
            if a_url in self.requested:
                continue
            self.requested.add(a_url)
            if not self._within_limit("attachment"):
                continue
            request = self._conditional(
                a_url,
                "attachment",
                self.parse_attachment,
                {
                    "kind": "attachment",
                    "url": a_url,
                    "parent_url": report_url,
                    "parent_record_id": record_id,
                    "agency": agency,
                    "year": year,
                    "label": attachment.label,
                },
            )
            if request is not None:
                yield request

    def parse_attachment(
        self, response, kind, url, parent_url, parent_record_id, agency, year, label
    ):
        """An attachment: archived as is, unless the archive has the same bytes."""
        latest = self.writer.latest("attachment", url)
        if response.status == 304:
            return
        body = response.body
        digest = hashlib.sha256(body).hexdigest()
        if latest is not None and latest.sha256 == digest:
            return
        content_type = _header(response, b"Content-Type")
        decoded = None
        if content_type and content_type.lower().startswith("text/"):
            decoded = _decode(response)
        self._write(
            response,
            "attachment",
            url,
            body,
            decoded,
            agency=agency,
            report_year=year,
            title=label or None,
            parent_url=parent_url,
            parent_record_id=parent_record_id,
            sha256=digest,
        )
        self.counts.attachments_new += 1

    # -- limits ----------------------------------------------------------------------
    def _within_limit(self, kind: str) -> bool:
        """Take one more URL of ``kind``, unless the site's limit for this run is reached.

        The limits bound what a broken or hostile site can make the crawler do (endless
        pagers, millions of report links); what they leave out is reported, not fetched.
        """
        limit = self.limits[kind]
        if limit and self.followed[kind] >= limit:
            if not self.over_limit[kind]:
                self.logger.warning(
                    "%s: %s (%d) reached, no more %s URLs are followed",
                    self.name,
                    _LIMIT_SETTINGS[kind],
                    limit,
                    _LIMITED_URLS[kind],
                )
            self.over_limit[kind] += 1
            return False
        self.followed[kind] += 1
        return True

    def limit_notes(self) -> list[str]:
        """One line per limit reached in this run: which, and how many URLs it left out."""
        return [
            f"{_LIMIT_SETTINGS[kind]} ({self.limits[kind]}) reached: {left_out} more "
            f"{_LIMITED_URLS[kind]} URLs not followed"
            for kind, left_out in self.over_limit.items()
            if left_out
        ]

    # -- archive ---------------------------------------------------------------------
    def _archive_if_changed(self, response, kind, url, decoded) -> None:
        latest = self.writer.latest(kind, url)
        digest = hashlib.sha256(response.body).hexdigest()
        if latest is None or latest.sha256 != digest:
            self._write(response, kind, url, response.body, decoded, sha256=digest)

    def _write(self, response, kind, url, body, decoded, **fields) -> str:
        try:
            return self.writer.write(
                Fetched(
                    kind=kind,
                    url=url,
                    final_url=self.real_url(response.url),
                    status=response.status,
                    headers=[
                        (k, v) for k, values in response.headers.items() for v in values
                    ],
                    body=body,
                    fetched_at=utc_now(),
                    encoding=decoded.encoding if decoded else None,
                    declared_encoding=decoded.declared if decoded else None,
                    **fields,
                )
            )
        except ArchiveError as error:
            raise self._stop(error) from None

    def _record_failure(self, kind, url, status, error) -> None:
        try:
            self.writer.add_failure(kind, url, status, error)
        except ArchiveError as archive_error:
            raise self._stop(archive_error) from None

    def _stop(self, error: ArchiveError) -> CloseSpider:
        """End the site's run: nothing more can be archived. Raise what it returns."""
        self._archive_failed(error)
        return CloseSpider("archive_failed")

    def _archive_failed(self, error: ArchiveError) -> None:
        if self.error is None:
            self.error = f"archive write failed: {error}"

    def real_url(self, url: str) -> str:
        """The real URL of a (possibly mirrored) response URL."""
        return from_mirror(url, self.mirror, self.host_schemes) if self.mirror else url

    # -- failures and the end of the run ---------------------------------------------
    def on_error(self, failure):
        """A request that failed after retries, or was refused: recorded, counted, never fatal."""
        request = failure.request
        kwargs = request.cb_kwargs or {}
        kind = kwargs.get("kind", "unknown")
        url = kwargs.get("url", request.url)
        status = None
        if failure.check(RefusedRequest):
            self.counts.refused += 1
            error = f"refused: {failure.getErrorMessage()}"
            self._record_failure(kind, url, None, error)
            self.logger.warning("%s %s: %s", kind, url, error)
            if kind == "list":
                self.list_problems.append(f"{url}: {error}")
            return
        if failure.check(HttpError):
            status = failure.value.response.status
            error = f"HTTP {status}"
            retry_after = _header(failure.value.response, b"Retry-After")
            if retry_after:
                error += f" (Retry-After: {retry_after})"
        else:
            error = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        if "robots.txt" in error:
            self.counts.skipped += 1
            if kind == "list":
                # A column the site forbids is why its reports are missing: say so.
                self.list_problems.append(f"{url}: robots.txt forbids it")
                self._record_failure(kind, url, None, "robots.txt forbids it")
            return
        if kind == "list":
            self.list_problems.append(f"{url}: {error}")
        self.counts.failed += 1
        self._record_failure(kind, url, status, error)
        self.logger.warning("failed %s %s: %s", kind, url, error)

    def on_closed(self, spider, reason):
        """Commit and close the archive, store the run's counts and decide its error.

        An archive that could not be written is an error, and so are zero reports where
        some were found before and a site whose list pages could not be fetched (with
        why: robots.txt, an HTTP status, a refused redirect). Fewer reports than the last
        good run found is a warning.
        """
        if spider is not self:
            return
        self.closed_reason = reason
        self.counts.reports_found = len(self.found)
        if self.archive is not None:
            # Committed before the run's row is written, so that the row says whether the
            # run's records were kept.
            try:
                self.archive.commit()
            except ArchiveError as error:
                self._archive_failed(error)
        if self.error is None:
            self.error = self._site_error(reason)
        if self.error is None and self.archive is not None:
            self.warning = self._drop(self.archive)
        if self.archive is not None:
            self._close_archive(self.archive)
        if self.error:
            self.logger.error("%s: %s", self.name, self.error)
        elif self.warning:
            self.logger.warning("%s: %s", self.name, self.warning)
        self.crawler.stats.set_value("nianbao/counts", asdict(self.counts))
        self.crawler.stats.set_value("nianbao/error", self.error)

    @property
    def final_error(self) -> str | None:
        """The run's error, also for a spider never closed (a second Ctrl-C forces the stop)."""
        return self.error or (INTERRUPTED if self.closed_reason is None else None)

    def _site_error(self, reason: str) -> str | None:
        # Scrapy closes with "shutdown" on the first Ctrl-C or SIGTERM.
        if reason == "shutdown":
            return INTERRUPTED
        if reason != "finished":
            return f"stopped before the crawl ended ({reason})"
        problems = "; ".join(sorted(self.list_problems)[:_LIST_PROBLEMS_SHOWN])
        if len(self.list_problems) > _LIST_PROBLEMS_SHOWN:
            problems += f"; {len(self.list_problems) - _LIST_PROBLEMS_SHOWN} more"
        if not self.found and self.had_reports:
            return (
                f"found no reports; the archive holds {self.had_reports} from earlier runs"
                + (f" ({problems})" if problems else "")
            )
        if self.counts.list_pages == 0:
            return "no list page could be fetched" + (
                f" ({problems})" if problems else ""
            )
        return None

    def years_found(self) -> dict[int | None, int]:
        """How many reports of each report year this run found."""
        years: dict[int | None, int] = {}
        for year in self.found.values():
            years[year] = years.get(year, 0) + 1
        return years

    def _drop(self, archive: ArchiveWriter) -> str | None:
        """Fewer reports than the site's last good run found: a column may have changed.

        Not an error (a site may withdraw a report), but said in the summary and in
        ``nianbao sites`` until a run finds as many again.
        """
        try:
            previous = archive.previous_good_run()
        except ArchiveError:
            return None
        if previous is None or len(self.found) >= previous.reports_found:
            return None
        now = self.years_found()
        fewer = [
            f"{year}: {now.get(year, 0)} of {count}"
            for year, count in sorted(previous.years.items(), key=lambda i: i[0] or 0)
            if now.get(year, 0) < count
        ]
        return (
            f"found {len(self.found)} reports where the run {previous.run_id} found "
            f"{previous.reports_found}" + (f" ({', '.join(fewer)})" if fewer else "")
        )

    def _close_archive(self, archive: ArchiveWriter) -> None:
        try:
            archive.finish_run(
                self.counts,
                ok=self.error is None,
                error=self.error,
                warning=self.warning,
                years=self.years_found(),
            )
        except ArchiveError as error:
            self._archive_failed(error)
        # Its commit has nothing left of this site: a failure there is another site's.
        with contextlib.suppress(ArchiveError):
            archive.close()


def _decode(response: Response) -> DecodedText:
    """The page's text as ``decode_document`` reads it, without decoding it a second time.

    Scrapy's MetaRefreshMiddleware has already decoded each HTML response by its declared
    charset, replacing bad bytes with U+FFFD: when that charset is UTF-8 and nothing was
    replaced, the text is the one the strict UTF-8 attempt of ``decode_document`` returns.
    """
    content_type = _header(response, b"Content-Type")
    if isinstance(response, TextResponse) and response.encoding == "utf-8":
        text = response.text
        if "\ufffd" not in text:
            declared = declared_encoding(response.body, content_type)
            return DecodedText(text, "utf-8", declared)
    return decode_document(response.body, content_type)


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
