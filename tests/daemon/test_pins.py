"""Pins, policies, quota and garbage collection in a real daemon (HTTP on 127.0.0.1).

The works here are uploaded to the daemon and then stripped of their local pins (and their
asset records' pins), so that, like works a gateway only caches, nothing but a policy keeps
them; the local work keeps its pins throughout.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import httpx
import pytest

from tests.harness.daemons import DaemonProcess, wait_until

pytestmark = pytest.mark.daemon

KIB = 1024


def _config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def _strip_local_pins(d: DaemonProcess, added: dict) -> None:
    for cid in (added["cid"], added["record"]):
        r = d.api("DELETE", f"/api/v1/pins/{cid}", params={"all": "1"})
        assert r.status_code == 200, r.text


def _pins(d: DaemonProcess) -> dict[str, list[str]]:
    return {p["cid"]: p["reasons"] for p in d.api("GET", "/api/v1/pins").json()["pins"]}


def _gateway_get(d: DaemonProcess, cid: str, client_ip: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": client_ip} if client_ip else {}
    with httpx.Client(base_url=d.api_url, timeout=30) as client:
        return client.get(f"/ipfs/{cid}", headers=headers)


def test_quota_gives_up_the_least_popular_works_and_keeps_local_pins(tmp_path):
    size = 160 * KIB
    quota = 3 * size + 40 * KIB  # the local work and two of the four popular ones
    home = tmp_path / "gw"
    _config(
        home,
        f"""
[p2p]
enabled = false
[import]
chunk_size = {16 * KIB}
[pinning]
popular_count = 4
quota_bytes = {quota}
policy_interval_seconds = 3600
gc_interval_seconds = 0
gc_grace_seconds = 0
[gateway]
trust_forwarded_for = true
""",
    )
    d = DaemonProcess(home).start()
    try:
        local = d.add_bytes(os.urandom(size), "mine.bin")
        works = [d.add_bytes(os.urandom(size), f"work{i}.bin") for i in range(4)]
        for w in works:
            _strip_local_pins(d, w)
        # popularity: work0 seen by 4 clients, work1 by 3, work2 by 2, work3 by 1; repeated
        # requests by one client within ten minutes are one view
        for i, w in enumerate(works):
            for client in range(4 - i):
                for _ in range(3):
                    assert _gateway_get(d, w["cid"], f"10.0.{i}.{client}").status_code == 200
        policy = d.api("GET", "/api/v1/pins/policy").json()
        scores = {p["cid"]: p["score"] for p in policy["popular"]}
        assert [scores[w["cid"]] for w in works] == pytest.approx([4, 3, 2, 1], rel=1e-3)

        report = d.api("POST", "/api/v1/pins/policy").json()
        assert sorted(report["pinned"]) == sorted(w["cid"] for w in works)
        assert report["dropped_for_quota"] == [works[2]["cid"], works[3]["cid"]]
        assert report["pinned_bytes"] <= quota
        assert report["gc"]["freed_bytes"] >= 2 * size  # the two works' blocks are gone

        pins = _pins(d)
        assert pins[works[0]["cid"]] == ["popular"] and pins[works[1]["cid"]] == ["popular"]
        assert works[2]["cid"] not in pins and works[3]["cid"] not in pins
        assert pins[local["cid"]] == ["local"] and pins[local["record"]] == ["local"]
        for kept in (local, works[0], works[1]):
            assert _gateway_get(d, kept["cid"]).status_code == 200
        for gone in works[2:]:
            assert _gateway_get(d, gone["cid"]).status_code in (404, 504)
        usage = d.api("GET", "/api/v1/pins/policy").json()["usage"]["bytes"]
        assert usage <= quota

        # a second round does not take the given-up works back (the local work, viewed once
        # since, may now be popular too: it is pinned for both reasons, counted once)
        again = d.api("POST", "/api/v1/pins/policy").json()
        assert set(again["pinned"]) <= {local["cid"]}
        assert again["dropped_for_quota"] == []
        assert works[2]["cid"] not in _pins(d) and works[3]["cid"] not in _pins(d)

        # the CLI shows the reasons; an operator's explicit pin is never given up
        listed = json.loads(d.cli("pin", "ls", "--reason", "popular", "--json").stdout)
        assert {works[0]["cid"], works[1]["cid"]} <= {p["cid"] for p in listed}
        assert all("popular" in p["reasons"] and p["note"].startswith("score ") for p in listed)
        assert f"{len(listed)} pins" in d.cli("pin", "ls", "--reason", "popular").stdout.decode()
        refused = d.cli("pin", "rm", works[0]["cid"], check=False)
        assert refused.returncode == 1
        assert b"pinned only by policy" in refused.stderr
    finally:
        d.stop()


def test_gc_under_concurrent_gateway_reads_never_breaks_a_response(tmp_path):
    home = tmp_path / "gw"
    _config(
        home,
        f"""
[p2p]
enabled = false
[import]
chunk_size = {64 * KIB}
[pinning]
gc_interval_seconds = 0
gc_grace_seconds = 0
[gateway]
requests_per_minute = 0
""",
    )
    d = DaemonProcess(home).start()
    try:
        pinned_data = os.urandom(4 << 20)
        cached_data = os.urandom(16 << 20)
        pinned = d.add_bytes(pinned_data, "pinned.bin")
        cached = d.add_bytes(cached_data, "cached.bin")
        _strip_local_pins(d, cached)  # only the gateway's reads keep it now
        junk = [d.add_bytes(os.urandom(8 * KIB), f"junk{i}.bin") for i in range(40)]
        for j in junk:
            _strip_local_pins(d, j)

        # 1. a response that started before a collection finishes intact after it
        with (
            httpx.Client(base_url=d.api_url, timeout=60) as client,
            client.stream("GET", f"/ipfs/{cached['cid']}") as response,
        ):
            assert response.status_code == 200
            chunks = response.iter_bytes()
            first = next(chunks)
            report = d.api("POST", "/api/v1/gc", json={"grace_seconds": 0}).json()
            assert report["removed"] >= 40  # the junk went; the cached file is being read
            rest = b"".join(chunks)
        assert hashlib.sha256(first + rest).digest() == hashlib.sha256(cached_data).digest()

        # 2. many readers (whole files and ranges) while collections run back to back
        failures: list[str] = []
        stop = threading.Event()

        def reader(cid: str, data: bytes, ranged: bool) -> None:
            with httpx.Client(base_url=d.api_url, timeout=60) as client:
                n = 0
                while not stop.is_set() or n < 2:
                    n += 1
                    if ranged:
                        start = (n * 300_001) % (len(data) - 70_000)
                        headers = {"Range": f"bytes={start}-{start + 65_535}"}
                        r = client.get(f"/ipfs/{cid}", headers=headers)
                        if r.status_code != 206 or r.content != data[start : start + 65_536]:
                            failures.append(f"range {start} of {cid}: {r.status_code}")
                    else:
                        r = client.get(f"/ipfs/{cid}")
                        if r.status_code != 200 or r.content != data:
                            failures.append(f"whole {cid}: {r.status_code} {len(r.content)}")

        threads = [
            threading.Thread(target=reader, args=args)
            for args in [
                (pinned["cid"], pinned_data, False),
                (pinned["cid"], pinned_data, True),
                (cached["cid"], cached_data, False),
                (cached["cid"], cached_data, True),
            ]
        ]
        for t in threads:
            t.start()
        try:
            for _ in range(4):
                more = [d.add_bytes(os.urandom(4 * KIB), f"more{i}.bin") for i in range(10)]
                for m in more:
                    _strip_local_pins(d, m)
                r = d.api("POST", "/api/v1/gc", json={"grace_seconds": 0})
                assert r.status_code == 200, r.text
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        assert failures == []

        # 3. once nobody reads it, the unpinned file goes; the pinned one stays
        report = d.api("POST", "/api/v1/gc", json={"grace_seconds": 0}).json()
        assert report["freed_bytes"] >= len(cached_data)
        assert _gateway_get(d, cached["cid"]).status_code in (404, 504)
        assert _gateway_get(d, pinned["cid"]).content == pinned_data
        out = d.cli("gc", "--grace", "0").stdout.decode()
        assert out.startswith("removed 0 of ")
    finally:
        d.stop()


def test_following_a_creator_pins_their_repo_and_fetches_their_works(tmp_path):
    """Two real daemons over libp2p on loopback: the gateway follows the creator; the policy
    pins the creator's repo head and fetches every block of the work it reaches."""
    creator = DaemonProcess(tmp_path / "creator").start()
    try:
        work_data = os.urandom(300 * KIB)
        _config(
            tmp_path / "gw",
            f"""
[pinning]
follow_creators = ["{creator.info["did"]}"]
policy_interval_seconds = 3600
fetch_timeout_seconds = 60
""",
        )
        gateway = DaemonProcess(tmp_path / "gw", bootstrap=[creator.p2p_addr]).start()
        try:
            work = creator.add_bytes(work_data, "followed.bin")
            wait_until(lambda: gateway.has_record(work["record"]), 30, "the record on the gateway")
            report = gateway.api("POST", "/api/v1/pins/policy").json()
            assert report["failed"] == {} and len(report["pinned"]) == 1
            head = report["pinned"][0]
            pins = _pins(gateway)
            assert pins[head] == ["followed"]
            views = gateway.api("GET", "/api/v1/pins", params={"reason": "followed"}).json()
            assert views["pins"][0]["note"] == f"head of {creator.info['did']}"
            # a newer head replaces the old one (it reaches the whole chain)
            second_data = os.urandom(40 * KIB)
            second = creator.add_bytes(second_data, "second.bin")
            wait_until(lambda: gateway.has_record(second["record"]), 30, "the second record")
            again = gateway.api("POST", "/api/v1/pins/policy").json()
            assert again["unpinned"] == [head] and len(again["pinned"]) == 1
            assert list(_pins(gateway).values()).count(["followed"]) == 1
            # the works' blocks are now the gateway's own: it serves them with the creator gone,
            # after a collection
            creator.stop()
            gc = gateway.api("POST", "/api/v1/gc", json={"grace_seconds": 0}).json()
            assert gc["marked"] > 0
            assert _gateway_get(gateway, work["cid"]).content == work_data
            assert _gateway_get(gateway, second["cid"]).content == second_data
        finally:
            gateway.stop()
    finally:
        creator.stop()


def test_a_remote_pin_the_quota_cannot_take_fails_with_a_reason(tmp_path):
    """The Pinning Service API honours the quota: local, explicit and remote pins are never
    given up, so a request that would not fit beside them fails (and pins nothing)."""
    home = tmp_path / "gw"
    _config(
        home,
        f"""
[p2p]
enabled = false
[pinning]
quota_bytes = {200 * KIB}
gc_interval_seconds = 0
""",
    )
    d = DaemonProcess(home).start()
    try:
        token = d.cli("pinning", "token-add", "client").stdout.decode().split()[0]
        small = d.add_bytes(os.urandom(50 * KIB), "small.bin")
        big = d.add_bytes(os.urandom(300 * KIB), "big.bin")
        for added in (small, big):
            _strip_local_pins(d, added)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=d.api_url, headers=headers, timeout=30) as pins:
            ok = pins.post("/pins", json={"cid": small["cid"]}).json()["requestid"]
            refused = pins.post("/pins", json={"cid": big["cid"]}).json()["requestid"]

            def settled(rid: str) -> dict:
                wait_until(
                    lambda: pins.get(f"/pins/{rid}").json()["status"] in ("pinned", "failed"),
                    30,
                    f"request {rid} to settle",
                )
                return pins.get(f"/pins/{rid}").json()

            assert settled(ok)["status"] == "pinned"
            failed = settled(refused)
            assert failed["status"] == "failed"
            assert "quota" in failed["info"]["status_details"]
        reasons = _pins(d)
        assert reasons[small["cid"]] == ["remote"] and big["cid"] not in reasons
    finally:
        d.stop()
