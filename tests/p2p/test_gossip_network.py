"""Gossip between real py-libp2p hosts over loopback (in one process, one trio run)."""

from __future__ import annotations

import time

import pytest
import trio

from dag import encode_dagcbor
from p2p.gossip import HEADS
from provenance import record_cid
from tests.harness.gossip_nodes import gossip_nodes, head_message, link


async def test_signed_message_reaches_every_subscriber_on_a_line() -> None:
    async with gossip_nodes(4) as nodes:
        a, b, c, d = nodes
        subs = [n.gossip.subscribe(HEADS.name) for n in (b, c, d)]
        await link(a, b)
        await link(b, c)
        await link(c, d)
        message = head_message(a.identity)
        t0 = time.perf_counter()
        cid = await a.gossip.publish(HEADS.name, message)
        got = []
        with trio.fail_after(10):
            for sub in subs:
                got.append(await sub.receive())
        elapsed_ms = (time.perf_counter() - t0) * 1000
        print(f"propagation over 3 hops: {elapsed_ms:.1f} ms")
        for delivered in got:
            assert delivered.cid == cid == record_cid(message)
            assert delivered.record == message
            assert delivered.from_peer == a.peer
        assert got[2].received_from == c.peer  # d heard it from its only neighbour
        # the store callback ran before delivery, on every node
        assert [len(n.stored) for n in (b, c, d)] == [1, 1, 1]
        assert a.stored == []  # our own publishes are not handed back to us


async def test_tampered_and_replayed_messages_are_rejected_and_charged() -> None:
    async with gossip_nodes(3) as nodes:
        a, b, c = nodes  # star around b: a - b - c
        sub_b, sub_c = b.gossip.subscribe(HEADS.name), c.gossip.subscribe(HEADS.name)
        await link(a, b)
        await link(c, b)

        # 1. a valid message, then its exact bytes re-published as a new pubsub message
        message = head_message(a.identity, 0)
        await a.gossip.publish(HEADS.name, message)
        with trio.fail_after(10):
            first_b, first_c = await sub_b.receive(), await sub_c.receive()
        assert first_b.cid == first_c.cid == record_cid(message)
        await a.gossip.pubsub.publish(HEADS.name, encode_dagcbor(message))  # replay

        # 2. a signed message whose bytes were changed after signing
        forged = {**head_message(a.identity, 1), "seq": 7}
        await a.gossip.pubsub.publish(HEADS.name, encode_dagcbor(forged))

        # 3. a later valid message proves the bad ones were not delivered before it
        later = head_message(a.identity, 2)
        await a.gossip.publish(HEADS.name, later)
        with trio.fail_after(10):
            assert (await sub_b.receive()).record == later
            assert (await sub_c.receive()).record == later

        stats = b.gossip.peer_stats()[a.peer]
        assert stats.valid == 2
        assert stats.invalid == {"replay": 1, "bad-signature": 1}
        assert stats.score < 0
        # c never saw the bad messages: b did not forward them
        assert c.gossip.peer_stats()[b.peer].invalid_total == 0
        assert c.gossip.peer_stats()[b.peer].valid == 2


@pytest.mark.slow
async def test_fifty_messages_a_second_from_one_publisher_all_arrive() -> None:
    async with gossip_nodes(3) as nodes:
        a, b, c = nodes
        sub_c = c.gossip.subscribe(HEADS.name)
        await link(a, b)
        await link(b, c)
        messages = [head_message(a.identity, seq) for seq in range(100)]
        for message in messages:  # ~50 msg/s for 2 s: above py-libp2p's default 10/s limit
            await a.gossip.publish(HEADS.name, message)
            await trio.sleep(0.02)
        received = []
        with trio.fail_after(20):
            while len(received) < len(messages):
                received.append((await sub_c.receive()).record["seq"])
        assert sorted(received) == list(range(100))
        assert c.gossip.dropped == 0
