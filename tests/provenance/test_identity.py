"""did:key identities and the key file."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multiformats import multibase, multicodec

from provenance import Identity, IdentityError, did_key_from_public, public_key_from_did
from provenance import identity as identity_module

# did:key spec test vector (w3c-ccg did-method-key, ed25519-x25519.json): the all-zero seed.
ZERO_SEED_DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
ZERO_SEED_PUBLIC_BASE58 = "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"


def raw_public(key) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_known_did_key_vector():
    identity = Identity.from_seed(bytes(32))
    assert identity.did == ZERO_SEED_DID
    assert identity.public_key_bytes == multibase.decode("z" + ZERO_SEED_PUBLIC_BASE58)
    assert raw_public(public_key_from_did(ZERO_SEED_DID)) == identity.public_key_bytes


def test_did_key_round_trip_matches_multiformats():
    identity = Identity.generate()
    did = did_key_from_public(identity.public_key_bytes)
    assert did == identity.did
    assert did.startswith("did:key:z6Mk")  # every Ed25519 did:key does
    codec, raw = multicodec.unwrap(multibase.decode(did.removeprefix("did:key:")))
    assert codec.name == "ed25519-pub"
    assert raw == identity.public_key_bytes
    assert raw_public(public_key_from_did(did)) == identity.public_key_bytes


def test_two_generated_identities_differ():
    assert Identity.generate().did != Identity.generate().did


def test_signature_verifies_with_the_key_named_by_the_did():
    identity = Identity.generate()
    sig = identity.sign(b"hello")
    assert len(sig) == 64
    public_key_from_did(identity.did).verify(sig, b"hello")  # raises if wrong


def _did(payload: bytes) -> str:
    return "did:key:" + multibase.encode(payload, "base58btc")


@pytest.mark.parametrize(
    ("did", "reason"),
    [
        ("", "must start with 'did:key:'"),
        ("did:web:example.com", "must start with 'did:key:'"),
        ("did:key:f" + "ed01" + "00" * 32, "base58btc"),
        ("did:key:z0OIl", "not valid base58btc"),
        (_did(multicodec.wrap("secp256k1-pub", b"\x02" * 33)), "not an Ed25519 key"),
        (_did(b"\xed\x01" + bytes(31)), "holds 31 key bytes"),
        (_did(b"\xed\x01" + bytes(33)), "holds 33 key bytes"),
    ],
)
def test_malformed_did_is_refused(did, reason):
    with pytest.raises(IdentityError, match=reason) as info:
        public_key_from_did(did)
    assert "\n" not in str(info.value)


def test_non_string_did_is_refused():
    with pytest.raises(IdentityError, match="string"):
        public_key_from_did(b"did:key:z6Mk")  # type: ignore[arg-type]


def test_did_from_wrong_length_public_key_is_refused():
    with pytest.raises(IdentityError, match="32 bytes, got 31"):
        did_key_from_public(bytes(31))


def test_load_or_create_creates_a_0600_pem_file(tmp_path):
    path = tmp_path / "keys" / "identity.pem"
    identity, created = Identity.load_or_create(path)
    assert created is True
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert sorted(os.listdir(path.parent)) == ["identity.pem"]  # no temporary file left
    assert Identity.load(path) == identity


def test_load_or_create_is_idempotent(tmp_path):
    path = tmp_path / "identity.pem"
    first, created_first = Identity.load_or_create(path)
    content = path.read_bytes()
    second, created_second = Identity.load_or_create(path)
    assert (created_first, created_second) == (True, False)
    assert second.did == first.did
    assert path.read_bytes() == content


def test_key_file_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        Identity.generate().save(tmp_path / "identity.pem")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "identity.pem") == 0o600


def test_key_file_is_never_created_readable_by_others(tmp_path, monkeypatch):
    created_modes = []
    real_open = os.open

    def spy_open(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            created_modes.append((flags & os.O_EXCL, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(identity_module.os, "open", spy_open)
    Identity.generate().save(tmp_path / "identity.pem")
    assert created_modes == [(os.O_EXCL, 0o600)]


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "identity.pem"
    Identity.generate().save(path)
    content = path.read_bytes()
    with pytest.raises(FileExistsError):
        Identity.generate().save(path)
    assert path.read_bytes() == content


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "identity.pem"
    Identity.generate().save(path)
    os.chmod(path, mode)
    with pytest.raises(IdentityError, match=f"chmod 600 {path}") as info:
        Identity.load(path)
    assert f"{mode:04o}" in str(info.value)
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load_or_create(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(IdentityError, match="does not exist"):
        Identity.load(tmp_path / "nope.pem")


def test_load_garbage(tmp_path):
    path = tmp_path / "identity.pem"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(IdentityError, match="not a PEM private key"):
        Identity.load(path)


def test_load_refuses_a_non_ed25519_key(tmp_path):
    path = tmp_path / "identity.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(IdentityError, match="not an Ed25519 key"):
        Identity.load(path)


def test_repr_does_not_leak_the_private_key():
    identity = Identity.from_seed(bytes(32))
    assert repr(identity) == f"Identity({ZERO_SEED_DID})"


def test_load_or_create_losing_a_race_uses_the_winners_key(tmp_path, monkeypatch):
    path = tmp_path / "identity.pem"
    winner = Identity.generate()
    real_save = Identity.save

    def save_after_someone_else(self, target):
        real_save(winner, target)  # another process gets there first
        real_save(self, target)

    monkeypatch.setattr(Identity, "save", save_after_someone_else)
    identity, created = Identity.load_or_create(path)
    assert created is False
    assert identity.did == winner.did
