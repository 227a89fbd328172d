"""The ``artdag`` CLI, run as a real subprocess against a temporary ARTDAG_HOME."""

from __future__ import annotations

import base64
import json
import os
import pty
import shutil
import stat
import subprocess

import dag_cbor
import pytest
from multiformats import CID, multihash

import dag
from tests.harness.cli_helpers import ARTDAG, Home
from tests.harness.wire import uvarint

pytestmark = pytest.mark.cli


def one_line_error(proc) -> str:
    err = proc.stderr.decode().strip()
    assert proc.returncode != 0
    assert "\n" not in err, err
    assert err.startswith("artdag: error: "), err
    assert "Traceback" not in err
    return err


def test_init_is_idempotent_and_keeps_secrets_private(home):
    first = home.out("init").strip()
    second = home.out("init").strip()
    assert first == second
    assert first.startswith("did:key:z6Mk")
    for name in ("identity.key", "api-token"):
        mode = stat.S_IMODE((home.path / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700
    assert "[store]" in (home.path / "config.toml").read_text()


def test_add_cat_assets_round_trip(home, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "clip.bin"
    src.write_bytes(data)
    proc = home.run("add", str(src), "--name", "My clip", "--tag", "b", "--tag", "a")
    cid = proc.stdout.decode().strip().splitlines()[-1]
    assert CID.decode(cid).version == 1
    assert home.run("cat", cid).stdout == data
    part = home.run("cat", cid, "--offset", str(1024 * 1024 - 3), "--length", "10").stdout
    assert part == data[1024 * 1024 - 3 : 1024 * 1024 + 7]
    listed = json.loads(home.out("assets", "--json"))
    assert [(a["cid"], a["name"], a["tags"], a["size"]) for a in listed] == [
        (cid, "My clip", ["a", "b"], len(data))
    ]
    assert json.loads(home.out("assets", "--json", "--tag", "zzz")) == []


def test_add_records_a_signed_asset_record(home, tmp_path):
    src = tmp_path / "note.txt"
    src.write_bytes(b"hello\n")
    cid = home.last_line("add", str(src))
    asset = json.loads(home.out("assets", "--json"))[0]
    record = json.loads(home.out("record", "verify", asset["record"]))
    assert record["type"] == "asset"
    assert record["root"] == {"/": cid}
    assert record["signer"] == home.out("init").strip()
    assert record["mime"] == "text/plain"
    shown = json.loads(home.out("dag", "get", asset["record"]))
    assert shown == record


def test_add_with_cid_v0_matches_known_ipfs_cid(home, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello\n")
    # `echo hello | ipfs add` has printed this CID since 2015
    assert home.last_line("add", str(src), "--cid-version", "0") == (
        "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
    )


def test_export_import_between_homes(home, tmp_path):
    other = Home(tmp_path / "other")
    data = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    cid = home.last_line("add", str(tmp_path / "f"))
    car = tmp_path / "f.car"
    home.run("export", cid, "-o", str(car))
    assert car.stat().st_size > len(data)
    assert other.last_line("import", str(car)) == cid
    assert other.run("cat", cid).stdout == data
    assert other.run("verify").returncode == 0


def test_dag_get_of_a_unixfs_node(home, tmp_path):
    (tmp_path / "f").write_bytes(b"x" * (1024 * 1024 + 1))
    cid = home.last_line("add", str(tmp_path / "f"))
    node = json.loads(home.out("dag", "get", cid))
    assert len(node["Links"]) == 2
    assert [link["Tsize"] for link in node["Links"]] == [1024 * 1024, 1]


def test_missing_and_unreadable_files_give_one_line_errors(home, tmp_path):
    err = one_line_error(home.run("add", str(tmp_path / "nope.mp4"), check=False))
    assert "nope.mp4" in err and "No such file" in err
    err = one_line_error(home.run("add", str(tmp_path), check=False))
    assert "directory" in err
    err = one_line_error(home.run("import", str(tmp_path / "nope.car"), check=False))
    assert "nope.car" in err


def test_bad_cid_gives_one_line_error(home):
    err = one_line_error(home.run("cat", "bafynotacid", check=False))
    assert "not a valid CID" in err
    missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    err = one_line_error(home.run("cat", missing, check=False))
    assert "not found" in err


def _exported(home, tmp_path) -> tuple[str, bytes]:
    (tmp_path / "f").write_bytes(os.urandom(1024 * 1024 + 100))
    cid = home.last_line("add", str(tmp_path / "f"))
    home.run("export", cid, "-o", str(tmp_path / "good.car"))
    return cid, (tmp_path / "good.car").read_bytes()


def _blocks_in(home_path) -> int:
    return sum(1 for _ in (home_path / "store" / "blocks").glob("*/*.data"))


def test_truncated_car_is_refused_and_stores_nothing(home, tmp_path):
    cid, car = _exported(home, tmp_path)
    other = Home(tmp_path / "other")
    other.run("init")
    for cut in (5, 60, len(car) // 2, len(car) - 1):
        (tmp_path / "bad.car").write_bytes(car[:cut])
        err = one_line_error(other.run("import", str(tmp_path / "bad.car"), check=False))
        assert "CAR" in err
        _left_for_gc(other)
    one_line_error(other.run("cat", cid, check=False))


def test_car_with_a_wrong_block_is_refused_and_stores_nothing(home, tmp_path):
    _, car = _exported(home, tmp_path)
    bad = bytearray(car)
    bad[len(car) // 2] ^= 0xFF  # inside the first (1 MiB) leaf's bytes
    (tmp_path / "bad.car").write_bytes(bytes(bad))
    other = Home(tmp_path / "other")
    err = one_line_error(other.run("import", str(tmp_path / "bad.car"), check=False))
    assert "does not match" in err
    _left_for_gc(other)


def _left_for_gc(home: Home) -> None:
    """A failed import pins nothing; the blocks it wrote (another writer may have stored the
    same ones meanwhile) are garbage that the next collection removes."""
    home.run("gc", "--grace", "0")
    assert _blocks_in(home.path) == 0


def _car_of(payload: bytes) -> tuple[CID, bytes]:
    cid = CID("base32", 1, "dag-cbor", multihash.digest(payload, "sha2-256"))
    header = dag_cbor.encode({"roots": [cid], "version": 1})
    section = bytes(cid) + payload
    return cid, uvarint(len(header)) + header + uvarint(len(section)) + section


def test_malformed_records_are_refused(home, tmp_path):
    """A CAR may carry well-hashed blocks that are not valid records: importing stores them
    (their bytes match their CIDs) but reading them as records fails with the field named."""
    bad_asset = dag_cbor.encode({"type": "asset", "version": 1, "name": "x", "size": "ten"})
    cid, car = _car_of(bad_asset)
    (tmp_path / "r.car").write_bytes(car)
    assert home.last_line("import", str(tmp_path / "r.car")) == str(cid)
    err = one_line_error(home.run("record", "verify", str(cid), check=False))
    assert "asset" in err and ("size" in err or "root" in err)


def test_non_canonical_dag_cbor_in_a_car_is_refused(home, tmp_path):
    cid, car = _car_of(bytes.fromhex("a2616201616101"))  # {"b":1,"a":1}: keys out of order
    (tmp_path / "r.car").write_bytes(car)
    err = one_line_error(home.run("import", str(tmp_path / "r.car"), check=False))
    assert "canonical" in err and str(cid) in err
    assert _blocks_in(home.path) == 0


def test_bad_config_value_is_named(home):
    err = one_line_error(home.run("assets", check=False, ARTDAG_PORT="eighty"))
    assert "ARTDAG_PORT" in err
    home.run("init")
    (home.path / "config.toml").write_text("[http]\nprot = 1\n")
    err = one_line_error(home.run("assets", check=False))
    assert "prot" in err


def test_verify_reports_a_corrupted_block(home, tmp_path):
    (tmp_path / "f").write_bytes(os.urandom(4096))
    cid = home.last_line("add", str(tmp_path / "f"))  # one raw block: the file is its CID
    key = base64.b32encode(bytes(dag.parse_cid(cid).digest)).decode().rstrip("=")
    block = next((home.path / "store" / "blocks").glob(f"*/{key}.data"))
    raw = bytearray(block.read_bytes())
    raw[0] ^= 1
    block.write_bytes(bytes(raw))
    proc = home.run("verify", check=False)
    assert proc.returncode == 1
    assert "bad block" in proc.stdout.decode()
    assert home.run("verify", "--repair", check=False).returncode == 1
    repaired = home.run("verify", check=False)  # the bad block is gone: its pin lacks it now
    assert repaired.returncode == 1
    assert f"pin {cid} (recursive) is incomplete: missing 1 block" in repaired.stdout.decode()
    home.run("add", str(tmp_path / "f"))
    assert home.run("verify").returncode == 0


def test_unreadable_file_gives_one_line_error(home, tmp_path):
    """Root reads any file whatever its mode, so as root the command runs without the
    capabilities that bypass file permissions (setpriv, from util-linux)."""
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"x" * 100)
    secret.chmod(0o000)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux's setpriv is part of every Debian system"
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    proc = subprocess.run(
        [*prefix, ARTDAG, "add", str(secret)], env=home.env(), capture_output=True, timeout=60
    )
    err = one_line_error(proc)
    assert "secret.mp4" in err and "Permission denied" in err


def test_add_shows_a_progress_bar_on_a_terminal(home, tmp_path):
    (tmp_path / "f").write_bytes(os.urandom(8 * 1024 * 1024))
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [ARTDAG, "add", str(tmp_path / "f")],
            env=home.env(COLUMNS="100", TERM="xterm"),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:
                break
            if not piece:
                break
            shown += piece
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    text = shown.decode(errors="replace")
    assert "adding f" in text and "MB" in text, text[-500:]
    assert proc.stdout.decode().strip().splitlines()[-1].startswith("bafy")
    # not a terminal: no bar, nothing but the summary on stderr
    quiet = home.run("add", str(tmp_path / "f"))
    assert "adding" not in quiet.stderr.decode()


def test_environment_overrides_are_not_written_into_the_config(home, tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    proc = home.run(
        "add",
        str(tmp_path / "f"),
        check=False,
        ARTDAG_STORE="kubo",
        ARTDAG_KUBO_URL="http://127.0.0.1:9",
    )
    err = one_line_error(proc)
    assert "cannot reach the IPFS node at http://127.0.0.1:9" in err
    assert 'backend = "embedded"' in (home.path / "config.toml").read_text()
    assert home.last_line("add", str(tmp_path / "f")).startswith("bafk")
    (home.path / "config.toml").write_text("[import]\ncid_version = 0\n")
    assert home.last_line("add", str(tmp_path / "f")).startswith("Qm")


def test_bad_options_fail_before_anything_is_stored(home, tmp_path):
    (tmp_path / "f").write_bytes(os.urandom(3 * 1024 * 1024))
    err = one_line_error(home.run("add", str(tmp_path / "f"), "--tag", "t" * 65, check=False))
    assert "tags[0]" in err
    err = one_line_error(home.run("add", str(tmp_path / "f"), "--chunk-size", "0", check=False))
    assert "chunk size" in err
    err = one_line_error(
        home.run("add", str(tmp_path / "f"), "--chunk-size", str(2 << 20), check=False)
    )
    assert "chunk size" in err
    assert _blocks_in(home.path) == 0
