"""``$ARTDAG_HOME``: creating it on first run and reading its secrets.

Secrets (the creator's key, the API token) are created with mode 0600 in a directory with
mode 0700 and are never rewritten once they exist, so ``artdag init`` is idempotent.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from provenance import Identity

from .config import Config

__all__ = ["InitReport", "init_home", "read_token"]


@dataclass(frozen=True)
class InitReport:
    did: str
    created: bool
    home: Path


def _write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_token(config: Config) -> str:
    path = config.token_path
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); run chmod 600 {path}")
    return path.read_text().strip()


def init_home(config: Config) -> InitReport:
    """Create whatever is missing in the home directory; never overwrite what exists."""
    home = config.home
    created = not home.exists()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not config.config_path.exists():
        # The defaults, not the effective config: a variable set for one run must not stick.
        text = "# artdag configuration; ARTDAG_* environment variables override these.\n"
        text += tomli_w.dumps(Config(home=config.home).to_toml())
        tmp = config.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, config.config_path)
    identity, new_identity = Identity.load_or_create(config.identity_path)
    if not config.token_path.exists():
        _write_secret(config.token_path, (secrets.token_urlsafe(32) + "\n").encode())
    config.store_path.mkdir(exist_ok=True)
    return InitReport(identity.did, created or new_identity, home)
