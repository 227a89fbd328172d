"""Real ``artdag daemon`` processes on 127.0.0.1 for multi-node tests and benchmarks.

Each daemon gets its own home, an HTTP port and a libp2p port picked by the OS, mDNS off (the
tests stay on loopback) and the DHT on. ``start()`` returns once the daemon has printed that
it is ready (it writes ``daemon.json`` only then), so nothing here sleeps to wait for start-up.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ARTDAG = str(Path(sys.executable).with_name("artdag"))


class DaemonProcess:
    def __init__(
        self,
        home: Path,
        *,
        bootstrap: list[str] | None = None,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.home = Path(home)
        self.bootstrap = bootstrap or []
        self.args = args  # extra `artdag daemon` options
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._log_lines: list[str] = []

    # -- lifetime -------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "ARTDAG_HOME": str(self.home),
                "ARTDAG_PORT": "0",
                "ARTDAG_LISTEN": "/ip4/127.0.0.1/tcp/0",
                "ARTDAG_MDNS": "false",
                "ARTDAG_SYNC": "batch",
                "ARTDAG_BOOTSTRAP": ",".join(self.bootstrap),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> DaemonProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [ARTDAG, "daemon", *self.args],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        ready = threading.Event()
        assert self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stderr, ready), daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError(f"daemon in {self.home} did not start:\n{self.log()}")
        self.info = json.loads((self.home / "daemon.json").read_text())
        return self

    def restart(self, timeout: float = 60.0) -> DaemonProcess:
        """Start again on the same home (same identity, store and peer id)."""
        self._log_lines = []
        return self.start(timeout)

    def _pump(self, stream: Any, ready: threading.Event) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self._log_lines.append(line)
            if line.startswith("API token:"):
                ready.set()
        ready.set()  # exited: let start() notice

    def log(self) -> str:
        return "\n".join(self._log_lines[-80:])

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    # -- what it is ------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.info["api"]

    @property
    def peer_id(self) -> str:
        return self.info["peer_id"]

    @property
    def p2p_addr(self) -> str:
        return self.info["p2p_addrs"][0]

    @property
    def token(self) -> str:
        return (self.home / "api-token").read_text().strip()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # -- talking to it -----------------------------------------------------------------------
    def http(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
            verify=(
                ssl.create_default_context(cafile=self.info["tls_cert"])
                if self.info.get("tls_cert")
                else True
            ),
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.http() as client:
            return client.request(method, path, **kwargs)

    def add_bytes(self, data: bytes, name: str) -> dict[str, Any]:
        response = self.api("POST", "/api/v1/assets", params={"name": name}, content=data)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def has_record(self, cid: str) -> bool:
        return self.api("GET", f"/api/v1/records/{cid}").status_code == 200

    def peers(self) -> list[dict[str, Any]]:
        return self.api("GET", "/api/v1/p2p/peers").json()["peers"]

    def init(self, password: str) -> DaemonProcess:
        """``artdag init`` with a web password (the home may already hold a config.toml)."""
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [ARTDAG, "init", "--password-stdin"],
            input=f"{password}\n".encode(),
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        env = self.env()
        proc = subprocess.run([ARTDAG, *args], env=env, capture_output=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"artdag {' '.join(args)}: {proc.stderr.decode()}")
        return proc


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll ``predicate`` until true; return the seconds it took (fail with ``what``)."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def daemon_line(root: Path, count: int, **env: str) -> Iterator[list[DaemonProcess]]:
    """``count`` daemons, each bootstrapping to the first (a star around daemon 0)."""
    daemons: list[DaemonProcess] = []
    try:
        first = DaemonProcess(root / "d0", **env).start()
        daemons.append(first)
        for i in range(1, count):
            daemons.append(DaemonProcess(root / f"d{i}", bootstrap=[first.p2p_addr], **env).start())
        yield daemons
    finally:
        for d in daemons:
            d.stop()
