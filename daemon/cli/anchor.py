"""CLI commands of anchoring: ``artdag anchor``, ``artdag anchors``, ``artdag verify-anchor``.

Thin: parse, call :mod:`daemon.nodeapi.ownership`, print. Calendars and the block-header source
come from ``--calendar`` / ``--headers``, else the ``[anchor]`` section of the config.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from daemon.cli.common import config_of, fail, run
from daemon.nodeapi import connect
from daemon.nodeapi.ownership import AnchorReport, AnchorRow

__all__ = ["anchor", "anchors", "verify_anchor"]

calendar_option = click.option(
    "--calendar",
    "calendars",
    multiple=True,
    metavar="URL",
    help="OpenTimestamps calendar (repeatable; default: the config's, else the public ones).",
)
headers_option = click.option(
    "--headers",
    metavar="URL",
    help="Esplora-style API for Bitcoin block headers (default: the config's, else "
    "https://blockstream.info/api).",
)


def _sources(fn: Callable[..., Any]) -> Callable[..., Any]:
    return calendar_option(headers_option(click.pass_context(fn)))


def _when(seconds: int | float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_report(report: AnchorReport) -> None:
    """The path from the leaf to the root, from the root to the attestation, and the verdict."""
    echo = click.echo
    path = report.leaf_path
    if path is not None:
        echo(f"leaf   {path['leaf']}  (#{path['index']} of {path['size']})")
        echo(f"       leaf hash {path['leaf_hash']}")
        for step in path["steps"]:
            echo(f"       + {step['side']:<5} {step['sibling']} -> {step['result']}")
    echo(f"root   {report.root}  (anchor record {report.record})")
    for ots_step in report.ots_steps:
        arg = "" if ots_step["argument"] is None else f" {ots_step['argument']}"
        echo(f"       {ots_step['op']}{arg} -> {ots_step['result']}")
    att = report.attestation
    if att is not None and att["kind"] == "bitcoin":
        merkle_root = bytes.fromhex(att["msg"])[::-1].hex()
        echo(f"attest Bitcoin block {att['height']}, merkle root {merkle_root}")
        if report.block_hash:
            echo(f"block  {report.block_hash}  time {_when(report.block_time)}")
    elif att is not None:
        echo(f"attest pending at calendar {att['calendar']}")
    echo(f"{'OK' if report.ok else 'FAILED'}: {report.reason}")


@click.command("anchor")
@click.argument("cids", nargs=-1)
@_sources
def anchor(
    ctx: click.Context, calendars: tuple[str, ...], headers: str | None, cids: tuple[str, ...]
) -> None:
    """Timestamp records (default: every claim and statement not yet anchored) as one
    Merkle batch with OpenTimestamps; prints the anchor record CID and the root."""
    config = config_of(ctx)

    @run
    async def go() -> AnchorRow | None:
        async with connect(config) as api:
            return await api.anchors.anchor(cids, calendars, headers)

    row = go()
    if row is None:
        click.echo("nothing to anchor", err=True)
        return
    click.echo(f"anchored {len(row.leaves)} records, root {row.root}", err=True)
    click.echo(f"  proof {row.ots_path} ({row.status} at {', '.join(row.calendars)})", err=True)
    click.echo(row.record)


@click.command("anchors")
@click.option("--upgrade", is_flag=True, help="First ask the calendars about pending ones.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@_sources
def anchors(
    ctx: click.Context,
    calendars: tuple[str, ...],
    headers: str | None,
    upgrade: bool,
    as_json: bool,
) -> None:
    """List anchors: record, status, leaves, Bitcoin block and time."""
    config = config_of(ctx)

    @run
    async def go() -> list[AnchorRow]:
        async with connect(config) as api:
            return await api.anchors.anchors(upgrade, calendars, headers)

    for row in go():
        if as_json:
            click.echo(json.dumps(row.to_json()))
            continue
        height = "-" if row.block_height is None else str(row.block_height)
        click.echo(
            f"{row.record}  {row.status:<8}  {len(row.leaves):>5} records  "
            f"block {height:<8} {_when(row.block_time)}  {row.created}"
        )


@click.command("verify-anchor")
@click.argument("cid")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@_sources
def verify_anchor(
    ctx: click.Context, calendars: tuple[str, ...], headers: str | None, cid: str, as_json: bool
) -> None:
    """Show the path from a record to its batch root and from the root to the Bitcoin
    attestation, and check that attestation against the block header."""
    config = config_of(ctx)

    @run
    async def go() -> AnchorReport:
        async with connect(config) as api:
            return await api.anchors.verify(cid, calendars, headers)

    report = go()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_report(report)
    if not report.ok:
        fail(report.reason)
