"""Each dangerous input of docs/decisions.md ("ffmpeg and rendering") is refused or stopped with a
clear error, reading no other file and opening no socket.

Where an attack needs ffmpeg to misbehave, the test also runs it *without* the guard (plain
ffmpeg, as a naive renderer would) to show that the attack is real, then through the renderer
to show it is stopped. Media is generated with lavfi sources (tests/harness/media.py).
"""

from __future__ import annotations

import dataclasses
import secrets
import subprocess
from pathlib import Path

import pytest

from renderer.allowlist import check_filter_graph, check_output_args
from renderer.errors import GraphRefused, InputRefused, RenderFailed, RenderTimeout
from renderer.ffmpeg_build import ffmpeg_exe
from renderer.limits import DEFAULT_CONTAINERS, Limits
from renderer.probe import MediaInfo, StreamInfo, probe
from renderer.sandbox import FfmpegInput, run_ffmpeg
from tests.harness.media import make_big_frames, make_video, run_ffmpeg_cli

pytestmark = pytest.mark.ffmpeg

LIMITS = Limits()
FFV1 = ["-map", "[v]", "-c:v", "ffv1"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mkv", with_audio=False)


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# ---- (1) a ".mp4" that is an HLS playlist pointing at another local file ------------------


@pytest.fixture
def hls_trap(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """trap.mp4 is an HLS playlist whose one segment is secret.ts, a file beside it."""
    secret = tmp_path / "secret.ts"
    run_ffmpeg_cli(
        ["-f", "lavfi", "-i", "sine=frequency=1234:duration=1", "-c:a", "aac", "-f", "mpegts",
         "-y", str(secret)]
    )  # fmt: skip
    marker = b"ARTDAG-SECRET-" + secrets.token_hex(8).encode()
    secret.write_bytes(secret.read_bytes() + marker)  # trailing junk the demuxer skips
    trap = tmp_path / "trap.mp4"
    trap.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\nsecret.ts\n#EXT-X-ENDLIST\n")
    return trap, secret, marker


def _streamhash(args: list[str]) -> str:
    done = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-v",
            "error",
            *args,
            "-f",
            "streamhash",
            "-hash",
            "sha256",
            "-",
        ],
        capture_output=True,
        check=False,
    )
    return done.stdout.decode()


async def test_hls_playlist_disguised_as_mp4(
    tmp_path: Path, hls_trap: tuple[Path, Path, bytes]
) -> None:
    trap, secret, marker = hls_trap
    # Without the guard: ffmpeg told to read the playlist (-protocol_whitelist file is not
    # enough) decodes the secret file.
    leaked = _streamhash(["-protocol_whitelist", "file", "-f", "hls", "-i", str(trap), "-map", "0"])
    assert leaked and leaked == _streamhash(["-i", str(secret), "-map", "0"])

    # Through the renderer: probing picks demuxers from the bytes alone, among allowed ones.
    with pytest.raises(InputRefused, match="not media in an allowed container"):
        await probe(trap, LIMITS)

    # Even a forged probe result, with hls allowed, cannot reach the secret: the only protocol
    # is the inherited descriptor, so the segment cannot be opened.
    forged = MediaInfo(
        path=trap,
        size=trap.stat().st_size,
        container="hls",
        demuxer="hls",
        duration=1.0,
        streams=(StreamInfo(0, "audio", "aac", sample_rate=44100, channels=1),),
    )
    unsafe = dataclasses.replace(LIMITS, containers=DEFAULT_CONTAINERS | {"hls"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RenderFailed) as failed:
        await run_ffmpeg(
            inputs=[FfmpegInput(trap, forged)],
            filter_graph=None,
            output_args=["-map", "0", "-c:a", "flac", "-f", "matroska"],
            output=out / "leak.mkv",
            limits=unsafe,
        )
    assert marker.decode() not in str(failed.value)
    assert list(out.iterdir()) == []
    # ... and under default limits the forged hls container is refused outright.
    with pytest.raises(InputRefused, match="container 'hls'"):
        await run_ffmpeg(
            inputs=[FfmpegInput(trap, forged)],
            filter_graph=None,
            output_args=["-map", "0"],
            output=out / "leak.mkv",
            limits=LIMITS,
        )
    assert marker not in _all_bytes(out)


# ---- (2)-(4), zmq: filters that read files, load code or open sockets ---------------------


@pytest.mark.parametrize(
    "graph",
    [
        "movie=/etc/passwd[v]",
        "amovie=http://127.0.0.1:9/x.wav[a]",
        "[0:v]null[x];movie=secret.mkv[y];[x][y]overlay[v]",
        "'movie'=/etc/hostname[v]",
        "mov\\ie=/etc/hostname[v]",
        "movie@evil=/etc/hostname[v]",
        "[0:v]drawtext=textfile=/etc/passwd[v]",
        "[0:v]drawtext=text=hi[v]",
        "[0:v]subtitles=/etc/passwd[v]",
        "[0:a]ladspa=file=/usr/lib/ladspa/amp.so:plugin=amp[a]",
        "[0:a]lv2=plugin=http://example.org/x[a]",
        "[0:v]frei0r=filter_name=distort0r[v]",
        "[0:v]zmq=bind_address=tcp\\://127.0.0.1\\:5555,null[v]",
        "[0:a]azmq[a]",
        "[0:v]sendcmd=f=/etc/passwd,null[v]",
        "[0:v]lut3d=file=/etc/passwd[v]",
        "[0:v]reverse[v]",
    ],
)
def test_dangerous_filters_are_refused(graph: str) -> None:
    names = "movie|amovie|drawtext|subtitles|ladspa|lv2|frei0r|zmq|azmq|sendcmd|lut3d|reverse"
    with pytest.raises(GraphRefused, match=rf"filter '({names})' is not allowed"):
        check_filter_graph(graph)


@pytest.mark.parametrize(
    ("graph", "named"),
    [
        ("[0:v]eq=/contrast=/etc/passwd[v]", "option key '/contrast'"),
        ("[0:v]scale=w='/etc/passwd'[v]", "looks like a path or URL"),
        ("[0:v]hue=h=http\\://127.0.0.1/x[v]", "looks like a path or URL"),
        ("[0:v]scale=file=x[v]", "option 'file'"),
        ("[0:v]null[v", "malformed link label"),
        ("[0:v]eq=contrast='1.2[v]", "unterminated quote"),
    ],
)
def test_file_options_and_malformed_graphs_are_refused(graph: str, named: str) -> None:
    with pytest.raises(GraphRefused, match=named.replace("[", "\\[")):
        check_filter_graph(graph)


@pytest.mark.parametrize(
    "graph",
    [
        "[0:v]eq=contrast=1.2:brightness=0.05,hue=h=30[v]",
        "[0:v]crop=iw/2:ih/2:(iw-ow)/2:0,scale=320:-2[v]",
        "[0:v]split[a][b];[a]hflip[x];[b][x]blend=all_mode=average[v]",
        "[0:v]geq=lum='if(eq(X,0)*eq(Y,0),255,lum(X,Y))':cb='cb(X,Y)':cr='cr(X,Y)'[v]",
        "[0:v]trim=start=0.5:end=1.5,setpts=PTS-STARTPTS[v];[0:a]atrim=0.5:1.5[a]",
        "[0:v]loop=loop=3:size=25[v];[0:a]aloop=loop=2:size=44100[a]",
        "[0:v] fps=fps=30 , format=pix_fmts=yuv420p [v]",
        "[0:v][1:v]overlay=x=10:y=10:enable='between(t,0,1)'[v]",
    ],
)
def test_legit_graphs_pass(graph: str) -> None:
    check_filter_graph(graph)


# ---- (5) the concat demuxer and -safe 0 -----------------------------------------------------


async def test_concat_list_is_refused(tmp_path: Path, clip: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"ffconcat version 1.0\nfile '{clip}'\nfile '/etc/passwd'\n")
    with pytest.raises(InputRefused, match="not media in an allowed container"):
        await probe(listing, LIMITS)
    forged = MediaInfo(listing, listing.stat().st_size, "concat", "concat", 2.0, ())
    with pytest.raises(InputRefused, match="container 'concat'"):
        await run_ffmpeg(
            inputs=[FfmpegInput(listing, forged)],
            filter_graph=None,
            output_args=["-map", "0"],
            output=tmp_path / "o.mkv",
            limits=LIMITS,
        )
    with pytest.raises(GraphRefused, match="'-safe' is not allowed"):
        check_output_args(["-safe", "0", "-map", "0"])


# ---- output options that would name files or muxers that write elsewhere -------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-passlogfile", "/tmp/x"], "'-passlogfile'"),
        (["-x264-params", "stats=/tmp/x"], "'-x264-params'"),
        (["-f", "hls"], "muxer 'hls'"),
        (["-f", "image2"], "muxer 'image2'"),
        (["-f", "tee"], "muxer 'tee'"),
        (["-c:v", "libx265"], "encoder 'libx265'"),
        (["-vf", "movie=/etc/passwd"], "'-vf'"),
        (["-filter_complex_script", "/etc/passwd"], "'-filter_complex_script'"),
        (["-threads", "8"], "'-threads'"),
        (["-metadata", "title=x"], "'-metadata'"),
        (["-map", "0", "/tmp/second-output.mkv"], "not an option"),
        (["-map", "0;rm"], "value '0;rm'"),
        (["-c:v"], "needs a value"),
    ],
)
def test_output_args_off_the_allowlist_are_refused(args: list[str], named: str) -> None:
    with pytest.raises(GraphRefused, match=named):
        check_output_args(args)


def test_legit_output_args_pass() -> None:
    check_output_args(
        ["-map", "[v]", "-map", "0:a?", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
         "-pix_fmt", "yuv420p", "-g", "50", "-c:a", "aac", "-b:a", "128k", "-ar", "48000",
         "-ac", "2", "-r", "30000/1001", "-movflags", "+faststart", "-shortest", "-f", "mp4"]
    )  # fmt: skip
    check_output_args(["-map", "0", "-c", "copy", "-an", "-t", "1.5", "-f", "matroska"])


# ---- a URL as an input path -------------------------------------------------------------------


async def test_url_input_is_refused() -> None:
    for url in ("tcp://127.0.0.1:9", "http://127.0.0.1:9/x.mp4", "concat:/etc/passwd|/etc/hosts"):
        with pytest.raises(InputRefused, match="cannot open"):
            await probe(Path(url), LIMITS)


# ---- (6) the 8192x8192 bomb ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_big_frames(tmp_path_factory.mktemp("bomb") / "bomb.mkv", frames=1)


async def test_bomb_refused_by_probe(bomb: Path) -> None:
    assert bomb.stat().st_size < 300_000
    with pytest.raises(InputRefused, match="width 8192 is over max_width"):
        await probe(bomb, LIMITS)
    with pytest.raises(InputRefused, match="over max_pixels"):
        await probe(bomb, dataclasses.replace(LIMITS, max_width=8192, max_height=8192))


async def test_bomb_stopped_by_max_alloc(tmp_path: Path, bomb: Path) -> None:
    raised = dataclasses.replace(LIMITS, max_width=8192, max_height=8192, max_pixels=8192**2)
    info = await probe(bomb, raised)
    assert info.video is not None and info.video.width == 8192
    with pytest.raises(RenderFailed, match=r"ran out of memory \(max_alloc=134217728"):
        await run_ffmpeg(
            inputs=[FfmpegInput(bomb, info)],
            filter_graph="[0:v]null[v]",
            output_args=FFV1,
            output=tmp_path / "o.mkv",
            limits=raised,
        )
    assert list(tmp_path.iterdir()) == []


async def test_bomb_stopped_by_address_space_limit(tmp_path: Path, bomb: Path) -> None:
    raised = dataclasses.replace(
        LIMITS,
        max_width=8192,
        max_height=8192,
        max_pixels=8192**2,
        max_alloc=2**31,
        memory_bytes=300 * 1024 * 1024,
    )
    info = await probe(bomb, raised)
    with pytest.raises(RenderFailed, match="ran out of memory"):
        await run_ffmpeg(
            inputs=[FfmpegInput(bomb, info)],
            filter_graph="[0:v]format=rgba,scale=8192:8192:flags=lanczos[v]",
            output_args=FFV1,
            output=tmp_path / "o.mkv",
            limits=raised,
        )
    assert list(tmp_path.iterdir()) == []


# ---- (7) endless loops and very long outputs -------------------------------------------


@pytest.mark.parametrize(
    "graph",
    [
        "[0:v]loop=loop=-1:size=10[v]",
        "[0:v]loop=-1:10[v]",
        "[0:v]loop=loop=-2+1:size=10[v]",
        "[0:v]loop=loop=0x7fffffff:size=10[v]",
        "[0:v]loop=loop=2:size=100000[v]",
        "[0:a]aloop=loop=-1:size=44100[a]",
        "[0:a]aloop=-1[a]",
    ],
)
def test_endless_loops_are_refused(graph: str) -> None:
    with pytest.raises(GraphRefused, match="must be a plain integer"):
        check_filter_graph(graph)


LONG = "[0:v]loop=loop=1000:size=50,setpts=N/25/TB[v]"  # 2 s of input -> 2000 s


async def test_long_output_cut_by_duration_cap(tmp_path: Path, clip: Path) -> None:
    limits = dataclasses.replace(LIMITS, max_output_seconds=1.0)
    out = tmp_path / "cut.mkv"
    report = await run_ffmpeg(
        inputs=[FfmpegInput(clip, await probe(clip, limits))],
        filter_graph=LONG,
        output_args=FFV1,
        output=out,
        limits=limits,
    )
    assert report.frames == 25
    info = await probe(out, LIMITS)
    assert info.duration is not None and info.duration <= 1.05


async def test_long_output_cut_by_size_cap(tmp_path: Path, clip: Path) -> None:
    limits = dataclasses.replace(LIMITS, max_output_bytes=300_000)
    out = tmp_path / "cut.mkv"
    await run_ffmpeg(
        inputs=[FfmpegInput(clip, await probe(clip, limits))],
        filter_graph=LONG,
        output_args=FFV1,
        output=out,
        limits=limits,
    )
    # -fs stops the render long before its 2000 s; Matroska may overshoot by the cluster it
    # buffers (at most 5 MiB), and RLIMIT_FSIZE is the hard stop above that.
    assert 100_000 < out.stat().st_size <= 300_000 + 5 * 1024 * 1024
    info = await probe(out, LIMITS)
    assert info.duration is not None and info.duration < 10


@pytest.mark.slow
async def test_long_output_killed_by_timeout(tmp_path: Path, clip: Path) -> None:
    limits = dataclasses.replace(LIMITS, timeout_s=0.5)
    with pytest.raises(RenderTimeout, match=r"0\.5 s timeout"):
        await run_ffmpeg(
            inputs=[FfmpegInput(clip, await probe(clip, LIMITS))],
            filter_graph=LONG,
            output_args=FFV1,
            output=tmp_path / "long.mkv",
            limits=limits,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
async def test_cpu_limit_stops_a_render(tmp_path: Path, clip: Path) -> None:
    limits = dataclasses.replace(LIMITS, cpu_seconds=1)
    with pytest.raises(RenderTimeout, match="CPU limit"):
        await run_ffmpeg(
            inputs=[FfmpegInput(clip, await probe(clip, LIMITS))],
            filter_graph=LONG,
            output_args=FFV1,
            output=tmp_path / "long.mkv",
            limits=limits,
        )
    assert list(tmp_path.iterdir()) == []
