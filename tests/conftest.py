"""Fixtures shared by the test packages. Each is real: a temporary ARTDAG_HOME for the CLI, a
node opened in-process over a fresh home, the test calendar server, media made by ffmpeg.

A module may define a fixture of the same name for something else (``media`` in
tests/renderer/test_sandbox.py is its own set of files, ``store`` in
tests/daemon/test_market_store.py the market's ledger); pytest takes the nearest.

Every test under tests/integration/ or tests/interop/ gets that folder's marker here, so that
``./run-tests --quick`` (``-m "not (integration or interop or daemon or cli or browser or
ffmpeg or slow)"``) leaves them out without each module having to say so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from daemon.config import load_config
from daemon.core.node import Node, open_node
from dag import FlatFsBlockstore
from tests.harness.cli_helpers import Home
from tests.harness.renderer_fixtures import MediaSet, make_media
from tests.peers.ots_calendar import TestCalendar, start_test_calendar

FOLDER_MARKERS = ("integration", "interop")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """An ARTDAG_HOME for the ``artdag`` console script, not yet initialised."""
    return Home(tmp_path / "home")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FlatFsBlockstore]:
    """A flat-file blockstore in a fresh directory, closed after the test."""
    flatfs = FlatFsBlockstore(tmp_path / "store")
    try:
        yield flatfs
    finally:
        await flatfs.aclose()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A node opened in this process over a fresh home (no daemon, no P2P)."""
    async with open_node(load_config(tmp_path / "home", environ={})) as node:
        yield node


@pytest.fixture
async def calendar() -> AsyncIterator[TestCalendar]:
    """The OpenTimestamps test calendar server on 127.0.0.1 (tests/peers/ots_calendar.py)."""
    async with trio.open_nursery() as nursery:
        cal: TestCalendar = await nursery.start(start_test_calendar)
        yield cal
        nursery.cancel_scope.cancel()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    """Short clips and click tracks for renders, made once (tests only read them)."""
    return make_media(tmp_path_factory.mktemp("media"))
