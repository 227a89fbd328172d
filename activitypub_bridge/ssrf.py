"""Guards for fetches the bridge makes on a remote party's say-so (SSRF) and domain blocks.

Sans-I/O: :func:`check_fetch_url` takes the resolver as an argument (``resolve(host) ->
addresses``), so the policy is tested without DNS and the trio adapter decides how to resolve
(``trio.socket.getaddrinfo``). The policy: https only (plain http only with ``allow_private``,
as loopback tests need); the host must not be blocked (a block covers the domain and every
subdomain); and every address the host resolves to must be globally routable — loopback,
private, shared (CGNAT), link-local, unique-local, multicast, unspecified and reserved
addresses are refused, in IPv4 and IPv6, including IPv4 addresses carried inside IPv6
(IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo). All addresses are checked, not just the first,
because the connection may use any of them; the caller should connect to one of the checked
addresses (not resolve again) so DNS rebinding cannot slip past the check.

Domains are compared after :func:`normalise_domain`: lower case, one trailing dot dropped,
internationalised names in their IDNA (punycode) form via the ``idna`` package (UTS 46
mapping, IDNA 2008), so ``Bücher.Example.`` and ``xn--bcher-kva.example`` are one domain.
ASCII names skip IDNA because IDNA 2008 refuses the underscores real DNS names carry.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from urllib.parse import urlsplit

import idna

__all__ = [
    "DomainError",
    "FetchRefused",
    "IPAddress",
    "RefuseReason",
    "Resolver",
    "address_refusal",
    "check_fetch_url",
    "domain_blocked",
    "normalise_domain",
    "parse_domain_block",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Iterable[str | IPAddress]]

_ASCII_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_DOMAIN = 253


class RefuseReason(StrEnum):
    BAD_URL = "bad url"
    SCHEME = "scheme not allowed"
    BLOCKED_DOMAIN = "blocked domain"
    UNRESOLVED = "host does not resolve"
    NON_PUBLIC_ADDRESS = "non-public address"


class FetchRefused(Exception):
    """A URL the bridge will not fetch; ``reason`` says which rule refused it."""

    def __init__(self, reason: RefuseReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DomainError(ValueError):
    """Text that is not a usable domain name (or domain block)."""


def normalise_domain(host: str) -> str:
    """``host`` lower-cased, without one trailing dot, IDNA-encoded; IP literals as-is.

    Raises :class:`DomainError` naming the problem (empty, bad label, too long, bad IDNA).
    """
    if not isinstance(host, str):
        raise DomainError(f"a domain is a string, got {type(host).__name__}")
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise DomainError(f"empty domain name: {host!r}")
    if text.isascii():
        text = text.lower()
    else:
        try:
            text = idna.encode(text, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError as exc:
            raise DomainError(f"not a valid internationalised domain {host!r}: {exc}") from None
    if len(text) > _MAX_DOMAIN:
        raise DomainError(f"domain longer than {_MAX_DOMAIN} characters: {host[:60]!r}...")
    for label in text.split("."):
        if not _ASCII_LABEL.match(label):
            raise DomainError(f"bad label {label!r} in domain {host!r}")
    return text


def parse_domain_block(text: str) -> str:
    """A domain block from config or ``artdag block DOMAIN``: the normalised domain.

    Accepts ``example.com``, ``*.example.com`` (the same: a block always covers subdomains) and
    surrounding blanks; refuses URLs, ports, paths, user names and wildcards elsewhere.
    """
    if not isinstance(text, str):
        raise DomainError(f"a domain block is a string, got {type(text).__name__}")
    raw = text.strip()
    if raw.startswith("*."):
        raw = raw[2:]
    if not raw:
        raise DomainError("empty domain block")
    if "://" in raw:
        raise DomainError(f"a domain block is a domain, not a URL: {text!r} (drop the scheme)")
    for bad, what in (("/", "a path"), ("@", "a user name"), ("*", "a wildcard"), (" ", "a blank")):
        if bad in raw:
            raise DomainError(f"a domain block must not contain {what}: {text!r}")
    if ":" in raw:
        try:
            ipaddress.IPv6Address(raw.strip("[]"))
        except ValueError:
            raise DomainError(f"a domain block must not contain a port: {text!r}") from None
    return normalise_domain(raw)


def domain_blocked(host: str, blocks: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``blocks`` or a subdomain of one (after normalisation).

    Blocks are read as :func:`parse_domain_block` reads them (``*.example`` is ``example``).
    """
    try:
        name = normalise_domain(host)
    except DomainError:
        return False
    blocked: set[str] = set()
    for block in blocks:
        try:
            blocked.add(parse_domain_block(block))
        except DomainError:
            continue  # config loading reports bad blocks (parse_domain_block); skip here
    if name in blocked:
        return True
    labels = name.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(1, len(labels)))


def address_refusal(address: str | IPAddress) -> str | None:
    """Why ``address`` is not a public address to fetch from, or None if it is global."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            # ::ffff:a.b.c.d connects to a.b.c.d: judge it by that address alone.
            inner = address_refusal(addr.ipv4_mapped)
            return None if inner is None else f"{addr} maps IPv4 {addr.ipv4_mapped}: {inner}"
        embedded = addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is not None:
            inner = address_refusal(embedded)
            if inner is not None:
                return f"{addr} carries IPv4 {embedded}: {inner}"
    for test, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(addr, test):
            return f"{addr} is {name}"
    if not addr.is_global:
        return f"{addr} is not globally routable"
    return None


def check_fetch_url(
    url: str,
    *,
    resolve: Resolver,
    allow_private: bool = False,
    blocked_domains: Iterable[str] = (),
) -> None:
    """Raise :class:`FetchRefused` unless the bridge may fetch ``url``.

    ``resolve(host)`` returns the host's addresses (strings or :mod:`ipaddress` objects); an
    ``OSError`` from it, or no addresses, refuses the URL. ``allow_private`` (tests on
    127.0.0.1) admits plain http and non-public addresses; blocks apply regardless.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError, AttributeError) as exc:
        raise FetchRefused(RefuseReason.BAD_URL, f"cannot parse {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed:
        raise FetchRefused(RefuseReason.SCHEME, f"{scheme or 'no'} scheme in {url!r}; only https")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(RefuseReason.BAD_URL, f"credentials in URL {url!r}")
    if not parts.hostname:
        raise FetchRefused(RefuseReason.BAD_URL, f"no host in {url!r}")
    if port == 0:
        raise FetchRefused(RefuseReason.BAD_URL, f"port 0 in {url!r}")
    try:
        host = normalise_domain(parts.hostname)
    except DomainError as exc:
        raise FetchRefused(RefuseReason.BAD_URL, str(exc)) from None
    if domain_blocked(host, blocked_domains):
        raise FetchRefused(RefuseReason.BLOCKED_DOMAIN, f"{host} is blocked")
    try:
        addresses: list[str | IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = list(resolve(host))
        except OSError as exc:
            raise FetchRefused(RefuseReason.UNRESOLVED, f"{host}: {exc}") from None
    if not addresses:
        raise FetchRefused(RefuseReason.UNRESOLVED, f"{host} has no addresses")
    if allow_private:
        return
    for address in addresses:
        why = address_refusal(address)
        if why is not None:
            raise FetchRefused(RefuseReason.NON_PUBLIC_ADDRESS, f"{host}: {why}")
