"""The web UI tests' daemon: one real ``artdag daemon`` per test module (P2P off), its owner
password ``OWNER_PASSWORD`` set by ``artdag init --password-stdin``. A module that needs a
different daemon (a browser check first, a config.toml) defines its own ``daemon``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.daemons import DaemonProcess
from tests.harness.web_daemons import webui_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with webui_daemon(tmp_path_factory.mktemp("webui") / "home") as d:
        yield d
