"""CLI commands of the renderer: effects, recipes, render, provenance.

Thin, like the rest of the CLI: parse, call :class:`daemon.render_service.RenderService`, print.
Errors print one line (``artdag: error: ...``) through the helpers of :mod:`daemon.cli`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .render_service import RenderService

__all__ = ["register"]


@asynccontextmanager
async def _service(ctx: click.Context) -> AsyncIterator[RenderService]:
    from .node import open_node
    from .render_service import RenderService

    async with open_node(ctx.obj["config"]) as node:
        service = RenderService.for_node(node)
        try:
            yield service
        finally:
            service.close()


def _run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """daemon.cli's runner, with renderer errors also reported as one line."""
    from renderer import RenderError

    from .cli import _run as cli_run
    from .cli import fail

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
    from .cli import fail

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
    @click.pass_context
    def render(
        ctx: click.Context,
        recipe: str,
        inputs: tuple[str, ...],
        params: tuple[str, ...],
        fuse: bool,
    ) -> None:
        """Render RECIPE (a CID or a YAML file); print the output CID last."""
        from dag import cid_to_str

        bound, overrides = _pairs(inputs, "input"), _pairs(params, "param")

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
    @click.pass_context
    def provenance(ctx: click.Context, cid: str) -> None:
        """Print the lineage of a rendered output as a tree."""

        @_run
        async def go() -> None:
            async with _service(ctx) as service:
                lines = await service.lineage_lines(cid)
            for line in lines:
                click.echo(line)

        go()
