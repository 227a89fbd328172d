"""CLI commands of the network: ``artdag id``, ``peers``, ``connect``, ``get``.

They go through the node API: the running daemon owns the libp2p host, so without one only
``artdag id`` answers (from the node key on disk); the others say they need the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import trio

from daemon.cli.common import config_of, run
from daemon.cli.progress import block_progress
from daemon.nodeapi import connect as connect_api
from dag import cid_to_str, parse_cid

__all__ = ["connect", "get", "id_", "peers"]


@click.command("id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def id_(ctx: click.Context, as_json: bool) -> None:
    """Show this node's peer id, addresses and creator did."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect_api(config) as api:
            info = await api.network.id()
        if as_json:
            click.echo(json.dumps(info.to_json(), indent=2))
            return
        click.echo(f"peer id: {info.peer_id}")
        click.echo(f"creator: {info.did}")
        if info.addrs:
            for addr in info.addrs:
                click.echo(f"address: {addr}")
        else:
            click.echo("address: (daemon not running)")

    go()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def peers(ctx: click.Context, as_json: bool) -> None:
    """List connected peers with their gossip score and counted bad messages."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect_api(config) as api:
            rows = await api.network.peers()
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("no peers connected", err=True)
        for row in rows:
            addr = row["addrs"][0] if row["addrs"] else "-"
            click.echo(
                f"{row['peer_id']}  score={row['score']:.1f}  valid={row['valid']}  "
                f"invalid={row['invalid']}  bad_blocks={row['bad_blocks']}  {addr}"
            )

    go()


@click.command()
@click.argument("multiaddr")
@click.pass_context
def connect(ctx: click.Context, multiaddr: str) -> None:
    """Dial a peer: /ip4/ADDR/tcp/PORT/p2p/PEER_ID."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect_api(config) as api:
            peer = await api.network.connect(multiaddr)
        click.echo(f"connected to {peer}")

    go()


@click.command()
@click.argument("cid")
@click.option("-o", "--output", help="Also write the file's bytes here.")
@click.option(
    "--timeout", type=float, default=60.0, help="Give up on a block after this many seconds."
)
@click.pass_context
def get(ctx: click.Context, cid: str, output: str | None, timeout: float) -> None:
    """Fetch a file or record graph from the network into the store (and pin it)."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        key = cid_to_str(parse_cid(cid))
        async with connect_api(config) as api:
            with block_progress(f"fetching {key[:16]}…") as update:
                done = await api.network.get(key, timeout, update)
            click.echo(
                f"fetched {done.fetched} blocks ({done.bytes} bytes), "
                f"{done.already_had} already here",
                err=True,
            )
            if output:
                path = Path(output)
                tmp = path.with_name(path.name + ".part")
                with tmp.open("wb") as f:
                    async for chunk in api.content.cat(key):
                        await trio.to_thread.run_sync(f.write, chunk)
                tmp.replace(path)
        click.echo(key)

    go()
