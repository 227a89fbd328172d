"""Pin requests of the Pinning Service API (daemon/pin_requests.py, daemon/pinning_tokens.py):
the pure checks of bodies and list filters, RFC 3339 parsing, the SQLite store round trip and
its filters, and the tokens file. No network, no daemon."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import dag
from daemon.core.pinning_api.request_store import PinRequestStore
from daemon.core.pinning_api.requests import (
    ListQuery,
    PinRequestError,
    PinSpec,
    format_created,
    parse_list_query,
    parse_pin_body,
    parse_rfc3339_ms,
)
from daemon.core.pinning_api.tokens import (
    PinningTokenError,
    TokenChecker,
    add_token,
    list_tokens,
    remove_token,
)

CID_A = dag.Block.encode(b"a", codec="raw").cid
CID_B = dag.Block.encode(b"b", codec="raw").cid
A = dag.cid_to_str(CID_A)
B = dag.cid_to_str(CID_B)
PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

# -- POST bodies ---------------------------------------------------------------------------------


def test_a_full_pin_body_is_accepted_and_echoed() -> None:
    body = {
        "cid": A,
        "name": "PreciousData.pdf",
        "origins": [f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}"],
        "meta": {"app_id": "99986338"},
        "vendor_extension": 1,  # unknown fields are allowed (no additionalProperties: false)
    }
    pin = parse_pin_body(body)
    assert pin.root == CID_A and pin.key == A
    assert pin.to_json() == {k: v for k, v in body.items() if k != "vendor_extension"}
    assert parse_pin_body({"cid": A}).to_json() == {"cid": A}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "JSON object"),
        ({}, "cid is required"),
        ({"cid": 5}, "cid must be a string"),
        ({"cid": "not-a-cid"}, "not a valid CID"),
        ({"cid": "bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea"}, "codec"),
        ({"cid": A, "name": 3}, "name must be a string"),
        ({"cid": A, "name": "x" * 256}, "at most 255"),
        ({"cid": A, "origins": "/ip4/1.2.3.4"}, "origins must be a list"),
        ({"cid": A, "origins": [1]}, "each origin must be a string"),
        ({"cid": A, "origins": [f"/o/{i}" for i in range(21)]}, "at most 20"),
        ({"cid": A, "origins": ["/x", "/x"]}, "repeat"),
        ({"cid": A, "meta": []}, "meta must be an object"),
        ({"cid": A, "meta": {"k": 1}}, "must be a string"),
        ({"cid": A, "meta": {"k": "v" * 5000}}, "over 4096"),
    ],
)
def test_bad_pin_bodies_are_refused_naming_the_problem(body: object, problem: str) -> None:
    with pytest.raises(PinRequestError, match=problem):
        parse_pin_body(body)


def test_origins_need_not_parse_as_multiaddrs() -> None:
    """The spec: dialling origins is best effort; an unparseable one is ignored at fetch time."""
    assert parse_pin_body({"cid": A, "origins": ["garbage"]}).origins == ("garbage",)


# -- list query ----------------------------------------------------------------------------------


def test_list_query_defaults_to_the_ten_newest_pinned() -> None:
    assert parse_list_query({}) == ListQuery(statuses=("pinned",), limit=10)


def test_list_query_parses_every_filter() -> None:
    query = parse_list_query(
        {
            "cid": f"{A},{B}",
            "name": "Data",
            "match": "ipartial",
            "status": "queued,pinning",
            "before": "2020-07-27T17:32:28.276Z",
            "after": "2020-07-27T19:32:28+02:00",
            "limit": "1000",
            "meta": '{"app_id": "x"}',
        }
    )
    assert query.cids == (A, B)
    assert (query.name, query.match) == ("Data", "ipartial")
    assert query.statuses == ("queued", "pinning")
    assert query.before_ms == 1595871148276
    assert query.after_ms == 1595871148000
    assert query.limit == 1000
    assert query.meta == {"app_id": "x"}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"cid": "nope"}, "cid"),
        ({"cid": ",".join([A] * 11)}, "at most 10"),
        ({"cid": f"{A},"}, "empty items"),
        ({"name": "n" * 256}, "at most 255"),
        ({"match": "fuzzy"}, "match must be one of"),
        ({"status": "done"}, "status must be among"),
        ({"status": ""}, "empty items"),
        ({"before": "yesterday"}, "before must be an RFC 3339"),
        ({"after": "2020-13-01T00:00:00Z"}, "not a valid date-time"),
        ({"after": "2020-07-27"}, "RFC 3339"),
        ({"limit": "0"}, "from 1 to 1000"),
        ({"limit": "1001"}, "from 1 to 1000"),
        ({"limit": "ten"}, "integer"),
        ({"meta": "{"}, "JSON object"),
        ({"meta": "[]"}, "object of strings"),
        ({"meta": '{"a": 1}'}, "must be a string"),
    ],
)
def test_bad_list_queries_are_refused_naming_the_parameter(
    args: dict[str, str], problem: str
) -> None:
    with pytest.raises(PinRequestError, match=problem):
        parse_list_query(args)


def test_rfc3339_round_trip_and_offsets() -> None:
    ms = parse_rfc3339_ms("2020-07-27T17:32:28.276Z")
    assert format_created(ms) == "2020-07-27T17:32:28.276Z"
    assert parse_rfc3339_ms("2020-07-27t19:32:28.276123+02:00") == ms
    assert parse_rfc3339_ms("1969-12-31T23:59:59.999Z") == -1
    assert parse_rfc3339_ms("0000-01-01T00:00:00Z") < 0  # RFC 3339 allows year 0: the earliest


# -- the store -----------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> PinRequestStore:
    return PinRequestStore(tmp_path / "pinning.db")


def test_store_round_trip_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "pinning.db"
    store = PinRequestStore(path)
    pin = PinSpec(cid=A, name="n", origins=("/o",), meta={"k": "v"})
    added = store.add(pin, owner="laptop", now_ms=1_000)
    assert added.status == "queued" and added.created == "1970-01-01T00:00:01.000Z"
    assert store.set_status(added.requestid, "pinning", {"status_details": "1 of 2"})
    store.close()
    store = PinRequestStore(path)
    again = store.get(added.requestid)
    assert again is not None
    assert again.pin == pin and again.status == "pinning" and again.owner == "laptop"
    assert again.info == {"status_details": "1 of 2"}
    assert store.get(added.requestid, owner="phone") is None  # another token's view
    assert store.requeue_interrupted() == 1
    assert store.queued()[0].requestid == added.requestid
    deleted = store.delete(added.requestid)
    assert deleted is not None and deleted.requestid == added.requestid
    assert store.get(added.requestid) is None and store.delete(added.requestid) is None


def test_created_is_unique_and_ids_are_random(store: PinRequestStore) -> None:
    rows = [store.add(PinSpec(cid=A), owner="o", now_ms=5_000) for _ in range(3)]
    assert [r.created_ms for r in rows] == [5_000, 5_001, 5_002]
    assert len({r.requestid for r in rows}) == 3
    assert all(len(r.requestid) >= 20 for r in rows)


def test_store_filters(store: PinRequestStore) -> None:
    first = store.add(PinSpec(cid=A, name="Holiday.MP4", meta={"app": "x", "k": "1"}), owner="o")
    second = store.add(PinSpec(cid=B, name="holiday notes", meta={"app": "y"}), owner="o")
    third = store.add(PinSpec(cid=A, name="other"), owner="o")
    store.add(PinSpec(cid=A, name="Holiday.MP4"), owner="someone else")
    for row in (first, second, third):
        store.set_status(row.requestid, "pinned")
    store.set_status(third.requestid, "failed")

    def ids(owner: str | None = "o", **kw: object) -> list[str]:
        count, rows = store.list(ListQuery(**kw), owner)  # type: ignore[arg-type]
        assert count >= len(rows)
        return [r.requestid for r in rows]

    assert ids() == [second.requestid, first.requestid]  # pinned only, newest first
    assert ids(statuses=("failed",)) == [third.requestid]
    assert ids(statuses=("queued",), owner=None) != []
    assert ids(cids=(A,), statuses=("pinned", "failed")) == [third.requestid, first.requestid]
    assert ids(name="Holiday.MP4") == [first.requestid]
    assert ids(name="holiday.mp4") == []
    assert ids(name="holiday.mp4", match="iexact") == [first.requestid]
    assert ids(name="oliday", match="partial") == [second.requestid, first.requestid]
    assert ids(name="HOLIDAY", match="partial") == []
    assert ids(name="HOLIDAY", match="ipartial") == [second.requestid, first.requestid]
    assert ids(meta={"app": "x"}) == [first.requestid]
    assert ids(meta={"app": "x", "k": "2"}) == []
    assert ids(before_ms=second.created_ms) == [first.requestid]
    assert ids(after_ms=first.created_ms) == [second.requestid]
    count, rows = store.list(ListQuery(limit=1), "o")
    assert (count, [r.requestid for r in rows]) == (2, [second.requestid])


def test_still_wanted_counts_live_requests_and_pending_releases(store: PinRequestStore) -> None:
    a = store.add(PinSpec(cid=A), owner="o")
    assert store.still_wanted(A) and not store.still_wanted(B)
    store.set_status(a.requestid, "failed")
    assert not store.still_wanted(A)
    store.add(PinSpec(cid=B), owner="o", releases=[A])  # a replacement of A in progress
    assert store.still_wanted(A)


# -- tokens --------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_0600_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "pinning-tokens"
    token = add_token(path, "laptop")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert token not in path.read_text()
    checker = TokenChecker(path)
    assert checker.owner_of(token) == "laptop"
    assert checker.owner_of(token + "x") is None
    assert checker.owner_of("") is None
    other = add_token(path, "phone")
    assert checker.owner_of(other) == "phone"  # the file changed: re-read
    with pytest.raises(PinningTokenError, match="exists"):
        add_token(path, "phone")
    with pytest.raises(PinningTokenError, match="token name"):
        add_token(path, "bad name")
    assert [e.name for e in list_tokens(path)] == ["laptop", "phone"]
    assert remove_token(path, "laptop") and not remove_token(path, "laptop")
    assert checker.owner_of(token) is None
    assert checker.owner_of(other) == "phone"


def test_a_status_named_twice_is_refused() -> None:
    """The spec's ``status`` array has ``uniqueItems``: schemathesis sent
    ``status=pinning,pinned,queued,queued,failed`` and the list was answered (200)."""
    with pytest.raises(PinRequestError, match="more than once"):
        parse_list_query({"status": "pinning,queued,queued"})
    assert parse_list_query({"status": "queued,pinned"}).statuses == ("queued", "pinned")
