"""The bridge's outbound client: SSRF refusals, blocks, redirects, size limits, double knock.

Against real HTTP servers on 127.0.0.1 (``http.server`` in a thread, standing in for remote
fediverse servers whose behaviour each test chooses).
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from activitypub_bridge import (
    BridgeClient,
    FetchError,
    FetchRefused,
    RefuseReason,
    Signer,
    generate_actor_key,
)

SIGNER = Signer("https://art.example/users/alice#main-key", generate_actor_key())

Handler = Callable[[BaseHTTPRequestHandler, str], tuple[int, dict[str, str], bytes]]


@contextmanager
def server(handle: Handler) -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            if length:
                self.rfile.read(length)
            seen.append({k.lower(): v for k, v in self.headers.items()} | {":path": self.path})
            status, headers, body = handle(self, self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _do

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def actor_doc(_: BaseHTTPRequestHandler, path: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/activity+json"}, json.dumps({"id": path}).encode()


async def test_loopback_and_plain_http_are_refused_unless_allowed() -> None:
    with server(actor_doc) as (url, seen):
        async with BridgeClient() as client:
            with pytest.raises(FetchRefused) as info:
                await client.fetch_json(url + "/users/bob")
            assert info.value.reason in (RefuseReason.SCHEME, RefuseReason.NON_PUBLIC_ADDRESS)
            outcome = await client.post(url + "/inbox", b"{}", SIGNER)
            assert outcome.refused and outcome.status is None
        async with BridgeClient(allow_private=True) as client:
            assert (await client.fetch_json(url + "/users/bob", SIGNER))["id"] == "/users/bob"
        assert len(seen) == 1  # the refused requests never reached the server


async def test_a_name_resolving_to_loopback_is_refused_and_blocks_skip_dns() -> None:
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    async with BridgeClient(
        resolve=resolve, blocked=lambda host: host.endswith("blocked.example")
    ) as client:
        with pytest.raises(FetchRefused) as info:
            await client.fetch_json("https://rebind.example/users/x")
        assert info.value.reason is RefuseReason.NON_PUBLIC_ADDRESS
        with pytest.raises(FetchRefused) as info:
            await client.fetch_json("https://a.blocked.example/users/x")
        assert info.value.reason is RefuseReason.BLOCKED_DOMAIN
        outcome = await client.post("https://blocked.example/inbox", b"{}", SIGNER)
        assert outcome.refused and "blocked" in outcome.error
    assert lookups == ["rebind.example"]  # no DNS query for a blocked domain


async def test_redirects_are_followed_three_times_at_most_and_size_is_capped() -> None:
    def handle(_: BaseHTTPRequestHandler, path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            return 302, {"Location": f"/hop/{n + 1}" if n < 10 else "/users/end"}, b""
        if path == "/big":
            return 200, {"Content-Type": "application/json"}, b'"' + b"x" * 5000 + b'"'
        if path == "/list":
            return 200, {"Content-Type": "application/json"}, b"[1, 2]"
        return actor_doc(_, path)

    with server(handle) as (url, _):
        async with BridgeClient(allow_private=True, max_response_bytes=4096) as client:
            assert (await client.fetch_json(url + "/hop/8"))["id"] == "/users/end"
            with pytest.raises(FetchError, match="redirects"):
                await client.fetch_json(url + "/hop/0")
            with pytest.raises(FetchError, match="exceeds"):
                await client.fetch_json(url + "/big")
            with pytest.raises(FetchError, match="not a JSON object"):
                await client.fetch_json(url + "/list")


async def test_double_knock_falls_back_to_cavage_and_remembers_it() -> None:
    """A server that only knows draft-cavage answers RFC 9421 with 401."""

    def handle(h: BaseHTTPRequestHandler, path: str) -> tuple[int, dict[str, str], bytes]:
        return (401 if h.headers.get("Signature-Input") else 202), {}, b""

    with server(handle) as (url, seen):
        async with BridgeClient(allow_private=True, first_knock="rfc9421") as client:
            first = await client.post(url + "/inbox", b"{}", SIGNER)
            assert first.status == 202
            assert ["signature-input" in r for r in seen] == [True, False]
            second = await client.post(url + "/inbox", b"{}", SIGNER)
            assert second.status == 202
            assert ["signature-input" in r for r in seen] == [True, False, False]
            assert seen[-1]["host"] == url.removeprefix("http://")


async def test_a_server_refusing_both_forms_gets_401_outcome() -> None:
    with server(lambda h, p: (401, {}, b"")) as (url, seen):
        async with BridgeClient(allow_private=True) as client:
            outcome = await client.post(url + "/inbox", b"{}", SIGNER)
        assert outcome.status == 401 and len(seen) == 2


@pytest.mark.parametrize("status", [400, 403, 500])
async def test_any_error_to_rfc9421_falls_back_to_cavage_remembered_per_host(status: int) -> None:
    """Servers that cannot parse an RFC 9421 signature answer 400, 403 or 500, not only 401:
    the key must still be fetchable and deliveries must still arrive, and the host is then
    asked in draft-cavage first."""

    def handle(h: BaseHTTPRequestHandler, path: str) -> tuple[int, dict[str, str], bytes]:
        if h.headers.get("Signature-Input"):
            return status, {"Content-Type": "text/plain"}, b"cannot parse that signature"
        if h.command == "POST":
            return 202, {}, b""
        return actor_doc(h, path)

    def forms(seen: list[dict[str, str]]) -> list[str]:
        return ["rfc9421" if "signature-input" in r else "cavage" for r in seen]

    with server(handle) as (url, seen), server(handle) as (other_url, other_seen):
        async with BridgeClient(allow_private=True, first_knock="rfc9421") as client:
            key = await client.fetch_json(url + "/users/bob#main-key", SIGNER)
            assert key["id"] == "/users/bob"
            assert forms(seen) == ["rfc9421", "cavage"]
            # Remembered for the host, for GETs and POSTs alike: one knock each.
            assert (await client.fetch_json(url + "/users/carol", SIGNER))["id"] == "/users/carol"
            assert (await client.post(url + "/inbox", b"{}", SIGNER)).status == 202
            assert forms(seen) == ["rfc9421", "cavage", "cavage", "cavage"]
            # Another host has not been asked yet: it gets RFC 9421 first.
            delivered = await client.post(other_url + "/inbox", b"{}", SIGNER)
            assert delivered.status == 202 and not delivered.refused
            assert forms(other_seen) == ["rfc9421", "cavage"]


async def test_an_error_to_both_forms_is_reported_and_nothing_is_remembered() -> None:
    with server(lambda h, p: (500, {}, b"")) as (url, seen):
        async with BridgeClient(allow_private=True, first_knock="rfc9421") as client:
            with pytest.raises(FetchError, match="HTTP 500"):
                await client.fetch_json(url + "/users/bob", SIGNER)
            outcome = await client.post(url + "/inbox", b"{}", SIGNER)
        assert outcome.status == 500
        assert ["signature-input" in r for r in seen] == [True, False, True, False]


async def test_fetched_documents_beyond_json_limits_are_a_fetch_error() -> None:
    def handle(_: BaseHTTPRequestHandler, path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/deep":
            return 200, {}, b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}"
        return 200, {}, b'{"id": ' + b"7" * 5000 + b"}"

    with server(handle) as (url, _):
        async with BridgeClient(allow_private=True) as client:
            with pytest.raises(FetchError, match="nested deeper"):
                await client.fetch_json(url + "/deep")
            with pytest.raises(FetchError, match="digits"):
                await client.fetch_json(url + "/huge")


async def test_a_server_that_is_down_is_a_fetch_error() -> None:
    with server(actor_doc) as (url, _):
        pass  # the port is closed again
    async with BridgeClient(allow_private=True) as client:
        with pytest.raises(FetchError, match="ConnectError"):
            await client.fetch_json(url + "/users/bob", SIGNER)
