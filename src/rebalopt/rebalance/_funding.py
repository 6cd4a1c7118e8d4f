"""Keep a plan fundable: scale buys down until post-trade cash covers its floor."""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.costs import CostModel
from rebalopt.state import PortfolioState

__all__ = ["fund_buys"]


def _post_cash(state: PortfolioState, shares: FloatArray, costs: list[CostModel]) -> float:
    notional = float((shares * state.prices * state.multipliers).sum())
    fees = float(sum(m.evaluate(shares, state).sum() for m in costs))
    return state.cash - notional - fees


def fund_buys(
    state: PortfolioState,
    shares: FloatArray,
    costs: list[CostModel],
    lots: FloatArray | None,
    floor: float = 0.0,
    max_iter: int = 50,
) -> FloatArray:
    """Scale the buys in ``shares`` down so that post-trade cash after costs is >= ``floor``.

    Sells are kept whole (they fund the buys), except a sell whose costs exceed
    its proceeds (a tiny sale under a commission minimum), which is dropped;
    buys shrink by one common factor and are rounded *down* to their lots. If
    the sells alone leave cash below the floor, the buys are dropped entirely.

    Parameters
    ----------
    shares
        Planned trades, shares (positive = buy).
    lots
        Lot size per asset (shares) or ``None`` for fractional trades.
    floor
        Minimum post-trade cash, currency.
    """
    shares = np.asarray(shares, dtype=float).copy()
    if _post_cash(state, shares, costs) >= floor:
        return shares
    buys = shares > 0
    base = shares.copy()
    sells_only = np.where(buys, 0.0, shares)
    proceeds = -sells_only * state.prices * state.multipliers
    sell_costs = sum((m.evaluate(sells_only, state) for m in costs), np.zeros(state.n))
    losing = (sells_only < 0) & (proceeds <= sell_costs)
    if losing.any():
        shares = np.where(losing, 0.0, shares)
        sells_only = np.where(losing, 0.0, sells_only)
        if _post_cash(state, shares, costs) >= floor:
            return shares
    if _post_cash(state, sells_only, costs) < floor:
        return sells_only
    lo, hi = 0.0, 1.0  # bisection on the common factor: lo is always fundable
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        trial = np.where(buys, base * mid, shares)
        if lots is not None:
            trial = np.where(buys, np.floor(trial / lots) * lots, trial)
        if _post_cash(state, trial, costs) >= floor:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9:
            break
    out = np.where(buys, base * lo, shares)
    if lots is not None:
        out = np.where(buys, np.floor(out / lots) * lots, out)
    out[out == 0] = 0.0
    return out
