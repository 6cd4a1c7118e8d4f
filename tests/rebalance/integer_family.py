"""A brute-force family for the integer stage: small books solved by enumeration.

Each seed draws a cash account of 3-6 assets with lots of 1 or 100 shares (existing
odd-lot holdings when lots are 100), two sectors under a cap, spread + 3/2-power
market impact + a commission with a per-order minimum (and sometimes a per-order
fee), and, depending on the seed, ``MinTradeValue``, ``MaxTrades`` and
``TurnoverLimit``. :func:`oracle` enumerates every integer plan in a box that
provably holds the optimum and returns the best one, with the objective and every
hard constraint computed here by hand (independent of rebalopt's search, kernels
and solvers); the caller can confirm the winner with the rebalancer's own numeric
``check`` and ``objective``.

Why the box holds the optimum (no alpha, every cost >= 0):

* long only: an asset sells at most its holding (``q >= -floor(h / lot)``, or the
  whole odd-lot holding when closing is allowed);
* every asset is in a capped sector, so its post-trade weight is at most the cap;
* a turnover cap ``tau`` bounds each trade: ``|z_i| <= 2 tau``;
* with ``f_inc`` the objective of any feasible plan (the caller passes the one it
  has), the optimum has ``gamma T / 2 d' Sigma d <= f_inc``, and
  ``min {d' Sigma d : d_i fixed} = d_i^2 / (Sigma^-1)_ii``, so
  ``|d_i| <= sqrt(2 f_inc (Sigma^-1)_ii / (gamma T))``.

Used by ``tests/rebalance/test_integer_bruteforce.py`` (the fast family) and
``benchmarks/bench_integer_family.py`` (larger runs and the distribution of gaps).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance

GAMMA, HORIZON = 100.0, 1.0 / 12.0
MAX_POINTS = 400_000


@dataclass
class Case:
    """One problem of the family and the knobs it was drawn with."""

    seed: int
    state: PortfolioState
    targets: pd.Series
    sigma: pd.DataFrame
    costs: list
    cap: float
    turnover: float | None
    min_value: float | None
    max_trades: int | None
    per_order: float
    close_odd_lots: bool = True
    spec: dict = field(default_factory=dict)

    def rebalancer(self, mode: str = "round", **kw) -> IntegerRebalancer:
        cons = [LongOnly(), CashFloor(), GroupBounds(upper=self.cap)]
        if self.turnover is not None:
            cons.append(TurnoverLimit(self.turnover))
        relax = OptimalRebalancer(risk=Covariance(self.sigma), costs=self.costs,
                                  constraints=cons, risk_aversion=GAMMA, horizon=HORIZON)
        kw.setdefault("time_limit", 20.0)
        return IntegerRebalancer(relax, mode=mode, min_trade_value=self.min_value,
                                 max_trades=self.max_trades, **kw)


def case(seed: int) -> Case:
    """Draw problem ``seed`` of the family (deterministic)."""
    rng = np.random.default_rng(10_000 + seed)
    n = int(rng.integers(3, 7))
    assets = [f"B{i}" for i in range(n)]
    lot = 100.0 if seed % 2 == 0 else 1.0
    if lot == 100.0:
        prices = rng.uniform(8.0, 40.0, n)
    else:
        prices = rng.uniform(150.0, 900.0, n)
    lot_value = lot * prices
    # a book where one lot is 3-12% of equity: coarse lots, small enumerations
    V = float(np.median(lot_value) / rng.uniform(0.03, 0.12))
    targets = rng.dirichlet(np.ones(n) * 1.5) * rng.uniform(0.85, 0.99)
    hold_lots = np.floor(targets * V * np.exp(rng.normal(0, 0.5, n)) / lot_value)
    hold = hold_lots * lot
    if lot == 100.0:  # odd lots on some names (a past split, a dividend reinvestment)
        hold = hold + rng.choice([0.0, 0.0, 30.0, 70.0], n) * (hold_lots > 0)
    cash = max(V - float(hold @ prices), 0.02 * V)
    groups = np.array(["G1", "G2"])[rng.permutation(np.arange(n) % 2)]
    state = PortfolioState(pd.Series(hold, index=assets), cash,
                           pd.Series(prices, index=assets),
                           lot_sizes=pd.Series(lot, index=assets),
                           groups=pd.Series(groups, index=assets),
                           adv=pd.Series(rng.uniform(2e3, 5e4, n) * (100 / lot) ** 0.0,
                                         index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    A = rng.normal(0, 0.15, (n, n))
    sigma = pd.DataFrame(A @ A.T / n + np.diag(rng.uniform(0.01, 0.06, n)),
                         index=assets, columns=assets)
    share = pd.Series(targets, index=assets).groupby(groups).sum()
    # a cap that binds on the heavier sector about half the time
    cap = float(min(0.95, share.max() * rng.uniform(0.85, 1.15)))
    minimum = float(rng.choice([1.0, 5.0]))
    per_order = float(rng.choice([0.0, 0.0, 1.0]))
    costs = [Spread(float(rng.choice([2.0, 5.0, 10.0]))),
             MarketImpact(coef=float(rng.uniform(0.5, 2.0)), exponent=1.5),
             Commission(per_share=0.005, minimum=minimum, per_order=per_order)]
    kind = seed % 5
    turnover = float(rng.uniform(0.03, 0.15)) if kind in (1, 4) else None
    min_value = float(np.round(rng.uniform(0.5, 1.5) * np.median(lot_value), -1)) \
        if kind in (2, 4) else None
    max_trades = int(rng.integers(1, max(2, n - 1))) if kind in (3, 4) else None
    spec = {"n": n, "lot": lot, "V": V, "cap": cap, "turnover": turnover,
            "min_value": min_value, "max_trades": max_trades}
    return Case(seed, state, pd.Series(targets, index=assets), sigma, costs, cap, turnover,
                min_value, max_trades, per_order, spec=spec)


def _costs_by_hand(c: Case, X: np.ndarray) -> np.ndarray:
    """Charged cost in currency of each row of ``X`` (shares), from the models' own fields."""
    s = c.state
    px, adv, vol = s.prices, s.adv, s.volatility
    notional = np.abs(X) * px
    traded = X != 0
    total = np.zeros(X.shape[0])
    for m in c.costs:
        if isinstance(m, Spread):
            total += (notional * m.half_spread_bps * 1e-4).sum(axis=1)
        elif isinstance(m, MarketImpact):
            imp = m.coef * vol * (np.abs(X) / adv) ** (m.exponent - 1.0)
            total += (notional * imp).sum(axis=1)
        elif isinstance(m, Commission):
            lin = np.abs(X) * m.per_share + notional * m.bps * 1e-4
            total += np.where(traded, np.maximum(lin, m.minimum) + m.per_order, 0.0).sum(axis=1)
        else:  # pragma: no cover - the family draws only the three above
            raise TypeError(m)
    return total


def asset_values(c: Case, f_inc: float) -> list[np.ndarray]:
    """Per asset, every trade (shares) that the optimum may take (module docstring)."""
    s = c.state
    V, px, lot, h = s.equity, s.prices, s.lot_sizes, s.holdings
    w_t = s.target_weights(c.targets)
    S = c.sigma.loc[s.assets, s.assets].to_numpy()
    inv_diag = np.diag(np.linalg.inv(S))
    radius = np.sqrt(2.0 * max(f_inc, 0.0) * inv_diag / (GAMMA * HORIZON)) * (1 + 1e-9) + 1e-12
    out = []
    for i in range(s.n):
        w0 = h[i] * px[i] / V
        z_lo = max(-w0, w_t[i] - radius[i] - w0)
        z_hi = min(c.cap - w0, w_t[i] + radius[i] - w0)
        if c.turnover is not None:
            z_lo, z_hi = max(z_lo, -2 * c.turnover), min(z_hi, 2 * c.turnover)
        x_lo, x_hi = z_lo * V / px[i], z_hi * V / px[i]
        k = np.arange(np.ceil(x_lo / lot[i] - 1e-9), np.floor(x_hi / lot[i] + 1e-9) + 1)
        vals = set((k * lot[i]).tolist()) | {0.0}
        if c.close_odd_lots and h[i] > 0 and x_lo <= -h[i] + 1e-9:
            vals.add(-float(h[i]))
        out.append(np.array(sorted(vals)))
    return out


def oracle(c: Case, f_inc: float) -> tuple[float, np.ndarray, int]:
    """The best plan in the box: ``(objective, shares, plans enumerated)`` (by hand).

    Raises ``ValueError`` when the box holds more than ``MAX_POINTS`` plans.
    """
    s = c.state
    vals = asset_values(c, f_inc)
    size = int(np.prod([len(v) for v in vals]))
    if size > MAX_POINTS:
        raise ValueError(f"box of {size} plans")
    V, px = s.equity, s.prices
    X = np.array(list(itertools.product(*vals)), dtype=float)
    cost = _costs_by_hand(c, X)
    cash = s.cash - X @ px - cost
    W = (s.holdings + X) * px / V
    w_t = s.target_weights(c.targets)
    D = W - w_t
    S = c.sigma.loc[s.assets, s.assets].to_numpy()
    obj = cost / V + 0.5 * GAMMA * HORIZON * np.einsum("mi,ij,mj->m", D, S, D)
    ok = cash >= -1e-9
    ok &= ((s.holdings + X) >= -1e-9).all(axis=1)
    g = np.asarray(s.groups)
    for lab in set(g):
        ok &= W[:, g == lab].sum(axis=1) <= c.cap + 1e-12
    traded = X != 0
    if c.turnover is not None:
        ok &= 0.5 * (np.abs(X) * px).sum(axis=1) / V <= c.turnover + 1e-12
    if c.min_value is not None:
        ok &= ~(traded & (np.abs(X) * px < c.min_value - 1e-9)).any(axis=1)
    if c.max_trades is not None:
        ok &= traded.sum(axis=1) <= c.max_trades
    # lot multiples, or a close of the whole holding
    lot = s.lot_sizes
    on_grid = np.abs(X / lot - np.round(X / lot)) < 1e-9
    closes = np.abs(X + s.holdings) < 1e-9
    ok &= (on_grid | (closes if c.close_odd_lots else False)).all(axis=1)
    if not ok.any():
        return float("inf"), np.zeros(s.n), size
    k = int(np.argmin(np.where(ok, obj, np.inf)))
    return float(obj[k]), X[k], size
