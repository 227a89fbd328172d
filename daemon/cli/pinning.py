"""CLI of the Pinning Service API: ``artdag pinning token-add|token-ls|token-rm|ls``.

Thin: parse, call :mod:`daemon.nodeapi.pinning`, print. They need no running daemon (then
they work on the home's token file and ``pinning.db`` in-process); a running daemon sees token
changes at once.
"""

from __future__ import annotations

import json

import click

from daemon.cli.common import config_of, fail, run
from daemon.core.pinning_api.requests import STATUSES
from daemon.nodeapi import connect
from daemon.nodeapi.client import DaemonNotRunning, read_daemon_file
from daemon.nodeapi.pinning import NewToken, RequestListing, TokenInfo

__all__ = ["pinning"]


@click.group("pinning")
def pinning() -> None:
    """The IPFS Pinning Service API (what `ipfs pin remote` speaks): tokens, requests."""


@pinning.command("token-add")
@click.argument("name")
@click.pass_context
def token_add(ctx: click.Context, name: str) -> None:
    """Make an access token NAME (one per client device); it is shown only once."""
    config = config_of(ctx)

    @run
    async def go() -> NewToken:
        async with connect(config) as api:
            return await api.pinning.token_add(name)

    made = go()
    try:
        endpoint = read_daemon_file(config)["api"]
    except DaemonNotRunning:
        endpoint = f"http://{config.http.host}:{config.http.port}"
    click.echo(made.token)
    click.echo(
        f"Keep it secret; it is not stored and cannot be shown again. In Kubo:\n"
        f"  ipfs pin remote service add artdag {endpoint} {made.token}\n"
        f"  ipfs pin remote add --service=artdag --name=NAME CID",
        err=True,
    )


@pinning.command("token-ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def token_ls(ctx: click.Context, as_json: bool) -> None:
    """List the access tokens (names and creation times; never the tokens)."""
    config = config_of(ctx)

    @run
    async def go() -> list[TokenInfo]:
        async with connect(config) as api:
            return await api.pinning.token_list()

    entries = go()
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
        return
    for e in entries:
        click.echo(f"{e.name}\t{e.created}")


@pinning.command("token-rm")
@click.argument("name")
@click.pass_context
def token_rm(ctx: click.Context, name: str) -> None:
    """Revoke the access token NAME (its pin requests stay)."""
    config = config_of(ctx)

    @run
    async def go() -> bool:
        async with connect(config) as api:
            return await api.pinning.token_remove(name)

    if not go():
        fail(f"no pinning token named {name!r}")
    click.echo(f"revoked {name}")


@pinning.command("ls")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only these statuses (repeatable; default: all).",
)
@click.option("--limit", default=1000, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (PinStatus objects).")
@click.pass_context
def ls(ctx: click.Context, statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List the pin requests of every token, newest first."""
    config = config_of(ctx)

    @run
    async def go() -> RequestListing:
        async with connect(config) as api:
            return await api.pinning.requests(statuses, limit)

    listing = go()
    if as_json:
        click.echo(json.dumps(listing.to_json(), indent=2))
        return
    for r in listing.results:
        details = r["info"].get("status_details", "")
        name = r["pin"].get("name") or ""
        click.echo(
            f"{r['requestid']}\t{r['status']}\t{r['created']}\t{r['pin']['cid']}\t{name}\t{details}"
        )
