"""Ed25519 identities named by ``did:key``, and the key file that keeps one on disk.

A ``did:key`` for Ed25519 is ``did:key:z`` + base58btc(0xed 0x01 + 32-byte public key): the
multicodec ``ed25519-pub`` prefix followed by the raw key, so anyone can verify a signature from
the DID alone, with no lookup.

Key file format: the private key as unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``),
which ``openssl pkey -in FILE`` reads and which says what kind of key it holds. The file is
created with mode 0600 from its first byte (``os.open`` with ``O_CREAT | O_EXCL``), filled, synced
and then hard-linked into place, so a reader never sees a partial key and two processes racing to
create the same identity cannot overwrite each other: the second one loads the first one's key.
A key file that group or others may read (or write) is refused, as ssh does.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from multiformats import multibase

from .errors import IdentityError

__all__ = ["Identity", "did_key_from_public", "public_key_from_did", "DID_KEY_PREFIX"]

DID_KEY_PREFIX = "did:key:"
_ED25519_PUB_MULTICODEC = b"\xed\x01"  # varint of 0xed, the multicodec code of ed25519-pub
_KEY_FILE_MODE = 0o600
_MAX_KEY_FILE_BYTES = 64 * 1024


def did_key_from_public(raw: bytes) -> str:
    """The ``did:key`` of a raw 32-byte Ed25519 public key."""
    raw = bytes(raw)
    if len(raw) != 32:
        raise IdentityError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return DID_KEY_PREFIX + multibase.encode(_ED25519_PUB_MULTICODEC + raw, "base58btc")


def public_key_from_did(did: str) -> Ed25519PublicKey:
    """The Ed25519 public key a ``did:key`` names; IdentityError says what is wrong with it."""
    if not isinstance(did, str):
        raise IdentityError(f"a did:key is a string, got {type(did).__name__}")
    shown = did if len(did) <= 80 else did[:77] + "..."
    if not did.startswith(DID_KEY_PREFIX):
        raise IdentityError(f"not a did:key (must start with 'did:key:'): {shown!r}")
    ident = did[len(DID_KEY_PREFIX) :]
    if not ident.startswith("z"):
        raise IdentityError(f"did:key must be multibase base58btc (start with 'z'): {shown!r}")
    try:
        data = multibase.decode(ident)
    except Exception:  # multiformats raises several error types
        raise IdentityError(f"did:key is not valid base58btc: {shown!r}") from None
    if not data.startswith(_ED25519_PUB_MULTICODEC):
        raise IdentityError(
            f"did:key is not an Ed25519 key (multicodec prefix 0x{data[:2].hex()}, "
            f"expected 0xed01): {shown!r}"
        )
    raw = data[len(_ED25519_PUB_MULTICODEC) :]
    if len(raw) != 32:
        raise IdentityError(f"did:key holds {len(raw)} key bytes, Ed25519 needs 32: {shown!r}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise IdentityError(f"did:key does not hold a valid Ed25519 key: {shown!r}") from None


class Identity:
    """An Ed25519 private key and the ``did:key`` that names it."""

    __slots__ = ("_did", "_private_key", "_public_raw")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise IdentityError(
                f"expected an Ed25519 private key, got {type(private_key).__name__}"
            )
        self._private_key = private_key
        self._public_raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._did = did_key_from_public(self._public_raw)

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The identity of a 32-byte Ed25519 seed (deterministic; for tests and test vectors)."""
        if len(seed) != 32:
            raise IdentityError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file; refuse one that group or others may access."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise IdentityError(f"key file {path} does not exist") from None
        except OSError as exc:
            raise IdentityError(f"cannot open key file {path}: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise IdentityError(f"key file {path} is not a regular file")
            mode = stat.S_IMODE(info.st_mode)
            if os.name == "posix" and mode & 0o077:
                raise IdentityError(
                    f"key file {path} has mode {mode:04o}, which lets other users read it; "
                    f"run: chmod 600 {path}"
                )
            data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
        finally:
            os.close(fd)
        return cls(_private_key_from_pem(data, path))

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> tuple[Identity, bool]:
        """Load the identity at ``path``, creating it first if there is none.

        Returns the identity and whether it was created now.
        """
        path = Path(path)
        if not os.path.lexists(path):
            identity = cls.generate()
            try:
                identity.save(path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                return identity, True
        return cls.load(path), False

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private key to a new file with mode 0600; raise FileExistsError if it exists.

        The parent directory is created with mode 0700 if it is missing.
        """
        _write_new_private_file(Path(path), self.private_key_pem())

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (the key file format)."""
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def did(self) -> str:
        return self._did

    @property
    def public_key_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public_raw

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return self._private_key.sign(bytes(data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other._did == self._did

    def __hash__(self) -> int:
        return hash(self._did)

    def __repr__(self) -> str:
        return f"Identity({self._did})"


def _private_key_from_pem(data: bytes, path: Path) -> Ed25519PrivateKey:
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise IdentityError(f"key file {path} is too large to be a PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise IdentityError(
            f"key file {path} is encrypted; artdag expects an unencrypted PKCS#8 PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise IdentityError(f"key file {path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"key file {path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _write_new_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, mode 0600 from the start, never clobbering a file.

    The bytes go to a temporary file created with O_EXCL and mode 0600 in the same directory,
    are synced, and the temporary file is hard-linked to ``path`` (which fails if ``path`` exists).
    On a file system without hard links we fall back to ``os.replace``, which is still atomic
    but would overwrite a file created in the instant between our check and the rename.
    """
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.path.lexists(path):
        raise FileExistsError(f"key file {path} already exists")
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, _KEY_FILE_MODE)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, _KEY_FILE_MODE)  # the umask can only narrow it; be explicit anyway
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"key file {path} already exists") from None
        except OSError:
            if os.path.lexists(path):
                raise FileExistsError(f"key file {path} already exists") from None
            os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
