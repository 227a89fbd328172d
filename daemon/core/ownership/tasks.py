"""Opening the ownership services with what they need (called by :mod:`daemon.services` only),
and the daemon's loops for them: claims arriving by gossip, fingerprinting media assets,
upgrading pending anchors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

import dag
from daemon.config import AnchorConfig
from daemon.core.index import Index
from daemon.core.ownership.anchors import AnchorService
from daemon.core.ownership.claims import Announce, ClaimsService
from dag import CID, Blockstore
from provenance import Identity, verify_signed
from renderer import Limits

if TYPE_CHECKING:
    from p2p.network import Network

__all__ = ["open_anchors", "open_claims", "run_claims_gossip", "run_ownership_tasks"]

log = logging.getLogger("artdag.claims")

FINGERPRINT_SCAN_S = 10.0  # look for new media assets to fingerprint this often
ANCHOR_UPGRADE_S = 3600.0  # ask the calendars about pending anchors this often


@asynccontextmanager
async def open_anchors(
    store: Blockstore, identity: Identity, index_path: Path, home: Path, config: AnchorConfig
) -> AsyncIterator[AnchorService]:
    """The anchoring service: calendars and header source from ``[anchor]``, ``.ots`` proofs
    under ``home/anchors``, its tables in the index database."""
    async with AnchorService(
        store, identity, index_path, home, list(config.calendars), config.header_source
    ) as anchors:
        yield anchors


@asynccontextmanager
async def open_claims(
    store: Blockstore,
    index: Index,
    identity: Identity,
    anchors: AnchorService,
    *,
    index_path: Path,
    tmp_root: Path,
    announce: Announce,
    network: Network | None,
    find_provenance: Callable[[CID], Awaitable[CID | None]] | None,
    limits: Limits | None = None,
) -> AsyncIterator[ClaimsService]:
    """The claims service, ranking claims by the verified anchor times of ``anchors`` and
    reading what a rendered work was made from through ``find_provenance``."""

    async def anchor_time(cid: str) -> float | None:
        return await trio.to_thread.run_sync(anchors.earliest_time, cid)

    claims = ClaimsService(
        store,
        index,
        identity,
        index_path=index_path,
        tmp_root=tmp_root,
        announce=announce,
        network=network,
        limits=limits,
        find_provenance=find_provenance,
        anchor_time=anchor_time,
    )
    try:
        yield claims
    finally:
        claims.close()


async def run_claims_gossip(
    network: Network,
    store: Blockstore,
    claims: ClaimsService,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Index every valid claim announced on ``/artdag/1/claims`` (fetching its record)."""
    from p2p.gossip import CLAIMS

    assert network.gossip is not None
    messages = network.gossip.subscribe(CLAIMS.name)
    task_status.started()
    async for delivered in messages:
        claim_cid: CID = delivered.record["claim"]
        try:
            with trio.fail_after(60):
                raw = await network.get_block(claim_cid)
            record = dag.decode_dagcbor(raw)
            verify_signed(record)
            if record.get("type") != "claim" or record["signer"] != delivered.record["signer"]:
                raise ValueError("not a claim by the announcer")
            await store.pin(claim_cid)
            await claims.index_remote_claim(claim_cid, record)
        except Exception as exc:
            log.info("announced claim %s not indexed: %s", claim_cid, exc)


async def run_ownership_tasks(
    store: Blockstore,
    claims: ClaimsService,
    anchors: AnchorService,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """The daemon's background work for ownership: fingerprint every media asset this node
    holds (so that copies of it are recognised), and upgrade pending anchors."""
    task_status.started()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_fingerprint_assets, store, claims)
        nursery.start_soon(_upgrade_anchors, anchors)


async def _fingerprint_assets(store: Blockstore, claims: ClaimsService) -> None:
    failed: set[str] = set()
    while True:
        missing = await trio.to_thread.run_sync(claims.table.missing, 20 + len(failed))
        for key in [k for k in missing if k not in failed]:
            cid = dag.parse_cid(key)
            if not await store.has(cid):
                failed.add(key)  # a remote asset whose bytes we do not hold
                continue
            try:
                if await claims.fingerprint(cid) is None:
                    failed.add(key)
            except Exception as exc:
                log.info("cannot fingerprint %s: %s", key, exc)
                failed.add(key)
        await trio.sleep(FINGERPRINT_SCAN_S)


async def _upgrade_anchors(anchors: AnchorService) -> None:
    while True:
        await trio.sleep(ANCHOR_UPGRADE_S)
        try:
            done = await anchors.upgrade_all()
            if done:
                log.info("%d anchor(s) now attested in Bitcoin", len(done))
        except Exception as exc:
            log.info("anchor upgrade failed (will retry): %s", exc)
