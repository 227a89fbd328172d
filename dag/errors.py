"""Errors raised by the dag layer. Each message is one line a person can act on."""

from __future__ import annotations


class DagError(Exception):
    """Base class for every error of the dag layer."""


class CidError(DagError, ValueError):
    """A string or byte sequence is not a valid CID."""


class CodecError(DagError, ValueError):
    """Bytes are not valid (strict) DAG-CBOR, dag-pb or UnixFS, or a value cannot be encoded."""


class BlockNotFound(DagError, KeyError):
    """The blockstore does not hold the block."""

    def __init__(self, cid: object) -> None:
        super().__init__(f"block not found: {cid}")
        self.cid = cid

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class BlockCorrupt(DagError):
    """A block's bytes do not hash to its CID."""


class CarError(DagError, ValueError):
    """A CAR file is truncated, malformed or holds a block that does not match its CID."""


class StoreError(DagError):
    """A blockstore backend failed (I/O error, unreachable Kubo node, ...)."""
