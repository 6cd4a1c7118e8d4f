"""Bid-ask spread: the trader pays half the spread on every share traded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rebalopt._checks import number, numbers_by_asset
from rebalopt._memo import universe_memo
from rebalopt._typing import FloatArray
from rebalopt.costs._base import CostModel
from rebalopt.errors import InputError
from rebalopt.program.terms import CostTerms
from rebalopt.state import PortfolioState

__all__ = ["Spread"]


@dataclass
class Spread(CostModel):
    r"""Half-spread cost, linear in traded notional.

    .. math:: c_i = s_i \cdot 10^{-4}\, |q_i|\, p_i m_i

    The simulated broker fills buys at ``p (1 + s 1e-4)`` and sells at
    ``p (1 - s 1e-4)``.

    Parameters
    ----------
    half_spread_bps
        Half spread in basis points of price: one number for every asset, or a
        Series / mapping keyed by ticker.
    default_bps
        Used for assets missing from a per-asset ``half_spread_bps``; ``None``
        makes a missing asset an error.
    """

    half_spread_bps: float | pd.Series | Mapping[str, float] = 0.0
    default_bps: float | None = None
    label: str | None = None
    is_slippage = True

    def __post_init__(self) -> None:
        # types now (text or NaN named by ticker); ranges per asset when planning
        if np.isscalar(self.half_spread_bps):
            number(self.half_spread_bps, "half_spread_bps")
        else:
            numbers_by_asset(self.half_spread_bps, "half_spread_bps")  # type: ignore[arg-type]
        if self.default_bps is not None:
            number(self.default_bps, "Spread.default_bps")

    def half_spreads(self, state: PortfolioState) -> FloatArray:
        """Half spread per asset as a fraction of price (read-only; computed once per
        universe and these parameters, :func:`~rebalopt._memo.universe_memo`: a
        per-asset Series edited in place is read again)."""
        return universe_memo(self, state, "half_spreads",
                             (self.half_spread_bps, self.default_bps),
                             lambda: _read_only(self._half_spreads(state)), groups=False)

    def _half_spreads(self, state: PortfolioState) -> FloatArray:
        hs = self.half_spread_bps
        if np.isscalar(hs):
            out = np.full(state.n, float(hs))  # type: ignore[arg-type]
        else:
            s = numbers_by_asset(hs, "half_spread_bps")  # type: ignore[arg-type]
            missing = ~state.assets.isin(s.index)
            if missing.any() and self.default_bps is None:
                raise InputError("no half spread given", asset=str(state.assets[missing][0]),
                                 field="half_spread_bps")
            out = s.reindex(state.assets).fillna(
                self.default_bps if self.default_bps is not None else np.nan).to_numpy(float)
        bad = ~np.isfinite(out) | (out < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"half spread must be finite and >= 0, got {out[i]}",
                             asset=str(state.assets[i]), field="half_spread_bps")
        return out * 1e-4

    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        notional = np.abs(np.asarray(trades, dtype=float)) * state.prices * state.multipliers
        return notional * self.half_spreads(state)

    def terms(self, state: PortfolioState) -> CostTerms:
        """Linear: ``half_spread_i * |z_i|`` (fraction of equity)."""
        return CostTerms(linear=self.half_spreads(state))


def _read_only(a: FloatArray) -> FloatArray:
    a.setflags(write=False)
    return a
