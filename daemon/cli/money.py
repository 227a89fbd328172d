"""CLI commands for money: ``artdag usage``, ``artdag settle``, ``artdag statement-proof``.

Thin: parse, call :mod:`daemon.nodeapi.money`, print. Amounts on the command line are decimal
major units (``100.00``) with at most two decimals; statements hold integer minor units (cents).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import click

from daemon.cli.common import config_of, run
from daemon.nodeapi import connect
from daemon.nodeapi.money import Settlement, StatementProof

__all__ = ["format_amount", "parse_amount", "settle", "statement_proof", "usage"]

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


@click.command("usage")
@click.argument("subject")
@click.option("--kind", required=True, type=click.Choice(["view", "listen", "like", "boost"]))
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 1_000_000_000))
@click.option("--epoch", help="YYYY-MM or YYYY-MM-DD (default: this month, UTC).")
@click.option("--listener", help="Who listened (a did or actor URI), for the 9ten policy.")
@click.option("--source", help="Where it was counted (gateway, fediverse inbox).")
@click.pass_context
def usage(
    ctx: click.Context,
    subject: str,
    kind: str,
    count: int,
    epoch: str | None,
    listener: str | None,
    source: str | None,
) -> None:
    """Record a signed usage event (views, listens, likes, boosts) of SUBJECT."""
    config = config_of(ctx)

    @run
    async def go() -> str:
        async with connect(config) as api:
            return await api.money.usage(subject, kind, count, epoch, listener, source)

    click.echo(go())


@click.command("settle")
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
def settle(
    ctx: click.Context,
    epoch: str,
    pool_text: str,
    currency: str,
    policy: str,
    operators: tuple[str, ...],
) -> None:
    """Divide a pool by an epoch's usage and write a signed settlement statement."""
    config = config_of(ctx)

    @run
    async def go() -> Settlement:
        pool = parse_amount(pool_text)
        async with connect(config) as api:
            return await api.money.settle(epoch, pool, currency, policy, operators)

    settlement = go()
    click.echo(settlement.statement)
    width = max(len(line["payee"]) for line in settlement.lines)
    for line in settlement.lines:
        click.echo(f"{line['payee']:<{width}}  {format_amount(line['amount']):>12} {currency}")


@click.command("statement-proof")
@click.argument("statement")
@click.argument("payee")
@click.pass_context
def statement_proof(ctx: click.Context, statement: str, payee: str) -> None:
    """Print PAYEE's line of STATEMENT with its Merkle proof, and whether it verifies."""
    config = config_of(ctx)

    @run
    async def go() -> StatementProof:
        async with connect(config) as api:
            return await api.money.statement_proof(statement, payee)

    click.echo(json.dumps(go().to_json(), indent=2))
