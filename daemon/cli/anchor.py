"""CLI commands of anchoring: ``artdag anchor``, ``artdag anchors``, ``artdag verify-anchor``.

Thin: parse, call :class:`daemon.core.ownership.anchors.AnchorService` on the node opened
in-process,
print. Calendars and the block-header source come from ``--calendar`` / ``--headers``, else the
config (``anchor_calendars``, ``anchor_header_source``), else the public defaults.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from daemon.core.node import Node
    from daemon.core.ownership.anchors import AnchorService, VerifyReport

__all__ = ["register", "unanchored_claims_and_statements"]


@asynccontextmanager
async def _service(
    ctx: click.Context, calendars: tuple[str, ...], headers: str | None
) -> AsyncIterator[tuple[Node, AnchorService]]:
    from daemon.core.node import open_node
    from daemon.core.ownership.anchors import (
        DEFAULT_CALENDARS,
        DEFAULT_HEADER_SOURCE,
        AnchorService,
    )

    config = ctx.obj["config"]
    cals = list(calendars) or list(getattr(config, "anchor_calendars", None) or DEFAULT_CALENDARS)
    source = headers or getattr(config, "anchor_header_source", None) or DEFAULT_HEADER_SOURCE
    async with open_node(config) as node:
        service = AnchorService(
            node.store, node.identity, config.index_path, config.home, cals, source
        )
        try:
            yield node, service
        finally:
            await service.aclose()


async def unanchored_claims_and_statements(node: Node, service: AnchorService) -> list[str]:
    """Every indexed claim and statement that no anchor holds yet (oldest first)."""
    import trio

    rows: list[dict[str, Any]] = []
    for kind in ("claim", "statement"):
        rows += await trio.to_thread.run_sync(node.index.records_of, kind)
    return [r["cid"] for r in rows if service.anchor_of(r["cid"]) is None]


def _when(seconds: int | float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_report(report: VerifyReport) -> None:
    echo = click.echo
    path = report.leaf_path
    if path is not None:
        echo(f"leaf   {path.leaf}  (#{path.proof.index} of {path.proof.size})")
        echo(f"       leaf hash {path.leaf_hash.hex()}")
        for step in path.steps:
            echo(f"       + {step.sibling_side:<5} {step.sibling.hex()} -> {step.result.hex()}")
    echo(f"root   {report.root}  (anchor record {report.record})")
    for ots_step in report.ots_steps:
        arg = "" if ots_step.argument is None else f" {ots_step.argument.hex()}"
        echo(f"       {ots_step.op}{arg} -> {ots_step.result.hex()}")
    att = report.attestation
    if att is not None and att.kind == "bitcoin":
        echo(f"attest Bitcoin block {att.height}, merkle root {att.msg[::-1].hex()}")
        if report.block_hash:
            echo(f"block  {report.block_hash}  time {_when(report.block_time)}")
    elif att is not None:
        echo(f"attest pending at calendar {att.calendar}")
    echo(f"{'OK' if report.ok else 'FAILED'}: {report.reason}")


def register(main: click.Group) -> None:
    """Add the anchoring commands to ``main``."""
    from daemon.cli.main import _run, fail

    calendar_opt = click.option(
        "--calendar",
        "calendars",
        multiple=True,
        metavar="URL",
        help="OpenTimestamps calendar (repeatable; default: config, else the public ones).",
    )
    headers_opt = click.option(
        "--headers",
        metavar="URL",
        help="Esplora-style API for Bitcoin block headers (default https://blockstream.info/api).",
    )

    def command(fn: Callable[..., Any]) -> Callable[..., Any]:
        return calendar_opt(headers_opt(click.pass_context(fn)))

    @main.command("anchor")
    @click.argument("cids", nargs=-1)
    @command
    def anchor(
        ctx: click.Context, calendars: tuple[str, ...], headers: str | None, cids: tuple[str, ...]
    ) -> None:
        """Timestamp records (default: every claim and statement not yet anchored) as one
        Merkle batch with OpenTimestamps; prints the anchor record CID and the root."""

        from dag import parse_cid

        @_run
        async def go() -> None:
            async with _service(ctx, calendars, headers) as (node, service):
                todo = list(cids) or await unanchored_claims_and_statements(node, service)
                if not todo:
                    click.echo("nothing to anchor", err=True)
                    return
                row = await service.anchor(todo)
                await node.announce(parse_cid(row.record))  # followers learn of the anchor
            click.echo(f"anchored {len(row.leaves)} records, root {row.root}", err=True)
            click.echo(
                f"  proof {row.ots_path} ({row.status} at {', '.join(row.calendars)})", err=True
            )
            click.echo(row.record)

        go()

    @main.command("anchors")
    @click.option("--upgrade", is_flag=True, help="First ask the calendars about pending ones.")
    @click.option("--json", "as_json", is_flag=True, help="JSON lines.")
    @command
    def anchors(
        ctx: click.Context,
        calendars: tuple[str, ...],
        headers: str | None,
        upgrade: bool,
        as_json: bool,
    ) -> None:
        """List anchors: record, status, leaves, Bitcoin block and time."""

        @_run
        async def go() -> None:
            async with _service(ctx, calendars, headers) as (_node, service):
                if upgrade:
                    await service.upgrade_all()
                rows = service.anchors()
            for row in rows:
                if as_json:
                    click.echo(json.dumps(row.to_json()))
                    continue
                height = "-" if row.block_height is None else str(row.block_height)
                click.echo(
                    f"{row.record}  {row.status:<8}  {len(row.leaves):>5} records  "
                    f"block {height:<8} {_when(row.block_time)}  {row.created}"
                )

        go()

    @main.command("verify-anchor")
    @click.argument("cid")
    @click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
    @command
    def verify_anchor(
        ctx: click.Context, calendars: tuple[str, ...], headers: str | None, cid: str, as_json: bool
    ) -> None:
        """Show the path from a record to its batch root and from the root to the Bitcoin
        attestation, and check that attestation against the block header."""

        @_run
        async def go() -> VerifyReport:
            async with _service(ctx, calendars, headers) as (_node, service):
                return await service.verify(cid)

        report = go()
        if as_json:
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            _print_report(report)
        if not report.ok:
            fail(report.reason)
