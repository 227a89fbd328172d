"""The pinning policy's pure parts: decayed popularity, request de-duplication, what to pin
and unpin, and which policy pins a quota gives up."""

from __future__ import annotations

import math

import pytest

from daemon.core.pins.policy import Candidate, fit_quota, plan_changes, value_order
from daemon.core.pins.popularity import PopularityStore, RequestDedup, decayed, rank_key

H = 3600.0


def test_decay_halves_each_half_life_and_never_grows():
    assert decayed(8.0, 0.0, H, H) == pytest.approx(4.0)
    assert decayed(8.0, 0.0, 3 * H, H) == pytest.approx(1.0)
    assert decayed(8.0, 10.0, 5.0, H) == 8.0  # a reading before the update is not inflated


def test_rank_key_orders_like_decayed_scores():
    works = [(10.0, 0.0), (3.0, 2 * H), (6.0, H), (1.0, 5 * H)]
    now = 6 * H
    by_score = sorted(works, key=lambda w: -decayed(w[0], w[1], now, H))
    by_key = sorted(works, key=lambda w: -rank_key(w[0], w[1], H))
    assert by_score == by_key
    assert by_key[0] == (1.0, 5 * H)  # 1 an hour ago beats 10 six hours ago (10/64)


def test_popularity_store_ranks_recent_usage(tmp_path):
    store = PopularityStore(tmp_path / "p.db", half_life_s=H)
    t = 1_000_000.0
    store.add([("old", "boost", t), ("new", "request", t + 10 * H)])
    store.add([("mid", "like", t + 8 * H)])
    top = store.top(3, t + 10 * H)
    assert [s.cid for s in top] == ["mid", "new", "old"]  # 5/4 > 1 > 10/1024
    assert top[0].score == pytest.approx(5 / 4)
    assert top[2].score == pytest.approx(10 / 1024)
    store.add([("new", "request", t + 10 * H), ("new", "request", t + 10 * H)])
    top = store.top(1, t + 10 * H)
    assert top[0].cid == "new" and top[0].score == pytest.approx(3.0) and top[0].events == 3
    assert store.scores(["old", "nope"], t) == {"old": pytest.approx(10.0)}
    store.close()


def test_popularity_events_out_of_order_decay_to_the_latest(tmp_path):
    store = PopularityStore(tmp_path / "p.db", half_life_s=H)
    store.add([("w", "request", 2 * H), ("w", "request", H)])  # the second arrived late
    (score,) = store.top(1, 2 * H)
    assert score.score == pytest.approx(1.5)
    store.close()


def test_request_dedup_counts_one_view_per_client_and_window():
    dedup = RequestDedup(window_s=600, max_entries=3)
    assert dedup.is_new_view("1.2.3.4", "w", 0)
    assert not dedup.is_new_view("1.2.3.4", "w", 599)  # a range request of the same view
    assert dedup.is_new_view("5.6.7.8", "w", 10)  # another client
    assert dedup.is_new_view("1.2.3.4", "w", 1200)  # a later visit
    for i in range(4):
        dedup.is_new_view(f"c{i}", "x", 1300)
    assert dedup.is_new_view("1.2.3.4", "w", 1301)  # forgotten: the table keeps 3 entries


def test_plan_changes_pins_wanted_and_unpins_what_policies_dropped():
    wanted = [Candidate("a", "popular", 3.0), Candidate("b", "followed", 0.0, "did:key:z1")]
    pinned = {
        "a": frozenset({"local"}),  # already pinned locally: still gets its popular reason
        "c": frozenset({"popular"}),  # no longer popular
        "d": frozenset({"explicit", "popular"}),  # popular no more, explicit stays
        "e": frozenset({"remote"}),  # a policy never removes remote pins
    }
    changes = plan_changes(wanted, pinned, skip=frozenset())
    assert [(c.cid, c.reason) for c in changes.pin] == [("a", "popular"), ("b", "followed")]
    assert changes.unpin == [("c", "popular"), ("d", "popular")]
    skipped = plan_changes(wanted, pinned, skip=frozenset({"b"}))
    assert [c.cid for c in skipped.pin] == ["a"]


def test_value_order_puts_followed_first_then_by_score():
    cands = [
        Candidate("p1", "popular", 1.0),
        Candidate("f", "followed", 0.0),
        Candidate("p9", "popular", 9.0),
        Candidate("p5", "popular", 5.0),
    ]
    assert [c.cid for c in value_order(cands)] == ["f", "p9", "p5", "p1"]


def test_fit_quota_drops_the_least_valuable_from_the_first_misfit():
    a, b, c, d = (Candidate(x, "popular", v) for x, v in [("a", 9), ("b", 5), ("c", 3), ("d", 1)])
    plan = fit_quota(100, [(a, 50), (b, 60), (c, 10), (d, 5)], quota=200)
    assert [x.cid for x in plan.keep] == ["a"]
    # c and d would fit after b is dropped, but keeping them while dropping b would keep a
    # less valuable pin in place of a more valuable one
    assert [x.cid for x in plan.drop] == ["b", "c", "d"]
    assert plan.kept_bytes == 150 and plan.over_quota
    assert not fit_quota(100, [(a, 50)], quota=0).over_quota  # 0: no quota
    everything = fit_quota(100, [(a, 50), (b, 50)], quota=200)
    assert everything.drop == [] and everything.kept_bytes == 200


def test_fit_quota_with_protected_pins_over_the_quota_drops_every_policy_pin():
    a = Candidate("a", "popular", 9.0)
    plan = fit_quota(500, [(a, 0)], quota=400)
    assert plan.drop == [a]
    assert math.isclose(plan.kept_bytes, 500)
