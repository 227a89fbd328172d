"""Content paths: following ``<cid>/<segment>/...`` through a DAG to the block it names.

A path is resolved one segment at a time from its root block, as the IPFS path gateway spec
describes (https://specs.ipfs.tech/http-gateways/path-gateway/): through a UnixFS directory by a
link's name, and inside a DAG-CBOR block by map keys and list indexes until a value is a link
(``<asset-record>/root`` is the asset's media). Any other block (raw, a UnixFS file) has no
named links, so a segment below it is not found. HAMT-sharded directories are not followed yet.

The blocks come from a ``get`` callable the caller passes (a blockstore's ``get``, or one that
fetches what the store lacks), so this module does no I/O of its own. What went wrong is an
error a caller can map to its own answer: :class:`InvalidPath` (the path is malformed),
:class:`PathNotFound` (no such name, field, index or link) and :class:`PathNotSupported` (a
shape this resolver does not follow); a block that does not decode is a
:class:`~dag.errors.CodecError`, and what ``get`` raises passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from multiformats import CID

from .cids import cid_to_str
from .dagcbor import decode as decode_dagcbor
from .dagpb import PBNode, UnixFSData, UnixFSType, decode_node
from .errors import CodecError, DagError

__all__ = [
    "BlockGetter",
    "InvalidPath",
    "PathError",
    "PathNotFound",
    "PathNotSupported",
    "ResolvedPath",
    "resolve_path",
    "split_path",
    "unixfs_node",
]

BlockGetter = Callable[[CID], Awaitable[bytes]]
"""Returns a block's bytes; raises what the caller wants passed on when it lacks the block."""

_LIST_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")  # ASCII digits int() takes without a limit


class PathError(DagError):
    """A content path that cannot be followed; the message names the path up to the failure."""


class InvalidPath(PathError, ValueError):
    """The path itself is malformed (it contains ``..``)."""


class PathNotFound(PathError):
    """A segment names no link, field or list index, or goes below a block without links."""


class PathNotSupported(PathError):
    """The path reaches a shape not followed: a HAMT-sharded directory, a path into a scalar,
    or a path that ends on DAG-CBOR data rather than on a link."""


@dataclass(slots=True)
class ResolvedPath:
    """Where a path led: its ``root``, the terminus ``cid`` and its block ``data``.

    ``roots`` has one CID per logical path segment (what the gateway spec's ``X-Ipfs-Roots``
    lists: a segment inside a DAG-CBOR block repeats that block's CID); ``blocks`` are the
    blocks read on the way, root first and terminus last (what a CAR of the path carries);
    ``name`` is the last segment, if there was one."""

    root: CID
    cid: CID
    data: bytes
    roots: list[CID]
    blocks: list[tuple[CID, bytes]] = field(default_factory=list)
    name: str | None = None


def split_path(path: str) -> list[str]:
    """The segments of a content path below its CID (``a//b/./c/`` is ``[a, b, c]``).

    ``..`` is refused rather than applied: a content path names a DAG, not a file system."""
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidPath("a content path must not contain '..'")
    return segments


def unixfs_node(cid: CID, data: bytes) -> tuple[PBNode, UnixFSData | None]:
    """A dag-pb block and its UnixFS ``Data`` (None for a node without any)."""
    try:
        node = decode_node(data)
        return node, (UnixFSData.decode(node.data) if node.data is not None else None)
    except CodecError as exc:
        raise CodecError(f"{cid_to_str(cid)} is not valid dag-pb: {exc}") from None


async def resolve_path(root: CID, segments: Sequence[str], get: BlockGetter) -> ResolvedPath:
    """Follow ``segments`` from ``root``, reading each block on the way with ``get``."""
    cid, data = root, await get(root)
    walked = ResolvedPath(root, root, data, [root], [(root, data)])
    i = 0
    while i < len(segments):
        codec = cid.codec.name
        if codec == "dag-pb":
            cid = _directory_entry(cid, data, segments, i)
            i += 1
        elif codec == "dag-cbor":
            value: Any = _decode_cbor(cid, data)
            while i < len(segments) and not isinstance(value, CID):
                value = _step(value, segments, i)
                i += 1
                if not isinstance(value, CID):
                    walked.roots.append(cid)
            if not isinstance(value, CID):
                raise PathNotSupported(f"{_shown(segments, i - 1)} is data, not a link")
            cid = value
        else:
            raise PathNotFound(f"{_shown(segments, i)}: a {codec} block has no links")
        data = await get(cid)
        walked.roots.append(cid)
        walked.blocks.append((cid, data))
    walked.cid, walked.data = cid, data
    walked.name = segments[-1] if segments else None
    return walked


def _directory_entry(cid: CID, data: bytes, segments: Sequence[str], i: int) -> CID:
    """The CID segment ``i`` names in the UnixFS directory ``cid``."""
    node, meta = unixfs_node(cid, data)
    if meta is not None and meta.type == UnixFSType.HAMT_SHARD:
        raise PathNotSupported("HAMT-sharded directories are not supported yet")
    if meta is None or meta.type != UnixFSType.DIRECTORY:
        raise PathNotFound(f"{_shown(segments, i)}: not a directory")
    link = next((ln for ln in node.links if ln.name == segments[i]), None)
    if link is None:
        raise PathNotFound(f"no such file or directory: {_shown(segments, i)}")
    return link.cid


def _decode_cbor(cid: CID, data: bytes) -> Any:
    try:
        return decode_dagcbor(data)
    except CodecError as exc:
        raise CodecError(f"{cid_to_str(cid)}: {exc}") from None


def _step(value: Any, segments: Sequence[str], i: int) -> Any:
    """One path segment inside a decoded DAG-CBOR value (a map key or a list index)."""
    segment = segments[i]
    if isinstance(value, dict):
        if segment not in value:
            raise PathNotFound(f"no such field: {_shown(segments, i)}")
        return value[segment]
    if isinstance(value, list):
        if not _LIST_INDEX.fullmatch(segment) or int(segment) >= len(value):
            raise PathNotFound(f"no such list index: {_shown(segments, i)}")
        return value[int(segment)]
    raise PathNotSupported(f"cannot path into a {type(value).__name__}: {_shown(segments, i)}")


def _shown(segments: Sequence[str], upto: int) -> str:
    """The path up to and including segment ``upto``, for error messages."""
    return "/" + "/".join(segments[: upto + 1])
