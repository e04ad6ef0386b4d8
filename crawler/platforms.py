"""Platform bases: everything a district spider does, so that a site is a short declaration.

``ReportSpider`` walks list pages, recognises report links by their titles (and, as a
second signal, by the site's report URL shape), fetches new reports and their attachments
and writes every response to the raw archive. ``TrsSpider`` adds the TRS conventions
(``index.html``, ``index_1.html`` … pagination written by ``createPageHTML``; details
``t{YYYYMMDD}_{id}.html``; year and category columns below one 年报 root).

Incremental behaviour, per report URL already in the archive:
- with an ETag or Last-Modified: a conditional request; 304 means unchanged;
- without: not fetched again until the archived copy is NIANBAO_REVISIT_DAYS old;
- a 200 whose bytes differ from the archived ones is archived as a new version.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.http import Request, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError

from crawler import discovery
from crawler.archive import ArchiveError, ArchiveWriter, utc_now
from crawler.middlewares import RefusedRequest, from_mirror
from crawler.paths import raw_dir
from extract.decode import DecodedText, declared_encoding, decode_document

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


def _counts() -> dict:
    return {
        "list_pages": 0,
        "reports_found": 0,
        "new": 0,
        "changed": 0,
        "unchanged": 0,
        "failed": 0,
        "attachments_new": 0,
        "refused": 0,
        "skipped": 0,
    }


class ReportSpider(scrapy.Spider):
    """Base of all district spiders; subclasses declare the attributes below."""

    name = ""
    division_code = ""
    agency_name = ""
    start_urls: tuple[str, ...] = ()
    list_root = ""
    """List pages below this URL prefix are followed (year and category columns)."""
    column_pattern: re.Pattern | None = None
    """If set, only column links whose URL matches it are followed."""
    report_url_pattern: re.Pattern | None = None
    """The URL shape of a report page: such links are fetched even if their text names no
    report, and kept when the page's own title does."""
    list_selector = ""
    """XPath of the list area; links outside it are still read when it finds none."""
    extra_hosts: frozenset[str] = frozenset()

    def __init__(
        self, *args, mirror: str | None = None, data_dir: str | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = mirror.rstrip("/") if mirror else None
        self.data_dir = data_dir
        self.host_schemes = {
            urlsplit(u).netloc: urlsplit(u).scheme for u in self.start_urls
        }
        self.counts = _counts()
        self.found: set[str] = set()
        self.seen_lists: set[str] = set()
        self.requested: set[str] = set()
        self.limits = dict.fromkeys(_KINDS, 0)
        self.followed = dict.fromkeys(_KINDS, 0)
        # URLs left out because their kind's limit was reached.
        self.over_limit = dict.fromkeys(_KINDS, 0)
        self.error: str | None = None
        # Why Scrapy closed the spider ("finished" …); None while it runs or if it never did.
        self.closed_reason: str | None = None
        self.archive: ArchiveWriter | None = None

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
        try:
            spider.archive = ArchiveWriter(
                raw_dir(base and __import__("pathlib").Path(base)),
                spider.name,
                run_id,
                max_warc_bytes=settings.getint("NIANBAO_WARC_MAX_BYTES"),
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
        for url in self.start_urls:
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
        return list(self._parse_list(response, url))

    def _parse_list(self, response: Response, url: str):
        self.counts["list_pages"] += 1
        decoded = _decode(response)
        self._archive_if_changed(response, "list", url, decoded)
        html = decoded.text
        links = discovery.extract_links(html, url)
        scoped = self._scoped_links(html, url) if self.list_selector else None
        for link in links:
            target = discovery.clean_url(link.url, self.extra_hosts)
            if target is None:
                continue
            if target not in self.seen_lists and self._is_list(link, target, url):
                if (request := self.list_request(target)) is not None:
                    yield request
                continue
            if scoped is not None and scoped and target not in scoped:
                continue
            listed = discovery.parse_report_title(link.label)
            if listed is not None or self._looks_like_report(target, link.label):
                request = self.report_request(target, link, listed)
                if request is not None:
                    yield request
        for page in discovery.trs_pages(html, url):
            if page not in self.seen_lists and (
                (request := self.list_request(page)) is not None
            ):
                yield request

    def _scoped_links(self, html: str, url: str) -> set[str]:
        selector = scrapy.Selector(text=html)
        hrefs = selector.xpath(self.list_selector).xpath(".//a/@href").getall()
        cleaned = {
            discovery.clean_url(response_join(url, h), self.extra_hosts) for h in hrefs
        }
        return {c for c in cleaned if c}

    def _is_list(self, link: discovery.Link, target: str, list_url: str) -> bool:
        if discovery.is_pager_link(link, list_url):
            return True
        if not self.list_root or not discovery.is_column_link(target, self.list_root):
            return False
        return self.column_pattern is None or bool(self.column_pattern.search(target))

    def _looks_like_report(self, url: str, label: str = "") -> bool:
        # A detail link whose text names something else (a 解读, a 专题页) is not fetched.
        if label and discovery.is_excluded_title(label):
            return False
        return bool(self.report_url_pattern and self.report_url_pattern.search(url))

    # -- reports ---------------------------------------------------------------------
    def report_request(self, url: str, link: discovery.Link, listed) -> Request | None:
        """The request for a report link, or None when the archive already has it (or
        NIANBAO_MAX_REPORTS report URLs were taken already)."""
        if url in self.requested:
            return None
        self.requested.add(url)
        if not self._within_limit("report"):
            return None
        meta = {
            "kind": "report",
            "url": url,
            "listed_title": listed.title if listed else link.label,
            "agency": listed.agency if listed else None,
            "year": listed.year if listed else None,
        }
        return self._conditional(url, "report", self.parse_report, meta)

    def _conditional(
        self, url: str, kind: str, callback, cb_kwargs: dict
    ) -> Request | None:
        latest = self.archive.latest(kind, url)
        headers = {}
        if latest is not None:
            if kind == "report":
                self.found.add(url)
            if latest.etag:
                headers["If-None-Match"] = latest.etag
            if latest.last_modified:
                headers["If-Modified-Since"] = latest.last_modified
            if not headers and not self._stale(latest.fetched_at):
                if kind == "report":
                    self.counts["unchanged"] += 1
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

    def _stale(self, fetched_at: str) -> bool:
        if not self.revisit:
            return False
        fetched = datetime.strptime(fetched_at[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=UTC
        )
        return datetime.now(UTC) - fetched > self.revisit

    def parse_report(
        self, response: Response, kind: str, url: str, listed_title: str, agency, year
    ) -> list[Request]:
        """A report page: archive it if new or changed, then request its attachments."""
        # Callbacks return lists: Scrapy inspects the source of generator callbacks.
        return list(self._parse_report(response, url, listed_title, agency, year))

    def _parse_report(
        self, response: Response, url: str, listed_title: str, agency, year
    ):
        latest = self.archive.latest("report", url)
        if response.status == 304 and latest is not None:
            self.found.add(url)
            self.counts["unchanged"] += 1
            yield from self._attachment_requests(
                self._archived_html(url), url, latest.record_id, agency, year
            )
            return
        body = response.body
        decoded = _decode(response)
        html = decoded.text
        title = discovery.page_title(html)
        named = discovery.parse_report_title(title) or discovery.parse_report_title(
            listed_title
        )
        if named is None:
            # Reached by URL shape only, and the page names no report (a 解读 or a summary).
            self.counts["skipped"] += 1
            return
        self.found.add(url)
        agency = agency or named.agency or self.agency_name
        digest = hashlib.sha256(body).hexdigest()
        if latest is not None and latest.sha256 == digest:
            self.counts["unchanged"] += 1
            return
        attachments = [
            (a_url, link.text)
            for link in discovery.attachment_links(html, url)
            if (a_url := discovery.clean_url(link.url, self.extra_hosts))
        ]
        record_id = self._write(
            response,
            "report",
            url,
            body,
            decoded,
            agency=agency,
            report_year=named.year,
            title=named.title,
            attachments=attachments,
            sha256=digest,
        )
        self.counts["changed" if latest is not None else "new"] += 1
        yield from self._attachment_requests(
            html, url, record_id, agency, named.year, attachments
        )

    def _archived_html(self, url: str) -> str:
        try:
            data, content_type = self.archive.latest_payload("report", url)
        except ArchiveError as error:
            raise self._stop(error) from None
        return decode_document(data, content_type).text

    def _attachment_requests(
        self, html, report_url, record_id, agency, year, attachments=None
    ):
        if attachments is None:
            attachments = [
                (a_url, link.text)
                for link in discovery.attachment_links(html, report_url)
                if (a_url := discovery.clean_url(link.url, self.extra_hosts))
            ]
        for a_url, label in attachments:
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
                    "label": label,
                },
            )
            if request is not None:
                yield request

    def parse_attachment(
        self, response, kind, url, parent_url, parent_record_id, agency, year, label
    ):
        """An attachment: archived as is, unless the archive has the same bytes."""
        latest = self.archive.latest("attachment", url)
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
        self.counts["attachments_new"] += 1

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
        latest = self.archive.latest(kind, url)
        digest = hashlib.sha256(response.body).hexdigest()
        if latest is None or latest.sha256 != digest:
            self._write(response, kind, url, response.body, decoded, sha256=digest)

    def _write(self, response, kind, url, body, decoded, **fields) -> str:
        try:
            return self.archive.write(
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
        except ArchiveError as error:
            raise self._stop(error) from None

    def _record_failure(self, kind, url, status, error) -> None:
        try:
            self.archive.add_failure(kind, url, status, error)
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
            self.counts["refused"] += 1
            error = f"refused: {failure.getErrorMessage()}"
            self._record_failure(kind, url, None, error)
            self.logger.warning("%s %s: %s", kind, url, error)
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
            self.counts["skipped"] += 1
            return
        self.counts["failed"] += 1
        self._record_failure(kind, url, status, error)
        self.logger.warning("failed %s %s: %s", kind, url, error)

    def on_closed(self, spider, reason):
        """Commit and close the archive, store the run's counts and decide its error.

        An archive that could not be written is an error, and so are zero reports where
        some were found before and a site whose list pages could not be fetched.
        """
        if spider is not self:
            return
        self.closed_reason = reason
        self.counts["reports_found"] = len(self.found)
        if self.archive is not None:
            # Committed before the run's row is written, so that the row says whether the
            # run's records were kept.
            try:
                self.archive.commit()
            except ArchiveError as error:
                self._archive_failed(error)
        if self.error is None:
            self.error = self._site_error(reason)
        if self.archive is not None:
            self._close_archive()
        if self.error:
            self.logger.error("%s: %s", self.name, self.error)
        self.crawler.stats.set_value("nianbao/counts", dict(self.counts))
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
        if not self.found and self.had_reports:
            return f"found no reports; the archive holds {self.had_reports} from earlier runs"
        if self.counts["list_pages"] == 0:
            return "no list page could be fetched"
        return None

    def _close_archive(self) -> None:
        try:
            self.archive.finish_run(
                self.counts, ok=self.error is None, error=self.error
            )
        except ArchiveError as error:
            self._archive_failed(error)
        # Its commit has nothing left of this site: a failure there is another site's.
        with contextlib.suppress(ArchiveError):
            self.archive.close()


class TrsSpider(ReportSpider):
    """TRS sites: list pages ``index.html``, ``index_1.html`` …; details ``t{YYYYMMDD}_{id}.html``."""

    report_url_pattern = re.compile(r"/\d{6}/t\d{8}_\d+\.s?html?$")


def response_join(base: str, href: str) -> str:
    """Resolve a link against its page."""
    from urllib.parse import urljoin

    return urljoin(base, href)


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


def yearly(template: str, first: int, last: int | None = None) -> tuple[str, ...]:
    """Year column URLs from ``first`` to the last report year (last calendar year).

    >>> yearly("https://x.gov.cn/{year}nb/", 2023, 2024)
    ('https://x.gov.cn/2023nb/', 'https://x.gov.cn/2024nb/')
    """
    last = last if last is not None else datetime.now(UTC).year - 1
    return tuple(template.format(year=y) for y in range(first, last + 1))
