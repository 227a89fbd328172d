"""Wiring ownership into the node: the claims service with its provenance and anchor lookups,
and (in the daemon) claims arriving by gossip."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

import dag
from daemon.core.node import Node
from daemon.core.ownership.anchors import AnchorService
from daemon.core.ownership.claims import ClaimsService
from daemon.core.render.service import RenderService
from dag import CID
from provenance import verify_signed

__all__ = ["open_anchors", "open_claims", "run_claims_gossip", "run_ownership_tasks"]

log = logging.getLogger("artdag.claims")

FINGERPRINT_SCAN_S = 10.0  # look for new media assets to fingerprint this often
ANCHOR_UPGRADE_S = 3600.0  # ask the calendars about pending anchors this often


@asynccontextmanager
async def open_anchors(node: Node) -> AsyncIterator[AnchorService]:
    config = node.config
    async with AnchorService(
        node.store,
        node.identity,
        config.index_path,
        config.home,
        list(config.anchor.calendars),
        config.anchor.header_source,
    ) as anchors:
        yield anchors


@asynccontextmanager
async def open_claims(node: Node) -> AsyncIterator[ClaimsService]:
    """The claims service, with render provenance and verified anchor times wired in; its
    anchor service is ``claims.anchors``."""
    renders = RenderService.for_node(node)
    async with open_anchors(node) as anchors:

        async def anchor_time(cid: str) -> float | None:
            return await trio.to_thread.run_sync(anchors.earliest_time, cid)

        claims = ClaimsService(
            node,
            limits=renders.limits,
            find_provenance=renders.provenance_of,
            anchor_time=anchor_time,
        )
        claims.anchors = anchors
        try:
            yield claims
        finally:
            claims.close()
            renders.close()


async def run_claims_gossip(
    node: Node, claims: ClaimsService, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Index every valid claim announced on ``/artdag/1/claims`` (fetching its record)."""
    from p2p.gossip import CLAIMS

    assert node.network is not None and node.network.gossip is not None
    messages = node.network.gossip.subscribe(CLAIMS.name)
    task_status.started()
    async for delivered in messages:
        claim_cid: CID = delivered.record["claim"]
        try:
            with trio.fail_after(60):
                raw = await node.network.get_block(claim_cid)
            record = dag.decode_dagcbor(raw)
            verify_signed(record)
            if record.get("type") != "claim" or record["signer"] != delivered.record["signer"]:
                raise ValueError("not a claim by the announcer")
            await node.store.pin(claim_cid)
            await claims.index_remote_claim(claim_cid, record)
        except Exception as exc:
            log.info("announced claim %s not indexed: %s", claim_cid, exc)


async def run_ownership_tasks(
    node: Node, claims: ClaimsService, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """The daemon's background work for ownership: fingerprint every media asset this node
    holds (so that copies of it are recognised), and upgrade pending anchors."""
    task_status.started()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_fingerprint_assets, node, claims)
        nursery.start_soon(_upgrade_anchors, node)


async def _fingerprint_assets(node: Node, claims: ClaimsService) -> None:
    failed: set[str] = set()
    while True:
        missing = await trio.to_thread.run_sync(claims.table.missing, 20 + len(failed))
        for key in [k for k in missing if k not in failed]:
            cid = dag.parse_cid(key)
            if not await node.store.has(cid):
                failed.add(key)  # a remote asset whose bytes we do not hold
                continue
            try:
                if await claims.fingerprint(cid) is None:
                    failed.add(key)
            except Exception as exc:
                log.info("cannot fingerprint %s: %s", key, exc)
                failed.add(key)
        await trio.sleep(FINGERPRINT_SCAN_S)


async def _upgrade_anchors(node: Node) -> None:
    async with open_anchors(node) as anchors:
        while True:
            await trio.sleep(ANCHOR_UPGRADE_S)
            try:
                done = await anchors.upgrade_all()
                if done:
                    log.info("%d anchor(s) now attested in Bitcoin", len(done))
            except Exception as exc:
                log.info("anchor upgrade failed (will retry): %s", exc)
