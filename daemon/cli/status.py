"""``artdag status``: the node on one screen (rich), or its JSON with ``--json``.

Through the node API (:mod:`daemon.nodeapi.status`): with a daemon running its figures, uptime
and gateway traffic, and its URL; without one the same figures from the node's files, and
"daemon: not running".
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from daemon.cli.common import config_of, human_size, run
from daemon.nodeapi import connect

__all__ = ["status", "status_lines"]


def _size(n: int | None) -> str:
    return human_size(n, unknown="unknown")


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {s}s"


def _counts(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "n/a"
    shown = [f"{name} {n}" for name, n in counts.items() if n]
    return ", ".join(shown) if shown else "none"


def status_lines(status: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of the one-screen summary."""
    daemon = status["daemon"]
    rows = [("node", status["did"]), ("version", f"artdag {status['version']}")]
    rows.append(("home", f"{status['home']} (store: {status['store_kind']})"))
    if daemon.get("running"):
        rows.append(("daemon", f"running, pid {daemon['pid']}, up {_duration(daemon['uptime_s'])}"))
        for url in daemon.get("urls") or []:
            rows.append(("url", url))
        if daemon.get("peer_id"):
            rows.append(("peer id", daemon["peer_id"]))
    else:
        rows.append(("daemon", "not running"))
    store = status["store"]
    used = f"{store['blocks']} blocks, {_size(store['bytes'])}"
    if status.get("quota_bytes"):
        used += f" of {_size(status['quota_bytes'])} quota"
        if status.get("quota_used_percent") is not None:
            used += f" ({status['quota_used_percent']}%)"
    rows.append(("store", used))
    rows.append(("assets", str(status.get("assets", 0))))
    pins = status["pins"]
    rows.append(("pins", f"{pins['total']} ({_counts(pins['by_reason'])})"))
    rows.append(("followed", f"{status['followed_creators']} creators"))
    peers = status.get("peers")
    if peers is None:
        rows.append(("peers", "n/a (p2p off)" if daemon.get("running") else "n/a"))
    else:
        rows.append(("peers", str(peers)))
    gateway = status.get("gateway")
    if gateway is not None:
        text = f"{gateway['requests']} requests, {_size(gateway['bytes_sent'])} sent since start"
        if gateway.get("rate_limited"):
            text += f", {gateway['rate_limited']} refused (429)"
        rows.append(("gateway", text))
    rows.append(("deliveries", _counts(status.get("deliveries"))))
    jobs = status.get("jobs")
    if jobs is None:
        rows.append(("jobs", "n/a"))
    else:
        text = "; ".join(f"{role}: {_counts(by_status)}" for role, by_status in jobs.items())
        rows.append(("jobs", text or "none"))
    gc = status.get("last_gc")
    if gc:
        when = f", {_duration(time.time() - gc['at'])} ago" if gc.get("at") else ""
        freed = _size(gc.get("freed_bytes"))
        rows.append(("last gc", f"removed {gc.get('removed', 0)} blocks, freed {freed}{when}"))
    elif daemon.get("running"):
        rows.append(("last gc", "none since start"))
    return rows


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Summarise the node on one screen: daemon, store, pins, peers, gateway, jobs."""
    config = config_of(ctx)

    @run
    async def go() -> dict[str, Any]:
        async with connect(config) as api:
            return await api.status.full()

    info = go()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in status_lines(info):
        table.add_row(Text(label), Text(value))  # Text: no markup in URLs, names
    Console(highlight=False).print(table)
