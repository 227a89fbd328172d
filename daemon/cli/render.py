"""CLI commands of the renderer: effects, recipe add, render, provenance.

Thin, like the rest of the CLI: parse, call the node API's render (:mod:`daemon.nodeapi.render`:
the running daemon if there is one, else this process), print. ``render --remote`` renders on
the market, which needs the daemon's network. Errors print one line (``artdag: error: ...``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from daemon.cli.common import config_of, fail, run
from daemon.cli.progress import block_progress
from daemon.core.market.context import MarketNotRunning
from daemon.nodeapi import connect
from daemon.nodeapi.render import OnEvent, RenderDone, RenderRequest
from daemon.services import NeedsDaemon
from renderer import RenderError

__all__ = ["effects", "provenance", "recipe_group", "render"]


def _run_render(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """:func:`daemon.cli.common.run`, with renderer and market refusals also one line."""

    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except (RenderError, MarketNotRunning, NeedsDaemon) as exc:
            fail(str(exc))
        except BaseExceptionGroup as group:
            import dag

            first = dag.first_error(group)
            if isinstance(first, RenderError | MarketNotRunning | NeedsDaemon):
                fail(str(first))
            raise

    return run(guarded)


@contextmanager
def _frame_progress(description: str) -> Iterator[Callable[[int], None]]:
    """A live frame counter on stderr when it is a terminal (rich), silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} frames"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda n: progress.update(task, completed=n)


@contextmanager
def _progress(market: bool) -> Iterator[OnEvent]:
    """Frames rendered here, or steps on the market (one line each when stderr is no tty)."""
    if not market:
        with _frame_progress("rendering") as advance:
            yield lambda event: advance(event["frames"]) if "frames" in event else None
        return
    with block_progress("rendering on the network (steps)") as update:

        def on_event(event: dict[str, Any]) -> None:
            update(event.get("finished", 0), event.get("steps", 0))
            if "status" in event and not sys.stderr.isatty():
                click.echo(f"step {event['step']}: {event['status']}", err=True)

        yield on_event


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, eq, rest = value.partition("=")
        if not eq or not key:
            fail(f"--{what} {value!r}: write it as NAME=VALUE", 2)
        out[key] = rest
    return out


@click.command("effects")
@click.option("--cids", is_flag=True, help="Show each effect record's full CID.")
@click.pass_context
def effects(ctx: click.Context, cids: bool) -> None:
    """List the built-in effects: inputs, parameters (type, range, default) and record CID."""

    @_run_render
    async def go() -> None:
        async with connect(config_of(ctx)) as api:
            listed = await api.render.effects()
        for effect in listed:
            ins = ", ".join(f"{n}:{k}" for n, k in effect.inputs) + (
                "..." if effect.variadic else ""
            )
            cid = effect.cid if cids else effect.cid[:20] + "…"
            click.echo(f"{effect.name:<14} r{effect.release}  ({ins}) -> {effect.output}  {cid}")
            for param in effect.params:
                click.echo(f"    {param.name:<12} {param.describe}: {param.doc}")

    go()


@click.group("recipe")
def recipe_group() -> None:
    """Recipes: DAGs of effects written in YAML."""


@recipe_group.command("add")
@click.argument("file")
@click.pass_context
def recipe_add(ctx: click.Context, file: str) -> None:
    """Validate FILE.yaml, store its canonical signed record and print the recipe CID."""
    import trio

    @_run_render
    async def go() -> None:
        text = await trio.Path(file).read_bytes()
        async with connect(config_of(ctx)) as api:
            added = await api.render.add_recipe(text)
        click.echo(f"recipe {added.name!r}: {added.nodes} nodes, inputs "
                   f"{', '.join(added.inputs) or 'none'}", err=True)  # fmt: skip
        click.echo(added.cid)

    go()


@click.command("render")
@click.argument("recipe")
@click.option("--input", "inputs", multiple=True, help="NAME=CID: bind a recipe input.")
@click.option("--param", "params", multiple=True, help="NODE.PARAM=VALUE: override one.")
@click.option("--fuse/--no-fuse", default=False, help="Run linear chains as one ffmpeg graph.")
@click.option(
    "--remote",
    is_flag=True,
    help="Render on volunteers of the network, through the running daemon.",
)
@click.option(
    "--replicas", type=click.IntRange(1, 9), help="With --remote: independent renders per step."
)
@click.option(
    "--verify", is_flag=True, help="With --remote: render again even if the network has it."
)
@click.option("--deadline", type=float, help="With --remote: give up after this many seconds.")
@click.pass_context
def render(
    ctx: click.Context,
    recipe: str,
    inputs: tuple[str, ...],
    params: tuple[str, ...],
    fuse: bool,
    remote: bool,
    replicas: int | None,
    verify: bool,
    deadline: float | None,
) -> None:
    """Render RECIPE (a CID or a YAML file); print the output CID last."""
    bound, overrides = _pairs(inputs, "input"), _pairs(params, "param")
    if not remote and (replicas or verify or deadline):
        raise click.UsageError("--replicas, --verify and --deadline go with --remote")
    request = RenderRequest(
        recipe, bound, dict(overrides), remote, fuse, replicas, verify, deadline
    )

    @_run_render
    async def go() -> RenderDone:
        async with connect(config_of(ctx)) as api:
            with _progress(remote) as on_event:
                return await api.render.render(request, on_event)

    done: RenderDone = go()
    if remote:
        click.echo(
            f"rendered {len(done.rendered)} step(s) remotely or locally, "
            f"{len(done.cached)} reused, in {done.seconds:.2f} s; provenance "
            f"{done.provenance}; content key {done.content_key}",
            err=True,
        )
    else:
        click.echo(
            f"rendered {len(done.rendered)} step(s), {len(done.cached)} from cache, "
            f"{done.frames} frames in {done.seconds:.2f} s; provenance "
            f"{done.provenance}; content key {done.content_key}",
            err=True,
        )
    click.echo(done.output)


@click.command("provenance")
@click.argument("cid")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "json", "dot", "svg"]),
    help="The whole provenance graph (inputs, effects, recipe, receipts, people, claims) "
    "as a text tree, JSON, Graphviz DOT or a standalone SVG. Without it: the lineage "
    "summary.",
)
@click.option("--max-nodes", type=click.IntRange(1), default=5000, show_default=True)
@click.pass_context
def provenance(ctx: click.Context, cid: str, fmt: str | None, max_nodes: int) -> None:
    """Print the lineage of a rendered output (or its provenance graph with --format)."""

    @_run_render
    async def go() -> None:
        async with connect(config_of(ctx)) as api:
            shown = await api.render.provenance(cid, fmt or "lineage", max_nodes)
        click.echo(shown.text.rstrip("\n"))

    go()
