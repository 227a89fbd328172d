"""Content routes of the JSON API: file bytes, blocks as DAG-JSON, CAR files out and in, and
the store check (what :class:`daemon.nodeapi.content.RemoteContent` calls).

Streamed answers read their first piece before the reply starts, so an error on the root
(an unknown CID, a missing block) is a JSON ``{"error"}`` with its status, not a cut stream.
Errors map to statuses in :mod:`daemon.http.app` (``_STATUS_FOR_ERROR``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, request

from daemon.http import context
from daemon.http.json_body import error as error_reply
from daemon.http.json_body import reply

__all__ = ["content"]

content = Blueprint("content", __name__)


async def _started(pieces: AsyncIterator[bytes], ahead: int = 1) -> AsyncIterator[bytes]:
    """``pieces`` with the first ``ahead`` already read (raising now, before any reply)."""
    first: list[bytes] = []
    for _ in range(ahead):
        piece = await anext(pieces, None)
        if piece is None:
            break
        first.append(piece)

    async def rest() -> AsyncIterator[bytes]:
        for piece in first:
            yield piece
        async for piece in pieces:
            yield piece

    return rest()


def _int_arg(name: str, default: int | None) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{name} must be a non-negative integer")
    return int(text)


@content.get("/api/v1/cat/<cid>")
async def cat(cid: str) -> Any:
    """A file's bytes, or ``?offset=&length=`` of them."""
    try:
        offset = _int_arg("offset", 0) or 0
        length = _int_arg("length", None)
    except ValueError as exc:
        return error_reply(400, str(exc))
    body = await _started(context.api().content.cat(cid, offset, length))
    return Response(body, content_type="application/octet-stream")


@content.get("/api/v1/dag/<cid>")
async def dag_get(cid: str) -> Any:
    return reply({"dag_json": await context.api().content.dag_get(cid)})


@content.get("/api/v1/car/<cid>")
async def export_car(cid: str) -> Any:
    # the header, then the root block: a missing root is an error reply, not a cut stream
    body = await _started(context.api().content.export_car(cid), ahead=2)
    return Response(body, content_type="application/vnd.ipld.car")


@content.post("/api/v1/car")
async def import_car() -> Any:
    """A CARv1 body, imported as it arrives (every block verified); its roots."""
    limit = context.services().config.http.max_upload_bytes
    result = await context.api().content.import_car(body_within(limit))
    return reply(result.to_json())


@content.post("/api/v1/verify")
async def verify() -> Any:
    repair = request.args.get("repair", "false") == "true"
    return reply((await context.api().content.verify(repair)).to_json())


async def body_within(limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives; RequestEntityTooLarge (413) past ``limit`` bytes in all.

    Quart's ``MAX_CONTENT_LENGTH`` compares only the bytes buffered at one time with the limit,
    so a chunked body that the reader keeps draining got through whole when its chunks were
    small enough (a 5,000-byte upload stored under a limit of 1,000 bytes, about one run in
    six)."""
    from werkzeug.exceptions import RequestEntityTooLarge

    size = 0
    async for chunk in request.body:
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        yield chunk
