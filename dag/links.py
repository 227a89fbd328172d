"""Which CIDs a block links to, by its codec (raw, dag-pb, dag-cbor).

Below every walker: :mod:`dag.walk`, :mod:`dag.gc`, :mod:`dag.completeness` and :mod:`dag.car`
follow links with it, and it imports no store, so the stores can use those walkers.
"""

from __future__ import annotations

from multiformats import CID

from .dagcbor import decode, iter_links
from .dagpb import decode_node
from .errors import CodecError

__all__ = ["links_of"]


def links_of(cid: CID, data: bytes) -> list[CID]:
    """The CIDs a block links to, in order; raw blocks have none."""
    codec = cid.codec.name
    if codec == "raw":
        return []
    if codec == "dag-pb":
        return [link.cid for link in decode_node(data).links]
    if codec == "dag-cbor":
        return list(iter_links(decode(data)))
    raise CodecError(f"cannot follow links of codec {codec}")
