"""A blockstore backed by a Kubo node's RPC API (``/api/v0/...``), over async httpx.

ipfshttpclient is not used: it is synchronous and refuses every current Kubo (docs/decisions.md).
The same calls are served by js-ipfs, whose ``block/put`` ignores ``cid-codec`` and wants the older
``format`` parameter; the store notices a wrong codec in the reply and switches once.
Reads are re-verified here, so a misbehaving node cannot hand us bytes that do not match.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import trio
from multiformats import CID

from .blockstore import Blockstore, Pin, VerifyReport
from .cids import Block, cid_to_str, identity_data, parse_cid
from .errors import BlockCorrupt, BlockNotFound, StoreError
from .gc import GcReport
from .pin_table import PinTable, check_reason, pins_from_rows

__all__ = ["KuboBlockstore"]

# Kubo: "block was not found locally (offline)"; js-ipfs offline: "ENOENT: no such file ..."
_NOT_FOUND = ("not found", "no such block", "could not find", "enoent")


class KuboBlockstore(Blockstore):
    def __init__(
        self,
        url: str,
        *,
        offline: bool = True,
        timeout: float = 60.0,
        client: Any = None,
        pins_db: str | os.PathLike[str] | None = None,
    ) -> None:
        """``pins_db``: where the reasons of our pins are kept (the node holds only the pins);
        in memory when None."""
        self.url = url.rstrip("/")
        self._pins = PinTable(":memory:" if pins_db is None else pins_db)
        self.offline = offline
        self._client: httpx.AsyncClient = client or httpx.AsyncClient(
            base_url=self.url, timeout=timeout
        )
        self._legacy_format = False

    async def _call(
        self, command: str, params: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        query = dict(params or {})
        if self.offline:
            query.setdefault("offline", "true")
        try:
            response = await self._client.post(f"/api/v0/{command}", params=query, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the IPFS node at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            message = _error_message(response)
            if any(marker in message.lower() for marker in _NOT_FOUND):
                raise BlockNotFound(query.get("arg", "?"))
            raise StoreError(f"IPFS node {command} failed ({response.status_code}): {message}")
        return response

    async def put(self, block: Block) -> None:
        if identity_data(block.cid) is not None:
            return  # the CID holds the block: nothing to send
        codec = block.cid.codec.name
        params = {"mhtype": block.cid.hashfun.name, "pin": "false"}
        params.update({"format": codec} if self._legacy_format else {"cid-codec": codec})
        files = {"data": ("block", block.data, "application/octet-stream")}
        reply = (await self._call("block/put", params, files=files)).json()
        stored = parse_cid(reply.get("Key", ""))
        if stored.digest != block.cid.digest:
            raise StoreError(f"IPFS node stored {stored} for {cid_to_str(block.cid)}")
        if stored.codec.name != codec and not self._legacy_format:
            self._legacy_format = True  # js-ipfs: cid-codec ignored; store again with format
            await self.put(block)

    async def get(self, cid: CID) -> bytes:
        inlined = identity_data(cid)
        if inlined is not None:
            return inlined
        response = await self._call("block/get", {"arg": cid_to_str(cid)})
        return Block.checked(cid, response.content).data

    async def has(self, cid: CID) -> bool:
        if identity_data(cid) is not None:
            return True
        try:
            await self._call("block/stat", {"arg": cid_to_str(cid)})
        except BlockNotFound:
            return False
        return True

    async def delete(self, cid: CID) -> None:
        """Remove a block; a missing one is fine, a pinned one raises StoreError (the node
        reports per-block errors inside a 200 reply)."""
        if identity_data(cid) is not None:
            return  # never stored
        try:
            response = await self._call("block/rm", {"arg": cid_to_str(cid)})
        except BlockNotFound:
            return
        for line in response.text.splitlines():
            error = json.loads(line).get("Error") if line.strip() else None
            if error and not any(marker in error.lower() for marker in _NOT_FOUND):
                raise StoreError(f"cannot remove {cid_to_str(cid)}: {error}")

    async def cids(self) -> AsyncIterator[CID]:
        response = await self._call("refs/local")
        for line in response.text.splitlines():
            if line.strip():
                entry = json.loads(line)
                if entry.get("Ref"):
                    yield parse_cid(entry["Ref"])

    async def _kubo_pin(self, cid: CID, recursive: bool) -> None:
        await self._call(
            "pin/add", {"arg": cid_to_str(cid), "recursive": "true" if recursive else "false"}
        )

    async def _kubo_unpin(self, cid: CID) -> None:
        try:
            await self._call("pin/rm", {"arg": cid_to_str(cid)})
        except StoreError as exc:
            if "not pinned" not in str(exc):
                raise

    async def pin(self, cid: CID, *, recursive: bool = True, reason: str = "local") -> None:
        check_reason(reason)
        key = cid_to_str(cid)
        await trio.to_thread.run_sync(self._pins.add, key, reason, recursive)
        await self._kubo_pin(cid, bool(await trio.to_thread.run_sync(self._pins.recursive, key)))

    async def unpin(self, cid: CID, *, reason: str | None = None) -> None:
        key = cid_to_str(cid)
        reasons = await trio.to_thread.run_sync(self._pins.reasons, key)
        if reason is not None and reason not in reasons:
            check_reason(reason)
            return  # a pin the node holds for other reasons (or without our bookkeeping)
        if await trio.to_thread.run_sync(self._pins.remove, key, reason):
            await self._kubo_unpin(cid)
        elif not await trio.to_thread.run_sync(self._pins.recursive, key):
            await self._kubo_unpin(cid)  # the reasons left pin it directly only
            await self._kubo_pin(cid, False)

    async def collect_garbage(
        self,
        *,
        keep: Iterable[CID] = (),
        keep_shallow: Iterable[CID] = (),
        grace_s: float = 600.0,
    ) -> GcReport:
        raise StoreError(
            f"the blocks are stored by the IPFS node at {self.url}, which collects its own"
            " garbage: run `ipfs repo gc` there (it keeps what is pinned)"
        )

    async def pins(self) -> list[Pin]:
        response = await self._call("pin/ls", {"type": "all", "stream": "false"})
        rows = await trio.to_thread.run_sync(self._pins.rows)
        known = {pin.cid: pin for pin in pins_from_rows(rows)}
        pins: list[Pin] = []
        for line in response.text.splitlines():  # one JSON object, or NDJSON when streamed
            if not line.strip():
                continue
            entry = json.loads(line)
            keys = entry.get("Keys", {entry.get("Cid", ""): {"Type": entry.get("Type", "")}})
            for key, info in keys.items():
                kind = info.get("Type", "")
                if key and kind in ("recursive", "direct"):
                    cid = parse_cid(key)
                    ours = known.get(cid)
                    reasons = ours.reasons if ours is not None else ("local",)
                    pins.append(Pin(cid, kind == "recursive", reasons))
        return pins

    async def verify(self, *, repair: bool = False) -> VerifyReport:
        """Fetch and re-hash every block the node lists (so the node's answers are checked)."""
        report = VerifyReport()
        async for cid in self.cids():
            report.checked += 1
            try:
                await self.get(cid)
            except (BlockCorrupt, BlockNotFound) as exc:
                report.bad.append(f"{cid_to_str(cid)}: {exc}")
                if repair:
                    await self.delete(cid)
        report.pins_checked, report.incomplete = await self.check_pins()
        return report

    async def aclose(self) -> None:
        await self._client.aclose()
        self._pins.close()


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("Message") or body.get("message") or body)[:200]
    return str(body)[:200]
