"""北京市政府门户 www.beijing.gov.cn: the 区政府 reports re-hosted under zfxxgknb/{Y}nb/qzf/."""

import re

from crawler.platforms import TrsSpider, yearly


class BeijingPortalSpider(TrsSpider):
    """Year columns ``zfxxgknb/{Y}nb/`` hold the 区政府 column ``qzf/``; ``t`` dates in the
    detail URLs are re-posting dates (2021), so the year comes from the title.
    """

    name = "beijing_portal"
    division_code = "110000"
    agency_name = "北京市人民政府"
    list_root = "https://www.beijing.gov.cn/gongkai/zfxxgk/zfxxgknb/"
    start_urls = (list_root, *yearly(list_root + "{year}nb/qzf/", 2017, 2023))
    column_pattern = re.compile(
        r"/zfxxgknb/\d{4}nb/(?:qzf/(?:index(?:_\d+)?\.html)?)?$"
    )
