"""The node: what an artdag daemon can do, used alike by the CLI, the JSON API and the tests.

Following Kubo's core API and datasette's habit, no logic lives in a click command or an HTTP
route; both call these methods.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import trio

import dag
from daemon.config import Config
from daemon.core.index import AssetRow, Index
from daemon.home import init_home
from dag import CID, Blockstore, ImportParams, cid_to_str, parse_cid
from provenance import (
    Identity,
    RecordError,
    make_asset_record,
    sign_record,
    validate_record,
    verify_signed,
)

__all__ = ["AddedAsset", "LocalRepoPublisher", "Node", "RecordPublisher", "open_node"]

Progress = Callable[[int], None]

log = logging.getLogger("artdag.node")


@dataclass(frozen=True)
class AddedAsset:
    asset: AssetRow
    blocks: int
    existed: bool


def _open_store(config: Config) -> Blockstore:
    if config.store.backend == "kubo":
        return dag.KuboBlockstore(config.store.kubo_url, pins_db=config.home / "kubo-pins.db")
    return dag.FlatFsBlockstore(
        config.store_path,
        sync=config.store.sync,  # type: ignore[arg-type]
        hash_on_read=config.store.hash_on_read,
    )


def _check_asset_fields(
    name: str, tags: list[str], mime: str | None
) -> tuple[str, list[str], str | None]:
    """Normalise and validate what the asset record will say *before* any bytes are imported,
    so that a bad tag fails at once rather than after a long import.

    The MIME type keeps only ``type/subtype``, lowercased (parameters are dropped); one that
    does not then fit the strict grammar (:func:`provenance.is_media_type`) is a RecordError."""
    name = name.strip().replace("/", "_").replace("\x00", "")[:255] or "untitled"
    mime = (mime or "").split(";")[0].strip().lower() or mimetypes.guess_type(name)[0]
    tags = sorted(set(tags))
    make_asset_record(root=_PLACEHOLDER_ROOT, name=name, size=0, mime=mime, tags=tags or None)
    return name, tags, mime


_PLACEHOLDER_ROOT = parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")


class RecordPublisher(Protocol):
    """Where a new record of ours goes: appended to the creator repo, and, with the daemon's
    network running, gossiped and provided on the DHT (:class:`p2p.network.Network` is one)."""

    async def publish_record(self, record_cid: CID, *roots: CID) -> None: ...


class LocalRepoPublisher:
    """Without a running network (the CLI on its own) the repo chain still grows locally; the
    daemon gossips the new head when it next runs or notices it."""

    def __init__(self, store: Blockstore, repo_db: Path, identity: Identity) -> None:
        self._store, self._repo_db, self._identity = store, repo_db, identity

    async def publish_record(self, record_cid: CID, *roots: CID) -> None:
        from p2p.repo_lock import append_to_local_repo

        await append_to_local_repo(self._store, self._repo_db, self._identity, record_cid)


class Node:
    def __init__(
        self,
        config: Config,
        store: Blockstore,
        index: Index,
        identity: Identity,
        publisher: RecordPublisher | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.index = index
        self.identity = identity
        self._publisher = publisher or LocalRepoPublisher(store, config.p2p_db_path, identity)
        # One signed asset record per (bytes, name, tags) of ours, even for concurrent adds:
        # the index check, the signature, the index row and the repo append happen under it.
        self._asset_lock = trio.Lock()

    @property
    def did(self) -> str:
        return self.identity.did

    def import_params(
        self,
        *,
        chunk_size: int | None = None,
        cid_version: int | None = None,
        raw_leaves: bool | None = None,
    ) -> ImportParams:
        """The configured UnixFS layout, with per-call overrides. Raw leaves default to the
        config for CIDv1 and to off for CIDv0, as ``ipfs add`` does."""
        c = self.config.imports
        version = c.cid_version if cid_version is None else cid_version
        if raw_leaves is None:
            raw_leaves = c.raw_leaves if version == 1 else False
        return ImportParams(
            chunk_size=c.chunk_size if chunk_size is None else chunk_size,
            cid_version=version,
            raw_leaves=raw_leaves,
        )

    # -- assets ----------------------------------------------------------------------------
    async def add_file(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        name: str | None = None,
        tags: list[str] | None = None,
        mime: str | None = None,
        params: ImportParams | None = None,
        progress: Progress | None = None,
    ) -> AddedAsset:
        """Import a file as UnixFS and record a signed ``asset`` record for it."""
        if name is None and isinstance(source, str | os.PathLike):
            name = Path(source).name
        name, tags, mime = _check_asset_fields(name or "untitled", tags or [], mime)
        params = params or self.import_params()
        result = await dag.import_file(self.store, source, params, progress)
        return await self._record_asset(result, name, tags, mime)

    async def add_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        name: str,
        tags: list[str] | None = None,
        mime: str | None = None,
        params: ImportParams | None = None,
    ) -> AddedAsset:
        name, tags, mime = _check_asset_fields(name, tags or [], mime)
        params = params or self.import_params()
        result = await dag.import_chunks(self.store, chunks, params)
        return await self._record_asset(result, name, tags, mime)

    async def _record_asset(
        self, result: dag.ImportResult, name: str, tags: list[str], mime: str | None
    ) -> AddedAsset:
        return await self._sign_asset(
            result.cid, result.size, result.blocks, result.params.describe(), name, tags, mime
        )

    async def adopt(
        self, root: CID, *, name: str, mime: str | None = None, tags: list[str] | None = None
    ) -> AddedAsset:
        """Record a file already in the store (a render's output) as one of our assets."""
        name, tags, mime = _check_asset_fields(name, tags or [], mime)
        size = await dag.file_size(self.store, root)
        return await self._sign_asset(root, size, 0, None, name, tags, mime)

    async def _sign_asset(
        self,
        cid: CID,
        size: int,
        blocks: int,
        chunker: dict[str, Any] | None,
        name: str,
        tags: list[str],
        mime: str | None,
    ) -> AddedAsset:
        async with self._asset_lock, self._adding_across_processes():
            return await self._sign_asset_locked(cid, size, blocks, chunker, name, tags, mime)

    def _adding_across_processes(self) -> AbstractAsyncContextManager[None]:
        """An advisory lock beside the index, so ``artdag add`` run next to the daemon does not
        sign a second record for bytes the daemon is signing (the trio lock orders tasks of one
        process, this one processes)."""
        from p2p.repo_lock import repo_lock  # the same flock helper, on another file

        return repo_lock(self.config.index_path)

    async def _sign_asset_locked(
        self,
        cid: CID,
        size: int,
        blocks: int,
        chunker: dict[str, Any] | None,
        name: str,
        tags: list[str],
        mime: str | None,
    ) -> AddedAsset:
        root = cid_to_str(cid)
        existing = await trio.to_thread.run_sync(self.index.asset, root)
        # Only a record of our own counts: bytes first indexed from a peer's repo get our own
        # signed record (which then takes the index row), not the peer's row back as "existed".
        if (
            existing
            and existing.signer == self.did
            and existing.name == name
            and existing.tags == tags
        ):
            await self.store.pin(cid)
            record_cid = parse_cid(existing.record)
            if not await self._in_our_repo(record_cid):
                # An add killed between indexing its record and appending it to our repo:
                # append it now, or no peer would ever learn of the work.
                await self.announce(record_cid, cid)
            return AddedAsset(existing, blocks, existed=True)
        record = make_asset_record(
            root=cid, name=name, size=size, mime=mime, tags=tags or None, chunker=chunker
        )
        signed = sign_record(record, self.identity)
        block = dag.record_block(signed)
        await self.store.put(block)
        await self.store.flush()
        await self.store.pin(cid)
        await self.store.pin(block.cid)
        row = AssetRow(
            cid=root,
            name=name,
            size=size,
            mime=mime,
            tags=tags,
            record=cid_to_str(block.cid),
            signer=self.did,
            created=signed["created"],
        )
        await trio.to_thread.run_sync(self._index_asset, row)
        await self.announce(block.cid, cid)
        return AddedAsset(row, blocks + 1, existed=False)

    async def announce(self, record_cid: CID, *roots: CID) -> None:
        """Append a new record of ours to the creator repo and tell the network about it
        (through the node's :class:`RecordPublisher`)."""
        await self._publisher.publish_record(record_cid, *roots)

    async def index_remote_record(self, cid: CID, record: dict[str, Any]) -> bool:
        """Index a verified record that arrived from the network (another creator's repo);
        False if its schema is wrong (then nothing else should index it either).

        The schema is checked again here (repo sync has verified the signature too), so no
        caller can index a record whose fields the gateway would echo unchecked. An asset row
        is only added for a CID that has none: our own record, or the first one seen, stays."""
        key = cid_to_str(cid)
        try:
            validate_record(record)
        except RecordError as exc:
            log.warning("not indexing record %s: %s", key, exc)
            return False
        kind = record.get("type", "")
        signer = record.get("signer", "")
        created = record.get("created", "")
        subject = record.get("root") or record.get("output") or record.get("subject")
        subject_key = cid_to_str(subject) if subject is not None else ""

        def write() -> None:
            self.index.put_record(key, kind, signer, created, subject_key)
            if kind == "asset" and subject is not None:
                self.index.add_asset_if_absent(
                    AssetRow(
                        cid=subject_key,
                        name=record["name"],
                        size=record["size"],
                        mime=record.get("mime"),
                        tags=list(record.get("tags") or []),
                        record=key,
                        signer=signer,
                        created=created,
                    )
                )

        await trio.to_thread.run_sync(write)
        return True

    def _index_asset(self, row: AssetRow) -> None:
        self.index.put_own_asset(row)

    async def _in_our_repo(self, record: CID) -> bool:
        from p2p.repo_lock import in_local_repo

        return await trio.to_thread.run_sync(
            in_local_repo, self.config.p2p_db_path, self.did, record
        )

    async def assets(
        self, tag: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AssetRow]:
        return await trio.to_thread.run_sync(lambda: self.index.assets(tag, limit, offset))

    async def asset(self, cid: str | CID) -> AssetRow | None:
        key = cid_to_str(parse_cid(cid))
        return await trio.to_thread.run_sync(self.index.asset, key)

    async def record(self, cid: str | CID) -> dict[str, Any]:
        """A stored record, verified (schema and signature) before it is returned."""
        parsed = parse_cid(cid)
        if parsed.codec.name != "dag-cbor":
            raise RecordError(f"{cid_to_str(parsed)} is {parsed.codec.name}, not a record")
        value = dag.decode_dagcbor(await self.store.get(parsed))
        if not isinstance(value, dict):
            raise RecordError(f"{cid_to_str(parsed)} is not a record (not a map)")
        verify_signed(value)
        return value

    # -- blocks and files -------------------------------------------------------------------
    async def size_of(self, cid: str | CID) -> int:
        return await dag.file_size(self.store, parse_cid(cid))

    def cat(
        self, cid: str | CID, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        return dag.read_file(self.store, parse_cid(cid), offset, length)

    async def dag_get(self, cid: str | CID) -> Any:
        """The decoded block: DAG-CBOR as IPLD data, dag-pb as {Data, Links} as Kubo shows it."""
        parsed = parse_cid(cid)
        data = await self.store.get(parsed)
        codec = parsed.codec.name
        if codec == "dag-cbor":
            return dag.decode_dagcbor(data)
        if codec == "dag-pb":
            from dag.dagpb import decode_node

            node = decode_node(data)
            return {
                "Data": node.data if node.data is not None else b"",
                "Links": [
                    {"Hash": ln.cid, "Name": ln.name, "Tsize": ln.tsize} for ln in node.links
                ],
            }
        if codec == "raw":
            return data
        raise dag.CodecError(f"cannot decode codec {codec}")

    def export_car(self, cid: str | CID) -> AsyncIterator[bytes]:
        return dag.iter_car(self.store, [parse_cid(cid)])

    async def import_car(self, chunks: AsyncIterable[bytes]) -> dag.CarImportResult:
        return await dag.import_car(self.store, chunks)

    async def verify(self, *, repair: bool = False) -> dag.VerifyReport:
        return await self.store.verify(repair=repair)  # type: ignore[call-arg]

    async def status(self) -> dict[str, Any]:
        from importlib.metadata import version

        count = await trio.to_thread.run_sync(self.index.count_assets)
        return {
            "status": "ok",
            "did": self.did,
            "version": version("artdag"),
            "store": self.config.store.backend,
            "assets": count,
        }

    async def aclose(self) -> None:
        await self.store.aclose()
        self.index.close()


@asynccontextmanager
async def open_node(
    config: Config,
    make_publisher: Callable[[Blockstore, Identity], Awaitable[RecordPublisher]] | None = None,
) -> AsyncIterator[Node]:
    """Open (initialising on first use) the node described by ``config``. ``make_publisher``
    makes its record publisher from its store and identity (default: the local repo only)."""
    await trio.to_thread.run_sync(init_home, config)
    identity = Identity.load(config.identity_path)
    store = _open_store(config)
    index = await trio.to_thread.run_sync(Index, config.index_path)
    publisher = await make_publisher(store, identity) if make_publisher else None
    node = Node(config, store, index, identity, publisher)
    try:
        yield node
    finally:
        with trio.CancelScope(shield=True):
            await node.aclose()
