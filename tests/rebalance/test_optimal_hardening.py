"""OptimalRebalancer hardening: target leverage, the cash floor with the commission
actually charged, infeasibility diagnosis that falls back, conflict amounts that
really restore feasibility, the per-solve time limit, negative targets with LongOnly.

Oracles: hand-computed sums and cash (commission minimums counted by hand), the
program re-solved with a constraint relaxed by the reported amount, solver
settings read back from the solver, and the post-trade book recomputed from shares.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rebalopt import Commission, InputError, PortfolioState, Spread
from rebalopt.constraints import CashFloor, Leverage, LongOnly, ShortLimit, TurnoverLimit
from rebalopt.rebalance.optimal import OptimalRebalancer

PRICES = {"A": 10.0, "B": 20.0, "C": 40.0}


def cash_account(cash: float = 10_000.0, holdings=None) -> PortfolioState:
    return PortfolioState(holdings or {}, cash, PRICES)


# ------------------------------------------------------------ target leverage
@pytest.mark.parametrize(("constraints", "cap"), [
    ([LongOnly(), CashFloor()], 1.0),
    ([LongOnly(), CashFloor(-0.2)], 1.2),
    ([LongOnly(), CashFloor(0.05)], 1.0),  # a buffer: traded towards, not an error
    ([LongOnly(), CashFloor(-0.3), CashFloor(0.0)], 1.0),  # the tightest floor
    ([LongOnly(), CashFloor(), Leverage(gross=0.8)], 1.0),  # Leverage is traded towards
])
def test_targets_above_the_cash_account_leverage_are_an_input_error(constraints, cap):
    reb = OptimalRebalancer(constraints=constraints)
    assert reb.allowed_leverage() == cap
    over = {"A": cap / 3 + 0.01, "B": cap / 3, "C": cap / 3}  # sum = cap + 0.01
    with pytest.raises(InputError, match="leverage") as info:
        reb.plan(cash_account(), over)
    assert info.value.field == "target weight" and f"{cap + 0.01:.6g}" in str(info.value)
    at = {"A": cap / 3, "B": cap / 3, "C": cap / 3}
    plan = reb.plan(cash_account(), at)  # exactly at the cap: planned
    w = (plan.state.holdings + plan.trades) * plan.state.prices / plan.state.equity
    assert w.sum() <= cap + 1e-7


@pytest.mark.parametrize("constraints", [
    [CashFloor(), ShortLimit(total=0.5)],  # not long-only: a long-short book
    [LongOnly(), CashFloor(soft=True)],  # the floor is soft
    [LongOnly()],  # no cash floor
])
def test_no_target_leverage_check_without_a_hard_cash_account(constraints):
    reb = OptimalRebalancer(constraints=constraints)
    assert reb.allowed_leverage() is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = reb.plan(cash_account(), {"A": 0.6, "B": 0.6})
    assert np.isfinite(plan.trades).all()
