"""``$ARTDAG_HOME``: creating it on first run and reading its secrets.

Secrets (the creator's key, the API token) are created with mode 0600 in a directory with
mode 0700 and are never rewritten once they exist, so ``artdag init`` is idempotent. A home
that already exists (made by hand, or by an earlier version) is set to 0700 too, so nothing in
it is reachable by other local users whatever the modes of the files inside. The databases are
created 0600 by :func:`dag.sqlite_db.open_sqlite` (SQLite gives their ``-wal`` and ``-shm``
files the same mode), and ``artdag init`` and ``artdag daemon`` run with umask 0077
(:func:`private_umask`), so whatever else they create is private as well.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from daemon.config import Config
from provenance import Identity

__all__ = ["InitReport", "init_home", "private_umask", "read_token"]

PRIVATE_UMASK = 0o077


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


def private_umask() -> int:
    """From now on this process creates files 0600 and directories 0700; the old umask."""
    return os.umask(PRIVATE_UMASK)


def _make_private(directory: Path) -> None:
    """Set ``directory`` to mode 0700 if group or others have any access to it."""
    mode = directory.stat().st_mode & 0o777
    if mode & 0o077:
        directory.chmod(0o700)


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
    _make_private(home)
    if not config.config_path.exists():
        # The defaults, not the effective config: a variable set for one run must not stick.
        text = "# artdag configuration; ARTDAG_* environment variables override these.\n"
        text += tomli_w.dumps(Config(home=config.home).to_toml())
        tmp = config.config_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, config.config_path)
    identity, new_identity = Identity.load_or_create(config.identity_path)
    if not config.token_path.exists():
        _write_secret(config.token_path, (secrets.token_urlsafe(32) + "\n").encode())
    config.store_path.mkdir(exist_ok=True, mode=0o700)
    return InitReport(identity.did, created or new_identity, home)
