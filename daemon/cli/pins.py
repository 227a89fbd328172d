"""CLI of pins and garbage collection: ``artdag pin add|rm|ls|policy`` and ``artdag gc``.

Thin: parse, call :mod:`daemon.nodeapi.pins`, print. With the daemon running every command
goes through its API (so a collection there knows what the gateway is serving at that moment);
without it, through the node opened in-process.
"""

from __future__ import annotations

import json
from typing import Any

import click

from daemon.cli.common import config_of, print_table, run
from daemon.core.pins.service import PinView, RoundReport
from daemon.nodeapi import connect
from daemon.nodeapi.pins import PolicyInfo, Unpinned
from dag import PIN_REASONS
from dag.gc import GcReport

__all__ = ["gc", "pin_group"]


def mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


@click.group("pin")
def pin_group() -> None:
    """Pins and why they exist: local, explicit, followed, popular, remote."""


@pin_group.command("add")
@click.argument("cid")
@click.option("--direct", is_flag=True, help="Pin this block only, not the DAG below it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def pin_add(ctx: click.Context, cid: str, direct: bool, as_json: bool) -> None:
    """Pin CID for the operator (fetched from the network first if the daemon runs and the
    store lacks it). Policies never remove such a pin."""
    config = config_of(ctx)

    @run
    async def go() -> PinView:
        async with connect(config) as api:
            return await api.pins.add(cid, recursive=not direct)

    view = go()
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2))
    else:
        click.echo(f"pinned {view.cid} ({', '.join(view.reasons)}): {view.what}")


@pin_group.command("rm")
@click.argument("cid")
@click.option(
    "--all", "every", is_flag=True, help="Drop policy reasons too (they may pin it again)."
)
@click.pass_context
def pin_rm(ctx: click.Context, cid: str, every: bool) -> None:
    """Unpin CID: drop its local and explicit reasons (with --all, every reason). The
    blocks stay until the next garbage collection."""
    config = config_of(ctx)

    @run
    async def go() -> Unpinned:
        async with connect(config) as api:
            return await api.pins.remove(cid, every_reason=every)

    click.echo(f"unpinned {cid} ({', '.join(go().removed)})")


@pin_group.command("ls")
@click.option("--reason", type=click.Choice(PIN_REASONS), help="Only pins with this reason.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def pin_ls(ctx: click.Context, reason: str | None, as_json: bool) -> None:
    """List pins: CID, reasons, recursive or direct, and what each is."""
    config = config_of(ctx)

    @run
    async def go() -> list[PinView]:
        async with connect(config) as api:
            return await api.pins.list(reason)

    views = go()
    if as_json:
        click.echo(json.dumps([v.to_json() for v in views], indent=2))
        return
    print_table(
        f"{len(views)} pins",
        ["cid", "reasons", "kind", "what", "note"],
        [
            [v.cid, ",".join(v.reasons), "recursive" if v.recursive else "direct", v.what, v.note]
            for v in views
        ],
        set(),
    )


@pin_group.command("policy")
@click.option("--run", "run_now", is_flag=True, help="Apply the policies now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def pin_policy(ctx: click.Context, run_now: bool, as_json: bool) -> None:
    """The pinning policies: followed creators, popular works, quota, last round."""
    config = config_of(ctx)

    @run
    async def go() -> PolicyInfo:
        async with connect(config) as api:
            if run_now:
                await api.pins.policy_round()
            return await api.pins.policy()

    info = go()
    if as_json:
        click.echo(json.dumps(info.to_json(), indent=2))
        return
    print_policy(info)


def print_policy(info: PolicyInfo) -> None:
    quota, used = info.quota_bytes, info.usage["bytes"]
    click.echo(f"followed creators: {len(info.follow_creators)}")
    click.echo(f"popular works pinned: up to {info.popular_count}")
    click.echo(
        f"store: {mib(used)}"
        + (f" of a {mib(quota)} quota ({100 * used / quota:.0f}%)" if quota else "")
    )
    if info.last_round:
        last = RoundReport.from_json(info.last_round)
        click.echo(
            f"last round: {len(last.pinned)} pinned, {len(last.unpinned)} unpinned, "
            f"{len(last.dropped_for_quota)} given up for the quota, "
            f"{len(last.failed)} failed"
        )
    if info.popular:
        popular: list[dict[str, Any]] = info.popular
        print_table(
            "most popular",
            ["cid", "score", "events"],
            [[p["cid"], f"{p['score']:.2f}", str(p["events"])] for p in popular],
            {"score", "events"},
        )


@click.command("gc")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Keep unreachable blocks younger than this many seconds "
    "(default: [pinning] gc_grace_seconds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def gc(ctx: click.Context, grace: float | None, as_json: bool) -> None:
    """Remove the blocks no pin (nor a known creator repo) reaches; print what was freed."""
    config = config_of(ctx)

    @run
    async def go() -> GcReport:
        async with connect(config) as api:
            return await api.pins.collect(grace)

    report = go()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    click.echo(
        f"removed {report.removed:,} of {report.examined:,} blocks, "
        f"freed {mib(report.freed_bytes)} in {report.seconds:.2f} s"
        + (
            f" ({report.kept_young:,} unreachable blocks younger than the grace kept)"
            if report.kept_young
            else ""
        )
    )
