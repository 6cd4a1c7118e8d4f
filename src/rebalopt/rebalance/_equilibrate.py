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


STREAMS = 4
"""Streams :class:`Pattern` interleaves ``A``'s entries into (see :func:`interleaved`)."""


def interleaved(m: int, streams: int = STREAMS) -> np.ndarray:
    """``0 .. m-1`` cut into ``streams`` runs of consecutive entries and taken in turn
    (entry ``p`` of every run, then entry ``p + 1``, ...).

    ``np.maximum.at`` over indices in compressed-column order updates one column's
    norm several times in a row, each update waiting for the one before (about twice
    the time at 500 assets); in turn, consecutive updates touch different columns. A
    maximum does not round, so the order changes no value."""
    cuts = (np.arange(streams + 1) * m) // streams
    run = np.repeat(np.arange(streams), np.diff(cuts))
    return np.argsort((np.arange(m) - cuts[run]) * streams + run, kind="stable")


class Pattern:
    """Index arrays of one sparsity pattern of ``(P, A)`` as one symmetric KKT matrix
    ``[[P, A'], [A, 0]]`` (``P``'s entries, then ``A``'s at rows ``n + i``), computed
    once per structure (a kept solver keeps them with its structure).

    The Ruiz loop keeps ``|K|``'s entries as ``P``'s in compressed-column order, then
    ``A``'s in the order ``a_order`` (:func:`interleaved`); ``i`` and ``j`` are each
    kept entry's two KKT indices."""

    def __init__(self, P: sp.csc_matrix, A: sp.csc_matrix) -> None:
        self.n, self.m = P.shape[0], A.shape[0]
        self.np_ = int(P.nnz)
        pcol = np.repeat(np.arange(self.n), np.diff(P.indptr))
        acol = np.repeat(np.arange(self.n), np.diff(A.indptr))
        self.a_order = interleaved(int(A.nnz))
        # every entry's two KKT indices (row, column): a column's norm is the largest
        # entry touching its index in either place (the matrix is symmetric)
        self.i = np.concatenate([np.asarray(P.indices, dtype=np.intp),
                                 self.n + np.asarray(A.indices, dtype=np.intp)[self.a_order]])
        self.j = np.concatenate([pcol, acol[self.a_order]]).astype(np.intp)
        self.pcol = pcol
        self.acol = acol
        self._p_cols = np.flatnonzero(np.diff(P.indptr))
        self._p_starts = P.indptr[self._p_cols]
        # P with one entry per non-empty column (a diagonal): its column maxima are
        # its entries, in the same order
        self._p_single = self._p_cols.size == self.np_
        # the norms' starting values: 0 where an entry can raise it, 1 (the scale an
        # empty column gets) where none can
        self._start = np.ones(self.n + self.m)
        self._start[self.i] = 0.0
        self._start[self.j] = 0.0

    def scale_norms(self, absK: FloatArray, out: FloatArray) -> FloatArray:
        """Largest entry per KKT column of ``|K|``, 1 where that is 0 (an empty column,
        or only zeros): the norms a scale is taken of, length ``n + m``, written into
        ``out``."""
        np.copyto(out, self._start)
        np.maximum.at(out, self.i, absK)
        np.maximum.at(out, self.j, absK)
        if not out.all():  # an explicit zero entry alone in its column
            out[out == 0.0] = 1.0
        return out

    def p_col_mean(self, absK: FloatArray) -> float:
        """Mean over the ``n`` columns of the largest entry of ``|P|``'s stored triangle."""
        if not self._p_cols.size:
            return 0.0
        if self._p_single:
            return float(absK[:self.np_].sum() / self.n)
        return float(np.maximum.reduceat(absK[:self.np_], self._p_starts).sum() / self.n)


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
    absK = np.abs(np.concatenate([np.asarray(P.data, dtype=float),  # scaled in place
                                  np.asarray(A.data, dtype=float)[pt.a_order]]))
    absq = np.abs(np.asarray(q, dtype=float))
    sc = np.ones(n + m)  # [d; e]
    c = 1.0
    lo, hi = min_scale, max_scale
    ki, kj = pt.i, pt.j
    # scratch reused across iterations: the same operations in the same order as
    # the plain expressions (bit for bit), without a temporary per step
    w = np.empty(n + m)
    bound = np.empty(n + m)
    wk = np.empty(ki.size)
    wj = np.empty(ki.size)
    for _ in range(max_iter):
        pt.scale_norms(absK, w)
        np.sqrt(w, out=w)
        np.divide(1.0, w, out=w)
        np.maximum(w, np.divide(lo, sc, out=bound), out=w)
        np.minimum(w, np.divide(hi, sc, out=bound), out=w)
        # mode "clip" (indices are in range): "raise" with ``out`` buffers a copy
        w.take(ki, out=wk, mode="clip")
        wk *= w.take(kj, out=wj, mode="clip")
        absK *= wk
        absq *= w[:n]
        sc *= w
        mean_p = pt.p_col_mean(absK) if n else 0.0
        inf_q = float(absq.max()) if absq.size else 0.0
        if mean_p != 0.0 and inf_q != 0.0:
            ct = min(max(1.0 / max(inf_q, mean_p), lo / c), hi / c)
            absK[:pt.np_] *= ct
            absq *= ct
            c *= ct
    d, e = sc[:n].copy(), sc[n:].copy()
    if blocks.size:
        block = e[blocks]
        e[blocks] = block.mean(axis=1, keepdims=True)
    Pd = np.asarray(P.data, dtype=float) * (d[P.indices] * d[pt.pcol] * c)
    Ad = np.asarray(A.data, dtype=float) * (e[A.indices] * d[pt.acol])
    return Pd, np.asarray(q, dtype=float) * d * c, Ad, np.asarray(b, dtype=float) * e, \
        Scaling(d, e, c)
