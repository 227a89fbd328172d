"""Bringing a whole DAG into the node's store: dial the origins, then fetch every missing block.

Used by the Pinning Service worker (:mod:`daemon.core.pinning_api.worker`) and by pinning policies
(followed creators, popular works): :func:`fetch_dag` first dials the given origin multiaddrs
(best effort, as the Pinning Service spec asks: an origin that cannot be dialled is logged and
skipped; one on a loopback, private or otherwise non-public address is not dialled at all
unless allowed, see :mod:`daemon.core.pinning_api.origins`), then walks the DAG from ``root`` with
:func:`p2p.bitswap.fetch.fetch_dag`, up to ``max_parallel`` blocks in flight. Blocks the store
holds are read locally (their links are followed too, so an interrupted fetch resumes where it
stopped); missing ones come through the node's bitswap, which asks connected peers and, when
none answers, providers found on the DHT. Each fetched block is checked against its CID and
stored before its links are followed. The whole fetch runs under one deadline. Nothing is
pinned: the caller decides.

While the fetch runs the root is held in the store (``store.hold``), so
a garbage collection running meanwhile does not drop the blocks already fetched.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

import dag
from daemon.core.pinning_api.origins import OriginRefused, check_origin, names_to_resolve
from dag import CID, cid_to_str
from p2p.bitswap.fetch import fetch_dag as _walk_and_fetch
from p2p.errors import P2PError

if TYPE_CHECKING:
    from daemon.core.node import Node

__all__ = ["DagFetchError", "FetchReport", "dial_origins", "dialable_origin", "fetch_dag"]

log = logging.getLogger("artdag.pinning")

Progress = Callable[[int, int], None]
"""``progress(blocks_done, blocks_known)``, called per block."""


class DagFetchError(Exception):
    """The DAG could not be completed: a block no peer delivered in time, the network is off,
    a block that cannot be decoded, or the store refused to write."""


@dataclass(frozen=True, slots=True)
class FetchReport:
    blocks: int  # every block of the DAG
    fetched: int  # of them, brought from the network
    bytes: int  # their total size


async def _resolve(name: str, proto: str) -> list[str]:
    """Every address ``name`` resolves to (none if it does not)."""
    family = {"dns4": socket.AF_INET, "dns6": socket.AF_INET6}.get(proto, socket.AF_UNSPEC)
    try:
        found = await trio.socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in found))


async def dialable_origin(addr: str, *, allow_private: bool) -> str:
    """The multiaddr to dial for ``addr`` (its names resolved and every address checked, see
    :mod:`daemon.core.pinning_api.origins`), or
    :class:`~daemon.core.pinning_api.origins.OriginRefused`."""
    names = names_to_resolve(addr)
    if allow_private or not names:
        return check_origin(addr, allow_private=allow_private)
    resolved = {name: await _resolve(name, proto) for proto, name in names}
    return check_origin(addr, resolved)


async def dial_origins(
    node: Node,
    origins: Sequence[str],
    *,
    timeout: float = 10.0,
    allow_private: bool = False,
    refused: list[str] | None = None,
) -> int:
    """Dial each origin with ``/p2p/<peer id>`` concurrently, each within ``timeout`` seconds;
    returns how many connected. Loopback, private and other non-public addresses are not
    dialled unless ``allow_private``; why each refused origin was refused is appended to
    ``refused``. Failures and refusals are logged, never raised."""
    network = node.network
    if network is None or not origins:
        return 0
    connected = 0

    async def one(addr: str) -> None:
        nonlocal connected
        try:
            with trio.fail_after(timeout):
                target = await dialable_origin(addr, allow_private=allow_private)
                await network.connect(target)
            connected += 1
        except OriginRefused as exc:
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
    node: Node,
    root: CID,
    *,
    origins: Sequence[str] = (),
    timeout: float,
    max_parallel: int = 16,
    progress: Progress | None = None,
    allow_private_origins: bool = False,
) -> FetchReport:
    """Make every block reachable from ``root`` present in ``node.store`` within ``timeout``
    seconds (origins dialled first), or raise :class:`DagFetchError` saying why not.

    Without a running network the walk still succeeds if the store already holds the DAG."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    store = node.store
    shown = cid_to_str(root)
    refused: list[str] = []

    async def get_block(cid: CID) -> tuple[bytes, bool]:
        try:
            return await store.get(cid), False
        except dag.BlockNotFound:
            pass
        network = node.network
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
                await dial_origins(
                    node,
                    origins,
                    timeout=min(10.0, timeout),
                    allow_private=allow_private_origins,
                    refused=refused,
                )
                result = await _walk_and_fetch(
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
