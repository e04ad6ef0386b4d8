"""``scrapy crawl SITE`` that exits 1 when the site's run is in error, as ``nianbao crawl`` does.

Scrapy's own command fails only when the crawl cannot start. A site that finds no reports
where the archive holds some from earlier runs, that fetches no list page or whose archive
cannot be written, and a crawl stopped by Ctrl-C or SIGTERM, end with
``ReportSpider.final_error`` set (and logged): a cron job or a shell script needs to see that
in the exit code.
"""

from __future__ import annotations

from scrapy.commands.crawl import Command as ScrapyCrawlCommand


class Command(ScrapyCrawlCommand):
    """Scrapy's ``crawl``, plus exit code 1 when the spider reports an error."""

    def short_desc(self) -> str:  # noqa: D102 - the line ``scrapy -h`` shows
        return "Run a spider of the current project, by name; exit 1 if the site is in error"

    def process_options(self, args, opts) -> None:
        """Scrapy's options; ``-a mirror=URL`` also sets ``NIANBAO_MIRROR``.

        The resolver, built before any spider, trusts the mirror's host by that setting.
        """
        super().process_options(args, opts)
        assert self.settings is not None  # Scrapy sets them before it parses options
        if opts.spargs.get("mirror"):
            self.settings.set(
                "NIANBAO_MIRROR", opts.spargs["mirror"], priority="cmdline"
            )

    def run(self, args, opts) -> None:
        """Crawl as Scrapy does, then fail when the spider ended in error."""
        crawlers = []
        process = self.crawler_process
        assert process is not None  # Scrapy makes it before it runs the command
        create_crawler = process.create_crawler

        def create_and_keep(spider):
            crawler = create_crawler(spider)
            crawlers.append(crawler)
            return crawler

        # Every Scrapy version builds the command's crawler through this public method.
        # On this instance only (``del`` below), so mypy's method-assign does not apply.
        process.create_crawler = create_and_keep  # type: ignore[method-assign]
        try:
            super().run(args, opts)
        finally:
            del process.create_crawler
        if any(getattr(c.spider, "final_error", None) for c in crawlers):
            self.exitcode = 1
