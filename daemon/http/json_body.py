"""Reading the small JSON bodies of the node API's POST routes, and answering their errors.

A body is read within a byte limit (413 past it) and parsed by
:func:`activitypub_bridge.parse_json` (bounded depth and sizes); fields are checked by type, and
a bad one is a :class:`BodyError` naming it. A route's known errors answer
``{"error": str(exc)}`` with a status (:func:`answer_errors`), so the remote side of the node
API raises DaemonError with the very message the in-process side raises.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response, jsonify, request

from activitypub_bridge import JsonRefused, parse_json
from daemon.services import NeedsDaemon

__all__ = [
    "BODY_BYTES",
    "BodyError",
    "answer_errors",
    "error",
    "json_object",
    "optional_str",
    "read_limited",
    "reply",
    "required_str",
    "str_list",
]

BODY_BYTES = 64 << 10  # the node API's JSON requests are a few short strings


class BodyError(ValueError):
    """A request body that is not what the route takes."""


def reply(value: Any, status: int = 200) -> Response:
    """``value`` as JSON with its keys in their own order (``jsonify`` sorts them), so the
    remote side of the node API reads back what the in-process side returned."""
    return Response(json.dumps(value), status=status, content_type="application/json")


def error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


async def read_limited(limit: int) -> bytes | Response:
    """The request body, or a 413 answer once it passes ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return error(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        size += len(chunk)
        if size > limit:
            return error(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(shape: str, limit: int = BODY_BYTES) -> dict[str, Any] | Response:
    """The body as a JSON object, or a 400/413 answer (``shape`` says what is expected)."""
    body = await read_limited(limit)
    if isinstance(body, Response):
        return body
    try:
        data = parse_json(body, max_bytes=limit)
    except JsonRefused:
        data = None
    if not isinstance(data, dict):
        return error(400, f"body must be JSON {shape}")
    return data


def optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise BodyError(f"{name} must be a string")
    return value


def required_str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise BodyError(f"{name} is required (a string)")
    return value


def str_list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BodyError(f"{name} must be a list of strings")
    return value


def answer_errors(blueprint: Blueprint) -> None:
    """Known errors of the blueprint's routes answer ``{"error": ...}``: ValueError (the
    node's refusals: bad CIDs, records, amounts, ...) 400, NeedsDaemon 503."""

    @blueprint.errorhandler(ValueError)
    async def refused(exc: ValueError) -> Response:
        return error(400, str(exc))

    @blueprint.errorhandler(NeedsDaemon)
    async def needs_daemon(exc: NeedsDaemon) -> Response:
        return error(503, str(exc))
