"""Bounded sites: per-site limits on list pages, reports and attachments; Retry-After."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime

import pytest
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from crawler import middlewares
from crawler.middlewares import BackoffRetryMiddleware, retry_after_seconds
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import run_hostile_site
from tests.crawler.hostile_site import HOST, endless_pages


def test_limits_bound_an_endless_site_and_the_summary_says_so(tmp_path):
    with SnapshotServer(endless_pages(f"/{HOST}:8080")) as mirror:
        result = run_hostile_site(
            tmp_path,
            "--mirror",
            mirror.url,
            "-s",
            "HOSTILE_SITE_PORT=8080",
            "-s",
            "NIANBAO_MAX_LIST_PAGES=5",
            "-s",
            "NIANBAO_MAX_REPORTS=12",
            "-s",
            "NIANBAO_MAX_ATTACHMENTS=4",
        )
        fetched = [h.path for h in mirror.hits() if not h.path.endswith("robots.txt")]
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(fetched) == 5 + 12 + 4
    con = sqlite3.connect(tmp_path / "raw" / "manifest.sqlite")
    try:
        kinds = dict(con.execute("SELECT kind, count(*) FROM records GROUP BY kind"))
    finally:
        con.close()
    assert kinds == {"list": 5, "report": 12, "attachment": 4}
    notes = re.findall(r"^LIMIT hostile_site: (.*)$", result.stdout, re.MULTILINE)
    assert [n.split(" reached: ")[0] for n in notes] == [
        "NIANBAO_MAX_LIST_PAGES (5)",
        "NIANBAO_MAX_REPORTS (12)",
        "NIANBAO_MAX_ATTACHMENTS (4)",
    ]
    for note, kind in zip(notes, ("list page", "report", "attachment"), strict=True):
        assert re.search(rf"reached: [1-9]\d* more {kind} URLs not followed$", note)
    assert result.stdout.strip().endswith("ok")  # a limit reached is not an error


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (b"120", 120.0),
        (b" 0 ", 0.0),
        (b"Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        (b"Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        (b"soon", None),
        (b"-5", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert retry_after_seconds(header, now) == seconds


@pytest.fixture
def retry(monkeypatch):
    """The retry middleware with backoff 0.5 s and Retry-After honoured up to 10 s."""
    crawler = get_crawler(
        Spider, {"NIANBAO_RETRY_BACKOFF": 0.5, "NIANBAO_RETRY_AFTER_MAX": 10}
    )
    crawler.spider = Spider.from_crawler(crawler, name="t")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(middlewares.asyncio, "sleep", sleep)
    return BackoffRetryMiddleware.from_crawler(crawler), slept


def _answer(middleware, status: int, **headers):
    request = Request("https://www.bjxch.gov.cn/a.html")
    response = Response(request.url, status=status, headers=headers, request=request)
    return asyncio.run(middleware.process_response(request, response))


def test_retry_after_is_waited_for_up_to_the_maximum(retry):
    middleware, slept = retry
    assert isinstance(_answer(middleware, 503, **{"Retry-After": "7"}), Request)
    assert isinstance(_answer(middleware, 429, **{"Retry-After": "0"}), Request)
    assert isinstance(_answer(middleware, 503), Request)
    assert slept == [7.0, 0.5, 0.5]  # never shorter than the backoff
    # Asked to wait longer than the maximum: not asked again in this run.
    refused = _answer(middleware, 503, **{"Retry-After": "3600"})
    assert isinstance(refused, Response) and refused.status == 503
    assert slept == [7.0, 0.5, 0.5]
    assert _answer(middleware, 200, **{"Retry-After": "3600"}).status == 200
