"""The declared sites of crawler/sites.toml as Scrapy spiders, one class each (SPIDER_MODULES)."""

from crawler.platforms import spider_class
from crawler.registry import declared_sites


def _define_spiders() -> None:
    # Scrapy's spider loader takes the spider classes defined in this module.
    for site in declared_sites().values():
        spider = spider_class(site)
        spider.__module__ = __name__
        globals()[spider.__name__] = spider


_define_spiders()
