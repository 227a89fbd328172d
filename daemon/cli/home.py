"""Commands that manage the node's home or run the daemon: ``artdag init``, ``passwd`` and
``daemon``. They stay local by nature (they create the home, set its password, or are the
daemon), so they do not go through the node API.
"""

from __future__ import annotations

import os
import sys

import click

from daemon.cli.common import config_of, fail, run
from daemon.config import Config, ConfigError, load_config
from daemon.home import init_home, private_umask
from provenance import ProvenanceError

__all__ = ["daemon", "init", "passwd"]


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


@click.command()
@click.option(
    "--password-stdin", is_flag=True, help="Read the web UI password from stdin (one line)."
)
@click.pass_context
def init(ctx: click.Context, password_stdin: bool) -> None:
    """Create the node directory, keys, API token and the web UI password (safe to run again);
    print the did:key."""
    from webui import PasswordFile

    config = config_of(ctx)
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


@click.command()
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin (one line).")
@click.pass_context
def passwd(ctx: click.Context, password_stdin: bool) -> None:
    """Set the owner's password for the web UI (stored as an scrypt hash, mode 0600)."""
    config = config_of(ctx)
    password = _read_new_password(password_stdin, optional=False)
    if not password:
        fail("empty password")
    _set_password(config, password)
    click.echo("web UI password set; every web session must log in again")


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


@click.command()
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
            config_of(ctx).home,
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

    @run
    async def go() -> None:
        await run_daemon(config, ready, fault=test_fault)
        click.echo("artdag daemon stopped", err=True)

    go()
