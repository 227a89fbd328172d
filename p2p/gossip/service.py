"""``Gossip``: the trio adapter between py-libp2p's GossipSub and the pure validators.

py-libp2p runs a topic validator for every message before it is forwarded or delivered; ours
calls :func:`~p2p.gossip.validation.validate`, charges a rejection to the forwarding peer and
the message's origin in :class:`~p2p.gossip.scores.PeerScores`, and on acceptance hands the
decoded record to artdag's own delivery queue (not py-libp2p's 32-message subscription queue,
which is drained and ignored). A pump task passes each accepted message to ``store_message``
(the daemon stores it as a block) and then to every subscriber.

The validator is synchronous on purpose: py-libp2p checks its seen-cache, runs synchronous
validators and marks the message seen without yielding in between, so two copies of one
message arriving from two peers cannot both reach the validator (an async validator would let
the second copy through and it would be refused as a replay of the first, punishing an honest
peer).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.abc import IHost, ISubscriptionAPI
from libp2p.peer.id import ID as PeerID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service
from multiformats import CID

from dag import encode_dagcbor
from provenance import Identity, sign_record

from ..errors import P2PError
from .scores import PeerScores, PeerStats
from .settings import DEFAULT_SETTINGS, GossipSettings, build_pubsub, build_router
from .validation import Accept, DuplicateCache, Reject, TopicSpec, validate

__all__ = ["Delivered", "Gossip", "GossipError"]

logger = logging.getLogger("artdag.p2p.gossip")


class GossipError(P2PError):
    """A message could not be published (it fails its topic's validator, or gossip is down)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """An accepted message: its topic, decoded record, record CID and the peers it came by."""

    topic: str
    record: dict[str, Any]
    cid: CID
    from_peer: str  # the libp2p origin (pubsub ``from``, verified by strict signing)
    received_from: str  # the peer that forwarded it to us
    raw: bytes


class Gossip:
    """Signed, validated gossip topics over one libp2p host (run it in a nursery)."""

    def __init__(
        self,
        host: IHost,
        topics: Sequence[TopicSpec],
        *,
        identity: Identity | None = None,
        settings: GossipSettings = DEFAULT_SETTINGS,
        store_message: Callable[[Delivered], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not topics:
            raise ValueError("Gossip needs at least one topic")
        self.host = host
        self.topics = {spec.name: spec for spec in topics}
        self.identity = identity
        self.settings = settings
        self.store_message = store_message
        self.clock = clock
        self.scores = PeerScores(graylist_threshold=settings.graylist_threshold)
        self.seen = DuplicateCache()
        self.dropped = 0  # accepted messages a full queue could not take (also logged)
        self.router = build_router(settings, self._app_score)
        self.pubsub = build_pubsub(host, self.router, settings)
        self._self_id = host.get_id()
        send, self._deliveries = trio.open_memory_channel[Delivered](settings.delivery_queue)
        self._delivery_send = send
        self._subscribers: dict[str, list[trio.MemorySendChannel[Delivered]]] = {
            name: [] for name in self.topics
        }
        self._running = False
        # Told (topic, record, cid, wall time) just before each of our publishes goes out.
        self.on_publish: Callable[[str, dict[str, Any], CID, float], None] | None = None
        # Each told (event, topic, reason) per message: "out" (our publish), "in" (accepted)
        # or "rejected" (reason: the validator's, or "graylisted"); for the daemon's metrics.
        self.message_observers: list[Callable[[str, str, str], None]] = []

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run pubsub and the router until cancelled; ready once every topic is joined."""
        async with (
            background_trio_service(self.pubsub),
            background_trio_service(self.router),
            trio.open_nursery() as nursery,
        ):
            await self.pubsub.wait_until_ready()
            for spec in self.topics.values():
                self.pubsub.set_topic_validator(
                    spec.name, functools.partial(self._validate_message, spec), False
                )
                subscription = await self.pubsub.subscribe(spec.name)
                nursery.start_soon(self._drain, subscription)
            nursery.start_soon(self._pump)
            self._running = True
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._running = False
                nursery.cancel_scope.cancel()

    # -- API ------------------------------------------------------------------------------
    async def publish(self, topic: str, record: dict[str, Any]) -> CID:
        """Publish a signed envelope (signed here with ``identity`` if it has no ``sig``).

        The message passes the same validator as incoming ones first, so a record our peers
        would refuse raises GossipError here instead of costing us score. Returns its CID.
        """
        spec = self._spec(topic)
        if not self._running:
            raise GossipError("gossip is not running")
        if "sig" not in record:
            if self.identity is None:
                raise GossipError(f"{topic}: record is unsigned and no identity was given")
            record = sign_record(record, self.identity)
        raw = encode_dagcbor(record)
        result = validate(spec, raw, now=self.clock(), seen=self.seen)
        if isinstance(result, Reject):
            raise GossipError(f"refusing to publish on {topic}: {result}")
        if self.on_publish is not None:
            self.on_publish(topic, record, result.cid, self.clock())
        await self.pubsub.publish(topic, raw)
        self._tell("out", topic)
        return result.cid

    def subscribe(self, topic: str) -> trio.MemoryReceiveChannel[Delivered]:
        """A channel of the messages accepted on ``topic`` (close it to unsubscribe)."""
        self._spec(topic)
        send, receive = trio.open_memory_channel[Delivered](self.settings.subscriber_queue)
        self._subscribers[topic].append(send)
        return receive

    def peer_stats(self) -> dict[str, PeerStats]:
        """Per peer (base58 id): valid and invalid message counts, score, graylisted."""
        return self.scores.stats(self.clock())

    def penalize(self, peer: str, reason: str) -> None:
        """Charge ``peer`` (base58 id) for misbehaviour seen outside gossip (e.g. bad blocks)."""
        self.scores.record_invalid(peer, reason, self.clock())

    def topic_peers(self, topic: str) -> set[str]:
        """Peers known to be subscribed to ``topic``."""
        return {p.to_base58() for p in self.pubsub.peer_topics.get(topic, ())}

    def mesh_peers(self, topic: str) -> set[str]:
        return {p.to_base58() for p in self.router.mesh.get(topic, ())}

    async def wait_for_mesh(self, peer: PeerID, topic: str, timeout: float = 10.0) -> None:
        """Wait until ``peer`` is in our mesh for ``topic`` (raises trio.TooSlowError)."""
        await self.router.wait_for_mesh(peer, topic, timeout)

    # -- internals ------------------------------------------------------------------------
    def _spec(self, topic: str) -> TopicSpec:
        try:
            return self.topics[topic]
        except KeyError:
            raise GossipError(f"unknown topic {topic!r}") from None

    def _app_score(self, peer: PeerID) -> float:
        return self.scores.score(peer.to_base58(), self.clock())

    def _validate_message(self, spec: TopicSpec, forwarder: PeerID, msg: rpc_pb2.Message) -> bool:
        if forwarder == self._self_id:
            return True  # our own publish, validated in publish()
        now = self.clock()
        via = forwarder.to_base58()
        origin = PeerID(msg.from_id).to_base58()
        peers = (via,) if origin == via else (via, origin)
        if any(self.scores.is_graylisted(p, now) for p in peers):
            self.scores.record_invalid(via, "graylisted", now)
            self._tell("rejected", spec.name, "graylisted")
            logger.debug("ignored %s message from graylisted peer %s", spec.name, via)
            return False
        result = validate(spec, msg.data, now=now, seen=self.seen)
        if isinstance(result, Reject):
            for peer in peers:
                self.scores.record_invalid(peer, result.reason, now)
            self._tell("rejected", spec.name, result.reason)
            logger.info(
                "rejected %s message via %s (origin %s): %s", spec.name, via, origin, result
            )
            return False
        for peer in peers:
            self.scores.record_valid(peer, now)
        self._tell("in", spec.name)
        self._hand_over(spec.name, result, origin, via)
        return True

    def _tell(self, event: str, topic: str, reason: str = "") -> None:
        for observer in self.message_observers:
            try:
                observer(event, topic, reason)
            except Exception:
                logger.exception("gossip message observer failed")

    def _hand_over(self, topic: str, accepted: Accept, origin: str, via: str) -> None:
        delivered = Delivered(topic, accepted.record, accepted.cid, origin, via, accepted.raw)
        try:
            self._delivery_send.send_nowait(delivered)
        except trio.WouldBlock:
            self.dropped += 1
            logger.warning("gossip delivery queue full: dropped %s message %s", topic, accepted.cid)

    async def _pump(self) -> None:
        async for delivered in self._deliveries:
            if self.store_message is not None:
                try:
                    await self.store_message(delivered)
                except Exception:
                    logger.exception("storing %s message %s failed", delivered.topic, delivered.cid)
            for channel in list(self._subscribers[delivered.topic]):
                try:
                    channel.send_nowait(delivered)
                except trio.WouldBlock:
                    self.dropped += 1
                    logger.warning(
                        "gossip subscriber of %s is full: dropped %s",
                        delivered.topic,
                        delivered.cid,
                    )
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._subscribers[delivered.topic].remove(channel)

    async def _drain(self, subscription: ISubscriptionAPI) -> None:
        """Empty py-libp2p's own subscription queue: we deliver from the validator instead."""
        while True:
            await subscription.get()
