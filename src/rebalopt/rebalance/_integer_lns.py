"""Large-neighbourhood search for the integer stage's ``round`` mode.

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
A fourth move is not a combination of a few assets: selling one *big* lot (worth
many median lots) and re-investing its cash by greedy single moves
(:meth:`Neighbourhoods._big_lots`), which the local search cannot do once such a lot
is bought while the book is under invested.

Free sets are the singletons (multi-lot moves), then pairs and triples drawn from
the assets that matter: those a move would improve but a constraint blocks, those
that trade (a swap candidate under ``MaxTrades``), those whose count differs from
the rounded relaxation. Everything is counted in *work units* (one unit = one
asset priced in one candidate plan), never in seconds, so the same inputs give the
same plan on any machine and under any load. The local searches the neighbourhoods
hand over to (after an exchange, and the polish when nothing else improves) are
capped by the work left and charged for the moves and chain passes they make, so
``work`` bounds the neighbourhood rounds. A plan the rounds changed then gets one
more local search, bounded like the one before the neighbourhoods by its own
counts (moves, chain work), so the plan handed back is a local optimum of the local
search's moves (single moves, one-lot pairs) even when the budget ran out.

Pricing candidate plans is :mod:`rebalopt.rebalance._integer_combos`; on small
books, the exact enumeration that proves a plan optimal is
:mod:`rebalopt.rebalance._integer_exact` (both mixed into :class:`Neighbourhoods`).

Units: ``q`` in lots, ``ell`` the weight of one lot, everything else fractions of
pre-trade equity.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_descent import descend, gain_eps
from rebalopt.rebalance._integer_exact import EXACT_WORK, Enumeration
from rebalopt.rebalance._integer_search import LotSearch, SearchResult
from rebalopt.rebalance._integer_start import GUIDED_ASSETS

__all__ = ["BIG_LOT", "BIG_LOT_BUYS", "BIG_LOT_TRIES", "SWAP_RESEARCH_ASSETS", "WORK",
           "WORK_MIN", "WORK_PER_ASSET", "Neighbourhoods", "close_lots", "default_work",
           "shares_of"]

SWAP_RESEARCH_ASSETS = 50
"""Most assets for which an exchange is followed by a full local re-search."""

BIG_LOT = 4.0
"""A lot is *big* when its weight exceeds this multiple of the book's median lot weight
(:meth:`Neighbourhoods._big_lots`)."""

BIG_LOT_TRIES = 4
"""Most big-lot assets (most above target first) tried per round, until one pays."""

BIG_LOT_BUYS = 64
"""Most greedy moves re-investing one big lot's cash."""

WORK = 300_000
"""Largest default work budget of the neighbourhood search (asset-candidate pricings):
about 50,000 candidate plans on a 6-asset book, 600 on a 500-asset one."""

WORK_PER_ASSET = 3_000
"""Default work budget per asset in the book (see :func:`default_work`)."""

WORK_MIN = 20_000
"""Smallest default work budget: small books keep enough for their pair and triple
neighbourhoods, which the exact enumeration then starts from."""


def default_work(n: int) -> int:
    """Default neighbourhood work budget for a book of ``n`` assets (asset-candidate pricings).

    ``WORK_PER_ASSET * n`` between ``WORK_MIN`` and ``WORK``: the search's every
    pricing is linear in ``n``, so a budget in proportion to the book keeps the
    neighbourhood search a bounded multiple of one pass of the local search over it
    (a flat 300,000 let a 30-asset whole-share book spend ten times its relaxation's
    time in the neighbourhoods). Books of more than ``GUIDED_ASSETS`` assets, whose
    search starts from the relaxation rounded asset by asset
    (:mod:`~rebalopt.rebalance._integer_start`), get ``WORK_MIN``: on bench_integer
    (b) the neighbourhoods then found little (9 states, median 2.444 bps at 20,000,
    2.440 at 100,000, 2.437 at 300,000, for some 5, 15 and 30 ms more).
    """
    if n > GUIDED_ASSETS:
        return WORK_MIN
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
class Neighbourhoods(Enumeration):
    """Large-neighbourhood search over a :class:`LotSearch` (module docstring), and the
    exact enumeration (:class:`~rebalopt.rebalance._integer_exact.Enumeration`).

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
    _ranks: tuple[FloatArray, np.ndarray] | None = field(default=None, init=False, repr=False)
    _big_failed: set[int] = field(default_factory=set, init=False, repr=False)

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

    def _jump(self, q: FloatArray) -> FloatArray:
        """Each asset's best lot count alone (risk and linear cost, others fixed), real-valued."""
        S = self.search
        _, _, Sd = S.point(q)
        h = S.gT * S.Sii * S.ell * S.ell
        g = S.gT * Sd * S.ell
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(h > 0, q - g / h, np.nan)

    def _ranked(self, q: FloatArray, f: float) -> np.ndarray:
        """Assets that matter, most first: blocked improving moves, traded, off the anchor.

        The last ranking is kept (a round ranks for its free sets, then for its
        exchanges, at the same plan).
        """
        if self._ranks is not None and np.array_equal(self._ranks[0], q):
            return self._ranks[1]
        S = self.search
        _, df, _ = S._singles(q)
        gain = np.min(df, axis=1)                       # best single move, ignoring feasibility
        score = np.where(np.isfinite(gain), -gain, 0.0)
        traded = q != 0
        off = np.zeros(q.shape, bool) if self.anchor is None else (q != self.anchor)
        key = score + (traded | off) * (np.abs(score).max() + 1e-12) * 1e-3
        order = np.argsort(-key, kind="stable")
        self._ranks = (q.copy(), order)
        return order

    # ----------------------------------------------------------------- runs
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
        pairs and one chain pass of ``2 * chain_width`` one-lot columns. The chain
        passes a search makes are charged after it (:meth:`_charge`).
        """
        S = self.search
        n = q.shape[0]
        per_move = n * (S._moves(q).shape[1] + 1)
        stall = per_move + n * 2 * S.pair_width + S.chain_cost(n)
        return per_move, stall

    def _split(self, n: int, stall: int) -> tuple[int, int]:
        """The work left after a local search's stalled pass, split between its moves
        and its chain passes beyond the first: ``(work for moves, chain_work)``.

        When the search's own chain budget is below half of what is left, its moves
        get the rest; the two together never exceed the work left.
        """
        S = self.search
        left = max(self.work - self.used - stall, 0)
        extra = min(S.chain_work, left // 2)
        return left - extra, S.chain_cost(n) + extra

    def _charge(self, n: int, per_move: int, stall: int, moves: int) -> None:
        """Charge a local search: its moves, its stalled pass, and its chain passes
        beyond the one the stalled pass holds."""
        S = self.search
        self.used += stall + per_move * moves + max(S.chain_passes - 1, 0) * S.chain_cost(n)

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
        left, chains = self._split(start.shape[0], stall)
        moves = left // (2 * per_move)
        if moves < 1:
            self.stats["budget_exhausted"] = 1
            return None
        saved = S.max_moves, S.chain_work
        S.max_moves, S.chain_work = int(min(saved[0], moves)), int(min(saved[1], chains))
        try:
            res = S.run(start, anchor=anchor)
        finally:
            S.max_moves, S.chain_work = saved
        self._charge(start.shape[0], per_move, stall,
                     res.repair_moves + res.improve_moves + res.pair_moves)
        return res

    def _polish(self, q: FloatArray) -> tuple[FloatArray, bool]:
        """``LotSearch.improve`` from ``q`` (feasible) within the work left; ``(q, ran)``."""
        S = self.search
        per_move, stall = self._local_costs(q)
        left, chains = self._split(q.shape[0], stall)
        moves = left // per_move
        if moves < 1:
            self.stats["budget_exhausted"] = 1
            return q, False
        saved = S.max_moves, S.chain_work
        S.max_moves, S.chain_work = int(min(saved[0], moves)), int(min(saved[1], chains))
        try:
            q2, singles, pairs = S.improve(q)
        finally:
            S.max_moves, S.chain_work = saved
        self._charge(q.shape[0], per_move, stall, singles + pairs)
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

    def _big_lots(self, q: FloatArray, f: float, eps: float) -> tuple[FloatArray, float] | None:
        """Sell (or decline) one big lot and re-invest its cash by greedy single moves.

        A lot worth many small ones (100 GOOGL, 2.3% of a $10M book against a target
        near 0.3%, where the median lot is 0.11%) bought while the book is under
        invested cannot be sold by the local search: selling it alone leaves cash
        idle (a worse plan) and re-investing it takes some ten buys, not one pair.
        For each of the ``BIG_LOT_TRIES`` assets whose lot weight exceeds ``BIG_LOT``
        times the median and whose weight is above target (most above first, ties by
        asset; on the 500-name book the cheapest sells instead were lots near their
        target, and none of them paid), one lot is sold, then the best feasible
        improving single move (the local search's descent,
        :func:`~rebalopt.rebalance._integer_descent.descend`, any asset but buying the
        big lot back) is taken while one exists, at most ``BIG_LOT_BUYS`` times and
        within the work left (each move charged like a local search's). The first
        result below ``f`` is taken: on the 500-name book, the first that pays taken
        round after round ended 0.1 bps lower than the best of four per round
        (which spends the budget on the tries it drops). An asset whose try did not
        pay is not tried again in this search: on the 500-name book the same asset
        was tried again round after round, some twenty re-investing moves each time,
        and never paid; skipping it leaves that work to the others (9 states: median
        2.537 -> 2.494 bps at the same budget, no state worse).
        """
        S = self.search
        n = q.shape[0]
        big = S.ell > BIG_LOT * float(np.median(S.ell))
        if not big.any():
            return None
        per_move, _ = self._local_costs(q)
        Q, df, D = S._singles(q)
        P, _, _ = S.point(q)
        excess = P.w - S.wt
        cand = np.flatnonzero(big & (excess > 0) & np.isfinite(df[:, 1]) & (D[:, 1] < 0))
        if cand.size == 0:
            return None
        cand = cand[~np.isin(cand, list(self._big_failed))]  # tried, did not pay
        if cand.size == 0:
            return None
        cand = cand[np.argsort(-excess[cand], kind="stable")][:BIG_LOT_TRIES]
        Q = Q[:, 1].copy()  # column 1: one lot down (the table is reused below)
        for i in cand:
            if self.used + 2 * per_move > self.work:
                self.stats["budget_exhausted"] = 1
                break
            q1 = q.copy()
            q1[i] = Q[i]
            self.used += n
            if not S.feasible(q1):
                continue
            f1 = S.objective(q1)

            def charge() -> bool:  # each move priced like a local search's
                if self.used + per_move > self.work:
                    self.stats["budget_exhausted"] = 1
                    return False
                self.used += per_move
                return True

            q1, f1, _ = descend(S, q1, f1, BIG_LOT_BUYS, 0.0, keep_sold=int(i), charge=charge)
            if not f1 < f - eps:
                self._big_failed.add(int(i))
                continue
            self.stats["big_lot_moves"] = self.stats.get("big_lot_moves", 0) + 1
            return q1, f1
        return None

    def run(self, q: FloatArray, max_rounds: int = 40) -> FloatArray:
        """Improve ``q`` (feasible) by neighbourhood moves within the work budget.

        Each round takes the first improvement among: the best multi-lot single move,
        then the first sale of a big lot re-invested that pays (:meth:`_big_lots`),
        then the best combination over each free pair (of the 10 assets that matter
        most) and triple (of the 6), then an exchange of which assets trade. When
        none improves, the local search's own moves (pairs, chains) get one more try
        on books of up to ``SWAP_RESEARCH_ASSETS`` assets; the loop ends when they
        fail too. Books of more than ``GUIDED_ASSETS`` assets, whose search starts
        from the relaxation rounded asset by asset
        (:mod:`~rebalopt.rebalance._integer_start`), take only the multi-lot single
        moves: on bench_integer (b) (500 names, 9 states) the other neighbourhoods
        found no move in any state and took some 7 of the round stage's 40 ms.

        A plan that differs from ``q`` is then improved once more by the local
        search (:meth:`LotSearch.improve`, bounded by its own move and chain
        counts like the improve before the neighbourhoods, not by the work left;
        counted apart in ``stats["final_work"]``): when the budget runs out right
        after a neighbourhood move, the plan would otherwise keep the single moves
        and one-lot pairs that move opened (a 9-asset book ended 0.3% above a plan
        one sell/buy pair away).
        """
        S = self.search
        q0 = q
        q = self._rounds(q, max_rounds)
        if not np.array_equal(q, q0):
            per_move, stall = self._local_costs(q)
            q, singles, pairs = S.improve(q)
            self.stats["final_moves"] = singles + pairs
            self.stats["final_work"] = (stall + per_move * (singles + pairs)
                                        + max(S.chain_passes - 1, 0) * S.chain_cost(q.shape[0]))
        return q

    def _rounds(self, q: FloatArray, max_rounds: int) -> FloatArray:
        """:meth:`run`'s rounds of neighbourhood moves, within the work budget."""
        S = self.search
        n = q.shape[0]
        q = q.copy()
        f = S.objective(q)
        polished = False
        for _ in range(max_rounds):
            if self.used >= self.work:
                self.stats["budget_exhausted"] = 1
                break
            eps = gain_eps(f)
            jump = self._jump(q)
            moved = self._singles(q, f, eps, jump)
            if moved is None and n > GUIDED_ASSETS:
                break  # a guided start: multi-lot single moves only (see run)
            if moved is None and n > 1:
                moved = self._big_lots(q, f, eps)
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
