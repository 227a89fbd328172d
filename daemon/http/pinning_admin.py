"""The Pinning Service API's administration in the node API (behind the API token, like all of
``/api/v1``; the spec's public ``/pins`` routes are :mod:`daemon.http.pinning`):

- ``POST /api/v1/pinning/tokens`` ``{"name": ...}``: make an access token; the reply carries
  the token, the only time it is shown (only its hash is stored);
- ``GET /api/v1/pinning/tokens``: the tokens' names and creation times (never the tokens);
- ``DELETE /api/v1/pinning/tokens/<name>``: revoke one, ``{"removed": true|false}``;
- ``GET /api/v1/pinning/requests[?status=S...][&limit=N]``: every token's pin requests.

Each parses, calls :mod:`daemon.nodeapi.pinning` in-process and serialises; refusals (bad
names, duplicates, a bad limit: ValueErrors) answer 400 ``{"error": ...}``.
"""

from __future__ import annotations

import re

from quart import Blueprint, Response, request

from daemon.http import context
from daemon.http.json_body import BodyError, answer_errors, json_object, reply, required_str

__all__ = ["pinning_admin"]

pinning_admin = Blueprint("pinning_admin", __name__)
answer_errors(pinning_admin)


@pinning_admin.post("/api/v1/pinning/tokens")
async def token_add() -> Response:
    data = await json_object('{"name": "..."}')
    if isinstance(data, Response):
        return data
    made = await context.api().pinning.token_add(required_str(data, "name"))
    return reply(made.to_json(), 201)


@pinning_admin.get("/api/v1/pinning/tokens")
async def token_list() -> Response:
    tokens = await context.api().pinning.token_list()
    return reply({"tokens": [t.to_json() for t in tokens]})


@pinning_admin.delete("/api/v1/pinning/tokens/<path:name>")
async def token_remove(name: str) -> Response:
    removed = await context.api().pinning.token_remove(name)
    return reply({"name": name, "removed": removed})


@pinning_admin.get("/api/v1/pinning/requests")
async def requests() -> Response:
    text = request.args.get("limit", "1000")
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise BodyError("limit must be a whole number")
    statuses = request.args.getlist("status")
    listing = await context.api().pinning.requests(statuses, int(text))
    return reply(listing.to_json())
