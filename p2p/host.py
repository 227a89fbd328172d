"""The libp2p host: a persistent Ed25519 node key and a host that speaks Noise and Yamux only.

py-libp2p 0.8.1's ``new_host`` offers Noise, TLS, secio *and plaintext* unless ``sec_opt`` names
the security transports, and mplex stalls multi-level bitswap fetches (docs/decisions.md), so
this module is the one place that builds hosts: every host artdag runs (daemon, tests, bench)
refuses a plaintext dialer and negotiates Yamux. Identify and ping are registered by py-libp2p's
``BasicHost`` itself.

The node key is libp2p's protobuf ``PrivateKey`` encoding (the same bytes Kubo keeps in its
config), written once with mode 0600; a key file readable by group or others is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

from .errors import P2PError

__all__ = [
    "NOISE_PROTOCOL_ID",
    "connect",
    "host_addrs",
    "load_or_create_key",
    "new_secure_host",
    "peer_id_from_key",
    "peer_id_of",
    "running_host",
]

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


def load_or_create_key(path: Path) -> KeyPair:
    """The node's libp2p key pair from ``path``, creating an Ed25519 key there on first use."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    pair = create_new_key_pair()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pair.private_key.serialize())
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return pair


def _read_key(path: Path) -> KeyPair:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise P2PError(
            f"node key {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        private = deserialize_private_key(path.read_bytes())
    except Exception as exc:
        raise P2PError(f"node key {path} is not a libp2p private key: {exc}") from None
    return KeyPair(private, private.get_public_key())


def new_secure_host(
    key_pair: KeyPair | None = None,
    *,
    enable_mdns: bool = False,
    bootstrap: Sequence[str] | None = None,
) -> IHost:
    """A host with Noise as its only security transport and Yamux as its only muxer.

    ``max_connections_per_peer=1`` avoids py-libp2p's ~250 ms happy-eyeballs wait per connect
    (docs/decisions.md); one Yamux connection carries every stream to a peer anyway.
    """
    pair = key_pair or create_new_key_pair()
    noise = NoiseTransport(pair, noise_privkey=create_x25519_key_pair().private_key)
    return new_host(
        key_pair=pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_preference="YAMUX",
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        enable_mDNS=enable_mdns,
        bootstrap=list(bootstrap) if bootstrap else None,
    )


@asynccontextmanager
async def running_host(
    key_pair: KeyPair | None = None,
    listen: Sequence[str] = LOOPBACK,
    **options: object,
) -> AsyncIterator[IHost]:
    """A listening host for the duration of the block (``options`` go to new_secure_host)."""
    host = new_secure_host(key_pair, **options)  # type: ignore[arg-type]
    addrs = [multiaddr.Multiaddr(a) for a in listen]
    async with host.run(listen_addrs=addrs):
        yield host


def host_addrs(host: IHost) -> list[str]:
    """The host's dialable multiaddrs, each ending in ``/p2p/<peer id>``."""
    pid = host.get_id().to_string()
    out = []
    for addr in host.get_addrs():
        text = str(addr)
        out.append(text if "/p2p/" in text else f"{text}/p2p/{pid}")
    return out


def peer_id_from_key(key_pair: KeyPair) -> str:
    return PeerID.from_pubkey(key_pair.public_key).to_string()


def peer_id_of(text: str) -> PeerID:
    try:
        return PeerID.from_base58(text)
    except Exception:
        raise P2PError(f"{text!r} is not a peer id") from None


async def connect(host: IHost, addr: str) -> PeerID:
    """Dial ``addr`` (a multiaddr ending in ``/p2p/<peer id>``); returns the peer's id."""
    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception as exc:
        raise P2PError(f"{addr!r} is not a dialable multiaddr with /p2p/<peer id>: {exc}") from None
    if info.peer_id == host.get_id():
        raise P2PError("refusing to dial ourselves")
    try:
        await host.connect(info)
    except Exception as exc:
        raise P2PError(f"could not connect to {addr}: {exc}") from None
    return info.peer_id
