"""Bitcoin block headers for checking OpenTimestamps attestations: where they come from.

:class:`HeaderSource` is what :class:`~daemon.core.ownership.anchors.AnchorService` needs (tests
hand in their own); :class:`EsploraHeaders` asks an Esplora-style block explorer
(``GET {base}/block-height/{h}``, ``GET {base}/block/{hash}/header``).
"""

from __future__ import annotations

from typing import Protocol

import httpx
import trio

from provenance.anchoring import AnchorError

__all__ = ["DEFAULT_HEADER_SOURCE", "EsploraHeaders", "HeaderSource"]

DEFAULT_HEADER_SOURCE = "https://blockstream.info/api"


class HeaderSource(Protocol):
    async def header(self, height: int) -> tuple[str, bytes]:
        """The block hash (explorer hex) and raw 80-byte header of the block at ``height``."""
        ...


class EsploraHeaders:
    """Block headers from an Esplora-style API (blockstream.info, mempool.space, ...)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient, timeout: float = 20) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.timeout = timeout

    async def _text(self, url: str) -> str:
        try:
            with trio.fail_after(self.timeout):
                response = await self.client.get(url)
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            raise AnchorError(f"header source {url}: {exc or 'timed out'}") from None
        if response.status_code != 200:
            raise AnchorError(f"header source {url}: HTTP {response.status_code}")
        return response.text.strip()

    async def header(self, height: int) -> tuple[str, bytes]:
        block_hash = await self._text(f"{self.base_url}/block-height/{height}")
        header_hex = await self._text(f"{self.base_url}/block/{block_hash}/header")
        try:
            return block_hash, bytes.fromhex(header_hex)
        except ValueError:
            raise AnchorError(f"header source: block {block_hash} header is not hex") from None
