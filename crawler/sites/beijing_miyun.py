"""北京市密云区 www.bjmy.gov.cn: zfxxgknb/gknb{Y}/ TRS year columns."""

from crawler.platforms import TrsSpider, yearly


class BeijingMiyunSpider(TrsSpider):
    """One column per report year, ``gknb{Y}/``, paginated index.html, index_1.html …"""

    name = "beijing_miyun"
    division_code = "110118"
    agency_name = "北京市密云区人民政府"
    list_root = "https://www.bjmy.gov.cn/zwgk/zfxxgk/zfxxgknb/"
    start_urls = yearly(list_root + "gknb{year}/", 2017)
