"""Vectorized constraint violation for single-asset lot moves (the round mode's engine).

A *kernel* mirrors one constraint's numeric ``evaluate`` and answers two questions
in NumPy:

* ``total(P)``: the sum of the constraint's positive row violations at a point
  ``P`` (trade weights ``z``, post-trade weights ``w``, post-trade cash after the
  full cost);
* ``candidates(P, Z, W, CASH)``: the same sum after each candidate move, where
  column ``j`` of row ``i`` changes only asset ``i`` (to ``Z[i, j]``, ``W[i, j]``)
  and the cash becomes ``CASH[i, j]``. Shape ``(n, C)``.

Per-asset rows, sums of per-asset terms (turnover, leverage, trade count), sparse
linear rows (groups, factor exposures) and the cash row each have a closed form;
a constraint type without a kernel is evaluated point by point through its own
``evaluate`` (correct but slow). Tests compare every kernel with ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.constraints import (
    CashFloor,
    Constraint,
    FactorBounds,
    GroupBounds,
    Leverage,
    LongOnly,
    ParticipationLimit,
    Point,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.constraints.integer import TRADE_EPS, LotSize, MaxTrades, MinTradeValue
from rebalopt.state import PortfolioState

__all__ = ["Kernel", "PointArrays", "kernel_for"]


@dataclass
class PointArrays:
    """A candidate point: trade weights, post-trade weights, post-trade cash (full cost)."""

    z: FloatArray
    w: FloatArray
    cash: float


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


class Kernel:
    """Violation of one constraint at a point and after single-asset moves."""

    constraint: Constraint
    exact: bool = True  # False: the generic (slow) evaluate-based kernel

    def total(self, P: PointArrays) -> float:
        raise NotImplementedError

    def candidates(self, P: PointArrays, Z: np.ndarray, W: np.ndarray,
                   CASH: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def totals(self, Z: np.ndarray, W: np.ndarray, CASH: np.ndarray) -> np.ndarray:
        """``total`` at each column of ``Z``, ``W`` (shape ``(n, m)``; cash ``(m,)``)."""
        return np.array([self.total(PointArrays(Z[:, j], W[:, j], float(CASH[j])))
                         for j in range(Z.shape[1])])


class _Composite(Kernel):
    def __init__(self, constraint: Constraint, parts: list[Kernel]) -> None:
        self.constraint, self.parts = constraint, parts

    def total(self, P: PointArrays) -> float:
        return float(sum(p.total(P) for p in self.parts))

    def candidates(self, P: PointArrays, Z: np.ndarray, W: np.ndarray,
                   CASH: np.ndarray) -> np.ndarray:
        out = np.zeros(Z.shape)
        for p in self.parts:
            out = out + p.candidates(P, Z, W, CASH)
        return out

    def totals(self, Z: np.ndarray, W: np.ndarray, CASH: np.ndarray) -> np.ndarray:
        out = np.zeros(Z.shape[1])
        for p in self.parts:
            out = out + p.totals(Z, W, CASH)
        return out


class _PerAsset(Kernel):
    """Rows that involve one asset each: ``fn(Z, W)`` is that asset's summed violation."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.fn = fn

    def total(self, P: PointArrays) -> float:
        return float(self.fn(P.z, P.w).sum())

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        cur = self.fn(P.z, P.w)
        return cur.sum() - cur[:, None] + self.fn(Z, W)

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return self.fn(Z, W).sum(axis=0)


class _Aggregate(Kernel):
    """One quantity ``L = sum_i phi(z_i, w_i)`` with ``lo <= L <= hi``."""

    def __init__(self, phi: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 hi: float = np.inf, lo: float = -np.inf) -> None:
        self.phi, self.hi, self.lo = phi, hi, lo

    def _viol(self, L: np.ndarray | float) -> np.ndarray:
        return _pos(np.asarray(L) - self.hi) + _pos(self.lo - np.asarray(L))

    def total(self, P: PointArrays) -> float:
        return float(self._viol(self.phi(P.z, P.w).sum()))

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        cur = self.phi(P.z, P.w)
        L = cur.sum() - cur[:, None] + self.phi(Z, W)
        return self._viol(L)

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return self._viol(self.phi(Z, W).sum(axis=0))


class _Linear(Kernel):
    """Rows ``M w <= R`` with a sparse ``M``; a move in asset ``i`` touches column ``i``."""

    def __init__(self, M: sp.spmatrix, R: FloatArray, n: int) -> None:
        coo = sp.coo_matrix(M)
        self.M = sp.csr_matrix(M)
        self.R = np.asarray(R, dtype=float)
        self.r, self.i, self.v = coo.row, coo.col, coo.data
        self.P = sp.csr_matrix((np.ones(self.i.size), (self.i, np.arange(self.i.size))),
                               shape=(n, self.i.size))

    def total(self, P: PointArrays) -> float:
        return float(_pos(self.M @ P.w - self.R).sum())

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        L = self.M @ P.w
        old = _pos(L - self.R)
        dW = W[self.i] - P.w[self.i][:, None]
        new = _pos(L[self.r][:, None] + self.v[:, None] * dW - self.R[self.r][:, None])
        return old.sum() + self.P @ (new - old[self.r][:, None])

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return _pos(self.M @ W - self.R[:, None]).sum(axis=0)


class _Cash(Kernel):
    def __init__(self, floor: float) -> None:
        self.floor = floor

    def total(self, P: PointArrays) -> float:
        return max(0.0, self.floor - P.cash)

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        return _pos(self.floor - CASH)

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return _pos(self.floor - np.asarray(CASH, dtype=float))


class _Generic(Kernel):
    """Any constraint, through its own ``evaluate`` at each candidate point (slow)."""

    exact = False

    def __init__(self, constraint: Constraint, state: PortfolioState, targets: FloatArray) -> None:
        self.constraint, self.state, self.targets = constraint, state, targets

    def _at(self, z: FloatArray, w: FloatArray, cash: float) -> float:
        lhs, rhs = self.constraint.evaluate(Point(z, w, cash, self.state, self.targets))
        return float(_pos(np.atleast_1d(lhs) - np.atleast_1d(rhs)).sum())

    def total(self, P: PointArrays) -> float:
        return self._at(P.z, P.w, P.cash)

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        out = np.empty(Z.shape)
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                z, w = P.z.copy(), P.w.copy()
                z[i], w[i] = Z[i, j], W[i, j]
                out[i, j] = self._at(z, w, float(CASH[i, j]))
        return out


def kernel_for(c: Constraint, state: PortfolioState, targets: FloatArray) -> Kernel:
    """The kernel of constraint ``c`` (generic when its type has no closed form)."""
    n = state.n
    V, unit = state.equity, state.prices * state.multipliers
    parts: list[Kernel] = []
    if isinstance(c, LongOnly):
        parts.append(_PerAsset(lambda Z, W: _pos(-W)))
    elif isinstance(c, ShortLimit):
        caps = c._caps(state)
        capc = caps[:, None]
        parts.append(_PerAsset(lambda Z, W: _pos(-W - (caps if W.ndim == 1 else capc))))
        if c.total is not None:
            parts.append(_Aggregate(lambda Z, W: _pos(-W), hi=float(c.total)))
    elif isinstance(c, WeightBounds):
        lo, hi = c._bounds(state)
        lo2, hi2 = lo[:, None], hi[:, None]
        parts.append(_PerAsset(lambda Z, W: _pos(W - (hi if W.ndim == 1 else hi2))
                               + _pos((lo if W.ndim == 1 else lo2) - W)))
    elif isinstance(c, GroupBounds):
        hi, lw, Au, Al = c._rhs(state, targets)
        parts.append(_Linear(sp.vstack([Au, -Al]), np.concatenate([hi, -lw]), n))
    elif isinstance(c, FactorBounds):
        B = c._loadings(state)
        _, hi, lw, iu, il = c._rows(state, targets, None)
        M = np.vstack([B[iu], -B[il]]) if (iu.size + il.size) else np.zeros((0, n))
        parts.append(_Linear(sp.csr_matrix(M), np.concatenate([hi, -lw]), n))
    elif isinstance(c, TurnoverLimit):
        parts.append(_Aggregate(lambda Z, W: 0.5 * np.abs(Z), hi=float(c.cap)))
    elif isinstance(c, Leverage):
        if c.gross is not None:
            parts.append(_Aggregate(lambda Z, W: np.abs(W), hi=float(c.gross)))
        if c.net is not None:
            parts.append(_Aggregate(lambda Z, W: W, hi=float(c.net), lo=-float(c.net)))
    elif isinstance(c, CashFloor):
        parts.append(_Cash(float(c.floor)))
    elif isinstance(c, ParticipationLimit):
        caps = c.caps(state)
        capc = caps[:, None]
        parts.append(_PerAsset(lambda Z, W: _pos(np.abs(Z) - (caps if Z.ndim == 1 else capc))))
    elif isinstance(c, Restricted):
        b, s_, t_ = c._idx(state)
        mb, ms, mt = (np.zeros(n, bool) for _ in range(3))
        mb[b], ms[s_], mt[t_] = True, True, True

        def restricted(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            return (np.where(mb[col], _pos(Z), 0.0) + np.where(ms[col], _pos(-Z), 0.0)
                    + np.where(mt[col], np.abs(Z), 0.0))

        parts.append(_PerAsset(restricted))
    elif isinstance(c, LotSize):
        lot = c.sizes(state)
        held = np.asarray(state.holdings, dtype=float)

        def lot_dist(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            x = Z * (V / unit[col])
            k = x / lot[col]
            allow = 1e-9 * np.maximum(1.0, np.abs(x))
            closes = np.abs(x + held[col]) <= allow  # closing to zero: always whole
            return np.where(closes, 0.0, _pos(np.abs(k - np.round(k)) * lot[col] - allow))

        parts.append(_PerAsset(lot_dist))
    elif isinstance(c, MinTradeValue):
        m = c.value / V
        eps = TRADE_EPS * unit / V

        def min_value(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            return np.where(np.abs(Z) > eps[col], _pos(m - np.abs(Z)), 0.0)

        parts.append(_PerAsset(min_value))
    elif isinstance(c, MaxTrades):
        eps = TRADE_EPS * unit / V

        def traded(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            return (np.abs(Z) > eps[col]).astype(float)

        parts.append(_Aggregate(traded, hi=float(c.count)))
    else:
        return _Generic(c, state, targets)
    return _Composite(c, parts)
