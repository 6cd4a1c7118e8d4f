"""The equilibration's fast kernels answer bit for bit what the plain Ruiz loop does.

Oracle: the plain loop as it stood before the kernels (``np.maximum.at`` norms, one
temporary per step, ``maximum.reduceat`` over the objective's columns), kept here
verbatim, on random programs (hypothesis): empty rows and columns, explicit zeros,
diagonal and non-diagonal objectives, cone blocks, both with a kept and a fresh
:class:`Pattern`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt.rebalance._equilibrate import Pattern, equilibrate


def _reference(P: sp.csc_matrix, q: np.ndarray, A: sp.csc_matrix, b: np.ndarray,
               blocks: np.ndarray, max_iter: int = 10, min_scale: float = 1e-4,
               max_scale: float = 1e4):
    """The plain loop (the module's function at 69743e5, inlined)."""
    n, m = P.shape[0], A.shape[0]
    np_ = int(P.nnz)
    pcol = np.repeat(np.arange(n), np.diff(P.indptr))
    acol = np.repeat(np.arange(n), np.diff(A.indptr))
    ki = np.concatenate([np.asarray(P.indices, dtype=np.int64),
                         n + np.asarray(A.indices, dtype=np.int64)])
    kj = np.concatenate([pcol, acol]).astype(np.int64)
    p_cols = np.flatnonzero(np.diff(P.indptr))
    p_starts = P.indptr[p_cols]
    absK = np.abs(np.concatenate([np.asarray(P.data, dtype=float),
                                  np.asarray(A.data, dtype=float)]))
    absq = np.abs(np.asarray(q, dtype=float))
    sc = np.ones(n + m)
    c = 1.0
    lo, hi = min_scale, max_scale
    for _ in range(max_iter):
        w = np.zeros(n + m)
        np.maximum.at(w, ki, absK)
        np.maximum.at(w, kj, absK)
        w[w == 0.0] = 1.0
        w = np.minimum(np.maximum(1.0 / np.sqrt(w), lo / sc), hi / sc)
        absK *= w[ki] * w[kj]
        absq *= w[:n]
        sc *= w
        mean_p = (float(np.maximum.reduceat(absK[:np_], p_starts).sum() / n)
                  if p_cols.size else 0.0) if n else 0.0
        inf_q = float(absq.max()) if absq.size else 0.0
        if mean_p != 0.0 and inf_q != 0.0:
            ct = min(max(1.0 / max(inf_q, mean_p), lo / c), hi / c)
            absK[:np_] *= ct
            absq *= ct
            c *= ct
    d, e = sc[:n].copy(), sc[n:].copy()
    if blocks.size:
        e[blocks] = e[blocks].mean(axis=1, keepdims=True)
    Pd = np.asarray(P.data, dtype=float) * (d[P.indices] * d[pcol] * c)
    Ad = np.asarray(A.data, dtype=float) * (e[A.indices] * d[kj[np_:]])
    return Pd, np.asarray(q, dtype=float) * d * c, Ad, np.asarray(b, dtype=float) * e, d, e, c


@st.composite
def _programs(draw):
    n = draw(st.integers(1, 12))
    m = draw(st.integers(0, 15))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    magnitude = draw(st.sampled_from([1.0, 1e-6, 1e6]))
    # P: the upper triangle, diagonal or not, some columns empty, some zeros stored
    diag = draw(st.booleans())
    dense = np.triu(rng.normal(size=(n, n)) * magnitude)
    keep = (np.eye(n, dtype=bool) if diag else rng.random((n, n)) < 0.4) & \
        (rng.random(n) < 0.8)[None, :]
    Pm = np.where(keep, dense, 0.0)
    rows, cols = np.nonzero(keep)
    vals = Pm[rows, cols] * (rng.random(rows.size) > 0.1)  # ~10% explicit zeros
    P = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
    # A: random entries over a wide range, empty rows and columns, explicit zeros
    mask = rng.random((m, n)) < draw(st.sampled_from([0.05, 0.3, 0.9]))
    ar, ac = np.nonzero(mask)
    av = rng.normal(size=ar.size) * 10.0 ** rng.uniform(-5, 5, ar.size)
    av[rng.random(ar.size) < 0.05] = 0.0
    A = sp.csc_matrix((av, (ar, ac)), shape=(m, n))
    q = rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3, n) * (rng.random(n) > 0.2)
    b = rng.normal(size=m)
    nb = draw(st.integers(0, m // 3))
    blocks = (rng.permutation(m)[:3 * nb].reshape(nb, 3) if nb
              else np.zeros((0, 3), dtype=np.int64))
    return P, q, A, b, blocks, draw(st.integers(0, 12))


@settings(max_examples=300, deadline=None)
@given(_programs())
def test_equilibration_equals_the_plain_loop_bit_for_bit(prog) -> None:
    P, q, A, b, blocks, iters = prog
    want = _reference(P, q, A, b, blocks, iters)
    for pattern in (None, Pattern(P, A)):
        for _ in range(2):  # a kept pattern's scratch must not leak between solves
            Pd, qs, Ad, bs, sc = equilibrate(P, q, A, b, blocks, iters, pattern=pattern)
            for got, ref in zip((Pd, qs, Ad, bs, sc.d, sc.e), want[:6]):
                assert got.shape == ref.shape
                assert np.array_equal(got, ref), (got, ref)
            assert sc.c == want[6]
