"""Serving one gateway request (:class:`GatewayServer`): resolving ``/ipfs/<cid>/<path>``
through :func:`dag.resolve_path`, then a file (ranges, preconditions, a sniffed type), a
directory, a block as DAG-JSON/DAG-CBOR or a page, a raw block or a CAR. :mod:`webui.gateway`
states what is served and why, mounts the routes and re-exports the public names.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from multiformats import CID
from quart import Response, request

import dag
from dag import Blockstore
from dag.car import encode_header, encode_section
from dag.cids import multihash_key
from dag.dagpb import PBNode, UnixFSData, UnixFSType
from provenance import is_media_type

from .gateway_formats import (
    CODEC_TYPES,
    FORMATS,
    SNIFF_BYTES,
    UNSUPPORTED_FORMATS,
    GatewayError,
    content_disposition,
    requested_format,
    sniff_content_type,
)
from .gateway_ranges import (
    RangeKind,
    if_none_match_hits,
    if_range_allows,
    parse_range,
)

__all__ = ["IMMUTABLE_CACHE", "PAGE_VERSION", "FetchMissing", "GatewayServer", "Node"]


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


FetchMissing = Callable[[CID], Awaitable[bool]]
"""Make the block ``cid`` (and, if it likes, the DAG below it) present in ``node.store`` under
its own time and size bounds; return False if it could not. Called only for blocks the store
lacks; the gateway then reads the store again."""

IMMUTABLE_CACHE = "public, max-age=29030400, immutable"
PAGE_VERSION = "1"  # goes into generated pages' ETags, so a change to the pages busts caches


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


class GatewayServer:
    """Answers one ``/ipfs/<cid>/<rest>`` request from ``node``'s store (inside a Quart request
    context): resolves the path, picks the response for the format and codec, and streams
    files, CARs and blocks. Errors are raised as :class:`GatewayError`."""

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
        if fmt in UNSUPPORTED_FORMATS:
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
        if codec in CODEC_TYPES:
            if codec in ("dag-cbor", "dag-json") and "text/html" in (
                request.headers.get("Accept") or ""
            ):
                return self.serve_block_page(walked, headers)
            return self.serve_bytes(
                walked.data, CODEC_TYPES[codec], f'"{dag.cid_to_str(walked.cid)}"', headers
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
            FORMATS[fmt],
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
