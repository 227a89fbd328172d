"""CLI commands of ownership claims: ``artdag claim`` and ``artdag disputes``.

Thin: parse, call :mod:`daemon.nodeapi.ownership` (the daemon when one runs, else the node
in-process: the daemon gossips the new repo head when it next runs), print.
"""

from __future__ import annotations

import json

import click

from daemon.cli.common import config_of, run
from daemon.nodeapi import connect
from daemon.nodeapi.ownership import ClaimResult
from provenance.claims import Dispute

__all__ = ["claim", "disputes"]


@click.command()
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
    config = config_of(ctx)

    @run
    async def go() -> ClaimResult:
        async with connect(config) as api:
            return await api.claims.claim(cid, split, license_)

    result = go()
    shares = ", ".join(f"{role} {bp / 100:g}%" for role, bp in result.split.items())
    click.echo(f"claimed {cid} ({shares})", err=True)
    for dispute in result.disputes:
        click.echo(
            f"warning: disputed ({dispute.reason}); the earliest anchored claim wins: "
            f"{dispute.winner.cid} by {dispute.winner.claimant}",
            err=True,
        )
    click.echo(result.cid)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def disputes(ctx: click.Context, as_json: bool) -> None:
    """List disputed works: two claimants on one work or on near-duplicate works."""
    config = config_of(ctx)

    @run
    async def go() -> list[Dispute]:
        async with connect(config) as api:
            return await api.claims.disputes()

    found = go()
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
