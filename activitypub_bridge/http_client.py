"""The bridge's outbound HTTP: signed GETs of remote actors and signed POSTs to their inboxes.

A thin trio adapter over httpx. Every request goes through the SSRF policy of
:mod:`activitypub_bridge.ssrf`: the host is resolved once here, every address is checked, and
the connection is made to a checked address (the URL's host replaced by the address, ``Host``
and TLS SNI kept as the name), so a DNS answer that changes between check and connect cannot
reach a private address. Redirects are followed by hand (each hop checked again), responses are
read up to a size limit.

Signatures: each request is signed in the host's preferred form, RFC 9421 first by default,
and on any 4xx or 5xx answer signed once more in the other form ("double knocking", as Fedify
does). Not only 401: servers that cannot parse an RFC 9421 signature have been seen to answer
400, 403 or 500. The form that then worked is remembered per host, so the next request to that
host knocks once. Fetched documents are parsed within size, depth and integer limits
(:mod:`activitypub_bridge.json_limits`).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio
from cryptography.hazmat.primitives.asymmetric import rsa

from .delivery_schedule import Outcome
from .documents import ACTIVITY_JSON
from .http_signatures import sign_cavage, sign_rfc9421
from .json_limits import JsonRefused, parse_json
from .ssrf import (
    DomainError,
    FetchRefused,
    IPAddress,
    RefuseReason,
    check_fetch_url,
    normalise_domain,
)

__all__ = [
    "BridgeClient",
    "FetchError",
    "Signer",
    "SignatureStyle",
    "resolve_host",
]

SignatureStyle = Literal["rfc9421", "cavage"]
STYLES: tuple[SignatureStyle, ...] = ("rfc9421", "cavage")
_ACCEPT = f'{ACTIVITY_JSON}, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
_MAX_REDIRECTS = 3
_PER_ORIGIN = 16  # connections per remote origin
_MAX_POOLS = 512  # origins with a live pool; the least recently used idle ones are closed


@dataclass
class _Pool:
    client: httpx.AsyncClient
    active: int = 0  # requests in progress (a pool in use is never closed)


def _knock_refused(status: int) -> bool:
    """Whether an answer to a signed request calls for the other signature form: any client or
    server error (a redirect or a success does not)."""
    return status >= 400


class FetchError(Exception):
    """A remote document could not be fetched or is not a JSON object; one line why."""


@dataclass(frozen=True)
class Signer:
    """Who signs a request: the key id published in the actor document and its private key."""

    key_id: str
    private_key: rsa.RSAPrivateKey


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (through trio's resolver thread)."""
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _pinned(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by ``address``, the Host header and httpx extensions."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {}
    if parts.scheme == "https":
        extensions["sni_hostname"] = host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return pinned, {"Host": host_header}, extensions


class BridgeClient:
    """Signed, SSRF-guarded requests to remote ActivityPub servers.

    ``blocked(host)`` says whether a normalised host is blocked (config and stored blocks);
    ``allow_private`` admits plain http and loopback/private addresses (tests only).
    """

    def __init__(
        self,
        *,
        blocked: Callable[[str], bool] = lambda host: False,
        allow_private: bool = False,
        first_knock: SignatureStyle = "rfc9421",
        timeout: float = 20.0,
        max_response_bytes: int = 1 << 20,
        user_agent: str = "artdag",
        resolve: Callable[[str, int], Awaitable[list[IPAddress]]] = resolve_host,
    ) -> None:
        if first_knock not in STYLES:
            raise ValueError(f"first_knock must be one of {STYLES}, got {first_knock!r}")
        self.blocked = blocked
        self.allow_private = allow_private
        self.first_knock: SignatureStyle = first_knock
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent
        self._resolve = resolve
        self._styles: dict[str, SignatureStyle] = {}  # host -> the form it accepted
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._ssl = httpx.create_ssl_context()  # loaded once, shared by every pool
        # One small connection pool per remote origin: httpcore scans a whole pool on every
        # request, so one big pool over many hosts costs time quadratic in the fan-out.
        self._pools: OrderedDict[str, _Pool] = OrderedDict()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.client.aclose()

    async def _pool_for(self, key: str) -> _Pool:
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pool = _Pool(
            httpx.AsyncClient(
                verify=self._ssl,
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=_PER_ORIGIN, max_keepalive_connections=8),
            )
        )
        self._pools[key] = pool
        if len(self._pools) > _MAX_POOLS:
            idle = [k for k, p in self._pools.items() if p.active == 0 and k != key]
            for old_key in idle[: len(self._pools) - _MAX_POOLS]:
                await self._pools.pop(old_key).client.aclose()
        return pool

    async def __aenter__(self) -> BridgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the guard --------------------------------------------------------------------------
    async def _check(self, url: str) -> IPAddress:
        """The address to connect to for ``url``; :class:`FetchRefused` if not allowed.

        A blocked domain is refused before any DNS query is made for it."""
        try:
            parts = urlsplit(url)
            host = normalise_domain(parts.hostname or "")
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except (ValueError, DomainError) as exc:
            raise FetchRefused(RefuseReason.BAD_URL, f"{url[:200]!r}: {exc}") from None
        if self.blocked(host):
            raise FetchRefused(RefuseReason.BLOCKED_DOMAIN, f"{host} is blocked")
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                addresses = list(await self._resolve(host, port))
            except OSError as exc:
                raise FetchRefused(RefuseReason.UNRESOLVED, f"{host}: {exc}") from None
        check_fetch_url(url, resolve=lambda name: addresses, allow_private=self.allow_private)
        return addresses[0]

    def _styles_for(self, url: str) -> list[SignatureStyle]:
        host = urlsplit(url).netloc.lower()
        first = self._styles.get(host, self.first_knock)
        return [first, *(s for s in STYLES if s != first)]

    def _remember(self, url: str, style: SignatureStyle) -> None:
        self._styles[urlsplit(url).netloc.lower()] = style

    @staticmethod
    def _sign(
        style: SignatureStyle,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        signer: Signer,
    ) -> dict[str, str]:
        sign = sign_rfc9421 if style == "rfc9421" else sign_cavage
        return sign(method, url, dict(headers), body, signer.key_id, signer.private_key)

    @asynccontextmanager
    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        address: IPAddress | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """One request to ``url`` at ``address`` (checked now if not given); the response is
        streamed and closed on exit."""
        if address is None:
            address = await self._check(url)
        pinned, host_header, extensions = _pinned(url, address)
        pool = await self._pool_for(f"{urlsplit(url).scheme}://{host_header['Host']}@{address}")
        request_headers = {**headers, **host_header, "User-Agent": self.user_agent}
        request = pool.client.build_request(
            method, pinned, headers=request_headers, content=body, extensions=extensions
        )
        pool.active += 1
        try:
            response = await pool.client.send(request, stream=True)
            try:
                yield response
            finally:
                await response.aclose()
        finally:
            pool.active -= 1

    async def _read_limited(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise FetchError(f"response of {declared} bytes exceeds {self.max_response_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise FetchError(f"response exceeds {self.max_response_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- GET --------------------------------------------------------------------------------
    async def fetch_json(self, url: str, signer: Signer | None = None) -> dict[str, Any]:
        """GET an ActivityPub document (signed when ``signer`` is given), following up to three
        redirects, each checked; :class:`FetchError` or :class:`FetchRefused` on failure
        (a server that is down or too slow included)."""
        current = url.split("#", 1)[0]
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                async with self._get(current, signer) as response:
                    if response.status_code in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise FetchError(f"GET {current}: redirect without Location")
                        current = str(httpx.URL(current).join(location)).split("#", 1)[0]
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"GET {current}: HTTP {response.status_code}")
                    data = await self._read_limited(response)
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                raise FetchError(f"GET {current}: {type(exc).__name__}: {exc}"[:500]) from None
            try:
                document = parse_json(data, max_bytes=self.max_response_bytes)
            except JsonRefused as exc:
                raise FetchError(f"GET {current}: {exc}") from None
            if not isinstance(document, dict):
                raise FetchError(f"GET {current}: not a JSON object")
            return document
        raise FetchError(f"GET {url}: more than {_MAX_REDIRECTS} redirects")

    @asynccontextmanager
    async def _get(self, url: str, signer: Signer | None) -> AsyncIterator[httpx.Response]:
        """GET, signed in the host's preferred form and once more in the other on an error."""
        headers = {"Accept": _ACCEPT}
        if signer is None:
            async with self._exchange("GET", url, headers, None) as response:
                yield response
            return
        styles = self._styles_for(url)
        address = await self._check(url)  # once for both knocks
        for i, style in enumerate(styles):
            signed = self._sign(style, "GET", url, headers, None, signer)
            async with self._exchange("GET", url, signed, None, address) as response:
                refused = _knock_refused(response.status_code)
                if refused and i + 1 < len(styles):
                    continue
                if not refused:
                    self._remember(url, style)
                yield response
                return

    # -- POST -------------------------------------------------------------------------------
    async def post(self, inbox: str, body: bytes, signer: Signer) -> Outcome:
        """POST a signed activity to ``inbox``; every result (incl. transport errors and
        refusals by our own guard) becomes an :class:`Outcome` for the delivery queue."""
        now = time.time()
        try:
            address = await self._check(inbox)
        except FetchRefused as exc:
            return Outcome.refused_locally(str(exc))
        headers = {"Content-Type": ACTIVITY_JSON, "Accept": ACTIVITY_JSON}
        status: int | None = None
        retry_after: str | None = None
        try:
            for style in self._styles_for(inbox):
                signed = self._sign(style, "POST", inbox, headers, body, signer)
                async with self._exchange("POST", inbox, signed, body, address) as response:
                    status = response.status_code
                    retry_after = response.headers.get("Retry-After")
                    # Read (a little of) the body so the connection can be reused.
                    async for _ in response.aiter_bytes():
                        break
                if not _knock_refused(status):
                    if 200 <= status < 300:
                        self._remember(inbox, style)
                    break
        except FetchRefused as exc:
            return Outcome.refused_locally(str(exc))
        except (httpx.HTTPError, OSError) as exc:
            return Outcome.transport_error(f"{type(exc).__name__}: {exc}"[:500])
        assert status is not None
        return Outcome.from_http(status, retry_after, now=now)
