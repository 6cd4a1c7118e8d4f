"""What a cost model declares: its convex terms and its per-order (non-convex) part, as data.

A cost model answers :meth:`~rebalopt.costs.CostModel.terms` with a :class:`CostTerms`:
per-asset arrays in universe order, every cost a fraction of pre-trade equity ``V``,
trades ``z`` in weights (trade value / ``V``), post-trade weights ``w = w0 + z``:

.. math::

    \\text{cost}(z) = \\sum_i \\ell_i |z_i| + \\sum_k \\sum_i a_{k,i} |z_i|^{p_k}
                    + \\sum_i q_i z_i^2
                    + T \\sum_i r_i \\max(-w_i, 0) + \\sum_j c_j^\\top x_j

``ell`` (``linear``), ``(a_k, p_k)`` (``power``, ``1 <= p_k <= 2``), ``q``
(``quadratic``), ``r`` (``short_holding``, a rate per **year**; the builder
multiplies by the horizon ``T`` in years, or by each period's length), and ``x_j``
auxiliary blocks (``aux``) with their own rows and a linear cost ``c_j``. The
``per_order`` part (a minimum charge and a fixed fee per order, currency) is not
convex: only the integer stage and the broker see it.

The trading part (linear, power, quadratic, and aux blocks with ``paid_from_cash``)
is paid from cash at the trade; the short-holding part accrues over the horizon and
is in the objective only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rebalopt._typing import FloatArray

if TYPE_CHECKING:  # pragma: no cover
    from rebalopt.program.layout import MatrixLayout, MatrixRows

__all__ = ["AuxTerm", "CostTerms", "PerOrder", "PowerTerm", "combine_terms"]


@dataclass(frozen=True)
class PowerTerm:
    """``coef_i * |z_i| ** exponent`` (fraction of equity), ``1 <= exponent <= 2``."""

    coef: FloatArray
    exponent: float


@dataclass(frozen=True)
class PerOrder:
    """The non-convex per-order part of a fee, per asset, charged on every traded asset.

    Charge on a traded asset ``i`` with notional ``N_i`` (currency):
    ``max(rate_i * N_i, minimum_i) + fixed_i``; the convex program holds only
    ``rate_i * N_i`` (declared as a linear term), so the part it cannot see is
    ``max(0, minimum_i - rate_i * N_i) + fixed_i``.

    Attributes
    ----------
    minimum
        Smallest charge per order, currency.
    fixed
        Fixed fee per order, currency.
    rate
        The linear rate (fraction of notional) the minimum is compared against.
    """

    minimum: FloatArray
    fixed: FloatArray
    rate: FloatArray

    @property
    def active(self) -> bool:
        """Whether any minimum or fixed fee is non-zero."""
        return bool(np.any(self.minimum > 0) or np.any(self.fixed > 0))

    def excess(self, notional: FloatArray) -> FloatArray:
        """Currency per asset charged beyond the linear rate, 0 where nothing trades."""
        notional = np.abs(np.asarray(notional, dtype=float))
        traded = notional > 0
        extra = np.maximum(0.0, self.minimum - self.rate * notional) + self.fixed
        return np.where(traded, extra, 0.0)


@dataclass(frozen=True)
class AuxTerm:
    """A cost with its own variables (tax lots, say): a block, its rows, a linear cost.

    Attributes
    ----------
    key
        Names the block: the builder allocates ``layout.aux(key, size)`` and ``rows``
        gets the same columns from the same call. Unique in the program (include
        ``id(model)`` when two instances may coexist).
    size
        Number of columns.
    cost
        Linear cost per column, fraction of equity per unit of the column.
    rows
        ``rows(layout) -> list[MatrixRows]``: the rows tying the block to ``z``, ``t``,
        ``w`` (declared on the layout's named blocks, always hard).
    paid_from_cash
        Whether the cost is paid from cash at the trade (in the ``cost`` block).
    """

    key: Hashable
    size: int
    cost: FloatArray
    rows: Callable[[MatrixLayout], Sequence[MatrixRows]]
    paid_from_cash: bool = False


@dataclass(frozen=True)
class CostTerms:
    """The convex structure of one cost model at one state (module docstring).

    ``None`` or an empty tuple means "no such term". The *structure* (which terms
    exist, the exponents, the aux block sizes) must not change between two states
    of one universe unless the model's parameters change; the values may.
    """

    linear: FloatArray | None = None
    power: tuple[PowerTerm, ...] = ()
    quadratic: FloatArray | None = None
    short_holding: FloatArray | None = None
    per_order: PerOrder | None = None
    aux: tuple[AuxTerm, ...] = ()

    def structure(self) -> Hashable:
        """What fixes the program's shape: which terms exist, exponents, aux sizes."""
        return (self.linear is not None, tuple(float(p.exponent) for p in self.power),
                self.quadratic is not None, self.short_holding is not None,
                tuple((a.key, a.size, a.paid_from_cash) for a in self.aux))

    @property
    def exact(self) -> bool:
        """Whether the convex terms are the whole cost (no active per-order part)."""
        return self.per_order is None or not self.per_order.active

    def trading_cost(self, z: FloatArray) -> float:
        """The convex trading part at trade weights ``z`` (fraction of equity), NumPy.

        Excludes the short-holding part (it depends on ``w`` and the horizon) and
        aux blocks (they depend on their own variables)."""
        a = np.abs(np.asarray(z, dtype=float))
        out = 0.0
        if self.linear is not None:
            out += float(self.linear @ a)
        for p in self.power:
            out += float(p.coef @ a ** p.exponent)
        if self.quadratic is not None:
            out += float(self.quadratic @ a ** 2)
        return out

    def holding_cost(self, w: FloatArray, horizon: float) -> float:
        """The short-holding part at post-trade weights ``w`` over ``horizon`` years."""
        if self.short_holding is None:
            return 0.0
        return float(horizon * (self.short_holding @ np.maximum(-np.asarray(w, float), 0.0)))


def combine_terms(terms: Sequence[CostTerms], n: int) -> CostTerms:
    """Several models' terms as one: linear, quadratic and holding summed; power terms
    of equal exponent summed (in order of first appearance; exponent 1 joins the
    linear term); aux blocks concatenated. The per-order part is left out (it is
    not convex: the integer stage reads it model by model)."""
    lin = np.zeros(n)
    quad = np.zeros(n)
    hold = np.zeros(n)
    has_lin = has_quad = has_hold = False
    power: dict[float, FloatArray] = {}
    aux: list[AuxTerm] = []
    for t in terms:
        if t.linear is not None:
            lin = lin + t.linear
            has_lin = True
        if t.quadratic is not None:
            quad = quad + t.quadratic
            has_quad = True
        if t.short_holding is not None:
            hold = hold + t.short_holding
            has_hold = True
        for p in t.power:
            e = float(p.exponent)
            if e == 1.0:
                lin = lin + np.asarray(p.coef, dtype=float)
                has_lin = True
                continue
            power[e] = power.get(e, np.zeros(n)) + np.asarray(p.coef, dtype=float)
        aux += list(t.aux)
    return CostTerms(linear=lin if has_lin else None,
                     power=tuple(PowerTerm(c, e) for e, c in power.items()),
                     quadratic=quad if has_quad else None,
                     short_holding=hold if has_hold else None, aux=tuple(aux))

