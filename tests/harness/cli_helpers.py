"""Running the real ``artdag`` console script in a subprocess, with its own ARTDAG_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ARTDAG = str(Path(sys.executable).with_name("artdag"))


@dataclass
class Home:
    path: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"ARTDAG_HOME": str(self.path), "ARTDAG_SYNC": "batch"}, **extra)
        return env

    def run(
        self, *args: str, check: bool = True, input: bytes | None = None, **extra: str
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [ARTDAG, *args], env=self.env(**extra), capture_output=True, input=input, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"artdag {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}"
            )
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode()

    def last_line(self, *args: str) -> str:
        return self.out(*args).strip().splitlines()[-1]

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [ARTDAG, *args], env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
