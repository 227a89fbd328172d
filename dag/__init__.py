"""Content-addressed storage: CIDs, DAG-CBOR, UnixFS, CAR and blockstores.

The lowest layer of artdag; it imports nothing from the others.
"""

from multiformats import CID

from ._groups import first_error
from ._varint import decode_uvarint, encode_uvarint
from .blockstore import Blockstore, Pin, VerifyReport
from .car import CarImportResult, CarReader, file_chunks, import_car, iter_car
from .cids import MAX_DIGEST_SIZE, Block, check_cid, cid_to_str, identity_data, parse_cid
from .completeness import IncompletePin
from .dagcbor import decode as decode_dagcbor
from .dagcbor import encode as encode_dagcbor
from .dagcbor import record_block, to_dag_json, to_jsonable
from .errors import (
    BlockCorrupt,
    BlockNotFound,
    CarError,
    CidError,
    CodecError,
    DagError,
    StoreError,
)
from .flatfs import FlatFsBlockstore
from .gc import DagSize, GcReport, StoreUsage
from .kubo import KuboBlockstore
from .paths import (
    BlockGetter,
    InvalidPath,
    PathError,
    PathNotFound,
    PathNotSupported,
    ResolvedPath,
    resolve_path,
    split_path,
    unixfs_node,
)
from .pin_table import PIN_REASONS, POLICY_REASONS
from .unixfs import (
    MAX_CHUNK_SIZE,
    FileBuilder,
    ImportParams,
    ImportResult,
    file_size,
    import_chunks,
    import_file,
    read_file,
)
from .walk import links_of, walk_dag

__all__ = [
    "CID",
    "MAX_CHUNK_SIZE",
    "MAX_DIGEST_SIZE",
    "PIN_REASONS",
    "POLICY_REASONS",
    "Block",
    "BlockCorrupt",
    "BlockGetter",
    "BlockNotFound",
    "Blockstore",
    "CarError",
    "CarImportResult",
    "CarReader",
    "CidError",
    "CodecError",
    "DagError",
    "DagSize",
    "FileBuilder",
    "FlatFsBlockstore",
    "GcReport",
    "ImportParams",
    "ImportResult",
    "IncompletePin",
    "InvalidPath",
    "KuboBlockstore",
    "PathError",
    "PathNotFound",
    "PathNotSupported",
    "Pin",
    "ResolvedPath",
    "StoreError",
    "StoreUsage",
    "VerifyReport",
    "check_cid",
    "cid_to_str",
    "decode_dagcbor",
    "decode_uvarint",
    "encode_dagcbor",
    "encode_uvarint",
    "file_chunks",
    "file_size",
    "first_error",
    "identity_data",
    "import_car",
    "import_chunks",
    "import_file",
    "iter_car",
    "links_of",
    "parse_cid",
    "read_file",
    "record_block",
    "resolve_path",
    "split_path",
    "to_dag_json",
    "to_jsonable",
    "unixfs_node",
    "walk_dag",
]
