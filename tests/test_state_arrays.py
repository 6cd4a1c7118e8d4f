"""PortfolioState.from_arrays against the validated constructor (the oracle).

The same data, once as Series keyed by ticker through ``PortfolioState(...)`` and
once as arrays through ``from_arrays``, must give the same state attribute by
attribute, or the same error: type, asset and field.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt.errors import InputError
from rebalopt.state import PortfolioState

FIELDS = ("adv", "volatility", "lot_sizes", "multipliers")


def _outcome(build):
    try:
        return build()
    except InputError as exc:
        return (type(exc).__name__, exc.asset, exc.field)


def _same(a, b) -> None:
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert a == b
        return
    assert set(vars(a)) == set(vars(b))
    for name, ref in vars(b).items():
        got = getattr(a, name)
        if isinstance(ref, pd.Index):
            assert got.equals(ref) and got.name == ref.name and got.dtype == ref.dtype, name
        elif isinstance(ref, np.ndarray) and ref.dtype == object:
            assert got.dtype == object and list(got) == list(ref), name
        elif isinstance(ref, np.ndarray):
            np.testing.assert_array_equal(got, ref, err_msg=name)
        elif isinstance(ref, float) and math.isnan(ref):
            assert math.isnan(got), name
        elif isinstance(ref, dict):  # unpriced: NaN != NaN, compare their reprs
            assert repr(got) == repr(ref), name
        else:
            assert got == ref, name


def _both(assets, holdings, cash, prices, **opt):
    idx = pd.Index(assets, dtype=object, name="asset")
    ref = _outcome(lambda: PortfolioState(
        pd.Series(holdings, index=idx), cash, pd.Series(prices, index=idx),
        **{k: pd.Series(v, index=idx) for k, v in opt.items()}))
    fast = _outcome(lambda: PortfolioState.from_arrays(idx, holdings, cash, prices, **opt))
    return fast, ref


_special = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0])


@st.composite
def books(draw):
    n = draw(st.integers(1, 8))
    assets = [f"T{i}" for i in range(n)]
    prices = np.array(draw(st.lists(st.floats(1.0, 500.0), min_size=n, max_size=n)))
    holdings = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 3.0, -2.0, 100.0]),
                                      min_size=n, max_size=n)))
    opt = {}
    for f in FIELDS:
        if draw(st.booleans()):
            opt[f] = np.array(draw(st.lists(st.floats(0.5, 1e6), min_size=n, max_size=n)))
    if draw(st.booleans()):
        opt["groups"] = np.array(draw(st.lists(st.sampled_from(["x", "y", None, math.nan, 7]),
                                               min_size=n, max_size=n)), dtype=object)
    # spoil a few entries: invalid prices (held or not), non-finite holdings, bad optionals
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, n - 1))
        target = draw(st.sampled_from(["prices", "holdings", *opt]))
        if target == "groups":
            continue
        arr = {"prices": prices, "holdings": holdings}.get(target, opt.get(target))
        arr[i] = draw(_special)
    cash = draw(st.sampled_from([1e4, 0.0, -1e9, 50.0]))
    return assets, holdings, cash, prices, opt


@settings(max_examples=300, deadline=None)
@given(books())
def test_from_arrays_equals_the_constructor(book):
    assets, holdings, cash, prices, opt = book
    fast, ref = _both(assets, holdings, cash, prices, **opt)
    _same(fast, ref)


def test_unpriced_assets_leave_the_universe_as_in_the_constructor():
    fast, ref = _both(["A", "B", "C"], np.array([1.0, 0.0, 2.0]), 100.0,
                      np.array([10.0, math.nan, 5.0]), adv=np.array([1.0, -5.0, 2.0]))
    _same(fast, ref)  # B's invalid ADV is ignored: B is not in the universe
    assert list(fast.assets) == ["A", "C"] and math.isnan(fast.unpriced["B"])


@pytest.mark.parametrize("kw, asset, field", [
    ({"prices": np.array([10.0, "x", 5.0], dtype=object)}, "B", "price"),
    ({"holdings": np.array([1.0, 2.0, None], dtype=object)}, "C", "holdings"),
    ({"volatility": np.array([0.1, 0.2, -0.1])}, "C", "volatility"),
    ({"lot_sizes": np.array([1.0, math.nan, 1.0])}, "B", "lot_size"),
    ({"prices": np.array([10.0, 0.0, 5.0]), "holdings": np.array([0.0, 1.0, 0.0])}, "B",
     "price"),
])
def test_errors_name_asset_and_field(kw, asset, field):
    args = {"holdings": np.array([1.0, 2.0, 3.0]), "prices": np.array([10.0, 20.0, 5.0])}
    args.update(kw)
    holdings, prices = args.pop("holdings"), args.pop("prices")
    with pytest.raises(InputError) as info:
        PortfolioState.from_arrays(["A", "B", "C"], holdings, 1e3, prices, **args)
    assert (info.value.asset, info.value.field) == (asset, field)


def test_shape_duplicates_and_reuse_of_the_index():
    with pytest.raises(InputError, match="does not match 3 assets") as info:
        PortfolioState.from_arrays(["A", "B", "C"], None, 1e3, np.ones(2))
    assert info.value.field == "price"
    with pytest.raises(InputError) as info:
        PortfolioState.from_arrays(["A", "B", "A"], None, 1e3, np.ones(3))
    assert (info.value.asset, info.value.field) == ("A", "asset")
    s = PortfolioState.from_arrays(["A", "B"], [1.0, 0.0], 10.0, [5.0, 6.0])
    again = PortfolioState.from_arrays(s.assets, s.holdings, 0.0, s.prices)
    assert again.assets is s.assets  # a known universe is not rebuilt
    assert again.equity == 5.0 and s.equity == 15.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["x", "y", None, math.nan, 7, "z"]), min_size=1, max_size=6),
       st.integers(0, 5), st.sampled_from(["w", None, 3]))
def test_group_labels_are_reused_only_while_the_callers_array_is_unchanged(labels, i, new):
    # oracle: the constructor's labels from the same values, every time
    n = len(labels)
    groups = np.array(labels, dtype=object)
    idx = pd.Index([f"T{k}" for k in range(n)], dtype=object, name="asset")

    def both():
        fast = PortfolioState.from_arrays(idx, np.ones(n), 10.0, np.ones(n), groups=groups)
        ref = PortfolioState(pd.Series(np.ones(n), index=idx), 10.0,
                             pd.Series(np.ones(n), index=idx),
                             groups=pd.Series(groups.copy(), index=idx))
        assert list(fast.groups) == list(ref.groups)
        assert not fast.groups.flags.writeable  # shared between states: read-only
        return fast

    a, b = both(), both()
    before = list(a.groups)
    if all(isinstance(v, str) or v is None for v in labels):  # comparable values
        assert b.groups is a.groups  # the same array: the conversion was skipped
    old = groups[i % n]
    groups[i % n] = new  # an edit in place is seen (both() checks the labels)
    c = both()
    if not (old is new or (type(old) is type(new) and old == new)):
        assert c.groups is not a.groups
    assert list(a.groups) == before  # an earlier state's labels never change


def test_tax_lots_as_in_the_constructor():
    frame = pd.DataFrame({"asset": ["AAA", "AAA", "BBB"], "shares": [60, 40, 10],
                          "basis": [10.0, 12.5, 99.0],
                          "acquired": ["2020-01-02", "2023-05-01", "2024-02-02"]})
    fast = PortfolioState.from_arrays(["AAA", "BBB"], [100.0, 10.0], 1e3, [11.0, 100.0],
                                      lots=frame)
    ref = PortfolioState({"AAA": 100, "BBB": 10}, 1e3, {"AAA": 11.0, "BBB": 100.0}, lots=frame)
    assert fast.lots.to_frame().equals(ref.lots.to_frame())
    with pytest.raises(InputError) as info:
        PortfolioState.from_arrays(["AAA", "BBB"], [90.0, 10.0], 1e3, [11.0, 100.0], lots=frame)
    assert (info.value.asset, info.value.field) == ("AAA", "lots")


_tickers = st.lists(st.sampled_from(["A", "B", "C", "D", "E", "1", "nan"]), max_size=6)


@settings(max_examples=200, deadline=None)
@given(universe=_tickers.filter(lambda x: len(set(x)) == len(x)), other=_tickers,
       dtype=st.sampled_from([object, "str", "int-like"]))
def test_same_assets_is_index_equals(universe, other, dtype):
    """``same_assets`` answers what pandas' ``Index.equals`` answers, for an index of any
    dtype against a universe's object index (the oracle)."""
    from rebalopt.state import same_assets

    assets = pd.Index(universe, dtype=object, name="asset")
    if dtype == "int-like":
        labels = [int(x) if x.isdigit() else x for x in other]
        index = pd.Index(labels, dtype=object)
    else:
        index = pd.Index(other, dtype=dtype)
    assert same_assets(index, assets) == index.equals(assets)
    assert same_assets(assets, assets)


def test_target_weights_of_a_string_indexed_series_as_the_full_path():
    """A Series on the universe's tickers (string dtype) takes the fast path; its answer
    equals the mapping path's, and bad entries still name the asset."""
    state = PortfolioState.from_arrays(["A", "B", "C"], [1.0, 2.0, 0.0], 100.0,
                                       [10.0, 20.0, 30.0])
    series = pd.Series([0.2, 0.3, 0.5], index=pd.Index(["A", "B", "C"], dtype="str"))
    fast = state.target_weights(series)
    assert fast.tobytes() == state.target_weights(dict(series)).tobytes()
    assert fast is not series.to_numpy()  # a copy: the caller's data is never aliased
    with pytest.raises(InputError) as err:
        state.target_weights(pd.Series([0.2, np.nan, 0.5], index=series.index))
    assert err.value.asset == "B"


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_align_of_a_labelled_series_equals_the_full_path(data):
    """A Series keyed by some tickers in another order (the backtest's targets) is
    aligned without pandas look-ups: bit for bit the full path's answer, or the same
    InputError (outside tickers, NaN, duplicates) -- the full path is the oracle."""
    universe = [f"T{i}" for i in range(8)]
    state = PortfolioState.from_arrays(universe, np.arange(8.0), 100.0, np.full(8, 10.0))
    keys = data.draw(st.lists(st.sampled_from(universe + ["X", "Y"]), max_size=10))
    vals = data.draw(st.lists(st.sampled_from([0.0, -0.0, 0.1, 0.25, 1e-9, np.nan]),
                              min_size=len(keys), max_size=len(keys)))
    dtype = data.draw(st.sampled_from([object, "str"]))
    series = pd.Series(np.array(vals, dtype=float), index=pd.Index(keys, dtype=dtype))

    def full():
        saved = state._align_labelled
        state._align_labelled = lambda v, d: None  # the full (pandas) path only
        try:
            return state.align(series, "target weight")
        finally:
            del state._align_labelled
            assert state._align_labelled.__func__ is saved.__func__

    try:
        want = full()
    except InputError as exc:
        with pytest.raises(InputError) as err:
            state.align(series, "target weight")
        assert str(err.value) == str(exc)
        return
    assert state.align(series, "target weight").tobytes() == want.tobytes()
