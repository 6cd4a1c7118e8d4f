"""The neighbourhood search on a large book (:mod:`rebalopt.rebalance._integer_lns`).

On books of more than ``GUIDED_ASSETS`` assets the neighbourhoods take only the
multi-lot single moves. Oracle: every single-asset change of the round plan by the
lot counts that pass prices (1, 2, 4 or 8 lots either way) or to no trade, priced on the full objective
(:meth:`IntegerRebalancer.objective`) and checked against every hard constraint
(:meth:`IntegerRebalancer.check`): none is feasible and lower by more than the
search's smallest saving.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.rebalance._integer_start import GUIDED_ASSETS
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel


def _book(seed: int, n: int):
    """``n`` assets in 100-share lots, holdings below target, 3 factors, spread + 3/2
    impact + $1-minimum commission, long-only, cash account, a binding sector cap."""
    rng = np.random.default_rng(seed)
    V = 5e6
    assets = [f"A{i:03d}" for i in range(n)]
    prices = rng.lognormal(4.0, 0.8, n)
    targets = rng.dirichlet(np.ones(n) * 2) * 0.98
    hold = np.floor(targets * V * rng.uniform(0.3, 1.0, n) / prices / 100) * 100
    groups = rng.choice([f"S{j}" for j in range(5)], n)
    state = PortfolioState(pd.Series(hold, index=assets), V - float(hold @ prices),
                           pd.Series(prices, index=assets),
                           lot_sizes=pd.Series(100.0, index=assets),
                           groups=pd.Series(groups, index=assets),
                           adv=pd.Series(rng.uniform(5e4, 5e5, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    B = pd.DataFrame(rng.normal(0, 0.3, (n, 3)), index=assets)
    B[0] += 1.0
    F = pd.DataFrame(np.diag([0.03, 0.01, 0.005]), index=B.columns, columns=B.columns)
    risk = FactorModel(B, F, pd.Series(rng.uniform(0.15, 0.35, n), index=assets))
    cap = float(pd.Series(targets).groupby(groups).sum().max()) * 0.97
    relax = OptimalRebalancer(
        risk=risk, costs=[Spread(3.0), MarketImpact(coef=1.0),
                          Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)], risk_aversion=100.0)
    return state, pd.Series(targets, index=assets), relax


def test_a_large_books_plan_has_no_improving_multi_lot_single_move():
    state, targets, relax = _book(3, GUIDED_ASSETS + 20)
    reb = IntegerRebalancer(relax)
    sol = reb.solve(state, targets)
    assert sol.work.get("lns_sets", 0) == 0  # no pair or triple neighbourhoods on this book
    assert "big_lot_moves" not in sol.work
    w_t = state.target_weights(targets)
    f = reb.objective(sol.shares, state, w_t)
    lots = sol.lots
    tried = improving = 0
    for i in range(state.n):
        for change in (-8, -4, -2, -1, 1, 2, 4, 8, None):
            x = sol.shares.copy()
            x[i] = 0.0 if change is None else x[i] + change * lots[i]
            if np.array_equal(x, sol.shares):
                continue
            if any(not s.satisfied for c, s in zip(reb.constraints(state),
                                                  reb.check(x, state, w_t).values())
                   if not c.soft):
                continue
            tried += 1
            improving += reb.objective(x, state, w_t) < f - reb.min_saving / state.equity
    assert tried > 5 * state.n and improving == 0
