"""Hypothesis property tests: random feasible problems, solver-independent checks.

Feasibility by construction: the current book is long-only with cash >= 0 and
every bound is drawn above its current value, so ``z = 0`` is feasible. Every
hard constraint is then recomputed from the plan's *shares* (not from the
constraint objects) and must hold within 1e-7; the cash identity must hold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    LongOnly,
    ParticipationLimit,
    Restricted,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Diagonal, FactorModel

TOL = 1e-7
GROUPS = ["G1", "G2", "G3"]


@st.composite
def problems(draw):
    n = draw(st.integers(3, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    assets = [f"X{i}" for i in range(n)]
    prices = rng.uniform(5, 300, n)
    holdings = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 1_000, n))
    cash = float(draw(st.sampled_from([0.0, 100.0, 5_000.0, 50_000.0])))
    if holdings.sum() == 0 and cash == 0:
        cash = 1_000.0
    state = PortfolioState(
        pd.Series(holdings, index=assets), cash, pd.Series(prices, index=assets),
        adv=pd.Series(rng.uniform(1e3, 1e5, n), index=assets),
        volatility=pd.Series(rng.uniform(0.005, 0.04, n), index=assets),
        groups=pd.Series(rng.choice(GROUPS, n), index=assets),
    )
    raw = rng.dirichlet(np.ones(n)) * rng.uniform(0.8, 1.0)
    raw[rng.random(n) < 0.2] = 0.0
    targets = pd.Series(raw, index=assets)

    costs = []
    if draw(st.booleans()):
        costs.append(Spread(float(rng.uniform(0, 30))))
    if draw(st.booleans()):
        costs.append(MarketImpact(coef=float(rng.uniform(0.1, 2.0))))
    if draw(st.booleans()):
        costs.append(Commission(bps=float(rng.uniform(0, 5))))

    w0 = state.weights
    cons: list = [LongOnly(), CashFloor(0.0)]
    spec: dict = {}
    if draw(st.booleans()):
        spec["turnover"] = float(rng.uniform(0, 0.3))
        cons.append(TurnoverLimit(spec["turnover"]))
    if draw(st.booleans()):
        spec["upper"] = float(max(w0.max(), 1.0 / n) + rng.uniform(0, 0.2))
        cons.append(WeightBounds(upper=spec["upper"]))
    if draw(st.booleans()):
        gw = pd.Series(w0).groupby(state.groups).sum()
        spec["groups"] = {g: float(gw.get(g, 0.0) + rng.uniform(0, 0.3)) for g in GROUPS
                          if g in set(state.groups)}
        cons.append(GroupBounds(upper=spec["groups"]))
    if draw(st.booleans()):
        spec["participation"] = float(rng.uniform(0.01, 0.5))
        cons.append(ParticipationLimit(spec["participation"]))
    if draw(st.booleans()):
        spec["no_trade"] = [assets[0]]
        spec["no_buy"] = [assets[1]]
        cons.append(Restricted(no_trade=spec["no_trade"], no_buy=spec["no_buy"]))

    if draw(st.booleans()):
        k = 2
        B = pd.DataFrame(rng.normal(1, 0.5, (n, k)), index=assets, columns=["a", "b"])
        F = pd.DataFrame(np.diag(rng.uniform(0.01, 0.05, k)), index=B.columns,
                         columns=B.columns)
        risk = FactorModel(B, F, pd.Series(rng.uniform(0.01, 0.1, n), index=assets))
    else:
        risk = Diagonal(pd.Series(rng.uniform(0.01, 0.2, n), index=assets))
    gamma = float(10 ** rng.uniform(0, 4))
    reb = OptimalRebalancer(risk=risk, costs=costs, constraints=cons, risk_aversion=gamma)
    return state, targets, reb, spec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_random_feasible_problems_hold_every_hard_constraint(problem):
    state, targets, reb, spec = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = reb.plan(state, targets)
    V = state.equity
    tv = plan.trades * state.prices  # currency
    w = (state.holdings + plan.trades) * state.prices / V
    assert np.isfinite(plan.trades).all() and np.isfinite(plan.post_cash)
    assert all(np.isfinite(v).all() for v in plan.costs.values())
    # cash identity, computed from shares and the cost models
    total_cost = sum(m.evaluate(plan.trades, state).sum() for m in reb.costs)
    cash = state.cash - tv.sum() - total_cost
    assert abs(plan.post_cash - cash) <= 1e-9 * V
    assert cash / V >= -TOL                                        # CashFloor(0)
    assert w.min() >= -TOL                                         # LongOnly
    if "turnover" in spec:
        assert 0.5 * np.abs(tv).sum() / V <= spec["turnover"] + TOL
    if "upper" in spec:
        assert w.max() <= spec["upper"] + TOL
    if "groups" in spec:
        gw = pd.Series(w).groupby(state.groups).sum()
        for g, cap in spec["groups"].items():
            assert gw[g] <= cap + TOL
    if "participation" in spec:
        limit = spec["participation"] * state.adv
        assert (np.abs(plan.trades) <= limit + TOL * V / state.prices).all()
    if "no_trade" in spec:
        assert plan.trades[0] == 0.0 and plan.trades[1] <= 0.0
    # the optimum is no worse than not trading (z = 0 is feasible by construction)
    sol_obj = plan.info["objective"]
    assert sol_obj <= reb.objective(np.zeros(state.n), state, targets) + 1e-10
    # every hard constraint's own check agrees
    assert all(s >= -TOL for s in plan.info["slacks"].values())
