"""A simulated fleet's sites as Scrapy spiders, read from the JSON file $NIANBAO_FLEET names.

cluster_benchmark.py writes the file (per site: a row in crawler/sites.toml's format and a
download delay) and crawls with ``nianbao crawl all -s SPIDER_MODULES=fleet_sites``, with
this folder on PYTHONPATH of the driver and the Dask workers. The spiders are built as
crawler/sites/ builds the declared ones (``site_from_row``, ``spider_class``), so the
crawl is the command's own; only the list of sites differs.
"""

import json
import os
from pathlib import Path

from crawler.platforms import spider_class
from crawler.registry import site_from_row


def _define_spiders() -> None:
    # Scrapy's spider loader takes the spider classes defined in this module.
    fleet = json.loads(Path(os.environ["NIANBAO_FLEET"]).read_text(encoding="utf-8"))
    for name, entry in fleet.items():
        spider = spider_class(site_from_row(name, entry["row"]))
        # Each site's politeness: a spider's settings rank above the project's and below
        # the command line's, so the crawl must not pass DOWNLOAD_DELAY itself.
        spider.custom_settings = {"DOWNLOAD_DELAY": entry["delay"]}
        spider.__module__ = __name__
        globals()[spider.__name__] = spider


_define_spiders()
