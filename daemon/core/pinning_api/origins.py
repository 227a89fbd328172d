"""Which ``Pin.origins`` the Pinning Service may dial: the SSRF guard for multiaddrs.

Origins come from whoever holds a pinning token, and the node dials them: without a check, a
client could make the node open TCP connections to its own loopback services, the operator's
LAN or a cloud metadata address (``/ip4/169.254.169.254/...``). The address policy is the
fediverse client's (:func:`activitypub_bridge.ssrf.address_refusal`): loopback, private,
shared, link-local, unique-local, multicast, unspecified and reserved addresses are refused,
IPv4 inside IPv6 included, unless ``[pinning] allow_private_origins`` is on (tests on
127.0.0.1, or a node that pins for its own LAN).

Sans-I/O, in two steps so the caller does the DNS: :func:`names_to_resolve` lists the
``/dns``, ``/dns4`` and ``/dns6`` names of an origin; :func:`check_origin` takes their
resolved addresses and returns the multiaddr to dial, with each name replaced by a checked
address, so the dial cannot resolve the name again to somewhere else (DNS rebinding). Every
address a name resolves to must pass, not just the one used. ``/dnsaddr`` names (TXT records
holding more multiaddrs) are refused when private origins are not allowed: what they lead to
cannot be checked before the dial. The spec says origins should be public addresses anyway
("Avoid sending addresses from local networks").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

import multiaddr

from activitypub_bridge.ssrf import address_refusal
from p2p import DialRefused

__all__ = ["OriginRefused", "check_origin", "names_to_resolve"]

_NAME_PROTOCOLS = ("dns", "dns4", "dns6")
_ADDRESS_PROTOCOLS = ("ip4", "ip6")


class OriginRefused(DialRefused):
    """An origin the node will not dial; the message says why, in one line."""


def _parts(addr: str) -> list[tuple[str, str | None]]:
    try:
        ma = multiaddr.Multiaddr(addr)
        parts = [(proto.name, value) for proto, value in ma.items()]
    except Exception as exc:
        raise OriginRefused(f"{addr[:200]!r} is not a multiaddr: {exc}") from None
    if not any(name == "p2p" for name, _ in parts):
        raise OriginRefused(f"{addr[:200]!r} has no /p2p/<peer id>")
    return parts


def names_to_resolve(addr: str) -> list[tuple[str, str]]:
    """``(protocol, name)`` of each ``/dns*`` component of ``addr`` that needs resolving
    (:class:`OriginRefused` if ``addr`` is not a multiaddr with ``/p2p/<peer id>``)."""
    return [
        (name, str(value))
        for name, value in _parts(addr)
        if name in _NAME_PROTOCOLS and value is not None
    ]


def check_origin(
    addr: str,
    resolved: Mapping[str, Sequence[str]] | None = None,
    *,
    allow_private: bool = False,
) -> str:
    """The multiaddr to dial for origin ``addr``, or :class:`OriginRefused`.

    ``resolved`` maps each name of :func:`names_to_resolve` to its addresses (a name missing
    or without addresses refuses the origin). With ``allow_private`` the origin is dialled as
    given."""
    parts = _parts(addr)
    if allow_private:
        return addr
    out: list[str] = []
    for name, value in parts:
        text = "" if value is None else str(value)
        if name in _ADDRESS_PROTOCOLS:
            why = address_refusal(text)
            if why is not None:
                raise OriginRefused(f"origin {addr[:200]}: {why}")
        elif name == "dnsaddr":
            raise OriginRefused(
                f"origin {addr[:200]}: /dnsaddr cannot be checked before dialling; "
                "send /ip4, /ip6 or /dns addresses"
            )
        elif name in _NAME_PROTOCOLS:
            name, text = _checked_address(addr, name, text, (resolved or {}).get(text, ()))
        out.append(f"/{name}/{text}" if value is not None else f"/{name}")
    return "".join(out)


def _checked_address(addr: str, proto: str, host: str, found: Sequence[str]) -> tuple[str, str]:
    """``(ip4|ip6, address)`` to dial in place of ``/proto/host``: every address ``host``
    resolved to must be public; the first of the family ``proto`` asks for is used."""
    if not found:
        raise OriginRefused(f"origin {addr[:200]}: {host} does not resolve")
    usable: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in found:
        why = address_refusal(text)
        if why is not None:
            raise OriginRefused(f"origin {addr[:200]}: {host} resolves to a refused address: {why}")
        ip = ipaddress.ip_address(text)
        if proto == "dns" or (proto == "dns4") == (ip.version == 4):
            usable.append(ip)
    if not usable:
        family = "IPv4" if proto == "dns4" else "IPv6"
        raise OriginRefused(f"origin {addr[:200]}: {host} has no {family} address")
    first = usable[0]
    return ("ip4" if first.version == 4 else "ip6"), str(first)
