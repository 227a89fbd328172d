"""The IPFS Pinning Service API (what ``ipfs pin remote`` speaks): ``/pins`` routes.

``GET /pins`` lists, ``POST /pins`` adds, ``GET|POST|DELETE /pins/{requestid}`` gets, replaces
and removes, with the status codes and bodies of ``specs/ipfs-pinning-service.yaml`` v1.0.0:
202 for add, replace and delete, 200 for list and get, 400/401/404 as the spec's ``Failure``
(``{"error": {"reason": ..., "details": ...}}``). Every route needs ``Authorization: Bearer
<token>`` with a token made by ``artdag pinning token-add`` (:mod:`daemon.core.pinning_api.tokens`);
each token sees only the requests it made. Routes only translate HTTP: the checks live in
:mod:`daemon.core.pinning_api.requests`, the work in :mod:`daemon.core.pinning_api.worker` (the
node's one :class:`~daemon.core.pinning_api.worker.PinningWorker`, from
:meth:`daemon.services.Services.pinning`). :func:`daemon.http.app.create_app` registers the
:data:`pinning` blueprint when ``[pinning] service_api`` is on.

One token cannot crowd out the others (the spec's ``4XX`` custom errors, ``Failure`` bodies):

- ``[pinning] requests_per_minute`` / ``burst`` per token, over every route: beyond it 429
  ``RATE_LIMITED`` with ``Retry-After`` (a token bucket, :class:`webui.client_limits.ClientLimits`
  keyed by token name);
- ``max_pending_per_token`` requests queued or pinning: a new one (add or replace) gets 429
  ``TOO_MANY_PENDING_REQUESTS`` until some settle;
- ``max_meta_bytes`` of ``meta`` (compact JSON) and ``max_name_chars`` of ``name`` per
  request, JSON bodies nested at most :data:`MAX_BODY_DEPTH` deep: beyond, 400 ``BAD_REQUEST``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from activitypub_bridge import JsonRefused, parse_json
from daemon.config import Config
from daemon.core.pinning_api.requests import (
    PendingLimitReached,
    PinLimits,
    PinRequest,
    PinRequestError,
    parse_list_query,
    parse_pin_body,
)
from daemon.core.pinning_api.tokens import TokenChecker
from daemon.core.pinning_api.worker import PinningWorker
from daemon.http import context
from webui.client_limits import ClientLimits

__all__ = ["MAX_BODY_BYTES", "MAX_BODY_DEPTH", "failure", "pinning"]

pinning = Blueprint("pinning", __name__)

MAX_BODY_BYTES = 256 * 1024  # a Pin with 20 origins and 1000 meta entries fits easily
MAX_BODY_DEPTH = 4  # a Pin nests two levels (the body, its origins or meta)
_LIST_PARAMS = ("cid", "status")  # arrays sent comma-separated (style form, explode false)


def failure(status: int, reason: str, details: str) -> Response:
    """The spec's ``Failure`` body."""
    response = jsonify({"error": {"reason": reason, "details": details}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="artdag pinning"'
    return response


def _unauthorized() -> Response:
    response = failure(401, "UNAUTHORIZED", "Access token is missing or invalid")
    response.headers["Connection"] = "close"  # the body was not read: do not reuse the stream
    return response


def _not_found(requestid: str) -> Response:
    return failure(404, "NOT_FOUND", f"no pin request {requestid[:80]!r}")


class _BodyTooLarge(PinRequestError):
    """Not all of the body was read."""


def _bad(exc: Exception) -> Response:
    response = failure(400, "BAD_REQUEST", str(exc))
    if isinstance(exc, _BodyTooLarge):
        response.headers["Connection"] = "close"
    return response


async def _pin_body() -> Any:
    """The decoded JSON body (at most :data:`MAX_BODY_BYTES`), or PinRequestError."""
    too_large = _BodyTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise too_large
    raw = bytearray()
    async for chunk in request.body:
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise too_large
    try:
        return parse_json(bytes(raw), max_bytes=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH)
    except JsonRefused as exc:
        raise PinRequestError(f"the body is not JSON this service takes: {exc}") from None


def _rate_limited(retry_after: int) -> Response:
    response = failure(
        429, "RATE_LIMITED", f"too many requests with this token; retry in {retry_after} s"
    )
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Connection"] = "close"  # the body was not read: do not reuse the stream
    return response


def _query_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = ",".join(values) if key in _LIST_PARAMS else values[0]
    return args


@dataclass(frozen=True)
class _Gate:
    """Who may call ``/pins`` and how often: the token file, the rate per token, the limits of
    a request's name and meta (from ``[pinning]``)."""

    tokens: TokenChecker
    rates: ClientLimits | None
    limits: PinLimits

    @classmethod
    def of(cls, config: Config) -> _Gate:
        settings = config.pinning
        return cls(
            tokens=TokenChecker(config.pinning_tokens_path),
            rates=ClientLimits.per_minute(settings.requests_per_minute, settings.burst),
            limits=PinLimits(
                max_name=settings.max_name_chars, max_meta_bytes=settings.max_meta_bytes
            ),
        )


_GATE = "artdag.pinning.gate"


def _gate() -> _Gate:
    """The app's gate, made at its first ``/pins`` request (the token file is read then)."""
    gate = current_app.extensions.get(_GATE)
    if gate is None:
        gate = current_app.extensions[_GATE] = _Gate.of(context.services().config)
    return gate


def _authorise() -> str | Response:
    """The token's name, or the response refusing the request (401, 429)."""
    gate = _gate()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    who = gate.tokens.owner_of(given.strip()) if scheme.lower() == "bearer" else None
    if who is None:
        return _unauthorized()
    if gate.rates is not None:
        wait = gate.rates.check(who, time.monotonic())
        if wait > 0:
            return _rate_limited(gate.rates.retry_after(wait))
    return who


def _too_many(exc: PendingLimitReached) -> Response:
    return failure(429, "TOO_MANY_PENDING_REQUESTS", str(exc))


def _status_of(worker: PinningWorker, row: PinRequest) -> dict[str, Any]:
    body = row.to_json(worker.delegates())
    body["info"] = worker.info_of(row)
    return body


def _accepted(worker: PinningWorker, row: PinRequest) -> Response:
    response = jsonify(_status_of(worker, row))
    response.status_code = 202
    return response


@pinning.get("/pins")
async def list_pins() -> Any:
    who = _authorise()
    if isinstance(who, Response):
        return who
    try:
        query = parse_list_query(_query_args())
    except PinRequestError as exc:
        return _bad(exc)
    worker = await context.services().pinning()
    count, rows = await worker.list(query, who)
    return jsonify({"count": count, "results": [_status_of(worker, r) for r in rows]})


@pinning.post("/pins")
async def add_pin() -> Any:
    who = _authorise()
    if isinstance(who, Response):
        return who
    try:
        pin = parse_pin_body(await _pin_body(), _gate().limits)
    except PinRequestError as exc:
        return _bad(exc)
    worker = await context.services().pinning()
    try:
        return _accepted(worker, await worker.add(pin, who))
    except PendingLimitReached as exc:
        return _too_many(exc)


@pinning.get("/pins/<requestid>")
async def get_pin(requestid: str) -> Any:
    who = _authorise()
    if isinstance(who, Response):
        return who
    worker = await context.services().pinning()
    row = await worker.get(requestid, who)
    if row is None:
        return _not_found(requestid)
    return jsonify(_status_of(worker, row))


@pinning.post("/pins/<requestid>")
async def replace_pin(requestid: str) -> Any:
    who = _authorise()
    if isinstance(who, Response):
        return who
    try:
        pin = parse_pin_body(await _pin_body(), _gate().limits)
    except PinRequestError as exc:
        return _bad(exc)
    worker = await context.services().pinning()
    try:
        row = await worker.replace(requestid, pin, who)
    except PendingLimitReached as exc:
        return _too_many(exc)
    if row is None:
        return _not_found(requestid)
    return _accepted(worker, row)


@pinning.delete("/pins/<requestid>")
async def delete_pin(requestid: str) -> Any:
    who = _authorise()
    if isinstance(who, Response):
        return who
    worker = await context.services().pinning()
    if not await worker.remove(requestid, who):
        return _not_found(requestid)
    return Response(b"", status=202)
