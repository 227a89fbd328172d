"""CLI commands of the renderer: effects, recipes, render, provenance.

Thin, like the rest of the CLI: parse, call :class:`daemon.core.render.service.RenderService`,
print.
Errors print one line (``artdag: error: ...``) through the helpers of :mod:`daemon.cli.main`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from daemon.core.render.service import RenderService

__all__ = ["register"]


@asynccontextmanager
async def _service(ctx: click.Context) -> AsyncIterator[RenderService]:
    from daemon.core.node import open_node
    from daemon.core.render.service import RenderService

    async with open_node(ctx.obj["config"]) as node:
        service = RenderService.for_node(node)
        try:
            yield service
        finally:
            service.close()


def _run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """daemon.cli.main's runner, with renderer errors also reported as one line."""
    from daemon.cli.main import _run as cli_run
    from daemon.cli.main import fail
    from renderer import RenderError

    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except RenderError as exc:
            fail(str(exc))
        except BaseExceptionGroup as group:
            import dag

            first = dag.first_error(group)
            if isinstance(first, RenderError):
                fail(str(first))
            raise

    return cli_run(guarded)


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


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    from daemon.cli.main import fail

    out: dict[str, str] = {}
    for value in values:
        key, eq, rest = value.partition("=")
        if not eq or not key:
            fail(f"--{what} {value!r}: write it as NAME=VALUE", 2)
        out[key] = rest
    return out


def register(main: click.Group) -> None:
    """Add the renderer's commands to ``main``."""

    @main.command("effects")
    @click.option("--cids", is_flag=True, help="Show each effect record's full CID.")
    def effects(cids: bool) -> None:
        """List the built-in effects: inputs, parameters (type, range, default) and record CID."""
        from dag import cid_to_str
        from renderer import BUILTIN_EFFECTS, effect_cid

        for effect in BUILTIN_EFFECTS.values():
            cid = cid_to_str(effect_cid(effect.name))
            ins = ", ".join(f"{n}:{k}" for n, k in effect.inputs) + (
                "..." if effect.variadic else ""
            )
            click.echo(f"{effect.name:<14} r{effect.release}  ({ins}) -> {effect.output}  "
                       f"{cid if cids else cid[:20] + '…'}")  # fmt: skip
            for name, spec in effect.params.items():
                click.echo(f"    {name:<12} {spec.describe()}: {spec.doc}")

    @main.group("recipe")
    def recipe_group() -> None:
        """Recipes: DAGs of effects written in YAML."""

    @recipe_group.command("add")
    @click.argument("file")
    @click.pass_context
    def recipe_add(ctx: click.Context, file: str) -> None:
        """Validate FILE.yaml, store its canonical signed record and print the recipe CID."""
        from dag import cid_to_str

        @_run
        async def go() -> None:
            async with _service(ctx) as service:
                cid, recipe = await service.add_recipe_file(file)
            click.echo(f"recipe {recipe.name!r}: {len(recipe.nodes)} nodes, inputs "
                       f"{', '.join(recipe.inputs) or 'none'}", err=True)  # fmt: skip
            click.echo(cid_to_str(cid))

        go()

    @main.command("render")
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
        from dag import cid_to_str

        bound, overrides = _pairs(inputs, "input"), _pairs(params, "param")
        if remote:
            _render_remote(ctx, recipe, bound, overrides, replicas, verify, deadline)
            return
        if replicas or verify or deadline:
            raise click.UsageError("--replicas, --verify and --deadline go with --remote")

        @_run
        async def go() -> None:
            async with _service(ctx) as service:
                with _frame_progress("rendering") as advance:
                    outcome = await service.render(
                        recipe, bound, overrides, fuse=fuse, progress=advance
                    )
            result = outcome.result
            click.echo(
                f"rendered {outcome.rendered} step(s), {outcome.cached} from cache, "
                f"{result.frames} frames in {result.seconds:.2f} s; provenance "
                f"{cid_to_str(outcome.provenance)}; content key {outcome.content_key}",
                err=True,
            )
            click.echo(cid_to_str(outcome.output))

        go()

    @main.command("provenance")
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

        @_run
        async def go() -> None:
            from provenance import graph as pg

            async with _service(ctx) as service:
                if fmt is None:
                    lines = await service.lineage_lines(cid)
                else:
                    graph = await service.provenance_graph(cid, max_nodes=max_nodes)
            if fmt is None:
                text = "\n".join(lines)
            elif fmt == "tree":
                text = "\n".join(pg.to_tree(graph))
            elif fmt == "json":
                import json

                text = json.dumps(pg.to_json(graph), indent=2, ensure_ascii=False)
            else:
                text = pg.to_dot(graph) if fmt == "dot" else pg.to_svg(graph)
            click.echo(text.rstrip("\n"))

        go()


def _render_remote(
    ctx: click.Context,
    recipe: str,
    inputs: dict[str, str],
    params: dict[str, str],
    replicas: int | None,
    verify: bool,
    deadline: float | None,
) -> None:
    """``artdag render --remote``: the daemon publishes the steps as jobs; show step progress."""
    import os

    from daemon.cli.main import _guarded, fail
    from daemon.cli.progress import block_progress
    from daemon.nodeapi.client import DaemonClient

    if os.path.exists(recipe):  # a YAML file: the daemon reads it by absolute path
        recipe = os.path.abspath(recipe)
    body: dict[str, Any] = {"recipe": recipe, "inputs": inputs, "params": params, "verify": verify}
    if replicas is not None:
        body["replicas"] = replicas
    if deadline is not None:
        body["deadline"] = deadline

    @_guarded
    def go() -> None:
        client = DaemonClient.for_config(ctx.obj["config"])
        done: dict[str, Any] | None = None
        with block_progress("rendering on the network (steps)") as update:
            for event in client.stream("POST", "/api/v1/render", json=body):
                if "error" in event:
                    fail(event["error"])
                if "done" in event:
                    done = event["done"]
                    break
                update(event.get("finished", 0), event.get("steps", 0))
                if "status" in event and not sys.stderr.isatty():
                    click.echo(f"step {event['step']}: {event['status']}", err=True)
        if done is None:
            fail("the daemon closed the render stream without a result")
        click.echo(
            f"rendered {len(done['rendered'])} step(s) remotely or locally, "
            f"{len(done['cached'])} reused, in {done['seconds']:.2f} s; provenance "
            f"{done['provenance']}; content key {done['content_key']}",
            err=True,
        )
        click.echo(done["output"])

    go()
