"""Bringing a whole DAG into a store: dial the origins, then fetch every missing block.

Used by the daemon's Pinning Service worker and by its pinning policies (followed creators,
popular works): :func:`fetch_dag` first dials the given origin multiaddrs (best effort, as the
Pinning Service spec asks: an origin that cannot be dialled is logged and skipped; one the
caller's ``check_origin`` refuses, such as a loopback or private address, is not dialled at
all), then walks the DAG from ``root`` with :func:`p2p.bitswap.fetch.fetch_dag`, up to
``max_parallel`` blocks in flight. Blocks the store holds are read locally (their links are
followed too, so an interrupted fetch resumes where it stopped); missing ones come through the
network's bitswap, which asks connected peers and, when none answers, providers found on the
DHT. Each fetched block is checked against its CID and stored before its links are followed. The
whole fetch runs under one deadline. Nothing is pinned: the caller decides.

While the fetch runs the root is held in the store (``store.hold``), so a garbage collection
running meanwhile does not drop the blocks already fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

import dag
from dag import CID, Blockstore, cid_to_str

from .bitswap.fetch import Progress
from .bitswap.fetch import fetch_dag as walk_and_fetch
from .errors import P2PError

__all__ = [
    "BlockNetwork",
    "DagFetchError",
    "DagSource",
    "DialRefused",
    "Dialer",
    "FetchReport",
    "OriginCheck",
    "dial_origins",
    "fetch_dag",
]

log = logging.getLogger("artdag.pinning")


class DagFetchError(Exception):
    """The DAG could not be completed: a block no peer delivered in time, the network is off,
    a block that cannot be decoded, or the store refused to write."""


class DialRefused(ValueError):
    """An address the caller's policy will not have dialled; the message says why, in one line."""


OriginCheck = Callable[[str], Awaitable[str]]
"""The multiaddr to dial for an origin (e.g. with its DNS names resolved to checked addresses),
or :class:`DialRefused`."""


class Dialer(Protocol):
    """What dialling origins needs of the network: connect to a multiaddr, return the peer id."""

    async def connect(self, addr: str) -> str: ...


class BlockNetwork(Dialer, Protocol):
    """What fetching needs of the network (:class:`p2p.network.Network` fits)."""

    async def get_block(self, cid: CID, *, timeout: float = 60.0) -> bytes: ...


class DagSource(Protocol):
    """Where a DAG is fetched into and from: the store, and the running network (None while it
    is not running; read again for every missing block). The daemon's node is one."""

    @property
    def store(self) -> Blockstore: ...

    @property
    def network(self) -> BlockNetwork | None: ...


@dataclass(frozen=True, slots=True)
class FetchReport:
    blocks: int  # every block of the DAG
    fetched: int  # of them, brought from the network
    bytes: int  # their total size


async def dial_origins(
    network: Dialer | None,
    origins: Sequence[str],
    *,
    check_origin: OriginCheck,
    timeout: float = 10.0,
    refused: list[str] | None = None,
) -> int:
    """Dial each origin with ``/p2p/<peer id>`` concurrently, each within ``timeout`` seconds;
    returns how many connected. What is dialled is what ``check_origin`` returns; why each
    origin it refused was refused is appended to ``refused``. Failures and refusals are
    logged, never raised."""
    if network is None or not origins:
        return 0
    connected = 0

    async def one(addr: str) -> None:
        nonlocal connected
        try:
            with trio.fail_after(timeout):
                target = await check_origin(addr)
                await network.connect(target)
            connected += 1
        except DialRefused as exc:
            log.info("origin not dialled: %s", exc)
            if refused is not None:
                refused.append(str(exc))
        except (P2PError, trio.TooSlowError) as exc:
            log.info("origin %s not reached: %s", addr[:200], exc or "timed out")

    async with trio.open_nursery() as nursery:
        for addr in dict.fromkeys(origins):
            nursery.start_soon(one, addr)
    return connected


async def fetch_dag(
    source: DagSource,
    root: CID,
    *,
    origins: Sequence[str] = (),
    timeout: float,
    max_parallel: int = 16,
    progress: Progress | None = None,
    check_origin: OriginCheck | None = None,
) -> FetchReport:
    """Make every block reachable from ``root`` present in ``source.store`` within ``timeout`` s
    (``origins`` dialled first, through ``check_origin``, which origins require: whoever names
    them may not be trusted), or raise :class:`DagFetchError` saying why not.

    Without a network (None: it is off) the walk still succeeds if the store holds the DAG."""
    store = source.store
    if origins and check_origin is None:
        raise ValueError("origins to dial need a check_origin")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    shown = cid_to_str(root)
    refused: list[str] = []

    async def get_block(cid: CID) -> tuple[bytes, bool]:
        try:
            return await store.get(cid), False
        except dag.BlockNotFound:
            pass
        network = source.network
        if network is None:
            raise DagFetchError(
                f"block {cid_to_str(cid)} of {shown} is missing and the p2p network is off"
            )
        data = await network.get_block(cid, timeout=timeout)  # the overall deadline binds first
        if not await store.has(cid):  # bitswap stores before it returns; make sure anyway
            await store.put(dag.Block.checked(cid, data))
        return data, True

    with store.hold(root):
        try:
            with trio.fail_after(timeout):
                if check_origin is not None:
                    await dial_origins(
                        source.network,
                        origins,
                        check_origin=check_origin,
                        timeout=min(10.0, timeout),
                        refused=refused,
                    )
                result = await walk_and_fetch(
                    get_block, root, max_inflight=max_parallel, progress=progress
                )
        except trio.TooSlowError:
            why = f"{shown}: not every block arrived within {timeout:g} s"
            if refused:  # say so: the client may have meant that origin to serve the DAG
                why += f" (not dialled: {'; '.join(refused)[:600]})"
            raise DagFetchError(why) from None
        except DagFetchError:
            raise
        except (P2PError, dag.DagError) as exc:
            raise DagFetchError(f"{shown}: {exc}") from None
    log.info(
        "fetched %s: %d blocks (%d from the network), %d bytes",
        shown,
        result.blocks,
        result.fetched,
        result.bytes,
    )
    return FetchReport(blocks=result.blocks, fetched=result.fetched, bytes=result.bytes)
