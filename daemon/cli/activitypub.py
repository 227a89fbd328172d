"""CLI commands of the fediverse bridge: ``publish``, ``deliveries``, ``followers``, ``block``,
``unblock``.

Thin: parse, call :mod:`daemon.nodeapi.fediverse` (the daemon when one runs, else the node
in-process: a post published then is delivered when the daemon next starts, and the daemon
re-reads domain blocks within a second), print.
"""

from __future__ import annotations

import json
import time

import click

from daemon.cli.common import config_of, print_table, run
from daemon.nodeapi import connect
from daemon.nodeapi.fediverse import Deliveries, FollowersView, Published

__all__ = ["block", "deliveries", "followers", "publish", "unblock"]


def _ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    delta = ts - time.time()
    word = "in " if delta > 0 else ""
    delta = abs(delta)
    text = (
        f"{delta:.0f}s"
        if delta < 120
        else f"{delta / 60:.0f}m"
        if delta < 7200
        else (f"{delta / 3600:.1f}h")
    )
    return f"{word}{text}" + ("" if word else " ago")


@click.command()
@click.argument("cid")
@click.option("--text", default="", help="The post's text (plain text; blank lines split).")
@click.option("--alt", default=None, help="Alt text of the media (default: its file name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def publish(ctx: click.Context, cid: str, text: str, alt: str | None, as_json: bool) -> None:
    """Post a work to the fediverse: a Note with the media, to every follower."""
    config = config_of(ctx)

    @run
    async def go() -> Published:
        async with connect(config) as api:
            return await api.fediverse.publish(cid, text, alt)

    result = go()
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    elif result.already:
        click.echo(f"already published as {result.activity_id} (nothing sent again)")
    else:
        click.echo(f"published {result.note_id}")
        click.echo(f"queued for {result.inboxes} inboxes (see: artdag deliveries)")


@click.command()
@click.option(
    "--state",
    type=click.Choice(["queued", "in-flight", "retry-wait", "delivered", "dead"]),
    help="Only deliveries in this state.",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=30, show_default=True, help="At most."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deliveries(ctx: click.Context, state: str | None, limit: int, as_json: bool) -> None:
    """Show the fediverse delivery queue: counts by state, then the latest rows."""
    config = config_of(ctx)

    @run
    async def go() -> Deliveries:
        async with connect(config) as api:
            return await api.fediverse.deliveries(state, limit)

    found = go()
    stats, rows = found.stats, found.deliveries
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
        return
    counts = {k: v for k, v in stats.items() if k != "next_due" and v}
    click.echo(
        "deliveries: "
        + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none")
        + (f"; next retry {_ago(stats['next_due'])}" if stats.get("next_due") else "")
    )
    if not rows:
        return
    print_table(
        f"latest {len(rows)}",
        ["state", "inbox", "activity", "attempts", "next", "last"],
        [
            [
                row["state"],
                row["inbox"],
                row["activity_id"].rsplit("/", 2)[-2][:16],
                str(row["attempts"]),
                _ago(row["next_at"]) if row["state"] in ("queued", "retry-wait") else "-",
                row["last_error"] or (str(row["last_status"] or "") or "-"),
            ]
            for row in rows
        ],
        right={"attempts"},
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def followers(ctx: click.Context, as_json: bool) -> None:
    """List the fediverse accounts that follow this node's creator."""
    config = config_of(ctx)

    @run
    async def go() -> FollowersView:
        async with connect(config) as api:
            return await api.fediverse.followers(limit=10_000)

    view = go()
    data = [
        {"actor": f["actor"], "inbox": f["shared_inbox"] or f["inbox"], "since": f["since"]}
        for f in view.followers
    ]
    if as_json:
        click.echo(
            json.dumps({"followers": data, "blocked_domains": view.blocked_domains}, indent=2)
        )
        return
    click.echo(f"{view.handle}: {len(data)} followers")
    for row in data:
        click.echo(f"  {row['actor']}  (since {_ago(row['since'])})")
    if view.blocked_domains or view.config_blocked_domains:
        listed = [*view.blocked_domains, *view.config_blocked_domains]
        click.echo("blocked domains: " + ", ".join(listed))


@click.command()
@click.argument("domain")
@click.pass_context
def block(ctx: click.Context, domain: str) -> None:
    """Block a fediverse domain and its subdomains: refuse its activities, send it nothing."""
    config = config_of(ctx)

    @run
    async def go() -> str:
        async with connect(config) as api:
            return await api.fediverse.block(domain)

    click.echo(f"blocked {go()} (and its subdomains)")


@click.command()
@click.argument("domain")
@click.pass_context
def unblock(ctx: click.Context, domain: str) -> None:
    """Lift a domain block made with ``artdag block``."""
    config = config_of(ctx)

    @run
    async def go() -> bool:
        async with connect(config) as api:
            return await api.fediverse.unblock(domain)

    click.echo(f"unblocked {domain}" if go() else f"{domain} was not blocked")
