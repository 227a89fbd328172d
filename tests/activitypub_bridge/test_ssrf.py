"""SSRF guard and domain blocks for the ActivityPub bridge's remote fetches.

Pure tests: the resolver is a dict standing in for DNS (``check_fetch_url`` takes it as an
argument precisely so no test needs a network); nothing is dialled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from activitypub_bridge.ssrf import (
    DomainError,
    FetchRefused,
    RefuseReason,
    address_refusal,
    check_fetch_url,
    domain_blocked,
    normalise_domain,
    parse_domain_block,
)

NON_PUBLIC = {
    "ipv4 loopback": "127.0.0.1",
    "ipv4 loopback other": "127.8.9.10",
    "ipv4 private 10/8": "10.1.2.3",
    "ipv4 private 172.16/12": "172.31.255.1",
    "ipv4 private 192.168/16": "192.168.1.1",
    "ipv4 link-local (cloud metadata)": "169.254.169.254",
    "ipv4 shared CGNAT": "100.64.0.1",
    "ipv4 unspecified": "0.0.0.0",
    "ipv4 this-network": "0.1.2.3",
    "ipv4 multicast": "224.0.0.1",
    "ipv4 reserved": "240.0.0.1",
    "ipv4 broadcast": "255.255.255.255",
    "ipv4 documentation": "192.0.2.1",
    "ipv6 loopback": "::1",
    "ipv6 unspecified": "::",
    "ipv6 link-local": "fe80::1",
    "ipv6 unique-local fc": "fc00::1",
    "ipv6 unique-local fd": "fd12:3456::1",
    "ipv6 multicast": "ff02::1",
    "ipv6 documentation": "2001:db8::1",
    "ipv4-mapped loopback": "::ffff:127.0.0.1",
    "ipv4-mapped private": "::ffff:10.0.0.1",
    "ipv4-compatible loopback": "::127.0.0.1",
    "6to4 of loopback": "2002:7f00:1::",
    "6to4 of private": "2002:c0a8:101::",
    "nat64 of loopback": "64:ff9b::7f00:1",
}
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001:81b::200e"]


def resolver(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    return resolve


def refused(url: str, **kwargs: Any) -> RefuseReason:
    with pytest.raises(FetchRefused) as info:
        check_fetch_url(url, **kwargs)
    assert str(info.value).startswith(str(info.value.reason))
    return info.value.reason


@pytest.mark.parametrize("address", NON_PUBLIC.values(), ids=NON_PUBLIC.keys())
def test_every_non_public_address_class_is_refused(address: str) -> None:
    assert address_refusal(address) is not None
    # As a resolved address of a name...
    resolve = resolver({"evil.example": ["93.184.215.14", address]})
    assert refused("https://evil.example/x", resolve=resolve) is RefuseReason.NON_PUBLIC_ADDRESS
    # ...and as a literal in the URL.
    host = f"[{address}]" if ":" in address else address
    assert refused(f"https://{host}/actor", resolve=resolver({})) is RefuseReason.NON_PUBLIC_ADDRESS


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None
    check_fetch_url(
        "https://mastodon.example/users/bob", resolve=resolver({"mastodon.example": [address]})
    )
    host = f"[{address}]" if ":" in address else address
    check_fetch_url(f"https://{host}:8443/users/bob", resolve=resolver({}))


def test_ipv4_mapped_loopback_refused_but_mapped_public_allowed() -> None:
    why = address_refusal("::ffff:127.0.0.1")
    assert why is not None and "127.0.0.1" in why and "loopback" in why
    assert address_refusal("::ffff:8.8.8.8") is None
    assert (
        refused("https://[::ffff:7f00:1]/", resolve=resolver({})) is RefuseReason.NON_PUBLIC_ADDRESS
    )


def test_allow_private_admits_loopback_and_http() -> None:
    resolve = resolver({"localhost": ["127.0.0.1", "::1"]})
    check_fetch_url("http://127.0.0.1:8080/inbox", resolve=resolve, allow_private=True)
    check_fetch_url("https://localhost:8443/inbox", resolve=resolve, allow_private=True)
    assert refused("https://localhost/", resolve=resolve) is RefuseReason.NON_PUBLIC_ADDRESS


def test_http_refused_unless_private_allowed() -> None:
    resolve = resolver({"mastodon.example": ["93.184.215.14"]})
    assert refused("http://mastodon.example/users/bob", resolve=resolve) is RefuseReason.SCHEME
    for url in ("ftp://mastodon.example/x", "file:///etc/passwd", "gopher://x/", "//x/y"):
        assert refused(url, resolve=resolve, allow_private=True) is RefuseReason.SCHEME


def test_bad_urls_and_unresolvable_hosts() -> None:
    resolve = resolver({"empty.example": [], "ok.example": ["8.8.8.8"]})
    assert refused("https://", resolve=resolve) is RefuseReason.BAD_URL
    assert refused("https://user:pw@ok.example/", resolve=resolve) is RefuseReason.BAD_URL
    assert refused("https://ok.example:99999/", resolve=resolve) is RefuseReason.BAD_URL
    assert refused("https://bad_label-.example/", resolve=resolve) is RefuseReason.BAD_URL
    assert refused("https://nowhere.example/", resolve=resolve) is RefuseReason.UNRESOLVED
    assert refused("https://empty.example/", resolve=resolve) is RefuseReason.UNRESOLVED
    check_fetch_url("https://OK.Example./users/x", resolve=resolve)


def test_blocked_domain_and_subdomains_refused_before_resolving() -> None:
    def resolve(host: str) -> list[str]:
        raise AssertionError(f"blocked host {host} must not be resolved")

    blocks = ["Coventry.Example", "*.bad.example"]
    for url in (
        "https://coventry.example/users/x",
        "https://social.coventry.example/inbox",
        "https://a.b.COVENTRY.example./inbox",
        "https://bad.example/",
        "https://x.bad.example/",
    ):
        assert refused(url, resolve=resolve, blocked_domains=blocks) is RefuseReason.BLOCKED_DOMAIN
    # Blocks apply even when private addresses are allowed.
    assert (
        refused(
            "http://coventry.example/", resolve=resolve, blocked_domains=blocks, allow_private=True
        )
        is RefuseReason.BLOCKED_DOMAIN
    )
    ok = resolver({"notcoventry.example": ["8.8.8.8"], "coventry.example.org": ["8.8.8.8"]})
    check_fetch_url("https://notcoventry.example/", resolve=ok, blocked_domains=blocks)
    check_fetch_url("https://coventry.example.org/", resolve=ok, blocked_domains=blocks)


def test_domain_blocked_matches_labels_not_suffix_strings() -> None:
    blocks = ["example.com"]
    assert domain_blocked("example.com", blocks)
    assert domain_blocked("a.example.com", blocks)
    assert domain_blocked("A.EXAMPLE.COM.", blocks)
    assert not domain_blocked("badexample.com", blocks)
    assert not domain_blocked("example.com.au", blocks)
    assert not domain_blocked("example.com", [])


def test_idna_normalisation() -> None:
    assert normalise_domain("Bücher.Example.") == "xn--bcher-kva.example"
    assert normalise_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert normalise_domain("_dmarc.EXAMPLE.com") == "_dmarc.example.com"
    assert normalise_domain("[::1]") == "::1"
    assert domain_blocked("www.bücher.example", ["XN--BCHER-KVA.example"])
    assert domain_blocked("www.xn--bcher-kva.example", ["Bücher.example"])
    resolve = resolver({"www.xn--bcher-kva.example": ["8.8.8.8"]})
    check_fetch_url("https://www.Bücher.example/", resolve=resolve)
    assert (
        refused("https://www.bücher.example/", resolve=resolve, blocked_domains=["bücher.example"])
        is RefuseReason.BLOCKED_DOMAIN
    )
    for bad in ("", ".", "a..b", "-a.example", "a" * 64 + ".example", "x" * 250 + ".example"):
        with pytest.raises(DomainError):
            normalise_domain(bad)


def test_parse_domain_block() -> None:
    assert parse_domain_block("  Coventry.Example. ") == "coventry.example"
    assert parse_domain_block("*.spam.example") == "spam.example"
    assert parse_domain_block("Bücher.example") == "xn--bcher-kva.example"
    for text, words in (
        ("", "empty"),
        ("   ", "empty"),
        ("https://spam.example", "not a URL"),
        ("spam.example/path", "path"),
        ("spam.example:443", "port"),
        ("admin@spam.example", "user name"),
        ("sp*m.example", "wildcard"),
        ("spam example", "blank"),
        ("a..example", "bad label"),
    ):
        with pytest.raises(DomainError, match=words):
            parse_domain_block(text)
