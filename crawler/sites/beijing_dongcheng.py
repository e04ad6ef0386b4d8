"""北京市东城区 www.bjdch.gov.cn: zfxxgknb/{Y}nb/{category}{Y}/ TRS columns."""

from crawler.platforms import TrsSpider, yearly


class BeijingDongchengSpider(TrsSpider):
    """Category slugs change by year (dcgzfbm→dcqzfbm, dcqjd→dcqid): they are read from each
    ``{Y}nb/`` listing, never declared here.
    """

    name = "beijing_dongcheng"
    division_code = "110101"
    agency_name = "北京市东城区人民政府"
    list_root = "https://www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/"
    start_urls = yearly(list_root + "{year}nb/", 2020)
