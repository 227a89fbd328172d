"""The public ``/ipfs/<cid>[/<path>]`` path gateway (https://specs.ipfs.tech/http-gateways/path-gateway/).

What it serves, from the node's own blockstore (a *non-recursive* gateway: what the node lacks
is 404, unless the daemon passes a ``fetch_missing`` hook that gets blocks from the network):

- UnixFS files and raw blocks, deserialized, streamed block by block with single ``Range``
  requests, ``ETag``/``If-None-Match``, immutable caching, a ``Content-Type`` from the asset
  index or sniffed from the first bytes, ``Content-Disposition`` with the known name;
- paths through UnixFS directories (not HAMT-sharded ones: 501) and through DAG-CBOR links
  (``/ipfs/<asset-record>/root`` is the asset's media), followed by :func:`dag.resolve_path`; a
  directory gets its ``index.html`` or a generated listing;
- the verifiable formats, by ``?format=`` or ``Accept``: ``raw`` (one block), ``car`` (CARv1 of
  the path's blocks and the whole DAG below it, in the order ``dag.iter_car`` writes), and
  ``dag-json``/``json``/``dag-cbor``/``cbor``;
- a DAG-CBOR block requested without a format is answered as the spec says: its bytes as
  ``application/vnd.ipld.dag-cbor``, or to a browser (``Accept: text/html``) a page showing it
  as DAG-JSON with its links clickable.

The routes are public, and the gateway shares its origin with the local UI (cookies, the CSRF
token on ``/settings``). So every ``/ipfs/`` response, whatever its status or type (files,
ranges, HEAD, 304, directory listings, CAR and raw exports, errors), carries
``Content-Security-Policy: sandbox`` and ``X-Content-Type-Options: nosniff``: a document served
here gets an opaque origin and runs no script, even when its ``Content-Type`` came from a
peer's record or a browser reads it as HTML. (A separate origin per CID, as Kubo's subdomain
gateway gives, would let sites on IPFS run their own script; it needs wildcard DNS for
``*.ipfs.<host>`` and is not what a localhost daemon has.) A ``Content-Type`` taken from the
asset index is used only if it passes :func:`provenance.is_media_type`, so no comma list or
quoted parameter from an older index reaches a response. Byte ranges and preconditions are pure
functions in :mod:`webui.gateway_ranges`.

For operators: every response is told to the ``observers`` as a :class:`GatewayEvent` once it
is complete (a streamed body when its stream ends or is aborted, with the bytes actually sent),
so the daemon can count requests and bytes, time them and rank popular works; an optional
:class:`~webui.client_limits.ClientLimits` answers a client over its rate with 429 and
``Retry-After``. While a response reads blocks, the store holds its root
(``node.store.hold(root)``), so a garbage collection running meanwhile keeps them.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import mimetypes
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

from multiformats import CID
from quart import Response, request
from quart.wrappers.response import DataBody, IterableBody
from quart_trio import QuartTrio

import dag
from dag.car import encode_header, encode_section
from dag.cids import multihash_key
from dag.dagpb import PBNode, UnixFSData, UnixFSType
from provenance import is_media_type

from .client_limits import ClientLimits, client_address
from .gateway_ranges import (
    RangeKind,
    if_none_match_hits,
    if_range_allows,
    parse_range,
)

if TYPE_CHECKING:
    from dag import Blockstore


class Node(Protocol):
    """What the gateway needs of the daemon's node (``daemon.core.node.Node`` fits; ``webui`` does
    not import ``daemon``)."""

    @property
    def store(self) -> Blockstore: ...

    async def size_of(self, cid: str | CID) -> int: ...

    async def asset(self, cid: str | CID) -> Any: ...

    def cat(
        self, cid: str | CID, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]: ...


__all__ = [
    "IMMUTABLE_CACHE",
    "USER_CONTENT_HEADERS",
    "FetchMissing",
    "GatewayError",
    "GatewayEvent",
    "GatewayObserver",
    "add_gateway_routes",
    "content_disposition",
    "requested_format",
    "sniff_content_type",
]

FetchMissing = Callable[[CID], Awaitable[bool]]
"""Make the block ``cid`` (and, if it likes, the DAG below it) present in ``node.store`` under
its own time and size bounds; return False if it could not. Called only for blocks the store
lacks; the gateway then reads the store again."""


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """One finished gateway response: the ``/ipfs/<root>`` asked for (as in the URL), the
    method, the status, the body bytes actually sent, seconds from the request to the end of
    the response, and the client it counted against
    (:func:`~webui.client_limits.client_address`)."""

    root: str
    method: str
    status: int
    bytes_sent: int
    seconds: float
    client: str


GatewayObserver = Callable[[GatewayEvent], None]
"""Told each :class:`GatewayEvent`; must not block (an exception is logged and ignored)."""

log = logging.getLogger("artdag.gateway")

IMMUTABLE_CACHE = "public, max-age=29030400, immutable"
USER_CONTENT_HEADERS = {  # on every /ipfs/ response: see the module docstring
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
}
FILENAME_MAX = 255  # characters of a Content-Disposition file name (?filename=, a record's)
PAGE_VERSION = "1"  # goes into generated pages' ETags, so a change to the pages busts caches
SNIFF_BYTES = 512

_FORMATS = {  # ?format= value -> Accept media type
    "raw": "application/vnd.ipld.raw",
    "car": "application/vnd.ipld.car",
    "tar": "application/x-tar",
    "dag-json": "application/vnd.ipld.dag-json",
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "json": "application/json",
    "cbor": "application/cbor",
    "ipns-record": "application/vnd.ipfs.ipns-record",
}
_FORMAT_OF_TYPE = {media: name for name, media in _FORMATS.items()}
_UNSUPPORTED_FORMATS = frozenset({"tar", "ipns-record"})
# RFC 9110 §12.4.2, with OWS (space, tab) only: \s also takes \x1c-\x1f, which float() refuses
_Q_VALUE = re.compile(r"[ \t]*(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)[ \t]*")
_CODEC_TYPES = {  # codecs served as they are when no format is asked for
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "dag-json": "application/vnd.ipld.dag-json",
    "json": "application/json",
    "cbor": "application/cbor",
}


class GatewayError(Exception):
    """An HTTP error the gateway answers with: a status and a one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


# -- pure helpers: formats, content types, file names ---------------------------------------


def requested_format(query_format: str | None, accept: str | None) -> tuple[str | None, bool]:
    """(format, from_accept): ``?format=`` wins over ``Accept``; among Accept's known IPLD
    types the highest q wins, earlier on ties. None: the default, deserialized response."""
    if query_format:
        chosen = query_format.strip().lower()
        if chosen not in _FORMATS:
            known = ", ".join(_FORMATS)
            raise GatewayError(400, f"unknown format {query_format!r}; known: {known}")
        return chosen, False
    best: tuple[float, int, str] | None = None
    for index, item in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        name = _FORMAT_OF_TYPE.get(media.lower())
        if name is None:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":  # a malformed weight: the type is not wanted
                q = float(value) if _Q_VALUE.fullmatch(value) else 0.0
            elif key.strip().lower() == "version" and name == "car" and value.strip() != "1":
                raise GatewayError(406, "only CAR version 1 is served")
        if q > 0 and (best is None or q > best[0]):
            best = (q, index, name)
    return (best[2], True) if best else (None, False)


def sniff_content_type(head: bytes, *, whole: bool) -> str:
    """A media type from a file's first bytes (``whole``: they are the whole file).

    Only passive types are sniffed: markup comes out as text/plain, so that content nobody
    labelled as HTML is never run as a page."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand in (b"avif", b"avis"):
            return "image/avif"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
        return riff.get(head[8:12], "application/octet-stream")
    if head.startswith(b"OggS"):
        return "video/ogg" if b"\x80theora" in head else "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF2):
        return "audio/mpeg"  # an ID3 tag or an MPEG audio layer III frame sync
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    text = _as_text(head, whole=whole)
    if text is None:
        return "application/octet-stream"
    if _looks_like_json(text, whole=whole):
        return "application/json"
    return "text/plain; charset=utf-8"


def _as_text(head: bytes, *, whole: bool) -> str | None:
    if not head:
        return None
    for cut in (0, 1, 2, 3) if not whole else (0,):  # a cut multi-byte character at the end
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    return None if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text) else text


def _looks_like_json(text: str, *, whole: bool) -> bool:
    if whole:
        try:
            return isinstance(json.loads(text), dict | list)
        except ValueError:
            return False
    return re.match(r'\s*(\{\s*("|\})|\[\s*[\[{"\d\]-])', text) is not None


def content_disposition(kind: str, filename: str | None) -> str:
    """``inline``/``attachment`` with an RFC 6266 file name: an ASCII fallback (others as ``_``)
    and, when that lost anything, the exact name as RFC 8187 ``filename*``."""
    if not filename:
        return kind
    filename = filename[:FILENAME_MAX]
    fallback = "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename.replace("/", "_")
    )
    value = f'{kind}; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")
    return value


# -- resolving a content path (dag.resolve_path) ------------------------------------------------

_PATH_STATUS: dict[type[dag.PathError], int] = {
    dag.InvalidPath: 400,
    dag.PathNotFound: 404,
    dag.PathNotSupported: 501,
}


def _unixfs(cid: CID, data: bytes) -> tuple[PBNode, UnixFSData | None]:
    try:
        return dag.unixfs_node(cid, data)
    except dag.CodecError as exc:
        raise GatewayError(500, str(exc)) from None


class _Gateway:
    def __init__(
        self, node: Node, max_range_bytes: int | None, fetch_missing: FetchMissing | None
    ) -> None:
        self.node = node
        self.max_range_bytes = max_range_bytes
        self.fetch_missing = fetch_missing

    async def block(self, cid: CID) -> bytes:
        """The block's bytes from the store, once through ``fetch_missing`` if it lacks it."""
        try:
            return await self.node.store.get(cid)
        except dag.BlockNotFound:
            if self.fetch_missing is None:
                raise GatewayError(404, f"block not found: {dag.cid_to_str(cid)}") from None
            if not await self.fetch_missing(cid):
                raise GatewayError(
                    504,
                    f"block {dag.cid_to_str(cid)} is not here and was not found on the network "
                    "in time (or this gateway's fetch budget is spent)",
                    {"Retry-After": "30"},
                ) from None
        try:
            return await self.node.store.get(cid)
        except dag.BlockNotFound:
            raise GatewayError(404, f"block not found: {dag.cid_to_str(cid)}") from None

    async def refetch(self, exc: dag.BlockNotFound) -> bool:
        """After a block went missing mid-stream: did ``fetch_missing`` bring it?"""
        if self.fetch_missing is None:
            return False
        try:
            cid = dag.parse_cid(str(exc.cid))
        except dag.CidError:
            return False
        return await self.fetch_missing(cid)

    async def resolve(self, cid_text: str, rest: str) -> dag.ResolvedPath:
        """The block ``/ipfs/<cid_text>/<rest>`` names; a path error as its HTTP status."""
        try:
            root = dag.parse_cid(cid_text)
        except dag.CidError as exc:
            raise GatewayError(400, str(exc)) from None
        try:
            return await dag.resolve_path(root, dag.split_path(rest), self.block)
        except dag.PathError as exc:
            raise GatewayError(_PATH_STATUS.get(type(exc), 404), str(exc)) from None
        except dag.CodecError as exc:  # a block on the path that does not decode
            raise GatewayError(500, str(exc)) from None

    # -- responses --------------------------------------------------------------------------
    async def serve(self, cid_text: str, rest: str) -> Response:
        fmt, from_accept = requested_format(
            request.args.get("format"), request.headers.get("Accept")
        )
        if fmt in _UNSUPPORTED_FORMATS:
            raise GatewayError(501, f"format {fmt} is not supported by this gateway")
        if request.headers.get("Service-Worker") == "script" and not request.path.endswith("/"):
            raise GatewayError(400, "a service worker may only be registered under /ipfs/<cid>/")
        walked = await self.resolve(cid_text, rest)
        headers = {
            "Cache-Control": IMMUTABLE_CACHE,
            "Vary": "Accept",
            "X-Ipfs-Path": quote(request.path, safe="/:@!$&'()*+,;=-._~"),
        }
        if fmt is not None and from_accept:
            query = [(k, v) for k, v in request.args.items(multi=True) if k != "format"]
            headers["Content-Location"] = (
                quote(request.path, safe="/:@!$&'()*+,;=-._~")
                + "?"
                + urlencode([*query, ("format", fmt)])
            )
        if fmt == "raw":
            return self.serve_raw(walked, headers)
        if fmt == "car":
            return self.serve_car(walked, headers)
        headers["X-Ipfs-Roots"] = ",".join(dag.cid_to_str(c) for c in walked.roots)
        if fmt is not None:
            return self.serve_codec(walked, fmt, headers)
        codec = walked.cid.codec.name
        if codec == "dag-pb":
            _node, meta = _unixfs(walked.cid, walked.data)
            if meta is not None and meta.type == UnixFSType.DIRECTORY:
                return await self.serve_directory(walked, rest, headers)
            if meta is None or meta.type not in (UnixFSType.FILE, UnixFSType.RAW):
                kind = meta.type.name.lower() if meta else "node without UnixFS data"
                raise GatewayError(501, f"cannot serve a UnixFS {kind}; try ?format=raw")
        if codec in ("dag-pb", "raw"):
            return await self.serve_file(walked, headers)
        if codec in _CODEC_TYPES:
            if codec in ("dag-cbor", "dag-json") and "text/html" in (
                request.headers.get("Accept") or ""
            ):
                return self.serve_block_page(walked, headers)
            return self.serve_bytes(
                walked.data, _CODEC_TYPES[codec], f'"{dag.cid_to_str(walked.cid)}"', headers
            )
        raise GatewayError(400, f"codec {codec} cannot be deserialized; try ?format=raw or car")

    def not_modified(self, etag: str, headers: dict[str, str]) -> Response | None:
        headers["ETag"] = etag
        if if_none_match_hits(request.headers.get("If-None-Match"), etag):
            response = Response(b"", status=304, headers=headers)
            response.headers.pop("Content-Length", None)
            return response
        return None

    async def serve_file(self, walked: dag.ResolvedPath, headers: dict[str, str]) -> Response:
        cid = walked.cid
        etag = f'"{dag.cid_to_str(cid)}"'
        if (cached := self.not_modified(etag, headers)) is not None:
            return cached
        try:
            size = await self.node.size_of(cid)
        except dag.CodecError as exc:
            raise GatewayError(500, str(exc)) from None
        asset = await self.node.asset(cid)
        name = request.args.get("filename") or (asset.name if asset else None) or walked.name
        # a stored type is used only if it is one (an index from before the strict grammar
        # may hold a peer's "text/plain; x=y, text/html"); otherwise the name or the bytes say
        content_type = asset.mime if asset and is_media_type(asset.mime) else None
        if content_type is None and name:  # a name the DAG's author or the link gave it
            content_type = mimetypes.guess_type(name)[0]
        if content_type is None:
            head = b"".join([p async for p in self.file_bytes(cid, 0, min(size, SNIFF_BYTES))])
            content_type = sniff_content_type(head, whole=size <= SNIFF_BYTES)
        headers["Content-Type"] = content_type
        headers["Accept-Ranges"] = "bytes"
        download = request.args.get("download", "").lower() == "true"
        if name or download:
            headers["Content-Disposition"] = content_disposition(
                "attachment" if download else "inline", name
            )
        wanted = request.headers.get("Range")
        if not if_range_allows(request.headers.get("If-Range"), etag):
            wanted = None
        ask = parse_range(wanted, size, max_bytes=self.max_range_bytes)
        if ask.kind is RangeKind.UNSATISFIABLE:
            raise GatewayError(
                416, f"range not satisfiable: {size} bytes", {"Content-Range": f"bytes */{size}"}
            )
        if ask.kind is RangeKind.PARTIAL:
            headers["Content-Range"] = ask.range.content_range(size)
        headers["Content-Length"] = str(ask.range.length)
        if request.method == "HEAD":
            return _head(ask.status, headers)
        body = self.file_bytes(cid, ask.range.start, ask.range.length)
        return _streamed(body, ask.status, headers)

    async def file_bytes(self, cid: CID, offset: int, length: int) -> AsyncIterator[bytes]:
        """The file's bytes [offset, offset+length), resumed after ``fetch_missing`` brings a
        block that went missing; otherwise the error ends the stream (the client sees a short
        body, as the spec expects once 200 is sent)."""
        sent = 0
        resumed_at = -1
        while sent < length:
            try:
                async for piece in self.node.cat(cid, offset + sent, length - sent):
                    sent += len(piece)
                    yield piece
                return
            except dag.BlockNotFound as exc:
                if resumed_at == sent or not await self.refetch(exc):
                    raise  # no hook, it failed, or it said yes but the block is still missing
                resumed_at = sent

    def serve_bytes(
        self,
        data: bytes,
        content_type: str,
        etag: str,
        headers: dict[str, str],
        disposition: str | None = None,
    ) -> Response:
        """A representation held in memory (a block, a page), with ranges and preconditions."""
        if (cached := self.not_modified(etag, headers)) is not None:
            return cached
        headers["Content-Type"] = content_type
        headers["Accept-Ranges"] = "bytes"
        if disposition:
            headers["Content-Disposition"] = disposition
        wanted = request.headers.get("Range")
        if not if_range_allows(request.headers.get("If-Range"), etag):
            wanted = None
        ask = parse_range(wanted, len(data), max_bytes=self.max_range_bytes)
        if ask.kind is RangeKind.UNSATISFIABLE:
            raise GatewayError(
                416,
                f"range not satisfiable: {len(data)} bytes",
                {"Content-Range": f"bytes */{len(data)}"},
            )
        if ask.kind is RangeKind.PARTIAL:
            headers["Content-Range"] = ask.range.content_range(len(data))
        headers["Content-Length"] = str(ask.range.length)
        if request.method == "HEAD":
            return _head(ask.status, headers)
        return Response(data[ask.range.start : ask.range.stop], status=ask.status, headers=headers)

    def serve_raw(self, walked: dag.ResolvedPath, headers: dict[str, str]) -> Response:
        text = dag.cid_to_str(walked.cid)
        return self.serve_bytes(
            walked.data,
            "application/vnd.ipld.raw",
            f'"{text}.raw"',
            headers,
            content_disposition("attachment", request.args.get("filename") or f"{text}.bin"),
        )

    def serve_car(self, walked: dag.ResolvedPath, headers: dict[str, str]) -> Response:
        version = request.args.get("car-version")
        if version not in (None, "1"):
            raise GatewayError(400, "only CAR version 1 is served (car-version=1)")
        scope = request.args.get("dag-scope", "all")
        if scope not in ("all", "entity", "block"):
            raise GatewayError(400, f"unknown dag-scope {scope!r}")
        text = dag.cid_to_str(walked.cid)
        path = "" if walked.root == walked.cid else f".{text}"
        scoped = ".block" if scope == "block" else ""
        etag = f'"{dag.cid_to_str(walked.root)}{path}{scoped}.car"'
        if (cached := self.not_modified(etag, headers)) is not None:
            return cached
        headers["Content-Type"] = "application/vnd.ipld.car; version=1"
        headers["Accept-Ranges"] = "none"
        headers["Content-Disposition"] = content_disposition(
            "attachment", request.args.get("filename") or f"{text}.car"
        )
        if request.method == "HEAD":
            return _head(200, headers)
        return _streamed(self.car_bytes(walked, scope), 200, headers)

    async def car_bytes(self, walked: dag.ResolvedPath, scope: str) -> AsyncIterator[bytes]:
        """CARv1 rooted at the path's root: the blocks read along the path, then the
        terminus's DAG depth first in link order, each block once (``dag.iter_car``'s order;
        ``dag-scope=block`` stops at the terminus, ``entity`` is served as ``all``)."""
        yield encode_header([walked.root])
        seen: set[bytes] = set()
        for cid, data in walked.blocks[:-1]:
            if multihash_key(cid) not in seen:
                seen.add(multihash_key(cid))
                yield encode_section(cid, data)
        if scope == "block":
            if multihash_key(walked.cid) not in seen:
                yield encode_section(walked.cid, walked.data)
            return

        async def get(cid: CID) -> bytes:
            return walked.data if cid == walked.cid else await self.block_or_end(cid)

        async for cid, data in dag.walk_dag(self.node.store, [walked.cid], get=get, seen=seen):
            yield encode_section(cid, data)

    async def block_or_end(self, cid: CID) -> bytes:
        try:
            return await self.block(cid)
        except GatewayError as exc:  # headers are sent: all that is left is to end the stream
            raise dag.BlockNotFound(dag.cid_to_str(cid)) from exc

    def serve_codec(self, walked: dag.ResolvedPath, fmt: str, headers: dict[str, str]) -> Response:
        cid, data = walked.cid, walked.data
        codec = cid.codec.name
        text = dag.cid_to_str(cid)
        if fmt in ("dag-json", "json") and codec in ("dag-json", "json"):
            body = data  # already JSON: served as it is
        elif fmt in ("dag-cbor", "cbor") and codec in ("dag-cbor", "cbor"):
            body = data
        else:
            value = _logical_value(cid, data)
            if fmt in ("dag-json", "json"):
                body = json.dumps(
                    dag.to_jsonable(value), separators=(",", ":"), ensure_ascii=False
                ).encode()
            else:
                body = dag.encode_dagcbor(value)
        extension = "json" if fmt in ("dag-json", "json") else "cbor"
        return self.serve_bytes(
            body,
            _FORMATS[fmt],
            f'"{text}.{fmt}"',
            headers,
            content_disposition(
                "attachment" if request.args.get("download", "").lower() == "true" else "inline",
                request.args.get("filename") or f"{text}.{extension}",
            ),
        )

    def serve_block_page(self, walked: dag.ResolvedPath, headers: dict[str, str]) -> Response:
        text = dag.cid_to_str(walked.cid)
        value = _logical_value(walked.cid, walked.data)
        pretty = html.escape(json.dumps(dag.to_jsonable(value), indent=2, ensure_ascii=False))
        linked = re.sub(
            r"(&quot;/&quot;: &quot;)([A-Za-z0-9]+)(&quot;)",
            lambda m: f'{m[1]}<a href="/ipfs/{m[2]}">{m[2]}</a>{m[3]}',
            pretty,
        )
        page = _page(
            f"/ipfs/{text}",
            f"<p>{walked.cid.codec.name} block {text} &middot; "
            f'<a href="?format=dag-json">DAG-JSON</a> &middot; '
            f'<a href="?format=dag-cbor">DAG-CBOR</a> &middot; '
            f'<a href="?format=car">CAR</a></p>\n<pre>{linked}</pre>',
        )
        etag = f'"DagIndex-{PAGE_VERSION}_CID-{text}"'
        return self.serve_bytes(page.encode(), "text/html; charset=utf-8", etag, headers)

    async def serve_directory(
        self, walked: dag.ResolvedPath, rest: str, headers: dict[str, str]
    ) -> Response:
        if not request.path.endswith("/"):
            # the query as sent, percent-encoded again where it is not plain URL characters
            query = quote(request.query_string, safe="/:@!$&'()*+,;=-._~?%")
            location = quote(request.path, safe="/:@!$&'()*+,;=-._~") + "/"
            location += f"?{query}" if query else ""
            return Response(b"", status=301, headers=headers | {"Location": location})
        node, _meta = _unixfs(walked.cid, walked.data)
        index = next((ln for ln in node.links if ln.name == "index.html"), None)
        if index is not None:
            data = await self.block(index.cid)
            inner = dag.ResolvedPath(walked.root, index.cid, data, [*walked.roots, index.cid])
            inner.name = "index.html"
            headers["X-Ipfs-Roots"] = ",".join(dag.cid_to_str(c) for c in inner.roots)
            return await self.serve_file(inner, headers)
        text = dag.cid_to_str(walked.cid)
        rows = "\n".join(
            f'<tr><td><a href="{html.escape(quote(ln.name, safe=""))}">{html.escape(ln.name)}'
            f'</a></td><td><a href="/ipfs/{dag.cid_to_str(ln.cid)}">'
            f"{dag.cid_to_str(ln.cid)}</a></td><td>{ln.tsize}</td></tr>"
            for ln in node.links
        )
        page = _page(
            html.escape(request.path),
            f"<p>directory {text}</p>\n<table><tr><th>name</th><th>CID</th>"
            f"<th>DAG size</th></tr>\n{rows}</table>",
        )
        etag = f'"DirIndex-{PAGE_VERSION}_CID-{text}"'
        return self.serve_bytes(page.encode(), "text/html; charset=utf-8", etag, headers)


def _decode_cbor(cid: CID, data: bytes) -> Any:
    try:
        return dag.decode_dagcbor(data)
    except dag.CodecError as exc:
        raise GatewayError(500, f"{dag.cid_to_str(cid)}: {exc}") from None


def _logical_value(cid: CID, data: bytes) -> Any:
    """The block in the IPLD data model (dag-pb in its logical form: Data, Links)."""
    codec = cid.codec.name
    if codec == "dag-cbor":
        return _decode_cbor(cid, data)
    if codec == "raw":
        return data
    if codec == "dag-pb":
        node, _meta = _unixfs(cid, data)
        links = [{"Hash": ln.cid, "Name": ln.name, "Tsize": ln.tsize} for ln in node.links]
        return {"Links": links} | ({"Data": node.data} if node.data is not None else {})
    if codec in ("json", "dag-json"):
        try:
            return json.loads(data)
        except ValueError:
            raise GatewayError(500, f"{dag.cid_to_str(cid)} is not valid JSON") from None
    raise GatewayError(400, f"codec {codec} cannot be converted; try ?format=raw")


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )


def _head(status: int, headers: dict[str, str]) -> Response:
    """Headers only; ``Content-Length`` (when known) still says what a GET would carry."""
    response = Response(b"", status=status, headers=headers)
    response.headers.pop("Content-Length", None)
    if "Content-Length" in headers:
        response.headers["Content-Length"] = headers["Content-Length"]
    return response


def _streamed(body: AsyncIterator[bytes], status: int, headers: dict[str, str]) -> Response:
    response = Response(body, status=status, headers=headers)
    response.timeout = None  # a large file on a slow link may take long; the client sets pace
    return response


def _error(exc: GatewayError) -> Response:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    body = b"" if request.method == "HEAD" else (str(exc) + "\n").encode()
    return Response(body, status=exc.status, headers=headers | exc.headers)


def add_gateway_routes(
    app: QuartTrio,
    node: Node,
    *,
    max_range_bytes: int | None = None,
    fetch_missing: FetchMissing | None = None,
    observers: Iterable[GatewayObserver] = (),
    limiter: ClientLimits | None = None,
    trust_forwarded_for: bool = False,
) -> None:
    """Mount ``GET``/``HEAD /ipfs/<cid>[/<path>]`` on ``app``, serving from ``node``.

    ``max_range_bytes`` caps what one ``Range`` reply carries (None: no cap); ``fetch_missing``
    is the hook that gets blocks the store lacks (None: they are 404). Each ``observers``
    callable is told every finished response; ``limiter`` (None: no limit) answers a client
    over its rate with 429. The client is the connection's peer address, or the first
    ``X-Forwarded-For`` hop when ``trust_forwarded_for`` (a reverse proxy on this host)."""
    if max_range_bytes is not None and max_range_bytes < 1:
        raise ValueError("max_range_bytes must be at least 1")
    gateway = _Gateway(node, max_range_bytes, fetch_missing)
    watchers = tuple(observers)

    def tell(event: GatewayEvent) -> None:
        for observer in watchers:
            try:
                observer(event)
            except Exception:
                log.exception("gateway observer %r failed on %s", observer, event)

    async def respond(cid: str, rest: str) -> Response:
        try:
            return await gateway.serve(cid, rest)
        except GatewayError as exc:
            return _error(exc)
        except dag.BlockNotFound as exc:  # a block gone between two reads
            return _error(GatewayError(404, str(exc)))
        except dag.StoreError as exc:  # the blockstore (a Kubo node, a disk) failed
            return _error(GatewayError(503, str(exc), {"Retry-After": "30"}))
        except dag.DagError as exc:  # a stored block that does not decode or verify
            return _error(GatewayError(500, str(exc)))

    async def ipfs_path(cid: str, rest: str = "") -> Response:
        started = time.monotonic()
        client = client_address(
            request.remote_addr,
            request.headers.get("X-Forwarded-For"),
            trust_forwarded_for=trust_forwarded_for,
        )
        method = request.method

        def finished(status: int, sent: int) -> None:
            tell(GatewayEvent(cid, method, status, sent, time.monotonic() - started, client))

        if limiter is not None and (wait := limiter.check(client, started)) > 0:
            seconds = limiter.retry_after(wait)
            response = _error(
                GatewayError(
                    429,
                    f"too many requests from {client}: at most {limiter.rate_per_s * 60:g} a "
                    f"minute (bursts of {limiter.burst}); retry in {seconds} s",
                    {"Retry-After": str(seconds)},
                )
            )
            response.headers.update(USER_CONTENT_HEADERS)
            finished(429, _body_length(response))
            return response
        with contextlib.ExitStack() as stack:
            with contextlib.suppress(dag.CidError):  # a bad CID is answered with 400 by serve
                stack.enter_context(node.store.hold(dag.parse_cid(cid)))
            response = await respond(cid, rest)
            response.headers.update(USER_CONTENT_HEADERS)  # every status, every type
            if isinstance(response.response, IterableBody):
                held = stack.pop_all()  # the stream keeps the hold until it ends
                response.response = IterableBody(
                    _ObservedBody(response.response.iter, held, response.status_code, finished)
                )
                return response
        finished(response.status_code, _body_length(response))
        return response

    for rule in ("/ipfs/<cid>", "/ipfs/<cid>/", "/ipfs/<cid>/<path:rest>"):
        app.add_url_rule(
            rule,
            "ipfs_gateway",
            ipfs_path,
            methods=["GET", "HEAD"],
            strict_slashes=False if rule.endswith("/") else None,
        )


def _body_length(response: Response) -> int:
    body = response.response
    return len(body.data) if isinstance(body, DataBody) else 0


class _ObservedBody:
    """A streamed body as it is sent, holding the store's hold until the stream ends.

    A piece counts as sent once the server asks for the next one, so an aborted stream reports
    only what went out. The hold is released and the observers told exactly once: at the end,
    on ``aclose`` (the server aborting the stream), or when the body is dropped unread (the
    client left before the headers were out)."""

    def __init__(
        self,
        source: AsyncIterator[bytes],
        held: contextlib.ExitStack,
        status: int,
        finished: Callable[[int, int], None],
    ) -> None:
        self._source = source
        self._held = held
        self._status = status
        self._finished = finished
        self._sent = 0
        self._pending = 0
        self._open = True

    def __aiter__(self) -> _ObservedBody:
        return self

    async def __anext__(self) -> bytes:
        self._sent += self._pending
        self._pending = 0
        try:
            piece = await self._source.__anext__()
        except BaseException:  # the end, an error ending the stream, or cancellation
            await self.aclose()
            raise
        self._pending = len(piece)
        return piece

    async def aclose(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:  # the source's own clean-up, before the hold goes
                await aclose()
        finally:
            self._release()

    def _release(self) -> None:
        self._held.close()
        self._finished(self._status, self._sent)

    def __del__(self) -> None:
        if self._open:
            self._open = False
            self._release()
