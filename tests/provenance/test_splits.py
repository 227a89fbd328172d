"""Revenue splits (provenance/splits.py): exact integer arithmetic over work graphs."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.splits import (
    DEFAULT_SPLIT,
    MAX_DEPTH,
    Split,
    SplitError,
    Weighted,
    Work,
    allocate,
    distribute,
    distribute_pool,
    ninety_ten,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- splits ---------------------------------------------------------------------------------
def test_default_split_is_the_seeds():
    assert DEFAULT_SPLIT.shares == {
        "effects": 2500,
        "footage": 4000,
        "infrastructure": 1500,
        "recipe": 2000,
    }


def test_parse_percentages_into_basis_points():
    split = Split.parse(["footage=40", "effects=25.5", "recipe=20", "infrastructure=14.50"])
    assert split.shares == {
        "footage": 4000,
        "effects": 2550,
        "recipe": 2000,
        "infrastructure": 1450,
    }
    assert str(split) == "effects=25.5 footage=40 infrastructure=14.5 recipe=20"
    assert Split.parse(["creator=100"]).shares == {"creator": 10000}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["footage=40", "effects=50"], "sums to 90%"),
        (["footage=40.005", "effects=59.995"], "at most two decimals"),
        (["footage"], "ROLE=PERCENT"),
        (["footage=abc"], "not a percentage"),
        (["footage=120", "x=-20"], "between 0 and 100"),
        (["Footage=100"], "lower-case"),
        (["footage=50", "footage=50"], "given twice"),
        ([], "at least one"),
    ],
)
def test_bad_splits_are_named(items, message):
    with pytest.raises(SplitError, match=message):
        Split.parse(items)


def test_split_from_record_checks_the_sum():
    with pytest.raises(SplitError, match="100%"):
        Split.from_record({"footage": 5000})


# -- allocate -------------------------------------------------------------------------------
def test_largest_remainder_ties_by_key():
    assert allocate(10, [("b", 1), ("a", 1), ("c", 1)]) == {"a": 4, "b": 3, "c": 3}
    # 7 * 1/6 = 1.166, 7 * 2/6 = 2.333, 7 * 3/6 = 3.5: the leftover unit goes to the largest
    # remainder (c), not to the first key
    assert allocate(7, [("a", 1), ("b", 2), ("c", 3)]) == {"a": 1, "b": 2, "c": 4}


@FAST
@given(
    st.integers(0, 10**12),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=30).filter(lambda ws: sum(ws) > 0),
)
def test_allocate_is_exact_and_within_one_of_the_ideal(amount, weights):
    keyed = [(f"k{i:02d}", w) for i, w in enumerate(weights)]
    out = allocate(amount, keyed)
    assert sum(out.values()) == amount
    total = sum(weights)
    for key, w in keyed:
        assert amount * w // total <= out[key] <= amount * w // total + 1


# -- small graphs, computed by hand ---------------------------------------------------------
def test_one_work_by_the_default_split():
    work = Work(
        "out",
        roles={
            "footage": ["did:a", "did:b"],
            "effects": ["did:fx"],
            "recipe": ["did:r"],
            "infrastructure": ["did:n1", "did:n2", "did:n3"],
        },
    )
    assert distribute(work, 10000) == {
        "did:a": 2000,
        "did:b": 2000,
        "did:fx": 2500,
        "did:r": 2000,
        "did:n1": 500,
        "did:n2": 500,
        "did:n3": 500,
    }


def test_a_derived_input_passes_its_share_down_by_its_own_split():
    # inner: 50% footage (did:cam), 50% recipe (did:chef)
    inner = Work(
        "inner",
        Split({"footage": 5000, "recipe": 5000}),
        {"footage": ["did:cam"], "recipe": ["did:chef"]},
    )
    outer = Work(
        "outer",
        roles={
            "footage": [inner, "did:raw"],
            "effects": ["did:fx"],
            "recipe": ["did:chef"],
            "infrastructure": ["did:node"],
        },
    )
    # 1000: footage 400 -> inner 200 (cam 100, chef 100), raw 200; effects 250; recipe 200;
    # infrastructure 150
    assert distribute(outer, 1000) == {
        "did:cam": 100,
        "did:chef": 300,
        "did:fx": 250,
        "did:node": 150,
        "did:raw": 200,
    }


def test_remainders_are_deterministic():
    work = Work(
        "w",
        Split({"a": 3333, "b": 3333, "c": 3334}),
        {"a": ["did:z"], "b": ["did:y"], "c": ["did:x"]},
    )
    # 10 * 0.3333 = 3.333 (a, b), 3.334 (c): floors 3 + 3 + 3, the one left unit to c
    assert distribute(work, 10) == {"did:x": 4, "did:y": 3, "did:z": 3}
    same = Work(
        "w",
        Split({"c": 3334, "b": 3333, "a": 3333}),
        {"c": ["did:x"], "b": ["did:y"], "a": ["did:z"]},
    )
    assert distribute(same, 10) == distribute(work, 10)
    # equal remainders: the unit goes to the role first in sort order (a)
    even = Work("e", Split({"a": 5000, "b": 5000}), {"a": ["did:2"], "b": ["did:1"]})
    assert distribute(even, 1) == {"did:2": 1}


def test_weighted_shares_and_a_payee_listed_twice():
    work = Work(
        "w",
        Split({"footage": 10000}),
        {"footage": [Weighted("did:a", 3), "did:b", "did:b"]},
    )
    assert distribute(work, 500) == {"did:a": 300, "did:b": 200}


def test_roles_nobody_fills_go_to_the_claimant():
    work = Work(
        "w",
        Split({"creator": 5000, "footage": 3000, "effects": 2000}),
        {"footage": ["did:cam"]},
        claimant="did:me",
    )
    assert distribute(work, 100) == {"did:cam": 30, "did:me": 70}


def test_without_a_claimant_the_payable_roles_share_everything():
    work = Work("w", roles={"footage": ["did:cam"], "recipe": ["did:chef"]})
    # footage 4000 and recipe 2000 basis points: 2/3 and 1/3 of 90
    assert distribute(work, 90) == {"did:cam": 60, "did:chef": 30}
    with pytest.raises(SplitError, match="no claimant and nobody"):
        distribute(Work("empty"), 5)


def test_shared_input_is_settled_once():
    base = Work("base", Split({"footage": 10000}), {"footage": ["did:cam"]})
    left = Work("left", Split({"footage": 10000}), {"footage": [base, "did:l"]})
    right = Work("right", Split({"footage": 10000}), {"footage": [base, "did:r"]})
    top = Work("top", Split({"footage": 10000}), {"footage": [left, right]})
    assert distribute(top, 1000) == {"did:cam": 500, "did:l": 250, "did:r": 250}


def test_cycles_and_absurd_depth_are_refused():
    a = Work("a", Split({"footage": 10000}))
    b = Work("b", Split({"footage": 10000}), {"footage": [a]})
    a.roles["footage"] = [b]
    with pytest.raises(SplitError, match="cycle: a -> b -> a"):
        distribute(a, 100)
    work = Work("leaf", Split({"footage": 10000}), {"footage": ["did:cam"]})
    for i in range(MAX_DEPTH + 1):
        work = Work(f"w{i}", Split({"footage": 10000}), {"footage": [work]})
    with pytest.raises(SplitError, match="deeper than"):
        distribute(work, 100)


def test_a_role_not_in_the_split_is_refused():
    with pytest.raises(SplitError, match="not in its split"):
        distribute(Work("w", Split({"footage": 10000}), {"fotage": ["did:a"]}), 1)


# -- deep and wide graphs -------------------------------------------------------------------
def test_deep_chain_of_fifty_derived_works():
    """Each work pays 90% to its input work (footage), 10% to its own maker (recipe); the
    expected payouts are computed link by link with fractions, independently of allocate."""
    split = Split({"footage": 9000, "recipe": 1000})
    work = Work("w0", Split({"footage": 10000}), {"footage": ["did:origin"]})
    for i in range(1, 50):
        work = Work(f"w{i}", split, {"footage": [work], "recipe": [f"did:maker{i}"]})
    pool = 10**15 + 7
    out = distribute(work, pool)
    assert sum(out.values()) == pool
    expected, amount = {}, pool
    for i in range(49, 0, -1):
        down, mine = Fraction(amount * 9, 10), Fraction(amount, 10)
        fd, fm = down.numerator // down.denominator, mine.numerator // mine.denominator
        if fd + fm < amount:  # one unit left: larger remainder, ties to "footage" (sorts first)
            if down - fd >= mine - fm:
                fd += 1
            else:
                fm += 1
        expected[f"did:maker{i}"] = fm
        amount = fd
    expected["did:origin"] = amount
    assert out == dict(sorted(expected.items()))
    assert out["did:maker49"] == pool // 10 + 1  # 100000000000000.7 rounds up
    assert amount > 5 * 10**12  # 0.9**49 of the pool reaches the origin


def test_wide_work_of_a_thousand_inputs():
    inputs = [f"did:cam{i:04d}" for i in range(1000)]
    work = Work(
        "wide",
        roles={
            "footage": inputs,
            "effects": ["did:fx"],
            "recipe": ["did:chef"],
            "infrastructure": ["did:node"],
        },
    )
    out = distribute(work, 1_000_003)
    assert sum(out.values()) == 1_000_003
    # roles: footage 400001.2, effects 250000.75, recipe 200000.6, infrastructure 150000.45;
    # the two units left after the floors go to the largest remainders (effects, recipe)
    assert (out["did:fx"], out["did:chef"], out["did:node"]) == (250001, 200001, 150000)
    footage = sum(out[i] for i in inputs)
    assert footage == 400001
    assert {out[i] for i in inputs} <= {400, 401}
    # the extra units go to the first payees in sort order
    extra = footage - 400 * 1000
    assert [out[i] for i in inputs[:extra]] == [401] * extra
    assert all(out[i] == 400 for i in inputs[extra:])


def test_wide_derived_inputs_recursing():
    leaves = [
        Work(f"in{i:04d}", Split({"footage": 10000}), {"footage": [f"did:c{i % 7}"]})
        for i in range(1000)
    ]
    top = Work("top", Split({"footage": 10000}), {"footage": leaves})
    out = distribute(top, 7000)
    assert sum(out.values()) == 7000
    # 1000 inputs over 7 payees: c0..c5 hold 143 inputs, c6 holds 142
    assert out == {f"did:c{k}": (1001 if k < 6 else 994) for k in range(7)}


# -- pools ----------------------------------------------------------------------------------
def test_pool_by_usage():
    a = Work("a", Split({"footage": 10000}), {"footage": ["did:a"]})
    b = Work("b", Split({"footage": 10000}), {"footage": ["did:b"]})
    out = distribute_pool(100, {"a": 2, "b": 1}, [a, b])
    assert out == {"did:a": 67, "did:b": 33}
    with pytest.raises(SplitError, match="no work graph"):
        distribute_pool(100, {"c": 1}, [a])
    with pytest.raises(SplitError, match="no usage"):
        distribute_pool(100, {}, [a])
    assert distribute_pool(0, {}, [a]) == {}


@st.composite
def _graphs(draw):
    """Random acyclic work graphs (works only point at works made before them)."""
    works: list[Work] = []
    payees = [f"did:p{i}" for i in range(draw(st.integers(1, 8)))]
    for i in range(draw(st.integers(1, 12))):
        roles = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, unique=True))
        points = draw(
            st.lists(st.integers(0, 10), min_size=len(roles), max_size=len(roles)).filter(
                lambda ps: sum(ps) > 0
            )
        )
        # scale to basis points summing to exactly 10000
        total = sum(points)
        bps = [p * 10000 // total for p in points]
        bps[0] += 10000 - sum(bps)
        split = Split(dict(zip(roles, bps, strict=True)))
        filled: dict[str, list] = {}
        for role in roles:
            choices = payees + [w for w in works]
            filled[role] = draw(st.lists(st.sampled_from(choices), max_size=4))
            if draw(st.booleans()) and filled[role]:
                filled[role][0] = Weighted(filled[role][0], draw(st.integers(0, 5)))
        claimant = draw(st.one_of(st.none(), st.sampled_from(payees)))
        works.append(Work(f"w{i}", split, filled, claimant=claimant))
    return works


@pytest.mark.slow
@FAST
@given(_graphs(), st.integers(0, 10**9), st.data())
def test_payouts_always_sum_to_the_pool(works, pool, data):
    usage = {w.id: data.draw(st.integers(0, 50)) for w in works}
    if not any(usage.values()):
        usage[works[-1].id] = 1
    try:
        out = distribute_pool(pool, usage, works)
    except SplitError as exc:
        assert "nobody" in str(exc)  # a work with neither claimant nor payees
        return
    assert sum(out.values()) == pool
    assert all(v > 0 for v in out.values())
    assert out == distribute_pool(pool, dict(reversed(usage.items())), list(reversed(works)))


# -- 9ten -----------------------------------------------------------------------------------
def test_ninety_ten_worked_example():
    """Alice pays 10.00 and listened to eleven artists; Bob pays 5.00 and listened to one;
    Carol pays 3.00 and listened to nobody."""
    alice = {f"art{k:02d}": 11 - k for k in range(11)}  # art00: 11 listens ... art10: 1
    alice["art09"] = 3  # ties art08 (3): art08 wins by id; art09 and art10 fall outside
    listens = {"alice": alice, "bob": {"art00": 4}, "carol": {}}
    pools = {"alice": 1000, "bob": 500, "carol": 300}
    out = ninety_ten(pools, listens, ["did:op2", "did:op1"])
    assert sum(out.values()) == 1800
    # operators: alice 100 + bob 50 + carol 300 (nobody listened) = 450, 225 each
    assert out["did:op1"] == 225 and out["did:op2"] == 225
    # alice's 900 over her top nine: listens 11,10,...,3 (sum 63)
    top = {f"art{k:02d}": 11 - k for k in range(9)}
    assert sum(top.values()) == 63
    expected = allocate(900, sorted(top.items()))
    assert expected["art00"] == 157  # 900 * 11 / 63 = 157.14
    assert out["art00"] == expected["art00"] + 450  # plus all of bob's 90%
    for artist in list(top)[1:]:
        assert out[artist] == expected[artist]
    assert "art09" not in out and "art10" not in out


@FAST
@given(
    st.dictionaries(
        st.text("ab", min_size=1, max_size=3),
        st.dictionaries(st.text("xyz", min_size=1, max_size=2), st.integers(0, 100)),
        max_size=6,
    ),
    st.lists(st.integers(0, 10**6), min_size=6, max_size=6),
)
def test_ninety_ten_sums_exactly(listens, amounts):
    pools = dict(zip(sorted(listens), amounts, strict=False))
    out = ninety_ten(pools, listens, ["did:op"])
    assert sum(out.values()) == sum(pools.values())
    assert all(v > 0 for v in out.values())


def test_ninety_ten_needs_operators():
    with pytest.raises(SplitError, match="operator"):
        ninety_ten({"l": 10}, {"l": {"a": 1}}, [])
