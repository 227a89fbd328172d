"""The libp2p host: node key on disk, Noise only (a plaintext dialer is refused), Yamux,
identify and ping; the dialer policy of discovery (pure)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_ID
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

from p2p import P2PError, connect, host_addrs, load_or_create_key, peer_id_from_key, running_host
from p2p.discovery import PeerDialer


def test_node_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key(path)
    assert peer_id_from_key(first) == peer_id_from_key(again)
    assert peer_id_from_key(first).startswith("12D3KooW")  # Ed25519 peer id


def test_node_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    load_or_create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(P2PError, match="chmod 600"):
        load_or_create_key(path)


def test_a_corrupt_node_key_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"not a key")
    os.chmod(path, 0o600)
    with pytest.raises(P2PError, match="not a libp2p private key"):
        load_or_create_key(path)


async def test_noise_and_yamux_are_negotiated_and_identify_and_ping_work() -> None:
    async with running_host() as a, running_host() as b:
        peer = await connect(b, host_addrs(a)[0])
        assert peer == a.get_id()
        conn = b.get_network().connections[peer]
        conn = conn[0] if isinstance(conn, list) else conn
        assert conn.get_negotiated_security_protocol() == "/noise"
        assert conn.get_negotiated_muxer_protocol() == "/yamux/1.0.0"
        # ping: 32 bytes echoed on /ipfs/ping/1.0.0
        stream = await b.new_stream(peer, [PING_ID])
        payload = os.urandom(32)
        await stream.write(payload)
        with trio.fail_after(5):
            echoed = b""
            while len(echoed) < 32:
                echoed += await stream.read(32 - len(echoed))
        assert echoed == payload
        await stream.close()
        # identify ran on connect: b knows a's protocols
        with trio.fail_after(5):
            while not b.get_peerstore().get_protocols(peer):
                await trio.sleep(0.05)
        assert "/ipfs/id/1.0.0" in b.get_peerstore().get_protocols(peer)


async def test_a_plaintext_dialer_is_refused() -> None:
    key = create_new_key_pair()
    plain = new_host(
        key_pair=key,
        sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(key)},
        muxer_preference="YAMUX",
    )
    async with running_host() as ours, plain.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        with pytest.raises(P2PError, match="could not connect"), trio.fail_after(15):
            await connect(plain, host_addrs(ours)[0])
        assert plain.get_id() not in ours.get_connected_peers()


async def test_bad_multiaddrs_are_clear_errors() -> None:
    async with running_host() as host:
        with pytest.raises(P2PError, match="not a dialable multiaddr"):
            await connect(host, "/ip4/127.0.0.1/tcp/1")  # no /p2p/
        with pytest.raises(P2PError, match="ourselves"):
            await connect(host, host_addrs(host)[0])


def _info(n: int) -> PeerInfo:
    pid = PeerID.from_pubkey(create_new_key_pair(bytes([n]) * 32).public_key)
    return PeerInfo(pid, [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{4000 + n}")])


def test_dialer_backs_off_and_gives_up_on_mdns_peers_but_not_bootstrap() -> None:
    dialer = PeerDialer(base_backoff_s=1.0, max_attempts=3)
    boot, lan = _info(1), _info(2)
    dialer.add(boot, persistent=True, now=0)
    dialer.add(lan, persistent=False, now=0)
    assert {i.peer_id for i in dialer.due(0, set())} == {boot.peer_id, lan.peer_id}
    for t, wait in ((0, 1.0), (1, 2.0)):
        dialer.failed(boot.peer_id, t)
        dialer.failed(lan.peer_id, t)
        assert dialer.due(t + wait - 0.01, set()) == []
        assert {i.peer_id for i in dialer.due(t + wait, set())} == {boot.peer_id, lan.peer_id}
    dialer.failed(lan.peer_id, 3)  # third failure: an mDNS peer is forgotten
    dialer.failed(boot.peer_id, 3)  # a bootstrap peer never is
    assert lan.peer_id not in dialer.peers and boot.peer_id in dialer.peers
    # connected peers are not dialled; success resets the backoff
    assert dialer.due(1000, {boot.peer_id}) == []
    dialer.succeeded(boot.peer_id, 1000)
    assert dialer.peers[boot.peer_id].failures == 0
    # a connected peer is never "due now": the dial loop must not spin on it
    assert dialer.next_wakeup(2000, {boot.peer_id}) == float("inf")
    assert dialer.next_wakeup(2000, set()) == 0.0
