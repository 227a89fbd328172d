"""CLI commands of the network: ``artdag id``, ``peers``, ``connect``, ``get``.

They talk to the running daemon (found through ``$ARTDAG_HOME/daemon.json``), which owns the
libp2p host; ``artdag id`` also works without one, from the node key on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from daemon.cli.common import config_of, fail, guarded
from daemon.nodeapi.client import DaemonClient, DaemonNotRunning

__all__ = ["connect", "get", "id_", "peers"]


@click.command("id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def id_(ctx: click.Context, as_json: bool) -> None:
    """Show this node's peer id, addresses and creator did."""
    from p2p import load_or_create_key, peer_id_from_key

    config = config_of(ctx)
    try:
        info = DaemonClient.for_config(config).call("GET", "/api/v1/p2p/id")
    except DaemonNotRunning:
        from daemon.home import init_home
        from provenance import Identity

        init_home(config)
        key = load_or_create_key(config.node_key_path)
        info = {
            "peer_id": peer_id_from_key(key),
            "addrs": [],
            "did": Identity.load(config.identity_path).did,
        }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"peer id: {info['peer_id']}")
    click.echo(f"creator: {info['did']}")
    if info["addrs"]:
        for addr in info["addrs"]:
            click.echo(f"address: {addr}")
    else:
        click.echo("address: (daemon not running)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def peers(ctx: click.Context, as_json: bool) -> None:
    """List connected peers with their gossip score and counted bad messages."""
    rows = DaemonClient.for_config(config_of(ctx)).call("GET", "/api/v1/p2p/peers")["peers"]
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


@click.command()
@click.argument("multiaddr")
@click.pass_context
@guarded
def connect(ctx: click.Context, multiaddr: str) -> None:
    """Dial a peer: /ip4/ADDR/tcp/PORT/p2p/PEER_ID."""
    client = DaemonClient.for_config(config_of(ctx))
    result = client.call("POST", "/api/v1/p2p/connect", json={"addr": multiaddr})
    click.echo(f"connected to {result['peer_id']}")


@click.command()
@click.argument("cid")
@click.option("-o", "--output", help="Also write the file's bytes here.")
@click.option(
    "--timeout", type=float, default=60.0, help="Give up on a block after this many seconds."
)
@click.pass_context
@guarded
def get(ctx: click.Context, cid: str, output: str | None, timeout: float) -> None:
    """Fetch a file or record graph from the network into the store (and pin it)."""
    from daemon.cli.progress import block_progress
    from dag import cid_to_str, parse_cid

    cid = cid_to_str(parse_cid(cid))
    client = DaemonClient.for_config(config_of(ctx))
    done = None
    with block_progress(f"fetching {cid[:16]}…") as update:
        for event in client.stream(
            "POST", "/api/v1/p2p/get", params={"cid": cid, "timeout": timeout}
        ):
            if "error" in event:
                fail(event["error"])
            if "done" in event:
                done = event["done"]
                break
            update(event["blocks"], event["known"])
    if done is None:
        fail("the daemon ended the fetch without a result")
    click.echo(
        f"fetched {done.get('fetched', 0)} blocks ({done.get('bytes', 0)} bytes), "
        f"{done.get('already_had', 0)} already here",
        err=True,
    )
    if output:
        path = Path(output)
        tmp = path.with_name(path.name + ".part")
        with (
            client._client(timeout=None) as http,
            http.stream("GET", f"/api/v1/assets/{cid}/content") as response,
        ):
            if response.status_code != 200:
                fail(f"could not read {cid}: HTTP {response.status_code}")
            with tmp.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
        tmp.replace(path)
    click.echo(cid)
