"""One process in the renderer's sandbox: a fresh network namespace, rlimits, its own process
group, a minimal environment and an empty private working directory (``run_sandboxed``), and the
one-line error for a failed run (``failure``).

:mod:`renderer.sandbox` states the threat model and builds the ffmpeg commands that run here;
it re-exports every public name of this module, from where the rest of the renderer imports them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import trio

from renderer.errors import RenderFailed, RenderTimeout, SandboxUnavailable
from renderer.limits import Limits

__all__ = ["SandboxResult", "failure", "isolation_prefix", "run_sandboxed"]

_STDERR_HEAD = 256 * 1024
_STDERR_TAIL = 4096
_FSIZE_MARGIN = 64 * 1024 * 1024
_ENV = {"LC_ALL": "C", "AV_LOG_FORCE_NOCOLOR": "1", "PATH": "/usr/bin:/bin"}


@dataclass(frozen=True)
class SandboxResult:
    """Raw result of one sandboxed process (``run_sandboxed``)."""

    returncode: int
    stdout: bytes
    stderr_head: str
    stderr_tail: str
    seconds: float
    argv: tuple[str, ...]
    isolated: bool


# ---- isolation -------------------------------------------------------------------------

_isolation: tuple[tuple[str, ...], str] | None = None


async def _try(argv: list[str]) -> str | None:
    """Run a probe command; None when it succeeded, else why it failed."""
    try:
        done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    except OSError as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return _last_line(done.stderr.decode("utf-8", "replace")) or f"exit {done.returncode}"


async def isolation_prefix() -> tuple[tuple[str, ...], str]:
    """The argv prefix that puts a command in a new network namespace, and why if empty.

    Tried once per process: ``unshare -n`` (root), then ``unshare -rn`` (user namespace).
    """
    global _isolation
    if _isolation is not None:
        return _isolation
    unshare = shutil.which("unshare")
    true = shutil.which("true") or "/bin/true"
    if unshare is None:
        _isolation = ((), "the unshare command (util-linux) is not installed")
        return _isolation
    reasons = []
    for flags in ("-n", "-rn"):
        why = await _try([unshare, flags, true])
        if why is None:
            _isolation = ((unshare, flags), "")
            return _isolation
        reasons.append(f"unshare {flags}: {why}")
    _isolation = ((), "cannot create a network namespace (" + "; ".join(reasons) + ")")
    return _isolation


def _rlimit_prefix(limits: Limits, fsize: int) -> list[str]:
    """``prlimit`` with the rlimits, then ``nice -n N`` when ``limits.niceness`` > 0."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise SandboxUnavailable("the prlimit command (util-linux) is not installed")
    prefix = [
        prlimit,
        f"--as={limits.memory_bytes}",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}",
        f"--nofile={limits.nofile}",
        f"--fsize={fsize}",
        "--core=0",
        "--",
    ]
    if limits.niceness > 0:
        nice = shutil.which("nice")
        if nice is None:
            raise SandboxUnavailable("the nice command (coreutils) is not installed")
        prefix += [nice, "-n", str(limits.niceness)]
    return prefix


# ---- running one process ---------------------------------------------------------------


def _kill_group(process: trio.Process) -> None:
    if process.returncode is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class _Output:
    """What a sandboxed process writes: its stdout (only when ``keep_stdout``, at most
    ``max_stdout`` bytes, past which the process is killed and ``overflow`` set), each line and
    chunk of it handed to the callbacks, and the head and tail of its stderr."""

    max_stdout: int
    keep_stdout: bool
    on_stdout_line: Callable[[bytes], None] | None
    on_stdout_chunk: Callable[[bytes | bytearray], None] | None
    stdout: bytearray = field(default_factory=bytearray)
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    overflow: bool = False

    async def read_stdout(self, process: trio.Process) -> None:
        assert process.stdout is not None
        pending = b""
        while chunk := await process.stdout.receive_some(1 << 20):
            if self.on_stdout_chunk is not None:
                self.on_stdout_chunk(chunk)
            if self.keep_stdout:
                if len(self.stdout) + len(chunk) > self.max_stdout:
                    self.overflow = True
                    _kill_group(process)
                    return
                self.stdout.extend(chunk)
            if self.on_stdout_line is not None:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                pending = pending[-65536:]
                for line in lines:
                    self.on_stdout_line(line)

    async def read_stderr(self, process: trio.Process) -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.receive_some(65536):
            room = _STDERR_HEAD - len(self.head)
            if room > 0:
                self.head.extend(chunk[:room])
            self.tail.extend(chunk)
            del self.tail[:-_STDERR_TAIL]


async def _collect(process: trio.Process, output: _Output, timeout: float) -> bool:
    """Read ``process``'s output until it exits or ``timeout`` seconds pass (then True); the
    process group is killed and reaped on the way out, whatever happened (a cancel too)."""
    timed_out = False
    try:
        with trio.move_on_after(timeout) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(output.read_stdout, process)
                nursery.start_soon(output.read_stderr, process)
                await process.wait()
        timed_out = scope.cancelled_caught
    finally:
        _kill_group(process)
        with trio.CancelScope(shield=True):
            await process.wait()
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()
    return timed_out


def _raise_if_killed(
    returncode: int | None, output: _Output, timed_out: bool, timeout: float, limits: Limits
) -> None:
    """RenderTimeout for a process killed by the wall clock, the CPU limit or for lack of
    memory; RenderFailed for one killed for writing too much to stdout."""
    tail_text = output.tail.decode("utf-8", "replace")
    if timed_out:
        raise RenderTimeout(f"killed after the {timeout:g} s timeout: {_last_line(tail_text)}")
    if returncode == -signal.SIGXCPU:
        raise RenderTimeout(f"killed by the CPU limit (cpu_seconds={limits.cpu_seconds})")
    if returncode == -signal.SIGKILL and not output.overflow:
        raise RenderTimeout(
            f"killed by the CPU hard limit (cpu_seconds={limits.cpu_seconds}) "
            f"or for lack of memory: {_last_line(tail_text)}"
        )
    if output.overflow:
        raise RenderFailed(f"process wrote more than {output.max_stdout} bytes to stdout")


async def run_sandboxed(
    argv: Sequence[str],
    limits: Limits,
    *,
    pass_fds: Sequence[int] = (),
    on_stdout_line: Callable[[bytes], None] | None = None,
    on_stdout_chunk: Callable[[bytes | bytearray], None] | None = None,
    max_stdout: int = 1024 * 1024,
    keep_stdout: bool = True,
    fsize: int | None = None,
    timeout_s: float | None = None,
    cwd: Path | None = None,
) -> SandboxResult:
    """Run ``argv`` inside the sandbox (network namespace, rlimits, own process group,
    minimal environment, empty private working directory) and collect its output
    (stdout only when ``keep_stdout``; ``on_stdout_line`` sees every line and
    ``on_stdout_chunk`` every chunk either way).

    Every ffmpeg the renderer starts goes through here; tests also run ``cat /proc/net/dev``
    through it to look inside the namespace. Raises SandboxUnavailable, RenderTimeout (wall
    clock or CPU limit) or RenderFailed (stdout over ``max_stdout``); a non-zero exit is
    returned, not raised. Cancelling the caller kills the process group before returning.
    """
    prefix, why = await isolation_prefix()
    if not prefix and limits.require_isolation:
        raise SandboxUnavailable(f"isolation required but not possible here: {why}")
    fsize = fsize if fsize is not None else limits.max_output_bytes + _FSIZE_MARGIN
    full = (*prefix, *_rlimit_prefix(limits, fsize), *argv)
    timeout = limits.timeout_s if timeout_s is None else timeout_s
    output = _Output(max_stdout, keep_stdout, on_stdout_line, on_stdout_chunk)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="artdag-ffmpeg-") as workdir:
        process = await trio.lowlevel.open_process(
            list(full),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            cwd=str(cwd or Path(workdir)),
            env=dict(_ENV),
        )
        timed_out = await _collect(process, output, timeout)
    seconds = time.monotonic() - started
    _raise_if_killed(process.returncode, output, timed_out, timeout, limits)
    assert process.returncode is not None  # waited for above
    return SandboxResult(
        returncode=process.returncode,
        stdout=bytes(output.stdout),
        stderr_head=output.head.decode("utf-8", "replace"),
        stderr_tail=output.tail.decode("utf-8", "replace"),
        seconds=seconds,
        argv=tuple(full),
        isolated=bool(prefix),
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def failure(result: SandboxResult, limits: Limits, what: str = "ffmpeg") -> RenderFailed:
    """A one-line RenderFailed from a non-zero exit, saying which limit when we can tell."""
    text = result.stderr_tail
    interesting = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("frame=", "size=", "Conversion failed"))
    ]
    detail = " | ".join(interesting[-3:]) if interesting else "(no output)"
    rc = result.returncode
    if "Cannot allocate memory" in text or (rc == -signal.SIGSEGV and "alloc" in text):
        return RenderFailed(
            f"{what} ran out of memory (max_alloc={limits.max_alloc}, "
            f"memory_bytes={limits.memory_bytes}): {detail}"
        )
    if rc == -signal.SIGXCPU or f"received signal {int(signal.SIGXCPU)}." in text:
        return RenderTimeout(
            f"{what} was stopped by the CPU limit (cpu_seconds={limits.cpu_seconds})"
        )
    if rc == -signal.SIGXFSZ or f"received signal {int(signal.SIGXFSZ)}." in text:
        return RenderFailed(f"{what} output went over max_output_bytes={limits.max_output_bytes}")
    return RenderFailed(f"{what} exited with status {rc}: {detail}")
