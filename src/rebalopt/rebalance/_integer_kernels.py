"""The integer search's kernels: each constraint's declared one, or a generic one.

The kernel parts (per-asset rows, aggregates, sparse linear rows, the cash row) and
what a kernel answers are in :mod:`rebalopt.program.search`; each constraint declares
its own with :meth:`~rebalopt.constraints.Constraint.search_kernel`. A constraint that
declares none gets :class:`_Generic`, which evaluates it point by point through its own
``evaluate`` (correct but slow). Tests compare every kernel with ``evaluate``.
"""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints import Constraint, Point
from rebalopt.program.search import (
    Aggregate,
    CashRow,
    Composite,
    Kernel,
    LinearRows,
    PerAsset,
    PointArrays,
    pos,
)
from rebalopt.state import PortfolioState

__all__ = ["Kernel", "PointArrays", "SparseMoves", "kernel_for", "sparse_totals"]


class _Generic(Kernel):
    """Any constraint, through its own ``evaluate`` at each candidate point (slow)."""

    exact = False

    def __init__(self, constraint: Constraint, state: PortfolioState, targets: FloatArray) -> None:
        self.constraint, self.state, self.targets = constraint, state, targets

    def _at(self, z: FloatArray, w: FloatArray, cash: float) -> float:
        lhs, rhs = self.constraint.evaluate(Point(z, w, cash, self.state, self.targets))
        return float(pos(np.atleast_1d(lhs) - np.atleast_1d(rhs)).sum())

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
    """The kernel constraint ``c`` declares, else the generic one."""
    parts = c.search_kernel(state, targets)
    if parts is None:
        return _Generic(c, state, targets)
    return Composite(c, list(parts))


class SparseMoves:
    """Candidate plans that each change a few assets of a point ``P``: plan ``c`` is
    ``P`` with the trade weight of asset ``rows[e]`` set to ``z_new[e]`` for every
    entry ``e`` with ``cols[e] == c`` (no asset twice in one plan).

    The per-asset values an entry needs are priced on an ``(n, K)`` table, ``K`` the
    most distinct new values of one asset (two for one-lot pairs and chains: one lot
    up, one lot down), instead of the ``(n, m)`` table of whole candidate plans.
    """

    def __init__(self, P: PointArrays, w0: FloatArray, rows: np.ndarray, cols: np.ndarray,
                 z_new: FloatArray, m: int) -> None:
        self.P, self.w0, self.rows, self.cols, self.z_new, self.m = P, w0, rows, cols, z_new, m
        self.w_new = w0[rows] + z_new
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Z, W, slot)``: per-asset tables holding each entry's new value at
        ``[rows[e], slot[e]]``, the point's own values elsewhere."""
        if self._table is None:
            rows, z = self.rows, self.z_new
            order = np.lexsort((z, rows))
            rs, zs = rows[order], z[order]
            new = np.ones(rs.size, dtype=bool)
            new[1:] = (rs[1:] != rs[:-1]) | (zs[1:] != zs[:-1])
            uid = np.cumsum(new) - 1  # index of each distinct (asset, value)
            first_row = np.ones(rs.size, dtype=bool)
            first_row[1:] = rs[1:] != rs[:-1]
            row_start = np.maximum.accumulate(np.where(first_row, uid, 0))
            slot = np.empty(rows.size, dtype=np.intp)
            slot[order] = uid - row_start
            K = int(slot.max(initial=0)) + 1
            Z = np.repeat(self.P.z[:, None], K, axis=1)
            Z[rows, slot] = z
            self._table = (Z, self.w0[:, None] + Z, slot)
        return self._table

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Every candidate plan's trades and weights, ``(n, m)`` each."""
        Z = np.repeat(self.P.z[:, None], self.m, axis=1)
        Z[self.rows, self.cols] = self.z_new
        return Z, self.w0[:, None] + Z


def sparse_totals(k: Kernel, S: SparseMoves, cash: FloatArray,
                  dense: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """``k.totals`` at every candidate plan of ``S`` (post-trade cash ``cash``), equal to
    it up to float round-off (sums taken in another order).

    The cash row, sparse linear rows, per-asset rows and aggregates are updated from
    the point's values in the changed entries only; any other kernel (a generic one)
    gets the whole candidate plans (built once, kept in ``dense``).
    """
    if isinstance(k, Composite):
        out = np.zeros(S.m)
        for part in k.parts:
            out = out + sparse_totals(part, S, cash, dense)
        return out
    P, rows, cols, m = S.P, S.rows, S.cols, S.m
    if isinstance(k, CashRow):
        return k.totals(None, None, cash)
    if isinstance(k, LinearRows):
        L = np.repeat(np.append(k._lhs(P.w), 0.0)[:, None], m, axis=1)
        dW = S.w_new - P.w[rows]
        for row, coef, _ in k.layers:
            np.add.at(L, (row[rows], cols), coef[rows, 0] * dW)
        return pos(L[:-1] - k.R[:, None]).sum(axis=0)
    if isinstance(k, (PerAsset, Aggregate)):
        fn = k.fn if isinstance(k, PerAsset) else k.phi
        Z, W, slot = S.table()
        cur = fn(P.z, P.w)
        change = fn(Z, W)[rows, slot] - cur[rows]
        total = cur.sum() + np.bincount(cols, weights=change, minlength=m)
        return total if isinstance(k, PerAsset) else k._viol(total)
    if dense is None:
        dense = []
    if not dense:
        dense.append(S.dense())
    Z, W = dense[0]
    return k.totals(Z, W, cash)
