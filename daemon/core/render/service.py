"""The node's rendering service: effects, recipes, renders and lineage, for the CLI, API and tests.

It composes the renderer (pure planning, the sandboxed executor) with the node's store, identity
and index: records it signs (recipes, receipts, provenance) go into the store, pinned, and into
the index's ``records`` table; the step cache lives in the same SQLite file, in its own tables.

One service per node, opened by :meth:`daemon.services.Services.renders` with what it needs
passed explicitly; its step cache is thread-safe, so concurrent renders (the CLI's, the web
page's, the market's) share it. With a ``publisher`` (the node), a finished render's media
output becomes one of the node's assets and its provenance is announced; without one (tests,
benchmarks) outputs stay in the store only.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

import dag
from daemon.core.index import Index
from dag import CID, Blockstore, ImportParams, cid_to_str, parse_cid
from provenance import Identity, RecordError, sign_record, utc_timestamp, verify_signed
from provenance.graph import FindClaims, ProvenanceGraph, build_graph
from renderer import (
    BUILTIN_EFFECTS,
    Effect,
    Executor,
    Limits,
    Plan,
    Recipe,
    RecipeError,
    RenderResult,
    StepCache,
    collect_lineage,
    effect_cid,
    effect_record,
    format_tree,
    load_recipe_yaml,
    make_render_provenance,
    parse_param_text,
    plan_key_blocks,
    plan_recipe,
    recipe_from_record,
)

__all__ = ["OutputPublisher", "PreparedRender", "RenderOutcome", "RenderService"]

log = logging.getLogger("artdag.render")

DELIVERY_SUFFIX, DELIVERY_MIME = "mp4", "video/mp4"  # the planner's delivery format


class OutputPublisher(Protocol):
    """Where a finished render goes: the node's assets and its creator repo (a ``Node``)."""

    async def adopt(
        self, root: CID, *, name: str, mime: str | None = None, tags: list[str] | None = None
    ) -> Any: ...

    async def announce(self, record_cid: CID, *roots: CID) -> None: ...


@dataclass(frozen=True)
class PreparedRender:
    recipe_cid: CID
    recipe: Recipe
    overrides: Mapping[str, Any]
    sources: Mapping[str, CID]
    plan: Plan


@dataclass(frozen=True)
class RenderOutcome:
    output: CID
    provenance: CID
    recipe: CID
    content_key: str
    result: RenderResult

    @property
    def rendered(self) -> int:
        return len(self.result.rendered)

    @property
    def cached(self) -> int:
        return len(self.result.cached)


class RenderService:
    def __init__(
        self,
        store: Blockstore,
        identity: Identity,
        index_path: Path,
        limits: Limits | None = None,
        *,
        index: Index | None = None,
        import_params: ImportParams | None = None,
        workroot: Path | None = None,
        parallel: int = 2,
        publisher: OutputPublisher | None = None,
    ) -> None:
        self.store, self.identity = store, identity
        self.limits = limits or Limits()
        self.index = index
        self.cache = StepCache(index_path)
        self.import_params = import_params or ImportParams()
        self.workroot = workroot
        self.parallel = parallel
        self.publisher = publisher
        self._effects_stored = False

    def close(self) -> None:
        self.cache.close()

    # -- effects and recipes ---------------------------------------------------------------
    def effects(self) -> list[tuple[Effect, CID]]:
        return [(e, effect_cid(e.name)) for e in BUILTIN_EFFECTS.values()]

    async def _store_effects(self) -> None:
        if self._effects_stored:
            return
        for name in BUILTIN_EFFECTS:
            block = dag.record_block(effect_record(name))
            await self.store.put(block)
            await self.store.pin(block.cid)
        self._effects_stored = True

    async def _put_record(self, record: dict[str, Any], subject: str) -> CID:
        block = dag.record_block(record)
        await self.store.put(block)
        await self.store.pin(block.cid)
        await self.store.flush()
        if self.index is not None:
            created = record.get("created") or utc_timestamp()
            await trio.to_thread.run_sync(
                self.index.put_record,
                cid_to_str(block.cid),
                record["type"],
                record["signer"],
                created,
                subject,
            )
        return block.cid

    async def add_recipe(self, recipe: Recipe) -> CID:
        """Sign and store a recipe's canonical record; its CID."""
        await self._store_effects()
        record = sign_record({**recipe.to_record(), "author": self.identity.did}, self.identity)
        return await self._put_record(record, recipe.name)

    async def add_recipe_file(self, path: str | Path) -> tuple[CID, Recipe]:
        text = await trio.Path(path).read_bytes()
        recipe = load_recipe_yaml(text)
        return await self.add_recipe(recipe), recipe

    async def load_recipe(self, ref: str) -> tuple[CID, Recipe]:
        """A recipe by CID (a stored record) or by the path of a YAML file (stored first)."""
        try:
            cid = parse_cid(ref)
        except dag.CidError:
            if not await trio.Path(ref).exists():
                raise RecipeError(f"{ref!r} is neither a recipe CID nor a YAML file") from None
            return await self.add_recipe_file(ref)
        record = await self.record(cid)
        return cid, recipe_from_record(record)

    async def record(self, cid: CID) -> dict[str, Any]:
        if cid.codec.name != "dag-cbor":
            raise RecordError(f"{cid_to_str(cid)} is {cid.codec.name}, not a record")
        value = dag.decode_dagcbor(await self.store.get(cid))
        verify_signed(value)
        return value

    # -- rendering -------------------------------------------------------------------------
    async def prepare(
        self,
        ref: str,
        inputs: Mapping[str, str | CID],
        params: Mapping[str, Any] | None = None,
    ) -> PreparedRender:
        """Load the recipe (CID or YAML path), apply overrides, bind inputs and plan it."""
        await self._store_effects()
        recipe_cid, recipe = await self.load_recipe(ref)
        overrides = {
            k: parse_param_text(v) if isinstance(v, str) else v for k, v in (params or {}).items()
        }
        recipe = recipe.with_params(overrides)
        sources = {name: parse_cid(cid) for name, cid in inputs.items()}
        for name, cid in sources.items():
            if not await self.store.has(cid):
                raise RecipeError(f"input {name!r}: {cid_to_str(cid)} is not in the store")
        plan = plan_recipe(recipe, sources)
        await self._store_key_blocks(plan)
        return PreparedRender(recipe_cid, recipe, overrides, sources, plan)

    async def _store_key_blocks(self, plan: Plan) -> None:
        """The blocks behind the plan's cache ids, which receipts and provenance link: stored
        before any receipt is pinned and again (re-put keeps them young for the collector)
        before the provenance that pins them for good."""
        for block in plan_key_blocks(plan):
            await self.store.put(block)

    def workdir(self, prefix: str = "render-") -> tempfile.TemporaryDirectory[str]:
        root = self.workroot / "render-tmp" if self.workroot else None
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=prefix, dir=root)

    def executor(self, workdir: str | Path, *, fuse: bool = False, **kw: Any) -> Executor:
        return Executor(
            self.store,
            self.cache,
            self.identity,
            kw.pop("limits", self.limits),
            Path(workdir),
            parallel=kw.pop("parallel", self.parallel),
            fuse=fuse,
            import_params=self.import_params,
            **kw,
        )

    async def render(
        self,
        ref: str,
        inputs: Mapping[str, str | CID],
        params: Mapping[str, Any] | None = None,
        *,
        fuse: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> RenderOutcome:
        """Render a recipe (CID or YAML path) on inputs bound by name; sign its provenance."""
        prepared = await self.prepare(ref, inputs, params)
        with self.workdir() as workdir:
            result = await self.executor(workdir, fuse=fuse).run(prepared.plan, progress)
        return await self.finish(prepared, result)

    async def finish(
        self, prepared: PreparedRender, result: RenderResult, infrastructure: Iterable[str] = ()
    ) -> RenderOutcome:
        """Sign and store the provenance of a finished render; publish its output."""
        plan, sources, recipe = prepared.plan, prepared.sources, prepared.recipe
        await self._store_key_blocks(plan)
        effects = [effect_cid(s.effect.name) for s in plan.steps.values()]
        provenance = make_render_provenance(
            output=result.output.cid,
            inputs=[sources[n] for n in recipe.inputs],
            effects=effects,
            recipe=prepared.recipe_cid,
            parameters={"inputs": dict(sources), "overrides": dict(prepared.overrides)},
            steps=result.receipts,
            renderer=self.identity.did,
            infrastructure=infrastructure,
        )
        signed = sign_record(provenance, self.identity)
        prov_cid = await self._put_record(signed, cid_to_str(result.output.cid))
        await trio.to_thread.run_sync(
            self.cache.put_output,
            cid_to_str(result.output.cid),
            cid_to_str(prov_cid),
            cid_to_str(prepared.recipe_cid),
            signed["created"],
        )
        if self.publisher is not None:
            await self._publish(self.publisher, recipe, result.output.cid, prov_cid)
        return RenderOutcome(
            result.output.cid, prov_cid, prepared.recipe_cid, result.output.content_key, result
        )

    async def _publish(
        self, publisher: OutputPublisher, recipe: Recipe, output: CID, provenance: CID
    ) -> None:
        """Make a media output one of the node's assets and append its provenance to the
        creator repo (gossiped when the daemon runs), so renders travel like any other work."""
        if output.codec.name in ("dag-pb", "raw"):
            name = f"{recipe.name}.{DELIVERY_SUFFIX}"
            await publisher.adopt(output, name=name, mime=DELIVERY_MIME, tags=["render"])
        await publisher.announce(provenance)

    # -- lineage ---------------------------------------------------------------------------
    async def provenance_of(self, output: CID) -> CID | None:
        found = await trio.to_thread.run_sync(self.cache.provenance_of, cid_to_str(output))
        return parse_cid(found) if found else None

    async def lineage_lines(self, cid: str | CID) -> list[str]:
        """The lineage of an output (or of a provenance record) as printable tree lines."""
        target = parse_cid(cid)

        async def describe(c: CID) -> str | None:
            if self.index is None:
                return None
            row = await trio.to_thread.run_sync(self.index.asset, cid_to_str(c))
            return f"asset {row.name!r}, {row.size} bytes" if row else None

        if await self.provenance_of(target) is None and target.codec.name != "dag-cbor":
            raise RecordError(f"no provenance known for {cid_to_str(target)}")
        tree = await collect_lineage(
            target,
            load_record=self.record,
            find_provenance=self.provenance_of,
            describe_asset=describe,
        )
        return format_tree(tree)

    async def provenance_graph(
        self,
        cid: str | CID,
        *,
        find_claims: FindClaims | None = None,
        max_nodes: int = 5000,
    ) -> ProvenanceGraph:
        """The full provenance graph upstream of an output, a provenance record or a claim
        (``provenance.graph``); ``find_claims`` lists the claims on a CID (by default the
        claims this node has indexed)."""
        target = parse_cid(cid)

        async def name(c: CID) -> str | None:
            if self.index is None:
                return None
            row = await trio.to_thread.run_sync(self.index.asset, cid_to_str(c))
            return row.name if row else None

        async def indexed_claims(c: CID) -> list[tuple[CID, dict[str, Any]]]:
            """The claims on ``c`` indexed here (local or from the network), verified."""
            if self.index is None:
                return []
            rows = await trio.to_thread.run_sync(self.index.records_of, "claim", cid_to_str(c))
            found = []
            for row in rows:
                try:
                    found.append((parse_cid(row["cid"]), await self.record(parse_cid(row["cid"]))))
                except (dag.DagError, RecordError) as exc:
                    log.warning("claim %s is unusable: %s", row["cid"], exc)
            return found

        if await self.provenance_of(target) is None and target.codec.name != "dag-cbor":
            raise RecordError(f"no provenance known for {cid_to_str(target)}")
        return await build_graph(
            target,
            load_record=self.record,
            find_provenance=self.provenance_of,
            find_claims=find_claims or indexed_claims,
            describe_asset=name,
            max_nodes=max_nodes,
        )
