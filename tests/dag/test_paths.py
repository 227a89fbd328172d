"""Content paths (``dag.resolve_path``): through UnixFS directories and DAG-CBOR links, over a
real flat-file blockstore, and the errors each kind of bad path gives."""

from __future__ import annotations

import pytest

import dag
from dag.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, encode_node


async def _directory(
    store: dag.Blockstore, entries: dict[str, dag.Block], kind: UnixFSType = UnixFSType.DIRECTORY
) -> dag.Block:
    links = tuple(PBLink(b.cid, len(b.data), name) for name, b in sorted(entries.items()))
    block = dag.Block.encode(encode_node(PBNode(links, UnixFSData(kind).encode())), "dag-pb")
    await store.put(block)
    return block


async def _put(store: dag.Blockstore, block: dag.Block) -> dag.Block:
    await store.put(block)
    return block


def test_split_path_drops_empty_and_dot_segments_and_refuses_dot_dot():
    assert dag.split_path("") == []
    assert dag.split_path("/a//b/./c/") == ["a", "b", "c"]
    with pytest.raises(dag.InvalidPath, match=r"'\.\.'"):
        dag.split_path("a/../b")


async def test_an_empty_path_is_the_root(store):
    text = await _put(store, dag.Block.encode(b"hello\n"))
    walked = await dag.resolve_path(text.cid, [], store.get)
    assert (walked.root, walked.cid, walked.data) == (text.cid, text.cid, b"hello\n")
    assert walked.roots == [text.cid] and walked.blocks == [(text.cid, b"hello\n")]
    assert walked.name is None


async def test_unixfs_directories_by_link_name(store):
    page = await _put(store, dag.Block.encode(b"<p>hi</p>"))
    text = await _put(store, dag.Block.encode(b"just text\n"))
    site = await _directory(store, {"index.html": page})
    top = await _directory(store, {"a.txt": text, "site": site})
    walked = await dag.resolve_path(top.cid, ["site", "index.html"], store.get)
    assert walked.cid == page.cid and walked.data == b"<p>hi</p>"
    assert walked.roots == [top.cid, site.cid, page.cid]
    assert walked.blocks == [(top.cid, top.data), (site.cid, site.data), (page.cid, page.data)]
    assert walked.name == "index.html"
    with pytest.raises(dag.PathNotFound, match=r"no such file or directory: /site/b\.txt"):
        await dag.resolve_path(top.cid, ["site", "b.txt"], store.get)
    with pytest.raises(dag.PathNotFound, match=r"/a\.txt/x: a raw block has no links"):
        await dag.resolve_path(top.cid, ["a.txt", "x"], store.get)


async def test_a_unixfs_file_or_hamt_shard_is_not_followed(store, tmp_path):
    source = tmp_path / "file.bin"
    source.write_bytes(b"x" * 5000)
    added = await dag.import_file(store, source, dag.ImportParams(chunk_size=1024))
    with pytest.raises(dag.PathNotFound, match="/inside: not a directory"):
        await dag.resolve_path(added.cid, ["inside"], store.get)
    leaf = await _put(store, dag.Block.encode(b"leaf"))
    shard = await _directory(store, {"00leaf": leaf}, UnixFSType.HAMT_SHARD)
    with pytest.raises(dag.PathNotSupported, match="HAMT"):
        await dag.resolve_path(shard.cid, ["leaf"], store.get)


async def test_dag_cbor_fields_and_list_indexes_lead_to_links(store):
    media = await _put(store, dag.Block.encode(b"media"))
    thumb = await _put(store, dag.Block.encode(b"thumb"))
    record = await _put(
        store,
        dag.record_block(
            {"root": media.cid, "name": "clip", "parts": [thumb.cid, 3], "meta": {"t": thumb.cid}}
        ),
    )
    root = await dag.resolve_path(record.cid, ["root"], store.get)
    assert root.cid == media.cid and root.data == b"media"
    assert root.roots == [record.cid, media.cid]
    deep = await dag.resolve_path(record.cid, ["meta", "t"], store.get)
    assert deep.cid == thumb.cid and deep.name == "t"
    assert deep.roots == [record.cid, record.cid, thumb.cid]  # one per logical segment
    assert deep.blocks == [(record.cid, record.data), (thumb.cid, b"thumb")]
    assert (await dag.resolve_path(record.cid, ["parts", "0"], store.get)).cid == thumb.cid
    for segments, error, message in [
        (["name"], dag.PathNotSupported, "/name is data, not a link"),
        (["parts", "1"], dag.PathNotSupported, "/parts/1 is data, not a link"),
        (["name", "x"], dag.PathNotSupported, "cannot path into a str: /name/x"),
        (["nothing"], dag.PathNotFound, "no such field: /nothing"),
        (["parts", "2"], dag.PathNotFound, "no such list index: /parts/2"),
        (["parts", "01"], dag.PathNotFound, "no such list index: /parts/01"),
        (["parts", "-1"], dag.PathNotFound, "no such list index: /parts/-1"),
    ]:
        with pytest.raises(error) as caught:
            await dag.resolve_path(record.cid, segments, store.get)
        assert str(caught.value) == message


async def test_blocks_that_do_not_decode_and_blocks_the_getter_lacks(store):
    bad_pb = await _put(store, dag.Block.encode(b"\xff\xff", "dag-pb"))
    with pytest.raises(dag.CodecError, match=f"{dag.cid_to_str(bad_pb.cid)} is not valid dag-pb"):
        await dag.resolve_path(bad_pb.cid, ["x"], store.get)
    bad_cbor = await _put(store, dag.Block.encode(b"\xff", "dag-cbor"))
    with pytest.raises(dag.CodecError, match=dag.cid_to_str(bad_cbor.cid)):
        await dag.resolve_path(bad_cbor.cid, ["x"], store.get)
    absent = dag.Block.encode(b"never stored")
    top = await _directory(store, {"gone": absent})
    with pytest.raises(dag.BlockNotFound):  # what the getter raises passes through
        await dag.resolve_path(top.cid, ["gone"], store.get)
    assert issubclass(dag.PathError, dag.DagError)
