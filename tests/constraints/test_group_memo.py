"""GroupBounds' group matrices are compiled once per universe (tickers and group labels:
``universe_memo``) and looked up once per state (PortfolioState.memo)."""

from __future__ import annotations

import pickle

import numpy as np

from rebalopt.constraints import GroupBounds
from rebalopt.constraints._base import Point
from rebalopt.state import PortfolioState


def _state() -> PortfolioState:
    return PortfolioState.from_arrays(["A", "B", "C", "D"], np.array([10.0, 0.0, 5.0, 2.0]),
                                      100.0, np.array([10.0, 20.0, 30.0, 40.0]),
                                      groups=["x", "y", "x", "y"])


def test_compiled_once_per_universe_and_again_when_a_bound_changes(monkeypatch):
    calls = []
    real = GroupBounds._layout_of

    def counting(self, state):
        calls.append(state)
        return real(self, state)

    monkeypatch.setattr(GroupBounds, "_layout_of", counting)
    state = _state()
    w_t = np.full(4, 0.25)
    g = GroupBounds(upper=0.4, lower=0.1)
    point = Point.from_trades(state, w_t, np.zeros(4), 0.0)
    lhs, rhs = g.evaluate(point)
    g.search_kernel(state, w_t)
    g.evaluate(point)
    assert len(calls) == 1
    w = state.weights  # by hand: x = A + C, y = B + D
    np.testing.assert_allclose(lhs, [w[0] + w[2], w[1] + w[3], -(w[0] + w[2]),
                                     -(w[1] + w[3])])
    np.testing.assert_allclose(rhs, [0.4, 0.4, -0.1, -0.1])

    g.upper = 0.3  # a new bound: recompiled
    np.testing.assert_allclose(g.evaluate(point)[1], [0.3, 0.3, -0.1, -0.1])
    assert len(calls) == 2
    other = PortfolioState.from_arrays(["A", "B", "C", "D"], np.array([0.0, 3.0, 1.0, 7.0]),
                                       50.0, np.array([11.0, 21.0, 31.0, 41.0]),
                                       groups=["x", "y", "x", "y"])
    lhs, rhs = g.evaluate(Point.from_trades(other, w_t, np.zeros(4), 0.0))  # same universe
    assert len(calls) == 2
    w = other.weights
    np.testing.assert_allclose(lhs, [w[0] + w[2], w[1] + w[3], -(w[0] + w[2]),
                                     -(w[1] + w[3])])
    moved = PortfolioState.from_arrays(["A", "B", "C", "D"], other.holdings, 50.0,
                                       other.prices, groups=["y", "y", "x", "x"])
    lhs, rhs = g.evaluate(Point.from_trades(moved, w_t, np.zeros(4), 0.0))  # new labels
    assert len(calls) == 3
    w = moved.weights  # by hand: x = C + D, y = A + B
    np.testing.assert_allclose(lhs, [w[2] + w[3], w[0] + w[1], -(w[2] + w[3]),
                                     -(w[0] + w[1])])
    renamed = PortfolioState.from_arrays(["A", "B", "E", "D"], other.holdings, 50.0,
                                         other.prices, groups=["y", "y", "x", "x"])
    g.evaluate(Point.from_trades(renamed, w_t, np.zeros(4), 0.0))  # new tickers
    assert len(calls) == 4

    rel = GroupBounds(upper=0.05, relative=True)  # target-relative: rhs follows the target
    np.testing.assert_allclose(rel.evaluate(point)[1], [0.55, 0.55])
    other = Point.from_trades(state, np.array([0.4, 0.1, 0.3, 0.2]), np.zeros(4), 0.0)
    np.testing.assert_allclose(rel.evaluate(other)[1], [0.75, 0.35])


def test_a_mapping_edited_in_place_is_read_again_on_the_next_state():
    """A mapping (or Series) bound may be edited between rebalances: it is trusted for
    one state only, never across states."""
    g = GroupBounds(upper={"x": 0.4}, lower=0.1)
    w_t = np.full(4, 0.25)
    np.testing.assert_allclose(g.evaluate(Point.from_trades(_state(), w_t, np.zeros(4),
                                                            0.0))[1], [0.4, -0.1, -0.1])
    g.upper["x"] = 0.3  # type: ignore[index]
    np.testing.assert_allclose(g.evaluate(Point.from_trades(_state(), w_t, np.zeros(4),
                                                            0.0))[1], [0.3, -0.1, -0.1])


def test_labels_and_search_kernel_come_from_the_compiled_rows():
    state = _state()
    w_t = np.full(4, 0.25)
    g = GroupBounds(upper={"x": 0.4}, lower=0.1)
    assert g.row_labels(state, w_t) == ["x <= upper", "x >= lower", "y >= lower"]
    assert g.search_kernel(state, w_t)[0] is g.search_kernel(state, w_t)[0]  # absolute: kept
    rel = GroupBounds(upper=0.05, relative=True)
    k1 = rel.search_kernel(state, w_t)[0]
    k2 = rel.search_kernel(state, np.array([0.4, 0.1, 0.3, 0.2]))[0]
    np.testing.assert_allclose(k1.R, [0.55, 0.55])
    np.testing.assert_allclose(k2.R, [0.75, 0.35])  # follows the target


def test_universe_cache_is_not_pickled_and_leaves_equality_alone():
    state = _state()
    g = GroupBounds(upper=0.4, lower=0.1)
    fresh = GroupBounds(upper=0.4, lower=0.1)
    g.evaluate(Point.from_trades(state, np.full(4, 0.25), np.zeros(4), 0.0))
    assert "_universe_memo" in g.__dict__
    assert g == fresh and repr(g) == repr(fresh)
    copy = pickle.loads(pickle.dumps(g))
    assert "_universe_memo" not in copy.__dict__
    assert pickle.dumps(g) == pickle.dumps(fresh)  # a batch's digest does not change
