"""Strict DAG-CBOR encoding and DAG-JSON display.

``dag-cbor`` already refuses non-canonical input (unsorted keys, over-long integers), floats that
are not 64-bit, NaN/Infinity and maps with non-string keys; this module turns its multi-line
messages into one-line :class:`CodecError`s and adds the DAG-JSON view that ``artdag dag get``
prints (no maintained Python DAG-JSON encoder handles CIDs and bytes as the spec says).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import dag_cbor
from multiformats import CID

from .cids import Block, cid_to_str
from .errors import CodecError

__all__ = ["decode", "encode", "iter_links", "record_block", "to_dag_json", "to_jsonable"]


def _one_line(exc: Exception) -> str:
    """dag-cbor explains errors over several lines; keep the reason and the byte offset."""
    lines = [ln.strip().lstrip("\\").strip() for ln in str(exc).splitlines()]
    where = next((ln for ln in lines if ln.startswith("At byte")), "")
    noise = ("At byte", "^", "Key at pos")
    reasons = [ln for ln in lines if ln and not ln.startswith(noise)]
    reasons = [ln for ln in reasons if not ln.endswith("further details below.")] or reasons
    if not reasons:
        return type(exc).__name__
    head, detail = reasons[0], reasons[-1]
    text = head if head == detail else f"{head.rstrip('.')}: {detail}"
    if "major type 0x7" in text and re.search(r"additional info 2[56]\b", text):
        text = "only 64-bit floats are allowed (found a 16- or 32-bit float)"
    offset = re.match(r"At byte #(\d+)", where)
    return f"{text} (at byte {offset.group(1)})" if offset else text


def encode(value: Any) -> bytes:
    """Encode an IPLD value as DAG-CBOR; raise CodecError naming what cannot be encoded."""
    try:
        return dag_cbor.encode(value)
    except (dag_cbor.encoding.CBOREncodingError, TypeError, ValueError) as exc:
        raise CodecError(f"cannot encode as DAG-CBOR: {_one_line(exc)}") from None


def decode(data: bytes) -> Any:
    """Decode strict DAG-CBOR; raise CodecError for anything non-canonical or malformed."""
    try:
        return dag_cbor.decode(data)
    except Exception as exc:  # the decoder raises several CBOR error types
        raise CodecError(f"invalid DAG-CBOR: {_one_line(exc)}") from None


def record_block(value: Any, *, hashfun: str = "sha2-256") -> Block:
    """The DAG-CBOR block of a record (CIDv1, codec dag-cbor)."""
    return Block.encode(encode(value), "dag-cbor", hashfun=hashfun)


def iter_links(value: Any):
    """Yield every CID inside a decoded IPLD value, depth first, in encoding order."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, CID):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed([item[k] for k in sorted(item, key=_key_order)]))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return (len(raw), raw)


def to_jsonable(value: Any) -> Any:
    """Map an IPLD value onto the DAG-JSON data model (CIDs as {"/": cid}, bytes as base64)."""
    if isinstance(value, CID):
        return {"/": cid_to_str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        text = base64.b64encode(bytes(value)).decode().rstrip("=")
        return {"/": {"bytes": text}}
    if isinstance(value, dict):  # DAG-JSON sorts keys by their bytes (DAG-CBOR: length first)
        return {k: to_jsonable(value[k]) for k in sorted(value, key=str.encode)}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def to_dag_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False)
