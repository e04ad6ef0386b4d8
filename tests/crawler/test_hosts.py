"""Only allowed hosts, at every hop: links, redirects and DNS answers that lead elsewhere."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.settings import Settings
from twisted.internet._resolver import SimpleResolverComplexifier
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IReactorPluggableNameResolver
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer

from crawler import discovery
from crawler.middlewares import HostGuardMiddleware, RefusedRequest
from crawler.resolver import AddressRefusedError, PublicAddressResolver, address_refusal
from nianbao.demo.server import SnapshotServer
from tests.crawler.conftest import run_hostile_site
from tests.crawler.hostile_site import (
    FOREIGN_HOST,
    HOST,
    INTERNAL_PAGES,
    INTRANET_HOST,
    hostile_pages,
)

# -- links -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "cleaned"),
    [
        # Read as host 127.0.0.1 by browsers and w3lib, as www.bjxch.gov.cn by urllib.
        ("http://127.0.0.1:9999\\@www.bjxch.gov.cn/x.html", None),
        ("http://www.bjxch.gov.cn\\.evil.com/x", None),
        ("http://www.bjxch.gov.cn@127.0.0.1:9999/x", None),
        ("http://user:pw@www.bjxch.gov.cn/x", None),
        ("http://www.bjxch.gov.cn%2e127.0.0.1/x", None),
        ("http://127.0.0.1:9999/x.html", None),
        ("http://[::1]/x.html", None),
        ("http://2130706433/x.html", None),
        ("http://localhost/x.html", None),
        ("http://www.bjxch.gov.cn:99999/x", None),
        # The host as the client sends it: lower case, IDNA, no trailing dot.
        ("HTTP://WWW.BJXCH.GOV.CN./x.html", "http://www.bjxch.gov.cn/x.html"),
        ("http://ｗｗｗ.bjxch.gov.cn/x.html", "http://www.bjxch.gov.cn/x.html"),
        ("http://www。bjxch。gov。cn:8080/x", "http://www.bjxch.gov.cn:8080/x"),
    ],
)
def test_links_are_read_as_the_client_sends_them(url, cleaned):
    assert discovery.clean_url(url) == cleaned


# -- the check before each request -------------------------------------------------------


def _guard(
    answers: dict[str, str] | None = None, mirror: str | None = None, **settings
):
    """The middleware with a resolver stub: ``answers`` maps names to addresses."""
    resolved: list[str] = []

    async def resolve(host: str) -> str:
        resolved.append(host)
        return (answers or {})[host]

    spider = SimpleNamespace(
        mirror=mirror,
        host_schemes={"www.bjxch.gov.cn": "https"},
        extra_hosts=frozenset(),
    )
    crawler = SimpleNamespace(spider=spider, settings=Settings(settings))
    return HostGuardMiddleware(crawler, resolve=resolve), resolved


def _check(guard, url: str, **meta) -> None:
    asyncio.run(guard.process_request(Request(url, meta=meta)))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9999/internal.html", "127.0.0.1 is not an allowed host"),
        ("http://localhost:9999/internal.html", "localhost is not an allowed host"),
        (
            "https://www.example.com/report.html",
            "www.example.com is not an allowed host",
        ),
        # w3lib sends it to 127.0.0.1; older versions keep an escaped backslash.
        ("http://127.0.0.1:9999\\@www.bjxch.gov.cn/x.html", None),
        (
            "http://www.bjxch.gov.cn@127.0.0.1:9999/x.html",
            "not http(s) with a plain host[:port]",
        ),
        ("http://www.bjxch.gov.cn.xzscdzx.com/x.html", "is not an allowed host"),
    ],
)
def test_requests_to_other_hosts_are_refused_before_any_lookup(url, reason):
    guard, resolved = _guard()
    with pytest.raises(RefusedRequest, match=reason and re.escape(reason)):
        _check(guard, url)
    assert resolved == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "a private address"),
        ("192.168.0.8", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("127.0.0.1", "a loopback address"),
        ("0.0.0.0", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "not a public address"),
    ],
)
def test_a_gov_cn_name_resolving_to_an_internal_address_is_refused(address, reason):
    guard, resolved = _guard({"www.bjxch.gov.cn": address})
    with pytest.raises(RefusedRequest) as refused:
        _check(guard, "https://www.bjxch.gov.cn/zt/a.html")
    assert resolved == ["www.bjxch.gov.cn"]
    assert str(refused.value) == (
        f"https://www.bjxch.gov.cn/zt/a.html: www.bjxch.gov.cn resolves to {address}, {reason}"
    )


def test_a_public_address_passes_and_a_redirect_is_named_as_such():
    guard, _ = _guard({"www.bjxch.gov.cn": "114.247.86.85"})
    _check(guard, "https://www.bjxch.gov.cn/zt/a.html")
    with pytest.raises(RefusedRequest, match="^redirect to http://127.0.0.1:9"):
        _check(
            guard, "http://127.0.0.1:9/x", redirect_urls=["https://www.bjxch.gov.cn/"]
        )


def test_the_resolvers_refusal_is_the_reason():
    async def resolve(host: str) -> str:
        raise AddressRefusedError(f"{host} resolves to 10.0.0.1, a private address")

    guard, _ = _guard()
    guard.resolve = resolve
    with pytest.raises(
        RefusedRequest, match="resolves to 10.0.0.1, a private address$"
    ):
        _check(guard, "https://www.bjxch.gov.cn/zt/a.html")


def test_test_addresses_are_let_through_only_when_named():
    guard, _ = _guard(
        {"www.bjxch.gov.cn": "127.0.0.1"}, NIANBAO_ALLOWED_TEST_ADDRESSES="127.0.0.1"
    )
    _check(guard, "https://www.bjxch.gov.cn/zt/a.html")
    guard, _ = _guard(
        {"www.bjxch.gov.cn": "127.0.0.2"}, NIANBAO_ALLOWED_TEST_ADDRESSES="127.0.0.1"
    )
    with pytest.raises(RefusedRequest, match="127.0.0.2, a loopback address"):
        _check(guard, "https://www.bjxch.gov.cn/zt/a.html")


def test_through_a_mirror_the_real_url_is_checked_and_nothing_resolved():
    mirror = "http://127.0.0.1:8000"
    guard, resolved = _guard(mirror=mirror)
    _check(guard, f"{mirror}/www.bjxch.gov.cn/zt/a.html")  # a redirect on the mirror
    _check(guard, "https://www.bjxch.gov.cn/zt/a.html")  # to be rewritten to the mirror
    _check(guard, f"{mirror}/robots.txt")
    for url in ("http://127.0.0.1:8001/secret", f"{mirror}/127.0.0.1:9999/secret"):
        with pytest.raises(RefusedRequest, match="127.0.0.1 is not an allowed host"):
            _check(guard, url)
    assert resolved == []


# -- the resolver where the connection is made --------------------------------------------


@implementer(IReactorPluggableNameResolver)
class _RecordingReactor(MemoryReactorClock):
    """Records connection attempts instead of making them, resolving with ``resolver``."""

    def __init__(self, resolver) -> None:
        super().__init__()
        # What ReactorBase.installResolver does with Scrapy's DNS_RESOLVER.
        self.nameResolver = SimpleResolverComplexifier(resolver)


def _connect(answers: dict[str, str], name: str, **options):
    """Connect to ``name`` through PublicAddressResolver answering from ``answers``."""
    reactor = _RecordingReactor(None)
    resolver = PublicAddressResolver(reactor, 0, 5.0, test_hosts=answers, **options)
    reactor.nameResolver = SimpleResolverComplexifier(resolver)
    outcome = []
    HostnameEndpoint(reactor, name, 80).connect(Factory.forProtocol(Protocol)).addBoth(
        outcome.append
    )
    reactor.advance(1)
    return reactor.tcpClients, outcome, resolver


@pytest.mark.parametrize("address", ["10.0.0.8", "169.254.169.254", "127.0.0.1"])
def test_the_resolver_fails_internal_answers_before_any_connection(address):
    clients, outcome, resolver = _connect(
        {"www.bjxch.gov.cn": address}, "www.bjxch.gov.cn"
    )
    assert clients == []
    assert outcome[0].check(DNSLookupError)
    failed = []
    resolver.getHostByName("www.bjxch.gov.cn").addErrback(failed.append)
    assert failed[0].check(AddressRefusedError)
    assert address in failed[0].value.reason


def test_the_resolver_connects_to_public_trusted_and_allowed_addresses():
    public = _connect({"www.bjxch.gov.cn": "114.247.86.85"}, "www.bjxch.gov.cn")[0]
    assert [c[:2] for c in public] == [("114.247.86.85", 80)]
    mirror = _connect(
        {"mirror.local": "127.0.0.1"}, "mirror.local", trusted_hosts={"mirror.local"}
    )
    assert [c[:2] for c in mirror[0]] == [("127.0.0.1", 80)]
    allowed = _connect(
        {"www.bjxch.gov.cn": "127.0.0.1"},
        "www.bjxch.gov.cn",
        allowed_addresses={"127.0.0.1"},
    )
    assert [c[:2] for c in allowed[0]] == [("127.0.0.1", 80)]
    # With a test table, a name not in it is unknown: no DNS query is made.
    unknown = _connect({}, "www.bjxch.gov.cn")
    assert unknown[0] == [] and unknown[1][0].check(DNSLookupError)


def test_address_refusals():
    assert address_refusal("114.247.86.85") is None
    assert address_refusal("224.0.0.1") == "not a public address"
    assert address_refusal("10.0.0.1", frozenset({"10.0.0.1"})) is None
    assert address_refusal("not-an-address") == "not an IP address"


# -- whole crawls -----------------------------------------------------------------------


def _rows(data_dir: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(data_dir / "raw" / "manifest.sqlite")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_crawled_by_name_only_the_site_is_fetched_and_every_other_hop_refused(tmp_path):
    with SnapshotServer(INTERNAL_PAGES) as internal, SnapshotServer({}) as server:
        port = server.url.rsplit(":", 1)[1]
        site = f"http://{HOST}:{port}"
        server.pages.update(hostile_pages(site, internal.url))
        answers = {
            HOST: "127.0.0.1",
            FOREIGN_HOST: "127.0.0.1",
            INTRANET_HOST: "127.0.0.2",
        }
        result = run_hostile_site(
            tmp_path,
            "-s",
            f"HOSTILE_SITE_PORT={port}",
            "-s",
            f"NIANBAO_TEST_HOSTS={json.dumps(answers)}",
            "-s",
            "NIANBAO_ALLOWED_TEST_ADDRESSES=127.0.0.1",
        )
        fetched = {h.path for h in server.hits()}
        assert internal.hits() == []
    assert result.returncode == 0, result.stdout + result.stderr
    # lists reports new changed same failed refused attach.
    assert re.search(
        r"hostile_site\s+1\s+1\s+1\s+0\s+0\s+0\s+7\s+1\s+ok", result.stdout
    )
    assert fetched == {
        "/robots.txt",
        "/nb/index.html",
        "/nb/ok.html",
        "/nb/ok.pdf",
        "/nb/moved.pdf",
        "/nb/to-loopback.html",
        "/nb/to-localhost.html",
        "/nb/to-foreign.html",
        "/nb/hop1.html",
        "/nb/hop2.html",
        "/nb/refresh.html",
    }
    records = _rows(tmp_path, "SELECT kind, url, final_url FROM records ORDER BY rowid")
    assert records == [
        ("list", f"{site}/nb/index.html", f"{site}/nb/index.html"),
        ("report", f"{site}/nb/ok.html", f"{site}/nb/ok.html"),
        ("attachment", f"{site}/nb/ok.pdf", f"{site}/nb/ok.pdf"),
    ]
    failures = dict(_rows(tmp_path, "SELECT url, error FROM failures"))
    secret = f"redirect to {internal.url}/secret"
    assert failures == {
        f"{site}/nb/moved.pdf": f"refused: {secret}.pdf: 127.0.0.1 is not an allowed host",
        f"{site}/nb/to-loopback.html": f"refused: {secret}.html: 127.0.0.1 is not an allowed host",
        f"{site}/nb/to-localhost.html": "refused: redirect to "
        + internal.url.replace("127.0.0.1", "localhost")
        + "/secret.html: localhost is not an allowed host",
        f"{site}/nb/to-foreign.html": f"refused: redirect to http://{FOREIGN_HOST}:{port}"
        f"/nb/foreign.html: {FOREIGN_HOST} is not an allowed host",
        f"{site}/nb/hop1.html": f"refused: {secret}.html: 127.0.0.1 is not an allowed host",
        f"{site}/nb/refresh.html": f"refused: {secret}.html: 127.0.0.1 is not an allowed host",
        f"http://{INTRANET_HOST}:{port}/nb/in.html": f"refused: http://{INTRANET_HOST}:{port}"
        f"/nb/in.html: {INTRANET_HOST} resolves to 127.0.0.2, a loopback address",
    }


def test_through_a_mirror_redirects_off_the_mirror_are_refused(tmp_path):
    with SnapshotServer(INTERNAL_PAGES) as internal, SnapshotServer({}) as mirror:
        site = f"http://{HOST}:8080"
        mirror.pages.update(
            hostile_pages(site, internal.url, prefix=f"/{HOST}:8080", by_name=False)
        )
        result = run_hostile_site(
            tmp_path, "--mirror", mirror.url, "-s", "HOSTILE_SITE_PORT=8080"
        )
        assert internal.hits() == []
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"hostile_site\s+1\s+1\s+1\s+0\s+0\s+0\s+6\s+1\s+ok", result.stdout
    )
    assert _rows(
        tmp_path, "SELECT url FROM records WHERE kind != 'list' ORDER BY rowid"
    ) == [
        (f"{site}/nb/ok.html",),
        (f"{site}/nb/ok.pdf",),
    ]
    assert all(
        error.startswith("refused: redirect to ")
        for (error,) in _rows(tmp_path, "SELECT error FROM failures")
    )
