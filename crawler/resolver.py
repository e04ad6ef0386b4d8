"""Name resolution for the crawl: no name leads the crawler to a non-public address.

Scrapy installs ``PublicAddressResolver`` as the process's resolver (``TWISTED_DNS_RESOLVER``,
``DNS_RESOLVER`` before Scrapy 2.19; see crawler/settings.py), so the address checked is the
address connected to: a ``*.gov.cn`` name that resolves to a loopback, private or link-local
address (an internal service next to the site's server, or a DNS answer planted to reach
one) fails before any connection is attempted. ``HostGuardMiddleware`` asks the same
resolver before a request is sent, so that such a request is refused and recorded with its
reason rather than failing as a lookup error that is retried.
"""

from __future__ import annotations

import ipaddress

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError

from crawler.discovery import url_host


class AddressRefusedError(DNSLookupError):
    """A name resolved to an address the crawler must not connect to."""

    MESSAGE = "address refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def address_refusal(address: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """Why the crawler must not connect to ``address``; None for a public address.

    ``allowed``: addresses let through all the same (``NIANBAO_ALLOWED_TEST_ADDRESSES``).

    >>> address_refusal("169.254.169.254")
    'a link-local address'
    >>> address_refusal("114.247.86.85") is None
    True
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if str(ip) in allowed:
        return None
    # 0.0.0.0 reaches the local host, as 127.0.0.1 does.
    if ip.is_loopback or ip.is_unspecified:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or not ip.is_global:
        return "not a public address"
    return None


def allowed_test_addresses(settings) -> frozenset[str]:
    """``NIANBAO_ALLOWED_TEST_ADDRESSES``: non-public addresses tests may connect to."""
    return frozenset(
        str(ipaddress.ip_address(a.strip()))
        for a in settings.getlist("NIANBAO_ALLOWED_TEST_ADDRESSES")
    )


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class PublicAddressResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, failing every answer that is not a public address.

    The mirror's host (``NIANBAO_MIRROR``: the operator's own server) is exempt. Tests only:
    ``NIANBAO_ALLOWED_TEST_ADDRESSES`` lets the loopback test servers through, and
    ``NIANBAO_TEST_HOSTS`` (name → address) answers from a table instead of DNS; every name
    not in the table is then unknown, so a test never sends a DNS query.
    """

    def __init__(
        self,
        reactor,
        cache_size: int,
        timeout: float,
        *,
        trusted_hosts: frozenset[str] = frozenset(),
        allowed_addresses: frozenset[str] = frozenset(),
        test_hosts: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.trusted_hosts = trusted_hosts
        self.allowed_addresses = allowed_addresses
        self.test_hosts = test_hosts

    @classmethod
    def from_crawler(cls, crawler, reactor):
        settings = crawler.settings
        mirror_host = url_host(settings.get("NIANBAO_MIRROR") or "")
        test_hosts = settings.getdict("NIANBAO_TEST_HOSTS")
        return cls(
            reactor,
            settings.getint("DNSCACHE_SIZE")
            if settings.getbool("DNSCACHE_ENABLED")
            else 0,
            settings.getfloat("DNS_TIMEOUT"),
            trusted_hosts=frozenset({mirror_host} if mirror_host else ()),
            allowed_addresses=allowed_test_addresses(settings),
            test_hosts={k.lower(): v for k, v in test_hosts.items()} or None,
        )

    def getHostByName(self, name: str, timeout=()):  # noqa: N802 - Twisted's interface
        """The address of ``name``, failing with ``AddressRefusedError`` if it is not public."""
        key = name.lower().rstrip(".")
        if _is_ip_literal(key):
            answer = defer.succeed(key)
        elif self.test_hosts is not None:
            address = self.test_hosts.get(key)
            answer = (
                defer.succeed(address)
                if address
                else defer.fail(DNSLookupError(f"{name} is not in NIANBAO_TEST_HOSTS"))
            )
        else:
            answer = super().getHostByName(name, timeout)
        if key in self.trusted_hosts:
            return answer
        return answer.addCallback(self._public, name)

    def _public(self, address: str, name: str) -> str:
        reason = address_refusal(address, self.allowed_addresses)
        if reason:
            raise AddressRefusedError(f"{name} resolves to {address}, {reason}")
        return address
