"""Real py-libp2p hosts in one process, each running gossip on the HEADS topic, for tests
that need a small gossip network without daemon processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import trio
from libp2p.abc import IHost

from p2p.gossip import HEADS, Delivered, Gossip, make_head_message
from p2p.host import connect, host_addrs, running_host
from provenance import Identity, record_cid


@dataclass
class Node:
    host: IHost
    gossip: Gossip
    identity: Identity
    stored: list[Delivered]

    @property
    def peer(self) -> str:
        return self.host.get_id().to_base58()


@asynccontextmanager
async def gossip_nodes(n: int) -> AsyncIterator[list[Node]]:
    async with AsyncExitStack() as stack:
        hosts = [await stack.enter_async_context(running_host()) for _ in range(n)]
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        nodes = []
        for host in hosts:
            stored: list[Delivered] = []

            async def store(d: Delivered, stored: list[Delivered] = stored) -> None:
                stored.append(d)

            identity = Identity.generate()
            gossip = Gossip(host, [HEADS], identity=identity, store_message=store)
            await nursery.start(gossip.run)
            nodes.append(Node(host, gossip, identity, stored))
        yield nodes


async def link(a: Node, b: Node) -> None:
    """Connect a to b and wait until each has the other in its HEADS mesh."""
    await connect(a.host, host_addrs(b.host)[0])
    await a.gossip.wait_for_mesh(b.host.get_id(), HEADS.name)
    await b.gossip.wait_for_mesh(a.host.get_id(), HEADS.name)


def head_message(identity: Identity, seq: int = 0) -> dict:
    target = record_cid({"type": "x", "n": seq, "who": identity.did})
    return make_head_message(identity, seq, target)
