"""Building the provenance graph (:func:`build_graph`): a breadth-first walk over records read
through the caller's async callbacks; see :mod:`provenance.graph` for the model and the walk's
rules (each node expanded once, the ``max_nodes`` cap, unreadable records as nodes with notes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from multiformats import CID

from dag import cid_to_str
from dag.errors import DagError

from .errors import ProvenanceError, RecordError
from .graph_model import GraphNode, ProvenanceGraph, json_value, short_cid, short_did

__all__ = ["DescribeAsset", "FindClaims", "FindProvenance", "LoadRecord", "build_graph"]

LoadRecord = Callable[[CID], Awaitable[dict[str, Any]]]
FindProvenance = Callable[[CID], Awaitable[CID | None]]
FindClaims = Callable[[CID], Awaitable[list[tuple[CID, dict[str, Any]]]]]
DescribeAsset = Callable[[CID], Awaitable[str | None]]


async def build_graph(
    root: CID,
    *,
    load_record: LoadRecord,
    find_provenance: FindProvenance,
    find_claims: FindClaims,
    describe_asset: DescribeAsset,
    max_nodes: int = 5000,
) -> ProvenanceGraph:
    """The provenance graph upstream of ``root``: a content CID with a provenance record, a
    provenance record's CID, or a claim's CID (its subject becomes the root).

    ``load_record`` returns a verified record (and raises for a missing or bad one);
    ``find_provenance`` the provenance record of a content CID, if known; ``find_claims`` the
    claims on a CID as ``(claim_cid, record)`` pairs; ``describe_asset`` an asset's name, if
    known. Records below the root that cannot be loaded become nodes with an ``error`` attr
    and a note, so one missing block does not hide the rest of the graph."""
    prov_cid = await find_provenance(root)
    if prov_cid is None and root.codec.name == "dag-cbor":
        record = await load_record(root)
        kind = record.get("type")
        if kind == "provenance":
            prov_cid, root = root, record["output"]
        elif kind == "claim":
            root = record["subject"]
            prov_cid = await find_provenance(root)
        else:
            raise RecordError(
                f"{cid_to_str(root)} is a {kind!r} record, not an output, provenance or claim"
            )
    graph = ProvenanceGraph(root=cid_to_str(root), max_nodes=max_nodes)
    await _GraphWalk(graph, load_record, find_provenance, find_claims, describe_asset).run(
        root, prov_cid
    )
    return graph


class _GraphWalk:
    """One walk of :func:`build_graph`: the graph so far, the callbacks that read records, and
    the breadth-first queue of ``("content" | "provenance", cid)`` still to expand."""

    def __init__(
        self,
        graph: ProvenanceGraph,
        load_record: LoadRecord,
        find_provenance: FindProvenance,
        find_claims: FindClaims,
        describe_asset: DescribeAsset,
    ) -> None:
        self.graph = graph
        self.load_record = load_record
        self.find_provenance = find_provenance
        self.find_claims = find_claims
        self.describe_asset = describe_asset
        self.queue: list[tuple[str, CID]] = []

    async def person(self, did: str) -> str | None:
        return did if self.graph.add_node(GraphNode(did, "person", short_did(did))) else None

    async def record_node(self, cid: CID, kind: str, label: Callable[[dict[str, Any]], str]) -> str:
        """Add a node for a record that is only described (recipe, effect, receipt, claim)."""
        key = cid_to_str(cid)
        if key in self.graph.nodes:
            return key
        try:
            record = await self.load_record(cid)
        except (ProvenanceError, DagError, LookupError, ValueError) as exc:
            self.graph.notes.append(f"{kind} {key}: {exc}")
            label_text = f"{kind} {short_cid(key)} (unreadable)"
            self.graph.add_node(GraphNode(key, kind, label_text, {"error": str(exc)}))
            return key
        attrs = {"signer": record.get("signer"), "created": record.get("created")}
        if not self.graph.add_node(GraphNode(key, kind, label(record), attrs)):
            return key
        if kind == "effect":
            attrs.update(name=record.get("name"), release=record.get("release"))
        elif kind == "recipe":
            attrs.update(name=record.get("name"), nodes=len(record.get("nodes", {})))
        elif kind == "receipt":
            attrs.update(
                operation=record.get("operation"),
                frames=record.get("frames"),
                milliseconds=record.get("milliseconds"),
                output=json_value(record.get("output")),
                renderer=record.get("renderer"),
            )
        author = record.get("author") or record.get("renderer")
        if author and await self.person(author):
            self.graph.add_edge(key, author, "rendered-by" if kind == "receipt" else "authored-by")
        return key

    async def add_content(self, cid: CID, provenance: CID | None = None) -> str:
        key = cid_to_str(cid)
        if key in self.graph.nodes:
            return key
        name = await self.describe_asset(cid)
        if provenance is None:
            provenance = await self.find_provenance(cid)
        kind = "output" if provenance is not None or key == self.graph.root else "asset"
        attrs: dict[str, Any] = {"name": name} if name else {}
        if not self.graph.add_node(GraphNode(key, kind, name or short_cid(key), attrs)):
            return key
        self.queue.append(("content", cid))
        if provenance is not None:
            prov_key = cid_to_str(provenance)
            if self.graph.add_node(
                GraphNode(prov_key, "provenance", f"provenance {short_cid(prov_key)}")
            ):
                self.graph.add_edge(key, prov_key, "provenance")
                self.queue.append(("provenance", provenance))
        return key

    async def expand_content(self, cid: CID) -> None:
        key = cid_to_str(cid)
        for claim_cid, claim in await self.find_claims(cid):
            claim_key = cid_to_str(claim_cid)
            split = claim.get("split", {})
            label = f"claim {short_cid(claim_key)}"
            attrs = {"split": dict(split), "license": claim.get("license"),
                     "created": claim.get("created"), "signer": claim.get("signer")}  # fmt: skip
            if not self.graph.add_node(GraphNode(claim_key, "claim", label, json_value(attrs))):
                break
            self.graph.add_edge(key, claim_key, "claimed-by")
            if claim.get("signer") and await self.person(claim["signer"]):
                self.graph.add_edge(claim_key, claim["signer"], "signed-by")
            if "provenance" in claim:
                prov_key = cid_to_str(claim["provenance"])
                if prov_key not in self.graph.nodes and self.graph.add_node(
                    GraphNode(prov_key, "provenance", f"provenance {short_cid(prov_key)}")
                ):
                    self.queue.append(("provenance", claim["provenance"]))
                self.graph.add_edge(claim_key, prov_key, "cites")
            for c in claim.get("inputs", []):
                self.graph.add_edge(claim_key, await self.add_content(c), "cites")
            for c in claim.get("effects", []):
                self.graph.add_edge(
                    claim_key, await self.record_node(c, "effect", _effect_label), "cites"
                )
            if "recipe" in claim:
                recipe_key = await self.record_node(claim["recipe"], "recipe", _recipe_label)
                self.graph.add_edge(claim_key, recipe_key, "cites")

    async def expand_provenance(self, cid: CID) -> None:
        key = cid_to_str(cid)
        node = self.graph.nodes[key]
        try:
            prov = await self.load_record(cid)
        except (ProvenanceError, DagError, LookupError, ValueError) as exc:
            self.graph.notes.append(f"provenance {key}: {exc}")
            node.label += " (unreadable)"
            node.attrs["error"] = str(exc)
            return
        params = prov.get("parameters") or {}
        bound = params.get("inputs", {}) if isinstance(params, dict) else {}
        overrides = params.get("overrides", {}) if isinstance(params, dict) else {}
        node.attrs.update(
            json_value({
                "output": prov.get("output"), "created": prov.get("created"),
                "signer": prov.get("signer"), "node": prov.get("node"),
                "software": prov.get("software", {}), "overrides": overrides,
                "steps": len(prov.get("steps", [])),
            })
        )  # fmt: skip
        output = cid_to_str(prov["output"])
        if output not in self.graph.nodes:  # reached through a claim: show what it made
            self.graph.add_edge(await self.add_content(prov["output"], cid), key, "provenance")
        if "recipe" in prov:
            self.graph.add_edge(
                key, await self.record_node(prov["recipe"], "recipe", _recipe_label), "recipe"
            )
        for effect in prov.get("effects", []):
            effect_key = await self.record_node(effect, "effect", _effect_label)
            self.graph.add_edge(key, effect_key, "made-by-effect")
        names: dict[str, str] = {}  # one content may be bound to several recipe inputs
        for k, v in bound.items():
            if isinstance(v, CID):
                names[cid_to_str(v)] = (
                    f"{names[cid_to_str(v)]},{k}" if cid_to_str(v) in names else k
                )
        for input_cid in prov.get("inputs", []):
            input_key = await self.add_content(input_cid)
            self.graph.add_edge(key, input_key, "input", names.get(input_key))
        for step in prov.get("steps", []):
            self.graph.add_edge(
                key, await self.record_node(step, "receipt", _receipt_label), "receipt"
            )
        renderer = prov.get("renderer") or prov.get("signer")
        if renderer and await self.person(renderer):
            self.graph.add_edge(key, renderer, "rendered-by")
        for volunteer in prov.get("infrastructure", []):
            if await self.person(volunteer):
                self.graph.add_edge(key, volunteer, "infrastructure")
        signer = prov.get("signer")
        if signer and signer != renderer and await self.person(signer):
            self.graph.add_edge(key, signer, "signed-by")

    async def run(self, root: CID, prov_cid: CID | None) -> None:
        """Add ``root`` (with its provenance record), then expand every node reached, once."""
        expanded: set[tuple[str, str]] = set()
        await self.add_content(root, prov_cid)
        while self.queue:
            what, cid = self.queue.pop(0)
            if (what, cid_to_str(cid)) in expanded:
                continue
            expanded.add((what, cid_to_str(cid)))
            await (self.expand_content if what == "content" else self.expand_provenance)(cid)


def _effect_label(record: dict[str, Any]) -> str:
    return f"{record['name']} r{record['release']}"


def _recipe_label(record: dict[str, Any]) -> str:
    return f"recipe '{record['name']}'"


def _receipt_label(record: dict[str, Any]) -> str:
    return f"step {record['operation']}"


# -- text tree ---------------------------------------------------------------------------------
