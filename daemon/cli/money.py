"""CLI commands for money: ``artdag usage``, ``artdag settle``, ``artdag statement-proof``.

Thin: parse, call :class:`daemon.core.money.MoneyService` on the node opened in-process,
print. Amounts on the command line are decimal major units (``100.00``) with at most two
decimals; statements hold integer minor units (cents).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from daemon.core.money import MoneyService

__all__ = ["register", "parse_amount", "format_amount"]

MINOR_DIGITS = 2  # minor units per major unit: 10 ** 2 (EUR, USD, GBP, ...)


def parse_amount(text: str) -> int:
    """``"100.00"`` -> 10000 minor units; at most two decimals, not negative."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number like 100.00") from None
    minor = value.scaleb(MINOR_DIGITS)
    if not value.is_finite() or value < 0 or minor != minor.to_integral_value():
        raise ValueError(f"amount {text!r}: a non-negative number with at most two decimals")
    return int(minor)


def format_amount(minor: int) -> str:
    whole, frac = divmod(minor, 10**MINOR_DIGITS)
    return f"{whole}.{frac:0{MINOR_DIGITS}d}"


@asynccontextmanager
async def _money(ctx: click.Context) -> AsyncIterator[MoneyService]:
    from daemon.core.money import open_money
    from daemon.core.node import open_node
    from daemon.core.ownership.tasks import open_claims

    async with (
        open_node(ctx.obj["config"]) as node,
        open_claims(node) as claims,
        open_money(node, find_claim=claims.winning_claim) as money,
    ):
        yield money


def register(main: click.Group) -> None:
    """Add the money commands to ``main``."""
    from daemon.cli.main import _run

    @main.command("usage")
    @click.argument("subject")
    @click.option("--kind", required=True, type=click.Choice(["view", "listen", "like", "boost"]))
    @click.option("--count", default=1, show_default=True, type=click.IntRange(1, 1_000_000_000))
    @click.option("--epoch", help="YYYY-MM or YYYY-MM-DD (default: this month, UTC).")
    @click.option("--listener", help="Who listened (a did or actor URI), for the 9ten policy.")
    @click.option("--source", help="Where it was counted (gateway, fediverse inbox).")
    @click.pass_context
    @_run
    async def usage(
        ctx: click.Context,
        subject: str,
        kind: str,
        count: int,
        epoch: str | None,
        listener: str | None,
        source: str | None,
    ) -> None:
        """Record a signed usage event (views, listens, likes, boosts) of SUBJECT."""
        from dag import cid_to_str

        async with _money(ctx) as money:
            cid = await money.record_usage(subject, kind, count, epoch, listener, source)
        click.echo(cid_to_str(cid))

    @main.command("settle")
    @click.option("--epoch", required=True, help="YYYY-MM (or a day, YYYY-MM-DD).")
    @click.option("--pool", "pool_text", required=True, help="The money to divide, e.g. 100.00.")
    @click.option("--currency", default="EUR", show_default=True)
    @click.option(
        "--policy", default="splits", show_default=True, type=click.Choice(["splits", "9ten"])
    )
    @click.option(
        "--operator", "operators", multiple=True, help="Node operator did (9ten; repeatable)."
    )
    @click.pass_context
    @_run
    async def settle(
        ctx: click.Context,
        epoch: str,
        pool_text: str,
        currency: str,
        policy: str,
        operators: tuple[str, ...],
    ) -> None:
        """Divide a pool by an epoch's usage and write a signed settlement statement."""
        from dag import cid_to_str

        pool = parse_amount(pool_text)
        async with _money(ctx) as money:
            cid, lines = await money.settle(epoch, pool, currency, policy, operators)
        click.echo(cid_to_str(cid))
        width = max(len(line["payee"]) for line in lines)
        for line in lines:
            click.echo(f"{line['payee']:<{width}}  {format_amount(line['amount']):>12} {currency}")

    @main.command("statement-proof")
    @click.argument("statement")
    @click.argument("payee")
    @click.pass_context
    @_run
    async def statement_proof(ctx: click.Context, statement: str, payee: str) -> None:
        """Print PAYEE's line of STATEMENT with its Merkle proof, and whether it verifies."""
        from dag import cid_to_str, parse_cid
        from provenance.settlement import verify_line

        async with _money(ctx) as money:
            record, _ = await money.statement(statement)
            line, proof = await money.statement_proof(statement, payee)
        out = {
            "statement": cid_to_str(parse_cid(statement)),
            "root": record["root"].hex(),
            "line": line,
            "proof": proof.to_json(),
            "verified": verify_line(record, line, proof),
        }
        click.echo(json.dumps(out, indent=2))
