"""Fetching a whole DAG: every block reachable from a root, breadth first, many at a time.

Works for anything :func:`dag.links_of` can follow: UnixFS files and directories (dag-pb with
raw or dag-pb leaves) and DAG-CBOR record graphs. Up to ``max_inflight`` blocks are wanted at
once (each one verified and stored by ``get_block`` before its links are followed); blocks the
store already holds are read locally and their links followed too, so an interrupted fetch
resumes where it stopped. Nothing is pinned: the caller decides.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from dag import CID, first_error, links_of

__all__ = ["FetchResult", "Progress", "fetch_dag"]

Progress = Callable[[int, int], None]
"""Called as ``progress(blocks_done, blocks_known)``; ``blocks_known`` grows as links are found."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    root: CID
    blocks: int  # every block of the DAG
    bytes: int  # their total size
    fetched: int  # blocks that came from the network
    already_had: int  # blocks the store held before


async def fetch_dag(
    get_block: Callable[[CID], Awaitable[tuple[bytes, bool]]],
    root: CID,
    *,
    max_inflight: int = 32,
    progress: Progress | None = None,
) -> FetchResult:
    """Walk the DAG under ``root``. ``get_block`` returns a block's bytes from the store or,
    fetched (verified and stored), from the network, and whether it was fetched."""
    seen = {bytes(root.digest)}
    send, receive = trio.open_memory_channel[CID](math.inf)
    send.send_nowait(root)
    state = {"outstanding": 1, "done": 0, "known": 1, "bytes": 0, "fetched": 0, "had": 0}

    async def worker() -> None:
        async for cid in receive:
            data, fetched = await get_block(cid)
            state["fetched" if fetched else "had"] += 1
            state["bytes"] += len(data)
            for link in links_of(cid, data):
                key = bytes(link.digest)
                if key not in seen:
                    seen.add(key)
                    state["outstanding"] += 1
                    state["known"] += 1
                    send.send_nowait(link)
            del data
            state["done"] += 1
            state["outstanding"] -= 1
            if progress is not None:
                progress(state["done"], state["known"])
            if state["outstanding"] == 0:
                await send.aclose()

    try:
        async with trio.open_nursery() as nursery:
            for _ in range(max(1, max_inflight)):
                nursery.start_soon(worker)
    except BaseExceptionGroup as group:
        error = first_error(group)
        if isinstance(error, trio.Cancelled):
            raise
        raise error from None
    finally:
        await send.aclose()
        await receive.aclose()
    return FetchResult(
        root=root,
        blocks=state["done"],
        bytes=state["bytes"],
        fetched=state["fetched"],
        already_had=state["had"],
    )
