"""Per-asset Spread coefficients are computed once per universe (universe_memo), and
again when an input is replaced or edited in place."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from rebalopt.costs import Spread
from rebalopt.state import PortfolioState


def _state(n: int = 5, cash: float = 1e4) -> PortfolioState:
    return PortfolioState.from_arrays([f"T{i}" for i in range(n)], np.arange(n, dtype=float),
                                      cash, np.linspace(10.0, 50.0, n))


def test_computed_once_per_universe_and_recomputed_when_an_input_changes(monkeypatch):
    calls = []
    real = Spread._half_spreads

    def counting(self, state):
        calls.append(state)
        return real(self, state)

    monkeypatch.setattr(Spread, "_half_spreads", counting)
    state = _state()
    bps = pd.Series({"T0": 1.0, "T1": 2.0, "T2": 3.0, "T3": 4.0}, dtype=float)
    spread = Spread(bps, default_bps=10.0)
    first = spread.half_spreads(state)
    np.testing.assert_allclose(first, [1e-4, 2e-4, 3e-4, 4e-4, 1e-3], rtol=1e-15)  # by hand
    trades = np.array([1.0, -2.0, 0.0, 3.0, -1.0])
    cost = spread.evaluate(trades, state)
    spread.terms(state)
    assert len(calls) == 1  # three reads, one alignment
    np.testing.assert_allclose(cost, np.abs(trades) * state.prices * first)
    with pytest.raises(ValueError):
        first[0] = 1.0  # shared: read-only

    spread.half_spread_bps = bps * 2  # a new Series: recomputed
    np.testing.assert_allclose(spread.half_spreads(state), [2e-4, 4e-4, 6e-4, 8e-4, 1e-3],
                               rtol=1e-15)  # the default (T4) unchanged
    spread.default_bps = 0.0
    assert spread.half_spreads(state)[4] == 0.0
    other = Spread(bps, default_bps=10.0)  # another model on the same state
    np.testing.assert_array_equal(other.half_spreads(state), first)
    # another state of the same universe (other cash and holdings): not recomputed
    np.testing.assert_allclose(spread.half_spreads(_state(cash=5e3)), [2e-4, 4e-4, 6e-4,
                               8e-4, 0.0], rtol=1e-15)
    assert len(calls) == 4
    # the same Series edited in place between states: read again
    series = spread.half_spread_bps
    series.iloc[0] = 7.0
    np.testing.assert_allclose(spread.half_spreads(_state(cash=6e3)), [7e-4, 4e-4, 6e-4,
                               8e-4, 0.0], rtol=1e-15)
    assert len(calls) == 5
    # another universe: recomputed (T4 missing from it is not asked for)
    small = PortfolioState.from_arrays(["T1", "T0"], np.ones(2), 1e3, np.array([5.0, 6.0]))
    np.testing.assert_allclose(spread.half_spreads(small), [4e-4, 7e-4], rtol=1e-15)
    assert len(calls) == 6


def test_a_mapping_edited_in_place_is_read_again():
    state = _state()
    bps = {f"T{i}": 1.0 for i in range(5)}
    spread = Spread(bps)
    assert spread.half_spreads(state)[2] == pytest.approx(1e-4, rel=1e-15)
    bps["T2"] = 9.0
    assert spread.half_spreads(_state(cash=2e4))[2] == pytest.approx(9e-4, rel=1e-15)
    bps["T2"] = float("nan")  # an edit to NaN is an error naming the asset, never stale
    with pytest.raises(Exception, match="T2"):
        spread.half_spreads(_state(cash=3e4))


def test_the_cache_is_not_pickled():
    state = _state()
    owner = Spread(1.0)
    state.memo(owner, "ones", (), lambda: np.ones(5))  # a per-state value
    assert "_memo" in vars(state)
    back = pickle.loads(pickle.dumps(state))
    assert "_memo" not in vars(back)
    np.testing.assert_array_equal(back.prices, state.prices)


def test_the_universe_cache_is_not_pickled_with_the_model():
    spread = Spread(pd.Series({f"T{i}": 2.0 for i in range(5)}))
    first = spread.half_spreads(_state())
    assert "_universe_memo" in vars(spread)
    back = pickle.loads(pickle.dumps(spread))
    assert "_universe_memo" not in vars(back)
    np.testing.assert_array_equal(back.half_spreads(_state()), first)
