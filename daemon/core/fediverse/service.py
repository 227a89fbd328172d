"""The fediverse bridge inside the daemon: what an inbox POST does, publishing, delivery.

Glue between the sans-I/O parts of :mod:`activitypub_bridge` (documents, inbox decisions,
signatures, the retry schedule) and the node's stores. Order of an inbox POST: the body size
is capped by the route; the signer's domain must not be blocked (no fetch is made for a blocked
key); the signature is verified (the key fetched by a signed GET through the SSRF guard, cached,
re-fetched once on failure); the activity must be new (inbound ids are de-duplicated); then the
decisions of :func:`activitypub_bridge.handle_inbox` are applied. Nothing is stored before the
signature checks out.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import trio

from activitypub_bridge import (
    ActivityStore,
    AddFollower,
    BridgeClient,
    BridgeSite,
    Creator,
    DeliveryQueue,
    DeliveryWorker,
    FetchError,
    FetchRefused,
    FollowerStore,
    Ignore,
    JsonRefused,
    RecordUsage,
    Reject,
    RejectKind,
    RejectReason,
    RemoveActor,
    RemoveFollower,
    SendAccept,
    SignatureRejected,
    SignedRequest,
    Signer,
    WorkInfo,
    domain_blocked,
    handle_inbox,
    load_or_create_actor_key,
    normalise_domain,
    note_for_work,
    parse_json,
    public_key_pem,
    signature_key_id,
    verify_with_refetch,
)
from activitypub_bridge.ssrf import DomainError
from daemon.core.fediverse.media_size import media_dimensions
from daemon.core.fediverse.remote_actors import RemoteActors
from dag import CID, cid_to_str, parse_cid
from provenance import Identity

if TYPE_CHECKING:
    from daemon.config import ActivityPubConfig
    from daemon.core.index import AssetRow
    from daemon.core.money import MoneyService

__all__ = [
    "ActivityPubService",
    "BridgePaths",
    "InboxResult",
    "PublishError",
    "Published",
    "Works",
    "open_activitypub",
]

log = logging.getLogger("artdag.activitypub")

_BLOCKS_TTL = 1.0  # seconds the stored domain blocks are cached (the CLI may change them)


class PublishError(ValueError):
    """A work that cannot be published (not an asset here, bad text)."""


@dataclass(frozen=True)
class InboxResult:
    """The HTTP answer to an inbox POST: status and a one-line reason."""

    status: int
    message: str


@dataclass(frozen=True)
class Published:
    activity_id: str
    note_id: str
    inboxes: int  # deliveries queued now (0 for an already-published work)
    already: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "activity": self.activity_id,
            "note": self.note_id,
            "queued": self.inboxes,
            "already_published": self.already,
        }


def _status_for(kind: RejectKind) -> int:
    return {RejectKind.MALFORMED: 400, RejectKind.FORGED: 401, RejectKind.BLOCKED: 403}[kind]


def _is_self_delete(body: bytes) -> bool:
    try:
        activity = parse_json(body)
    except JsonRefused:
        return False
    if not isinstance(activity, dict) or activity.get("type") != "Delete":
        return False
    target = activity.get("object")
    if isinstance(target, dict):
        target = target.get("id")
    return isinstance(target, str) and target == activity.get("actor")


class Works(Protocol):
    """Where the bridge reads the works it publishes (the node's assets)."""

    async def asset(self, cid: CID) -> AssetRow | None: ...

    def cat(self, cid: CID) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class BridgePaths:
    """The bridge's files in the node home."""

    db: Path  # followers, domain blocks, emitted activities, processed inbound ids
    deliveries: Path  # the delivery queue
    actor_key: Path  # the creator's RSA key for HTTP Signatures


class ActivityPubService:
    """One local creator, ``username`` with ``identity``, as an ActivityPub actor on ``site``.

    ``money`` records the likes and boosts received as usage; ``on_usage`` is told of each,
    ``(cid, kind)`` (the pinning policy's popularity), and must not block."""

    def __init__(
        self,
        site: BridgeSite,
        config: ActivityPubConfig,
        identity: Identity,
        username: str,
        paths: BridgePaths,
        works: Works,
        *,
        money: MoneyService | None = None,
        on_usage: Callable[[str, str], None] | None = None,
    ) -> None:
        self.site = site
        self.config = config
        self.works = works
        self.money = money
        self.on_usage = on_usage
        self.actor_key = load_or_create_actor_key(paths.actor_key)
        self.creator = Creator(
            username=username,
            did=identity.did,
            public_key_pem=public_key_pem(self.actor_key.public_key()),
            name=config.display_name or username,
            summary=config.summary,
        )
        self.creators = {self.creator.username: self.creator}
        self.signer = Signer(site.key_id(self.creator.username), self.actor_key)
        self.followers = FollowerStore(paths.db)
        self.activities = ActivityStore(paths.db)
        self.queue = DeliveryQueue.open(paths.deliveries, recover=True)
        self.config_blocks = tuple(config.blocked_domains)
        self._stored_blocks: list[str] = []
        self._blocks_read_at = 0.0
        self.client = BridgeClient(
            blocked=self.is_blocked,
            allow_private=config.allow_private_fetch,
            first_knock="cavage" if config.first_knock == "cavage" else "rfc9421",
            user_agent=f"artdag/0.1 (+{site.base_url}/)",
        )
        self.actors = RemoteActors(self.client, self.signer)
        self.worker = DeliveryWorker(
            self.queue,
            self._send,
            max_concurrency=config.delivery_concurrency,
            per_host=config.delivery_per_host,
        )
        self.received = 0
        self.rejected = 0

    async def aclose(self) -> None:
        await self.client.aclose()
        self.queue.close()
        self.followers.close()
        self.activities.close()

    # -- blocks -----------------------------------------------------------------------------
    async def refresh_blocks(self, force: bool = False) -> None:
        if force or time.monotonic() - self._blocks_read_at > _BLOCKS_TTL:
            self._stored_blocks = await trio.to_thread.run_sync(self.followers.blocked_domains)
            self._blocks_read_at = time.monotonic()

    def is_blocked(self, host: str) -> bool:
        """Whether a normalised host is blocked (config blocks and stored ones)."""
        return domain_blocked(host, [*self.config_blocks, *self._stored_blocks])

    def _url_blocked(self, url: str) -> bool:
        try:
            return self.is_blocked(normalise_domain(urlsplit(url).hostname or ""))
        except (DomainError, ValueError):
            return True

    async def block(self, domain: str) -> str:
        name = await trio.to_thread.run_sync(self.followers.block_domain, domain)
        await self.refresh_blocks(force=True)
        return name

    async def unblock(self, domain: str) -> bool:
        lifted = await trio.to_thread.run_sync(self.followers.unblock, domain)
        await self.refresh_blocks(force=True)
        return lifted

    # -- inbox ------------------------------------------------------------------------------
    async def receive(
        self, username: str | None, url: str, headers: Mapping[str, str], body: bytes
    ) -> InboxResult:
        """Handle a POST to ``username``'s inbox (None: the shared inbox)."""
        self.received += 1
        result = await self._receive(username, url, headers, body)
        if result.status >= 400:
            self.rejected += 1
            log.info("inbox POST refused (%d): %s", result.status, result.message)
        return result

    async def _receive(
        self, username: str | None, url: str, headers: Mapping[str, str], body: bytes
    ) -> InboxResult:
        if username is not None and username not in self.creators:
            return InboxResult(404, f"no actor {username!r} here")
        await self.refresh_blocks()
        try:
            key_id = signature_key_id(headers)
        except SignatureRejected as exc:
            return InboxResult(401, f"unsigned or unreadable signature: {exc}")
        if self._url_blocked(key_id):
            return InboxResult(403, "the signer's domain is blocked")
        request = SignedRequest("POST", url, dict(headers), body)
        try:
            await verify_with_refetch(request, self.actors.keys, self.actors.fetch_key)
        except SignatureRejected as exc:
            if exc.reason is RejectReason.UNKNOWN_KEY and _is_self_delete(body):
                # A deleted account's key is gone with it; nothing of ours to verify or undo.
                return InboxResult(202, "Delete of an actor whose key is gone: ignored")
            return InboxResult(401, f"signature rejected: {exc}")
        owner = self.actors.owner_of(key_id)
        if owner is None:  # cached before this process learnt the owner: cannot happen
            return InboxResult(401, f"key {key_id} has no known owner")
        try:
            activity = await trio.to_thread.run_sync(
                partial(parse_json, body, max_bytes=self.config.max_inbox_bytes)
            )
        except JsonRefused as exc:
            return InboxResult(400, f"body refused: {exc}")
        activity_id = activity.get("id") if isinstance(activity, dict) else None
        if isinstance(activity_id, str) and await trio.to_thread.run_sync(
            self.activities.seen, activity_id
        ):
            return InboxResult(202, "already processed")
        decisions = handle_inbox(
            self.site,
            self.creators,
            activity,
            owner,
            blocked=self.is_blocked,
            # Remote http:// ids only where http fetches are allowed (loopback tests).
            allow_http=self.client.allow_private or self.site.base_url.startswith("http://"),
        )
        for decision in decisions:
            if isinstance(decision, Reject):
                return InboxResult(_status_for(decision.kind), decision.reason)
        for decision in decisions:
            problem = await self._apply(decision)
            if problem is not None:
                return problem
        if isinstance(activity_id, str):
            await trio.to_thread.run_sync(self.activities.mark_seen, activity_id)
        reasons = [d.reason for d in decisions if isinstance(d, Ignore)]
        return InboxResult(202, "; ".join(reasons) or "accepted")

    async def _apply(self, decision: Any) -> InboxResult | None:
        run = trio.to_thread.run_sync
        if isinstance(decision, AddFollower):
            try:
                document = await self.actors.fetch_actor(decision.follower)
            except (FetchError, FetchRefused) as exc:
                return InboxResult(400, f"cannot fetch the follower's actor: {exc}")
            inbox = document.get("inbox")
            endpoints = document.get("endpoints")
            shared = endpoints.get("sharedInbox") if isinstance(endpoints, Mapping) else None
            if not isinstance(inbox, str):
                return InboxResult(400, "the follower's actor has no inbox")
            decision = replace(
                decision, inbox=inbox, shared_inbox=shared if isinstance(shared, str) else None
            )
            await run(
                lambda: self.followers.add(
                    decision.creator,
                    decision.follower,
                    decision.inbox,
                    decision.shared_inbox,
                    follow_id=decision.follow_id,
                )
            )
            log.info("%s now follows %s", decision.follower, decision.creator)
        elif isinstance(decision, SendAccept):
            document = await self.actors.fetch_actor(decision.follower)
            inbox = document.get("inbox")
            assert isinstance(inbox, str)  # checked by AddFollower, which comes first
            await self._emit(decision.accept, decision.creator, [inbox], listed=False)
        elif isinstance(decision, RemoveFollower):
            if decision.creator is None:
                if decision.follow_id is not None:
                    await run(self.followers.remove_follow, decision.follower, decision.follow_id)
            else:
                await run(self.followers.remove, decision.creator, decision.follower)
            log.info("%s unfollowed %s", decision.follower, decision.creator or "a creator")
        elif isinstance(decision, RemoveActor):
            await run(self.followers.remove_actor, decision.actor)
            self.actors.forget(decision.actor)
        elif isinstance(decision, RecordUsage):
            if self.on_usage is not None:
                self.on_usage(decision.subject_cid, decision.kind)
            if self.money is None:
                return None
            await self.money.record_usage(
                decision.subject_cid,
                decision.kind,
                listener=decision.actor,
                source="activitypub",
            )
        return None

    async def _emit(
        self,
        activity: Mapping[str, Any],
        creator: str,
        inboxes: list[str],
        *,
        listed: bool,
        cid: str | None = None,
    ) -> int:
        """Store an activity (so its id resolves), then queue it for ``inboxes``."""
        body = json.dumps(activity, separators=(",", ":")).encode()
        await trio.to_thread.run_sync(
            lambda: self.activities.put(activity, creator, listed=listed, cid=cid)
        )
        queued = await trio.to_thread.run_sync(
            self.queue.enqueue, str(activity["id"]), inboxes, body
        )
        self.worker.wake()
        return queued

    async def _send(self, inbox: str, body: bytes) -> Any:
        await self.refresh_blocks()
        return await self.client.post(inbox, body, self.signer)

    # -- publishing -------------------------------------------------------------------------
    async def publish(self, cid: str, text: str = "", alt: str | None = None) -> Published:
        """Send a ``Create`` of a ``Note`` showing asset ``cid`` to every follower's inbox."""
        parsed = parse_cid(cid)
        cid_text = cid_to_str(parsed)
        if len(text) > 5000:
            raise PublishError("--text is longer than 5000 characters")
        row = await self.works.asset(parsed)
        if row is None:
            raise PublishError(f"{cid_text} is not an asset of this node (add it first)")
        creator = self.creator.username
        previous = await trio.to_thread.run_sync(self.activities.published, creator, cid_text)
        if previous is not None:
            queued = await self._queue_if_never_queued(previous, creator)
            return Published(previous, self.site.note_id(creator, cid_text), queued, True)
        mime = row.mime or "application/octet-stream"
        width, height = await media_dimensions(self.works.cat(parsed), mime, row.size, cid_text)
        work = WorkInfo(
            cid=cid_text,
            name=row.name,
            mime=mime,
            width=width,
            height=height,
            alt=alt if alt is not None else row.name,
            provenance_url=self.site.url(f"/provenance/{cid_text}"),
            gateway_url=self.site.url(f"/ipfs/{cid_text}"),
        )
        create, note = note_for_work(self.site, self.creator, work, text, datetime.now(UTC))
        inboxes = await trio.to_thread.run_sync(
            lambda: self.followers.delivery_inboxes(creator, self.config_blocks)
        )
        queued = await self._emit(create, creator, inboxes, listed=True, cid=cid_text)
        log.info("published %s to %d inboxes", cid_text, queued)
        return Published(create["id"], note["id"], queued, False)

    async def _queue_if_never_queued(self, activity_id: str, creator: str) -> int:
        """Queue a stored activity that has no delivery at all: the daemon died (or the queue
        failed) between storing it and queueing it, so no follower has it. Otherwise nothing
        is sent again (receivers have it or the queue is retrying)."""
        if await trio.to_thread.run_sync(self.queue.count_for, activity_id):
            return 0
        activity = await trio.to_thread.run_sync(self.activities.activity, activity_id)
        if activity is None:
            return 0
        inboxes = await trio.to_thread.run_sync(
            lambda: self.followers.delivery_inboxes(creator, self.config_blocks)
        )
        body = json.dumps(activity, separators=(",", ":")).encode()
        queued = await trio.to_thread.run_sync(self.queue.enqueue, activity_id, inboxes, body)
        self.worker.wake()
        return queued

    # -- views ------------------------------------------------------------------------------
    async def followers_view(self, limit: int = 1000) -> dict[str, Any]:
        """Who follows the creator and which domains are blocked (the API's and web UI's)."""
        name = self.creator.username
        rows = await trio.to_thread.run_sync(self.followers.followers, name, limit)
        count = await trio.to_thread.run_sync(self.followers.count, name)
        blocked = await trio.to_thread.run_sync(self.followers.blocked_domains)
        return {
            "handle": f"@{name}@{self.site.domain}",
            "actor": self.site.actor_id(name),
            "count": count,
            "followers": [
                {
                    "actor": r.actor,
                    "inbox": r.inbox,
                    "shared_inbox": r.shared_inbox,
                    "since": r.followed_at,
                }
                for r in rows
            ],
            "blocked_domains": blocked,
            "config_blocked_domains": list(self.config_blocks),
        }

    async def deliveries(self, state: str | None = None, limit: int = 100) -> dict[str, Any]:
        stats = await trio.to_thread.run_sync(self.queue.stats)
        rows = await trio.to_thread.run_sync(self.queue.rows, state, limit)
        return {"stats": stats.to_json(), "deliveries": [r.to_json() for r in rows]}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The delivery worker, until cancelled."""
        await self.refresh_blocks(force=True)
        await self.worker.run(task_status=task_status)


@asynccontextmanager
async def open_activitypub(
    site: BridgeSite,
    config: ActivityPubConfig,
    identity: Identity,
    username: str,
    paths: BridgePaths,
    works: Works,
    **kwargs: Any,
) -> AsyncIterator[ActivityPubService]:
    """The bridge's service (``kwargs``: ``money``, ``on_usage``), closed on exit."""
    service = ActivityPubService(site, config, identity, username, paths, works, **kwargs)
    try:
        yield service
    finally:
        with trio.CancelScope(shield=True):
            await service.aclose()
