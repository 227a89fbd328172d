"""One bare py-libp2p gossipsub process for bench/p2p.py's baseline (not artdag: no envelopes,
no record signatures, no validators, no repo; the same host, transport and router settings).

    .venv/bin/python -m bench._bare_gossip TOPIC [--bootstrap ADDR ...] [--publish N --rate R]

Prints ``ADDR <multiaddr>`` once listening and connected to its bootstrap peers; then, for
each message received, ``RECV <sent_at> <received_at>`` (wall clock, seconds). A publisher
waits for ``GO`` on stdin, publishes N messages at R per second, each carrying its send time,
prints ``DONE``. Every process exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time

import trio
from libp2p.tools.anyio_service import background_trio_service

from p2p.gossip.settings import DEFAULT_SETTINGS, build_pubsub, build_router
from p2p.host import connect, host_addrs, running_host


async def main(args: argparse.Namespace) -> None:
    async with running_host() as host:
        router = build_router(DEFAULT_SETTINGS)
        pubsub = build_pubsub(host, router, DEFAULT_SETTINGS)
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            sub = await pubsub.subscribe(args.topic)
            for addr in args.bootstrap:
                await connect(host, addr)
            print("ADDR", host_addrs(host)[0], flush=True)
            stdin = trio.wrap_file(sys.stdin)
            async with trio.open_nursery() as nursery:

                async def receive() -> None:
                    while True:
                        msg = await sub.get()
                        (sent,) = struct.unpack(">d", msg.data[:8])
                        print("RECV", sent, time.time(), flush=True)

                nursery.start_soon(receive)
                while True:
                    line = await stdin.readline()
                    if not line:
                        break
                    if line.strip() == "GO" and args.publish:
                        for i in range(args.publish):
                            payload = struct.pack(">d", time.time()) + i.to_bytes(4, "big")
                            await pubsub.publish(args.topic, payload)
                            await trio.sleep(1 / args.rate)
                        print("DONE", flush=True)
                nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("topic")
    parser.add_argument("--bootstrap", nargs="*", default=[])
    parser.add_argument("--publish", type=int, default=0)
    parser.add_argument("--rate", type=float, default=10.0)
    trio.run(main, parser.parse_args())
