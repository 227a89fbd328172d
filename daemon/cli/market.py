"""CLI commands of the render market's ledger: ``artdag jobs`` and ``artdag volunteers``.

Both ask the running daemon (which owns the market) through :class:`DaemonClient` and print a
rich table, or the API's JSON with ``--json``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from daemon.nodeapi.client import DaemonClient

__all__ = ["register"]


def _short(did: str) -> str:
    return f"…{did[-8:]}" if len(did) > 8 else did


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}"


def _print_table(title: str, columns: list[str], rows: list[list[str]], right: set[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def register(main: click.Group) -> None:
    from daemon.cli.main import _config, _guarded

    @main.command()
    @click.option(
        "--role", type=click.Choice(["requester", "volunteer"]), help="Only jobs in this role."
    )
    @click.option(
        "--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="At most."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def jobs(ctx: click.Context, role: str | None, limit: int, as_json: bool) -> None:
        """List render-market jobs this node requested or volunteered for, newest first."""
        params: dict[str, Any] = {"limit": limit} | ({"role": role} if role else {})
        client = DaemonClient.for_config(_config(ctx))
        rows: list[dict[str, Any]] = client.call("GET", "/api/v1/jobs", params=params)["jobs"]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("no market jobs yet", err=True)
            return
        columns = ["job", "role", "step", "operation", "status", "replicas", "volunteers"]
        columns += ["render s", "detail"]
        _print_table(
            f"{len(rows)} jobs",
            columns,
            [
                [
                    row["job_id"][:12],
                    row["role"],
                    row["step"],
                    row["operation"],
                    row["status"],
                    str(row["replicas"]),
                    " ".join(_short(d) for d in row["volunteers"]) or "-",
                    _seconds(row["render_ms"]),
                    row["detail"],
                ]
                for row in rows
            ],
            right={"replicas", "render s"},
        )

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def volunteers(ctx: click.Context, as_json: bool) -> None:
        """List the volunteers this node has dealt with: credit and reputation, best first."""
        client = DaemonClient.for_config(_config(ctx))
        body = client.call("GET", "/api/v1/volunteers")
        rows: list[dict[str, Any]] = body["volunteers"]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("no volunteers yet", err=True)
            return

        def flag(row: dict[str, Any]) -> str:
            if row["avoided"]:
                return "avoided"
            return "trusted" if row.get("trusted") else "-"

        _print_table(
            f"{len(rows)} volunteers (trusted after {body.get('trust_after', '?')} accepted)",
            ["volunteer", "accepted", "rejected", "expired", "rendered s", "reputation", "flag"],
            [
                [
                    _short(row["did"]),
                    str(row["accepted"]),
                    str(row["rejected"]),
                    str(row["expired"]),
                    _seconds(row["rendered_ms"]),
                    f"{row['reputation']:.2f}",
                    flag(row),
                ]
                for row in rows
            ],
            right={"accepted", "rejected", "expired", "rendered s", "reputation"},
        )
        rendered = sum(row["rendered_ms"] for row in rows)
        accepted = sum(row["accepted"] for row in rows)
        rejected = sum(row["rejected"] for row in rows)
        click.echo(
            f"total: {_seconds(rendered)} s rendered, {accepted} accepted, {rejected} rejected"
        )
