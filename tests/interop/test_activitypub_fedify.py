"""The bridge against an independent implementation: a Fedify 2.3.6 follower server.

Fedify (npm, started by the test, ``tests/harness/fedify_peer.py``) looks our actor up, follows it,
receives our Accept and then the Create that ``artdag publish`` sends, verifying our HTTP
signature on every request (its inbox refuses anything unsigned or badly signed, and with
``--require-signed-fetch`` its actor refuses unsigned GETs, so our key fetches are checked
too). Run twice: with RFC 9421 first on both sides, and with draft-cavage first on both sides.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import trio

from tests.harness.daemons import DaemonProcess
from tests.harness.fedify_peer import fedify_peer, require_fedify
from tests.harness.media import make_video
from tests.harness.web_daemons import bridge_daemon

STYLES = {
    "rfc9421": ("rfc9421", "rfc9421"),
    "cavage": ("draft-cavage-http-signatures-12", "cavage"),
}


def _followers(d: DaemonProcess) -> list[str]:
    body = d.api("GET", "/api/v1/activitypub/followers").json()
    return [f["actor"] for f in body["followers"]]


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_fedify_follows_receives_accept_and_publish(tmp_path: Path, style: str) -> None:
    require_fedify()
    fedify_knock, our_knock = STYLES[style]
    daemon = bridge_daemon(tmp_path / "alice", ARTDAG_AP_FIRST_KNOCK=our_knock)
    await trio.to_thread.run_sync(daemon.start)
    try:
        async with fedify_peer(first_knock=fedify_knock, require_signed_fetch=True) as peer:  # type: ignore[arg-type]
            actor = daemon.api_url + "/users/alice"
            followed = await peer.follow(actor)
            assert followed["target_actor"] == actor
            assert followed["inbox"] == actor + "/inbox"

            accepts = await peer.wait_for(
                lambda acts: [a for a in acts if a["type"] == "Accept"], timeout=20
            )
            assert accepts[0]["actor"] == actor
            assert accepts[0]["signature"] == our_knock  # verified by Fedify in that form
            assert peer.actor in await trio.to_thread.run_sync(_followers, daemon)
            following = await peer.following()
            assert [f["actor"] for f in following] == [actor]

            video = make_video(tmp_path / "clip.mp4", seconds=1, container="mp4")
            asset = await trio.to_thread.run_sync(daemon.add_bytes, video.read_bytes(), "clip.mp4")
            out = await trio.to_thread.run_sync(
                lambda: daemon.cli("publish", asset["cid"], "--text", "Hello fediverse", "--json")
            )
            published = json.loads(out.stdout)
            assert published["queued"] == 1

            creates = await peer.wait_for(
                lambda acts: [a for a in acts if a["type"] == "Create"], timeout=30
            )
            create = creates[0]
            assert create["id"] == published["activity"]
            assert create["signature"] == our_knock
            note = create.get("object_json") or create["activity_json"]["object"]
            assert note["type"] == "Note"
            assert "Hello fediverse" in note["content"]
            assert f"ipfs://{asset['cid']}" in note["content"]
            attachment = note["attachment"]
            media = attachment[0] if isinstance(attachment, list) else attachment
            assert media["type"] == "Video" and media["mediaType"] == "video/mp4"

            # Every request we made to Fedify carried our chosen form and was accepted.
            ours = [
                r
                for r in await peer.requests()
                if r["method"] == "POST" or r["path"].startswith("/users/bob")
            ]
            assert ours and all(r["signature"] == our_knock for r in ours), ours
            assert all(r["status"] < 300 for r in ours), ours
            gets = [r for r in ours if r["method"] == "GET"]
            assert gets, "we fetched Fedify's actor with a signed GET"

            # A like from Fedify becomes a usage record; Undo(Follow) removes the follower.
            await peer.like(note["id"], actor)
            await peer.undo_follow(actor)
            with trio.fail_after(20):
                while peer.actor in await trio.to_thread.run_sync(_followers, daemon):
                    await trio.sleep(0.1)
            with sqlite3.connect(daemon.home / "index.db") as conn:
                kinds = conn.execute(
                    "SELECT kind, listener FROM usage WHERE subject = ?", (asset["cid"],)
                ).fetchall()
            assert kinds == [("like", peer.actor)]
    finally:
        await trio.to_thread.run_sync(daemon.stop)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA, as a home node's would be) and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_fedify_finds_the_creator_by_acct_over_https(tmp_path: Path) -> None:
    """``acct:alice@host`` as a Mastodon user types it: Fedify resolves it by WebFinger over
    https (the daemon serving TLS itself, its certificate trusted through NODE_EXTRA_CA_CERTS),
    then fetches the actor and follows."""
    require_fedify()
    from tests.harness.web_daemons import free_port

    cert, key = _self_signed(tmp_path)
    port = free_port()
    daemon = DaemonProcess(
        tmp_path / "alice",
        ARTDAG_PORT=str(port),
        ARTDAG_P2P="false",
        ARTDAG_USER="alice",
        ARTDAG_DOMAIN=f"https://127.0.0.1:{port}",
        ARTDAG_TLS_CERT=str(cert),
        ARTDAG_TLS_KEY=str(key),
        ARTDAG_AP_ALLOW_PRIVATE_FETCH="true",  # Fedify itself serves plain http on loopback
    )
    await trio.to_thread.run_sync(daemon.start)
    try:
        assert daemon.api_url.startswith("https://")
        async with fedify_peer(env={"NODE_EXTRA_CA_CERTS": str(cert)}) as peer:
            followed = await peer.follow(f"acct:alice@127.0.0.1:{port}")
            actor = f"https://127.0.0.1:{port}/users/alice"
            assert followed["target_actor"] == actor
            accepts = await peer.wait_for(
                lambda acts: [a for a in acts if a["type"] == "Accept"], timeout=20
            )
            assert accepts[0]["actor"] == actor
            assert peer.actor in await trio.to_thread.run_sync(_followers, daemon)
    finally:
        await trio.to_thread.run_sync(daemon.stop)
