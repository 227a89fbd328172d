"""The gateway's pure helpers: which format a request asks for (``?format=`` or ``Accept``),
the media type sniffed from a file's first bytes, ``Content-Disposition`` values, and
:class:`GatewayError`, the HTTP error every part of the gateway answers with. No I/O; the
fuzzer drives these directly. :mod:`webui.gateway` re-exports the public names.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

__all__ = [
    "CODEC_TYPES",
    "FILENAME_MAX",
    "FORMATS",
    "SNIFF_BYTES",
    "UNSUPPORTED_FORMATS",
    "GatewayError",
    "content_disposition",
    "requested_format",
    "sniff_content_type",
]

FILENAME_MAX = 255  # characters of a Content-Disposition file name (?filename=, a record's)
SNIFF_BYTES = 512

FORMATS = {  # ?format= value -> Accept media type
    "raw": "application/vnd.ipld.raw",
    "car": "application/vnd.ipld.car",
    "tar": "application/x-tar",
    "dag-json": "application/vnd.ipld.dag-json",
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "json": "application/json",
    "cbor": "application/cbor",
    "ipns-record": "application/vnd.ipfs.ipns-record",
}
_FORMAT_OF_TYPE = {media: name for name, media in FORMATS.items()}
UNSUPPORTED_FORMATS = frozenset({"tar", "ipns-record"})
# RFC 9110 §12.4.2, with OWS (space, tab) only: \s also takes \x1c-\x1f, which float() refuses
_Q_VALUE = re.compile(r"[ \t]*(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)[ \t]*")
CODEC_TYPES = {  # codecs served as they are when no format is asked for
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "dag-json": "application/vnd.ipld.dag-json",
    "json": "application/json",
    "cbor": "application/cbor",
}


class GatewayError(Exception):
    """An HTTP error the gateway answers with: a status and a one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


# -- formats, content types, file names ---------------------------------------------------


def requested_format(query_format: str | None, accept: str | None) -> tuple[str | None, bool]:
    """(format, from_accept): ``?format=`` wins over ``Accept``; among Accept's known IPLD
    types the highest q wins, earlier on ties. None: the default, deserialized response."""
    if query_format:
        chosen = query_format.strip().lower()
        if chosen not in FORMATS:
            known = ", ".join(FORMATS)
            raise GatewayError(400, f"unknown format {query_format!r}; known: {known}")
        return chosen, False
    best: tuple[float, int, str] | None = None
    for index, item in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        name = _FORMAT_OF_TYPE.get(media.lower())
        if name is None:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":  # a malformed weight: the type is not wanted
                q = float(value) if _Q_VALUE.fullmatch(value) else 0.0
            elif key.strip().lower() == "version" and name == "car" and value.strip() != "1":
                raise GatewayError(406, "only CAR version 1 is served")
        if q > 0 and (best is None or q > best[0]):
            best = (q, index, name)
    return (best[2], True) if best else (None, False)


def sniff_content_type(head: bytes, *, whole: bool) -> str:
    """A media type from a file's first bytes (``whole``: they are the whole file).

    Only passive types are sniffed: markup comes out as text/plain, so that content nobody
    labelled as HTML is never run as a page."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand in (b"avif", b"avis"):
            return "image/avif"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
        return riff.get(head[8:12], "application/octet-stream")
    if head.startswith(b"OggS"):
        return "video/ogg" if b"\x80theora" in head else "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF2):
        return "audio/mpeg"  # an ID3 tag or an MPEG audio layer III frame sync
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    text = _as_text(head, whole=whole)
    if text is None:
        return "application/octet-stream"
    if _looks_like_json(text, whole=whole):
        return "application/json"
    return "text/plain; charset=utf-8"


def _as_text(head: bytes, *, whole: bool) -> str | None:
    if not head:
        return None
    for cut in (0, 1, 2, 3) if not whole else (0,):  # a cut multi-byte character at the end
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    return None if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text) else text


def _looks_like_json(text: str, *, whole: bool) -> bool:
    if whole:
        try:
            return isinstance(json.loads(text), dict | list)
        except ValueError:
            return False
    return re.match(r'\s*(\{\s*("|\})|\[\s*[\[{"\d\]-])', text) is not None


def content_disposition(kind: str, filename: str | None) -> str:
    """``inline``/``attachment`` with an RFC 6266 file name: an ASCII fallback (others as ``_``)
    and, when that lost anything, the exact name as RFC 8187 ``filename*``."""
    if not filename:
        return kind
    filename = filename[:FILENAME_MAX]
    fallback = "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename.replace("/", "_")
    )
    value = f'{kind}; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")
    return value
