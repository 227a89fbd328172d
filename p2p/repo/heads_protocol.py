"""The heads exchange, ``/artdag/heads/1.0.0``: one request and one reply per stream.

Both are DAG-CBOR maps, each sent as an unsigned-varint length followed by that many bytes:

- request: ``{"heads": [{"repo": did, "seq": int}, ...]}``: the heads the asker knows;
- reply: ``{"heads": [signed head message, ...]}``: the answerer's heads that are newer than
  the asker's or unknown to it (each a ``head`` record signed by the repo's owner).

Frames over ``max_bytes`` are refused before reading their body. The caller sets the deadline.
The message format is checked here; signatures and chains are checked by the sync service.
"""

from __future__ import annotations

from typing import Any, Protocol

from dag import CodecError, decode_dagcbor, encode_dagcbor, encode_uvarint

from .chain import RepoError

__all__ = [
    "HEADS_PROTOCOL",
    "MAX_FRAME_BYTES",
    "MAX_HEADS",
    "decode_reply",
    "decode_request",
    "read_frame",
    "write_frame",
]

HEADS_PROTOCOL = "/artdag/heads/1.0.0"
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_HEADS = 10_000


class _Stream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


async def _read_exactly(stream: _Stream, n: int) -> bytes:
    chunks, missing = [], n
    while missing:
        chunk = await stream.read(missing)  # may return fewer bytes than asked
        if not chunk:
            raise RepoError(f"heads exchange: stream ended {missing} bytes short")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


async def read_frame(stream: _Stream, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    length, shift = 0, 0
    for _ in range(10):
        byte = (await _read_exactly(stream, 1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    else:
        raise RepoError("heads exchange: malformed length prefix")
    if length > max_bytes:
        raise RepoError(f"heads exchange: frame of {length} bytes exceeds {max_bytes}")
    try:
        return decode_dagcbor(await _read_exactly(stream, length))
    except CodecError as exc:
        raise RepoError(f"heads exchange: {exc}") from None


async def write_frame(stream: _Stream, value: Any, max_bytes: int = MAX_FRAME_BYTES) -> None:
    data = encode_dagcbor(value)
    if len(data) > max_bytes:
        raise RepoError(f"heads exchange: frame of {len(data)} bytes exceeds {max_bytes}")
    await stream.write(encode_uvarint(len(data)) + data)


def _heads_list(value: Any, what: str) -> list[Any]:
    if (
        not isinstance(value, dict)
        or set(value) != {"heads"}
        or not isinstance(value["heads"], list)
    ):
        raise RepoError(f"heads exchange: {what} must be a map {{'heads': [...]}}")
    if len(value["heads"]) > MAX_HEADS:
        raise RepoError(f"heads exchange: {what} lists more than {MAX_HEADS} heads")
    return value["heads"]


def decode_request(value: Any) -> dict[str, int]:
    """The asker's known heads as ``{repo did: seq}``."""
    known: dict[str, int] = {}
    for item in _heads_list(value, "request"):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("repo"), str)
            or type(item.get("seq")) is not int
        ):
            raise RepoError("heads exchange: request entries are {'repo': did, 'seq': int}")
        known[item["repo"]] = item["seq"]
    return known


def decode_reply(value: Any) -> list[dict[str, Any]]:
    """The head messages of a reply (each still to be verified)."""
    heads = _heads_list(value, "reply")
    if not all(isinstance(item, dict) for item in heads):
        raise RepoError("heads exchange: reply entries must be head records")
    return heads
