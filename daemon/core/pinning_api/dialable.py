"""The I/O half of the origins policy: an origin's DNS names resolved, then every address checked.

:mod:`daemon.core.pinning_api.origins` is the sans-I/O half (which names to resolve, and which
addresses may be dialled); :func:`dialable_origin` does the DNS between its two steps. With
``allow_private`` bound (``functools.partial``) it is the :data:`p2p.OriginCheck` the DAG fetch
(:func:`p2p.fetch_dag`) dials origins through.
"""

from __future__ import annotations

import socket

import trio

from .origins import check_origin, names_to_resolve

__all__ = ["dialable_origin"]


async def _resolve(name: str, proto: str) -> list[str]:
    """Every address ``name`` resolves to (none if it does not)."""
    family = {"dns4": socket.AF_INET, "dns6": socket.AF_INET6}.get(proto, socket.AF_UNSPEC)
    try:
        found = await trio.socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in found))


async def dialable_origin(addr: str, *, allow_private: bool) -> str:
    """The multiaddr to dial for ``addr`` (its names resolved and every address checked), or
    :class:`~daemon.core.pinning_api.origins.OriginRefused` (a :class:`p2p.DialRefused`)."""
    names = names_to_resolve(addr)
    if allow_private or not names:
        return check_origin(addr, allow_private=allow_private)
    resolved = {name: await _resolve(name, proto) for proto, name in names}
    return check_origin(addr, resolved)
