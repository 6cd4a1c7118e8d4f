"""Ruiz equilibration of a conic program, done here so a kept Clarabel solver can be reused.

Clarabel scales its data (modified Ruiz equilibration of the KKT matrix) when a solver
is built and keeps that scaling for the solver's life: after ``update()`` a kept solver
solves the new data under the *old* scaling, so its answer differs (in the last bits)
from a fresh solver's. With Clarabel's own equilibration off, a kept solver given new
values answers bit for bit what a fresh solver answers (tested over re-solve orders in
``tests/rebalance/test_kept_solver.py``). This module computes the same scaling as
Clarabel (``problemdata.rs``: ``equilibrate``; same steps, bounds and cone rules) from
each program's own values, so the scaling is a function of the data alone and a plan
never depends on what was solved before.

The scaled program is

.. math::

    \\min_{\\tilde x}\\ \\tfrac12 \\tilde x^\\top (cDPD) \\tilde x + (c D q)^\\top \\tilde x
    \\quad\\text{s.t.}\\quad (EAD)\\tilde x + \\tilde s = E b,

with ``x = D x~`` and the objective ``c`` times the original. Rows of one
second-order or power cone share one scale (the mean of their Ruiz factors), as
Clarabel's ``rectify_equilibration`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray

__all__ = ["Pattern", "Scaling", "equilibrate"]


@dataclass(frozen=True)
class Scaling:
    """A program's equilibration: column scales ``d`` (variables), row scales ``e``
    (constraints) and the objective scale ``c``; ``x = d * x_scaled``, objective =
    scaled objective / ``c``."""

    d: FloatArray
    e: FloatArray
    c: float


class Pattern:
    """Index arrays of one sparsity pattern of ``(P, A)``, computed once per structure
    (a kept solver keeps them with its structure)."""

    def __init__(self, P: sp.csc_matrix, A: sp.csc_matrix) -> None:
        self.n, self.m = P.shape[0], A.shape[0]
        self.pcol = np.repeat(np.arange(self.n), np.diff(P.indptr))
        self.prow = np.asarray(P.indices)
        self.acol = np.repeat(np.arange(self.n), np.diff(A.indptr))
        self.arow = np.asarray(A.indices)
        self.p_diagonal = bool(np.array_equal(self.prow, self.pcol))
        self._p_cols = np.flatnonzero(np.diff(P.indptr))
        self._p_starts = P.indptr[self._p_cols]
        self._a_cols = np.flatnonzero(np.diff(A.indptr))
        self._a_starts = A.indptr[self._a_cols]

    def p_col_max(self, absP: FloatArray) -> FloatArray:
        """Largest entry per column of ``|P|`` (stored triangle; 0 if empty)."""
        out = np.zeros(self.n)
        if self.p_diagonal:
            out[self.pcol] = absP
        elif self._p_cols.size:
            out[self._p_cols] = np.maximum.reduceat(absP, self._p_starts)
        return out

    def p_sym_max(self, absP: FloatArray) -> FloatArray:
        """Largest entry per column of the symmetric ``|P|`` (both triangles)."""
        out = self.p_col_max(absP)
        if not self.p_diagonal:
            np.maximum.at(out, self.prow, absP)
        return out

    def a_col_max(self, absA: FloatArray) -> FloatArray:
        """Largest entry per column of ``|A|`` (0 if empty)."""
        out = np.zeros(self.n)
        if self._a_cols.size:
            out[self._a_cols] = np.maximum.reduceat(absA, self._a_starts)
        return out

    def a_row_max(self, absA: FloatArray) -> FloatArray:
        """Largest entry per row of ``|A|`` (0 if empty)."""
        out = np.zeros(self.m)
        np.maximum.at(out, self.arow, absA)
        return out


def equilibrate(P: sp.csc_matrix, q: FloatArray, A: sp.csc_matrix, b: FloatArray,
                blocks: np.ndarray, max_iter: int = 10,
                min_scale: float = 1e-4, max_scale: float = 1e4,
                pattern: Pattern | None = None
                ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, Scaling]:
    """Scale ``(P, q, A, b)`` as Clarabel's equilibration does.

    Parameters
    ----------
    P
        Upper triangle of the objective's quadratic (CSC, canonical).
    q
        Linear objective.
    A
        Constraint matrix (CSC, canonical).
    b
        Constraint right-hand side.
    blocks
        Row indices (one row of this array per cone, shape ``(cones, 3)``) of the cones
        whose rows must share one scale (3-d second-order and power cones).
    max_iter, min_scale, max_scale
        Clarabel's ``equilibrate_max_iter``, ``equilibrate_min_scaling`` and
        ``equilibrate_max_scaling``.
    pattern
        ``(P, A)``'s :class:`Pattern`, if kept (default: computed here).

    Returns
    -------
    P_data, q, A_data, b, scaling
        The scaled values (``P_data`` and ``A_data`` in the inputs' CSC order) and the
        :class:`Scaling`.
    """
    pt = Pattern(P, A) if pattern is None else pattern
    n, m = pt.n, pt.m
    prow, pcol, arow, acol = pt.prow, pt.pcol, pt.arow, pt.acol
    absP = np.abs(np.asarray(P.data, dtype=float))  # scaled in place: the norms' input
    absA = np.abs(np.asarray(A.data, dtype=float))
    absq = np.abs(np.asarray(q, dtype=float))
    d, e, c = np.ones(n), np.ones(m), 1.0
    lo, hi = min_scale, max_scale
    for _ in range(max_iter):
        # KKT column norms: P symmetric (both triangles), then A's columns; A's rows
        dw = np.maximum(pt.p_sym_max(absP), pt.a_col_max(absA))
        ew = pt.a_row_max(absA)
        dw[dw == 0.0] = 1.0
        ew[ew == 0.0] = 1.0
        dw = np.minimum(np.maximum(1.0 / np.sqrt(dw), lo / d), hi / d)
        ew = np.minimum(np.maximum(1.0 / np.sqrt(ew), lo / e), hi / e)
        absP *= dw[prow] * dw[pcol]
        absA *= ew[arow] * dw[acol]
        absq *= dw
        d *= dw
        e *= ew
        mean_p = float(pt.p_col_max(absP).mean()) if n else 0.0
        inf_q = float(absq.max()) if absq.size else 0.0
        if mean_p != 0.0 and inf_q != 0.0:
            ct = min(max(1.0 / max(inf_q, mean_p), lo / c), hi / c)
            absP *= ct
            absq *= ct
            c *= ct
    if blocks.size:
        block = e[blocks]
        e[blocks] = block.mean(axis=1, keepdims=True)
    Pd = np.asarray(P.data, dtype=float) * (d[prow] * d[pcol] * c)
    Ad = np.asarray(A.data, dtype=float) * (e[arow] * d[acol])
    return Pd, np.asarray(q, dtype=float) * d * c, Ad, np.asarray(b, dtype=float) * e, \
        Scaling(d, e, c)
