"""Gossip between artdag and a real Kubo 0.22 node (go-libp2p-pubsub), loopback only.

Kubo runs in a child process (tests/harness/ipfs_peers.py); its calls block, so they run in a worker
thread while our host keeps serving. Kubo has no event to wait on, so its side is polled.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
from libp2p.abc import IHost

from dag import encode_dagcbor
from p2p.gossip import HEADS, Gossip, make_head_message
from p2p.host import connect, peer_id_of, running_host
from provenance import Identity, record_cid
from tests.harness.ipfs_peers import KuboInProcess

pytestmark = pytest.mark.interop


@asynccontextmanager
async def gossip_with_kubo(kubo: KuboInProcess) -> AsyncIterator[tuple[IHost, Gossip]]:
    async with running_host() as host, trio.open_nursery() as nursery:
        gossip = Gossip(host, [HEADS], identity=Identity.generate())
        await nursery.start(gossip.run)
        await connect(host, kubo.p2p_addrs[0])
        # Kubo learns our subscription once the pubsub stream is up
        with trio.fail_after(20):
            while host.get_id().to_base58() not in await trio.to_thread.run_sync(
                kubo.pubsub_peers, HEADS.name
            ):
                await trio.sleep(0.05)
        yield host, gossip
        nursery.cancel_scope.cancel()


async def test_signed_envelope_published_by_kubo_reaches_our_subscriber(
    kubo: KuboInProcess,
) -> None:
    async with gossip_with_kubo(kubo) as (_, gossip):
        sub = gossip.subscribe(HEADS.name)
        creator = Identity.generate()
        message = make_head_message(creator, 0, record_cid({"type": "x"}))
        await trio.to_thread.run_sync(kubo.pubsub_publish, HEADS.name, encode_dagcbor(message))
        with trio.fail_after(20):
            delivered = await sub.receive()
        assert delivered.record == message and delivered.cid == record_cid(message)
        assert delivered.from_peer == kubo.peer_id == delivered.received_from
        # and a forged envelope from Kubo is refused and charged to Kubo's peer id
        forged = {**make_head_message(creator, 1, record_cid({"type": "y"})), "seq": 9}
        await trio.to_thread.run_sync(kubo.pubsub_publish, HEADS.name, encode_dagcbor(forged))
        follow = make_head_message(creator, 2, record_cid({"type": "z"}))
        await trio.to_thread.run_sync(kubo.pubsub_publish, HEADS.name, encode_dagcbor(follow))
        with trio.fail_after(20):
            assert (await sub.receive()).record == follow
        stats = gossip.peer_stats()[kubo.peer_id]
        assert stats.valid == 2 and stats.invalid == {"bad-signature": 1}


async def test_our_publish_reaches_kubos_subscription(kubo: KuboInProcess) -> None:
    ksub = await trio.to_thread.run_sync(kubo.pubsub_subscribe, HEADS.name)
    async with gossip_with_kubo(kubo) as (host, gossip):
        kubo_id = peer_id_of(kubo.peer_id)
        await gossip.wait_for_mesh(kubo_id, HEADS.name, timeout=20)
        message = make_head_message(Identity.generate(), 0, record_cid({"type": "x"}))
        await gossip.publish(HEADS.name, message)
        got = None
        with trio.fail_after(20):
            while got is None:
                got = await trio.to_thread.run_sync(partial(kubo.pubsub_next, ksub))
                if got is None:
                    await trio.sleep(0.05)
        # Kubo's message JSON (go-libp2p-pubsub's Message): data as base64
        assert base64.b64decode(got["data"]) == encode_dagcbor(message)
        assert got["from"] == host.get_id().to_base58()
        # Kubo 0.22's go-libp2p-pubsub offers /meshsub/1.1.0 and 1.0.0; we settle on 1.1.0
        assert gossip.router.peer_protocol[kubo_id] == "/meshsub/1.1.0"
