"""CLI of pins and garbage collection: ``artdag pin add|rm|ls|policy`` and ``artdag gc``.

With the daemon running, every command goes through its API, so a collection there knows
what the gateway is serving at that moment; without it, they open the node directly.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import trio

from daemon.cli.market import _print_table
from daemon.config import Config
from daemon.nodeapi.client import DaemonClient, DaemonNotRunning
from dag import PIN_REASONS

__all__ = ["register"]

T = TypeVar("T")


def _daemon(config: Config) -> DaemonClient | None:
    try:
        return DaemonClient.for_config(config)
    except DaemonNotRunning:
        return None


def _local(config: Config, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(pin_service)`` on the node opened directly (no daemon running)."""
    from daemon.core.node import open_node
    from daemon.core.pins.service import PinService

    async def go() -> T:
        async with open_node(config) as node:
            pins = PinService(node)
            try:
                return await fn(pins)
            finally:
                pins.close()

    return trio.run(go)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def register(main: click.Group) -> None:
    from daemon.cli.main import _config, _guarded

    @main.group("pin")
    def pin_group() -> None:
        """Pins and why they exist: local, explicit, followed, popular, remote."""

    @pin_group.command("add")
    @click.argument("cid")
    @click.option("--direct", is_flag=True, help="Pin this block only, not the DAG below it.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def pin_add(ctx: click.Context, cid: str, direct: bool, as_json: bool) -> None:
        """Pin CID for the operator (fetched from the network first if the daemon runs and the
        store lacks it). Policies never remove such a pin."""
        config = _config(ctx)
        client = _daemon(config)
        if client is not None:
            view = client.call("POST", "/api/v1/pins", json={"cid": cid, "recursive": not direct})
        else:
            view = _local(config, lambda pins: _json(pins.add(cid, recursive=not direct)))
        if as_json:
            click.echo(json.dumps(view, indent=2))
        else:
            click.echo(f"pinned {view['cid']} ({', '.join(view['reasons'])}): {view['what']}")

    @pin_group.command("rm")
    @click.argument("cid")
    @click.option(
        "--all", "every", is_flag=True, help="Drop policy reasons too (they may pin it again)."
    )
    @click.pass_context
    @_guarded
    def pin_rm(ctx: click.Context, cid: str, every: bool) -> None:
        """Unpin CID: drop its local and explicit reasons (with --all, every reason). The
        blocks stay until the next garbage collection."""
        config = _config(ctx)
        client = _daemon(config)
        if client is not None:
            path = f"/api/v1/pins/{cid}" + ("?all=1" if every else "")
            removed = client.call("DELETE", path)["removed"]
        else:
            removed = list(_local(config, lambda pins: pins.remove(cid, every_reason=every)))
        click.echo(f"unpinned {cid} ({', '.join(removed)})")

    @pin_group.command("ls")
    @click.option("--reason", type=click.Choice(PIN_REASONS), help="Only pins with this reason.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def pin_ls(ctx: click.Context, reason: str | None, as_json: bool) -> None:
        """List pins: CID, reasons, recursive or direct, and what each is."""
        config = _config(ctx)
        client = _daemon(config)
        if client is not None:
            query = f"?reason={reason}" if reason else ""
            rows = client.call("GET", f"/api/v1/pins{query}")["pins"]
        else:

            async def listed(pins: Any) -> list[dict[str, Any]]:
                return [v.to_json() for v in await pins.views(reason)]

            rows = _local(config, listed)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        _print_table(
            f"{len(rows)} pins",
            ["cid", "reasons", "kind", "what", "note"],
            [
                [
                    r["cid"],
                    ",".join(r["reasons"]),
                    "recursive" if r["recursive"] else "direct",
                    r["what"],
                    r["note"],
                ]
                for r in rows
            ],
            set(),
        )

    @pin_group.command("policy")
    @click.option("--run", "run_now", is_flag=True, help="Apply the policies now.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def pin_policy(ctx: click.Context, run_now: bool, as_json: bool) -> None:
        """The pinning policies: followed creators, popular works, quota, last round."""
        client = DaemonClient.for_config(_config(ctx))
        if run_now:
            client.call("POST", "/api/v1/pins/policy")
        info = client.call("GET", "/api/v1/pins/policy")
        if as_json:
            click.echo(json.dumps(info, indent=2))
            return
        quota = info["quota_bytes"]
        used = info["usage"]["bytes"]
        click.echo(f"followed creators: {len(info['follow_creators'])}")
        click.echo(f"popular works pinned: up to {info['popular_count']}")
        click.echo(
            f"store: {_mib(used)}"
            + (f" of a {_mib(quota)} quota ({100 * used / quota:.0f}%)" if quota else "")
        )
        last = info["last_round"]
        if last:
            click.echo(
                f"last round: {len(last['pinned'])} pinned, {len(last['unpinned'])} unpinned, "
                f"{len(last['dropped_for_quota'])} given up for the quota, "
                f"{len(last['failed'])} failed"
            )
        if info["popular"]:
            _print_table(
                "most popular",
                ["cid", "score", "events"],
                [[p["cid"], f"{p['score']:.2f}", str(p["events"])] for p in info["popular"]],
                {"score", "events"},
            )

    @main.command("gc")
    @click.option(
        "--grace",
        type=click.FloatRange(min=0),
        default=None,
        help="Keep unreachable blocks younger than this many seconds "
        "(default: [pinning] gc_grace_seconds).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def gc(ctx: click.Context, grace: float | None, as_json: bool) -> None:
        """Remove the blocks no pin (nor a known creator repo) reaches; print what was freed."""
        config = _config(ctx)
        client = _daemon(config)
        if client is not None:
            report = client.call("POST", "/api/v1/gc", json={"grace_seconds": grace})
        else:
            report = _local(config, lambda pins: _json(pins.collect(grace)))
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        click.echo(
            f"removed {report['removed']:,} of {report['examined']:,} blocks, "
            f"freed {_mib(report['freed_bytes'])} in {report['seconds']:.2f} s"
            + (
                f" ({report['kept_young']:,} unreachable blocks younger than the grace kept)"
                if report["kept_young"]
                else ""
            )
        )


async def _json(awaitable: Awaitable[Any]) -> dict[str, Any]:
    result = await awaitable
    out: dict[str, Any] = result.to_json()
    return out
