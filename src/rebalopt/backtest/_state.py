"""Build a PortfolioState straight from the broker's arrays (no pandas round trip).

``PortfolioState.__init__`` validates Series keyed by ticker, which costs a few
milliseconds at 500 assets; the broker's arrays are already aligned and
checked, so the hot path fills the same attributes directly. A test compares
every attribute with the validated constructor, so the two cannot drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.errors import InputError
from rebalopt.state import PortfolioState

__all__ = ["state_from_arrays"]


def state_from_arrays(
    assets: pd.Index,
    prices: FloatArray,
    holdings: FloatArray,
    cash: float,
    *,
    adv: FloatArray | None = None,
    volatility: FloatArray | None = None,
    groups: np.ndarray | None = None,
    multipliers: FloatArray | None = None,
    lot_sizes: FloatArray | None = None,
    require_positive_equity: bool = True,
) -> PortfolioState:
    """A :class:`PortfolioState` over ``assets`` (every price finite and > 0).

    Parameters mirror ``PortfolioState``; arrays are aligned to ``assets``.
    ``require_positive_equity=False`` allows a state used only to evaluate cost
    models on a batch of fills (its equity is irrelevant there).
    """
    n = len(assets)
    if n == 0:  # as PortfolioState: nothing priced and nothing held is not a universe
        raise InputError("empty universe: no asset has a valid price", field="price")
    prices = np.asarray(prices, dtype=float)
    bad = ~np.isfinite(prices) | (prices <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"price {prices[i]!r} must be finite and > 0", asset=str(assets[i]),
                         field="price")
    s = PortfolioState.__new__(PortfolioState)
    s.unpriced = {}
    s.assets = assets if assets.name == "asset" else pd.Index(assets, dtype=object, name="asset")
    s.prices = prices
    s.holdings = np.asarray(holdings, dtype=float)
    s.cash = float(cash)
    nan = np.full(n, np.nan)
    s.adv = nan if adv is None else np.asarray(adv, dtype=float)
    s.volatility = nan.copy() if volatility is None else np.asarray(volatility, dtype=float)
    s.lot_sizes = np.ones(n) if lot_sizes is None else np.asarray(lot_sizes, dtype=float)
    s.multipliers = np.ones(n) if multipliers is None else np.asarray(multipliers, dtype=float)
    s.groups = np.full(n, None, dtype=object) if groups is None else np.asarray(groups, dtype=object)
    s.values = s.holdings * s.prices * s.multipliers
    s.equity = float(s.cash + s.values.sum())
    if require_positive_equity:
        if not s.equity > 0:
            raise InputError(f"equity (cash + positions) must be positive, got {s.equity:.2f}",
                             field="equity")
        s.weights = s.values / s.equity
    else:
        s.weights = s.values / s.equity if s.equity > 0 else np.zeros(n)
    return s
