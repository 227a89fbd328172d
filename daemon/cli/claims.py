"""CLI commands of ownership: ``artdag claim`` and ``artdag disputes``.

Thin: parse, call :class:`daemon.core.ownership.claims.ClaimsService` on the node opened in-process
(like ``artdag add``; a running daemon notices the new repo head and gossips it), print.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from daemon.core.ownership.claims import ClaimsService

__all__ = ["register", "claims_for"]


@asynccontextmanager
async def claims_for(ctx: click.Context) -> AsyncIterator[ClaimsService]:
    from daemon.core.node import open_node
    from daemon.core.ownership.tasks import open_claims

    async with open_node(ctx.obj["config"]) as node, open_claims(node) as claims:
        yield claims


def register(main: click.Group) -> None:
    from daemon.cli.render import _run

    @main.command()
    @click.argument("cid")
    @click.option(
        "--split",
        "split",
        multiple=True,
        metavar="ROLE=PCT",
        help="Revenue share of a role, in percent (repeat; default footage=40 effects=25 "
        "recipe=20 infrastructure=15).",
    )
    @click.option("--license", "license_", help="Licence of the work, e.g. CC-BY-4.0.")
    @click.pass_context
    def claim(ctx: click.Context, cid: str, split: tuple[str, ...], license_: str | None) -> None:
        """Sign an ownership claim on CID (with its inputs, effects, recipe and split)."""
        from dag import cid_to_str

        @_run
        async def go() -> None:
            async with claims_for(ctx) as claims:
                outcome = await claims.claim(cid, split, license_)
            shares = ", ".join(f"{r} {bp / 100:g}%" for r, bp in outcome.record["split"].items())
            click.echo(f"claimed {cid} ({shares})", err=True)
            for dispute in outcome.disputes:
                click.echo(
                    f"warning: disputed ({dispute.reason}); the earliest anchored claim wins: "
                    f"{dispute.winner.cid} by {dispute.winner.claimant}",
                    err=True,
                )
            click.echo(cid_to_str(outcome.cid))

        go()

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def disputes(ctx: click.Context, as_json: bool) -> None:
        """List disputed works: two claimants on one work or on near-duplicate works."""

        @_run
        async def go() -> None:
            async with claims_for(ctx) as claims:
                found = await claims.disputes()
            if as_json:
                click.echo(json.dumps([d.to_json() for d in found], indent=2))
                return
            if not found:
                click.echo("no disputes", err=True)
                return
            for d in found:
                click.echo(f"{d.subject}: {d.reason}; winner {d.winner.cid} ({d.winner.claimant})")
                for line in d.evidence:
                    click.echo(f"    {line}")

        go()
