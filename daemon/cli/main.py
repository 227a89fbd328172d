"""The ``artdag`` command. It parses arguments, calls :class:`~daemon.core.node.Node`, and prints.

Errors print one line, ``artdag: error: ...``, on stderr and exit with status 1 (2 for usage).
"""

from __future__ import annotations

import functools
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import trio

import dag
from daemon.cli.progress import byte_progress
from daemon.config import Config, ConfigError, load_config
from daemon.core.node import open_node
from daemon.home import init_home, private_umask
from daemon.nodeapi import connect
from daemon.nodeapi.client import DaemonError
from dag import cid_to_str
from p2p.errors import P2PError
from provenance import ProvenanceError

__all__ = ["main"]


def fail(message: str, code: int = 1) -> NoReturn:
    one_line = " ".join(message.split())
    click.echo(f"artdag: error: {one_line}", err=True)
    sys.exit(code)


def _report(exc: BaseException) -> NoReturn:
    """Print a known error as one line and exit; let anything unexpected raise (a bug)."""
    if isinstance(
        exc, dag.DagError | ProvenanceError | ConfigError | ValueError | DaemonError | P2PError
    ):
        fail(str(exc))
    if isinstance(exc, PermissionError):
        fail(str(exc))
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if exc.filename else ""
        fail(f"{name}{exc.strerror or exc}")
    if isinstance(exc, KeyboardInterrupt):
        fail("interrupted", 130)
    raise exc


def _run(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body under trio, turning known errors into one-line messages."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return trio.run(functools.partial(fn, *args, **kwargs))
        except BaseExceptionGroup as group:
            _report(dag.first_error(group))
        except (Exception, KeyboardInterrupt) as exc:
            _report(exc)

    return wrapper


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For synchronous commands: known errors become one-line messages, as in :func:`_run`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            _report(exc)

    return wrapper


def _config(ctx: click.Context) -> Config:
    return ctx.obj["config"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="ARTDAG_HOME", help="Node directory (default ~/.artdag).")
@click.version_option(package_name="artdag")
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """artdag: a peer-to-peer daemon for creative work with provenance."""
    try:
        ctx.obj = {"config": load_config(home)}
    except ConfigError as exc:
        fail(str(exc))


def _read_new_password(from_stdin: bool, *, optional: bool) -> str | None:
    """A new web UI password: one line from stdin, or asked twice on the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        if optional:
            return None
        fail("no terminal to ask for the password on: use --password-stdin")
    prompt = "Web UI password" + (" (empty: set it later with `artdag passwd`)" if optional else "")
    text: str = click.prompt(
        prompt,
        hide_input=True,
        confirmation_prompt=True,
        default="" if optional else None,
        show_default=False,
    )
    return text or None


def _set_password(config: Config, password: str) -> None:
    from webui import PasswordError, PasswordFile

    try:
        PasswordFile(config.web_password_path).set(password)
    except (PasswordError, OSError) as exc:
        fail(str(exc))


@main.command()
@click.option(
    "--password-stdin", is_flag=True, help="Read the web UI password from stdin (one line)."
)
@click.pass_context
def init(ctx: click.Context, password_stdin: bool) -> None:
    """Create the node directory, keys, API token and the web UI password (safe to run again);
    print the did:key."""
    from webui import PasswordFile

    config = _config(ctx)
    private_umask()  # whatever init creates is the owner's alone
    try:
        report = init_home(config)
    except (OSError, ProvenanceError) as exc:
        fail(str(exc))
    if report.created:
        click.echo(f"initialised {report.home}", err=True)
    if password_stdin or not PasswordFile(config.web_password_path).is_set:
        password = _read_new_password(password_stdin, optional=True)
        if password:
            _set_password(config, password)
            click.echo("web UI password set", err=True)
        elif not PasswordFile(config.web_password_path).is_set:
            click.echo("no web UI password yet: set one with `artdag passwd`", err=True)
    click.echo(report.did)


@main.command()
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin (one line).")
@click.pass_context
def passwd(ctx: click.Context, password_stdin: bool) -> None:
    """Set the owner's password for the web UI (stored as an scrypt hash, mode 0600)."""
    config = _config(ctx)
    password = _read_new_password(password_stdin, optional=False)
    if not password:
        fail("empty password")
    _set_password(config, password)
    click.echo("web UI password set; every web session must log in again")


def _open_readable(path: str) -> Any:
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    if Path(path).is_dir():
        stream.close()
        fail(f"cannot add {path}: it is a directory")
    return stream


@main.command()
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
    config = _config(ctx)
    stream = _open_readable(file)
    size = os.fstat(stream.fileno()).st_size

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            version = None if cid_version is None else int(cid_version)
            params = node.import_params(
                chunk_size=chunk_size, cid_version=version, raw_leaves=raw_leaves
            )
            with stream, byte_progress(f"adding {Path(file).name}", size) as advance:
                added = await node.add_file(
                    stream,
                    name=name or Path(file).name,
                    tags=list(tags),
                    mime=mime,
                    params=params,
                    progress=advance,
                )
            asset = added.asset
            click.echo(f"added {asset.name} ({asset.size} bytes, record {asset.record})", err=True)
            click.echo(asset.cid)

    go()


@main.command()
@click.argument("cid")
@click.option("--offset", type=int, default=0, help="First byte to print.")
@click.option("--length", type=int, default=None, help="How many bytes to print.")
@click.pass_context
def cat(ctx: click.Context, cid: str, offset: int, length: int | None) -> None:
    """Print the bytes of a file (or a byte range of it) to stdout."""
    config = _config(ctx)
    out = sys.stdout.buffer

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            async for piece in node.cat(cid, offset, length):
                await trio.to_thread.run_sync(out.write, piece)
        out.flush()

    go()


@main.command()
@click.option("--tag", help="Only assets with this tag.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", type=int, default=100)
@click.pass_context
def assets(ctx: click.Context, tag: str | None, as_json: bool, limit: int) -> None:
    """List the assets this node holds."""
    config = _config(ctx)

    @_run
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


@main.group("dag")
def dag_group() -> None:
    """Inspect blocks as IPLD data."""


@dag_group.command("get")
@click.argument("cid")
@click.pass_context
def dag_get(ctx: click.Context, cid: str) -> None:
    """Print a block decoded as DAG-JSON."""
    config = _config(ctx)

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            click.echo(dag.to_dag_json(await node.dag_get(cid)))

    go()


@main.command("export")
@click.argument("cid")
@click.option("-o", "--output", required=True, help="The .car file to write.")
@click.pass_context
def export_car(ctx: click.Context, cid: str, output: str) -> None:
    """Write the whole DAG below CID as a CARv1 file."""
    config = _config(ctx)
    target = Path(output)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            written = 0
            try:
                with open(tmp, "wb") as f, byte_progress("exporting", None) as advance:
                    async for piece in node.export_car(cid):
                        await trio.to_thread.run_sync(f.write, piece)
                        written += len(piece)
                        advance(len(piece))
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        click.echo(f"wrote {written} bytes to {target}", err=True)
        click.echo(cid_to_str(dag.parse_cid(cid)))

    go()


@main.command("import")
@click.argument("file")
@click.pass_context
def import_car(ctx: click.Context, file: str) -> None:
    """Import a CARv1 file, verifying every block; print its roots."""
    config = _config(ctx)
    stream = _open_readable(file)  # opened once: a FIFO's writer sees one reader throughout
    info = os.fstat(stream.fileno())
    size = info.st_size if stat.S_ISREG(info.st_mode) else None

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            with byte_progress(f"importing {Path(file).name}", size) as advance:

                async def counted() -> AsyncIterator[bytes]:
                    async for chunk in dag.file_chunks(stream):
                        advance(len(chunk))
                        yield chunk

                result = await node.import_car(counted())
        click.echo(f"imported {result.blocks} blocks ({result.new_blocks} new)", err=True)
        for root in result.roots:
            click.echo(cid_to_str(root))

    go()


@main.command()
@click.option("--repair", is_flag=True, help="Delete blocks that fail (re-add or re-fetch them).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Re-hash every block in the store and report any that do not match their CID; walk
    every pin and report those whose DAG lacks blocks. Exits 1 if anything is wrong."""
    config = _config(ctx)

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            report = await node.verify(repair=repair)
        if as_json:
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            for bad in report.bad:
                click.echo(f"bad block: {bad}")
            for pin in report.incomplete:
                click.echo(pin.describe())
            click.echo(
                f"checked {report.checked} blocks, {len(report.bad)} bad;"
                f" {report.pins_checked} pins, {len(report.incomplete)} incomplete",
                err=True,
            )
        if not report.ok:
            sys.exit(1)

    go()


def _daemon_logging() -> None:
    """artdag's own log lines on stderr at INFO (``ARTDAG_LOG_LEVEL`` changes it); other
    libraries' at WARNING."""
    import logging

    level = os.environ.get("ARTDAG_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("artdag").setLevel(getattr(logging, level, logging.INFO))


@main.command()
@click.option("--host", help="Address for the HTTP server (default 127.0.0.1).")
@click.option("--port", type=int, help="Port for the HTTP server (default 8200).")
@click.option(
    "--listen", multiple=True, help="libp2p listen multiaddr (repeat; default from config)."
)
@click.option("--bootstrap", multiple=True, help="Peer to dial at start: /ip4/.../tcp/N/p2p/ID.")
@click.option("--p2p/--no-p2p", default=None, help="Run the libp2p network (default: on).")
@click.option(
    "--volunteer/--no-volunteer",
    default=None,
    help="Render other people's jobs within the [volunteer] policy (default: off).",
)
@click.option("--test-fault", type=click.Choice(["wrong-output"]), hidden=True)
@click.pass_context
def daemon(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    listen: tuple[str, ...],
    bootstrap: tuple[str, ...],
    p2p: bool | None,
    volunteer: bool | None,
    test_fault: str | None,
) -> None:
    """Run the daemon: HTTP API and the libp2p network (rendering and federation as they land)."""
    from daemon.runtime import Ready, run_daemon

    private_umask()  # the databases, keys and files the daemon creates are the owner's alone
    try:
        config = load_config(
            _config(ctx).home,
            host=host,
            port=port,
            listen=list(listen) or None,
            bootstrap=list(bootstrap) or None,
            p2p=p2p,
            volunteer=volunteer,
        )
    except ConfigError as exc:
        fail(str(exc))
    if (config.volunteer.enabled or test_fault) and not config.p2p.enabled:
        fail("--volunteer needs the p2p network (it is off: [p2p] enabled = false or --no-p2p)")
    if not config.http.is_loopback:
        api_host = config.http.host
        click.echo(f"warning: the API listens on {api_host}, not only this machine", err=True)

    def ready(info: Ready) -> None:
        click.echo(f"artdag daemon ready: {' '.join(info.urls)} (creator {info.did})", err=True)
        if info.peer_id:
            click.echo(f"peer id: {info.peer_id}", err=True)
            for addr in info.p2p_addrs:
                click.echo(f"p2p address: {addr}", err=True)
        from webui import PasswordFile

        if PasswordFile(config.web_password_path).is_set:
            click.echo(f"web UI: {info.urls[0]}/ (log in with the owner's password)", err=True)
        else:
            click.echo(
                f"web UI: {info.urls[0]}/ — no password yet: run `artdag passwd` to log in",
                err=True,
            )
        click.echo(f"API token: {config.token_path}", err=True)

    _daemon_logging()

    @_run
    async def go() -> None:
        await run_daemon(config, ready, fault=test_fault)
        click.echo("artdag daemon stopped", err=True)

    go()


@main.group("record")
def record_group() -> None:
    """Signed records: show and check them."""


@record_group.command("verify")
@click.argument("cid")
@click.pass_context
def record_verify(ctx: click.Context, cid: str) -> None:
    """Check a stored record's schema and signature; print it as DAG-JSON if it is valid."""
    config = _config(ctx)

    @_run
    async def go() -> None:
        async with open_node(config) as node:
            record = await node.record(cid)
        click.echo(dag.to_dag_json(record))
        click.echo(f"valid {record['type']} record signed by {record['signer']}", err=True)

    go()


# Commands of later layers live in their own modules; each adds itself to the group here.
from daemon.cli.activitypub import register as _register_activitypub  # noqa: E402
from daemon.cli.anchor import register as _register_anchor  # noqa: E402
from daemon.cli.claims import register as _register_claims  # noqa: E402
from daemon.cli.market import register as _register_market  # noqa: E402
from daemon.cli.money import register as _register_money  # noqa: E402
from daemon.cli.p2p import register as _register_p2p  # noqa: E402
from daemon.cli.pinning import pinning as _pinning  # noqa: E402
from daemon.cli.pins import gc as _gc  # noqa: E402
from daemon.cli.pins import pin_group as _pin_group  # noqa: E402
from daemon.cli.render import register as _register_render  # noqa: E402
from daemon.cli.status import register as _register_status  # noqa: E402

_register_p2p(main)
_register_render(main)
_register_market(main)
_register_claims(main)
_register_money(main)
_register_anchor(main)
_register_activitypub(main)
main.add_command(_pinning)
_register_status(main)
main.add_command(_pin_group)
main.add_command(_gc)
