"""Who follows each local creator, and which remote domains are blocked, in SQLite (WAL).

Two tables: ``ap_followers`` (one row per creator and remote actor, with the actor's inbox,
shared inbox and the id of the Follow, so an ``Undo`` naming the Follow only by id finds it)
and ``ap_blocked_domains`` (blocks made with ``artdag block DOMAIN``; config blocks live in the
config and are passed in where needed). Blocks are stored normalised
(:func:`activitypub_bridge.ssrf.parse_domain_block`: lower case, IDNA, ``*.`` dropped), so
``Bücher.Example.`` and ``xn--bcher-kva.example`` are one block.

Plain ``sqlite3``: every statement here is one short SQL line and upserts need
``ON CONFLICT ... DO UPDATE``. Like :class:`daemon.core.market.store.MarketStore` every method is
synchronous and serialised by one lock over one connection; trio callers use
``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dag.sqlite_db import open_sqlite

from .ssrf import DomainError, domain_blocked, parse_domain_block

__all__ = ["Follower", "FollowerStore", "FollowerStoreError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ap_followers (
    creator TEXT NOT NULL,
    actor TEXT NOT NULL,
    inbox TEXT,
    shared_inbox TEXT,
    follow_id TEXT,
    followed_at REAL NOT NULL,
    PRIMARY KEY (creator, actor)
);
CREATE INDEX IF NOT EXISTS ap_followers_actor ON ap_followers (actor);
CREATE TABLE IF NOT EXISTS ap_blocked_domains (
    domain TEXT PRIMARY KEY,
    blocked_at REAL NOT NULL
);
"""
_COLUMNS = "creator, actor, inbox, shared_inbox, follow_id, followed_at"


class FollowerStoreError(ValueError):
    """Input the follower store refuses (empty creator or actor, bad domain); nothing written."""


@dataclass(frozen=True)
class Follower:
    creator: str
    actor: str
    inbox: str | None
    shared_inbox: str | None
    follow_id: str | None
    followed_at: float


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise FollowerStoreError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _optional(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class FollowerStore:
    def __init__(self, path: Path | str) -> None:
        self._conn = open_sqlite(path)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FollowerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- followers ---------------------------------------------------------------------------

    def add(
        self,
        creator: str,
        actor: str,
        inbox: str | None,
        shared_inbox: str | None,
        followed_at: float | None = None,
        follow_id: str | None = None,
    ) -> bool:
        """Store ``actor`` as a follower of ``creator``; True if it is new.

        Idempotent: a repeated Follow keeps the first ``followed_at`` and updates the inboxes
        and Follow id it brings (a None inbox keeps the stored one).
        """
        row = (
            _text(creator, "creator"),
            _text(actor, "actor"),
            _optional(inbox, "inbox"),
            _optional(shared_inbox, "shared_inbox"),
            _optional(follow_id, "follow_id"),
            time.time() if followed_at is None else float(followed_at),
        )
        with self._lock, self._conn:
            existed = self._conn.execute(
                "SELECT 1 FROM ap_followers WHERE creator = ? AND actor = ?", row[:2]
            ).fetchone()
            self._conn.execute(
                f"INSERT INTO ap_followers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (creator, actor) DO UPDATE SET "
                "inbox = coalesce(excluded.inbox, inbox), "
                "shared_inbox = coalesce(excluded.shared_inbox, shared_inbox), "
                "follow_id = coalesce(excluded.follow_id, follow_id)",
                row,
            )
        return existed is None

    def set_inboxes(self, actor: str, inbox: str | None, shared_inbox: str | None) -> int:
        """Record ``actor``'s inboxes (fetched from its actor document) on all its follows."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE ap_followers SET inbox = ?, shared_inbox = ? WHERE actor = ?",
                (
                    _optional(inbox, "inbox"),
                    _optional(shared_inbox, "shared_inbox"),
                    _text(actor, "actor"),
                ),
            )
        return cur.rowcount

    def remove(self, creator: str, actor: str) -> bool:
        """Drop ``actor`` from ``creator``'s followers; True if it was one."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "DELETE FROM ap_followers WHERE creator = ? AND actor = ?", (creator, actor)
            )
        return cur.rowcount > 0

    def remove_follow(self, actor: str, follow_id: str) -> str | None:
        """Drop the follow ``follow_id`` made by ``actor`` (an Undo by id); its creator or None."""
        with self._lock, self._conn:
            row = self._conn.execute(
                "DELETE FROM ap_followers WHERE actor = ? AND follow_id = ? RETURNING creator",
                (actor, follow_id),
            ).fetchone()
        return None if row is None else str(row[0])

    def remove_actor(self, actor: str) -> int:
        """Drop ``actor`` from every creator's followers; how many follows went."""
        with self._lock, self._conn:
            cur = self._conn.execute("DELETE FROM ap_followers WHERE actor = ?", (actor,))
        return cur.rowcount

    def followers(self, creator: str, limit: int = 100, offset: int = 0) -> list[Follower]:
        """A page of ``creator``'s followers, oldest first (a stable order for paging)."""
        if limit < 0 or offset < 0:
            raise FollowerStoreError(f"limit and offset must be >= 0, got {limit}, {offset}")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM ap_followers WHERE creator = ? "
                "ORDER BY followed_at, actor LIMIT ? OFFSET ?",
                (creator, limit, offset),
            ).fetchall()
        return [Follower(*row) for row in rows]

    def count(self, creator: str) -> int:
        with self._lock:
            (n,) = self._conn.execute(
                "SELECT count(*) FROM ap_followers WHERE creator = ?", (creator,)
            ).fetchone()
        return int(n)

    def delivery_inboxes(self, creator: str, also_blocked: Iterable[str] = ()) -> list[str]:
        """Where to POST an activity of ``creator``: one URL per distinct inbox.

        A follower's shared inbox when it has one, else its own inbox, deduplicated so a host
        with many followers gets one POST. Followers with no known inbox yet are skipped, and so
        are those whose actor or inbox host is blocked (stored blocks plus ``also_blocked``,
        e.g. the config's), since blocks stop outbound delivery too.
        """
        blocks = [*self.blocked_domains(), *also_blocked]
        with self._lock:
            rows = self._conn.execute(
                "SELECT actor, coalesce(shared_inbox, inbox) FROM ap_followers "
                "WHERE creator = ? AND coalesce(shared_inbox, inbox) IS NOT NULL "
                "ORDER BY followed_at, actor",
                (creator,),
            ).fetchall()
        out: dict[str, None] = {}
        for actor, inbox in rows:
            if blocks and (
                domain_blocked(_host(actor), blocks) or domain_blocked(_host(inbox), blocks)
            ):
                continue
            out.setdefault(inbox)
        return list(out)

    # -- domain blocks -----------------------------------------------------------------------

    def block_domain(self, domain: str, at: float | None = None) -> str:
        """Block ``domain`` (and its subdomains); returns the normalised block."""
        try:
            name = parse_domain_block(domain)
        except DomainError as exc:
            raise FollowerStoreError(str(exc)) from None
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO ap_blocked_domains (domain, blocked_at) VALUES (?, ?)",
                (name, time.time() if at is None else at),
            )
        return name

    def unblock(self, domain: str) -> bool:
        """Lift the block on ``domain``; True if there was one."""
        try:
            name = parse_domain_block(domain)
        except DomainError as exc:
            raise FollowerStoreError(str(exc)) from None
        with self._lock, self._conn:
            cur = self._conn.execute("DELETE FROM ap_blocked_domains WHERE domain = ?", (name,))
        return cur.rowcount > 0

    def blocked_domains(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT domain FROM ap_blocked_domains ORDER BY domain"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def is_blocked(self, host: str, also_blocked: Iterable[str] = ()) -> bool:
        """Whether ``host`` is under a stored block or one of ``also_blocked`` (the config's)."""
        return domain_blocked(host, [*self.blocked_domains(), *also_blocked])
