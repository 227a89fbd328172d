"""Issue 16, findings 4 and 5 (part): the Pinning Service API against one abusive token holder,
and hostile JSON, YAML and TOML from users.

The pure parts first (the fair scheduler, the origin check, the request store's pending cap,
body and query limits, recipe YAML and config TOML bombs), then a real ``artdag daemon`` on
127.0.0.1: a token flooding ``POST /pins`` is capped with the spec's ``Failure`` bodies while
another token is served; another token's pin gets a fetch slot while one token's unfindable
CIDs are fetching; a loopback origin is dialled only when ``[pinning] allow_private_origins``
says so (a local TCP listener counts the connections); JSON bombs in ``GET /pins?meta=`` and
``POST /pins`` bodies answer 400; the CLI gives one line for a recipe or config bomb.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dag
from daemon.config import ConfigError, load_config
from daemon.core.pinning_api.origins import OriginRefused, check_origin, names_to_resolve
from daemon.core.pinning_api.request_store import PinRequestStore
from daemon.core.pinning_api.requests import (
    PendingLimitReached,
    PinLimits,
    PinRequestError,
    PinSpec,
    parse_list_query,
    parse_pin_body,
)
from daemon.core.pinning_api.schedule import Queued, choose, per_token_slots
from daemon.core.pinning_api.tokens import add_token
from renderer import RecipeError, load_recipe_yaml
from tests.harness.daemons import ARTDAG, DaemonProcess, wait_until

PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
DEEP_JSON = "[" * 1000 + "]" * 1000
HUGE_INT_JSON = '{"a": ' + "9" * 5000 + "}"


def unfindable(i: int | str) -> str:
    """A CID of bytes no daemon holds."""
    return dag.cid_to_str(dag.Block.encode(f"nobody has {i}".encode(), codec="raw").cid)


# -- the fair scheduler (pure) ---------------------------------------------------------------------


def q(owner: str, created: int) -> Queued:
    return Queued(f"{owner}{created}", owner, created)


def test_per_token_slots_is_half_rounded_up_unless_configured() -> None:
    assert [per_token_slots(n) for n in (1, 2, 3, 4, 5, 64)] == [1, 1, 2, 2, 3, 32]
    assert per_token_slots(4, 3) == 3
    assert per_token_slots(4, 9) == 4
    with pytest.raises(ValueError):
        per_token_slots(0)


def test_one_token_alone_gets_at_most_its_share_of_the_slots() -> None:
    flood = [q("a", t) for t in range(10)]
    assert choose(flood, {}, free=4, per_token=2) == flood[:2]
    assert choose(flood[2:], {"a": 2}, free=2, per_token=2) == []


def test_a_late_token_gets_a_free_slot_before_the_flooding_one() -> None:
    flood = [q("a", t) for t in range(100)]
    late = q("b", 1000)
    assert choose([*flood[2:], late], {"a": 2}, free=2, per_token=2) == [late]


def test_free_slots_go_round_robin_oldest_first_within_each_token() -> None:
    queued = [q("a", 1), q("a", 2), q("a", 3), q("b", 4), q("b", 5), q("c", 6)]
    picked = choose(queued, {}, free=5, per_token=2)
    assert [r.requestid for r in picked] == ["a1", "b4", "c6", "a2", "b5"]
    # the token with fewer fetches running goes first, whatever the age of its requests
    assert choose([q("a", 1), q("b", 9)], {"a": 1}, free=1, per_token=3) == [q("b", 9)]


# -- origins (pure: the decision, nothing is dialled) ----------------------------------------------


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        (f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}", "loopback"),
        (f"/ip4/169.254.169.254/tcp/80/p2p/{PEER}", "link-local"),
        (f"/ip4/10.1.2.3/tcp/4001/p2p/{PEER}", "private"),
        (f"/ip4/224.0.0.1/tcp/4001/p2p/{PEER}", "multicast"),
        (f"/ip4/240.0.0.1/tcp/4001/p2p/{PEER}", "240.0.0.1 is"),  # reserved, private to Python
        (f"/ip4/0.0.0.0/tcp/4001/p2p/{PEER}", "unspecified"),
        (f"/ip6/::1/tcp/4001/p2p/{PEER}", "loopback"),
        (f"/ip6/fd00::1/tcp/4001/p2p/{PEER}", "private"),
        (f"/ip6/::ffff:127.0.0.1/tcp/4001/p2p/{PEER}", "loopback"),
        (f"/dnsaddr/bootstrap.example/p2p/{PEER}", "dnsaddr"),
        ("/ip4/8.8.8.8/tcp/4001", "no /p2p/"),
        ("not a multiaddr", "not a multiaddr"),
    ],
)
def test_non_public_origins_are_refused(origin: str, why: str) -> None:
    with pytest.raises(OriginRefused, match=why):
        check_origin(origin)


def test_a_public_origin_is_dialled_as_given_and_private_ones_when_allowed() -> None:
    public = f"/ip4/8.8.8.8/tcp/4001/p2p/{PEER}"
    assert check_origin(public) == public
    local = f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}"
    assert check_origin(local, allow_private=True) == local


def test_dns_origins_are_dialled_at_a_checked_address() -> None:
    origin = f"/dns4/node.example/tcp/4001/p2p/{PEER}"
    assert names_to_resolve(origin) == [("dns4", "node.example")]
    dialled = check_origin(origin, {"node.example": ["2001:4860:4860::8888", "8.8.4.4"]})
    assert dialled == f"/ip4/8.8.4.4/tcp/4001/p2p/{PEER}"
    for addresses in (["8.8.4.4", "192.168.1.9"], ["169.254.169.254"], []):
        with pytest.raises(OriginRefused):
            check_origin(origin, {"node.example": addresses})
    with pytest.raises(OriginRefused, match="IPv4"):
        check_origin(origin, {"node.example": ["2001:4860:4860::8888"]})


class _Dialler:
    """Records what :func:`p2p.dial_origins` would connect to."""

    def __init__(self) -> None:
        self.dialled: list[str] = []

    async def connect(self, addr: str) -> str:
        self.dialled.append(addr)
        return PEER


async def test_dial_origins_dials_only_public_origins_and_says_why_not() -> None:
    from functools import partial

    from daemon.core.pinning_api.dialable import dialable_origin
    from p2p import dial_origins

    network = _Dialler()
    public_only = partial(dialable_origin, allow_private=False)
    public = f"/ip4/8.8.8.8/tcp/4001/p2p/{PEER}"
    metadata = f"/ip4/169.254.169.254/tcp/80/p2p/{PEER}"
    refused: list[str] = []
    dialled = await dial_origins(
        network, [public, metadata], check_origin=public_only, refused=refused
    )
    assert dialled == 1
    assert network.dialled == [public]  # nothing else was dialled
    assert len(refused) == 1 and "169.254.169.254 is link-local" in refused[0]
    network.dialled.clear()
    any_origin = partial(dialable_origin, allow_private=True)
    assert await dial_origins(network, [metadata], check_origin=any_origin) == 1
    assert network.dialled == [metadata]


# -- request limits (pure) and the store's pending cap ---------------------------------------------


def test_meta_and_name_are_capped_by_the_limits_given() -> None:
    cid = unfindable("limits")
    limits = PinLimits(max_name=10, max_meta_bytes=100)
    assert parse_pin_body({"cid": cid, "name": "n" * 10, "meta": {"k": "v" * 80}}, limits)
    with pytest.raises(PinRequestError, match="at most 10"):
        parse_pin_body({"cid": cid, "name": "n" * 11}, limits)
    with pytest.raises(PinRequestError, match=r"meta is 1.. bytes as JSON; .* at most 100"):
        parse_pin_body({"cid": cid, "meta": {"k": "v" * 100}}, limits)
    # the default: the ~250 KB meta of the finding is refused
    big = {f"key{i}": "x" * 240 for i in range(1000)}
    with pytest.raises(PinRequestError, match="at most 4096"):
        parse_pin_body({"cid": cid, "meta": big})


@pytest.mark.parametrize("meta", [DEEP_JSON, HUGE_INT_JSON, '{"a": {"b": "c"}}', "NaN"])
def test_meta_query_bombs_are_bad_requests(meta: str) -> None:
    with pytest.raises(PinRequestError, match="meta"):
        parse_list_query({"meta": meta})


def test_the_store_caps_queued_and_pinning_requests_per_token(tmp_path: Path) -> None:
    store = PinRequestStore(tmp_path / "pinning.db")
    try:
        rows = [store.add(PinSpec(unfindable(i)), owner="a", max_pending=3) for i in range(3)]
        with pytest.raises(PendingLimitReached, match="3 pin requests queued or pinning"):
            store.add(PinSpec(unfindable(3)), owner="a", max_pending=3)
        store.add(PinSpec(unfindable(4)), owner="b", max_pending=3)  # another token
        # a replacement takes the place of the request it replaces
        store.add(PinSpec(unfindable(5)), owner="a", max_pending=3, replacing=rows[0].requestid)
        store.delete(rows[0].requestid)  # as the service's replace does, in the same thread
        store.set_status(rows[1].requestid, "pinning")
        with pytest.raises(PendingLimitReached):
            store.add(PinSpec(unfindable(6)), owner="a", max_pending=3)
        store.set_status(rows[1].requestid, "failed")  # settled: room again
        store.add(PinSpec(unfindable(7)), owner="a", max_pending=3)
        # the scheduler's view: the oldest queued of every token
        heads = store.queued_heads(1)
        assert sorted(r.owner for r in heads) == ["a", "b"]
    finally:
        store.close()


# -- YAML and TOML from users (pure) ---------------------------------------------------------------

YAML_BOMBS = {
    "flow nested 5,000 deep": "name: x\nnodes: " + "[" * 5000 + "]" * 5000 + "\n",
    "blocks nested 5,000 deep": "name: x\nnodes:\n  " + "- " * 5000 + "x\n",
    "maps nested 5,000 deep": "name: x\nnodes: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
    "aliases of aliases": "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9)
    ),
    # found by fuzzing: PyYAML's int() raised a bare ValueError (over 4,300 digits)
    "an integer of 5,000 digits": "name: x\nnodes: {a: {effect: glitch, params: {seed: "
    + "9" * 5000
    + "}}}\n",
}


@pytest.mark.parametrize("name", list(YAML_BOMBS))
def test_recipe_yaml_bombs_are_recipe_errors(name: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe_yaml(YAML_BOMBS[name])
    assert "\n" not in str(info.value)


def test_ordinary_recipes_with_anchors_still_load() -> None:
    recipe = load_recipe_yaml(
        "name: anchors\ninputs: [clip]\nnodes:\n"
        "  a: {effect: glitch, input: clip, params: &p {noise: 10, seed: 1}}\n"
        "  b: {effect: glitch, input: a, params: *p}\n"
        "output: b\n"
    )
    assert recipe.nodes["b"].params == recipe.nodes["a"].params


@pytest.mark.parametrize(
    "toml",
    [
        "[pinning]\nfollow_creators = " + "[" * 5000 + "]" * 5000 + "\n",
        "[pinning]\nquota_bytes = " + "9" * 5000 + "\n",
        "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
    ],
)
def test_config_toml_bombs_are_config_errors(tmp_path: Path, toml: str) -> None:
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(tmp_path, environ={})
    assert "\n" not in str(info.value)


def test_the_pinning_limits_are_configurable_and_checked(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[pinning]\nmax_pending_per_token = 7\nmax_meta_bytes = 512\nrequests_per_minute = 0\n"
        "allow_private_origins = true\nmax_concurrent_per_token = 3\n"
    )
    config = load_config(tmp_path, environ={})
    assert config.pinning.max_pending_per_token == 7 and config.pinning.max_meta_bytes == 512
    assert config.pinning.requests_per_minute == 0 and config.pinning.allow_private_origins
    defaults = load_config(tmp_path / "none", environ={})
    assert not defaults.pinning.allow_private_origins
    for bad in (
        "max_name_chars = 256",
        "max_concurrent_per_token = 5",
        "max_pending_per_token = 0",
    ):
        (tmp_path / "config.toml").write_text(f"[pinning]\n{bad}\n")
        with pytest.raises(ConfigError, match=bad.split()[0]):
            load_config(tmp_path, environ={})


# -- the CLI: one line, no traceback ---------------------------------------------------------------


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARTDAG_HOME": str(home)}
    return subprocess.run([ARTDAG, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.cli
@pytest.mark.parametrize("name", ["flow nested 5,000 deep", "blocks nested 5,000 deep"])
def test_artdag_recipe_add_on_a_yaml_bomb_prints_one_line(tmp_path: Path, name: str) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(YAML_BOMBS[name])
    result = run_cli(tmp_path / "home", "recipe", "add", str(bomb))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr[-2000:]
    assert "recipe nests deeper than" in result.stderr


@pytest.mark.cli
def test_artdag_on_a_config_bomb_prints_one_line(tmp_path: Path) -> None:
    tmp_path.joinpath("config.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_cli(tmp_path, "status")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr[-2000:]
    assert "not valid TOML" in result.stderr


# -- a real daemon ---------------------------------------------------------------------------------

FETCH_TIMEOUT_S = 40  # long enough that a fetch still holds its slot when checked
PENDING = 4
BURST = 30
POLL_S = 0.5  # polls count against the token's rate (2 a second here)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """Private origins refused (the default), small caps to reach them quickly."""
    home = tmp_path_factory.mktemp("hardening-pinning") / "node"
    home.mkdir()
    (home / "config.toml").write_text(
        f"[pinning]\nfetch_timeout_seconds = {FETCH_TIMEOUT_S}\nmax_concurrent = 4\n"
        f"max_pending_per_token = {PENDING}\nrequests_per_minute = 120\nburst = {BURST}\n"
    )
    daemon = DaemonProcess(home).start()
    try:
        yield daemon
    finally:
        daemon.stop()


def pins_client(daemon: DaemonProcess, name: str | None = None) -> httpx.Client:
    token = add_token(daemon.home / "pinning-tokens", name or f"t-{secrets.token_hex(6)}")
    assert len(token) >= 32
    return httpx.Client(
        base_url=daemon.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def failure_of(response: httpx.Response, status: int, reason: str) -> str:
    """The spec's ``Failure`` body: ``{"error": {"reason", "details"}}``; returns details."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["reason"] == reason, error
    assert isinstance(error["details"], str) and error["details"]
    return str(error["details"])


def status_of(pins: httpx.Client, rid: str) -> str:
    response = pins.get(f"/pins/{rid}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def local_cid(daemon: DaemonProcess, text: str) -> str:
    return str(daemon.add_bytes(text.encode(), f"{secrets.token_hex(4)}.txt")["cid"])


@pytest.mark.daemon
@pytest.mark.cli
def test_a_flooding_token_is_capped_while_another_token_is_served(node: DaemonProcess) -> None:
    with pins_client(node, "flood") as flood, pins_client(node) as other:
        # meta beyond [pinning] max_meta_bytes (default 4096): 400, nothing stored
        big = {f"k{i}": "x" * 200 for i in range(1000)}  # ~210 KB, under the body limit
        details = failure_of(
            flood.post("/pins", json={"cid": unfindable("big"), "meta": big}), 400, "BAD_REQUEST"
        )
        assert "meta is" in details and "at most 4096" in details
        # queued + pinning per token: PENDING accepted, then 429 with the spec's Failure body
        sent, ids = 1, []
        for i in range(PENDING):
            response = flood.post("/pins", json={"cid": unfindable(f"flood {i}")})
            assert response.status_code == 202, response.text
            ids.append(response.json()["requestid"])
            sent += 1
        details = failure_of(
            flood.post("/pins", json={"cid": unfindable("one more")}),
            429,
            "TOO_MANY_PENDING_REQUESTS",
        )
        sent += 1
        assert f"at most {PENDING}" in details
        # request rate per token: the burst runs out, 429 with Retry-After
        rate_limited = None
        for _ in range(BURST + 5):
            response = flood.post("/pins", json={"cid": unfindable("again")})
            sent += 1
            if response.status_code != 429 or "RATE" not in response.text:
                continue
            rate_limited = response
            break
        assert rate_limited is not None, f"no 429 RATE_LIMITED after {sent} requests"
        assert sent <= BURST + 10  # the burst, and what the clock refilled meanwhile
        failure_of(rate_limited, 429, "RATE_LIMITED")
        assert int(rate_limited.headers["Retry-After"]) >= 1
        # meanwhile another token is served: its pin is accepted and pinned
        cid = local_cid(node, "served while another token floods")
        created = other.post("/pins", json={"cid": cid, "name": "mine"})
        assert created.status_code == 202, created.text
        rid = created.json()["requestid"]
        wait_until(lambda: status_of(other, rid) == "pinned", 30, "the other pin", POLL_S)
        listed = json.loads(node.cli("pinning", "ls", "--json").stdout)
        stored = [r for r in listed["results"] if r["owner"] == "flood"]
        assert sorted(r["requestid"] for r in stored) == sorted(ids)  # nothing beyond the caps
        assert all("meta" not in r["pin"] for r in stored)
        for r in ids:  # free the fetch slots for the tests that follow, once the rate allows
            wait_until(
                lambda r=r: flood.delete(f"/pins/{r}").status_code == 202, 30, "delete", POLL_S
            )


@pytest.mark.daemon
def test_another_tokens_pin_gets_a_slot_while_unfindable_cids_are_fetching(
    node: DaemonProcess,
) -> None:
    """Four requests for CIDs nobody has used to hold all four fetch slots for the whole fetch
    timeout; now one token holds at most two, and a second token's pin goes ahead."""
    with pins_client(node) as hog, pins_client(node) as other:
        ids = []
        for i in range(4):
            response = hog.post("/pins", json={"cid": unfindable(f"hog {i}")})
            assert response.status_code == 202, response.text
            ids.append(response.json()["requestid"])
        wait_until(
            lambda: hog.get("/pins", params={"status": "pinning"}).json()["count"] >= 2,
            20,
            "the unfindable CIDs to be fetching",
            interval=POLL_S,
        )
        cid = local_cid(node, "my turn")
        rid = other.post("/pins", json={"cid": cid}).json()["requestid"]
        wait_until(lambda: status_of(other, rid) == "pinned", FETCH_TIMEOUT_S / 2, "my pin", POLL_S)
        statuses = [status_of(hog, r) for r in ids]
        assert "failed" not in statuses, "the other pin waited for the fetch timeout"
        assert statuses.count("pinning") <= 2, statuses
        for r in ids:  # let the slots go for the tests that follow
            assert hog.delete(f"/pins/{r}").status_code == 202


@pytest.mark.daemon
@pytest.mark.parametrize(
    ("where", "kwargs"),
    [
        ("query", {"params": {"meta": DEEP_JSON}}),
        ("query", {"params": {"meta": HUGE_INT_JSON}}),
        ("body", {"content": ('{"cid": "x", "meta": ' + DEEP_JSON + "}").encode()}),
        ("body", {"content": HUGE_INT_JSON.encode()}),
    ],
)
def test_json_bombs_get_400(node: DaemonProcess, where: str, kwargs: dict[str, Any]) -> None:
    with pins_client(node) as pins:
        method = "GET" if where == "query" else "POST"
        response = pins.request(method, "/pins", **kwargs)
        failure_of(response, 400, "BAD_REQUEST")


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    """A TCP listener on 127.0.0.1 that nobody should dial; accepts without blocking."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def connections(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def pin_with_origin(daemon: DaemonProcess, origin: str, label: str) -> None:
    with pins_client(daemon) as pins:
        response = pins.post("/pins", json={"cid": unfindable(label), "origins": [origin]})
        assert response.status_code == 202, response.text
        rid = response.json()["requestid"]
        wait_until(lambda: status_of(pins, rid) == "pinning", 30, "the fetch to start", POLL_S)


@pytest.mark.daemon
def test_a_loopback_origin_is_not_dialled_by_default(
    node: DaemonProcess, listener: tuple[socket.socket, int]
) -> None:
    sock, port = listener
    origin = f"/ip4/127.0.0.1/tcp/{port}/p2p/{PEER}"
    pin_with_origin(node, origin, "loopback origin")
    wait_until(lambda: f"127.0.0.1/tcp/{port}" in node.log(), 20, "the origin to be judged")
    assert connections(sock) == 0
    assert "is loopback" in node.log()


@pytest.mark.daemon
def test_a_loopback_origin_is_dialled_when_private_origins_are_allowed(
    tmp_path: Path, listener: tuple[socket.socket, int]
) -> None:
    sock, port = listener
    home = tmp_path / "allowing"
    home.mkdir()
    (home / "config.toml").write_text(
        "[pinning]\nallow_private_origins = true\nfetch_timeout_seconds = 20\n"
    )
    daemon = DaemonProcess(home).start()
    try:
        pin_with_origin(daemon, f"/ip4/127.0.0.1/tcp/{port}/p2p/{PEER}", "allowed origin")
        seen = [0]

        def dialled() -> bool:
            seen[0] += connections(sock)
            return seen[0] > 0

        wait_until(dialled, 20, "the daemon to dial the loopback origin")
    finally:
        daemon.stop()
