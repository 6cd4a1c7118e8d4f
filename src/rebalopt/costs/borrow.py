"""Borrow cost: an annual fee on the market value of short positions, over time held."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rebalopt._checks import numbers_by_asset, require_nonneg
from rebalopt._typing import FloatArray
from rebalopt.costs._base import CostModel
from rebalopt.errors import InputError
from rebalopt.program.terms import CostTerms
from rebalopt.state import PortfolioState

__all__ = ["BorrowCost"]


@dataclass
class BorrowCost(CostModel):
    r"""Stock-borrow fee on shorts: an annual rate on their market value.

    .. math:: c_i = r_i \, \max(-h_i, 0)\, p_i m_i \, \tau

    in currency, for ``h_i`` shares held (signed) at price ``p_i`` for ``tau``
    years. It is a *holding* cost: nothing is charged at the trade
    (:meth:`evaluate` is 0); :meth:`holding` is the numeric face. In the optimizer
    it is the short-holding term ``r_i T max(-w_i, 0)`` on post-trade weights over
    the horizon ``T`` (years) of the rebalancer; the simulated broker charges it
    every bar on the shorts held (``1 / periods_per_year`` of a year per bar).

    Parameters
    ----------
    rate
        Annual borrow rate (fraction per year, 0.03 = 3%): one number for every
        asset, or a Series / mapping keyed by ticker.
    default
        Rate for tickers missing from a per-asset ``rate``; ``None`` makes a
        missing ticker an error.
    """

    rate: float | pd.Series | Mapping[str, float] = 0.0
    default: float | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if np.isscalar(self.rate):  # text or a bool (True would be a 100% rate): an error
            require_nonneg(self.rate, "BorrowCost.rate")
        else:  # text, NaN, duplicates, no tickers: now, named by ticker
            numbers_by_asset(self.rate, "BorrowCost.rate")  # type: ignore[arg-type]
        if self.default is not None:
            require_nonneg(self.default, "BorrowCost.default")

    def rates(self, state: PortfolioState) -> FloatArray:
        """Annual borrow rate per asset (fraction per year)."""
        r = self.rate
        if np.isscalar(r):
            return np.full(state.n, float(r))  # type: ignore[arg-type]
        s = numbers_by_asset(r, "BorrowCost.rate")  # type: ignore[arg-type]
        missing = ~state.assets.isin(s.index)
        if missing.any() and self.default is None:
            raise InputError("no borrow rate given", asset=str(state.assets[missing][0]),
                             field="BorrowCost.rate")
        out = s.reindex(state.assets).fillna(
            self.default if self.default is not None else np.nan).to_numpy(float)
        bad = ~np.isfinite(out) | (out < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"must be finite and >= 0, got {out[i]}",
                             asset=str(state.assets[i]), field="BorrowCost.rate")
        return out

    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        """Nothing is charged at the trade (currency per asset: zeros)."""
        return np.zeros(state.n)

    def holding(self, positions: FloatArray, state: PortfolioState,
                years: float) -> FloatArray:
        """Currency per asset for holding ``positions`` shares for ``years``."""
        short = np.maximum(-np.asarray(positions, dtype=float), 0.0)
        return self.rates(state) * short * state.prices * state.multipliers * float(years)

    def terms(self, state: PortfolioState) -> CostTerms:
        """Short holding: ``rate_i`` per year on ``max(-w_i, 0)``."""
        return CostTerms(short_holding=self.rates(state))

    @property
    def charges_holding(self) -> bool:
        return True
