"""InvestCash: put the cash a rebalancer leaves idle back into the targets.

Tolerance bands sell assets above their band and buy only those below theirs, so
cash piles up between rebalances (one band in a 20-year comparison held 23.8% cash
on average). A baseline that is not fully invested tracks worse and trades less,
which flatters any policy compared with it. This wrapper invests the cash left
above the targets' own cash weight into the assets furthest below their targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rebalopt.errors import InputError
from rebalopt.rebalance.plan import RebalancePlan

__all__ = ["InvestCash"]


class InvestCash:
    """Another rebalancer's plan, with its leftover cash invested.

    After the wrapped plan, the cash weight above ``1 - sum(targets)`` (plus
    ``tolerance``) is spread over the assets whose post-trade weight is below
    target, in proportion to the shortfall and never past the target; whole
    shares (lots) are rounded down unless the wrapped rebalancer's config is
    fractional. The cost of the extra buys is charged (the plan is re-evaluated)
    and kept back from the cash invested, so post-trade cash never falls below the
    targets' cash. Attributes of the wrapped rebalancer are read through.

    Parameters
    ----------
    rebalancer
        Anything with ``plan(state, targets) -> RebalancePlan`` and ``costs``.
    tolerance
        Cash weight (fraction of equity) above the targets' cash left uninvested.
    """

    def __init__(self, rebalancer: Any, tolerance: float = 0.0) -> None:
        if not (np.isfinite(tolerance) and 0 <= tolerance < 1):
            raise InputError(f"must be in [0, 1), got {tolerance!r}", field="tolerance")
        object.__setattr__(self, "inner", rebalancer)
        object.__setattr__(self, "tolerance", float(tolerance))

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "inner"), name)

    @property
    def method(self) -> str:
        """The wrapped method, marked as investing its cash."""
        return f"{getattr(self.inner, 'method', type(self.inner).__name__)} + cash invested"

    def plan(self, state: Any, targets: Any) -> RebalancePlan:
        """The wrapped plan plus buys that invest the idle cash
        (``info['cash_invested']``: currency added to the buys)."""
        p = self.inner.plan(state, targets)
        eq = state.equity
        w_t = np.asarray(p.targets, dtype=float)
        floor_cash = (1.0 - float(w_t.sum()) + self.tolerance) * eq
        left = (p.post_cash - floor_cash) / eq  # weight
        short = np.clip(w_t - p.post_weights, 0.0, None)
        for asset in (p.info.get("untradable") or {}):
            short[state.index_of(asset)] = 0.0
        if left <= 0 or short.sum() <= 0:
            p.info.setdefault("cash_invested", 0.0)
            return p
        cfg = getattr(self.inner, "config", None)
        fractional = bool(getattr(cfg, "fractional", False))
        unit = state.prices * state.multipliers
        costs = list(getattr(self.inner, "costs", []) or [])
        budget = left
        best = p
        for _ in range(4):
            x = np.minimum(budget * short / short.sum(), short) * eq  # currency per asset
            extra = x / unit
            if not fractional:
                extra = np.floor(extra / state.lot_sizes) * state.lot_sizes
            trial = RebalancePlan.from_trades(state, w_t, p.trades + extra, costs, p.method,
                                              p.info)
            if trial.post_cash >= floor_cash - 1e-9:
                best = trial
                best.info["cash_invested"] = float((extra * unit).sum())
                break
            budget -= 1.01 * (floor_cash - trial.post_cash) / eq
            if budget <= 0:
                break
        best.info.setdefault("cash_invested", 0.0)
        return best
