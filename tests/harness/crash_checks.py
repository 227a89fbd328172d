"""The crash campaign's checks, run after every restart of the killed daemon.

Each check looks at the node's files and the daemon as a user's tools would (``artdag verify``
as a subprocess, the store through the ``dag`` package, the SQLite indexes read-only) and
returns the *distinct* problems it found as short keys ("pin:bafy..."); :class:`Findings`
keeps the union over the campaign, so a problem still there after ten restarts counts once.

What each check means (``kind`` is the column of the summary line it adds to):

- ``verify`` (corrupt): ``artdag verify`` finds no block that fails to re-hash to its CID and
  (since issue 16) no pin whose DAG lacks blocks; a pin it calls incomplete only because a
  record's ``cache_id`` link (a step-cache key, never a stored block) is absent is a note.
- ``pins complete`` (corrupt): our own walk of every pin through the ``dag`` package.
- ``assets have blocks`` (corrupt): every listed asset's file DAG and its record block exist.
- ``repo chain intact`` (corrupt): our creator repo, walked from its head, is signed, numbered
  without gaps and linked, and agrees with ``repo_records``.
- ``acknowledged kept`` (lost): what a client was told is done is still so: each add or render
  that printed its CID is listed and whole; each pin added or removed (acknowledged) is so.
- ``publishes delivered`` (lost; final check only): every acknowledged publish reached every
  follower inbox.
- ``records once`` (duplicated): one signed asset record per (file, signer) in the index, and
  in the repo chain no record twice and one asset record per file.
- ``one activity per work and inbox`` (duplicated): an inbox received one activity id per
  work; a repeat of the *same* id (a resend after a crash between send and mark-done) is
  counted as ``resent`` instead, since receivers de-duplicate by id.
- ``asset records chained`` (unchained): each asset record of ours is in our repo chain (else
  peers never learn of it): those of acknowledged adds after every restart; after the final
  round, where interrupted adds and renders are repeated as a user would, every one.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

import dag
from dag import CID, FlatFsBlockstore, cid_to_str, parse_cid
from dag.walk import links_of
from tests.harness.ap_remote import RemoteServer

__all__ = ["CHECK_KINDS", "Findings", "Ledger", "Snapshot", "check_deliveries", "run_checks"]

VERIFY_TIMEOUT_S = 600.0

CHECK_KINDS: dict[str, str] = {
    "daemon restarts": "corrupt",
    "verify": "corrupt",
    "pins complete": "corrupt",
    "assets have blocks": "corrupt",
    "repo chain intact": "corrupt",
    "acknowledged kept": "lost",
    "publishes delivered": "lost",
    "records once": "duplicated",
    "one activity per work and inbox": "duplicated",
    "asset records chained": "unchained",
}


@dataclass
class Ledger:
    """What the daemon (or the CLI) acknowledged to the client, kept by the workload.

    ``pinned`` holds the expected state of every CID the workload pins or unpins: True
    (pinned, for any reason), False (not pinned) or None (unknown: the last operation on it
    was interrupted by a kill, so either state is right)."""

    assets: dict[str, str] = field(default_factory=dict)  # root -> how it was acknowledged
    pinned: dict[str, bool | None] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)  # asset root -> Create id
    inboxes: set[str] = field(default_factory=set)  # where every publish must arrive


@dataclass
class Findings:
    problems: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in CHECK_KINDS})
    runs: Counter[str] = field(default_factory=Counter)
    resent: int = 0  # deliveries of an activity id an inbox had already received
    unverified: int = 0  # POSTs whose signature the inbox could not check (sender killed)
    cache_id_pins: set[str] = field(default_factory=set)  # verify's false alarms (see above)
    delivered: tuple[int, int, int] = (0, 0, 0)  # (publishes, inboxes, verified Creates got)

    def add(self, check: str, found: set[str]) -> None:
        self.runs[check] += 1
        self.problems[check] |= found

    def total(self, kind: str) -> int:
        return sum(len(p) for check, p in self.problems.items() if CHECK_KINDS[check] == kind)


@dataclass
class Snapshot:
    """The node's files as the checks read them (the daemon running, the workload stopped)."""

    home: Path
    did: str
    store: FlatFsBlockstore

    def query(self, db: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        path = self.home / db
        if not path.exists():
            return []
        with _readonly(path) as conn:
            return conn.execute(sql, args).fetchall()

    async def complete(self, cid: str) -> bool:
        return not await missing_blocks(self.store, parse_cid(cid))


@contextmanager
def _readonly(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


# -- the checks --------------------------------------------------------------------------
async def check_verify(
    artdag: str, env: dict[str, str], whole: set[str], notes: set[str]
) -> set[str]:
    """``artdag verify --json``'s bad blocks and incomplete pins. A pin it calls incomplete
    that our own walk (:func:`missing_blocks`) finds whole, bar ``cache_id`` links, goes to
    ``notes`` instead (artdag before commit 783934d did so for every render's pins)."""
    with trio.move_on_after(VERIFY_TIMEOUT_S):
        done = await trio.run_process(
            [artdag, "verify", "--json"],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        try:
            report = json.loads(done.stdout)
        except ValueError:
            return {f"verify exited {done.returncode}: {done.stderr.decode()[-200:]}"}
        found = {f"bad:{cid}" for cid in report["bad"]}
        for pin in report["incomplete_pins"]:
            if pin["cid"] in whole:
                notes.add(pin["cid"])
            else:
                found.add(f"incomplete:{pin['cid']}")
        if not report["bad"] and not found and done.returncode not in (0, 1):
            found.add(f"verify exited {done.returncode}")
        return found
    return {f"verify did not finish in {VERIFY_TIMEOUT_S:.0f} s"}


def _links(value: Any, skipped: set[str]) -> Iterator[CID]:
    """The links of a decoded DAG-CBOR value, except those under a ``cache_id`` key (a step
    cache id: the hash of an operation, its config and its inputs, a name and not a block)."""
    if isinstance(value, CID):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "cache_id" and isinstance(item, CID):
                skipped.add(cid_to_str(item))
            else:
                yield from _links(item, skipped)
    elif isinstance(value, list):
        for item in value:
            yield from _links(item, skipped)


async def missing_blocks(store: FlatFsBlockstore, root: CID, *, recursive: bool = True) -> set[str]:
    """The blocks reachable from ``root`` the store lacks (or cannot read back intact)."""
    missing: set[str] = set()
    seen: set[str] = set()
    stack = [root]
    skipped: set[str] = set()
    while stack:
        cid = stack.pop()
        key = cid_to_str(cid)
        if key in seen:
            continue
        seen.add(key)
        if cid.codec.name == "raw" or not recursive:
            if not await store.has(cid):
                missing.add(key)
            continue
        try:
            data = await store.get(cid)
        except dag.BlockNotFound:
            missing.add(key)
            continue
        except dag.BlockCorrupt:
            missing.add(f"{key} (corrupt)")
            continue
        if cid.codec.name == "dag-cbor":
            stack.extend(_links(dag.decode_dagcbor(data), skipped))
        else:
            stack.extend(links_of(cid, data))
    return missing


async def check_pins(snap: Snapshot, whole: set[str]) -> set[str]:
    """Every pin's DAG (its root for a direct pin) is here; the whole pins go to ``whole``."""
    found = set()
    for pin in await snap.store.pins():
        key = cid_to_str(pin.cid)
        missing = await missing_blocks(snap.store, pin.cid, recursive=pin.recursive)
        if missing:
            found.add(f"pin:{key} lacks {', '.join(sorted(missing)[:3])}")
        else:
            whole.add(key)
    return found


async def check_assets(snap: Snapshot) -> set[str]:
    found = set()
    for cid, record in snap.query("index.db", "SELECT cid, record FROM assets"):
        if not await snap.complete(cid):
            found.add(f"asset:{cid}")
        elif not await snap.store.has(parse_cid(record)):
            found.add(f"asset-record:{record}")
    return found


async def walk_repo(snap: Snapshot) -> tuple[set[str], list[str]]:
    """Problems of our repo chain, and its record CIDs from the head down."""
    from p2p.repo.chain import ChainInvalid, verify_commit

    rows = snap.query("p2p.db", "SELECT seq, head FROM repo_heads WHERE did = ?", (snap.did,))
    if not rows:
        return set(), []
    seq, head = rows[0]
    listed = dict(
        snap.query("p2p.db", "SELECT seq, [commit] FROM repo_records WHERE repo = ?", (snap.did,))
    )
    records: list[str] = []
    cid: str | None = head
    expected = seq
    while cid is not None:
        try:
            commit = dag.decode_dagcbor(await snap.store.get(parse_cid(cid)))
            verify_commit(commit, snap.did)
        except (dag.DagError, ChainInvalid) as exc:
            return {f"chain:commit {cid} at seq {expected}: {exc}"}, records
        if commit["seq"] != expected:
            return {f"chain:commit {cid} has seq {commit['seq']}, expected {expected}"}, records
        if listed.get(expected) != cid:
            return {f"chain:repo_records says {listed.get(expected)} at seq {expected}"}, records
        records.append(cid_to_str(commit["record"]))
        prev = commit.get("prev")
        cid = None if prev is None else cid_to_str(prev)
        expected -= 1
    return ({f"chain:ends at seq {expected + 1}, not 0"} if expected != -1 else set()), records


async def check_duplicates(snap: Snapshot, chain: list[str]) -> set[str]:
    found = {
        f"index-dup:{subject}"
        for (subject,) in snap.query(
            "index.db",
            "SELECT subject FROM records WHERE type = 'asset' AND signer = ?"
            " GROUP BY subject HAVING count(*) > 1",
            (snap.did,),
        )
    }
    found |= {f"repo-dup:{cid}" for cid, n in Counter(chain).items() if n > 1}
    roots: Counter[str] = Counter()
    for cid in set(chain):
        record = dag.decode_dagcbor(await snap.store.get(parse_cid(cid)))
        if isinstance(record, dict) and record.get("type") == "asset":
            roots[cid_to_str(record["root"])] += 1
    return found | {f"repo-dup-root:{root}" for root, n in roots.items() if n > 1}


def check_chained(snap: Snapshot, chain: list[str], ledger: Ledger, *, final: bool) -> set[str]:
    """Asset records of ours missing from our chain: those of acknowledged adds after every
    restart; on the final check (interrupted operations repeated) every one of them."""
    in_chain = set(chain)
    rows = snap.query(
        "index.db",
        "SELECT cid, subject FROM records WHERE type = 'asset' AND signer = ?",
        (snap.did,),
    )
    return {
        f"unchained:{cid} (of {subject})"
        for cid, subject in rows
        if cid not in in_chain and (final or subject in ledger.assets)
    }


async def check_acknowledged(snap: Snapshot, ledger: Ledger) -> set[str]:
    found = set()
    listed = {cid for (cid,) in snap.query("index.db", "SELECT cid FROM assets")}
    for cid, how in ledger.assets.items():
        if cid not in listed:
            found.add(f"lost-asset:{cid} ({how})")
        elif not await snap.complete(cid):
            found.add(f"lost-blocks:{cid} ({how})")
    pinned = {cid_to_str(p.cid) for p in await snap.store.pins()}
    for cid, expected in ledger.pinned.items():
        if expected is True and cid not in pinned:
            found.add(f"lost-pin:{cid}")
        elif expected is False and cid in pinned:
            found.add(f"lost-unpin:{cid}")
    return found


def check_deliveries(
    servers: list[RemoteServer], ledger: Ledger, findings: Findings, *, final: bool
) -> None:
    """Per inbox and work, the distinct Create ids received (verified); on the final call,
    also whether every acknowledged publish reached every inbox."""
    ids: dict[tuple[str, str], set[str]] = {}
    times: Counter[tuple[str, str]] = Counter()
    unverified = 0
    for server in servers:
        for r in server.of_type("Create"):
            if not r.verified:
                unverified += 1
                continue
            activity = r.activity
            inbox = server.url + r.path
            ids.setdefault((inbox, str(activity["object"]["id"])), set()).add(activity["id"])
            times[(inbox, activity["id"])] += 1
    findings.resent = sum(n - 1 for n in times.values())
    findings.delivered = (len(ledger.published), len(ledger.inboxes), sum(times.values()))
    findings.unverified = unverified
    findings.add(
        "one activity per work and inbox",
        {f"delivery-dup:{inbox} {note}" for (inbox, note), got in ids.items() if len(got) > 1},
    )
    if final:
        findings.add(
            "publishes delivered",
            {
                f"undelivered:{activity} to {inbox}"
                for activity in ledger.published.values()
                for inbox in ledger.inboxes
                if times[(inbox, activity)] == 0
            },
        )


async def run_checks(
    home: Path,
    did: str,
    artdag: str,
    env: dict[str, str],
    ledger: Ledger,
    findings: Findings,
    *,
    final: bool = False,
) -> None:
    """Every check but the deliveries', once; problems are added to ``findings``."""
    store = FlatFsBlockstore(home / "store", sync="never", hash_on_read=True)
    try:
        snap = Snapshot(home, did, store)
        whole: set[str] = set()
        findings.add("pins complete", await check_pins(snap, whole))
        findings.add("verify", await check_verify(artdag, env, whole, findings.cache_id_pins))
        findings.add("assets have blocks", await check_assets(snap))
        chain_problems, chain = await walk_repo(snap)
        findings.add("repo chain intact", chain_problems)
        findings.add("records once", await check_duplicates(snap, chain))
        findings.add("asset records chained", check_chained(snap, chain, ledger, final=final))
        findings.add("acknowledged kept", await check_acknowledged(snap, ledger))
    finally:
        await store.aclose()
