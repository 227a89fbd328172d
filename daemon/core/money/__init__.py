"""The node's money: usage records, work graphs read from records, settlement statements.

The adapter between the pure arithmetic (:mod:`provenance.splits`, :mod:`provenance.settlement`)
and the node's store and index: :mod:`~daemon.core.money.service` (usage and settlements),
:mod:`~daemon.core.money.graph` (who fills each role of a work), :mod:`~daemon.core.money.tables`
(the SQLite side).
"""

from daemon.core.money.graph import WorkSources, build_work
from daemon.core.money.service import MoneyService, current_epoch, open_money

__all__ = ["MoneyService", "WorkSources", "build_work", "current_epoch", "open_money"]
