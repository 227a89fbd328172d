"""Asset and record routes of the JSON API: list, show, read and upload assets (a raw body,
streamed into the store), and show a stored record verified."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

import dag
from daemon.http import context
from daemon.http.content import body_within
from daemon.http.json_body import error
from dag import cid_to_str, parse_cid
from provenance import is_media_type
from webui import USER_CONTENT_HEADERS

__all__ = ["assets"]

assets = Blueprint("assets", __name__)

_OCTET_STREAM = "application/octet-stream"


def _import_overrides(args: Any) -> dict[str, Any]:
    """``?chunk_size=&cid_version=&raw_leaves=`` of an upload (absent: the ``[import]``
    config); ValueError for a malformed one."""
    overrides: dict[str, Any] = {}
    for key in ("chunk_size", "cid_version"):
        text = args.get(key)
        if text:
            if not text.isascii() or not text.isdigit():
                raise ValueError(f"{key} must be a non-negative integer")
            overrides[key] = int(text)
    raw = args.get("raw_leaves")
    if raw is not None:
        if raw not in ("true", "false"):
            raise ValueError("raw_leaves must be true or false")
        overrides["raw_leaves"] = raw == "true"
    return overrides


@assets.get("/api/v1/assets")
async def list_assets() -> Any:
    node = context.services().node
    try:
        limit = min(int(request.args.get("limit", 100)), 1000)
        offset = max(int(request.args.get("offset", 0)), 0)
    except ValueError:
        return error(400, "limit and offset must be integers")
    rows = await node.assets(request.args.get("tag"), limit, offset)
    return jsonify({"assets": [r.to_json() for r in rows], "limit": limit, "offset": offset})


@assets.get("/api/v1/assets/<cid>")
async def get_asset(cid: str) -> Any:
    node = context.services().node
    row = await node.asset(parse_cid(cid))
    if row is None:
        return error(404, f"no asset {cid}")
    record = dag.to_jsonable(await node.record(row.record))
    return jsonify(row.to_json() | {"asset_record": record})


@assets.get("/api/v1/assets/<cid>/content")
async def asset_content(cid: str) -> Any:
    node = context.services().node
    parsed = parse_cid(cid)
    row = await node.asset(parsed)
    size = await node.size_of(parsed)
    headers = {  # user content: checked type, sandboxed as the gateway's (webui.gateway)
        "Content-Type": (row.mime if row and is_media_type(row.mime) else _OCTET_STREAM),
        "Content-Length": str(size),
        "ETag": f'"{cid_to_str(parsed)}"',
    } | USER_CONTENT_HEADERS
    return Response(node.cat(parsed), headers=headers)


@assets.post("/api/v1/assets")
async def upload_asset() -> Any:
    """Raw body upload: ``POST /api/v1/assets?name=clip.mp4&tag=a&tag=b`` (and the UnixFS
    layout: ``chunk_size``, ``cid_version``, ``raw_leaves``)."""
    node = context.services().node
    name = request.args.get("name")
    if not name:
        return error(400, "query parameter 'name' is required")
    tags = request.args.getlist("tag")
    mime = request.headers.get("Content-Type")
    if mime in (None, "", "application/octet-stream", "application/x-www-form-urlencoded"):
        mime = None
    try:
        params = node.import_params(**_import_overrides(request.args))
    except ValueError as exc:
        return error(400, str(exc))
    within = body_within(node.config.http.max_upload_bytes)
    added = await node.add_stream(within, name=name, tags=tags, mime=mime, params=params)
    body = added.asset.to_json() | {"existed": added.existed}
    response = jsonify(body)
    response.status_code = 200 if added.existed else 201
    response.headers["Location"] = f"/api/v1/assets/{added.asset.cid}"
    return response


@assets.get("/api/v1/records/<cid>")
async def get_record(cid: str) -> Any:
    node = context.services().node
    """A stored record, verified before it is returned (schema and signature)."""
    record = await node.record(parse_cid(cid))
    key = cid_to_str(parse_cid(cid))
    shown = {"record": dag.to_jsonable(record), "dag_json": dag.to_dag_json(record)}
    return jsonify({"cid": key} | shown)
