"""Exact per-asset trading cost of lot counts, vectorized over candidate moves.

The integer stage evaluates thousands of candidate moves; calling every cost
model's ``evaluate`` per candidate would be slow. :class:`CostTable` reads each
model's declared terms once per solve (:meth:`CostModel.terms
<rebalopt.costs.CostModel.terms>`: linear, power, quadratic, and the per-order
minimum and fixed fee) and evaluates the *full* trading cost, non-convex per-order
parts included, on arrays of any shape. A model whose cost needs its own variables
(auxiliary blocks) goes through its ``evaluate`` (one call per column). Tests check
the table against ``evaluate``.

Units: trade weights ``z`` (fractions of pre-trade equity ``V``) in, cost as a
fraction of ``V`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.costs import CostModel
from rebalopt.state import PortfolioState

__all__ = ["CostTable"]

_CACHE_SIZE = 100_000
"""Largest array (elements) :meth:`CostTable.__call__` keeps to re-price by changed rows."""


@dataclass
class _Term:
    power: FloatArray | None = None       # a on |z|**p
    exponent: float = 1.0
    rate: FloatArray | None = None        # per-order: the linear rate the minimum bounds
    minimum: FloatArray | None = None     # per-order minimum, weight
    fixed: FloatArray | None = None       # per-order fee, weight
    model: CostModel | None = None        # generic fallback (aux blocks)


class CostTable:
    """Full per-asset cost (fraction of equity) of trade weights, from the declared terms."""

    def __init__(self, costs: Sequence[CostModel], state: PortfolioState,
                 horizon: float = 0.0) -> None:
        self.state = state
        self.V = state.equity
        self.unit = state.prices * state.multipliers
        self.terms: list[_Term] = []
        lin = np.zeros(state.n)
        hold = np.zeros(state.n)
        for m in costs:
            tm = m.terms(state)
            if tm.short_holding is not None:
                hold = hold + horizon * np.asarray(tm.short_holding, dtype=float)
            if tm.aux:
                self.terms.append(_Term(model=m))
                continue
            own = np.zeros(state.n) if tm.linear is None else np.asarray(tm.linear, float)
            po = tm.per_order
            if po is not None and po.active:
                own = own - po.rate  # charged below as max(rate |z|, minimum) + fixed
                self.terms.append(_Term(rate=np.asarray(po.rate, float),
                                        minimum=np.asarray(po.minimum, float) / self.V,
                                        fixed=np.asarray(po.fixed, float) / self.V))
            lin = lin + own
            for p in tm.power:
                if p.exponent == 1.0:
                    lin = lin + p.coef
                else:
                    self.terms.append(_Term(power=np.asarray(p.coef, float), exponent=p.exponent))
            if tm.quadratic is not None:
                self.terms.append(_Term(power=np.asarray(tm.quadratic, float), exponent=2.0))
        self.generic = any(t.model is not None for t in self.terms)
        self._last: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._lin_other = lin
        self._hold = hold if np.any(hold != 0) else None

    @property
    def holds(self) -> bool:
        """Whether any model charges a holding cost (:meth:`holding` is not zero)."""
        return self._hold is not None

    def holding(self, w: np.ndarray) -> np.ndarray:
        """Short-holding cost per asset (fraction of equity) of post-trade weights ``w``
        over the horizon, shape ``(n,)`` or ``(n, C)``; not paid from cash at the trade."""
        w = np.asarray(w, dtype=float)
        if self._hold is None:
            return np.zeros(w.shape)
        col = (slice(None),) + (None,) * (w.ndim - 1)
        return self._hold[col] * np.maximum(-w, 0.0)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Cost per asset (fraction of equity) of trade weights ``z``, shape ``(n,)`` or ``(n, C)``.

        The search calls this with candidate tables ``(n, C)`` that differ from the
        previous call of the same shape in a few rows (the assets just moved): those
        rows are priced, the others copied from that call (each asset's cost depends
        on its own row only, so the answer is the same, bit for bit).
        """
        z = np.asarray(z, dtype=float)
        if self.generic or z.size > _CACHE_SIZE or z.ndim < 2:
            return self._price(z)
        hit = self._last.get(z.shape)
        if hit is not None:
            changed = z != hit[0]
            rows = np.flatnonzero(changed)
            if z.ndim > 1:
                rows = np.unique(rows // (z.size // z.shape[0]))
            if 4 * rows.size <= z.shape[0]:
                out = hit[1].copy()
                out[rows] = self._price(z[rows], rows)
                hit[0][rows] = z[rows]
                hit[1][rows] = out[rows]
                return out
        out = self._price(z)
        if len(self._last) >= 8:
            self._last.clear()
        self._last[z.shape] = (z.copy(), out.copy())
        return out

    def order_floor(self) -> FloatArray:
        """Per asset, the trade weight below which an order pays more than its linear
        and power parts: where a per-order minimum binds (``minimum / rate``), or
        ``inf`` under a per-order fixed fee or a minimum without a rate (every order
        pays it); 0 where no order has such a part."""
        out = np.zeros(self.state.n)
        for t in self.terms:
            if t.rate is None:
                continue
            rate = np.broadcast_to(np.asarray(t.rate, float), out.shape)
            mn = np.broadcast_to(np.asarray(t.minimum, float), out.shape)
            fx = np.broadcast_to(np.asarray(t.fixed, float), out.shape)
            with np.errstate(divide="ignore", invalid="ignore"):
                b = np.where(mn > 0, np.where(rate > 0, mn / rate, np.inf), 0.0)
            out = np.maximum(out, np.where(fx > 0, np.inf, b))
        return out

    def price_rows(self, z: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cost of ``z`` whose rows are the assets ``rows`` (shape ``(len(rows),)`` or
        ``(len(rows), C)``), as those rows of a whole-table call."""
        if self.generic:
            full = np.zeros((self.state.n,) + z.shape[1:])
            full[rows] = z
            return self._price(full)[rows]
        return self._price(z, rows)

    def price_one(self, i: int, z: np.ndarray) -> np.ndarray:
        """Cost of trade weights ``z`` (1-D) of the one asset ``i``: :meth:`price_rows`
        for one row, with the asset's coefficients as scalars (the same operations
        on each element, so the same numbers)."""
        if self.generic:
            return self.price_rows(z[None, :], np.array([i]))[0]
        return self._price(z, i)

    def _price(self, z: np.ndarray, rows: np.ndarray | int | None = None) -> np.ndarray:
        """Cost of ``z`` (its rows are the assets ``rows``, all assets when ``None``; one
        asset ``rows`` (int): ``z`` is that asset's trades, priced with scalar
        coefficients)."""
        az = np.abs(z)
        sel = slice(None) if rows is None else rows
        col = (sel,) + (None,) * (z.ndim - 1)
        out = self._lin_other[col] * az
        traded = z != 0
        for t in self.terms:
            if t.rate is not None:
                lin = np.maximum(t.rate[col] * az, t.minimum[col])  # type: ignore[index]
                out = out + np.where(traded, lin + t.fixed[col], 0.0)  # type: ignore[index]
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
