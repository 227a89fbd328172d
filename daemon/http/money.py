"""The money routes of the node API (bearer token): usage records, settlements, a payee's proof.

Each parses its request, calls :mod:`daemon.nodeapi.money` in-process and serialises the
result; the remote implementation of that API calls these.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from daemon.http import context
from daemon.http.json_body import (
    BodyError,
    answer_errors,
    json_object,
    optional_str,
    reply,
    required_str,
    str_list,
)

__all__ = ["money"]

money = Blueprint("money", __name__)
answer_errors(money)


def _int(data: dict[str, Any], name: str, default: int | None = None) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BodyError(f"{name} must be a non-negative integer")
    return value


@money.post("/api/v1/money/usage")
async def usage() -> Response:
    data = await json_object('{"subject": "...", "kind": "view|listen|like|boost", "count": 1}')
    if isinstance(data, Response):
        return data
    cid = await context.api().money.usage(
        required_str(data, "subject"),
        required_str(data, "kind"),
        _int(data, "count", 1),
        optional_str(data, "epoch"),
        optional_str(data, "listener"),
        optional_str(data, "source"),
    )
    return reply({"usage": cid})


@money.post("/api/v1/money/settlements")
async def settle() -> Response:
    data = await json_object('{"epoch": "YYYY-MM", "pool": 10000, "currency": "EUR"}')
    if isinstance(data, Response):
        return data
    settlement = await context.api().money.settle(
        required_str(data, "epoch"),
        _int(data, "pool"),
        optional_str(data, "currency") or "EUR",
        optional_str(data, "policy") or "splits",
        str_list(data, "operators"),
    )
    return reply(settlement.to_json())


@money.get("/api/v1/money/statements/<statement>/proof")
async def statement_proof(statement: str) -> Response:
    payee = request.args.get("payee")
    if not payee:
        raise BodyError("query parameter 'payee' is required")
    proof = await context.api().money.statement_proof(statement, payee)
    return reply(proof.to_json())
