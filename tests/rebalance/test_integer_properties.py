"""Hypothesis properties of the integer stage's round mode on random books.

Every plan, checked by hand from shares and prices: trades are whole lots (or close
a position to exactly zero), no
short in a long-only book, cash never negative after the full cost (commission
minimum and per-order fee included), group caps, turnover, minimum trade value and
trade count hold; the relaxation's objective never exceeds the plan's; the
reported objective is the models' cost plus the risk term, recomputed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt import Commission, InfeasibleError, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance


@st.composite
def problems(draw):
    n = draw(st.integers(3, 12))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    assets = [f"P{i:02d}" for i in range(n)]
    prices = rng.uniform(5, 500, n)
    lot = draw(st.sampled_from([1.0, 10.0, 100.0]))
    V = draw(st.sampled_from([5e4, 2e5, 1e6]))
    targets = rng.dirichlet(np.ones(n)) * draw(st.floats(0.8, 1.0))
    hold = np.floor(targets * V * np.exp(rng.normal(0, 0.4, n)) / prices)
    cash = max(V - float(hold @ prices), 0.01 * V)
    groups = rng.choice(["A", "B", "C"], n)
    state = PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(prices, index=assets),
                           lot_sizes=pd.Series(lot, index=assets),
                           groups=pd.Series(groups, index=assets),
                           adv=pd.Series(rng.uniform(1e4, 1e6, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    vol = rng.uniform(0.1, 0.4, n)
    sigma = pd.DataFrame(np.outer(vol, vol) * (0.3 + 0.7 * np.eye(n)), index=assets,
                         columns=assets)
    cap = draw(st.floats(0.45, 0.9))
    turnover = draw(st.one_of(st.none(), st.floats(0.05, 0.5)))
    minimum = draw(st.sampled_from([0.0, 1.0, 20.0]))
    per_order = draw(st.sampled_from([0.0, 2.0]))
    min_value = draw(st.one_of(st.none(), st.sampled_from([100.0, 1_000.0])))
    max_trades = draw(st.one_of(st.none(), st.integers(1, n)))
    return (state, pd.Series(targets, index=assets), sigma, cap, turnover, minimum, per_order,
            min_value, max_trades)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_round_plan_meets_every_hard_constraint(p):
    state, targets, sigma, cap, turnover, minimum, per_order, min_value, max_trades = p
    costs = [Spread(5.0), MarketImpact(coef=0.5),
             Commission(per_share=0.005, minimum=minimum, per_order=per_order)]
    cons = [LongOnly(), CashFloor(), GroupBounds(upper=cap)]
    if turnover is not None:
        cons.append(TurnoverLimit(turnover))
    relax = OptimalRebalancer(risk=Covariance(sigma), costs=costs, constraints=cons)
    reb = IntegerRebalancer(relax, min_trade_value=min_value, max_trades=max_trades,
                            time_limit=5.0)
    try:
        plan = reb.plan(state, targets)
    except InfeasibleError as exc:
        # only acceptable with a constraint named, never silently
        assert exc.conflicts
        return
    x, px, V = plan.trades, state.prices, state.equity
    k = x / state.lot_sizes
    closes = np.abs(x + state.holdings) < 1e-9  # closing an odd lot to zero is allowed
    assert (np.isclose(k, np.round(k), atol=1e-9) | closes).all()
    post = state.holdings + x
    assert (post >= -1e-9).all()
    charged = sum(m.evaluate(x, state).sum() for m in costs)
    assert plan.total_cost == np.float64(charged) or abs(plan.total_cost - charged) < 1e-9
    cash = state.cash - float(x @ px) - charged
    assert cash >= -1e-6
    w = post * px / V
    for g in set(state.groups):
        assert w[state.groups == g].sum() <= cap + 1e-7
    if turnover is not None:
        assert 0.5 * np.abs(x * px).sum() / V <= turnover + 1e-7
    traded = x != 0
    if min_value is not None:
        assert (np.abs(x[traded]) * px[traded] >= min_value - 1e-6).all()
    if max_trades is not None:
        assert traded.sum() <= max_trades
    d = w - state.target_weights(targets)
    S = sigma.to_numpy()
    f = charged / V + 0.5 * relax.risk_aversion * relax.horizon * d @ S @ d
    assert abs(plan.info["integer_objective"] - f) <= 1e-9 * max(1.0, abs(f)) + 1e-13
    assert plan.info["relaxation_objective"] <= f + 1e-9
