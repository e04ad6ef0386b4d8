"""Downloader middlewares: local mirrors and retries with backoff."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.httpobj import _urlparse_cache


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


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries (5xx, timeouts, connection errors) with exponential backoff."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.backoff = settings.getfloat("NIANBAO_RETRY_BACKOFF", 2.0)
        self.backoff_max = settings.getfloat("NIANBAO_RETRY_BACKOFF_MAX", 60.0)

    async def _wait(self, retry):
        if retry is not None and self.backoff > 0:
            n = retry.meta.get("retry_times", 1)
            await asyncio.sleep(min(self.backoff * 2 ** (n - 1), self.backoff_max))
        return retry

    async def process_response(self, request, response, spider=None):
        result = super().process_response(request, response)
        if result is not response:
            return await self._wait(result)
        return result

    async def process_exception(self, request, exception, spider=None):
        result = super().process_exception(request, exception)
        return await self._wait(result)
