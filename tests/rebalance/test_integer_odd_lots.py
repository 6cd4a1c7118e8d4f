"""Closing a position to exactly zero is always a candidate, whatever the lot size.

Issue: 130 shares held with 100-share lots and a target of 0 left 30 shares in both
integer modes. Checked from the user's side (the plan's trades, by hand) in both
modes, with the LotSize check itself, and that a close is never used to trade an
odd amount any other way.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from rebalopt import PortfolioState, Spread
from rebalopt.constraints import CashFloor, LongOnly, LotSize, Point
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer

MODES = ["round"] + (["exact"] if "SCIP" in cp.installed_solvers() else [])


def book():
    state = PortfolioState({"AAA": 130.0, "BBB": 0.0, "CCC": 250.0}, 5_000.0,
                           {"AAA": 40.0, "BBB": 25.0, "CCC": 10.0},
                           lot_sizes={"AAA": 100, "BBB": 100, "CCC": 100})
    return state, {"BBB": 0.55, "CCC": 0.25}


@pytest.mark.parametrize("mode", MODES)
def test_an_odd_lot_position_with_a_zero_target_is_sold_in_full(mode):
    state, targets = book()
    relax = OptimalRebalancer(costs=[Spread(5.0)], constraints=[LongOnly(), CashFloor()])
    plan = IntegerRebalancer(relax, mode=mode).plan(state, targets)
    x = plan.trades
    assert x[0] == -130.0                      # closed exactly, not 100 of 130
    assert (state.holdings + x)[0] == 0.0
    # every other trade is a whole number of lots
    assert np.array_equal(x[1:] / 100, np.round(x[1:] / 100))
    assert state.cash - float(x @ state.prices) - plan.total_cost >= 0.0


def test_lot_size_check_accepts_a_close_and_nothing_else_odd():
    state, _ = book()
    V = state.equity

    def slack(shares):
        z = np.array(shares, float) * state.prices / V
        return LotSize().check(Point.from_trades(state, np.zeros(3), z, 0.0))

    assert slack([-130, 0, 0]).satisfied      # close: 130 of 130
    assert slack([-100, 0, -200]).satisfied   # whole lots
    assert not slack([-30, 0, 0]).satisfied   # the odd part alone is not a close
    assert slack([-130, 0, -250]).satisfied  # both closes are whole orders
    assert not slack([0, 0, -130]).satisfied  # 130 of 250 is neither
