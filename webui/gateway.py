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

This module mounts the routes and tells the observers; serving a request is
:mod:`webui.gateway_server`, the pure format and content-type helpers are
:mod:`webui.gateway_formats`; their public names are re-exported here.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from quart import Response, request
from quart.wrappers.response import DataBody, IterableBody
from quart_trio import QuartTrio

import dag

from .client_limits import ClientLimits, client_address
from .gateway_formats import (
    GatewayError,
    content_disposition,
    requested_format,
    sniff_content_type,
)
from .gateway_server import IMMUTABLE_CACHE, FetchMissing, GatewayServer, Node

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

USER_CONTENT_HEADERS = {  # on every /ipfs/ response: see the module docstring
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
}


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
    gateway = GatewayServer(node, max_range_bytes, fetch_missing)
    watchers = tuple(observers)

    async def ipfs_path(cid: str, rest: str = "") -> Response:
        started = time.monotonic()
        client = client_address(
            request.remote_addr,
            request.headers.get("X-Forwarded-For"),
            trust_forwarded_for=trust_forwarded_for,
        )
        method = request.method

        def finished(status: int, sent: int) -> None:
            event = GatewayEvent(cid, method, status, sent, time.monotonic() - started, client)
            _tell(watchers, event)

        if limiter is not None and (wait := limiter.check(client, started)) > 0:
            response = _too_many(limiter, client, wait)
            finished(429, _body_length(response))
            return response
        return await _serve_holding(gateway, node, cid, rest, finished)

    for rule in ("/ipfs/<cid>", "/ipfs/<cid>/", "/ipfs/<cid>/<path:rest>"):
        app.add_url_rule(
            rule,
            "ipfs_gateway",
            ipfs_path,
            methods=["GET", "HEAD"],
            strict_slashes=False if rule.endswith("/") else None,
        )


def _tell(watchers: tuple[GatewayObserver, ...], event: GatewayEvent) -> None:
    for observer in watchers:
        try:
            observer(event)
        except Exception:
            log.exception("gateway observer %r failed on %s", observer, event)


def _too_many(limiter: ClientLimits, client: str, wait: float) -> Response:
    """The 429 for a client over its rate, with ``Retry-After``."""
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
    return response


async def _respond(gateway: GatewayServer, cid: str, rest: str) -> Response:
    """The gateway's response, or its error as one."""
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


async def _serve_holding(
    gateway: GatewayServer,
    node: Node,
    cid: str,
    rest: str,
    finished: Callable[[int, int], None],
) -> Response:
    """Serve while the store holds ``cid`` (a streamed body keeps the hold until it ends), with
    the user-content headers on every response; ``finished`` is told once it is complete."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(dag.CidError):  # a bad CID is answered with 400 by serve
            stack.enter_context(node.store.hold(dag.parse_cid(cid)))
        response = await _respond(gateway, cid, rest)
        response.headers.update(USER_CONTENT_HEADERS)  # every status, every type
        if isinstance(response.response, IterableBody):
            held = stack.pop_all()  # the stream keeps the hold until it ends
            response.response = IterableBody(
                _ObservedBody(response.response.iter, held, response.status_code, finished)
            )
            return response
    finished(response.status_code, _body_length(response))
    return response


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
