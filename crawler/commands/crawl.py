"""``scrapy crawl SITE`` that exits 1 when the site's run is in error, as ``nianbao crawl`` does.

Scrapy's own command fails only when the crawl cannot start. A site that finds no reports
where the archive holds some from earlier runs, or that fetches no list page, ends its crawl
normally with ``ReportSpider.error`` set (and logged): that is a broken site, and a cron job
or a shell script needs to see it in the exit code.
"""

from __future__ import annotations

from scrapy.commands.crawl import Command as ScrapyCrawlCommand


class Command(ScrapyCrawlCommand):
    """Scrapy's ``crawl``, plus exit code 1 when the spider reports an error."""

    def short_desc(self) -> str:  # noqa: D102 - the line ``scrapy -h`` shows
        return "Run a spider of the current project, by name; exit 1 if the site is in error"

    def run(self, args, opts) -> None:
        """Crawl as Scrapy does, then fail when the spider ended in error."""
        self._crawlers = []
        super().run(args, opts)
        if any(getattr(c.spider, "error", None) for c in self._crawlers):
            self.exitcode = 1

    def _create_crawler(self, spidercls):
        crawler = super()._create_crawler(spidercls)
        self._crawlers.append(crawler)
        return crawler
