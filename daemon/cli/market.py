"""CLI commands of the render market's ledger: ``artdag jobs`` and ``artdag volunteers``.

Both read the ledger through the node API's market (:mod:`daemon.nodeapi.market`: the running
daemon if there is one, else the market's tables opened here) and print a rich table, or the
API's JSON with ``--json``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from daemon.cli.common import config_of, fail, print_table, run
from daemon.core.market.context import MarketNotRunning
from daemon.core.market.store import VolunteerRow
from daemon.nodeapi import connect
from daemon.nodeapi.market import NoSuchJob, Volunteers

__all__ = ["jobs", "volunteers"]


def _short(did: str) -> str:
    return f"…{did[-8:]}" if len(did) > 8 else did


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}"


def _print_json(rows: list[dict[str, Any]]) -> None:
    """The rows as the JSON API writes them (keys sorted, as Quart's ``jsonify`` does)."""
    click.echo(json.dumps(rows, indent=2, sort_keys=True))


@click.command()
@click.option(
    "--role", type=click.Choice(["requester", "volunteer"]), help="Only jobs in this role."
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="At most."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def jobs(ctx: click.Context, role: str | None, limit: int, as_json: bool) -> None:
    """List render-market jobs this node requested or volunteered for, newest first."""

    @run
    async def go() -> None:
        async with connect(config_of(ctx)) as api:
            try:
                rows = await api.market.jobs(role, limit)
            except (MarketNotRunning, NoSuchJob) as exc:
                fail(str(exc))
        if as_json:
            _print_json([row.to_json() for row in rows])
            return
        if not rows:
            click.echo("no market jobs yet", err=True)
            return
        columns = ["job", "role", "step", "operation", "status", "replicas", "volunteers"]
        columns += ["render s", "detail"]
        print_table(
            f"{len(rows)} jobs",
            columns,
            [
                [
                    row.job_id[:12],
                    row.role,
                    row.step,
                    row.operation,
                    row.status,
                    str(row.replicas),
                    " ".join(_short(d) for d in row.volunteers) or "-",
                    _seconds(row.render_ms),
                    row.detail,
                ]
                for row in rows
            ],
            right={"replicas", "render s"},
        )

    go()


def _flag(row: VolunteerRow, trust_after: int) -> str:
    if row.avoided:
        return "avoided"
    return "trusted" if row.trusted(trust_after) else "-"


def _print_volunteers(found: Volunteers) -> None:
    rows, trust_after = found.rows, found.trust_after
    print_table(
        f"{len(rows)} volunteers (trusted after {trust_after} accepted)",
        ["volunteer", "accepted", "rejected", "expired", "rendered s", "reputation", "flag"],
        [
            [
                _short(row.did),
                str(row.accepted),
                str(row.rejected),
                str(row.expired),
                _seconds(row.rendered_ms),
                f"{row.reputation:.2f}",
                _flag(row, trust_after),
            ]
            for row in rows
        ],
        right={"accepted", "rejected", "expired", "rendered s", "reputation"},
    )
    rendered = sum(row.rendered_ms for row in rows)
    accepted = sum(row.accepted for row in rows)
    rejected = sum(row.rejected for row in rows)
    click.echo(f"total: {_seconds(rendered)} s rendered, {accepted} accepted, {rejected} rejected")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def volunteers(ctx: click.Context, as_json: bool) -> None:
    """List the volunteers this node has dealt with: credit and reputation, best first."""

    @run
    async def go() -> None:
        async with connect(config_of(ctx)) as api:
            try:
                found = await api.market.volunteers()
            except MarketNotRunning as exc:
                fail(str(exc))
        if as_json:
            _print_json(found.to_json()["volunteers"])
        elif not found.rows:
            click.echo("no volunteers yet", err=True)
        else:
            _print_volunteers(found)

    go()
