"""CLI commands of the fediverse bridge: ``publish``, ``deliveries``, ``followers``, ``block``,
``unblock``.

``publish`` asks the running daemon (it owns the delivery worker, so the post goes out at
once). The others read or write the bridge's SQLite files directly, so they work whether or not
the daemon runs; the daemon re-reads domain blocks within a second.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from daemon.cli.market import _print_table
from daemon.nodeapi.client import DaemonClient

__all__ = ["register"]


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


def register(main: click.Group) -> None:
    from daemon.cli.main import _config, _guarded

    @main.command()
    @click.argument("cid")
    @click.option("--text", default="", help="The post's text (plain text; blank lines split).")
    @click.option("--alt", default=None, help="Alt text of the media (default: its file name).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def publish(ctx: click.Context, cid: str, text: str, alt: str | None, as_json: bool) -> None:
        """Post a work to the fediverse: a Note with the media, to every follower."""
        client = DaemonClient.for_config(_config(ctx))
        body = {"cid": cid, "text": text} | ({"alt": alt} if alt is not None else {})
        result: dict[str, Any] = client.call("POST", "/api/v1/activitypub/publish", json=body)
        if as_json:
            click.echo(json.dumps(result, indent=2))
        elif result["already_published"]:
            click.echo(f"already published as {result['activity']} (nothing sent again)")
        else:
            click.echo(f"published {result['note']}")
            click.echo(f"queued for {result['queued']} inboxes (see: artdag deliveries)")

    @main.command()
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
    @_guarded
    def deliveries(ctx: click.Context, state: str | None, limit: int, as_json: bool) -> None:
        """Show the fediverse delivery queue: counts by state, then the latest rows."""
        from activitypub_bridge import DeliveryQueue

        config = _config(ctx)
        if not config.deliveries_path.exists():
            stats: dict[str, Any] = {}
            rows: list[dict[str, Any]] = []
        else:
            with DeliveryQueue.open(config.deliveries_path, recover=False) as queue:
                stats = queue.stats().to_json()
                rows = [row.to_json() for row in queue.rows(state, limit)]
        if as_json:
            click.echo(json.dumps({"stats": stats, "deliveries": rows}, indent=2))
            return
        counts = {k: v for k, v in stats.items() if k != "next_due" and v}
        click.echo(
            "deliveries: "
            + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none")
            + (f"; next retry {_ago(stats['next_due'])}" if stats.get("next_due") else "")
        )
        if not rows:
            return
        _print_table(
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

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def followers(ctx: click.Context, as_json: bool) -> None:
        """List the fediverse accounts that follow this node's creator."""
        from activitypub_bridge import FollowerStore

        config = _config(ctx)
        with FollowerStore(config.activitypub_db_path) as store:
            rows = store.followers(config.node.user, limit=10_000)
            blocked = store.blocked_domains()
        data: list[dict[str, Any]] = [
            {"actor": r.actor, "inbox": r.shared_inbox or r.inbox, "since": r.followed_at}
            for r in rows
        ]
        if as_json:
            click.echo(json.dumps({"followers": data, "blocked_domains": blocked}, indent=2))
            return
        site = config.bridge_site()
        click.echo(f"@{config.node.user}@{site.domain}: {len(rows)} followers")
        for row in data:
            click.echo(f"  {row['actor']}  (since {_ago(row['since'])})")
        if blocked or config.activitypub.blocked_domains:
            listed = [*blocked, *config.activitypub.blocked_domains]
            click.echo("blocked domains: " + ", ".join(listed))

    @main.command()
    @click.argument("domain")
    @click.pass_context
    @_guarded
    def block(ctx: click.Context, domain: str) -> None:
        """Block a fediverse domain and its subdomains: refuse its activities, send it nothing."""
        from activitypub_bridge import FollowerStore

        with FollowerStore(_config(ctx).activitypub_db_path) as store:
            name = store.block_domain(domain)
        click.echo(f"blocked {name} (and its subdomains)")

    @main.command()
    @click.argument("domain")
    @click.pass_context
    @_guarded
    def unblock(ctx: click.Context, domain: str) -> None:
        """Lift a domain block made with ``artdag block``."""
        from activitypub_bridge import FollowerStore

        with FollowerStore(_config(ctx).activitypub_db_path) as store:
            lifted = store.unblock(domain)
        click.echo(f"unblocked {domain}" if lifted else f"{domain} was not blocked")
