"""Exact enumeration for the integer stage's ``round`` mode on small books.

When the whole problem is small, :meth:`Enumeration.exact` frees every asset over a
box that provably holds the optimum and enumerates it (through
:meth:`~rebalopt.rebalance._integer_combos.CombinationPricer._best`); the result is
then a proof (:class:`Certificate`). Why the box holds the optimum (no alpha, every
cost and soft penalty >= 0, so the objective is at least each of its terms): with
``f_inc`` any feasible plan's objective,

* per-asset hard limits (long-only, bounds, turnover, participation) give ``lo <= q <= hi``;
* ``cost_i(q_i) <= f_inc``;
* ``gamma T / 2 * d' Sigma d >= gamma T / 2 * d_i^2 / (Sigma^-1)_ii`` (the smallest
  quadratic form with ``d_i`` fixed), so ``|d_i| <= sqrt(2 f_inc (Sigma^-1)_ii / (gamma T))``;
* with a minimum trade size, ``0 < |q_i| < kmin_i`` is infeasible.

With no incumbent, the per-asset box holds every feasible plan, so an enumeration
that finds none proves that no plan meets the hard constraints
(:meth:`Enumeration.find_feasible`).

Units: ``q`` in lots, ``ell`` the weight of one lot, everything else fractions of
pre-trade equity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_combos import CombinationPricer
from rebalopt.rebalance._integer_descent import gain_eps

__all__ = ["EXACT_ASSETS", "EXACT_WORK", "Certificate", "Enumeration"]

EXACT_ASSETS = 12
"""Most assets for which the exact enumeration is attempted."""

EXACT_WORK = 3_000_000
"""Largest enumeration (asset-candidate pricings) tried as a proof."""


@dataclass
class Certificate:
    """What is proven about a plan's objective.

    Attributes
    ----------
    lower_bound
        No plan in ``covers`` has a lower objective (fraction of equity).
    source
        Where the bound comes from: ``"relaxation"``, ``"enumeration"``, ``"mip"``.
    covers
        The set of plans the bound is proven over, in words.
    proven_optimal
        The plan's objective equals the bound (up to ``1e-9`` relative).
    """

    lower_bound: float
    source: str
    covers: str
    proven_optimal: bool = False


class Enumeration(CombinationPricer):
    """The provable box around the optimum, enumerated (module docstring).

    A mixin of :class:`~rebalopt.rebalance._integer_lns.Neighbourhoods`, which holds
    ``exact_work``, the largest enumeration taken on (asset-candidate pricings).
    """

    exact_work: int

    def box_values(self, f_inc: float, Sinv_diag: FloatArray | None) -> list[np.ndarray] | None:
        """Per asset, every lot count the optimum may take (module docstring), or ``None``."""
        S = self.search
        n = S.w0.shape[0]
        out = []
        d_lo = np.full(n, -np.inf)
        d_hi = np.full(n, np.inf)
        if Sinv_diag is not None and S.gT > 0:
            r = np.sqrt(2.0 * max(f_inc, 0.0) * Sinv_diag / S.gT) * (1 + 1e-9) + 1e-12
            d_lo, d_hi = -r, r
        base = S.wt - S.w0  # trade that reaches the target
        for i in range(n):
            lo = np.ceil(max(S.lo[i], (base[i] + d_lo[i]) / S.ell[i]) - 1e-9)
            hi = np.floor(min(S.hi[i], (base[i] + d_hi[i]) / S.ell[i]) + 1e-9)
            if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo > 1e5:
                return None
            v = np.arange(lo, hi + 1.0)
            v = np.union1d(v, [0.0] if S.lo[i] <= 0 <= S.hi[i] else [])
            c = None if S.close is None else S.close[i]
            if c is not None and not np.isnan(c) and base[i] + d_lo[i] <= c * S.ell[i] + 1e-12:
                v = np.union1d(v, [c])
            if S.kmin is not None:
                v = v[(v == 0) | (np.abs(v) >= S.kmin[i]) | self._is_close(i, v)]
            out.append(v)
        if sum(np.log(max(len(v), 1)) for v in out) > np.log(50.0 * self.exact_work / n):
            return None  # far too large even before the cost filter
        # each asset's cost alone may not exceed the incumbent (one padded call)
        width = max(len(v) for v in out)
        Z = np.zeros((n, width))
        for i, v in enumerate(out):
            Z[i, :len(v)] = v * S.ell[i]
        C = S.costs(Z)
        return [v[C[i, :len(v)] <= f_inc * (1 + 1e-9) + 1e-15] for i, v in enumerate(out)]

    def exact(self, q: FloatArray, Sinv_diag: FloatArray | None
              ) -> tuple[FloatArray, bool]:
        """Enumerate the provable box around the optimum when it is small enough.

        Returns ``(q, proven)``: the best plan found (``q`` itself when not better)
        and whether the enumeration covered the box (a proof of optimality).
        """
        S = self.search
        f = S.objective(q)
        vals = self.box_values(f, Sinv_diag)
        if vals is None:
            return q, False
        n = q.shape[0]
        m = int(np.prod([float(len(v)) for v in vals]))
        if n * m > self.exact_work:
            return q, False
        self.stats["exact_plans"] = m
        # sized to fit exact_work: bounding n * m plans, then pricing at most as many
        better = self._best(q, [(np.arange(n), vals)], f, gain_eps(f),
                            limit=self.used + 2 * n * m) if m > 1 else None
        return (better[0] if better is not None else q), True

    def find_feasible(self, q: FloatArray) -> tuple[FloatArray | None, bool]:
        """Enumerate the per-asset box (no incumbent) for a feasible plan.

        Returns ``(plan or None, covered)``: ``covered`` means the whole box (which
        holds every feasible plan: per-asset hard limits only) was enumerated, so
        ``None`` proves that no plan meets the hard constraints.
        """
        n = q.shape[0]
        vals = self.box_values(np.inf, None)
        if vals is None:
            return None, False
        m = int(np.prod([float(len(v)) for v in vals]))
        if n * m > self.exact_work:
            return None, False
        self.stats["exact_plans"] = m
        found = self._best(q, [(np.arange(n), vals)], np.inf, 0.0,
                           limit=self.used + 2 * n * m)
        return (None, True) if found is None else (found[0], True)
