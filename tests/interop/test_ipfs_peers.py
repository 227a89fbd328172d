"""Smoke tests: the two real IPFS peers (js-ipfs, in-process Kubo) start and behave.

Peers come from tests/harness/ipfs_peers.py; install them with scripts/install-test-peers.sh.
"""

from __future__ import annotations

import dag_cbor
from multiformats import CID, multihash, varint

from tests.harness.ipfs_peers import JsIpfs, require_js_ipfs

HELLO = b"hello\n"
# CIDv1 raw sha2-256 of b"hello\n", computed independently below as well.
HELLO_RAW_V1 = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
# `ipfs add` (CIDv0, dag-pb File leaf) of b"hello\n" -- the well-known Kubo value.
HELLO_V0 = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
EMPTY_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
EMPTY_RAW_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def raw_cid(data: bytes) -> str:
    return CID("base32", 1, "raw", multihash.digest(data, "sha2-256")).encode("base32")


def test_expected_constants_are_right():
    assert raw_cid(HELLO) == HELLO_RAW_V1
    assert raw_cid(b"") == EMPTY_RAW_V1


def test_js_ipfs_add_raw_leaves_v1(js_ipfs):
    assert (
        js_ipfs.add(HELLO, cid_version=1, raw_leaves=True, chunker="size-1048576") == HELLO_RAW_V1
    )
    assert js_ipfs.cat(HELLO_RAW_V1) == HELLO
    assert js_ipfs.block_get(HELLO_RAW_V1) == HELLO


def test_js_ipfs_add_v0_matches_kubo_value(js_ipfs):
    assert js_ipfs.add(HELLO, cid_version=0, raw_leaves=False, chunker="size-262144") == HELLO_V0


def test_js_ipfs_empty_file(js_ipfs):
    assert js_ipfs.add(b"", cid_version=1, raw_leaves=True) == EMPTY_RAW_V1
    assert js_ipfs.add(b"", cid_version=0, raw_leaves=False) == EMPTY_V0


def test_js_ipfs_missing_block_fails_fast(js_ipfs):
    import time

    missing = raw_cid(b"nobody has this block " + str(time.time()).encode())
    t0 = time.monotonic()
    try:
        js_ipfs.block_get(missing)
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("block/get of a missing block succeeded")
    assert time.monotonic() - t0 < 5


def test_kubo_add_and_cat(kubo):
    cid = kubo.add(HELLO)
    assert cid.startswith("Qm")
    assert cid == HELLO_V0
    assert kubo.cat(cid) == HELLO
    assert kubo.add(b"") == EMPTY_V0
    assert kubo.p2p_addrs and all(a.startswith("/ip4/127.0.0.1/tcp/") for a in kubo.p2p_addrs)


def test_js_and_kubo_agree_on_multichunk_v0(js_ipfs, kubo):
    # 600 KiB -> three 256 KiB-default chunks; both implementations' defaults must agree.
    data = bytes(range(256)) * (600 * 4)
    assert js_ipfs.add(data, cid_version=0, raw_leaves=False, chunker="size-262144") == kubo.add(
        data
    )


def read_car_v1(car: bytes) -> tuple[list[str], list[tuple[CID, bytes]]]:
    """Minimal CARv1 reader: (roots, [(cid, block bytes)]), every block hash-checked."""

    def uvarint(pos: int) -> tuple[int, int]:
        n, nbytes, _ = varint.decode_raw(car[pos : pos + 10])
        return n, pos + nbytes

    hlen, pos = uvarint(0)
    header = dag_cbor.decode(car[pos : pos + hlen])
    assert header["version"] == 1
    roots = [c.encode("base32") for c in header["roots"]]
    pos += hlen
    blocks = []
    while pos < len(car):
        n, pos = uvarint(pos)
        section = car[pos : pos + n]
        pos += n
        if section[:2] == b"\x12\x20":  # CIDv0: bare sha2-256 multihash
            cid_len = 34
        else:  # CIDv1: version, codec, hash code, digest length, digest
            p = 0
            for _ in range(3):
                p += varint.decode_raw(section[p : p + 10])[1]
            dlen, nb, _ = varint.decode_raw(section[p : p + 10])
            cid_len = p + nb + dlen
        cid = CID.decode(bytes(section[:cid_len]))
        data = section[cid_len:]
        assert multihash.digest(data, cid.hashfun.name) == cid.digest
        blocks.append((cid, data))
    return roots, blocks


def test_car_export_import_between_two_js_nodes(js_ipfs):
    import random

    data = random.Random(7).randbytes(3 * 1024 * 1024)  # 3 leaves of 1 MiB + 1 dag-pb root
    root = js_ipfs.add(data, cid_version=1, raw_leaves=True, chunker="size-1048576")
    car = js_ipfs.dag_export(root)
    roots, blocks = read_car_v1(car)
    assert roots == [root]
    assert len(blocks) == 4  # the 1 MiB chunker was honoured
    assert sorted(len(b) for c, b in blocks if c.codec.name == "raw") == [1024 * 1024] * 3
    require_js_ipfs()
    with JsIpfs() as other:
        assert other.dag_import(car) == [root]
        assert other.cat(root) == data


def test_dag_put_cbor_matches_local_cid(js_ipfs):
    encoded = dag_cbor.encode({"a": 1})
    local = CID("base32", 1, "dag-cbor", multihash.digest(encoded, "sha2-256")).encode("base32")
    assert js_ipfs.dag_put_cbor(encoded) == local
    assert js_ipfs.block_get(local) == encoded
