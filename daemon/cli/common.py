"""What every ``artdag`` command shares: one-line errors, running an async body under trio,
the loaded config, tables and byte sizes.

Errors print one line, ``artdag: error: ...``, on stderr and exit with status 1 (2 for usage,
130 when interrupted). Only known error types are reported that way; anything else raises
(it is a bug, and its traceback is wanted).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import click
import trio

import dag
from daemon.config import Config, ConfigError
from daemon.nodeapi.client import DaemonError
from daemon.services import NeedsDaemon
from p2p.errors import P2PError
from provenance import ProvenanceError

__all__ = [
    "config_of",
    "fail",
    "guarded",
    "human_size",
    "print_table",
    "report",
    "run",
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``artdag: error: MESSAGE`` (on one line) on stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    click.echo(f"artdag: error: {one_line}", err=True)
    sys.exit(code)


_KNOWN = (
    dag.DagError,
    ProvenanceError,
    ConfigError,
    ValueError,
    DaemonError,
    P2PError,
    NeedsDaemon,
)


def report(exc: BaseException) -> NoReturn:
    """Print a known error as one line and exit; let anything unexpected raise (a bug)."""
    if isinstance(exc, _KNOWN):
        fail(str(exc))
    if isinstance(exc, PermissionError):
        fail(str(exc))
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if exc.filename else ""
        fail(f"{name}{exc.strerror or exc}")
    if isinstance(exc, KeyboardInterrupt):
        fail("interrupted", 130)
    raise exc


def run(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body under trio, turning known errors into one-line messages."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return trio.run(functools.partial(fn, *args, **kwargs))
        except BaseExceptionGroup as group:
            report(dag.first_error(group))
        except (Exception, KeyboardInterrupt) as exc:
            report(exc)

    return wrapper


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For synchronous commands: known errors become one-line messages, as in :func:`run`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            report(exc)

    return wrapper


def config_of(ctx: click.Context) -> Config:
    """The config the ``artdag`` group loaded (``--home`` / ``$ARTDAG_HOME``)."""
    config: Config = ctx.obj["config"]
    return config


def print_table(title: str, columns: list[str], rows: list[list[str]], right: set[str]) -> None:
    """A rich table on stdout: ``columns`` named in ``right`` are right-aligned."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def human_size(size: int | None, unknown: str = "-") -> str:
    """``1536`` -> ``1.5 KiB`` (binary units; whole bytes below 1 KiB); ``unknown`` for None."""
    if size is None:
        return unknown
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover (the loop always returns)
