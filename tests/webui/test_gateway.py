"""The public ``/ipfs/<cid>`` path gateway, through the real hypercorn server on 127.0.0.1 over a
real node (flat-file blockstore, SQLite index), plus its pure Range/ETag/sniffing functions."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator

import httpx
import pytest

import dag
from daemon.core.node import Node
from dag.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, encode_node
from tests.harness.gateway import running_gateway
from tests.harness.media import make_video
from webui import (
    RangeKind,
    content_disposition,
    if_none_match_hits,
    if_range_allows,
    parse_range,
    requested_format,
    sniff_content_type,
)

CHUNK = 16 * 1024  # 3 MiB in 16 KiB leaves: 193 leaves under two parents (174 + 19) and a root
BIG = 3 * 1024 * 1024 + 12345
LEAVES = -(-BIG // CHUNK)
UNKNOWN = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.fixture
async def gateway(node):
    async with running_gateway(node) as client:
        yield client, node


@pytest.fixture
async def big_file(node, tmp_path):
    data = os.urandom(BIG)
    path = tmp_path / "noise.bin"
    path.write_bytes(data)
    added = await node.add_file(path, params=dag.ImportParams(chunk_size=CHUNK))
    return added.asset.cid, data


async def test_whole_file_with_its_headers(gateway, big_file):
    client, _ = gateway
    cid, data = big_file
    response = await client.get(f"/ipfs/{cid}")
    assert response.status_code == 200
    assert response.content == data
    h = response.headers
    assert h["etag"] == f'"{cid}"'
    assert h["cache-control"] == "public, max-age=29030400, immutable"
    assert h["accept-ranges"] == "bytes"
    assert h["content-length"] == str(BIG)
    assert h["x-ipfs-path"] == f"/ipfs/{cid}"
    assert h["x-ipfs-roots"] == cid
    assert h["content-type"] == "application/octet-stream"  # the index's mime for *.bin
    assert h["x-content-type-options"] == "nosniff"
    assert h["content-disposition"] == 'inline; filename="noise.bin"'


async def test_ranges_cross_chunk_boundaries(gateway, big_file):
    client, _ = gateway
    cid, data = big_file
    cases = {
        "bytes=0-0": (0, 1),  # first byte
        f"bytes={CHUNK - 10}-{3 * CHUNK + 9}": (CHUNK - 10, 3 * CHUNK + 10),  # middle, 4 leaves
        f"bytes={174 * CHUNK - 5}-{174 * CHUNK + 4}": (174 * CHUNK - 5, 174 * CHUNK + 5),
        "bytes=-100": (BIG - 100, BIG),  # suffix
        f"bytes={BIG - CHUNK - 7}-": (BIG - CHUNK - 7, BIG),  # open-ended
        f"bytes={BIG - 5}-{BIG + 1000}": (BIG - 5, BIG),  # last past the end is cut
    }
    for header, (start, stop) in cases.items():
        response = await client.get(f"/ipfs/{cid}", headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == data[start:stop], header
        assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{BIG}"
        assert response.headers["content-length"] == str(stop - start)
        assert response.headers["etag"] == f'"{cid}"'


async def test_unsatisfiable_and_multiple_ranges(gateway, big_file):
    client, _ = gateway
    cid, data = big_file
    for header in (f"bytes={BIG}-", f"bytes={BIG + 10}-{BIG + 20}", "bytes=-0"):
        response = await client.get(f"/ipfs/{cid}", headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{BIG}"
    several = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=0-9,20-29"})
    assert several.status_code == 200 and several.content == data
    assert "content-range" not in several.headers


async def test_head_sends_headers_without_body(gateway, big_file):
    client, _ = gateway
    cid, _ = big_file
    head = await client.head(f"/ipfs/{cid}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(BIG)
    assert head.headers["etag"] == f'"{cid}"'
    assert head.headers["content-type"] == "application/octet-stream"
    ranged = await client.head(f"/ipfs/{cid}", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == b""
    assert ranged.headers["content-range"] == f"bytes 10-19/{BIG}"
    assert ranged.headers["content-length"] == "10"
    missing = await client.head(f"/ipfs/{UNKNOWN}")
    assert missing.status_code == 404 and missing.content == b""


async def test_etag_gives_304_and_if_range_guards_ranges(gateway, big_file):
    client, _ = gateway
    cid, data = big_file
    same = await client.get(f"/ipfs/{cid}", headers={"If-None-Match": f'"x", W/"{cid}"'})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == f'"{cid}"'
    assert same.headers["cache-control"].endswith("immutable")
    other = await client.get(f"/ipfs/{cid}", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content == data
    stale = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and len(stale.content) == BIG
    fresh = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=0-9", "If-Range": f'"{cid}"'})
    assert fresh.status_code == 206 and fresh.content == data[:10]


async def test_errors_are_clear(gateway, big_file):
    client, _ = gateway
    cid, _ = big_file
    unknown = await client.get(f"/ipfs/{UNKNOWN}")
    assert unknown.status_code == 404 and UNKNOWN in unknown.text
    bad = await client.get("/ipfs/not-a-cid")
    assert bad.status_code == 400
    assert "not a valid CID" in bad.text and bad.text.count("\n") == 1
    assert (await client.get(f"/ipfs/{cid}?format=zip")).status_code == 400
    tar = await client.get(f"/ipfs/{cid}?format=tar")
    assert tar.status_code == 501 and "tar" in tar.text
    below_a_file = await client.get(f"/ipfs/{cid}/inside")
    assert below_a_file.status_code == 404 and "not a directory" in below_a_file.text


async def test_raw_block_matches_its_cid(gateway, big_file, node):
    client, _ = gateway
    cid, _ = big_file
    response = await client.get(f"/ipfs/{cid}?format=raw")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.ipld.raw"
    assert response.headers["content-disposition"] == f'attachment; filename="{cid}.bin"'
    assert response.headers["etag"] == f'"{cid}.raw"'
    digest = dag.parse_cid(cid).raw_digest
    assert hashlib.sha256(response.content).digest() == digest
    leaf = dag.links_of(dag.parse_cid(cid), response.content)[0]
    leaf = dag.links_of(leaf, await node.store.get(leaf))[0]  # two levels down: a raw leaf
    by_accept = await client.get(
        f"/ipfs/{dag.cid_to_str(leaf)}", headers={"Accept": "application/vnd.ipld.raw"}
    )
    assert by_accept.headers["content-type"] == "application/vnd.ipld.raw"
    assert by_accept.headers["content-location"] == f"/ipfs/{dag.cid_to_str(leaf)}?format=raw"
    assert len(by_accept.content) == CHUNK
    assert hashlib.sha256(by_accept.content).digest() == leaf.raw_digest


async def test_car_reads_back_to_the_same_blocks(gateway, big_file, node):
    client, _ = gateway
    cid, _ = big_file
    response = await client.get(f"/ipfs/{cid}?format=car")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.ipld.car; version=1"
    reader = dag.CarReader()
    blocks = reader.feed(response.content)
    reader.finish()
    assert reader.roots == [dag.parse_cid(cid)]
    stored = [c async for c, _ in dag.walk_dag(node.store, [dag.parse_cid(cid)])]
    assert [b.cid for b in blocks] == stored and len(stored) == LEAVES + 2 + 1
    exported = b"".join([chunk async for chunk in node.export_car(cid)])
    assert response.content == exported  # the same bytes as `artdag` exports


@pytest.mark.ffmpeg
async def test_mp4_content_type_from_index_and_from_sniffing(gateway, node, tmp_path):
    client, _ = gateway
    video = make_video(tmp_path / "clip.mp4", seconds=0.5, size="64x36", container="mp4")
    added = await node.add_file(video)
    indexed = await client.head(f"/ipfs/{added.asset.cid}")
    assert indexed.headers["content-type"] == "video/mp4"
    assert indexed.headers["content-disposition"] == 'inline; filename="clip.mp4"'
    # the same bytes under another layout: a CID the index does not know, so it is sniffed
    other = await dag.import_file(node.store, video, dag.ImportParams(chunk_size=4096))
    sniffed = await client.get(f"/ipfs/{dag.cid_to_str(other.cid)}")
    assert sniffed.headers["content-type"] == "video/mp4"
    assert "content-disposition" not in sniffed.headers
    assert sniffed.content == video.read_bytes()
    named = await client.head(f"/ipfs/{dag.cid_to_str(other.cid)}?filename=тест.mp4&download=true")
    assert named.headers["content-disposition"] == (
        "attachment; filename=\"____.mp4\"; filename*=UTF-8''%D1%82%D0%B5%D1%81%D1%82.mp4"
    )


async def test_records_as_dag_cbor_dag_json_html_and_by_path(gateway, node):
    client, _ = gateway
    added = await node.add_stream(_chunks(b"hello gateway\n"), name="hello.txt")
    record = added.asset.record
    plain = await client.get(f"/ipfs/{record}")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/vnd.ipld.dag-cbor"
    assert plain.content == await node.store.get(dag.parse_cid(record))
    as_json = await client.get(f"/ipfs/{record}?format=dag-json")
    assert as_json.headers["content-type"] == "application/vnd.ipld.dag-json"
    body = json.loads(as_json.content)
    assert body["type"] == "asset" and body["root"] == {"/": added.asset.cid}
    assert body["signer"] == node.did
    page = await client.get(f"/ipfs/{record}", headers={"Accept": "text/html,*/*"})
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<a href="/ipfs/{added.asset.cid}">' in page.text
    assert page.headers["content-security-policy"] == "sandbox"
    media = await client.get(f"/ipfs/{record}/root")
    assert media.content == b"hello gateway\n"
    assert media.headers["content-type"] == "text/plain"
    assert media.headers["x-ipfs-roots"] == f"{record},{added.asset.cid}"
    assert (await client.get(f"/ipfs/{record}/name")).status_code == 501
    assert (await client.get(f"/ipfs/{record}/nothing")).status_code == 404
    cbor = await client.get(f"/ipfs/{added.asset.cid}?format=dag-json")
    assert json.loads(cbor.content) == {"/": {"bytes": "aGVsbG8gZ2F0ZXdheQo"}}


async def test_unixfs_directory_paths(gateway, node):
    client, _ = gateway
    text = dag.Block.encode(b"just text\n")
    page = dag.Block.encode(b"<p>hi</p>")
    await node.store.put_many([text, page])
    inner = await _directory(node, {"index.html": page})
    top = await _directory(node, {"a.txt": text, "site": inner})
    redirect = await client.get(f"/ipfs/{top}", follow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"/ipfs/{top}/"
    listing = await client.get(f"/ipfs/{top}/")
    assert listing.status_code == 200 and 'href="a.txt"' in listing.text
    assert listing.headers["etag"].startswith('"DirIndex-')
    a = await client.get(f"/ipfs/{top}/a.txt")
    assert a.content == b"just text\n" and a.headers["content-type"] == "text/plain"
    assert a.headers["etag"] == f'"{dag.cid_to_str(text.cid)}"'
    assert a.headers["x-ipfs-roots"] == f"{top},{dag.cid_to_str(text.cid)}"
    site = await client.get(f"/ipfs/{top}/site/")
    assert site.content == b"<p>hi</p>" and site.headers["content-type"] == "text/html"
    assert site.headers["content-security-policy"] == "sandbox"
    missing = await client.get(f"/ipfs/{top}/b.txt")
    assert missing.status_code == 404 and "/b.txt" in missing.text
    car = await client.get(f"/ipfs/{top}/a.txt?format=car")
    reader = dag.CarReader()
    assert [b.cid for b in reader.feed(car.content)] == [dag.parse_cid(top), text.cid]
    assert reader.roots == [dag.parse_cid(top)]


async def test_range_cap_and_fetch_hook(node, big_file, tmp_path):
    """``fetch_missing`` is fed from a second flat-file blockstore standing in for the network
    (bitswap is the lead's to wire); blocks are removed from the node's store to be missing."""
    cid, data = big_file
    elsewhere = dag.FlatFsBlockstore(tmp_path / "elsewhere")
    async for block_cid, block_data in dag.walk_dag(node.store, [dag.parse_cid(cid)]):
        await elsewhere.put(dag.Block(block_cid, block_data))
    leaves = dag.links_of(dag.parse_cid(cid), await node.store.get(dag.parse_cid(cid)))
    gone = dag.links_of(leaves[0], await node.store.get(leaves[0]))[3:6]
    for leaf in gone:
        await node.store.delete(leaf)
    asked: list[str] = []

    async def fetch_missing(missing: dag.CID) -> bool:
        asked.append(dag.cid_to_str(missing))
        if not await elsewhere.has(missing):
            return False
        await node.store.put(dag.Block(missing, await elsewhere.get(missing)))
        return True

    async with running_gateway(node) as client:  # no hook: the stream ends short
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"/ipfs/{cid}")
    async with running_gateway(node, max_range_bytes=10_000, fetch_missing=fetch_missing) as c:
        capped = await c.get(f"/ipfs/{cid}", headers={"Range": "bytes=100-"})
        assert capped.status_code == 206
        assert capped.headers["content-range"] == f"bytes 100-10099/{BIG}"
        assert capped.content == data[100:10100]
        whole = await c.get(f"/ipfs/{cid}")
        assert whole.content == data
        assert asked == [dag.cid_to_str(leaf) for leaf in gone]
        unknown = await c.get(f"/ipfs/{UNKNOWN}")  # not here, and the hook did not fetch it
        assert unknown.status_code == 504 and unknown.headers["retry-after"] == "30"
        assert asked[-1] == UNKNOWN


# -- the pure parts ---------------------------------------------------------------------------


def test_parse_range_cases():
    assert parse_range(None, 10).kind is RangeKind.FULL
    assert parse_range("items=0-1", 10).kind is RangeKind.FULL
    assert parse_range("bytes=5-2", 10).kind is RangeKind.FULL  # invalid: ignored
    assert parse_range("bytes=x-", 10).kind is RangeKind.FULL
    assert parse_range("bytes=-", 10).kind is RangeKind.FULL
    assert parse_range("bytes=0-1, 4-5", 10).kind is RangeKind.FULL
    r = parse_range("bytes=2-", 10)
    assert (r.kind, r.range.start, r.range.stop, r.status) == (RangeKind.PARTIAL, 2, 10, 206)
    assert parse_range("bytes=-20", 10).range.start == 0
    assert parse_range("bytes=0-", 0).kind is RangeKind.UNSATISFIABLE
    assert parse_range("bytes=-3", 0).kind is RangeKind.UNSATISFIABLE
    assert parse_range("bytes=10-", 10).status == 416
    assert parse_range("bytes=0-", 100, max_bytes=7).range.stop == 7


def test_etag_preconditions():
    assert if_none_match_hits('"a", "b"', '"b"')
    assert if_none_match_hits('W/"b"', '"b"') and if_none_match_hits("*", '"b"')
    assert not if_none_match_hits('"a"', '"b"') and not if_none_match_hits(None, '"b"')
    assert if_range_allows(None, '"b"') and if_range_allows('"b"', '"b"')
    assert not if_range_allows('W/"b"', '"b"')
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", '"b"')


def test_sniffing_and_names():
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n....", whole=False) == "image/png"
    assert sniff_content_type(b"\xff\xd8\xff\xe0", whole=False) == "image/jpeg"
    assert sniff_content_type(b"GIF89a..", whole=False) == "image/gif"
    assert sniff_content_type(b"\x1a\x45\xdf\xa3\x01\x00webm", whole=False) == "video/webm"
    assert sniff_content_type(b"OggS\x00\x02" + b"OpusHead", whole=False) == "audio/ogg"
    assert sniff_content_type(b"ID3\x04", whole=False) == "audio/mpeg"
    assert sniff_content_type(b"\xff\xfb\x90\x00", whole=False) == "audio/mpeg"
    assert sniff_content_type(b"RIFF\x00\x00\x00\x00WAVEfmt ", whole=False) == "audio/wav"
    assert sniff_content_type(b'{"a": [1]}', whole=True) == "application/json"
    assert sniff_content_type(b"{not json}", whole=True).startswith("text/plain")
    assert sniff_content_type(b"<script>alert(1)</script>", whole=True).startswith("text/plain")
    assert sniff_content_type("caf\u00e9".encode()[:-1], whole=False).startswith("text/plain")
    assert sniff_content_type(b"\x00\x01\x02", whole=True) == "application/octet-stream"
    assert content_disposition("inline", 'a"b\\c.txt') == (
        "inline; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"
    )
    assert requested_format(None, "text/html, application/vnd.ipld.car;q=0.5") == ("car", True)
    assert requested_format("raw", "application/vnd.ipld.car") == ("raw", False)
    assert requested_format(None, "*/*") == (None, False)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _directory(node: Node, entries: dict[str, dag.Block | str]) -> str:
    links = []
    for name, target in sorted(entries.items()):
        if isinstance(target, str):
            cid = dag.parse_cid(target)
            links.append(PBLink(cid, len(await node.store.get(cid)), name))
        else:
            links.append(PBLink(target.cid, len(target.data), name))
    data = UnixFSData(UnixFSType.DIRECTORY).encode()
    block = dag.Block.encode(encode_node(PBNode(tuple(links), data)), "dag-pb")
    await node.store.put(block)
    return dag.cid_to_str(block.cid)
