"""What the bridge does with an activity POSTed to an inbox: ``handle_inbox(...) -> decisions``.

Sans-I/O, in the manner of h11: the HTTP route has already checked the body size and verified
the HTTP signature (:mod:`activitypub_bridge.http_signatures`), so it knows which actor's key
signed (``signer_actor``). This module reads the parsed JSON and returns a list of frozen
decisions; it touches no database, socket or clock. The caller applies them: store or drop
followers (:class:`activitypub_bridge.followers.FollowerStore`), enqueue the Accept, record
usage for settlement, and answer 202 (or 400 / 401 / 403 on a :class:`Reject`, see
:class:`RejectKind`).

Theory of operation, in order:

1. Shape: the activity is a JSON object no larger than the bounds below, with a string
   ``type``, an ``actor`` (URL or ``{id}``) and, where the type needs one, an ``object``; every
   id is a string URL (https, or http when the site itself runs on loopback http for tests).
   Anything else is ``Reject(MALFORMED)``.
2. Authority: ``actor`` must equal ``signer_actor``, and the activity's ``id`` (when present)
   must be on the actor's origin, as Mastodon requires; otherwise ``Reject(FORGED)``.
3. Blocks: an actor whose host is blocked gets ``Reject(BLOCKED)`` and changes nothing.
4. Dispatch on ``type`` through the table ``_HANDLERS``; types we do not act on are
   ``Ignore(reason)`` (answered 202 like Mastodon does, so senders do not retry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from .documents import BridgeSite, Creator, DocumentError, accept_follow
from .ssrf import DomainError, normalise_domain

__all__ = [
    "MAX_ACTIVITY_NODES",
    "MAX_DEPTH",
    "MAX_ID_LENGTH",
    "MAX_STRING_LENGTH",
    "AddFollower",
    "Decision",
    "Ignore",
    "Reject",
    "RejectKind",
    "RecordUsage",
    "RemoveActor",
    "RemoveFollower",
    "SendAccept",
    "handle_inbox",
]

MAX_ID_LENGTH = 2048
MAX_DEPTH = 16
MAX_ACTIVITY_NODES = 5_000  # JSON values (objects, arrays, scalars) in one activity
MAX_STRING_LENGTH = 100_000  # one string (e.g. a Note's content); the route caps the body too


class RejectKind(StrEnum):
    """Why an activity is refused; the route maps it to a status (400 / 401 / 403)."""

    MALFORMED = "malformed"  # 400
    FORGED = "forged"  # 401: signed by someone other than its actor
    BLOCKED = "blocked"  # 403: the actor's domain is blocked


@dataclass(frozen=True)
class AddFollower:
    """Store ``follower`` as a follower of local ``creator`` (a username).

    ``inbox``/``shared_inbox`` are None here; the caller fills them (``dataclasses.replace``)
    after fetching the follower's actor document through the SSRF guard.
    """

    creator: str
    follower: str
    follow_id: str
    inbox: str | None = None
    shared_inbox: str | None = None


@dataclass(frozen=True)
class SendAccept:
    """Deliver ``accept`` (an ``Accept`` of the Follow, signed as ``creator``) to ``follower``."""

    creator: str
    follower: str
    accept: Mapping[str, Any]


@dataclass(frozen=True)
class RemoveFollower:
    """Drop ``follower`` from ``creator``'s followers.

    ``creator`` is None for an ``Undo`` that names the Follow only by id: the caller removes the
    follow stored under ``follow_id`` for this ``follower`` (``FollowerStore.remove_follow``).
    """

    creator: str | None
    follower: str
    follow_id: str | None = None


@dataclass(frozen=True)
class RecordUsage:
    """``actor`` liked (``kind="like"``) or boosted (``kind="boost"``) work ``subject_cid``."""

    subject_cid: str
    kind: str
    actor: str
    creator: str = ""
    activity_id: str | None = None


@dataclass(frozen=True)
class RemoveActor:
    """The remote ``actor`` was deleted: drop it from every followers list."""

    actor: str


@dataclass(frozen=True)
class Ignore:
    """Nothing to do (answer 202); ``reason`` is one line for the log."""

    reason: str


@dataclass(frozen=True)
class Reject:
    """Refuse the activity and change nothing; ``reason`` is one line for the response body."""

    reason: str
    kind: RejectKind = RejectKind.MALFORMED


Decision = AddFollower | SendAccept | RemoveFollower | RecordUsage | RemoveActor | Ignore | Reject


class _Malformed(Exception):
    pass


class _Forged(Exception):
    pass


@dataclass(frozen=True)
class _Context:
    site: BridgeSite
    creators: Mapping[str, Creator]
    activity: Mapping[str, Any]
    actor: str
    activity_id: str | None
    allow_http: bool


def _check_bounds(value: Any) -> None:
    """Iteratively bound depth, node count and string length (no recursion on hostile JSON)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_ACTIVITY_NODES:
            raise _Malformed(f"activity has more than {MAX_ACTIVITY_NODES} JSON values")
        if depth > MAX_DEPTH:
            raise _Malformed(f"activity nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            if len(item) > MAX_STRING_LENGTH:
                raise _Malformed(f"activity has a string longer than {MAX_STRING_LENGTH}")
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str) or len(key) > MAX_ID_LENGTH:
                    raise _Malformed("activity has a non-string or oversized key")
                stack.append((sub, depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, depth + 1) for sub in item)


def _url(value: Any, what: str, allow_http: bool) -> str:
    """``value`` as an id URL, or :class:`_Malformed` naming ``what`` is wrong."""
    if not isinstance(value, str):
        raise _Malformed(f"{what} must be a string URL, got {type(value).__name__}")
    if len(value) > MAX_ID_LENGTH:
        raise _Malformed(f"{what} is longer than {MAX_ID_LENGTH} characters")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _Malformed(f"{what} is not a URL: {value[:100]!r}") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise _Malformed(f"{what} must be an {' or '.join(schemes)} URL: {value[:100]!r}")
    if not hostname or parts.username is not None:
        raise _Malformed(f"{what} must be scheme://host/...: {value[:100]!r}")
    return value


def _ref(value: Any, what: str, allow_http: bool) -> str:
    """The id of a reference that is either a URL string or an embedded ``{id: URL}``."""
    if isinstance(value, Mapping):
        if "id" not in value:
            raise _Malformed(f"embedded {what} has no id")
        return _url(value["id"], f"{what}.id", allow_http)
    return _url(value, what, allow_http)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _object(ctx: _Context) -> Any:
    if "object" not in ctx.activity or ctx.activity["object"] is None:
        raise _Malformed(f"{ctx.activity['type']} has no object")
    return ctx.activity["object"]


def _local_creator(ctx: _Context, actor_id: str) -> str | None:
    username = ctx.site.username_for_actor(actor_id)
    if username is None or username not in ctx.creators:
        return None
    return username if ctx.site.actor_id(username) == actor_id else None


def _local_work(ctx: _Context, object_id: str) -> tuple[str, str] | None:
    """``(username, cid)`` if ``object_id`` is one of our Notes ``/objects/<user>/<cid>``."""
    prefix = ctx.site.url("/objects/")
    if not object_id.startswith(prefix):
        return None
    username, sep, cid = object_id[len(prefix) :].partition("/")
    if not sep or username not in ctx.creators:
        return None
    try:
        if ctx.site.note_id(username, cid) != object_id:
            return None
    except DocumentError:
        return None
    return username, cid


def _on_follow(ctx: _Context) -> list[Decision]:
    target = _ref(_object(ctx), "object", ctx.allow_http)
    if ctx.activity_id is None:
        raise _Malformed("Follow has no id (the Accept must reference it)")
    creator = _local_creator(ctx, target)
    if creator is None:
        return [Ignore(f"Follow of {target[:200]} which is not a creator here")]
    try:
        accept = accept_follow(ctx.site, ctx.creators[creator], ctx.activity)
    except DocumentError as exc:
        raise _Malformed(f"Follow cannot be accepted: {exc}") from None
    return [
        AddFollower(creator=creator, follower=ctx.actor, follow_id=ctx.activity_id),
        SendAccept(creator=creator, follower=ctx.actor, accept=accept),
    ]


def _on_undo(ctx: _Context) -> list[Decision]:
    obj = _object(ctx)
    if not isinstance(obj, Mapping):
        follow_id = _url(obj, "object", ctx.allow_http)
        if _origin(follow_id) != _origin(ctx.actor):
            raise _Forged(f"Undo of {follow_id[:200]}, which is not on the actor's origin")
        return [RemoveFollower(creator=None, follower=ctx.actor, follow_id=follow_id)]
    inner_type = obj.get("type")
    if not isinstance(inner_type, str):
        raise _Malformed("the object of an Undo has no string type")
    if inner_type != "Follow":
        return [Ignore(f"Undo of a {inner_type[:100]} is not acted on")]
    inner_id = _url(obj["id"], "object.id", ctx.allow_http) if "id" in obj else None
    if "actor" not in obj:
        raise _Malformed("the Follow inside an Undo has no actor")
    if _ref(obj["actor"], "object.actor", ctx.allow_http) != ctx.actor:
        raise _Forged("Undo of a Follow made by another actor")
    if "object" not in obj:
        raise _Malformed("the Follow inside an Undo has no object")
    target = _ref(obj["object"], "object.object", ctx.allow_http)
    creator = _local_creator(ctx, target)
    if creator is None:
        return [Ignore(f"Undo of a Follow of {target[:200]} which is not a creator here")]
    return [RemoveFollower(creator=creator, follower=ctx.actor, follow_id=inner_id)]


def _usage(kind: str) -> Callable[[_Context], list[Decision]]:
    def handler(ctx: _Context) -> list[Decision]:
        target = _ref(_object(ctx), "object", ctx.allow_http)
        work = _local_work(ctx, target)
        if work is None:
            return [Ignore(f"{kind} of {target[:200]}, which is not a work here")]
        creator, cid = work
        return [
            RecordUsage(
                subject_cid=cid,
                kind=kind,
                actor=ctx.actor,
                creator=creator,
                activity_id=ctx.activity_id,
            )
        ]

    return handler


def _on_delete(ctx: _Context) -> list[Decision]:
    obj = _object(ctx)
    target = _ref(obj, "object", ctx.allow_http)
    if target == ctx.actor:  # a string, an embedded {id}, or a Tombstone of the actor
        return [RemoveActor(actor=ctx.actor)]
    return [Ignore(f"Delete of {target[:200]}, which this node does not keep")]


def _ignore(reason: str) -> Callable[[_Context], list[Decision]]:
    def handler(ctx: _Context) -> list[Decision]:
        return [Ignore(reason)]

    return handler


_HANDLERS: dict[str, Callable[[_Context], list[Decision]]] = {
    "Follow": _on_follow,
    "Undo": _on_undo,
    "Like": _usage("like"),
    "Announce": _usage("boost"),
    "Delete": _on_delete,
    "Accept": _ignore("Accept: creators here follow no one"),
    "Reject": _ignore("Reject: creators here follow no one"),
    "Create": _ignore("Create: this node shows no remote posts"),
}


def _activity_type(value: Any) -> str:
    if isinstance(value, str) and value:
        return value[:100]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return next((v for v in value if v in _HANDLERS), value[0])[:100]
    raise _Malformed("activity has no string type")


def _host_blocked(actor: str, blocked: Callable[[str], bool]) -> bool:
    try:
        host = normalise_domain(urlsplit(actor).hostname or "")
    except DomainError:
        raise _Malformed(f"actor host is not a domain: {actor[:200]!r}") from None
    return blocked(host)


def handle_inbox(
    site: BridgeSite,
    creators: Mapping[str, Creator],
    activity: Any,
    signer_actor: str,
    *,
    blocked: Callable[[str], bool],
    allow_http: bool | None = None,
) -> list[Decision]:
    """The decisions for one verified inbox POST.

    ``creators`` maps username to :class:`Creator`; ``signer_actor`` is the actor whose key
    signed the request; ``blocked(host)`` says whether a normalised host is blocked (e.g.
    ``lambda h: domain_blocked(h, blocks)``). ``allow_http`` (default: whether the site itself
    is plain http, i.e. a loopback test setup) lets remote ids be ``http://``. Returns
    ``[Reject(...)]`` or ``[Ignore(...)]`` alone, or the actions to apply in order.
    """
    if allow_http is None:
        allow_http = site.base_url.startswith("http://")
    try:
        if not isinstance(activity, Mapping):
            raise _Malformed(f"activity must be a JSON object, got {type(activity).__name__}")
        _check_bounds(activity)
        kind = _activity_type(activity.get("type"))
        if "actor" not in activity:
            raise _Malformed(f"{kind} has no actor")
        actor = _ref(activity["actor"], "actor", allow_http)
        activity_id = _url(activity["id"], "id", allow_http) if "id" in activity else None
        if actor != signer_actor:
            raise _Forged(f"actor {actor[:200]} is not the signer {str(signer_actor)[:200]}")
        if activity_id is not None and _origin(activity_id) != _origin(actor):
            raise _Forged(f"activity id {activity_id[:200]} is not on the actor's origin")
        if _host_blocked(actor, blocked):
            return [Reject(f"actor domain is blocked: {actor[:200]}", RejectKind.BLOCKED)]
        if _origin(actor) == _origin(site.base_url):
            return [Ignore("activity from this site's own actors")]
        ctx = _Context(site, creators, activity, actor, activity_id, allow_http)
        handler = _HANDLERS.get(kind)
        if handler is None:
            return [Ignore(f"unsupported activity type {kind!r}")]
        return handler(ctx)
    except _Malformed as exc:
        return [Reject(str(exc), RejectKind.MALFORMED)]
    except _Forged as exc:
        return [Reject(str(exc), RejectKind.FORGED)]
