"""The web UI's password, session secret and login throttle; ``artdag init``/``passwd``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness.daemons import DaemonProcess
from webui import (
    LoginThrottle,
    PasswordError,
    PasswordFile,
    hash_password,
    load_or_create_secret,
    verify_password,
)

ARTDAG = str(Path(sys.executable).with_name("artdag"))


def test_scrypt_hash_round_trip_and_rejections() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("x", "not a hash")
    assert not verify_password("x", "bcrypt$1$2$3$4$5")
    assert hash_password("same password", salt=b"s" * 16) == hash_password(
        "same password", salt=b"s" * 16
    )
    assert hash_password("same password") != hash_password("same password")  # random salt
    with pytest.raises(PasswordError, match="at least 8"):
        hash_password("short")


def test_password_and_secret_files_are_private(tmp_path: Path) -> None:
    password = PasswordFile(tmp_path / "web-password")
    assert not password.is_set and not password.check("anything at all")
    assert password.fingerprint() is None
    password.set("a good password")
    assert password.is_set and password.check("a good password")
    assert (tmp_path / "web-password").stat().st_mode & 0o777 == 0o600
    first = password.fingerprint()
    password.set("another good password")
    assert password.fingerprint() != first  # sessions made with the old one end
    secret = load_or_create_secret(tmp_path / "web-secret")
    assert len(secret) == 32 and load_or_create_secret(tmp_path / "web-secret") == secret
    assert (tmp_path / "web-secret").stat().st_mode & 0o777 == 0o600


def test_login_throttle_backs_off_per_client() -> None:
    throttle = LoginThrottle(free_failures=3, window=900, max_wait=60)
    for i in range(3):
        assert throttle.wait("a", now=100.0 + i) == 0
        throttle.failed("a", now=100.0 + i)
    assert throttle.wait("a", now=102.5) > 0  # the fourth try waits (a second at first)
    assert throttle.wait("b", now=102.5) == 0  # other clients are not affected
    for i in range(10):
        throttle.failed("a", now=104.0 + i)
    assert throttle.wait("a", now=114.0) <= 60  # capped
    assert throttle.wait("a", now=114.0 + 901) == 0  # failures age out
    throttle.failed("a", now=2000.0)
    throttle.succeeded("a")
    assert throttle.wait("a", now=2000.0) == 0


@pytest.mark.daemon
@pytest.mark.cli
def test_init_and_passwd_set_the_password_and_passwd_ends_sessions(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", ARTDAG_P2P="false")
    env = daemon.env()
    done = subprocess.run(
        [ARTDAG, "init", "--password-stdin"],
        input=b"first password\n",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert b"web UI password set" in done.stderr
    short = subprocess.run(
        [ARTDAG, "passwd", "--password-stdin"],
        input=b"short\n",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert short.returncode != 0 and b"at least 8" in short.stderr
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.api_url, timeout=30) as browser:
            login = browser.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert token is not None
            response = browser.post(
                "/login", data={"password": "first password", "csrf": token.group(1)}
            )
            assert response.status_code == 302
            assert browser.get("/").status_code == 200
            changed = subprocess.run(
                [ARTDAG, "passwd", "--password-stdin"],
                input=b"second password\n",
                env=env,
                capture_output=True,
                timeout=60,
            )
            assert changed.returncode == 0, changed.stderr
            # The same cookie no longer opens the owner's pages.
            assert browser.get("/", follow_redirects=False).status_code == 302
    finally:
        daemon.stop()
    assert os.stat(tmp_path / "home" / "web-password").st_mode & 0o777 == 0o600
