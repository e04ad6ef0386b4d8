"""Pages are read as nianbao_common.decode reads them, whether or not Scrapy's decoding is reused."""

from __future__ import annotations

import codecs

import pytest
from scrapy.http import HtmlResponse, Response, TextResponse

from crawler.platforms import _decode
from nianbao_common.decode import decode_document

_PAGE = "<html><head>{meta}</head><body><p>西城区2023年政府信息公开工作年度报告</p></body></html>"


@pytest.mark.parametrize(
    ("cls", "content_type", "body"),
    [
        (HtmlResponse, "text/html; charset=utf-8", _PAGE.format(meta="").encode()),
        (HtmlResponse, "text/html", _PAGE.format(meta="").encode()),
        (
            HtmlResponse,
            "text/html; charset=UTF8",
            codecs.BOM_UTF8 + _PAGE.format(meta="").encode(),
        ),
        # GBK without any charset: Scrapy guesses cp1252, decode_document GB18030.
        (HtmlResponse, "text/html", _PAGE.format(meta="").encode("gbk")),
        # GBK declared as UTF-8: Scrapy replaces bytes, decode_document does not.
        (HtmlResponse, "text/html; charset=utf-8", _PAGE.format(meta="").encode("gbk")),
        (
            HtmlResponse,
            "text/html",
            _PAGE.format(meta='<meta charset="gb2312">').encode("gbk"),
        ),
        # A page that really holds U+FFFD.
        (HtmlResponse, "text/html; charset=utf-8", "a\ufffdb".encode()),
        (TextResponse, "text/plain", "年度报告".encode()),
        (Response, "application/octet-stream", b"\x00\x01"),
    ],
)
def test_decode_reads_as_decode_document(cls, content_type, body):
    response = cls(
        "https://x.gov.cn/a.html", body=body, headers={"Content-Type": content_type}
    )
    if isinstance(response, HtmlResponse):
        response.text  # noqa: B018 - as MetaRefreshMiddleware leaves it
    assert _decode(response) == decode_document(body, content_type)


def test_the_crawler_does_not_load_pandas():
    """The spiders import no extract module; pandas would slow every collection of the crawl."""
    import subprocess
    import sys

    probe = (
        "import sys, crawler.cli, crawler.platforms, scrapy.crawler\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'extract') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"
