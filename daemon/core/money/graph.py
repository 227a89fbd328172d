"""Work graphs read from records: who fills each role of a work's revenue split.

:func:`build_work` turns a subject into a :class:`~provenance.splits.Work` by reading records
through four small callbacks (:class:`WorkSources`), so tests can hand in records from a dict
and the node wires in the claims service's ranking. Per role: ``footage`` -> each input (a
derived :class:`Work` if the input has a claim or a provenance record, else the input's owner),
``effects`` -> each effect record's ``author``, ``recipe`` -> the recipe record's ``author``
(else its signer), ``infrastructure`` -> the provenance record's ``infrastructure`` dids and its
``renderer``. The work's claimant (the claim's signer, else the subject's owner, else the
provenance signer) is paid the roles nobody fills.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dag import CID, cid_to_str
from provenance.splits import DEFAULT_SPLIT, MAX_DEPTH, Split, SplitError, Work

__all__ = ["OwnerLookup", "Record", "RecordLookup", "WorkSources", "build_work", "call_lookup"]

T = TypeVar("T")
Record = dict[str, Any]
RecordLookup = Callable[[CID], Awaitable[Record | None] | Record | None]
OwnerLookup = Callable[[CID], Awaitable[str | None] | str | None]


async def call_lookup(fn: Callable[[CID], Any], cid: CID) -> Any:
    value = fn(cid)
    return await value if inspect.isawaitable(value) else value


@dataclass(frozen=True)
class WorkSources:
    """Where :func:`build_work` reads records. Each callback may be sync or async.

    - ``find_claim(subject)``: the claim that governs the subject (the winning one), or None.
    - ``find_provenance(subject)``: the provenance record whose ``output`` is the subject.
    - ``owner_of(cid)``: who owns a plain input (claimant, else the asset record's signer).
    - ``load_record(cid)``: any record by CID (effects, recipes, provenance named by claims).
    """

    find_claim: RecordLookup
    find_provenance: RecordLookup
    owner_of: OwnerLookup
    load_record: RecordLookup


# -- work graphs from records ---------------------------------------------------------------
async def build_work(subject: CID, sources: WorkSources) -> Work:
    """The work graph of ``subject``: its split, claimant and who fills each role.

    A subject with neither claim nor provenance is a work with the default split whose every
    role falls to its owner (the claimant).
    """
    found = await _GraphReader(sources).node(subject, ())
    if isinstance(found, Work):
        return found
    return Work(cid_to_str(subject), DEFAULT_SPLIT, {}, claimant=found)


class _GraphReader:
    def __init__(self, sources: WorkSources) -> None:
        self.sources = sources
        self.memo: dict[str, Work | str | None] = {}

    async def node(self, cid: CID, path: tuple[str, ...]) -> Work | str | None:
        """A derived :class:`Work`, or the owner of a plain input (None if unknown)."""
        key = cid_to_str(cid)
        if key in self.memo:
            return self.memo[key]
        if key in path:
            raise SplitError(f"work graph has a cycle: {' -> '.join([*path, key])}")
        if len(path) >= MAX_DEPTH:
            raise SplitError(f"work {key} lies deeper than {MAX_DEPTH} derived works")
        s = self.sources
        claim = await call_lookup(s.find_claim, cid)
        provenance = None
        if claim is not None and isinstance(claim.get("provenance"), CID):
            provenance = await call_lookup(s.load_record, claim["provenance"])
        if provenance is None:
            provenance = await call_lookup(s.find_provenance, cid)
        if claim is None and provenance is None:
            self.memo[key] = owner = await call_lookup(s.owner_of, cid)
            return owner
        source = provenance if provenance is not None else claim
        assert source is not None
        split = Split.from_record(claim["split"]) if claim is not None else DEFAULT_SPLIT
        claimant = claim["signer"] if claim is not None else await call_lookup(s.owner_of, cid)
        if claimant is None and provenance is not None:
            claimant = provenance.get("signer")
        roles: dict[str, list[Any]] = {}
        wanted = split.shares
        if "footage" in wanted:
            shares = []
            for child in source.get("inputs") or (claim or {}).get("inputs") or []:
                found = await self.node(child, (*path, key))
                if found is not None:
                    shares.append(found)
            roles["footage"] = shares
        if "effects" in wanted:
            effects = source.get("effects") or (claim or {}).get("effects") or []
            roles["effects"] = [a for a in [await self._author(e) for e in effects] if a]
        if "recipe" in wanted:
            recipe = source.get("recipe") or (claim or {}).get("recipe")
            author = await self._author(recipe) if isinstance(recipe, CID) else None
            roles["recipe"] = [author] if author else []
        if "infrastructure" in wanted and provenance is not None:
            dids = set(provenance.get("infrastructure") or [])
            if provenance.get("renderer"):
                dids.add(provenance["renderer"])
            roles["infrastructure"] = sorted(dids)
        work = Work(key, split, roles, claimant=claimant)
        self.memo[key] = work
        return work

    async def _author(self, cid: CID) -> str | None:
        record = await call_lookup(self.sources.load_record, cid)
        if record is None:
            return None
        author = record.get("author") or record.get("signer")
        return author if isinstance(author, str) else None
