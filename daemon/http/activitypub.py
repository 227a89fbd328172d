"""The fediverse's routes (public, no bearer token) and the bridge's local API (token).

Public: WebFinger, NodeInfo, the actor, its outbox/followers/following collections (paginated),
the inbox and shared inbox, every activity and object the bridge emitted, and a small profile
page. Local API under ``/api/v1/activitypub``: publish, deliveries, followers, domain blocks.
Routes translate HTTP to :class:`~daemon.core.fediverse.ActivityPubService` calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from activitypub_bridge import (
    ACTIVITY_JSON,
    NODEINFO_CONTENT_TYPE,
    WEBFINGER_CONTENT_TYPE,
    DeliveryError,
    DocumentError,
    FollowerStoreError,
    JsonRefused,
    actor,
    nodeinfo,
    nodeinfo_links,
    ordered_collection,
    ordered_collection_page,
    parse_json,
    webfinger,
)
from daemon.core.fediverse import ActivityPubService, PublishError
from dag import CidError

__all__ = ["add_activitypub_routes"]

OUTBOX_PAGE = 20
LOCAL_API_BODY_BYTES = 64 << 10  # the local API's JSON requests are a few short strings
FOLLOWERS_PAGE = 50
_VERSION = "0.1.0"


def _json(document: Any, content_type: str = ACTIVITY_JSON, status: int = 200) -> Response:
    response = Response(
        json.dumps(document, separators=(",", ":")), status=status, content_type=content_type
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Vary"] = "Accept"
    return response


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _page_arg() -> int | Response | None:
    text = request.args.get("page")
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        return _error(400, "page must be a positive integer")
    return int(text)


async def _read_limited(limit: int) -> bytes | Response:
    declared = request.content_length
    if declared is not None and declared > limit:
        return _error(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        size += len(chunk)
        if size > limit:
            return _error(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_request() -> Any:
    """The local API's JSON body within limits (:func:`activitypub_bridge.parse_json`): the
    value, a 413 response, or None when it is not JSON within limits (the routes answer 400)."""
    body = await _read_limited(LOCAL_API_BODY_BYTES)
    if isinstance(body, Response):
        return body
    try:
        return parse_json(body, max_bytes=LOCAL_API_BODY_BYTES)
    except JsonRefused:
        return None


def add_activitypub_routes(app: QuartTrio, service: ActivityPubService) -> None:
    site = service.site
    creator = service.creator
    name = creator.username
    limit = service.node.config.activitypub.max_inbox_bytes

    def known(username: str) -> bool:
        return username == name

    # -- discovery ----------------------------------------------------------------------------
    @app.get("/.well-known/webfinger")
    async def webfinger_route() -> Response:
        resource = request.args.get("resource")
        if not resource:
            return _error(400, "query parameter 'resource' is required")
        try:
            document = webfinger(site, [creator], resource)
        except DocumentError as exc:
            return _error(400, str(exc))
        if document is None:
            return _error(404, f"no such account here: {resource[:200]}")
        return _json(document, WEBFINGER_CONTENT_TYPE)

    @app.get("/.well-known/nodeinfo")
    async def nodeinfo_links_route() -> Response:
        return _json(nodeinfo_links(site), "application/json")

    @app.get("/nodeinfo/2.1")
    async def nodeinfo_route() -> Response:
        posts = await _db(service.activities.outbox_count, name)
        return _json(nodeinfo(site, 1, posts, _VERSION), NODEINFO_CONTENT_TYPE)

    # -- the actor and its collections -------------------------------------------------------
    @app.get("/users/<username>")
    async def actor_route(username: str) -> Response:
        if not known(username):
            return _error(404, f"no actor {username!r} here")
        return _json(actor(site, creator))

    async def paged(
        username: str,
        collection: str,
        count: Callable[[], int],
        items: Callable[[int, int], list[Any]],
        size: int,
    ) -> Response:
        """An OrderedCollection head, or its ``?page=N`` (1-based, ``size`` items each)."""
        if not known(username):
            return _error(404, f"no actor {username!r} here")
        page = _page_arg()
        if isinstance(page, Response):
            return page
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

    @app.get("/users/<username>/outbox")
    async def outbox_route(username: str) -> Response:
        def items(limit: int, offset: int) -> list[Any]:
            rows = service.activities.outbox(name, limit, offset)
            return [{k: v for k, v in row.items() if k != "@context"} for row in rows]

        return await paged(
            username,
            site.outbox(name),
            lambda: service.activities.outbox_count(name),
            items,
            OUTBOX_PAGE,
        )

    @app.get("/users/<username>/followers")
    async def followers_route(username: str) -> Response:
        def items(limit: int, offset: int) -> list[Any]:
            return [row.actor for row in service.followers.followers(name, limit, offset)]

        return await paged(
            username,
            site.followers(name),
            lambda: service.followers.count(name),
            items,
            FOLLOWERS_PAGE,
        )

    @app.get("/users/<username>/following")
    async def following_route(username: str) -> Response:
        if not known(username):
            return _error(404, f"no actor {username!r} here")
        return _json(ordered_collection(site.following(name), 0, None) | {"orderedItems": []})

    # -- inboxes -----------------------------------------------------------------------------
    async def receive(username: str | None) -> Response:
        body = await _read_limited(limit)
        if isinstance(body, Response):
            return body
        query = request.query_string.decode("latin-1")
        url = site.url(request.path + (f"?{query}" if query else ""))
        result = await service.receive(username, url, dict(request.headers), body)
        response = _error(result.status, result.message)
        if result.status == 401:
            response.headers["WWW-Authenticate"] = 'Signature realm="artdag"'
        return response

    @app.post("/users/<username>/inbox")
    async def inbox_route(username: str) -> Response:
        return await receive(username)

    @app.post("/inbox")
    async def shared_inbox_route() -> Response:
        return await receive(None)

    @app.get("/users/<username>/inbox")
    @app.get("/inbox")
    async def inbox_get(username: str | None = None) -> Response:
        """Inboxes are for POSTs; a GET shows an empty collection so the id resolves."""
        if username is not None and not known(username):
            return _error(404, f"no actor {username!r} here")
        inbox = site.inbox(name) if username is not None else site.shared_inbox
        return _json(ordered_collection(inbox, 0, None) | {"orderedItems": []})

    # -- what the bridge emitted --------------------------------------------------------------
    @app.get("/objects/<username>/<cid>")
    async def object_route(username: str, cid: str) -> Response:
        document = await _db(service.activities.object, site.url(request.path))
        if document is None:
            return _error(404, "no such object")
        return _json(document)

    @app.get("/activities/<path:rest>")
    async def activity_route(rest: str) -> Response:
        document = await _db(service.activities.activity, site.url(request.path))
        if document is None:
            return _error(404, "no such activity")
        return _json(document)

    @app.get("/@<username>")
    async def profile_route(username: str) -> Response:
        if not known(username):
            return _error(404, f"no actor {username!r} here")
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

    # -- local API (bearer token, checked by the app for /api/) -------------------------------
    @app.post("/api/v1/activitypub/publish")
    async def publish_route() -> Response:
        data = await _json_request()
        if isinstance(data, Response):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("cid"), str):
            return _error(400, 'body must be JSON {"cid": "...", "text": "...", "alt": "..."}')
        text, alt = data.get("text", ""), data.get("alt")
        if not isinstance(text, str) or (alt is not None and not isinstance(alt, str)):
            return _error(400, "text and alt must be strings")
        try:
            published = await service.publish(data["cid"], text, alt)
        except (PublishError, CidError, DocumentError) as exc:
            return _error(400, str(exc))
        return jsonify(published.to_json())

    @app.get("/api/v1/activitypub/deliveries")
    async def deliveries_route() -> Response:
        state = request.args.get("state") or None
        try:
            limit_rows = min(int(request.args.get("limit", 100)), 1000)
            return jsonify(await service.deliveries(state, limit_rows))
        except (ValueError, DeliveryError) as exc:
            return _error(400, str(exc))

    @app.get("/api/v1/activitypub/followers")
    async def followers_api() -> Response:
        return jsonify(await service.followers_view())

    @app.post("/api/v1/activitypub/blocks")
    async def block_route() -> Response:
        data = await _json_request()
        if isinstance(data, Response):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("domain"), str):
            return _error(400, 'body must be JSON {"domain": "..."}')
        try:
            if data.get("unblock"):
                return jsonify({"unblocked": await service.unblock(data["domain"])})
            return jsonify({"blocked": await service.block(data["domain"])})
        except FollowerStoreError as exc:
            return _error(400, str(exc))


async def _db(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)
