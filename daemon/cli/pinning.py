"""CLI of the Pinning Service API: ``artdag pinning token-add|token-ls|token-rm|ls``.

They work on the files in ``$ARTDAG_HOME`` (``pinning-tokens``, ``pinning.db``), so they need
no running daemon; a running daemon sees token changes at once.
"""

from __future__ import annotations

import json

import click

from daemon.core.pinning_api.requests import (
    STATUSES,
    ListQuery,
    PinRequest,
    PinRequestError,
    PinRequestStore,
)
from daemon.core.pinning_api.tokens import add_token, list_tokens, remove_token

__all__ = ["register"]


def register(main: click.Group) -> None:
    from daemon.cli.main import _config, _guarded, fail
    from daemon.nodeapi.client import DaemonNotRunning, read_daemon_file

    @main.group("pinning")
    def pinning() -> None:
        """The IPFS Pinning Service API (what `ipfs pin remote` speaks): tokens, requests."""

    @pinning.command("token-add")
    @click.argument("name")
    @click.pass_context
    @_guarded
    def token_add(ctx: click.Context, name: str) -> None:
        """Make an access token NAME (one per client device); it is shown only once."""
        config = _config(ctx)
        token = add_token(config.pinning_tokens_path, name)
        try:
            endpoint = read_daemon_file(config)["api"]
        except DaemonNotRunning:
            endpoint = f"http://{config.http.host}:{config.http.port}"
        click.echo(token)
        click.echo(
            f"Keep it secret; it is not stored and cannot be shown again. In Kubo:\n"
            f"  ipfs pin remote service add artdag {endpoint} {token}\n"
            f"  ipfs pin remote add --service=artdag --name=NAME CID",
            err=True,
        )

    @pinning.command("token-ls")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def token_ls(ctx: click.Context, as_json: bool) -> None:
        """List the access tokens (names and creation times; never the tokens)."""
        entries = list_tokens(_config(ctx).pinning_tokens_path)
        if as_json:
            rows = [{"name": e.name, "created": e.created} for e in entries]
            click.echo(json.dumps(rows, indent=2))
            return
        for e in entries:
            click.echo(f"{e.name}\t{e.created}")

    @pinning.command("token-rm")
    @click.argument("name")
    @click.pass_context
    @_guarded
    def token_rm(ctx: click.Context, name: str) -> None:
        """Revoke the access token NAME (its pin requests stay)."""
        if not remove_token(_config(ctx).pinning_tokens_path, name):
            fail(f"no pinning token named {name!r}")
        click.echo(f"revoked {name}")

    @pinning.command("ls")
    @click.option(
        "--status",
        "statuses",
        multiple=True,
        type=click.Choice(STATUSES),
        help="Only these statuses (repeatable; default: all).",
    )
    @click.option("--limit", default=1000, show_default=True, help="At most this many.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON (PinStatus objects).")
    @click.pass_context
    @_guarded
    def ls(ctx: click.Context, statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
        """List the pin requests of every token, newest first."""
        config = _config(ctx)
        if not 1 <= limit <= 1_000_000:
            raise PinRequestError("--limit must be from 1 to 1000000")
        rows: list[PinRequest] = []
        count = 0
        if config.pinning_db_path.exists():
            store = PinRequestStore(config.pinning_db_path)
            try:
                query = ListQuery(statuses=statuses or STATUSES, limit=limit)
                count, rows = store.list(query)
            finally:
                store.close()
        if as_json:
            out = [r.to_json([]) | {"owner": r.owner} for r in rows]
            for item in out:
                del item["delegates"]
            click.echo(json.dumps({"count": count, "results": out}, indent=2))
            return
        for r in rows:
            details = r.info.get("status_details", "")
            name = r.pin.name or ""
            click.echo(f"{r.requestid}\t{r.status}\t{r.created}\t{r.pin.cid}\t{name}\t{details}")
