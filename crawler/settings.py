"""Scrapy settings for the nianbao spiders: polite by default.

Government sites are small servers: at most two requests at a time per domain, AutoThrottle
on, robots.txt obeyed, retries with backoff on 5xx and timeouts, and a size cap per
response. Override for a run with ``scrapy crawl SITE -s KEY=VALUE`` or
``nianbao crawl SITE -s KEY=VALUE``.
"""

from scrapy.settings import default_settings as _scrapy_defaults

BOT_NAME = "nianbao"
SPIDER_MODULES = ["crawler.sites"]
NEWSPIDER_MODULE = "crawler.sites"
# `scrapy crawl` exits 1 when the site is in error (crawler/commands/crawl.py).
COMMANDS_MODULE = "crawler.commands"

NIANBAO_CONTACT_URL = "https://github.com/nianbao/nianbao#crawler"
USER_AGENT = f"nianbao/0.1 (government information disclosure annual reports research; +{NIANBAO_CONTACT_URL})"

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
CONCURRENT_ITEMS = 1
DOWNLOAD_DELAY = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 60
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
DOWNLOAD_WARNSIZE = 16 * 1024 * 1024

RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# Seconds before retry n: NIANBAO_RETRY_BACKOFF * 2 ** (n - 1), at most NIANBAO_RETRY_BACKOFF_MAX.
NIANBAO_RETRY_BACKOFF = 2.0
NIANBAO_RETRY_BACKOFF_MAX = 60.0
# A Retry-After longer than the backoff is waited for, up to this many seconds; a server
# asking for longer is not asked again in this run.
NIANBAO_RETRY_AFTER_MAX = 300.0

DOWNLOADER_MIDDLEWARES = {
    # Before robots.txt (100): a refused host's robots.txt is not fetched either.
    "crawler.middlewares.HostGuardMiddleware": 90,
    # Scrapy's, with every request waiting for a robots.txt checked (crawler/middlewares.py).
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.RobotsTxtMiddleware": 100,
    "crawler.middlewares.MirrorMiddleware": 110,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
}

# Per site and run, at most this many list pages, report URLs and attachment URLs are
# followed (0: no limit); the summary reports a limit reached.
NIANBAO_MAX_LIST_PAGES = 500
NIANBAO_MAX_REPORTS = 5000
NIANBAO_MAX_ATTACHMENTS = 20000

# Reports without ETag/Last-Modified are fetched again only when their archived copy is
# older than this many days (0: never).
NIANBAO_REVISIT_DAYS = 30
NIANBAO_WARC_MAX_BYTES = 512 * 1024 * 1024
# On a Dask cluster (--scheduler), sites are crawled in shards of about this many (sites
# sharing a host always in one), each shard a process crawling its sites at once; fewer
# only to give every worker a shard. A worker killed mid-crawl takes its shard's
# uncommitted groups with it.
NIANBAO_SHARD_SITES = 25

# Names that resolve to loopback, private or link-local addresses are refused where the
# connection is made. Scrapy 2.19 renamed DNS_RESOLVER (which still works, with a warning).
if hasattr(_scrapy_defaults, "TWISTED_DNS_RESOLVER"):
    TWISTED_DNS_RESOLVER = "crawler.resolver.PublicAddressResolver"
else:
    DNS_RESOLVER = "crawler.resolver.PublicAddressResolver"
# Tests only: non-public addresses that may be reached (the loopback test servers), and
# names answered from this table (name → address) instead of DNS.
NIANBAO_ALLOWED_TEST_ADDRESSES: list[str] = []
NIANBAO_TEST_HOSTS: dict[str, str] = {}

COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
HTTPCACHE_ENABLED = False
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
