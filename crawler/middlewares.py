"""Downloader middlewares: allowed hosts only, robots.txt, local mirrors, retries with backoff."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import (
    RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware,
)
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import _urlparse_cache, urlparse_cached
from twisted.internet.defer import Deferred

from crawler.discovery import is_allowed_host, url_host
from crawler.resolver import (
    AddressRefusedError,
    address_refusal,
    allowed_test_addresses,
)

logger = logging.getLogger(__name__)


def to_mirror(url: str, mirror: str) -> str:
    """A real URL on its mirror, laid out as ``{mirror}/{host}{path}`` (wget's layout).

    >>> to_mirror("https://www.bjxch.gov.cn/zt/a.html?x=1", "http://127.0.0.1:8000")
    'http://127.0.0.1:8000/www.bjxch.gov.cn/zt/a.html?x=1'
    """
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path or '/'}{query}"


def from_mirror(url: str, mirror: str, schemes: dict[str, str]) -> str:
    """The real URL of a mirror URL (inverse of ``to_mirror``); other URLs unchanged."""
    base = mirror.rstrip("/") + "/"
    if not url.startswith(base):
        return url
    rest = url[len(base) :]
    host, _, path = rest.partition("/")
    if not host or host == "robots.txt":
        return url
    return f"{schemes.get(host, 'https')}://{host}/{path}"


class RefusedRequest(IgnoreRequest):
    """A request the crawler does not send (see ``HostGuardMiddleware``); the message says why."""


class HostGuardMiddleware:
    """Checks every request before it is sent: redirects, meta refreshes and robots.txt too.

    The URL must name an allowed host (``*.gov.cn`` or the site's ``extra_hosts``) as the
    HTTP client reads it (``discovery.url_host``), and that host must resolve to a public
    address, unless the request goes to a local mirror. Scrapy sends the requests that
    redirects create through every downloader middleware again, so each hop is checked. A
    refused request fails with ``RefusedRequest``: the spider records it; nothing is fetched.

    Sits before RobotsTxtMiddleware (no robots.txt is fetched for a refused host) and
    MirrorMiddleware (the real URL is checked, not its mirror copy).
    """

    def __init__(self, crawler, resolve=None) -> None:
        self.crawler = crawler
        self.allowed_addresses = allowed_test_addresses(crawler.settings)
        # async (host) -> address: the reactor's resolver, or a test's stub.
        self.resolve = resolve or _reactor_resolve

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request) -> None:
        """Raise ``RefusedRequest`` unless the request may be sent."""
        spider = self.crawler.spider
        mirror = getattr(spider, "mirror", None)
        url = request.url
        if mirror:
            url = from_mirror(url, mirror, getattr(spider, "host_schemes", {}))
            if url.startswith(mirror.rstrip("/") + "/"):
                return  # the mirror's own robots.txt: no real URL behind it
        what = "redirect to " if request.meta.get("redirect_urls") else ""
        host = url_host(url)
        if host is None:
            raise RefusedRequest(f"{what}{url}: not http(s) with a plain host[:port]")
        if not is_allowed_host(host, getattr(spider, "extra_hosts", frozenset())):
            raise RefusedRequest(f"{what}{url}: {host} is not an allowed host")
        if mirror:
            return  # sent to the operator's mirror, not to the host
        reason = await self._address_refusal(host)
        if reason:
            raise RefusedRequest(f"{what}{url}: {reason}")

    async def _address_refusal(self, host: str) -> str | None:
        # The reactor's resolver is PublicAddressResolver: it checks the address again where
        # the connection is made (a DNS answer may change in between), from its cache. The
        # address is checked here too in case another resolver was configured.
        try:
            address = await self.resolve(host)
        except AddressRefusedError as refused:
            return refused.reason
        reason = address_refusal(address, self.allowed_addresses)
        return f"{host} resolves to {address}, {reason}" if reason else None


async def _reactor_resolve(host: str) -> str:
    from twisted.internet import reactor

    # Twisted declares its interfaces' methods without self, which mypy (without the
    # zope plugin) reads as the first argument: resolve(name) looks like resolve(timeout).
    return await maybe_deferred_to_future(reactor.resolve(host))  # type: ignore[arg-type]


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every request checked against the rules.

    While a host's robots.txt is being fetched, Scrapy (2.19) makes the requests for that
    host wait on one shared Deferred, whose result only the first of them receives: the
    others get None and are sent unchecked, so a column robots.txt forbids was crawled all
    the same. Here each request reads the rules the fetch stored once it is done.
    """

    async def process_request(self, request, spider=None) -> None:
        """Raise IgnoreRequest("Forbidden by robots.txt") for a URL the rules forbid."""
        if request.meta.get("dont_obey_robotstxt") or request.url.startswith(
            ("data:", "file:")
        ):
            return
        rules = await self.robot_parser(request)
        stored = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(stored, Deferred):
            rules = stored
        if rules is None:
            return  # no robots.txt, or it could not be fetched: Scrapy allows all
        agent = self.crawler.settings.get(
            "ROBOTSTXT_USER_AGENT"
        ) or request.headers.get(b"User-Agent", self.crawler.settings.get("USER_AGENT"))
        if not rules.allowed(request.url, agent):
            self.crawler.stats.inc_value("robotstxt/forbidden")
            raise IgnoreRequest("Forbidden by robots.txt")


class MirrorMiddleware:
    """Sends requests for real hosts to a local mirror.

    Active when the spider has a ``mirror`` base URL. Sits after RobotsTxtMiddleware, so the
    rules apply to real URLs; each host's robots.txt is read from ``{mirror}/{host}/robots.txt``. Responses keep their mirror URL; spiders map it
    back with ``from_mirror`` (redirects then stay on the mirror).
    """

    def __init__(self, crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _mirror(self) -> str | None:
        return getattr(self.crawler.spider, "mirror", None)

    def process_request(self, request):
        mirror = self._mirror()
        if not mirror or request.url.startswith(mirror.rstrip("/") + "/"):
            return None
        if request.url.startswith(("http://", "https://")):
            mirrored = to_mirror(request.url, mirror)
            if not hasattr(request, "_url"):
                return request.replace(url=mirrored)
            # Changed in place: the request has passed the scheduler, its duplicate filter and
            # robots.txt under its real URL; only the download goes to the mirror. The real URL
            # was made safe when the request was built, so the mirror URL is not made safe again.
            request._url = mirrored
            _urlparse_cache.pop(request, None)
        return None


def retry_after_seconds(
    value: bytes | None, now: datetime | None = None
) -> float | None:
    """The wait a Retry-After header asks for: delta-seconds or an HTTP-date.

    None when there is no header or it reads as neither.

    >>> retry_after_seconds(b"120")
    120.0
    >>> retry_after_seconds(b"Wed, 21 Oct 2015 07:28:30 GMT", datetime(2015, 10, 21, 7, 28, tzinfo=UTC))
    30.0
    """
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries (5xx, 429, timeouts, connection errors) with exponential backoff.

    A response's Retry-After (seconds or an HTTP-date) is waited for when it is longer than
    the backoff, up to NIANBAO_RETRY_AFTER_MAX; a server asking for longer is not retried in
    this run (the failure is recorded) rather than asked again before it said.
    """

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.backoff = settings.getfloat("NIANBAO_RETRY_BACKOFF", 2.0)
        self.backoff_max = settings.getfloat("NIANBAO_RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("NIANBAO_RETRY_AFTER_MAX", 300.0)

    async def _wait(self, retry, retry_after: float = 0.0):
        if retry is not None:
            n = retry.meta.get("retry_times", 1)
            backoff = min(self.backoff * 2 ** (n - 1), self.backoff_max)
            delay = max(backoff, retry_after)
            if delay > 0:
                await asyncio.sleep(delay)
        return retry

    # Scrapy awaits a coroutine that a downloader middleware's method returns; its
    # RetryMiddleware, which this one extends, types them as plain methods.
    async def process_response(self, request, response, spider=None):  # type: ignore[override]
        retry_after = retry_after_seconds(response.headers.get(b"Retry-After"))
        if (
            retry_after is not None
            and retry_after > self.retry_after_max
            and response.status in self.retry_http_codes
        ):
            logger.warning(
                "not retrying %s: Retry-After %.0f s is above NIANBAO_RETRY_AFTER_MAX (%.0f s)",
                request.url,
                retry_after,
                self.retry_after_max,
            )
            return response
        result = super().process_response(request, response)
        if result is not response:
            return await self._wait(result, retry_after or 0.0)
        return result

    async def process_exception(self, request, exception, spider=None):  # type: ignore[override]
        result = super().process_exception(request, exception)
        return await self._wait(result)
