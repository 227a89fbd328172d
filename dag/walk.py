"""A depth-first walk of a whole DAG (``links_of``, which it follows, lives in :mod:`dag.links`
and is re-exported here)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from multiformats import CID

from .blockstore import Blockstore
from .cids import multihash_key
from .links import links_of

__all__ = ["links_of", "walk_dag"]


async def walk_dag(
    store: Blockstore,
    roots: list[CID],
    *,
    get: Callable[[CID], Awaitable[bytes]] | None = None,
    seen: set[bytes] | None = None,
) -> AsyncIterator[tuple[CID, bytes]]:
    """Every block reachable from ``roots``, depth first in link order, each once (as Kubo's
    ``dag export`` orders them). ``get`` replaces ``store.get`` (e.g. one that fetches what
    the store lacks); ``seen`` holds multihash keys already emitted (and is updated)."""
    seen = set() if seen is None else seen
    read = store.get if get is None else get
    stack = list(reversed(roots))
    while stack:
        cid = stack.pop()
        key = multihash_key(cid)
        if key in seen:
            continue
        seen.add(key)
        data = await read(cid)
        yield cid, data
        stack.extend(reversed(links_of(cid, data)))
