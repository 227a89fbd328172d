"""The renderer's ffmpeg layer on real media: probing, limits, deterministic renders, content
keys, the sandbox (network namespace, timeout, cancellation) and atomic outputs.

All media is generated with ffmpeg lavfi sources by tests/harness/media.py; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import psutil
import pytest
import trio

from renderer.content_key import content_key, stream_hashes
from renderer.errors import GraphRefused, InputRefused, RenderFailed, RenderTimeout
from renderer.ffmpeg_build import ffmpeg_exe, ffmpeg_version
from renderer.limits import DEFAULT_CODECS, Limits
from renderer.probe import probe
from renderer.sandbox import FfmpegInput, decode_audio_pcm, run_ffmpeg, run_sandboxed
from tests.harness.media import beat_times, make_audio, make_video

pytestmark = pytest.mark.ffmpeg

LIMITS = Limits()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "mkv": make_video(d / "clip.mkv", container="matroska"),
        "mp4": make_video(d / "clip.mp4", container="mp4"),
        "wav": make_audio(d / "beats.wav", seconds=4, kind="beats", bpm=120),
    }


async def _input(path: Path, limits: Limits = LIMITS) -> FfmpegInput:
    return FfmpegInput(path, await probe(path, limits))


def test_media_generators_are_deterministic(tmp_path: Path, media: dict[str, Path]) -> None:
    again = make_video(tmp_path / "again.mkv", container="matroska")
    assert again.read_bytes() == media["mkv"].read_bytes()


def test_ffmpeg_build_is_imageio_ffmpeg() -> None:
    assert "imageio_ffmpeg" in ffmpeg_exe()
    assert ffmpeg_version().startswith("ffmpeg n")
    assert "(imageio-ffmpeg " in ffmpeg_version()


async def test_probe_matroska(media: dict[str, Path]) -> None:
    info = await probe(media["mkv"], LIMITS)
    assert (info.container, info.demuxer) == ("matroska,webm", "matroska")
    assert info.size == media["mkv"].stat().st_size
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert len(info.streams) == 2
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert (v.codec, v.width, v.height, v.fps) == ("ffv1", 320, 180, 25.0)
    assert (a.codec, a.sample_rate, a.channels) == ("flac", 44100, 1)


async def test_probe_mp4(media: dict[str, Path]) -> None:
    info = await probe(media["mp4"], LIMITS)
    assert info.demuxer == "mov"
    assert info.container.startswith("mov,mp4")
    assert [s.codec for s in info.streams] == ["h264", "aac"]
    assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
    assert info.duration == pytest.approx(2.0, abs=0.1)


async def test_probe_wav(media: dict[str, Path]) -> None:
    info = await probe(media["wav"], LIMITS)
    assert (info.demuxer, info.video) == ("wav", None)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == (
        "pcm_s16le",
        44100,
        1,
    )
    assert info.duration == pytest.approx(4.0, abs=0.01)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"max_input_bytes": 1000}, "max_input_bytes"),
        ({"max_duration_s": 1.0}, "max_duration_s"),
        ({"max_width": 319}, "max_width"),
        ({"max_height": 179}, "max_height"),
        ({"max_pixels": 320 * 180 - 1}, "max_pixels"),
        ({"max_streams": 1}, "max_streams"),
        ({"max_fps": 24.0}, "max_fps"),
        ({"max_sample_rate": 22050}, "max_sample_rate"),
        ({"containers": frozenset({"mov", "wav"})}, "container"),
        ({"codecs": DEFAULT_CODECS - {"ffv1"}}, "codec 'ffv1'"),
        ({"codecs": DEFAULT_CODECS - {"flac"}}, "codec 'flac'"),
    ],
)
async def test_each_limit_refuses_naming_it(
    media: dict[str, Path], change: dict[str, object], named: str
) -> None:
    limits = dataclasses.replace(LIMITS, **change)  # type: ignore[arg-type]
    with pytest.raises(InputRefused, match=named):
        await probe(media["mkv"], limits)


async def test_channels_limit(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.mkv"
    from tests.harness.media import run_ffmpeg_cli

    run_ffmpeg_cli(["-f", "lavfi", "-i", "sine=d=1", "-ac", "2", "-c:a", "flac", "-y", str(stereo)])
    with pytest.raises(InputRefused, match="max_channels"):
        await probe(stereo, dataclasses.replace(LIMITS, max_channels=1))


async def test_not_media_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("hello, this is not a video\n" * 50)
    with pytest.raises(InputRefused, match="not media in an allowed container"):
        await probe(text, LIMITS)
    with pytest.raises(InputRefused, match="cannot open"):
        await probe(tmp_path / "missing.mkv", LIMITS)
    with pytest.raises(InputRefused, match="not a regular file"):
        await probe(tmp_path, LIMITS)


def test_limits_from_mapping() -> None:
    limits = Limits.from_mapping({"timeout_s": 30, "max_width": 1920, "codecs": ["h264"]})
    assert limits.timeout_s == 30.0 and limits.max_width == 1920
    assert limits.codecs == frozenset({"h264"})
    with pytest.raises(ValueError, match="'max_widht'"):
        Limits.from_mapping({"max_widht": 10})
    with pytest.raises(ValueError, match="'max_width'"):
        Limits.from_mapping({"max_width": "big"})
    with pytest.raises(ValueError, match="'require_isolation'"):
        Limits.from_mapping({"require_isolation": 1})
    with pytest.raises(ValueError, match="'threads'"):
        Limits.from_mapping({"threads": 0})


GRAPH = "[0:v]scale=160:90,hue=h=40,split[a][b];[a][b]blend=all_mode=average[v];[0:a]volume=0.5[au]"
H264_ARGS = ["-map", "[v]", "-map", "[au]", "-c:v", "libx264", "-preset", "veryfast"]
H264_ARGS += ["-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "mp4"]


async def test_same_graph_renders_byte_identical(tmp_path: Path, media: dict[str, Path]) -> None:
    inp = await _input(media["mkv"])
    outs = []
    for name in ("one.mp4", "two.mp4"):
        report = await run_ffmpeg(
            inputs=[inp],
            filter_graph=GRAPH,
            output_args=H264_ARGS,
            output=tmp_path / name,
            limits=LIMITS,
        )
        assert report.frames == 50
        assert report.isolated
        outs.append(tmp_path / name)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert await content_key(outs[0], LIMITS) == await content_key(outs[1], LIMITS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.mp4", "two.mp4"]


async def test_stream_hashes_equal_ffmpegs_streamhash_muxer(media: dict[str, Path]) -> None:
    """Our per-stream decode + hashlib gives exactly the lines of ``-f streamhash -hash
    sha256`` run with the same pinned flags (cpuflags matter: sound conversion differs by
    SIMD path)."""
    for name in ("mkv", "mp4"):
        path = media[name]
        argv = [
            ffmpeg_exe(), "-v", "error", "-cpuflags", LIMITS.cpuflags, "-threads", "1",
            "-i", str(path), "-map", "0:v?", "-map", "0:a?",
            "-f", "streamhash", "-hash", "sha256", "-",
        ]  # fmt: skip
        done = await trio.run_process(argv, capture_stdout=True)
        assert await stream_hashes(path, LIMITS) == done.stdout.decode().split()


@pytest.mark.parametrize(
    ("codec", "suffix"), [(["-c:v", "libx264", "-c:a", "aac"], ".mp4"), (["-c:v", "ffv1"], ".mkv")]
)
async def test_the_loopback_hash_equals_decoding_the_file(
    tmp_path: Path, media: dict[str, Path], codec: list[str], suffix: str
) -> None:
    """``hash_stream`` hashes the encoder's packets as they are decoded during the render: the
    same lines as decoding the written file afterwards, so the content key needs no 2nd pass."""
    target = tmp_path / f"out{suffix}"
    report = await run_ffmpeg(
        inputs=[await _input(media["mp4"])],
        filter_graph="[0:v]hue=h=30,scale=160:90[v]",
        output_args=["-map", "[v]", "-map", "0:a", *codec],
        output=target,
        limits=LIMITS,
        hash_stream=0,
    )
    assert report.stream_hash is not None and report.stream_hash.startswith("SHA256=")
    from_file = await stream_hashes(target, LIMITS)
    assert from_file[0] == f"0,v,{report.stream_hash}"
    assert await content_key(target, LIMITS, known={0: report.stream_hash}) == await content_key(
        target, LIMITS
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no .hash file left


async def test_content_key_is_container_independent(tmp_path: Path, media: dict[str, Path]) -> None:
    inp = await _input(media["mkv"])
    remuxed = tmp_path / "remux.mp4"
    await run_ffmpeg(
        inputs=[inp],
        filter_graph=None,
        output_args=["-map", "0", "-c", "copy", "-f", "mp4"],
        output=remuxed,
        limits=LIMITS,
    )
    reencoded = tmp_path / "reencoded.mkv"  # lossless re-encode: same decoded content
    await run_ffmpeg(
        inputs=[inp],
        filter_graph="[0:v]null[v]",
        output_args=["-map", "[v]", "-map", "0:a", "-c:v", "ffv1", "-c:a", "flac"],
        output=reencoded,
        limits=LIMITS,
    )
    one_pixel = tmp_path / "pixel.mkv"
    await run_ffmpeg(
        inputs=[inp],
        filter_graph="[0:v]geq=lum='if(eq(X,0)*eq(Y,0),255-lum(X,Y),lum(X,Y))'"
        ":cb='cb(X,Y)':cr='cr(X,Y)'[v]",
        output_args=["-map", "[v]", "-map", "0:a", "-c:v", "ffv1", "-c:a", "flac"],
        output=one_pixel,
        limits=LIMITS,
    )
    assert remuxed.read_bytes() != media["mkv"].read_bytes()
    key = await content_key(media["mkv"], LIMITS)
    assert key.startswith("sha256:") and len(key) == 7 + 64
    assert await content_key(remuxed, LIMITS) == key
    assert await content_key(reencoded, LIMITS) == key
    changed = await stream_hashes(one_pixel, LIMITS)
    original = await stream_hashes(media["mkv"], LIMITS)
    assert changed[0] != original[0] and changed[1] == original[1]  # video differs, audio not
    assert await content_key(one_pixel, LIMITS) != key


async def test_progress_reports_frames(tmp_path: Path, media: dict[str, Path]) -> None:
    seen: list[int] = []
    report = await run_ffmpeg(
        inputs=[await _input(media["mkv"])],
        filter_graph="[0:v]hflip[v]",
        output_args=["-map", "[v]", "-c:v", "ffv1"],
        output=tmp_path / "flipped.mkv",
        limits=LIMITS,
        progress=seen.append,
    )
    assert seen and seen[-1] == report.frames == 50
    assert seen == sorted(seen)
    info = await probe(tmp_path / "flipped.mkv", LIMITS)
    assert info.audio is None and info.video is not None and info.video.codec == "ffv1"


async def test_failed_render_leaves_nothing(tmp_path: Path, media: dict[str, Path]) -> None:
    out = tmp_path / "out" / "bad.mkv"
    out.parent.mkdir()
    with pytest.raises(RenderFailed, match="exited with status"):
        await run_ffmpeg(
            inputs=[await _input(media["mkv"])],
            filter_graph="[0:v][1:v]overlay[v]",  # there is no input 1
            output_args=["-map", "[v]", "-c:v", "ffv1"],
            output=out,
            limits=LIMITS,
        )
    assert list(out.parent.iterdir()) == []


async def test_changed_input_is_refused(tmp_path: Path, media: dict[str, Path]) -> None:
    copy = tmp_path / "copy.mkv"
    copy.write_bytes(media["mkv"].read_bytes())
    inp = await _input(copy)
    with copy.open("ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(InputRefused, match="changed since it was probed"):
        await run_ffmpeg(
            inputs=[inp],
            filter_graph=None,
            output_args=["-map", "0", "-c", "copy"],
            output=tmp_path / "o.mkv",
            limits=LIMITS,
        )


async def test_output_without_allowed_muxer_is_refused(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    with pytest.raises(GraphRefused, match=r"suffix '\.m3u8'"):
        await run_ffmpeg(
            inputs=[await _input(media["mkv"])],
            filter_graph=None,
            output_args=["-map", "0", "-c", "copy"],
            output=tmp_path / "o.m3u8",
            limits=LIMITS,
        )


async def test_decode_audio_pcm_has_the_beats(media: dict[str, Path]) -> None:
    rate = 8000
    pcm = await decode_audio_pcm(await _input(media["wav"]), sample_rate=rate, limits=LIMITS)
    assert len(pcm) == 4 * rate * 2
    samples = memoryview(pcm).cast("h")
    window = rate // 100  # 10 ms
    loud = [
        i * window / rate
        for i in range(len(samples) // window)
        if max(abs(s) for s in samples[i * window : (i + 1) * window]) > 8000
    ]
    assert loud, "no clicks decoded"
    for t in loud:  # every loud window sits at the start of a beat
        assert min(abs(t - b) for b in beat_times(4, 120)) < 0.03
    assert {round(t * 2) / 2 for t in loud} == set(beat_times(4, 120))


async def test_sandbox_has_no_network() -> None:
    """Inside the sandbox only a loopback interface exists (a fresh network namespace)."""
    result = await run_sandboxed(["/bin/cat", "/proc/net/dev"], LIMITS)
    assert result.returncode == 0 and result.isolated
    assert result.argv[0].endswith("unshare") and result.argv[1] in ("-n", "-rn")
    interfaces = [
        line.split(":", 1)[0].strip()
        for line in result.stdout.decode().splitlines()[2:]
        if ":" in line
    ]
    assert interfaces == ["lo"]
    route = await run_sandboxed(["/bin/cat", "/proc/net/route"], LIMITS)
    assert len(route.stdout.decode().strip().splitlines()) <= 1  # at most a header: no route
    inside = await run_sandboxed(["/bin/readlink", "/proc/self/ns/net"], LIMITS)
    assert inside.stdout.decode().strip().startswith("net:[")
    assert inside.stdout.decode().strip() != os.readlink("/proc/self/ns/net")


async def test_sandbox_rlimits_apply() -> None:
    limits = dataclasses.replace(LIMITS, nofile=37, memory_bytes=512 * 1024 * 1024)
    result = await run_sandboxed(["/bin/cat", "/proc/self/limits"], limits)
    text = result.stdout.decode()
    assert any(line.startswith("Max open files") and " 37 " in line for line in text.splitlines())
    assert any(
        line.startswith("Max address space") and str(512 * 1024 * 1024) in line
        for line in text.splitlines()
    )


LONG_GRAPH = "[0:v]loop=loop=1000:size=50,setpts=N/25/TB[v]"  # 2 s of input -> 2000 s
LONG_ARGS = ["-map", "[v]", "-c:v", "ffv1"]


@pytest.mark.slow
async def test_timeout_kills_and_leaves_nothing(tmp_path: Path, media: dict[str, Path]) -> None:
    limits = dataclasses.replace(LIMITS, timeout_s=1.0)
    with pytest.raises(RenderTimeout, match="timeout"):
        await run_ffmpeg(
            inputs=[await _input(media["mkv"])],
            filter_graph=LONG_GRAPH,
            output_args=LONG_ARGS,
            output=tmp_path / "long.mkv",
            limits=limits,
        )
    assert list(tmp_path.iterdir()) == []
    assert not _our_ffmpegs()


def _our_ffmpegs() -> list[psutil.Process]:
    exe = ffmpeg_exe()
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.exe() == exe and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
async def test_cancellation_kills_ffmpeg(tmp_path: Path, media: dict[str, Path]) -> None:
    inp = await _input(media["mkv"])
    pids: list[int] = []
    running = trio.Event()

    def on_progress(frames: int) -> None:
        if not pids:
            pids.extend(p.pid for p in _our_ffmpegs())
            running.set()

    with trio.move_on_after(30) as deadline:
        async with trio.open_nursery() as nursery:

            async def render() -> None:
                await run_ffmpeg(
                    inputs=[inp],
                    filter_graph=LONG_GRAPH,
                    output_args=LONG_ARGS,
                    output=tmp_path / "long.mkv",
                    limits=LIMITS,
                    progress=on_progress,
                )

            nursery.start_soon(render)
            await running.wait()
            nursery.cancel_scope.cancel()
    assert not deadline.cancelled_caught
    assert len(pids) == 1
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie"
    assert list(tmp_path.iterdir()) == []


PROBE_STDERR = """ffmpeg stats and -progress period set to 0.5.
Input #0, matroska,webm, from 'fd:':
  Metadata:
    title           : x
  Stream #0:9: Video: h264, yuv420p, 99999x99999, 25 fps
  Duration: 00:01:02.50, start: 0.000000, bitrate: 1444 kb/s
  Stream #0:0(eng): Video: ffv1, yuv420p(tv, progressive), 320x180, SAR 1:1 DAR 16:9, 30 fps
  Stream #0:1: Audio: opus, 48000 Hz, 5.1(side), fltp
  Stream #0:2: Attachment: ttf
Stream mapping:
  Stream #0:3: Video: h264, 8192x8192
"""


def test_probe_parser_reads_only_the_input_header() -> None:
    """Pure parsing: metadata lines (indented deeper) and lines after the input section cannot
    forge streams; the progress pipe's duration wins over the header's."""
    from renderer.probe import parse_probe_output

    text = PROBE_STDERR.replace("  Stream #0:9: Video: h264, yuv420p, 99999x99999, 25 fps\n", "")
    info = parse_probe_output(Path("x.mkv"), 10, text, "out_time_us=1500000\nprogress=end\n")
    assert info.duration == 1.5 and info.demuxer == "matroska"
    assert [(s.kind, s.codec) for s in info.streams] == [
        ("video", "ffv1"),
        ("audio", "opus"),
        ("other", "ttf"),
    ]
    assert info.streams[1].channels == 6 and info.streams[1].sample_rate == 48000
    assert parse_probe_output(Path("x.mkv"), 10, text, "").duration == 62.5
    # A stream line out of order (a forged one) refuses the input.
    with pytest.raises(InputRefused, match="probe output not understood"):
        parse_probe_output(Path("x.mkv"), 10, PROBE_STDERR, "")


async def test_sandbox_runs_at_the_limits_niceness() -> None:
    """``Limits.niceness`` puts every sandboxed process under ``nice -n N``: the kernel's own
    view of the exec'd process (field 19 of /proc/self/stat) shows the raised nice value."""

    def nice_of(stat: bytes) -> int:
        return int(stat.decode().rsplit(")", 1)[1].split()[16])

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    niced = await run_sandboxed(["/bin/cat", "/proc/self/stat"], Limits(niceness=7))
    assert niced.returncode == 0
    assert nice_of(niced.stdout) == min(19, ours + 7)
    assert niced.argv[-5:-2] == (shutil.which("nice"), "-n", "7")
    plain = await run_sandboxed(["/bin/cat", "/proc/self/stat"], LIMITS)
    assert nice_of(plain.stdout) == ours
    assert not any(arg.endswith("/nice") for arg in plain.argv)
    with pytest.raises(ValueError, match="'niceness'"):
        Limits(niceness=20)
    assert Limits.from_mapping({"niceness": 0}).niceness == 0
