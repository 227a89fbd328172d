"""A hand-built remote fediverse server on 127.0.0.1 for the bridge's daemon tests.

A TEST DOUBLE, not an independent implementation (that is the Fedify peer in
``tests/interop/test_activitypub_fedify.py``): it exists to send what a real server would never
send (tampered bodies, wrong keys, stale dates) and to hold deliveries in flight while
the daemon is killed.
It serves actors with RSA keys, records every POST to their inboxes, checks the signature of
each with artdag's verifier against the key it fetches from the sender, and de-duplicates
activities by id as receivers must.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from activitypub_bridge import (
    AS_CONTEXT,
    SignatureRejected,
    generate_actor_key,
    load_public_key_pem,
    public_key_pem,
    sign_cavage,
    sign_rfc9421,
    verify_request,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    form: str  # "rfc9421", "cavage" or "none"
    error: str = ""

    @property
    def activity(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class RemoteServer:
    """One remote origin with actors; ``url`` is ``http://127.0.0.1:PORT``."""

    url: str = ""
    names: tuple[str, ...] = ("mallory",)
    shared_inbox: bool = True
    received: list[Received] = field(default_factory=list)
    processed: dict[str, int] = field(default_factory=dict)  # activity id -> times handled
    hold: threading.Event | None = None  # when set-able: inbox POSTs wait for it
    held: int = 0
    inbox_status: int = 202
    _keys: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for name in self.names:
            self._keys[name] = generate_actor_key()

    # -- documents ---------------------------------------------------------------------------
    def actor_id(self, name: str = "mallory") -> str:
        return f"{self.url}/users/{name}"

    def key_id(self, name: str = "mallory") -> str:
        return self.actor_id(name) + "#main-key"

    def actor(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
            "id": self.actor_id(name),
            "type": "Person",
            "preferredUsername": name,
            "inbox": self.actor_id(name) + "/inbox",
            "outbox": self.actor_id(name) + "/outbox",
            "publicKey": {
                "id": self.key_id(name),
                "owner": self.actor_id(name),
                "publicKeyPem": public_key_pem(self._keys[name].public_key()),
            },
        }
        if self.shared_inbox:
            doc["endpoints"] = {"sharedInbox": f"{self.url}/inbox"}
        return doc

    def rotate_key(self, name: str = "mallory") -> None:
        self._keys[name] = generate_actor_key()

    # -- sending to the daemon ----------------------------------------------------------------
    def signed_post(
        self,
        url: str,
        activity: dict[str, Any],
        *,
        name: str = "mallory",
        style: str = "cavage",
        key: Any = None,
        now: float | None = None,
        tamper: bool = False,
        sign: bool = True,
        body: bytes | None = None,
    ) -> httpx.Response:
        """POST ``activity`` (or exactly ``body``, when given) signed by ``name``."""
        body = json.dumps(activity).encode() if body is None else body
        headers = {"Content-Type": "application/activity+json"}
        if sign:
            signer = sign_rfc9421 if style == "rfc9421" else sign_cavage
            headers = signer(
                "POST", url, headers, body, self.key_id(name), key or self._keys[name], now=now
            )
        if tamper:
            body = body.replace(b'"Follow"', b'"Follow" ', 1) + b" "
        headers.pop("Host", None)
        return httpx.post(url, content=body, headers=headers, timeout=30)

    def follow(self, target_actor: str, name: str = "mallory") -> dict[str, Any]:
        return {
            "@context": AS_CONTEXT,
            "id": f"{self.actor_id(name)}/follows/{time.time_ns()}",
            "type": "Follow",
            "actor": self.actor_id(name),
            "object": target_actor,
        }

    # -- receiving ---------------------------------------------------------------------------
    def _record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        form = (
            "rfc9421"
            if "signature-input" in lowered
            else "cavage"
            if "signature" in lowered
            else "none"
        )
        verified, error = False, ""
        try:
            key_id = _key_id(lowered)
            actor = httpx.get(key_id.split("#")[0], timeout=10).json()
            pem = actor["publicKey"]["publicKeyPem"]
            key = load_public_key_pem(pem)
            verify_request(
                "POST", self.url + path, headers, body, lambda kid: key if kid == key_id else None
            )
            verified = True
        except (SignatureRejected, KeyError, ValueError, httpx.HTTPError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.received.append(Received(path, headers, body, verified, form, error))
            if verified:
                try:
                    activity_id = json.loads(body)["id"]
                except (ValueError, KeyError):
                    return
                self.processed[activity_id] = self.processed.get(activity_id, 0) + 1

    def of_type(self, kind: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if _type(r.body) == kind]

    def handled(self, kind: str) -> dict[str, int]:
        """Activity id -> times received verified, for activities of ``kind``."""
        with self._lock:
            return {
                r.activity["id"]: self.processed.get(r.activity["id"], 0)
                for r in self.received
                if r.verified and _type(r.body) == kind
            }


def _type(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("type")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _key_id(headers: dict[str, str]) -> str:
    if "signature-input" in headers:
        text = headers["signature-input"]
        return text.split('keyid="', 1)[1].split('"', 1)[0]
    return headers["signature"].split('keyId="', 1)[1].split('"', 1)[0]


def _handler(server: RemoteServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, document: Any = None) -> None:
            data = b"" if document is None else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/activity+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            for name in server.names:
                if path == f"/users/{name}":
                    return self._reply(200, server.actor(name))
            return self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k: v for k, v in self.headers.items()}
            server._record(self.path, headers, body)
            if server.hold is not None and not server.hold.is_set():
                with server._lock:
                    server.held += 1
                server.hold.wait(120)
            return self._reply(server.inbox_status)

    return Handler


@contextmanager
def remote_server(names: tuple[str, ...] = ("mallory",), **kwargs: Any) -> Iterator[RemoteServer]:
    server = RemoteServer(names=names, **kwargs)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        if server.hold is not None:
            server.hold.set()
        httpd.shutdown()
        httpd.server_close()
