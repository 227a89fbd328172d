"""Commands over the node's content: ``artdag add``, ``cat``, ``assets``, ``dag get``,
``export``, ``import``, ``verify`` and ``record verify``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click
import trio

import dag
from daemon.cli.common import config_of, fail, run
from daemon.cli.progress import byte_progress
from daemon.nodeapi import connect
from daemon.nodeapi.content import AddOptions
from dag import cid_to_str

__all__ = [
    "add",
    "assets",
    "cat",
    "dag_group",
    "export_car",
    "import_car",
    "record_group",
    "verify",
]


def _open_readable(path: str) -> Any:
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    if Path(path).is_dir():
        stream.close()
        fail(f"cannot add {path}: it is a directory")
    return stream


@click.command()
@click.argument("file")
@click.option("--name", help="Asset name (default: the file's name).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--mime", help="Media type (default: guessed from the name).")
@click.option("--chunk-size", type=int, help="UnixFS chunk size in bytes (max 1 MiB).")
@click.option("--cid-version", type=click.Choice(["0", "1"]), help="CID version of the DAG.")
@click.option("--raw-leaves/--no-raw-leaves", default=None, help="Store chunks as raw blocks.")
@click.pass_context
def add(
    ctx: click.Context,
    file: str,
    name: str | None,
    tags: tuple[str, ...],
    mime: str | None,
    chunk_size: int | None,
    cid_version: str | None,
    raw_leaves: bool | None,
) -> None:
    """Add FILE to the store and sign an asset record; print its root CID last."""
    config = config_of(ctx)
    stream = _open_readable(file)
    size = os.fstat(stream.fileno()).st_size

    options = AddOptions(
        name=name or Path(file).name,
        tags=tags,
        mime=mime,
        chunk_size=chunk_size,
        cid_version=None if cid_version is None else int(cid_version),
        raw_leaves=raw_leaves,
    )

    @run
    async def go() -> None:
        async with connect(config) as api:
            with stream, byte_progress(f"adding {Path(file).name}", size) as advance:
                added = await api.content.add(stream, options, advance)
            asset = added.asset
            click.echo(f"added {asset.name} ({asset.size} bytes, record {asset.record})", err=True)
            click.echo(asset.cid)

    go()


@click.command()
@click.argument("cid")
@click.option("--offset", type=int, default=0, help="First byte to print.")
@click.option("--length", type=int, default=None, help="How many bytes to print.")
@click.pass_context
def cat(ctx: click.Context, cid: str, offset: int, length: int | None) -> None:
    """Print the bytes of a file (or a byte range of it) to stdout."""
    config = config_of(ctx)
    out = sys.stdout.buffer

    @run
    async def go() -> None:
        async with connect(config) as api:
            async for piece in api.content.cat(cid, offset, length):
                await trio.to_thread.run_sync(out.write, piece)
        out.flush()

    go()


@click.command()
@click.option("--tag", help="Only assets with this tag.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", type=int, default=100)
@click.pass_context
def assets(ctx: click.Context, tag: str | None, as_json: bool, limit: int) -> None:
    """List the assets this node holds."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect(config) as api:
            rows = await api.assets.list(tag, limit)
        if as_json:
            click.echo(json.dumps([r.to_json() for r in rows], indent=2))
            return
        for r in rows:
            tags = f"  [{', '.join(r.tags)}]" if r.tags else ""
            click.echo(f"{r.cid}  {r.size:>12}  {r.created}  {r.name}{tags}")

    go()


@click.group("dag")
def dag_group() -> None:
    """Inspect blocks as IPLD data."""


@dag_group.command("get")
@click.argument("cid")
@click.pass_context
def dag_get(ctx: click.Context, cid: str) -> None:
    """Print a block decoded as DAG-JSON."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect(config) as api:
            click.echo(await api.content.dag_get(cid))

    go()


@click.command("export")
@click.argument("cid")
@click.option("-o", "--output", required=True, help="The .car file to write.")
@click.pass_context
def export_car(ctx: click.Context, cid: str, output: str) -> None:
    """Write the whole DAG below CID as a CARv1 file."""
    config = config_of(ctx)
    target = Path(output)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")

    @run
    async def go() -> None:
        async with connect(config) as api:
            written = 0
            try:
                with open(tmp, "wb") as f, byte_progress("exporting", None) as advance:
                    async for piece in api.content.export_car(cid):
                        await trio.to_thread.run_sync(f.write, piece)
                        written += len(piece)
                        advance(len(piece))
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        click.echo(f"wrote {written} bytes to {target}", err=True)
        click.echo(cid_to_str(dag.parse_cid(cid)))

    go()


@click.command("import")
@click.argument("file")
@click.pass_context
def import_car(ctx: click.Context, file: str) -> None:
    """Import a CARv1 file, verifying every block; print its roots."""
    config = config_of(ctx)
    stream = _open_readable(file)  # opened once: a FIFO's writer sees one reader throughout
    info = os.fstat(stream.fileno())
    size = info.st_size if stat.S_ISREG(info.st_mode) else None

    @run
    async def go() -> None:
        async with connect(config) as api:
            with byte_progress(f"importing {Path(file).name}", size) as advance:

                async def counted() -> AsyncIterator[bytes]:
                    async for chunk in dag.file_chunks(stream):
                        advance(len(chunk))
                        yield chunk

                result = await api.content.import_car(counted())
        click.echo(f"imported {result.blocks} blocks ({result.new_blocks} new)", err=True)
        for root in result.roots:
            click.echo(root)

    go()


@click.command()
@click.option("--repair", is_flag=True, help="Delete blocks that fail (re-add or re-fetch them).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Re-hash every block in the store and report any that do not match their CID; walk
    every pin and report those whose DAG lacks blocks. Exits 1 if anything is wrong."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect(config) as api:
            check = await api.content.verify(repair)
        report = check.report
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            for bad in report["bad"]:
                click.echo(f"bad block: {bad}")
            for line in check.incomplete:
                click.echo(line)
            click.echo(
                f"checked {report['checked']} blocks, {len(report['bad'])} bad;"
                f" {report['pins_checked']} pins, {len(check.incomplete)} incomplete",
                err=True,
            )
        if not check.ok:
            sys.exit(1)

    go()


@click.group("record")
def record_group() -> None:
    """Signed records: show and check them."""


@record_group.command("verify")
@click.argument("cid")
@click.pass_context
def record_verify(ctx: click.Context, cid: str) -> None:
    """Check a stored record's schema and signature; print it as DAG-JSON if it is valid."""
    config = config_of(ctx)

    @run
    async def go() -> None:
        async with connect(config) as api:
            record = await api.content.record(cid)
        click.echo(record.dag_json)
        click.echo(f"valid {record.type} record signed by {record.signer}", err=True)

    go()
