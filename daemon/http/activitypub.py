"""The fediverse's routes (public, no bearer token) and the bridge's node API routes (token).

Public (:data:`fediverse`, registered when ``[activitypub] enabled``): WebFinger, NodeInfo, the
actor, its outbox/followers/following collections (paginated), the inbox and shared inbox,
every activity and object the bridge emitted, and a small profile page; they read the node's
:class:`~daemon.core.fediverse.ActivityPubService`. Node API under ``/api/v1/activitypub``
(:data:`fediverse_api`): publish, deliveries, followers, domain blocks, through
:mod:`daemon.nodeapi.fediverse`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

import trio
from quart import Blueprint, Response, request

from activitypub_bridge import (
    ACTIVITY_JSON,
    NODEINFO_CONTENT_TYPE,
    WEBFINGER_CONTENT_TYPE,
    DeliveryError,
    DocumentError,
    actor,
    nodeinfo,
    nodeinfo_links,
    ordered_collection,
    ordered_collection_page,
    webfinger,
)
from daemon.core.fediverse import ActivityPubService
from daemon.http import context
from daemon.http.json_body import answer_errors, error, json_object, read_limited, reply

__all__ = ["fediverse", "fediverse_api"]

OUTBOX_PAGE = 20
FOLLOWERS_PAGE = 50
_VERSION = "0.1.0"

fediverse = Blueprint("fediverse", __name__)
fediverse_api = Blueprint("fediverse_api", __name__)
answer_errors(fediverse_api)


def _json(document: Any, content_type: str = ACTIVITY_JSON, status: int = 200) -> Response:
    response = Response(
        json.dumps(document, separators=(",", ":")), status=status, content_type=content_type
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Vary"] = "Accept"
    return response


def _page_arg() -> int | Response | None:
    text = request.args.get("page")
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        return error(400, "page must be a positive integer")
    return int(text)


async def _db(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


async def _bridge() -> ActivityPubService:
    return await context.services().activitypub()


def _no_actor(service: ActivityPubService, username: str) -> Response | None:
    """A 404 for a username that is not the node's creator."""
    if username == service.creator.username:
        return None
    return error(404, f"no actor {username!r} here")


# -- discovery --------------------------------------------------------------------------------
@fediverse.get("/.well-known/webfinger")
async def webfinger_route() -> Response:
    service = await _bridge()
    resource = request.args.get("resource")
    if not resource:
        return error(400, "query parameter 'resource' is required")
    try:
        document = webfinger(service.site, [service.creator], resource)
    except DocumentError as exc:
        return error(400, str(exc))
    if document is None:
        return error(404, f"no such account here: {resource[:200]}")
    return _json(document, WEBFINGER_CONTENT_TYPE)


@fediverse.get("/.well-known/nodeinfo")
async def nodeinfo_links_route() -> Response:
    return _json(nodeinfo_links((await _bridge()).site), "application/json")


@fediverse.get("/nodeinfo/2.1")
async def nodeinfo_route() -> Response:
    service = await _bridge()
    posts = await _db(service.activities.outbox_count, service.creator.username)
    return _json(nodeinfo(service.site, 1, posts, _VERSION), NODEINFO_CONTENT_TYPE)


# -- the actor and its collections ------------------------------------------------------------
@fediverse.get("/users/<username>")
async def actor_route(username: str) -> Response:
    service = await _bridge()
    return _no_actor(service, username) or _json(actor(service.site, service.creator))


async def _paged(
    service: ActivityPubService,
    username: str,
    collection: str,
    count: Callable[[], int],
    items: Callable[[int, int], list[Any]],
    size: int,
) -> Response:
    """An OrderedCollection head, or its ``?page=N`` (1-based, ``size`` items each)."""
    refused = _no_actor(service, username)
    if refused is not None:
        return refused
    page = _page_arg()
    if isinstance(page, Response):
        return page
    site = service.site
    total = await _db(count)
    if page is None:
        return _json(ordered_collection(collection, total, site.page_id(collection, 1)))
    rows = await _db(items, size, (page - 1) * size)
    return _json(
        ordered_collection_page(
            site.page_id(collection, page),
            collection,
            rows,
            next=site.page_id(collection, page + 1) if page * size < total else None,
            prev=site.page_id(collection, page - 1) if page > 1 else None,
        )
    )


@fediverse.get("/users/<username>/outbox")
async def outbox_route(username: str) -> Response:
    service = await _bridge()
    name = service.creator.username

    def items(limit: int, offset: int) -> list[Any]:
        rows = service.activities.outbox(name, limit, offset)
        return [{k: v for k, v in row.items() if k != "@context"} for row in rows]

    return await _paged(
        service,
        username,
        service.site.outbox(name),
        lambda: service.activities.outbox_count(name),
        items,
        OUTBOX_PAGE,
    )


@fediverse.get("/users/<username>/followers")
async def followers_route(username: str) -> Response:
    service = await _bridge()
    name = service.creator.username

    def items(limit: int, offset: int) -> list[Any]:
        return [row.actor for row in service.followers.followers(name, limit, offset)]

    return await _paged(
        service,
        username,
        service.site.followers(name),
        lambda: service.followers.count(name),
        items,
        FOLLOWERS_PAGE,
    )


@fediverse.get("/users/<username>/following")
async def following_route(username: str) -> Response:
    service = await _bridge()
    following = service.site.following(service.creator.username)
    return _no_actor(service, username) or _json(
        ordered_collection(following, 0, None) | {"orderedItems": []}
    )


# -- inboxes ----------------------------------------------------------------------------------
async def _receive(username: str | None) -> Response:
    service = await _bridge()
    body = await read_limited(service.config.max_inbox_bytes)
    if isinstance(body, Response):
        return body
    query = request.query_string.decode("latin-1")
    url = service.site.url(request.path + (f"?{query}" if query else ""))
    result = await service.receive(username, url, dict(request.headers), body)
    response = error(result.status, result.message)
    if result.status == 401:
        response.headers["WWW-Authenticate"] = 'Signature realm="artdag"'
    return response


@fediverse.post("/users/<username>/inbox")
async def inbox_route(username: str) -> Response:
    return await _receive(username)


@fediverse.post("/inbox")
async def shared_inbox_route() -> Response:
    return await _receive(None)


@fediverse.get("/users/<username>/inbox")
@fediverse.get("/inbox")
async def inbox_get(username: str | None = None) -> Response:
    """Inboxes are for POSTs; a GET shows an empty collection so the id resolves."""
    service = await _bridge()
    site = service.site
    if username is not None:
        refused = _no_actor(service, username)
        if refused is not None:
            return refused
    inbox = site.inbox(service.creator.username) if username is not None else site.shared_inbox
    return _json(ordered_collection(inbox, 0, None) | {"orderedItems": []})


# -- what the bridge emitted ------------------------------------------------------------------
@fediverse.get("/objects/<username>/<cid>")
async def object_route(username: str, cid: str) -> Response:
    service = await _bridge()
    document = await _db(service.activities.object, service.site.url(request.path))
    if document is None:
        return error(404, "no such object")
    return _json(document)


@fediverse.get("/activities/<path:rest>")
async def activity_route(rest: str) -> Response:
    service = await _bridge()
    document = await _db(service.activities.activity, service.site.url(request.path))
    if document is None:
        return error(404, "no such activity")
    return _json(document)


@fediverse.get("/@<username>")
async def profile_route(username: str) -> Response:
    service = await _bridge()
    refused = _no_actor(service, username)
    if refused is not None:
        return refused
    site, creator, name = service.site, service.creator, service.creator.username
    items = await _db(service.activities.outbox, name, 50, 0)
    works = "".join(
        f'<li><a href="{escape(item["object"]["url"])}">{escape(item["object"]["id"])}</a>'
        f" ({escape(item.get('published', ''))})</li>"
        for item in items
        if isinstance(item.get("object"), dict)
    )
    handle = f"@{name}@{site.domain}"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(handle)}</title>"
        f'<link rel="alternate" type="{ACTIVITY_JSON}" href="{escape(site.actor_id(name))}">'
        f"</head><body><h1>{escape(creator.name)}</h1><p>{escape(handle)}</p>"
        f"<p>{escape(creator.did)}</p><h2>Works</h2><ul>{works or '<li>none yet</li>'}</ul>"
        "</body></html>"
    )
    return Response(page, content_type="text/html; charset=utf-8")


# -- node API (bearer token, checked by the app for /api/) ------------------------------------
@fediverse_api.post("/api/v1/activitypub/publish")
async def publish_route() -> Response:
    data = await json_object('{"cid": "...", "text": "...", "alt": "..."}')
    if isinstance(data, Response):
        return data
    if not isinstance(data.get("cid"), str):
        return error(400, 'body must be JSON {"cid": "...", "text": "...", "alt": "..."}')
    text, alt = data.get("text", ""), data.get("alt")
    if not isinstance(text, str) or (alt is not None and not isinstance(alt, str)):
        return error(400, "text and alt must be strings")
    published = await context.api().fediverse.publish(data["cid"], text, alt)
    return reply(published.to_json())


def _limit(default: int, most: int) -> int:
    return min(int(request.args.get("limit", default)), most)


@fediverse_api.get("/api/v1/activitypub/deliveries")
async def deliveries_route() -> Response:
    state = request.args.get("state") or None
    try:
        found = await context.api().fediverse.deliveries(state, _limit(100, 1000))
    except DeliveryError as exc:
        return error(400, str(exc))
    return reply(found.to_json())


@fediverse_api.get("/api/v1/activitypub/followers")
async def followers_api() -> Response:
    found = await context.api().fediverse.followers(_limit(1000, 10_000))
    return reply(found.to_json())


@fediverse_api.post("/api/v1/activitypub/blocks")
async def block_route() -> Response:
    data = await json_object('{"domain": "..."}')
    if isinstance(data, Response):
        return data
    if not isinstance(data.get("domain"), str):
        return error(400, 'body must be JSON {"domain": "..."}')
    bridge = context.api().fediverse
    if data.get("unblock"):
        return reply({"unblocked": await bridge.unblock(data["domain"])})
    return reply({"blocked": await bridge.block(data["domain"])})
