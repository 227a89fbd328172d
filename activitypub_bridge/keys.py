"""RSA key pairs for ActivityPub actors: generate, keep on disk with mode 0600, publish as PEM.

Mastodon and Fedify verify HTTP Signatures with the RSA key in the actor document's
``publicKey.publicKeyPem`` (SubjectPublicKeyInfo PEM, ``-----BEGIN PUBLIC KEY-----``), so every
local actor gets an RSA 2048 key. The private key is written once as unencrypted PKCS#8 PEM into
a file created with mode 0600 (``O_EXCL``: an existing key is never overwritten); a key file that
group or others may read is refused, as ``p2p/host.py`` does for the libp2p node key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = [
    "RSA_KEY_BITS",
    "ActorKeyError",
    "generate_actor_key",
    "load_actor_key",
    "load_or_create_actor_key",
    "load_public_key_pem",
    "private_key_pem",
    "public_key_pem",
    "save_actor_key",
]

RSA_KEY_BITS = 2048


class ActorKeyError(Exception):
    """An actor key file or PEM that cannot be used (bad mode, not RSA, not PEM, exists)."""


def generate_actor_key() -> rsa.RSAPrivateKey:
    """A fresh RSA 2048 private key (public exponent 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM (the bytes :func:`save_actor_key` writes)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The SubjectPublicKeyInfo PEM for the actor document's ``publicKey.publicKeyPem``."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key_pem(pem: str | bytes) -> PublicKeyTypes:
    """A remote actor's public key from its ``publicKeyPem``; :class:`ActorKeyError` if unusable.

    Accepts SubjectPublicKeyInfo PEM and, as some servers publish it, PKCS#1
    ``-----BEGIN RSA PUBLIC KEY-----``.
    """
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        return serialization.load_pem_public_key(data.strip())
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ActorKeyError(f"not a PEM public key: {exc}") from None


def save_actor_key(key: rsa.RSAPrivateKey, path: str | os.PathLike[str]) -> None:
    """Write ``key`` to a new file at ``path`` with mode 0600; refuse to replace an existing one."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ActorKeyError(f"actor key {path} already exists; refusing to overwrite it") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(private_key_pem(key))
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def load_actor_key(path: str | os.PathLike[str]) -> rsa.RSAPrivateKey:
    """The RSA private key at ``path``; refused if group/world-accessible or not an RSA PEM key."""
    path = Path(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ActorKeyError(
            f"actor key {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ActorKeyError(
            f"actor key {path} is not an unencrypted PEM private key: {exc}"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ActorKeyError(f"actor key {path} is not an RSA key ({type(key).__name__})")
    return key


def load_or_create_actor_key(path: str | os.PathLike[str]) -> rsa.RSAPrivateKey:
    """The key at ``path``, generating and saving a new RSA 2048 key there on first use."""
    path = Path(path)
    if path.exists():
        return load_actor_key(path)
    key = generate_actor_key()
    try:
        save_actor_key(key, path)
    except ActorKeyError:
        # Another process created it between exists() and open(O_EXCL): use theirs.
        return load_actor_key(path)
    return key
