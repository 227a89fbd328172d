"""Every GossipSub / Pubsub setting artdag chooses, in one place, and why.

py-libp2p 0.8.1's defaults drop messages silently or grow memory (docs/decisions.md); each
field below says which pitfall it answers. ``build_router`` and ``build_pubsub`` are the only
places that construct py-libp2p's ``GossipSub`` and ``Pubsub``.

- ``protocols``: ``/meshsub/1.2.0``, ``/meshsub/1.1.0``, ``/meshsub/1.0.0``, in that order.
  Kubo 0.22 (go-libp2p-pubsub) speaks 1.1.0, with which py-libp2p interoperates both ways
  (docs/decisions.md); two artdag nodes settle on 1.2.0 (IDONTWANT). py-libp2p's own 1.3/1.4/2.0
  extensions are left out: no other implementation speaks them and they switch on the
  experimental adaptive code paths.
- ``degree`` / ``degree_low`` / ``degree_high`` = 6 / 4 / 12: the gossipsub spec's D, D_lo, D_hi
  (go-libp2p's defaults). ``GossipSub`` has no defaults for them.
- ``heartbeat_interval`` = 1 s (py-libp2p default 120 s): the heartbeat grafts the mesh, emits
  IHAVE gossip, shifts the message cache and decays scores; at 120 s a new peer waits minutes
  to join the mesh and lost messages are never repaired by gossip. 1 s is the spec's value.
  py-libp2p takes an ``int`` here, so 1 is the smallest value.
- ``adaptive_gossip`` = off: on by default, it raised the heartbeat to 60 s under load and the
  message cache then grew ~0.45 MiB/s (docs/decisions.md). Off, memory stays flat.
- ``max_messages_per_topic_per_second`` = 1000 with spam protection on: py-libp2p's default
  (10/s per topic per *forwarding* peer, own publishes included) drops the 11th message of a
  second with only a WARNING. Invalid messages are handled by our validators and peer scores;
  the rate limit remains as a flood guard far above any honest rate (docs/decisions.md: one
  publisher manages ~150-200 msg/s on loopback).
- ``seen_ttl`` = 600 s: pubsub's cache of message ids (default 120 s) must outlive the longest
  time window of a topic, so a message relayed late by a slow peer is dropped as already seen
  instead of reaching our validator, which would call it a replay.
- ``eclipse protection`` stays on (py-libp2p default): it only adds mesh peers from other IPs
  when it finds some; on one LAN or loopback it finds none and does nothing.
- Queues: py-libp2p hands each subscription 32 messages and drops the rest
  (``SUBSCRIPTION_CHANNEL_SIZE``); artdag does not consume that channel at all: accepted
  messages are handed over by the topic validator into artdag's own queue
  (``delivery_queue``) and from there to each subscriber (``subscriber_queue``); a full queue
  is counted in ``Gossip.dropped`` and logged, never silent. The per-peer *outbound* queue (32
  RPCs, ``rpc_queue.OutBoundQueueSize``) is bound as a default argument of ``RpcQueue`` and
  cannot be raised without patching py-libp2p; envelopes are small and a burst of 50 msg/s
  passes (tests/test_p2p_gossip.py), but a publisher must not assume delivery: repo heads are
  also exchanged on connect, so a lost head is caught up later.
- ``graylist_threshold`` / ``gossip_threshold``: py-libp2p's defaults are -inf (nothing is ever
  graylisted). artdag's :class:`~p2p.gossip.scores.PeerScores` is fed to py-libp2p as the
  application-specific score (P6, weight 1), so a peer below -50 is neither grafted into the
  mesh nor sent gossip, and our validator refuses its messages outright.
- ``strict_signing`` = True: every pubsub message carries its origin's libp2p signature; Kubo
  drops unsigned messages ("missing signature").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import ScoreParams

__all__ = ["DEFAULT_SETTINGS", "GossipSettings", "build_pubsub", "build_router"]


@dataclass(frozen=True, slots=True)
class GossipSettings:
    protocols: tuple[str, ...] = (PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID)
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    heartbeat_interval: int = 1
    adaptive_gossip: bool = False
    spam_protection: bool = True
    max_messages_per_topic_per_second: float = 1000.0
    eclipse_protection: bool = True
    seen_ttl: int = 600
    strict_signing: bool = True
    graylist_threshold: float = -50.0
    gossip_threshold: float = -25.0
    delivery_queue: int = 4096
    subscriber_queue: int = 1024


DEFAULT_SETTINGS = GossipSettings()


def build_router(
    settings: GossipSettings, app_score: Callable[[PeerID], float] | None = None
) -> GossipSub:
    """py-libp2p's GossipSub with ``settings``; ``app_score`` becomes the P6 score."""
    params = ScoreParams(
        graylist_threshold=settings.graylist_threshold,
        gossip_threshold=settings.gossip_threshold,
        app_specific_score_fn=app_score,
        p6_appl_slack_weight=1.0 if app_score is not None else 0.0,
    )
    return GossipSub(
        protocols=[TProtocol(p) for p in settings.protocols],
        degree=settings.degree,
        degree_low=settings.degree_low,
        degree_high=settings.degree_high,
        heartbeat_interval=settings.heartbeat_interval,
        heartbeat_initial_delay=0.1,
        adaptive_gossip_enabled=settings.adaptive_gossip,
        spam_protection_enabled=settings.spam_protection,
        max_messages_per_topic_per_second=settings.max_messages_per_topic_per_second,
        eclipse_protection_enabled=settings.eclipse_protection,
        score_params=params,
    )


def build_pubsub(host: IHost, router: GossipSub, settings: GossipSettings) -> Pubsub:
    return Pubsub(
        host,
        router,
        strict_signing=settings.strict_signing,
        seen_ttl=settings.seen_ttl,
    )
