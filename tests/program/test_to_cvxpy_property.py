"""Property (hypothesis): the to_cvxpy() program and the direct Clarabel program reach
the same optimum on random problems (1e-6 relative)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt import PortfolioState
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    Leverage,
    LongOnly,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.costs import BorrowCost, Commission, MarketImpact, Spread
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel


def build(seed: int, n: int, long_only: bool):
    rng = np.random.default_rng(seed)
    assets = [f"R{i:02d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 200, n), index=assets)
    hold = pd.Series(np.round(rng.uniform(0 if long_only else -300, 500, n)), index=assets)
    state = PortfolioState(hold, 30_000.0 + float(np.abs(hold * prices).sum()), prices,
                           adv=pd.Series(rng.uniform(1e4, 1e5, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets),
                           groups=pd.Series(rng.choice(["a", "b", "c"], n), index=assets))
    w = rng.dirichlet(np.ones(n)) * 0.95
    if not long_only:
        w[: n // 3] *= -0.5
    targets = pd.Series(w, index=assets)
    k = 2
    B = pd.DataFrame(rng.normal(1, 0.3, (n, k)), index=assets, columns=["f0", "f1"])
    F = pd.DataFrame(np.diag(rng.uniform(0.01, 0.04, k)), index=B.columns, columns=B.columns)
    risk = FactorModel(B, F, pd.Series(rng.uniform(0.01, 0.05, n), index=assets))
    return state, targets, risk


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(4, 25), long_only=st.booleans(),
       impact=st.sampled_from([None, 1.5, 2.0]), turnover=st.booleans())
def test_to_cvxpy_and_direct_reach_the_same_optimum(seed, n, long_only, impact, turnover):
    state, targets, risk = build(seed, n, long_only)
    costs = [Spread(3.0), Commission(bps=1.0), BorrowCost(0.05)]
    if impact:
        costs.append(MarketImpact(coef=0.7, exponent=impact))
    cons = [CashFloor(-0.5), GroupBounds(upper=0.7), WeightBounds(upper=0.5)]
    # feasible by construction: the gross cap sits above the current book's gross
    gross = float(np.abs(state.weights).sum())
    cons.append(LongOnly() if long_only else Leverage(gross=max(2.0, gross + 0.1)))
    if turnover:
        cons.append(TurnoverLimit(0.3))
    reb = OptimalRebalancer(risk=risk, costs=costs, constraints=cons)
    sol = reb.solve(state, targets)
    assert reb._direct is not None and reb._compiled is None
    prob, v = reb.to_cvxpy(state, targets)
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    assert prob.value / 1e4 == pytest.approx(sol.objective, rel=1e-6, abs=1e-10)
