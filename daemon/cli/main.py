"""The ``artdag`` command group: it loads the config and gathers every command.

Each ``daemon/cli/<feature>.py`` defines its commands at module level (parse, call the node
API, print); this module only adds them to the group. Feature modules never import this one.
Errors print one line, ``artdag: error: ...``, on stderr and exit with status 1 (2 for usage);
see :mod:`daemon.cli.common`.
"""

from __future__ import annotations

import click

from daemon.cli import (
    activitypub,
    anchor,
    claims,
    content,
    home,
    market,
    money,
    p2p,
    pinning,
    pins,
    render,
    status,
)
from daemon.cli.common import fail
from daemon.config import ConfigError, load_config

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="ARTDAG_HOME", help="Node directory (default ~/.artdag).")
@click.version_option(package_name="artdag")
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """artdag: a peer-to-peer daemon for creative work with provenance."""
    try:
        ctx.obj = {"config": load_config(home)}
    except ConfigError as exc:
        fail(str(exc))


for command in (
    # the home and the daemon (local by nature)
    home.init,
    home.passwd,
    home.daemon,
    # content: files, blocks, CAR files, records
    content.add,
    content.cat,
    content.assets,
    content.dag_group,
    content.export_car,
    content.import_car,
    content.verify,
    content.record_group,
    # the network and the node's state
    p2p.id_,
    p2p.peers,
    p2p.connect,
    p2p.get,
    status.status,
    # render and the render market
    render.effects,
    render.recipe_group,
    render.render,
    render.provenance,
    market.jobs,
    market.volunteers,
    # ownership, money, anchors, the fediverse
    claims.claim,
    claims.disputes,
    money.usage,
    money.settle,
    money.statement_proof,
    anchor.anchor,
    anchor.anchors,
    anchor.verify_anchor,
    activitypub.publish,
    activitypub.deliveries,
    activitypub.followers,
    activitypub.block,
    activitypub.unblock,
    # pins and the Pinning Service API
    pinning.pinning,
    pins.pin_group,
    pins.gc,
):
    main.add_command(command)
