"""Broker commission: per share, basis points of notional, a minimum and a fixed fee per order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebalopt._checks import require_nonneg
from rebalopt._typing import FloatArray
from rebalopt.costs._base import CostModel
from rebalopt.program.terms import CostTerms, PerOrder
from rebalopt.state import PortfolioState

__all__ = ["Commission"]


@dataclass
class Commission(CostModel):
    r"""Commission charged per order (one order per traded asset).

    .. math:: c_i = \max(\text{per\_share}\,|q_i| + \text{bps}\cdot 10^{-4}\,|q_i| p_i m_i,\ \text{minimum}) + \text{per\_order}

    for every asset with a non-zero trade ``q_i`` (shares); zero otherwise.

    Parameters
    ----------
    per_share
        Currency per share (or contract) traded.
    bps
        Basis points of traded notional.
    minimum
        Minimum charge per order, currency. Not convex: the optimizer's
        convex terms leave it out (the integer stage models it); the broker always
        charges it.
    per_order
        Fixed fee per order, currency. Not convex, handled like ``minimum``.
    """

    per_share: float = 0.0
    bps: float = 0.0
    minimum: float = 0.0
    per_order: float = 0.0
    label: str | None = None

    def __post_init__(self) -> None:
        for name in ("per_share", "bps", "minimum", "per_order"):
            setattr(self, name, require_nonneg(getattr(self, name), f"Commission.{name}"))

    def rates(self, state: PortfolioState) -> FloatArray:
        """Linear commission as a fraction of traded notional, per asset."""
        return self.per_share / (state.prices * state.multipliers) + self.bps * 1e-4

    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        trades = np.asarray(trades, dtype=float)
        notional = np.abs(trades) * state.prices * state.multipliers
        linear = notional * self.rates(state)
        traded = trades != 0
        return np.where(traded, np.maximum(linear, self.minimum) + self.per_order, 0.0)

    def terms(self, state: PortfolioState) -> CostTerms:
        """Linear: ``rate_i * |z_i|``; per order: the minimum and the fixed fee."""
        rate = self.rates(state)
        per_order = None
        if self.minimum > 0 or self.per_order > 0:
            per_order = PerOrder(minimum=np.full(state.n, float(self.minimum)),
                                 fixed=np.full(state.n, float(self.per_order)), rate=rate)
        return CostTerms(linear=rate, per_order=per_order)

    @property
    def exact_in_optimizer(self) -> bool:
        return self.minimum == 0 and self.per_order == 0
