"""Allowlists for what an untrusted render job may ask ffmpeg to do: filters, output options,
encoders and muxers; and the checks that enforce them before any process starts.

Threat model (docs/decisions.md, "ffmpeg and rendering"): a job's filter graph and
output options come from a stranger. ffmpeg filters can read any path or URL (``movie``,
``amovie``), leak a file into the picture (``drawtext=textfile=``, ``subtitles``, ``ass``),
load a shared library (``ladspa=file=``, ``lv2``, ``frei0r``: code execution), open a
listening socket (``zmq``, ``azmq``), run commands from a file (``sendcmd``), or never end
(``loop=loop=-1``). Since FFmpeg 7 any filter option written ``/key=path`` loads its value from
a file. Output options can name files too (``-passlogfile``, ``-x264-params stats=...``,
``-filter_script``, muxers such as hls, segment, tee, image2).

So everything is refused unless listed here:

- ``check_filter_graph`` parses the ``-filter_complex`` text the way libavfilter does (two
  levels of ``av_get_token``: first the filter arguments up to an unquoted ``[ ] , ;``, then
  ``key=value`` pairs split on ``:``, each level removing ``'quotes'`` and ``\\`` escapes) and
  refuses a filter not in ``ALLOWED_FILTERS``, an option key that is not a plain identifier
  (``/key`` file loading), an option named like a file, any value holding ``://`` or starting
  with ``/`` or ``~``, and ``loop``/``aloop`` counts or sizes that are not small plain integers.
  The parser is hand-written because ffmpeg has no "parse only" mode that would not also open
  what the graph names.
- ``check_output_args`` accepts only the options in ``_OUTPUT_OPTIONS`` with validated values,
  encoders in ``ALLOWED_ENCODERS`` and muxers in ``ALLOWED_MUXERS``.

Both raise ``GraphRefused`` naming the filter or option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from renderer.errors import GraphRefused

__all__ = [
    "ALLOWED_ENCODERS",
    "ALLOWED_FILTERS",
    "ALLOWED_MUXERS",
    "LOOP_MAX_COUNT",
    "LOOP_MAX_FRAMES",
    "LOOP_MAX_SAMPLES",
    "FilterCall",
    "check_filter_graph",
    "check_output_args",
    "muxer_for_suffix",
    "output_duration_arg",
    "parse_filter_graph",
]

# fmt: off
ALLOWED_FILTERS: frozenset[str] = frozenset({
    # pass-through and plumbing
    "null", "anull", "copy", "acopy", "split", "asplit", "concat", "format", "aformat", "fps",
    "trim", "atrim", "setpts", "asetpts", "settb",
    "asettb", "setsar", "setdar", "select", "aselect", "showinfo", "loop", "aloop", "tpad",
    "apad",
    # geometry
    "scale", "crop", "rotate", "transpose", "hflip", "vflip", "pad", "overlay", "hstack",
    "vstack", "xstack", "zoompan",
    # colour and picture effects
    "eq", "hue", "colorchannelmixer", "colorbalance", "colorlevels", "negate", "lutrgb", "lutyuv",
    "lut", "geq", "blend", "tblend",
    "noise", "rgbashift", "chromashift", "lagfun", "gblur", "boxblur", "unsharp", "edgedetect",
    "shuffleplanes", "vignette",
    "chromakey", "colorkey", "alphamerge", "fade", "xfade", "framestep", "palettegen",
    "paletteuse", "grayworld", "tmix",
    "convolution",
    # sources (no input needed: backgrounds, silence)
    "color", "anullsrc", "sine",
    # audio
    "volume", "afade", "acrossfade", "atempo", "aresample", "asetrate", "amerge", "amix", "pan",
    "channelsplit", "join", "highpass",
    "lowpass", "equalizer", "bass", "treble", "aecho", "dynaudnorm", "showwaves", "showspectrum",
})
# fmt: on
"""Filters a job may use. None of them takes a file, a URL, a library or a socket.

Left out on purpose: movie amovie (read any path/URL), drawtext subtitles ass (read files),
ladspa lv2 frei0r (load code), zmq azmq (listen on a socket), sendcmd asendcmd (read command
files), lut3d haldclut curves (read files or load presets), ocr lensfun (data files),
reverse areverse (buffer the whole stream in memory). ``amix`` is allowed but is not bit-exact
across CPU paths (docs/decisions.md); the pinned ``-cpuflags`` keeps it stable on one build.
"""

ALLOWED_ENCODERS: frozenset[str] = frozenset({
    "ffv1", "libx264", "libvpx-vp9", "libvpx", "rawvideo", "png", "flac", "pcm_s16le",
    "pcm_f32le", "aac", "libopus", "copy",
})  # fmt: skip
"""Encoders (``-c:v``/``-c:a``) a job may ask for; ``copy`` remuxes already-probed streams."""

ALLOWED_MUXERS: frozenset[str] = frozenset({
    "matroska", "webm", "mp4", "mov", "wav", "flac", "null", "streamhash", "framemd5",
    "framehash", "ffmetadata",
})  # fmt: skip
"""Muxers (``-f``) a job may ask for; each writes only the one output file (or nothing)."""

_SUFFIX_MUXERS = {
    ".mkv": "matroska",
    ".webm": "webm",
    ".mp4": "mp4",
    ".mov": "mov",
    ".wav": "wav",
    ".flac": "flac",
}

LOOP_MAX_FRAMES = 1000
"""Largest ``loop`` size in frames (the filter keeps them all in memory)."""
LOOP_MAX_SAMPLES = 48000 * 60
"""Largest ``aloop`` size in samples."""
LOOP_MAX_COUNT = 10000
"""Largest ``loop``/``aloop`` repeat count (``-1``, endless, is refused)."""

_FILE_OPTION_NAMES = frozenset({
    "file", "filename", "textfile", "fontfile", "url", "path", "psfile", "model", "commands",
    "fontsdir", "dumpfile", "stats_file", "log_fname",
})  # fmt: skip
_KEY = re.compile(r"[A-Za-z0-9_./-]+=")  # libavutil is_key_char, then '='
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_FILTER_NAME = re.compile(r"[A-Za-z0-9_]+(?:@[A-Za-z0-9_.-]+)?\Z")
_LABEL = re.compile(r"\[[A-Za-z0-9_.:?-]*\]")


@dataclass(frozen=True)
class FilterCall:
    """One filter of a parsed graph: its name and its (key or None, value) options."""

    name: str
    options: tuple[tuple[str | None, str], ...]


def _get_token(s: str, i: int, terms: str) -> tuple[str, int]:
    """libavutil ``av_get_token``: read from ``s[i]`` up to an unquoted, unescaped char of
    ``terms``, removing one level of ``'quotes'`` and ``\\`` escapes; strip the unquoted ends."""
    n = len(s)
    while i < n and s[i] in " \n\t\r":
        i += 1
    out: list[str] = []
    end_keep = 0  # length of ``out`` that is quoted/escaped, so never stripped
    while i < n and s[i] not in terms:
        c = s[i]
        if c == "\\":
            if i + 1 < n:
                out.append(s[i + 1])
                i += 2
            else:
                i += 1
            end_keep = len(out)
        elif c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise GraphRefused("filter graph has an unterminated quote")
            out.append(s[i + 1 : j])
            i = j + 1
            end_keep = len(out)
        else:
            out.append(c)
            i += 1
    # strip trailing whitespace that was neither quoted nor escaped
    while len(out) > end_keep and out[-1] in " \n\t\r":
        out.pop()
    return "".join(out), i


def _split_options(args: str) -> list[tuple[str | None, str]]:
    """Split a filter's argument string into (key or None, value) as libavfilter does."""
    opts: list[tuple[str | None, str]] = []
    i, n = 0, len(args)
    while i < n:
        m = _KEY.match(args, i)
        key: str | None = None
        if m:
            key = m.group(0)[:-1]
            i = m.end()
        value, i = _get_token(args, i, ":")
        opts.append((key, value))
        if i < n and args[i] == ":":
            i += 1
            if i == n:
                opts.append((None, ""))
    return opts


def parse_filter_graph(graph: str) -> list[FilterCall]:
    """Parse ``-filter_complex`` text into its filters (raises GraphRefused when malformed)."""
    calls: list[FilterCall] = []
    i, n = 0, len(graph)

    def skip_ws(k: int) -> int:
        while k < n and graph[k] in " \n\t\r":
            k += 1
        return k

    def labels(k: int) -> int:
        k = skip_ws(k)
        while k < n and graph[k] == "[":
            m = _LABEL.match(graph, k)
            if not m:
                raise GraphRefused(f"filter graph has a malformed link label at offset {k}")
            k = skip_ws(m.end())
        return k

    if not graph.strip():
        raise GraphRefused("filter graph is empty")
    while True:
        i = labels(i)
        name, i = _get_token(graph, i, "=,;[")
        if not name:
            raise GraphRefused(f"filter graph has a missing filter name at offset {i}")
        if not _FILTER_NAME.match(name):
            raise GraphRefused(f"filter name {name!r} is not allowed")
        args = ""
        if i < n and graph[i] == "=":
            args, i = _get_token(graph, i + 1, "[],;")
        calls.append(FilterCall(name.split("@", 1)[0], tuple(_split_options(args))))
        i = labels(i)
        if i >= n:
            return calls
        if graph[i] in ",;":
            i += 1
            continue
        raise GraphRefused(f"filter graph has unexpected {graph[i]!r} at offset {i}")


def _plain_int(call: FilterCall, key: str, value: str, cap: int) -> None:
    if not re.fullmatch(r"\d{1,10}", value) or int(value) > cap:
        raise GraphRefused(
            f"filter {call.name!r}: {key}={value!r} must be a plain integer from 0 to {cap}"
        )


def _check_loop(call: FilterCall) -> None:
    size_cap = LOOP_MAX_FRAMES if call.name == "loop" else LOOP_MAX_SAMPLES
    positional = ("loop", "size", "start", "time")
    for idx, (key, value) in enumerate(call.options):
        name = key if key is not None else (positional[idx] if idx < 4 else "?")
        if name == "loop":
            _plain_int(call, "loop", value, LOOP_MAX_COUNT)
        elif name == "size":
            _plain_int(call, "size", value, size_cap)


_OPTION_CHECKS: dict[str, Callable[[FilterCall], None]] = {
    "loop": _check_loop,
    "aloop": _check_loop,
}


def check_filter_graph(graph: str) -> None:
    """Raise GraphRefused for a filter not allowed or an option that could name a file/URL."""
    for call in parse_filter_graph(graph):
        if call.name not in ALLOWED_FILTERS:
            raise GraphRefused(f"filter {call.name!r} is not allowed")
        for key, value in call.options:
            if key is not None:
                if not _PLAIN_KEY.match(key):
                    raise GraphRefused(f"filter {call.name!r}: option key {key!r} is not allowed")
                if key.lower() in _FILE_OPTION_NAMES:
                    raise GraphRefused(f"filter {call.name!r}: option {key!r} is not allowed")
            stripped = value.strip()
            if "://" in stripped or stripped.startswith(("/", "~")):
                raise GraphRefused(
                    f"filter {call.name!r}: option value {value!r} looks like a path or URL"
                )
        extra = _OPTION_CHECKS.get(call.name)
        if extra is not None:
            extra(call)


# ---- output options -------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_STREAM_SPEC = re.compile(r"(?:[vas](?::\d+)?|\d+)\Z")
_MAP_VALUE = re.compile(r"(?:\[[A-Za-z0-9_.:-]+\]|-?\d+(?::[vas](?::\d+)?|:\d+)?\??)\Z")
_X264_PRESETS = frozenset({
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
})  # fmt: skip
_X264_TUNES = frozenset(
    {"film", "animation", "grain", "stillimage", "fastdecode", "zerolatency", "psnr", "ssim"}
)
_HASHES = frozenset({"sha256", "sha512", "sha160", "md5", "crc32", "adler32", "murmur3"})


def _regex(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern + r"\Z")
    return lambda v: compiled.match(v) is not None


def _one_of(names: frozenset[str]) -> Callable[[str], bool]:
    return lambda v: v in names


# option base name -> (takes a value, value check or None, may carry a stream specifier)
_OUTPUT_OPTIONS: dict[str, tuple[bool, Callable[[str], bool] | None, bool]] = {
    "map": (True, lambda v: _MAP_VALUE.match(v) is not None, False),
    "c": (True, _one_of(ALLOWED_ENCODERS), True),
    "pix_fmt": (True, _regex(r"[a-z0-9_]{2,24}"), True),
    "sample_fmt": (True, _regex(r"[a-z0-9_]{2,10}"), True),
    "crf": (True, _regex(r"\d{1,2}(?:\.\d+)?"), True),
    "qp": (True, _regex(r"\d{1,2}"), True),
    "preset": (True, _one_of(_X264_PRESETS), True),
    "tune": (True, _one_of(_X264_TUNES), True),
    "profile": (True, _regex(r"[a-z0-9]{1,12}"), True),
    "level": (True, _regex(r"\d(?:\.\d)?"), True),
    "g": (True, _regex(r"\d{1,5}"), True),
    "bf": (True, _regex(r"\d{1,2}"), True),
    "b": (True, _regex(_NUM + r"[kM]?"), True),
    "maxrate": (True, _regex(_NUM + r"[kM]?"), True),
    "minrate": (True, _regex(_NUM + r"[kM]?"), True),
    "bufsize": (True, _regex(_NUM + r"[kM]?"), True),
    "deadline": (True, _one_of(frozenset({"good", "best", "realtime"})), True),
    "cpu-used": (True, _regex(r"-?\d{1,2}"), True),
    "row-mt": (True, _one_of(frozenset({"0", "1"})), True),
    "lossless": (True, _one_of(frozenset({"0", "1"})), True),
    "slices": (True, _regex(r"\d{1,3}"), True),
    "slicecrc": (True, _one_of(frozenset({"0", "1"})), True),
    "compression_level": (True, _regex(r"\d{1,2}"), True),
    "ar": (True, _regex(r"\d{4,6}"), True),
    "ac": (True, _regex(r"\d{1,2}"), True),
    "r": (True, _regex(r"\d{1,6}(?:\.\d+|/\d{1,6})?"), True),
    "frames": (True, _regex(r"\d{1,9}"), True),
    "t": (True, _regex(_NUM), False),
    "an": (False, None, False),
    "vn": (False, None, False),
    "sn": (False, None, False),
    "dn": (False, None, False),
    "shortest": (False, None, False),
    "f": (True, _one_of(ALLOWED_MUXERS), False),
    "movflags": (True, _one_of(frozenset({"+faststart", "faststart"})), False),
    "hash": (True, _one_of(_HASHES), False),
    "format_version": (True, _regex(r"\d"), False),
}
_ALIASES = {
    "codec": "c",
    "vcodec": "c:v",
    "acodec": "c:a",
    "vframes": "frames:v",
    "aframes": "frames:a",
}


def check_output_args(args: Sequence[str]) -> None:
    """Raise GraphRefused for any output option, encoder or muxer not on the allowlist."""
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or len(token) < 2:
            raise GraphRefused(
                f"output argument {token!r} is not an option (the output path is separate)"
            )
        name = token[1:]
        name = _ALIASES.get(name, name)
        base, _, spec = name.partition(":")
        rule = _OUTPUT_OPTIONS.get(base)
        if rule is None:
            raise GraphRefused(f"output option {token!r} is not allowed")
        takes_value, check, stream_specific = rule
        if spec and (not stream_specific or not _STREAM_SPEC.match(spec)):
            raise GraphRefused(f"output option {token!r} has a stream specifier not allowed")
        if not takes_value:
            i += 1
            continue
        if i + 1 >= len(args):
            raise GraphRefused(f"output option {token!r} needs a value")
        value = args[i + 1]
        if check is not None and not check(value):
            what = "encoder" if base == "c" else "muxer" if base == "f" else "value"
            raise GraphRefused(f"output option {token!r}: {what} {value!r} is not allowed")
        i += 2


def output_duration_arg(args: Sequence[str]) -> float | None:
    """The ``-t`` value in checked output args, if any (the sandbox caps it)."""
    found: float | None = None
    for i, token in enumerate(args[:-1]):
        if token == "-t":
            found = float(args[i + 1])
    return found


def muxer_for_suffix(suffix: str) -> str | None:
    """The allowed muxer for an output file suffix (``.mkv`` -> ``matroska``), else None."""
    return _SUFFIX_MUXERS.get(suffix.lower())
