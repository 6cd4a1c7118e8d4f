"""Large-neighbourhood search and exact enumeration for the integer stage's ``round`` mode.

After the local search (:mod:`rebalopt.rebalance._integer_search`) stops, no single
move, pair or chain improves the plan. Three things can still: moving one asset by
several lots at once, exchanging which assets trade under ``MaxTrades`` (one order
dropped, another opened at its best size), and re-sizing a few assets together
when a cap or the cash binds. :class:`Neighbourhoods` does all three the same way:
it frees a small set ``F`` of assets, keeps the others where they are, and prices
*every* combination of a few candidate lot counts per freed asset (a window of
``+-2`` lots, no trade, closing an odd lot, the minimum trade size, the rounded
relaxation and each asset's best count alone), all at once in NumPy, with every
hard constraint through its kernel's ``totals``. The best feasible combination is
taken if it improves; the local search then polishes it and the loop repeats.

Free sets are the singletons (multi-lot moves), then pairs and triples drawn from
the assets that matter: those a move would improve but a constraint blocks, those
that trade (a swap candidate under ``MaxTrades``), those whose count differs from
the rounded relaxation. Everything is counted in *work units* (one unit = one
asset priced in one candidate plan), never in seconds, so the same inputs give the
same plan on any machine and under any load. The local searches the neighbourhoods
hand over to (after an exchange, and the final polish) are capped by the work left
and charged for the moves they make, so ``work`` bounds the whole run.

When the whole problem is small, :meth:`Neighbourhoods.exact` frees every asset
over a box that provably holds the optimum and enumerates it; the result is then a
proof (:class:`Certificate`). Why the box holds the optimum (no alpha, every cost
and soft penalty >= 0, so the objective is at least each of its terms): with
``f_inc`` any feasible plan's objective,

* per-asset hard limits (long-only, bounds, turnover, participation) give ``lo <= q <= hi``;
* ``cost_i(q_i) <= f_inc``;
* ``gamma T / 2 * d' Sigma d >= gamma T / 2 * d_i^2 / (Sigma^-1)_ii`` (the smallest
  quadratic form with ``d_i`` fixed), so ``|d_i| <= sqrt(2 f_inc (Sigma^-1)_ii / (gamma T))``;
* with a minimum trade size, ``0 < |q_i| < kmin_i`` is infeasible.

Units: ``q`` in lots, ``ell`` the weight of one lot, everything else fractions of
pre-trade equity.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_search import LotSearch, SearchResult

__all__ = ["EXACT_ASSETS", "EXACT_WORK", "WORK", "WORK_MIN", "WORK_PER_ASSET", "Certificate",
           "Neighbourhoods", "close_lots", "default_work", "shares_of"]

EXACT_ASSETS = 12
"""Most assets for which the exact enumeration is attempted."""

SWAP_RESEARCH_ASSETS = 50
"""Most assets for which an exchange is followed by a full local re-search."""

WORK = 300_000
"""Largest default work budget of the neighbourhood search (asset-candidate pricings):
about 50,000 candidate plans on a 6-asset book, 600 on a 500-asset one."""

WORK_PER_ASSET = 3_000
"""Default work budget per asset in the book (see :func:`default_work`)."""

WORK_MIN = 20_000
"""Smallest default work budget: small books keep enough for their pair and triple
neighbourhoods, which the exact enumeration then starts from."""

EXACT_WORK = 3_000_000
"""Largest enumeration (asset-candidate pricings) tried as a proof."""

_CHUNK = 20_000


def default_work(n: int) -> int:
    """Default neighbourhood work budget for a book of ``n`` assets (asset-candidate pricings).

    ``WORK_PER_ASSET * n`` between ``WORK_MIN`` and ``WORK``: the search's every
    pricing is linear in ``n``, so a budget in proportion to the book keeps the
    neighbourhood search a bounded multiple of one pass of the local search over it
    (a flat 300,000 let a 30-asset whole-share book spend ten times its relaxation's
    time in the neighbourhoods).
    """
    return int(min(WORK, max(WORK_MIN, WORK_PER_ASSET * int(n))))


def close_lots(holdings: FloatArray, lots: FloatArray, q_lo_cont: FloatArray) -> FloatArray:
    """Lot count that closes each odd-lot position (fractional), NaN where none.

    ``q_lo_cont`` is the continuous lower bound on the trade in lots (per-asset hard
    limits): closing must be allowed by it (a ``no_sell`` restriction forbids it).
    """
    h = np.asarray(holdings, dtype=float)
    lots = np.asarray(lots, dtype=float)
    k = -h / lots
    odd = (h != 0) & (np.abs(k - np.round(k)) > 1e-9)
    ok = odd & (k >= q_lo_cont - 1e-9)
    return np.where(ok, k, np.nan)


def shares_of(q: FloatArray, lots: FloatArray, holdings: FloatArray,
              close: FloatArray | None) -> FloatArray:
    """Trades in shares of lot counts ``q``: ``q * lot``, or exactly ``-holding`` on a close."""
    x = np.asarray(q, dtype=float) * lots
    if close is not None:
        x = np.where(q == close, -np.asarray(holdings, dtype=float), x)
    return np.where(x == 0, 0.0, x)


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


@dataclass
class Neighbourhoods:
    """Large-neighbourhood search over a :class:`LotSearch` (module docstring).

    Parameters
    ----------
    search
        The local search: its pricing data, kernels, box and moves.
    anchor
        The rounded relaxation's lot counts (one candidate per asset).
    work
        Budget in asset-candidate pricings for :meth:`run`.
    exact_work
        Largest enumeration :meth:`exact` takes on (asset-candidate pricings).
    window
        Lots either side of the current count in each freed asset's candidates.
    """

    search: LotSearch
    anchor: FloatArray | None = None
    work: int = WORK
    exact_work: int = EXACT_WORK
    window: int = 2
    used: int = 0
    accepted: int = 0
    sets_tried: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    # -------------------------------------------------------------- pricing
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

    # ----------------------------------------------------------- candidates
    def _values(self, q: FloatArray, i: int, jump: FloatArray, window: int) -> np.ndarray:
        """Candidate lot counts of asset ``i`` around ``q[i]`` (deduplicated, in the box)."""
        S = self.search
        base = np.floor(q[i]) if q[i] == np.floor(q[i]) else q[i]
        vals = [q[i], 0.0]
        for k in range(1, window + 1):
            vals += [S.step(np.array([base]), float(k))[0], S.step(np.array([base]), -float(k))[0]]
        if S.kmin is not None:
            vals += [S.kmin[i], -S.kmin[i]]
        if S.close is not None and not np.isnan(S.close[i]):
            vals.append(S.close[i])
        if self.anchor is not None:
            vals.append(self.anchor[i])
        if np.isfinite(jump[i]):
            vals += [np.floor(jump[i]), np.ceil(jump[i])]
        v = np.unique(np.array(vals, dtype=float))
        v = v[(v >= S.lo[i]) & (v <= S.hi[i])]
        if S.kmin is not None:
            v = v[(v == 0) | (np.abs(v) >= S.kmin[i]) | self._is_close(i, v)]
        return v

    def _is_close(self, i: int, v: np.ndarray) -> np.ndarray:
        c = self.search.close
        return np.zeros(v.shape, bool) if c is None else (v == c[i])

    def _jump(self, q: FloatArray) -> FloatArray:
        """Each asset's best lot count alone (risk and linear cost, others fixed), real-valued."""
        S = self.search
        _, _, Sd = S.point(q)
        h = S.gT * S.Sii * S.ell * S.ell
        g = S.gT * Sd * S.ell
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(h > 0, q - g / h, np.nan)

    def _ranked(self, q: FloatArray, f: float) -> np.ndarray:
        """Assets that matter, most first: blocked improving moves, traded, off the anchor."""
        S = self.search
        _, df, _ = S._singles(q)
        gain = np.min(df, axis=1)                       # best single move, ignoring feasibility
        score = np.where(np.isfinite(gain), -gain, 0.0)
        traded = q != 0
        off = np.zeros(q.shape, bool) if self.anchor is None else (q != self.anchor)
        key = score + (traded | off) * (np.abs(score).max() + 1e-12) * 1e-3
        return np.argsort(-key, kind="stable")

    # ----------------------------------------------------------------- runs
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
        by_shape: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        for s_id, (F, cands) in enumerate(sets):
            ks = []
            for i, c in zip(F, cands):
                key = (int(i), id(c))
                if key not in slot:
                    slot[key] = len(slots)
                    slots.append((int(i), np.asarray(c, dtype=float)))
                ks.append(slot[key])
            by_shape.setdefault(tuple(len(c) for c in cands), []).append((s_id, ks))
        width = max(len(c) for _, c in slots)
        SV = np.zeros((len(slots), width))                 # candidate values per slot
        SP = np.zeros((len(slots), width), dtype=np.intp)  # their cost table positions
        SI = np.array([i for i, _ in slots], dtype=np.intp)
        for k, (i, c) in enumerate(slots):
            SV[k, :len(c)] = c
            SP[k, :len(c)] = np.searchsorted(col[i], c)
        runs: dict[int, tuple[list[tuple[np.ndarray, int]], list[np.ndarray],
                              list[np.ndarray], list[np.ndarray]]] = {}
        for shape, members in by_shape.items():
            idx = np.indices(shape).reshape(len(shape), -1).T  # every index combination
            G = np.array([ks for _, ks in members], dtype=np.intp)  # (sets, p) slots
            g, m, p = G.shape[0], idx.shape[0], len(shape)
            self.used += g * m * p
            QF = np.stack([SV[G[:, j]][:, idx[:, j]] for j in range(p)], axis=-1)
            PF = np.stack([SP[G[:, j]][:, idx[:, j]] for j in range(p)], axis=-1)
            Fs, Vs, Ps, Ids = runs.setdefault(p, ([], [], [], []))
            Fs.append((SI[G], m))
            Vs.append(QF.reshape(g * m, p))
            Ps.append(PF.reshape(g * m, p))
            Ids.append(np.repeat([s_id for s_id, _ in members], m))
        lbs, kept = [], []
        for Fs, Vs, Ps, Ids in runs.values():
            if len(Fs) == 1 and Fs[0][0].shape[0] == 1:  # one set (the enumeration)
                F, VA, PA = Fs[0][0][0], Vs[0], Ps[0]
                FA = np.broadcast_to(F, VA.shape)
                delta = (VA - q[F]) * S.ell[F]
                cost_new = sum(Ctab[int(i), PA[:, j]] for j, i in enumerate(F))
                GD = gd0[None, :] + delta @ S.G[F]
                dF = d0[F] + delta
                lb = (base - float(cost_q[F].sum()) + cost_new
                      + 0.5 * S.gT * ((GD * GD).sum(axis=1) - float(gd0 @ gd0)
                                      + (s2[F] * (dF * dF - d0[F] * d0[F])).sum(axis=1)))
                if S.alpha is not None:
                    lb = lb - delta @ S.alpha[F]
            else:  # many sets of one size: their assets gathered per row, in set order
                back = np.argsort(np.concatenate(Ids), kind="stable")
                FA = np.concatenate([np.repeat(f, m, axis=0) for f, m in Fs])[back]
                VA, PA = np.concatenate(Vs)[back], np.concatenate(Ps)[back]
                delta = (VA - q[FA]) * S.ell[FA]
                cost_new = Ctab[FA[:, 0], PA[:, 0]]
                GD = gd0[None, :] + delta[:, :1] * S.G[FA[:, 0]]
                for j in range(1, FA.shape[1]):
                    cost_new = cost_new + Ctab[FA[:, j], PA[:, j]]
                    GD = GD + delta[:, j:j + 1] * S.G[FA[:, j]]
                dF = d0[FA] + delta
                d0F = d0[FA]
                lb = (base - cost_q[FA].sum(axis=1) + cost_new
                      + 0.5 * S.gT * ((GD * GD).sum(axis=1) - float(gd0 @ gd0)
                                      + (s2[FA] * (dF * dF - d0F * d0F)).sum(axis=1)))
                if S.alpha is not None:
                    lb = lb - (delta * S.alpha[FA]).sum(axis=1)
            keep = lb < f - eps
            if keep.any():
                lbs.append(lb[keep])
                kept.append((FA[keep], VA[keep]))
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

    def _singles(self, q: FloatArray, f: float, eps: float, jump: FloatArray
                 ) -> tuple[FloatArray, float] | None:
        """Best feasible improving move of one asset by any number of lots (one pass).

        Candidates per asset: ``+-1 .. +-window`` lots and ``+-2 window``, no trade,
        the minimum size, the close, the anchor and the asset's best count alone.
        """
        S = self.search
        n = q.shape[0]
        cols = []
        for k in list(range(1, self.window + 1)) + [2 * self.window, 4 * self.window]:
            cols += [S.step(q, float(k)), S.step(q, -float(k))]
        cols.append(np.zeros(n))
        jf = np.where(np.isfinite(jump), jump, q)
        cols += [np.floor(jf), np.ceil(jf)]
        if S.kmin is not None:
            cols += [S.kmin, -S.kmin]
        if S.close is not None:
            cols.append(np.where(np.isnan(S.close), q, S.close))
        if self.anchor is not None:
            cols.append(self.anchor)
        Q = np.stack(cols, axis=1)
        if self.used + Q.size > self.work:
            self.stats["budget_exhausted"] = 1
            return None
        self.used += Q.size
        Q, df, V, _, _ = S._evaluate(q, Q=Q)
        feas = (V <= S.tol).all(axis=0) if V.size else np.ones(df.shape, bool)
        cand = np.where(feas, df, np.inf)
        i, j = np.unravel_index(int(np.argmin(cand)), cand.shape)
        if not cand[i, j] < -eps:
            return None
        q2 = q.copy()
        q2[i] = Q[i, j]
        f2 = S.objective(q2)
        return (q2, f2) if f2 < f - eps else None

    # ------------------------------------------------------- local search
    def _local_costs(self, q: FloatArray) -> tuple[int, int]:
        """Work of one local-search move, and of the stalled pass that ends a search.

        A move prices every asset in each standard move column and in the plan taken
        (``n * (columns + 1)``); the pass that finds no single move also tries the
        pairs and at most ``max_chains`` chain passes of ``2 * chain_width`` one-lot
        columns.
        """
        S = self.search
        n = q.shape[0]
        per_move = n * (S._moves(q).shape[1] + 1)
        stall = per_move + n * (2 * S.pair_width + 2 * S.max_chains * S.chain_width)
        return per_move, stall

    def _local(self, start: FloatArray, anchor: FloatArray | None = None
               ) -> SearchResult | None:
        """``LotSearch.run`` from ``start``, its moves capped by the work left.

        The search's own cap (``max_moves`` per phase) is lowered for this call so
        that its repair and improve phases together cannot spend more than the
        budget left; the moves actually made are charged. ``None`` when the budget
        cannot pay for a single move.
        """
        S = self.search
        per_move, stall = self._local_costs(start)
        moves = (self.work - self.used - stall) // (2 * per_move)
        if moves < 1:
            self.stats["budget_exhausted"] = 1
            return None
        saved = S.max_moves
        S.max_moves = int(min(saved, moves))
        try:
            res = S.run(start, anchor=anchor)
        finally:
            S.max_moves = saved
        self.used += stall + per_move * (res.repair_moves + res.improve_moves + res.pair_moves)
        return res

    def _polish(self, q: FloatArray) -> tuple[FloatArray, bool]:
        """``LotSearch.improve`` from ``q`` (feasible) within the work left; ``(q, ran)``."""
        S = self.search
        per_move, stall = self._local_costs(q)
        moves = (self.work - self.used - stall) // per_move
        if moves < 1:
            self.stats["budget_exhausted"] = 1
            return q, False
        saved = S.max_moves
        S.max_moves = int(min(saved, moves))
        try:
            q2, singles, pairs = S.improve(q)
        finally:
            S.max_moves = saved
        self.used += stall + per_move * (singles + pairs)
        return q2, True

    def _swaps(self, q: FloatArray, f: float, eps: float, jump: FloatArray,
               starts: int = 3) -> tuple[FloatArray, float] | None:
        """Exchange which assets trade: drop one order, open another, then re-search.

        Every traded asset ``i`` (set to no trade) with each of the 6 untraded assets
        that matter most (``j`` set to its best count alone, its minimum size or the
        anchor) is priced; the ``starts`` best feasible exchanges (or the best ones
        when none is feasible) are repaired and improved by the local search, and the
        best result is taken if it improves. The re-search has the jump to the
        anchor's count among its moves (a dropped order comes back in one move, not
        one lot per move: with whole shares that walk took up to ``max_moves`` moves
        per start) and is capped by the work left (:meth:`_local`).
        """
        S = self.search
        n = q.shape[0]
        traded = np.flatnonzero(q != 0)
        idle = np.flatnonzero(q == 0)
        if traded.size == 0 or idle.size == 0:
            return None
        order = self._ranked(q, f)
        idle = np.array([i for i in order if q[i] == 0][:6])
        drop = traded[(S.lo[traded] <= 0) & (S.hi[traded] >= 0)]  # orders that may go
        blocks = []  # per idle asset j: its candidate values (sorted)
        for j in idle:
            vals = {np.floor(jump[j]), np.ceil(jump[j])} if np.isfinite(jump[j]) else set()
            if self.anchor is not None:
                vals.add(self.anchor[j])
            if S.kmin is not None:
                vals |= {S.kmin[j], -S.kmin[j]}
            vals = {v for v in vals if v != 0 and S.lo[j] <= v <= S.hi[j]}
            blocks.append((int(j), np.array(sorted(vals), dtype=float)))
        m = drop.size * sum(v.size for _, v in blocks)
        if m == 0:
            return None
        if self.used + n * m > self.work:  # before building the (n, m) candidates
            self.stats["budget_exhausted"] = 1
            return None
        Q = np.repeat(q[:, None], m, axis=1)  # columns: per j, per dropped i, per value
        at = 0
        for j, vals in blocks:
            k = drop.size * vals.size
            cols = np.arange(at, at + k)
            Q[j, cols] = np.tile(vals, drop.size)
            Q[np.repeat(drop, vals.size), cols] = 0.0
            at += k
        obj, ok = self.price(q, Q)
        key = np.where(ok, obj, obj + 1e6 * (1 + abs(f)))
        best: tuple[FloatArray, float] | None = None
        if n > SWAP_RESEARCH_ASSETS:  # large books: the exchange alone, no re-search
            j = int(np.argmin(np.where(ok, obj, np.inf)))
            if ok[j] and obj[j] < f - eps:
                f2 = S.objective(Q[:, j])
                if f2 < f - eps and S.feasible(Q[:, j]):
                    return Q[:, j].copy(), f2
            return None
        back = self.anchor if self.anchor is not None else q
        for j in np.argsort(key, kind="stable")[:starts]:
            res = self._local(Q[:, j], anchor=back)
            if res is None:
                break
            if res.feasible and res.objective < f - eps and (best is None or
                                                             res.objective < best[1]):
                best = (res.q, res.objective)
        return best

    def run(self, q: FloatArray, max_rounds: int = 40) -> FloatArray:
        """Improve ``q`` (feasible) by neighbourhood moves within the work budget.

        Each round takes the first improvement among: the best multi-lot single move,
        then the best combination over each free pair (of the 10 assets that matter
        most) and triple (of the 6), then an exchange of which assets trade. When
        none improves, the local search's own moves (pairs, chains) get one more try
        on books of up to ``SWAP_RESEARCH_ASSETS`` assets; the loop ends when they
        fail too.
        """
        S = self.search
        n = q.shape[0]
        q = q.copy()
        f = S.objective(q)
        polished = False
        for _ in range(max_rounds):
            if self.used >= self.work:
                self.stats["budget_exhausted"] = 1
                break
            eps = 1e-13 + 1e-10 * abs(f)
            jump = self._jump(q)
            moved = self._singles(q, f, eps, jump)
            if moved is None and n > 1:
                order = self._ranked(q, f)
                free = [np.array(c) for c in itertools.combinations(sorted(order[:10]), 2)]
                free += [np.array(c) for c in itertools.combinations(sorted(order[:6]), 3)]
                wide = {int(i): self._values(q, int(i), jump, self.window) for i in order[:10]}
                narrow = {int(i): self._values(q, int(i), jump, 1) for i in order[:6]}
                sets, planned = [], 0
                for F in free:
                    pick = wide if len(F) == 2 else narrow
                    cands = [pick[int(i)] for i in F]
                    cost = len(F) * int(np.prod([len(c) for c in cands]))
                    if self.used + planned + cost > self.work:
                        self.stats["budget_exhausted"] = 1
                        continue
                    planned += cost
                    sets.append((F, cands))
                self.sets_tried += len(sets)
                moved = self._best(q, sets, f, eps, limit=self.work)
            if moved is None and n > 1 and self.used < self.work:
                moved = self._swaps(q, f, eps, jump)
            if moved is None:
                if polished or n > SWAP_RESEARCH_ASSETS:
                    break
                q2, ran = self._polish(q)
                polished = True
                if not ran:
                    break
                f2 = S.objective(q2)
                if not f2 < f - eps:
                    break
                moved = (q2, f2)
            else:
                polished = False
                self.accepted += 1
            q, f = moved
        return q

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
        better = self._best(q, [(np.arange(n), vals)], f, 1e-13 + 1e-10 * abs(f),
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
