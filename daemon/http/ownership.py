"""The ownership routes of the node API (bearer token): claims, disputes and anchors.

Each parses its request, calls :mod:`daemon.nodeapi.ownership` in-process and serialises the
result; the remote implementation of that API calls these.
"""

from __future__ import annotations

from quart import Blueprint, Response

from daemon.http import context
from daemon.http.json_body import (
    answer_errors,
    json_object,
    optional_str,
    reply,
    required_str,
    str_list,
)

__all__ = ["ownership"]

ownership = Blueprint("ownership", __name__)
answer_errors(ownership)

_SOURCES = '"calendars": ["https://..."], "header_source": "https://..."'


@ownership.post("/api/v1/claims")
async def claim() -> Response:
    data = await json_object('{"cid": "...", "split": ["ROLE=PCT"], "license": "..."}')
    if isinstance(data, Response):
        return data
    cid = required_str(data, "cid")
    result = await context.api().claims.claim(
        cid, str_list(data, "split"), optional_str(data, "license")
    )
    return reply(result.to_json())


@ownership.get("/api/v1/claims/disputes")
async def disputes() -> Response:
    found = await context.api().claims.disputes()
    return reply({"disputes": [d.to_json() for d in found]})


@ownership.post("/api/v1/anchors")
async def anchor() -> Response:
    data = await json_object('{"cids": ["..."], ' + _SOURCES + "}")
    if isinstance(data, Response):
        return data
    row = await context.api().anchors.anchor(
        str_list(data, "cids"), str_list(data, "calendars"), optional_str(data, "header_source")
    )
    return reply({"anchor": None if row is None else row.to_json()})


@ownership.get("/api/v1/anchors")
async def anchors() -> Response:
    rows = await context.api().anchors.anchors()
    return reply({"anchors": [row.to_json() for row in rows]})


@ownership.post("/api/v1/anchors/upgrade")
async def upgrade() -> Response:
    data = await json_object("{" + _SOURCES + "}")
    if isinstance(data, Response):
        return data
    rows = await context.api().anchors.anchors(
        True, str_list(data, "calendars"), optional_str(data, "header_source")
    )
    return reply({"anchors": [row.to_json() for row in rows]})


@ownership.post("/api/v1/anchors/verify")
async def verify() -> Response:
    data = await json_object('{"cid": "...", ' + _SOURCES + "}")
    if isinstance(data, Response):
        return data
    cid = required_str(data, "cid")
    report = await context.api().anchors.verify(
        cid, str_list(data, "calendars"), optional_str(data, "header_source")
    )
    return reply(report.to_json())
