"""The integer search's face of a constraint: vectorized violation after lot moves.

A *kernel* mirrors one constraint's numeric ``evaluate`` and answers two questions
in NumPy (the round mode's engine, :mod:`rebalopt.rebalance._integer_search`):

* ``total(P)``: the sum of the constraint's positive row violations at a point
  ``P`` (trade weights ``z``, post-trade weights ``w``, post-trade cash after the
  full cost);
* ``candidates(P, Z, W, CASH)``: the same sum after each candidate move, where
  column ``j`` of row ``i`` changes only asset ``i`` (to ``Z[i, j]``, ``W[i, j]``)
  and the cash becomes ``CASH[i, j]``. Shape ``(n, C)``.

A constraint declares its kernel with
:meth:`~rebalopt.constraints.Constraint.search_kernel` from these parts: per-asset
rows (:class:`PerAsset`), sums of per-asset terms (:class:`Aggregate`: turnover,
leverage, trade count), sparse linear rows on ``w`` (:class:`LinearRows`: groups,
factor exposures) and the cash row (:class:`CashRow`). A constraint that declares
none is evaluated point by point through its own ``evaluate`` (correct but slow).
Tests compare every kernel with ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray

__all__ = ["Aggregate", "CashRow", "Composite", "Kernel", "LinearRows", "PerAsset",
           "PointArrays", "pos"]


@dataclass
class PointArrays:
    """A candidate point: trade weights, post-trade weights, post-trade cash (full cost)."""

    z: FloatArray
    w: FloatArray
    cash: float


def pos(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``, elementwise (a row's violation)."""
    return np.maximum(x, 0.0)


class Kernel:
    """Violation of one constraint at a point and after single-asset moves."""

    constraint: object
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


class Composite(Kernel):
    """The sum of several kernels' violations (one constraint's parts)."""

    def __init__(self, constraint: object, parts: list[Kernel]) -> None:
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


class PerAsset(Kernel):
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


class Aggregate(Kernel):
    """One quantity ``L = sum_i phi(z_i, w_i)`` with ``lo <= L <= hi``."""

    def __init__(self, phi: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 hi: float = np.inf, lo: float = -np.inf) -> None:
        self.phi, self.hi, self.lo = phi, hi, lo

    def _viol(self, L: np.ndarray | float) -> np.ndarray:
        return pos(np.asarray(L) - self.hi) + pos(self.lo - np.asarray(L))

    def total(self, P: PointArrays) -> float:
        return float(self._viol(self.phi(P.z, P.w).sum()))

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        cur = self.phi(P.z, P.w)
        L = cur.sum() - cur[:, None] + self.phi(Z, W)
        return self._viol(L)

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return self._viol(self.phi(Z, W).sum(axis=0))


class LinearRows(Kernel):
    """Rows ``M w <= R`` with a sparse ``M``; a move in asset ``i`` touches column ``i``.

    A move's change in violation is summed per asset over the asset's entries of
    ``M`` (its nonzeros), in entry order: the ``k``-th entry of every asset is laid
    out as a row index and a coefficient per asset (group bounds: one or two such
    layers; ``k`` factor rows: ``k``), an asset with fewer entries pointing at a
    zero row with a zero coefficient.
    """

    def __init__(self, M: sp.spmatrix, R: FloatArray, n: int) -> None:
        coo = sp.coo_matrix(M)
        self.M = sp.csr_matrix(M)
        self.R = np.asarray(R, dtype=float)
        csr = self.M.tocoo()  # row-major, the order a sparse product sums in
        self._rows = csr.row.astype(np.intp)
        self._cols, self._vals = csr.col.astype(np.intp), csr.data
        r, i, v = coo.row.astype(np.intp), coo.col.astype(np.intp), coo.data
        m, nnz = self.R.size, i.size
        self.Rpad = np.append(self.R, 0.0)
        counts = np.bincount(i, minlength=n)
        by_asset = np.argsort(i, kind="stable")
        rank = np.empty(nnz, dtype=np.intp)
        rank[by_asset] = np.arange(nnz) - np.repeat(np.cumsum(counts) - counts, counts)
        self.layers = []  # per k: each asset's k-th entry as (row, coefficient)
        for k in range(int(counts.max(initial=0))):
            e = np.flatnonzero(rank == k)
            row = np.full(n, m, dtype=np.intp)
            coef = np.zeros(n)
            row[i[e]], coef[i[e]] = r[e], v[e]
            self.layers.append((row, coef[:, None], self.Rpad[row][:, None]))

    def _lhs(self, w: FloatArray) -> FloatArray:
        """``M w`` for one point (summed row by row in the sparse product's order)."""
        return np.bincount(self._rows, weights=self._vals * w[self._cols],
                           minlength=self.R.size)

    def total(self, P: PointArrays) -> float:
        return float(pos(self._lhs(P.w) - self.R).sum())

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        L = np.append(self._lhs(P.w), 0.0)
        old = pos(L - self.Rpad)
        dW = W - P.w[:, None]
        out = None
        for row, coef, Rr in self.layers:
            change = pos(L[row][:, None] + coef * dW - Rr) - old[row][:, None]
            out = change if out is None else out + change
        return old[:-1].sum() + (np.zeros(W.shape) if out is None else out)

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return pos(self.M @ W - self.R[:, None]).sum(axis=0)

class CashRow(Kernel):
    """Post-trade cash (after the full cost) at least ``floor`` (weight)."""

    def __init__(self, floor: float) -> None:
        self.floor = floor

    def total(self, P: PointArrays) -> float:
        return max(0.0, self.floor - P.cash)

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        return pos(self.floor - CASH)

    def totals(self, Z, W, CASH):  # type: ignore[no-untyped-def]
        return pos(self.floor - np.asarray(CASH, dtype=float))
