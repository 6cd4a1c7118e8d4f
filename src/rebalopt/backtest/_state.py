"""Build a PortfolioState straight from the broker's arrays (no pandas round trip).

Through :meth:`PortfolioState.from_arrays` (every check of the constructor, vectorized);
here every price must be valid, so the state's arrays stay aligned with the broker's.
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
    halted: np.ndarray | None = None,
) -> PortfolioState:
    """A :class:`PortfolioState` over ``assets`` (every price finite and > 0).

    Parameters mirror ``PortfolioState``; arrays are aligned to ``assets``.
    ``halted`` is a boolean mask (assets with no current price, see
    ``PortfolioState``). ``require_positive_equity=False`` allows a state used only to evaluate cost
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
    s = PortfolioState._from_arrays(
        assets, holdings, cash, prices, adv=adv, volatility=volatility, groups=groups,
        lot_sizes=lot_sizes, multipliers=multipliers,
        require_positive_equity=require_positive_equity)
    s.halted = (np.zeros(len(assets), dtype=bool) if halted is None
                else np.asarray(halted, dtype=bool))
    return s
