"""The node API: what an artdag node can do, as Kubo's ``core/coreapi`` + ``client/rpc``.

One interface, :class:`NodeApi` (a Protocol per feature: assets, pins, render, ...), with two
implementations: in-process over the node's services (the ``Local*`` classes, over
:mod:`daemon.services`) and over HTTP against the running daemon (the ``Remote*`` classes, over
:mod:`daemon.nodeapi.remote`); each feature's module (``daemon/nodeapi/<feature>.py``) holds
its Protocol and both implementations. :func:`connect` picks one: the
daemon when one runs for this home (it owns the network, the market and the loops), else the
node opened in-process. Every CLI command goes through it, so each works with or without a
daemon and prints the same; the JSON API's routes call the local implementation, so the two
cannot drift apart.

``ARTDAG_API=local|remote`` forces a side (``auto`` is the default); tests use it to prove
which side answered.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from daemon.config import Config
from daemon.nodeapi.assets import AssetsApi, LocalAssets, RemoteAssets
from daemon.nodeapi.client import DaemonError, DaemonNotRunning, read_daemon_file
from daemon.nodeapi.content import ContentApi, LocalContent, RemoteContent
from daemon.nodeapi.fediverse import FediverseApi, LocalFediverse, RemoteFediverse
from daemon.nodeapi.market import LocalMarket, MarketApi, RemoteMarket
from daemon.nodeapi.money import LocalMoney, MoneyApi, RemoteMoney
from daemon.nodeapi.network import LocalNetwork, NetworkApi, RemoteNetwork
from daemon.nodeapi.ownership import (
    AnchorsApi,
    ClaimsApi,
    LocalAnchors,
    LocalClaims,
    RemoteAnchors,
    RemoteClaims,
)
from daemon.nodeapi.pinning import LocalPinning, PinningApi, RemotePinning
from daemon.nodeapi.pins import LocalPins, PinsApi, RemotePins
from daemon.nodeapi.remote import RemoteCaller, open_remote
from daemon.nodeapi.render import LocalRender, RemoteRender, RenderApi
from daemon.nodeapi.status import LocalStatus, RemoteStatus, StatusApi
from daemon.services import Services, open_services

__all__ = ["DaemonError", "DaemonNotRunning", "Mode", "NodeApi", "connect", "local_api"]

Mode = Literal["local", "remote"]


@dataclass(frozen=True)
class NodeApi:
    mode: Mode
    assets: AssetsApi
    content: ContentApi
    network: NetworkApi
    status: StatusApi
    claims: ClaimsApi
    anchors: AnchorsApi
    money: MoneyApi
    fediverse: FediverseApi
    render: RenderApi
    market: MarketApi
    pins: PinsApi
    pinning: PinningApi


def local_api(services: Services) -> NodeApi:
    """The node API over services already open (the daemon's routes use this one)."""
    return NodeApi(
        mode="local",
        assets=LocalAssets(services),
        content=LocalContent(services),
        network=LocalNetwork(services),
        status=LocalStatus(services),
        claims=LocalClaims(services),
        anchors=LocalAnchors(services),
        money=LocalMoney(services),
        fediverse=LocalFediverse(services),
        render=LocalRender(services),
        market=LocalMarket(services),
        pins=LocalPins(services),
        pinning=LocalPinning(services),
    )


def remote_api(caller: RemoteCaller) -> NodeApi:
    return NodeApi(
        mode="remote",
        assets=RemoteAssets(caller),
        content=RemoteContent(caller),
        network=RemoteNetwork(caller),
        status=RemoteStatus(caller),
        claims=RemoteClaims(caller),
        anchors=RemoteAnchors(caller),
        money=RemoteMoney(caller),
        fediverse=RemoteFediverse(caller),
        render=RemoteRender(caller),
        market=RemoteMarket(caller),
        pins=RemotePins(caller),
        pinning=RemotePinning(caller),
    )


def choose_mode(config: Config, environ: dict[str, str] | None = None) -> Mode:
    """``remote`` when a daemon runs for this home, else ``local`` (or as ARTDAG_API says)."""
    wanted = (environ if environ is not None else os.environ).get("ARTDAG_API", "auto")
    if wanted not in ("auto", "local", "remote"):
        raise ValueError(f"ARTDAG_API: expected auto, local or remote, got {wanted!r}")
    if wanted != "auto":
        return wanted  # type: ignore[return-value]
    try:
        read_daemon_file(config)
    except DaemonNotRunning:
        return "local"
    return "remote"


@asynccontextmanager
async def connect(config: Config, *, mode: Mode | None = None) -> AsyncIterator[NodeApi]:
    """The node API for ``config.home``: over HTTP if its daemon runs, else in-process."""
    if (mode or choose_mode(config)) == "remote":
        async with open_remote(config) as caller:
            yield remote_api(caller)
    else:
        async with open_services(config) as services:
            yield local_api(services)
