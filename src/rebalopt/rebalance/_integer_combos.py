"""Pricing many candidate plans at once: the engine of the neighbourhood search
(:mod:`rebalopt.rebalance._integer_lns`) and of the exact enumeration
(:mod:`rebalopt.rebalance._integer_exact`).

A candidate plan differs from the current one in a few *freed* assets. :meth:`price`
prices whole candidate plans (objective and feasibility, every hard kernel's
``totals``); :meth:`_best` finds the best feasible improving combination of given
candidate lot counts over each free set, best first from a lower bound computed on
the freed assets alone. Every pricing is counted in work units (one asset in one
candidate plan).

Units: ``q`` in lots, ``ell`` the weight of one lot, everything else fractions of
pre-trade equity.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_search import LotSearch

__all__ = ["CombinationPricer"]

_CHUNK = 20_000
"""Most candidate plans priced in one call."""


class CombinationPricer:
    """Whole-plan pricing and the best combination over free sets (module docstring).

    A mixin of :class:`~rebalopt.rebalance._integer_lns.Neighbourhoods`, which holds
    the attributes it reads: the local ``search``, the work ``used`` and ``stats``.
    """

    search: LotSearch
    used: int
    stats: dict[str, int]

    def price(self, q: FloatArray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective and feasibility of each column of ``Q`` (lot counts, ``(n, m)``).

        Columns differ from ``q`` in a few assets; the risk term is updated from
        ``q``'s through the changed entries only. The objective includes the soft
        penalties, exactly as :meth:`LotSearch.objective`.
        """
        S = self.search
        n, m = Q.shape
        self.used += n * m
        Z = Q * S.ell[:, None]
        W = S.w0[:, None] + Z
        cost = S.costs(Z)
        CASH = S.c0 - Z.sum(axis=0) - cost.sum(axis=0)
        d0 = S.w0 + q * S.ell - S.wt
        rows, cols = np.nonzero(Q != q[:, None])
        delta = (Q[rows, cols] - q[rows]) * S.ell[rows]
        GD = np.repeat((S.G.T @ d0)[:, None], m, axis=1)
        if S.G.shape[1] and rows.size:
            Dm = sp.csc_matrix((delta, (rows, cols)), shape=(n, m))
            GD = GD + (Dm.T @ S.G).T
        D = W - S.wt[:, None]
        obj = cost.sum(axis=0) + 0.5 * S.gT * ((GD * GD).sum(axis=0)
                                              + ((S.s * S.s) @ (D * D)))
        if S.alpha is not None:
            obj = obj - S.alpha @ W
        for k, pen in S.soft:
            obj = obj + pen * k.totals(Z, W, CASH)
        ok = np.ones(m, dtype=bool)
        for k in S.hard:
            ok &= k.totals(Z, W, CASH) <= S.tol
        return obj, ok

    def _is_close(self, i: int, v: np.ndarray) -> np.ndarray:
        c = self.search.close
        return np.zeros(v.shape, bool) if c is None else (v == c[i])

    def _best(self, q: FloatArray, sets: list[tuple[np.ndarray, list[np.ndarray]]], f: float,
              eps: float, limit: int) -> tuple[FloatArray, float] | None:
        """Best feasible improving combination over every ``(F, candidates)``.

        Best first: every combination's objective *without* the soft penalties (a
        lower bound, as penalties are >= 0) is computed from the freed assets alone
        (their cost, the risk through their rows of ``G`` and ``s``, alpha); those
        below ``f`` are then priced in full, every hard constraint included, in
        increasing order, until the next lower bound cannot beat the best feasible
        one found. The answer is the same as pricing every combination in full,
        unless the work count reaches ``limit`` first (then ``stats["budget_exhausted"]``
        is set and the answer is the best found so far).
        """
        S = self.search
        n = q.shape[0]
        if not sets:
            return None
        seen: dict[int, list[np.ndarray]] = {}
        for F, cands in sets:
            for i, c in zip(F, cands):
                seen.setdefault(int(i), []).append(np.asarray(c, dtype=float))
        col = {i: np.unique(np.concatenate(v)) for i, v in seen.items()}  # sorted values
        Zpad = np.zeros((n, max(len(v) for v in col.values())))
        for i, v in col.items():
            Zpad[i, :len(v)] = v * S.ell[i]
        Ctab = S.costs(Zpad)                       # cost of each candidate value, per asset
        P, cost_q, _ = S.point(q)
        d0 = P.w - S.wt
        gd0 = S.G.T @ d0
        s2 = S.s * S.s
        base = float(cost_q.sum()) + 0.5 * S.gT * (float(gd0 @ gd0) + float(s2 @ (d0 * d0)))
        if S.alpha is not None:
            base -= float(S.alpha @ P.w)
        # every combination of every set as a row (asset indices, lot counts, cost
        # table positions), built per shape of set at once, then back in set order
        slot: dict[tuple[int, int], int] = {}  # (asset, id of its candidates) -> slot
        slots: list[tuple[int, np.ndarray]] = []
        by_size: dict[int, list[tuple[int, list[int], list[int]]]] = {}
        for s_id, (F, cands) in enumerate(sets):
            ks = []
            for i, c in zip(F, cands):
                key = (int(i), id(c))
                if key not in slot:
                    slot[key] = len(slots)
                    slots.append((int(i), np.asarray(c, dtype=float)))
                ks.append(slot[key])
            by_size.setdefault(len(ks), []).append((s_id, ks, [len(c) for c in cands]))
        width = max(len(c) for _, c in slots)
        SV = np.zeros((len(slots), width))                 # candidate values per slot
        SP = np.zeros((len(slots), width), dtype=np.intp)  # their cost table positions
        SI = np.array([i for i, _ in slots], dtype=np.intp)
        for k, (i, c) in enumerate(slots):
            SV[k, :len(c)] = c
            SP[k, :len(c)] = np.searchsorted(col[i], c)
        # per size of set: (sets, combinations, assets) arrays over the largest shape
        # (a set's combinations past its own lengths masked), the bound of every
        # combination at once; in set order, each set's combinations in order
        lbs, kept = [], []
        for p, members in by_size.items():
            G = np.array([ks for _, ks, _ in members], dtype=np.intp)  # (sets, p) slots
            lens = np.array([ln for _, _, ln in members], dtype=np.intp)
            idx = np.indices(tuple(lens.max(axis=0))).reshape(p, -1).T  # (m, p)
            self.used += int(np.prod(lens, axis=1).sum()) * p
            QF = np.stack([SV[G[:, j]][:, idx[:, j]] for j in range(p)], axis=-1)
            F3 = SI[G]                                          # (sets, p) assets
            delta = (QF - q[F3][:, None, :]) * S.ell[F3][:, None, :]
            cost_new = Ctab[F3[:, :1], SP[G[:, 0]][:, idx[:, 0]]]
            for j in range(1, p):
                cost_new = cost_new + Ctab[F3[:, j:j + 1], SP[G[:, j]][:, idx[:, j]]]
            GD = gd0 + np.matmul(delta, S.G[F3])                # (sets, m, k)
            d0F = d0[F3][:, None, :]
            dF = d0F + delta
            lb = (base - cost_q[F3].sum(axis=1)[:, None] + cost_new
                  + 0.5 * S.gT * ((GD * GD).sum(axis=2) - float(gd0 @ gd0)
                                  + (s2[F3][:, None, :] * (dF * dF - d0F * d0F)).sum(axis=2)))
            if S.alpha is not None:
                lb = lb - (delta * S.alpha[F3][:, None, :]).sum(axis=2)
            real = (idx[None, :, :] < lens[:, None, :]).all(axis=2)
            sk, ck = np.nonzero(real & (lb < f - eps))
            if sk.size:
                lbs.append(lb[sk, ck])
                kept.append((F3[sk], QF[sk, ck]))
        if not lbs:
            return None
        lb = np.concatenate(lbs)
        sizes = np.cumsum([0] + [len(x) for x in lbs])
        order = np.argsort(lb, kind="stable")
        best: tuple[float, np.ndarray] | None = None
        start, chunk = 0, 32
        while start < order.size:
            if best is not None and lb[order[start]] >= best[0]:
                break
            if self.used >= limit:
                self.stats["budget_exhausted"] = 1
                break
            take = min(chunk, (limit - self.used) // n + 1)  # stop at the limit, not a chunk past
            pick = order[start:start + take]
            part = np.repeat(q[:, None], pick.size, axis=1)
            run = np.searchsorted(sizes, pick, side="right") - 1
            for r in np.unique(run):
                c = np.flatnonzero(run == r)
                FA, VA = kept[r]
                rows = pick[c] - sizes[r]
                part[FA[rows], c[:, None]] = VA[rows]
            obj, ok = self.price(q, part)
            obj = np.where(ok, obj, np.inf)
            j = int(np.argmin(obj))
            if np.isfinite(obj[j]) and (best is None or obj[j] < best[0]):
                best = (float(obj[j]), part[:, j].copy())
            start += take
            chunk = min(4 * chunk, _CHUNK)
        if best is None or not best[0] < f - eps:
            return None
        q2 = best[1]
        f2 = S.objective(q2)
        if f2 < f - eps and S.feasible(q2):
            return q2, f2
        return None

