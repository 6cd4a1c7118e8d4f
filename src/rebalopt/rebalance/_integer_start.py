"""The start of the lot search on large books: the relaxation rounded asset by asset.

Rounding every trade of the relaxation to the nearest lot leaves a 100-share-lot book
of 500 names under invested (most targets are a fraction of a lot, so most trades
round down), and the descent that follows spends the idle cash on the moves with the
largest gain: the biggest lots (a lot of 100 GOOGL is 2.3% of a $10M book against a
0.3% target). Those lots then took the big-lot neighbourhood some 130 moves to sell
again (bench_integer (b): plans at 3.7-4.4 bps before the neighbourhoods, 2.4-2.6
after them).

Here instead:

* :func:`guided_box`: each asset's lot count is kept, for a first descent, within one
  median lot's weight of its relaxed count (the nearest count always allowed), so a
  big lot the relaxation does not want is not bought to fill cash;
* :func:`sequential_round`: the relaxed counts are rounded biggest lot first (one
  asset at a time among the biggest, then in small blocks), each to the count in
  its box that lowers the objective most given the assets already rounded (at their
  counts) and the others (at their relaxed counts): the factor exposure each
  rounding leaves is made up by the next, smaller lots (error feedback through the
  risk model's loadings).

The search then repairs and descends inside the box, and runs in full (repair,
descent, pairs, chains) from there (:meth:`SearchPhases._guided
<rebalopt.rebalance._integer_phases.SearchPhases._guided>`). Deterministic: no
budget, a fixed order (lot weight, then asset index).

Units: lot counts; weights as fractions of pre-trade equity.
"""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_search import LotSearch

__all__ = ["BLOCK", "GUIDED_ASSETS", "GUIDE_LOTS", "ZERO_LOTS", "blocks", "guided_box",
           "sequential_round"]

GUIDED_ASSETS = 100
"""Books of more than this many assets start from :func:`sequential_round` in
:func:`guided_box` (smaller books keep the nearest rounding: the brute-force family,
3-6 assets, is at the optimum in every case)."""

BLOCK = 8
"""Most assets rounded together in :func:`sequential_round` (blocks double from one):
on bench_integer (b) rounding one at a time took 8 ms (a Python step per asset),
blocks of at most 8 about 1.5 ms with plans as good (9 states, median 2.450 and
2.448 bps; blocks of 32: 2.458)."""

GUIDE_LOTS = 1.0
"""Half-width of the guided box, in median lot weights of the book."""

ZERO_LOTS = 10.0
"""Lots up to which a per-order minimum (or fee) must bind for :func:`sequential_round`
to offer an asset no trade beside its box (whole shares at $0.005 a share and a $1
minimum: 200 lots; 100-share lots: 2, where no trade is offered only inside the box)."""


def guided_box(S: LotSearch, k: FloatArray, q0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Lot-count bounds within ``GUIDE_LOTS`` median lot weights of the relaxed counts ``k``.

    Per asset: the count below ``k`` (``floor``) when it is within that weight of
    ``k``, else the nearest count, and the same above; intersected with the search's
    box and widened to hold the start ``q0`` (the nearest count, or an odd-lot
    close). Where ``k`` is NaN (an asset the relaxation did not price), the search's
    own bounds.
    """
    ell = S.ell
    tol = GUIDE_LOTS * float(np.median(ell))
    r = np.round(k)
    fl, ce = np.floor(k), np.ceil(k)
    with np.errstate(invalid="ignore"):
        lo = np.maximum(S.lo, np.where((k - fl) * ell <= tol, fl, r))
        hi = np.minimum(S.hi, np.where((ce - k) * ell <= tol, ce, r))
    start = S.clip(q0)
    lo, hi = np.minimum(lo, start), np.maximum(hi, start)
    ok = ~np.isnan(k)
    return np.where(ok, lo, S.lo), np.where(ok, hi, S.hi)


def sequential_round(S: LotSearch, k: FloatArray, lo: FloatArray, hi: FloatArray,
                     q0: FloatArray) -> FloatArray:
    """The relaxed counts ``k`` rounded one asset at a time into ``[lo, hi]`` (module docstring).

    Assets are taken by lot weight, largest first (ties by index), in the blocks of
    :func:`blocks` (one at a time among the biggest lots, then up to ``BLOCK``
    together). Each gets the whole count in ``[lo, hi]`` (at most 9 values from
    ``lo``) with the lowest objective change: its full cost change from its relaxed
    count and the risk change ``gamma T (delta (Sigma d)_i + delta^2 Sigma_ii / 2)``
    at the plan of the earlier blocks' rounded counts and everyone else's relaxed
    counts, minus alpha; ties to the lower count. An asset
    without a choice (``lo == hi``), with a NaN ``k`` or a bound off the lot grid (an
    odd-lot close) keeps ``q0``. Constraints are left to the repair that follows.
    """
    ell = S.ell
    q = np.array(q0, dtype=float)
    choice = ~np.isnan(k) & (hi > lo) & (lo == np.floor(lo)) & (hi == np.floor(hi))
    kk = np.where(choice, k, q)  # assets without a choice sit at their start
    d = S.w0 + kk * ell - S.wt
    idx = np.flatnonzero(choice)
    if idx.size == 0:
        return q
    width = int(min(float(np.max(hi[idx] - lo[idx])), 8.0))
    cand = np.minimum(lo[idx, None] + np.arange(width + 1.0)[None, :], hi[idx, None])
    floor = S.costs.order_floor() if hasattr(S.costs, "order_floor") else None
    if floor is not None and np.any(floor > 0):
        # no trade, where it lies outside the box and the relaxed trade is small
        # enough for a per-order minimum or fee to bind (elsewhere the box's count)
        small = (np.abs(kk[idx] * ell[idx]) < floor[idx]) & (floor[idx] >= ZERO_LOTS * ell[idx])
        none = np.where(small & ((lo[idx] > 0) | (hi[idx] < 0)), 0.0, cand[:, 0])
        cand = np.concatenate([cand, none[:, None]], axis=1)
    C = S.costs.price_rows(cand * ell[idx, None], idx) if hasattr(S.costs, "price_rows") \
        else S.costs(_full(cand * ell[idx, None], idx, S.ell.size))[idx]
    Ck = S.costs(kk * ell)[idx]
    delta = (cand - kk[idx, None]) * ell[idx, None]  # weight change from the relaxed count
    own = C - Ck[:, None] + 0.5 * S.gT * S.Sii[idx, None] * delta * delta
    if S.alpha is not None:
        own = own - S.alpha[idx, None] * delta
    grad = S.gT * delta  # times (Sigma d)_i
    order = np.argsort(-ell[idx], kind="stable")
    G = S.G[idx][order]
    s2d = S.s2[idx][order] * d[idx][order]
    own, grad, cand, delta = own[order], grad[order], cand[order], delta[order]
    u = S.G.T @ d
    rows = np.arange(idx.size)
    for b in blocks(idx.size):
        sd = G[b] @ u + s2d[b]
        j = np.argmin(own[b] + grad[b] * sd[:, None], axis=1)  # ties: the lower count
        dv = delta[b][rows[:j.size], j]
        u = u + G[b].T @ dv
        q[idx[order[b]]] = cand[b][rows[:j.size], j]
    return q


def blocks(m: int) -> list[slice]:
    """The blocks :func:`sequential_round` rounds together, in order, over ``m`` assets
    sorted by lot weight: sizes 1, 2, 4, ... up to ``BLOCK``."""
    out, start, size = [], 0, 1
    while start < m:
        out.append(slice(start, min(start + size, m)))
        start += size
        size = min(2 * size, BLOCK)
    return out


def _full(Z: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``Z`` (rows ``rows`` of a table) placed in a zero table of ``n`` rows."""
    out = np.zeros((n, Z.shape[1]))
    out[rows] = Z
    return out
