"""Exact per-asset trading cost of lot counts, vectorized over candidate moves.

The integer stage evaluates thousands of candidate moves; calling every cost
model's ``evaluate`` per candidate would be slow. :class:`CostTable` reads each
known model's coefficients once per solve (the same ``rates``, ``half_spreads``
and ``coefficients`` the models' own faces read) and evaluates the *full* cost,
non-convex commission parts included, on arrays of any shape. Unknown models go
through their ``evaluate`` (one call per column). Tests check the table against
``evaluate``.

Units: trade weights ``z`` (fractions of pre-trade equity ``V``) in, cost as a
fraction of ``V`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.costs import Commission, CostModel, MarketImpact, Spread
from rebalopt.state import PortfolioState

__all__ = ["CostTable"]


@dataclass
class _Term:
    linear: FloatArray | None = None      # rate on |z|
    power: FloatArray | None = None       # a on |z|**p
    exponent: float = 1.0
    minimum: float = 0.0                  # commission minimum, weight
    fixed: float = 0.0                    # per-order fee, weight
    is_commission: bool = False
    model: CostModel | None = None        # generic fallback


class CostTable:
    """Full per-asset cost (fraction of equity) of trade weights, for known and unknown models."""

    def __init__(self, costs: Sequence[CostModel], state: PortfolioState) -> None:
        self.state = state
        self.V = state.equity
        self.unit = state.prices * state.multipliers
        self.terms: list[_Term] = []
        for m in costs:
            if isinstance(m, Commission):
                self.terms.append(_Term(linear=m.rates(state), minimum=m.minimum / self.V,
                                        fixed=m.per_order / self.V, is_commission=True))
            elif isinstance(m, Spread):
                self.terms.append(_Term(linear=m.half_spreads(state)))
            elif isinstance(m, MarketImpact):
                if m.coef == 0:
                    continue
                a = m.coefficients(state)
                if m.exponent == 1.0:
                    self.terms.append(_Term(linear=a))
                else:
                    self.terms.append(_Term(power=a, exponent=m.exponent))
            else:
                self.terms.append(_Term(model=m))
        self.generic = any(t.model is not None for t in self.terms)
        lin = np.zeros(state.n)
        for t in self.terms:
            if t.linear is not None and not t.is_commission:
                lin = lin + t.linear
        self._lin_other = lin

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Cost per asset (fraction of equity) of trade weights ``z``, shape ``(n,)`` or ``(n, C)``."""
        z = np.asarray(z, dtype=float)
        az = np.abs(z)
        col = (slice(None),) + (None,) * (z.ndim - 1)
        out = self._lin_other[col] * az
        traded = z != 0
        for t in self.terms:
            if t.is_commission:
                lin = t.linear[col] * az  # type: ignore[index]
                if t.minimum > 0:
                    lin = np.maximum(lin, t.minimum)
                out = out + np.where(traded, lin + t.fixed, 0.0)
            elif t.power is not None:
                out = out + t.power[col] * az ** t.exponent
            elif t.model is not None:
                x = z * (self.V / self.unit[col])
                if z.ndim == 1:
                    out = out + np.asarray(t.model.evaluate(x, self.state), float) / self.V
                else:
                    cols = [np.asarray(t.model.evaluate(x[:, j], self.state), float)
                            for j in range(z.shape[1])]
                    out = out + np.stack(cols, axis=1) / self.V
        return out
