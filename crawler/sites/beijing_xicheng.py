"""北京市西城区 www.bjxch.gov.cn: the 政府信息公开年报 list and one page per unit and year."""

import re

from crawler.platforms import ReportSpider


class BeijingXichengSpider(ReportSpider):
    """The list names each unit's report; reports are pnidpv{ID}pntypepvnbpnnfpv{YEAR}.html.

    ``{YEAR}`` in the URL is the report year but the year is still read from the title.
    Report bodies sit in ``div.gknbxq_detail``.
    """

    name = "beijing_xicheng"
    division_code = "110102"
    agency_name = "北京市西城区人民政府"
    start_urls = ("https://www.bjxch.gov.cn/zt/xxgkzl/zfxxgknb.html",)
    report_url_pattern = re.compile(
        r"/zt/xxgkzl/gknbxqx?/pnidpv\d+(?:pntypepvnbpnnfpv\d{4})?\.html$"
    )
