"""Content: adding files, reading them, blocks as IPLD data, CAR files, checking the store and
stored records (``artdag add``, ``cat``, ``dag get``, ``export``, ``import``, ``verify``,
``record verify``).

Bytes stream both ways: the local side reads the file or CAR piece by piece into the store,
the remote side sends the same pieces as the request body (``POST /api/v1/assets``,
``POST /api/v1/car``); ``cat`` and ``export`` stream the answer back (``GET /api/v1/cat/<cid>``,
``GET /api/v1/car/<cid>``), so neither side holds a whole file. An error before the first byte
is a reply with ``{"error"}``, so the remote side raises the local side's message.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import dag
from daemon.core.index import AssetRow
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services
from dag import cid_to_str, parse_cid

__all__ = [
    "AddOptions",
    "AddedFile",
    "CarImported",
    "ContentApi",
    "LocalContent",
    "RemoteContent",
    "StoreCheck",
    "VerifiedRecord",
]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class AddOptions:
    """What ``artdag add`` may say about a file: its asset record's fields and UnixFS layout
    (None: the node's ``[import]`` config)."""

    name: str
    tags: tuple[str, ...] = ()
    mime: str | None = None
    chunk_size: int | None = None
    cid_version: int | None = None
    raw_leaves: bool | None = None

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"name": self.name, "tag": list(self.tags)}
        for key in ("chunk_size", "cid_version"):
            if (value := getattr(self, key)) is not None:
                params[key] = value
        if self.raw_leaves is not None:
            params["raw_leaves"] = "true" if self.raw_leaves else "false"
        return params


@dataclass(frozen=True)
class AddedFile:
    asset: AssetRow
    existed: bool

    def to_json(self) -> dict[str, Any]:
        return self.asset.to_json() | {"existed": self.existed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AddedFile:
        return cls(AssetRow.from_json(data), bool(data.get("existed")))


@dataclass(frozen=True)
class CarImported:
    roots: list[str]
    blocks: int
    new_blocks: int

    def to_json(self) -> dict[str, Any]:
        return {"roots": self.roots, "blocks": self.blocks, "new_blocks": self.new_blocks}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CarImported:
        return cls(list(data["roots"]), int(data["blocks"]), int(data["new_blocks"]))


@dataclass(frozen=True)
class StoreCheck:
    """``artdag verify``'s report: ``report`` as :meth:`dag.VerifyReport.to_json` says it,
    ``incomplete`` each incomplete pin described in one line."""

    report: dict[str, Any]
    incomplete: list[str]

    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])

    def to_json(self) -> dict[str, Any]:
        return {"report": self.report, "incomplete": self.incomplete}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoreCheck:
        return cls(dict(data["report"]), list(data["incomplete"]))


@dataclass(frozen=True)
class VerifiedRecord:
    """A stored record whose schema and signature hold, as DAG-JSON."""

    cid: str
    type: str
    signer: str
    dag_json: str

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "type": self.type,
            "signer": self.signer,
            "dag_json": self.dag_json,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifiedRecord:
        return cls(data["cid"], data["type"], data["signer"], data["dag_json"])


class ContentApi(Protocol):
    async def add(
        self, source: BinaryIO, options: AddOptions, progress: Progress | None = None
    ) -> AddedFile:
        """Import the file as UnixFS and sign an asset record for it."""
        ...

    def cat(self, cid: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of a file (or a byte range of it)."""
        ...

    async def dag_get(self, cid: str) -> str:
        """A block decoded as DAG-JSON."""
        ...

    def export_car(self, cid: str) -> AsyncIterator[bytes]:
        """The whole DAG below ``cid`` as a CARv1 file."""
        ...

    async def import_car(self, chunks: AsyncIterable[bytes]) -> CarImported:
        """Import a CARv1 file, every block verified."""
        ...

    async def verify(self, repair: bool = False) -> StoreCheck:
        """Re-hash every block and walk every pin (``repair``: delete bad blocks)."""
        ...

    async def record(self, cid: str) -> VerifiedRecord:
        """A stored record, checked (schema and signature)."""
        ...


class LocalContent:
    def __init__(self, services: Services) -> None:
        self._node = services.node

    async def add(
        self, source: BinaryIO, options: AddOptions, progress: Progress | None = None
    ) -> AddedFile:
        node = self._node
        params = node.import_params(
            chunk_size=options.chunk_size,
            cid_version=options.cid_version,
            raw_leaves=options.raw_leaves,
        )
        added = await node.add_file(
            source,
            name=options.name,
            tags=list(options.tags),
            mime=options.mime,
            params=params,
            progress=progress,
        )
        return AddedFile(added.asset, added.existed)

    def cat(self, cid: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._node.cat(cid, offset, length)

    async def dag_get(self, cid: str) -> str:
        return dag.to_dag_json(await self._node.dag_get(cid))

    def export_car(self, cid: str) -> AsyncIterator[bytes]:
        return self._node.export_car(cid)

    async def import_car(self, chunks: AsyncIterable[bytes]) -> CarImported:
        result = await self._node.import_car(chunks)
        return CarImported([cid_to_str(r) for r in result.roots], result.blocks, result.new_blocks)

    async def verify(self, repair: bool = False) -> StoreCheck:
        report = await self._node.verify(repair=repair)
        return StoreCheck(report.to_json(), [pin.describe() for pin in report.incomplete])

    async def record(self, cid: str) -> VerifiedRecord:
        record = await self._node.record(cid)
        key = cid_to_str(parse_cid(cid))
        return VerifiedRecord(key, record["type"], record["signer"], dag.to_dag_json(record))


class RemoteContent:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def add(
        self, source: BinaryIO, options: AddOptions, progress: Progress | None = None
    ) -> AddedFile:
        async def body() -> AsyncIterator[bytes]:
            async for chunk in dag.file_chunks(source):
                if progress is not None:
                    progress(len(chunk))
                yield chunk

        headers = {"Content-Type": options.mime} if options.mime else {}
        reply = await self._caller.call(
            "POST",
            "/api/v1/assets",
            params=options.to_params(),
            content=body(),
            headers=headers,
            timeout=None,
        )
        return AddedFile.from_json(reply)

    def cat(self, cid: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        params: dict[str, int] = {"offset": offset}
        if length is not None:
            params["length"] = length
        return self._caller.bytes("GET", f"/api/v1/cat/{cid}", params=params)

    async def dag_get(self, cid: str) -> str:
        text: str = (await self._caller.call("GET", f"/api/v1/dag/{cid}"))["dag_json"]
        return text

    def export_car(self, cid: str) -> AsyncIterator[bytes]:
        return self._caller.bytes("GET", f"/api/v1/car/{cid}")

    async def import_car(self, chunks: AsyncIterable[bytes]) -> CarImported:
        reply = await self._caller.call("POST", "/api/v1/car", content=chunks, timeout=None)
        return CarImported.from_json(reply)

    async def verify(self, repair: bool = False) -> StoreCheck:
        params = {"repair": "true" if repair else "false"}
        reply = await self._caller.call("POST", "/api/v1/verify", params=params, timeout=None)
        return StoreCheck.from_json(reply)

    async def record(self, cid: str) -> VerifiedRecord:
        reply = await self._caller.call("GET", f"/api/v1/records/{cid}")
        return VerifiedRecord(
            reply["cid"], reply["record"]["type"], reply["record"]["signer"], reply["dag_json"]
        )
