"""Integer-stage test books shared by the round-stage tests (a plain module, not tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel


def lot_book(seed: int, n: int, lot_holdings: bool = False):
    """``n`` assets, 100-share lots (a few worth many median lots), odd-lot holdings
    bought below target, a 3-factor model, spread + impact + $1-minimum commission,
    long-only, cash account, a binding sector cap. ``lot_holdings``: the holdings in
    whole lots (else odd lots)."""
    rng = np.random.default_rng(seed)
    V = 5e6
    assets = [f"A{i:03d}" for i in range(n)]
    prices = rng.lognormal(4.0, 0.8, n)
    targets = rng.dirichlet(np.ones(n) * 2) * 0.98
    shares = targets * V * rng.uniform(0.3, 1.0, n) / prices
    hold = np.floor(shares / 100) * 100 if lot_holdings else np.floor(shares)
    cash = V - float(hold @ prices)
    groups = rng.choice([f"S{j}" for j in range(5)], n)
    state = PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(prices, index=assets),
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
