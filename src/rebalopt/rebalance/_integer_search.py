"""Round, repair, improve: the integer stage's ``round`` mode on lot counts.

Starting from the relaxation rounded to the nearest lot, the search works on the
integer lot counts ``q`` (trade ``q_i * lot_i`` shares) with single-asset moves
evaluated for every asset at once. Hard constraints on one asset each (long-only,
short limits, weight bounds, restricted lists, participation caps) are a box
``lo <= q <= hi`` that no move leaves: the start is clipped into it, so the
search never trades such a constraint's violation against another's (for example
selling one share past a position being closed to cover a cash shortfall, a step
no single-asset move can undo without breaking cash again).

* **repair**: while some hard constraint is violated, take the move that removes
  the most violation per unit of objective given up (``delta f / reduction``,
  the smallest first); fail when no move reduces the violation;
* **improve**: while a feasible move lowers the objective, take the best one
  (steepest descent over ``+1``, ``-1``, ``0`` lots, the jumps to the minimum
  trade size and, when an anchor is given, the jump to the anchor's lot count);
  when single moves stall, try the best pairs (one lot bought, one sold), which
  escape a binding cash or group constraint: first among the ``pair_width`` best
  buys and sells (cheap, risk cross term by formula), then as chains: after each
  of the ``chain_width`` cheapest one-lot sells (and buys) alone, every asset's
  opposite one-lot move is evaluated exactly, so the sell that makes room under a
  cap meets the buy it unblocks wherever that buy ranks.

Improve never leaves the feasible set and only takes moves that lower the
objective, so a run started from a feasible point (for example no trade) ends at
a plan at least as good as that point.

Moves are evaluated exactly: the full cost (commission minimum and per-order fee
included, :class:`~rebalopt.rebalance._integer_costs.CostTable`), the risk change
``gamma T (delta (Sigma d)_i + delta^2 Sigma_ii / 2)``, alpha, and every
constraint's violation through its kernel. Ties go to the lowest asset index and
the first move kind, so the search is deterministic.

Units: ``q`` in lots, ``ell`` the weight of one lot, everything else fractions of
pre-trade equity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_costs import CostTable
from rebalopt.rebalance._integer_descent import EXTEND_STEPS, MAYBE_MARGIN, descend, gain_eps
from rebalopt.rebalance._integer_kernels import Kernel, PointArrays, SparseMoves, sparse_totals

__all__ = ["CHAIN_WORK", "EXTEND_STEPS", "LADDER", "LotSearch", "SearchResult"]

LADDER = 6
"""Lots either side of each asset's count whose cost :meth:`LotSearch._update_one`
prices once for the whole search (with one lot either way from no trade, the
one-lot moves after a move to no trade)."""

CHAIN_WORK = 32_000
"""Default work of the chain passes per :meth:`LotSearch.improve` (asset-move
pricings): two passes of 16 sells and 16 buys on a 500-asset book."""


@dataclass
class SearchResult:
    """Outcome of a search: lot counts, the fast objective, move counts, and feasibility."""

    q: FloatArray
    objective: float
    feasible: bool
    repair_moves: int
    improve_moves: int
    pair_moves: int
    violations: dict[int, float] = field(default_factory=dict)
    """Remaining violation per hard kernel index (only when not feasible)."""


def stable_prefix(vals: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` positions of ``np.argsort(vals, kind="stable")`` (1-D, no NaN),
    by a partition: ``O(len(vals))`` plus a sort of ``k``."""
    if k >= vals.size:
        return np.argsort(vals, kind="stable")
    kth = np.partition(vals, k - 1)[k - 1]
    less = np.flatnonzero(vals < kth)
    sel = np.concatenate([less, np.flatnonzero(vals == kth)[:k - less.size]])
    sel.sort()  # positions ascending, so the stable sort below keeps ties in order
    return sel[np.argsort(vals[sel], kind="stable")]


class LotSearch:
    """Local search over lot counts (module docstring).

    Parameters
    ----------
    w0, c0
        Current weights and cash weight.
    targets
        Target weights.
    ell
        Weight of one lot per asset.
    costs
        Full per-asset cost table.
    G, s, gT
        Risk root (``Sigma = G G' + diag(s^2)``) and ``gamma * T``.
    alpha
        Expected return over the horizon per asset, or ``None``.
    hard, soft
        Kernels of the hard constraints, and ``(kernel, penalty)`` of the soft ones.
    kmin
        Smallest non-zero lot count per asset (minimum trade value), or ``None``.
    tol
        Largest summed violation per hard constraint that counts as satisfied.
    max_moves
        Cap on moves per phase.
    pair_width
        Buys and sells (each side) among which :meth:`_pair` tries pairs.
    chain_width
        One-lot sells and buys (each side) after which :meth:`_chain` evaluates
        every opposite one-lot move exactly.
    chain_work
        Work per :meth:`improve` spent on chain passes, in asset-move pricings (a
        pass prices ``2 * chain_width`` one-lot moves of every asset, ``2 *
        chain_width * n``); at least one pass. Chains polish a plan stuck behind a
        binding cap; with fine lots they keep finding tiny gains, so they are
        bounded, by a count in proportion to a pass's work rather than a number of
        passes: the default is two passes on a 500-asset book (which keeps round
        mode inside its time budget on a 500-asset whole-share book), a hundred on
        a 9-asset one, where two passes left an improving one-lot pair behind a
        binding group cap (a pass is cheap there, and each finds one move).
    box
        ``(lo, hi)`` lot-count bounds per asset that no move leaves (``-inf`` /
        ``inf`` where unbounded), or ``None``.
    """

    def __init__(self, *, w0: FloatArray, c0: float, targets: FloatArray, ell: FloatArray,
                 costs: CostTable, G: np.ndarray, s: FloatArray, gT: float,
                 alpha: FloatArray | None, hard: list[Kernel],
                 soft: list[tuple[Kernel, float]], kmin: FloatArray | None, tol: float,
                 max_moves: int = 20_000, pair_width: int = 12,
                 chain_width: int = 16, chain_work: int = CHAIN_WORK,
                 box: tuple[FloatArray, FloatArray] | None = None,
                 close: FloatArray | None = None, min_gain: float = 0.0,
                 extend: bool = True) -> None:
        self.w0, self.c0, self.wt, self.ell = w0, c0, targets, ell
        self.extend = extend
        """Whether :meth:`improve`'s descent repeats a one-lot move along its line."""
        self.min_gain = min_gain
        """Smallest objective decrease (fraction of equity) worth a descent move."""
        self.costs, self.G, self.s, self.gT = costs, G, s, gT
        self.alpha = alpha
        self.hard, self.soft = hard, soft
        self.kmin = kmin
        self.tol = tol
        self.max_moves = max_moves
        self.pair_width = pair_width
        self.chain_width = chain_width
        self.chain_work = chain_work
        self.chain_passes = 0  # chain passes in the last improve (charged by the neighbourhoods)
        self.s2 = s * s
        self.Sii = (G * G).sum(axis=1) + self.s2
        self._hold = getattr(costs, "holding", None) if getattr(costs, "holds", True) else None
        self._price_rows = getattr(costs, "price_rows", None)  # a CostTable's; else whole tables
        self._table: tuple[np.ndarray | None, ...] | None = None  # see _singles
        self._ladder: tuple[FloatArray, np.ndarray] | None = None  # see _update_one
        # the last two points, latest first: (q, (P, cost, Sd), G' d)
        self._points: list[tuple[FloatArray, tuple[PointArrays, FloatArray, FloatArray],
                                 FloatArray]] = []
        n = w0.shape[0]
        self.lo, self.hi = (np.full(n, -np.inf), np.full(n, np.inf)) if box is None else \
            (np.asarray(box[0], float), np.asarray(box[1], float))
        self.anchor: FloatArray | None = None
        # lot count that closes an odd-lot position (fractional; NaN where none)
        self.close = None if close is None or np.isnan(close).all() else \
            np.asarray(close, float)
        if self.close is not None:
            ok = ~np.isnan(self.close)
            self.lo = np.where(ok, np.minimum(self.lo, np.nan_to_num(self.close)), self.lo)

    def clip(self, q: FloatArray) -> FloatArray:
        """``q`` moved into the box."""
        return np.minimum(np.maximum(q, self.lo), self.hi)

    # ------------------------------------------------------------- pieces
    def point(self, q: FloatArray) -> tuple[PointArrays, FloatArray, FloatArray]:
        """Point, per-asset cost and ``Sigma d`` at lot counts ``q`` (read-only arrays).

        The last two points are kept: the search prices a plan (its objective, to
        confirm a move) and then evaluates the moves from it, and goes back to the
        plan when a move is refused. A point that differs from a kept one in a few
        assets is built from it: those assets' trade, weight and cost are priced,
        the others copied (each asset's cost depends on its own trade only), and the
        sums and ``Sigma d`` are recomputed in full, so the point is the one a
        fresh computation gives, bit for bit.
        """
        kept = self._points
        near = None
        for k, (qk, out, _) in enumerate(kept):
            if qk.shape != q.shape:
                continue
            diff = np.flatnonzero(qk != q)
            if diff.size == 0:
                if k:
                    kept.reverse()
                return out
            if near is None or diff.size < near[1].size:
                near = (out, diff)
        if near is not None and near[1].size <= 8 and self._price_rows is not None:
            (P0, cost0, _), rows = near
            z, w, cost = P0.z.copy(), P0.w.copy(), cost0.copy()
            z[rows] = q[rows] * self.ell[rows]
            w[rows] = self.w0[rows] + z[rows]
            cost[rows] = self._price_rows(z[rows], rows)
        else:
            z = q * self.ell
            cost = self.costs(z)
            w = self.w0 + z
        d = w - self.wt
        gd = self.G.T @ d
        Sd = self.G @ gd + self.s2 * d
        for a in (z, w, cost, Sd, gd):
            a.setflags(write=False)
        out = PointArrays(z, w, self.c0 - float(z.sum()) - float(cost.sum())), cost, Sd
        if len(kept) >= 2:
            kept.pop()
        kept.insert(0, (np.array(q, dtype=float), out, gd))  # the latest first
        return out

    def objective(self, q: FloatArray) -> float:
        """Fast objective (soft penalties as summed row violations)."""
        P, cost, _ = self.point(q)
        d = P.w - self.wt
        f = self._points[0][2]  # G' d at q
        val = float(cost.sum()) + 0.5 * self.gT * float(f @ f + (self.s * d) @ (self.s * d))
        hold = self._hold  # borrow over the horizon
        if hold is not None:
            val += float(hold(P.w).sum())
        if self.alpha is not None:
            val -= float(self.alpha @ P.w)
        val += sum(pen * k.total(P) for k, pen in self.soft)
        return val

    def violations(self, q: FloatArray) -> list[float]:
        """Summed violation of each hard constraint at ``q``."""
        P, _, _ = self.point(q)
        return [k.total(P) for k in self.hard]

    @staticmethod
    def step(q: FloatArray, k: float) -> FloatArray:
        """``k`` lots up (``k > 0``) or down from ``q``, back on the lot grid from a close."""
        return np.floor(q) + k if k > 0 else np.ceil(q) + k

    def _moves(self, q: FloatArray, rows: np.ndarray | None = None) -> np.ndarray:
        """The standard moves from ``q`` (the counts of assets ``rows`` when given)."""
        sel = slice(None) if rows is None else rows
        cols = [self.step(q, 1.0), self.step(q, -1.0), np.zeros_like(q)]
        if self.kmin is not None:
            cols += [self.kmin[sel], -self.kmin[sel]]
        if self.anchor is not None:
            cols.append(self.anchor[sel])
        if self.close is not None:
            close = self.close[sel]
            cols.append(np.where(np.isnan(close), q, close))
        return np.stack(cols, axis=1)

    def _own(self, Dr: np.ndarray, dcost: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        """The part of each move's objective change that depends on its own asset:
        cost change, risk curvature ``gamma T D^2 Sigma_ii / 2`` and alpha (rows
        ``rows`` of the tables)."""
        own = dcost + self.gT * (0.5 * Dr * Dr * self.Sii[rows][:, None])
        if self.alpha is not None:
            own = own - self.alpha[rows][:, None] * Dr
        return own

    def _change(self, own: np.ndarray, gD: np.ndarray, P: PointArrays, Sd: FloatArray,
                D: np.ndarray, dcost: np.ndarray | None) -> np.ndarray:
        """Objective change of every move: its own part, the risk gradient
        ``gamma T D (Sigma d)_i``, short holding and soft penalties (the same
        operations, in the same order, for :meth:`_singles` and :meth:`_evaluate`)."""
        df = own + gD * Sd[:, None]
        hold = self._hold
        if hold is not None:
            df = df + hold(P.w[:, None] + D) - hold(P.w)[:, None]
        if self.soft:
            Z, W = P.z[:, None] + D, P.w[:, None] + D
            CASH = P.cash - D - dcost
            for k, pen in self.soft:
                df = df + pen * (k.candidates(P, Z, W, CASH) - k.total(P))
        return df

    def _singles(self, q: FloatArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standard moves ``Q``, objective change ``df`` and trade change ``D`` at ``q``:
        :meth:`_evaluate`'s, without the violations.

        The table of moves is kept between calls and updated in the rows of the
        assets whose count changed (the improve phase moves one or two at a time):
        each row's own part (:meth:`_own`: cost, curvature, alpha) depends on its
        own asset only and the rest is one product with ``Sigma d``, so the answer
        is the one a full evaluation gives, bit for bit. ``Q`` and ``D`` are the
        table's own arrays, valid until the next call.
        """
        P, cost, Sd = self.point(q)
        t = self._table
        rows: np.ndarray | None = None
        if t is not None and t[0] is self.anchor and self._price_rows is not None:
            rows = np.flatnonzero(q != t[1])
            if 4 * rows.size > q.size:
                rows = None
        if rows is None:
            Q = self._moves(q)
            D = (Q - q[:, None]) * self.ell[:, None]
            Cz = self.costs(Q * self.ell[:, None])
            dcost = Cz - cost[:, None]
            own = self._own(D, dcost, slice(None))
            bad = (Q == q[:, None]) | (Q < self.lo[:, None]) | (Q > self.hi[:, None])
            own[bad] = np.inf
            gD = self.gT * D
            self._table = (self.anchor, q.copy(), Q, D, Cz, dcost, own, gD)
        else:
            self._update_rows(q, rows, cost)
            _, _, Q, D, Cz, dcost, own, gD = self._table
        df = self._change(own, gD, P, Sd, D, dcost)
        return Q, df, D

    def _update_rows(self, q: FloatArray, rows: np.ndarray, cost: FloatArray) -> None:
        """The kept table of single moves (:meth:`_singles`) at ``q``, from the one
        it holds, which differs from ``q`` in the assets ``rows`` (``cost``: the
        per-asset cost at ``q``)."""
        _, last, Q, D, Cz, dcost, own, gD = self._table  # type: ignore[misc]
        if not rows.size:
            return
        qr = q[rows]
        Qr = self._moves(qr, rows)
        Dr = (Qr - qr[:, None]) * self.ell[rows][:, None]
        Czr = self._price_rows(Qr * self.ell[rows][:, None], rows)  # type: ignore[misc]
        dr = Czr - cost[rows][:, None]
        ownr = self._own(Dr, dr, rows)
        ownr[(Qr == qr[:, None]) | (Qr < self.lo[rows][:, None])
             | (Qr > self.hi[rows][:, None])] = np.inf
        Q[rows], D[rows], last[rows], Cz[rows] = Qr, Dr, qr, Czr
        dcost[rows], own[rows], gD[rows] = dr, ownr, self.gT * Dr

    def _update_one(self, q: FloatArray, i: int, cost_i: float) -> None:
        """:meth:`_update_rows` for the one asset ``i`` (``cost_i``: its cost at ``q``):
        the row's few moves in Python floats, the same operations in the same order
        (IEEE arithmetic, so the same numbers). Only the two one-lot moves change
        lot count (the others are fixed counts, or the count itself where there is
        no close); their costs come from a ladder priced once for every asset
        (``LADDER`` lots either side of the count the search started at), else from
        the cost table's ``price_one``."""
        _, last, Q, D, Cz, dcost, own, gD = self._table  # type: ignore[misc]
        qi = float(q[i])
        cost_i = float(cost_i)
        row = Q[i].tolist()
        Czr = Cz[i].tolist()
        ell = float(self.ell[i])
        row[0], row[1] = float(np.floor(qi)) + 1.0, float(np.ceil(qi)) - 1.0  # step(q, +-1)
        if self.close is not None and np.isnan(self.close[i]):
            row[-1], Czr[-1] = qi, cost_i  # no close: the column stays put (a refused move)
        if self._ladder is None:
            base = np.floor(q)
            grid = np.concatenate([base[:, None] + np.arange(-LADDER, LADDER + 1.0)[None, :],
                                   np.tile([1.0, -1.0], (q.size, 1))], axis=1)
            self._ladder = (base, self.costs(grid * self.ell[:, None]))
        base, L = self._ladder
        miss = []
        for j in (0, 1):
            k = row[j] - float(base[i]) + LADDER
            if 0 <= k <= 2 * LADDER:
                Czr[j] = float(L[i, int(k)])
            elif qi == 0.0:  # one lot either way from no trade: the ladder's last columns
                Czr[j] = float(L[i, 2 * LADDER + 1 + j])
            else:
                miss.append(j)
        if miss:  # priced together (elementwise: the same numbers as one by one)
            c = self.costs.price_one(i, np.array([row[j] * ell for j in miss]))  # type: ignore[attr-defined]
            for j, cj in zip(miss, c.tolist()):
                Czr[j] = cj
        gT, sii = self.gT, float(self.Sii[i])
        a = None if self.alpha is None else float(self.alpha[i])
        lo, hi = float(self.lo[i]), float(self.hi[i])
        Dr, dr, ownr, gDr = [], [], [], []
        for v, c in zip(row, Czr):
            dv = (v - qi) * ell
            dc = c - cost_i
            o = dc + gT * (0.5 * dv * dv * sii)
            if a is not None:
                o = o - a * dv
            if v == qi or v < lo or v > hi:
                o = np.inf
            Dr.append(dv)
            dr.append(dc)
            ownr.append(o)
            gDr.append(gT * dv)
        Q[i], D[i], last[i], Cz[i], dcost[i], own[i], gD[i] = row, Dr, qi, Czr, dr, ownr, gDr

    def _evaluate(self, q: FloatArray, step: float | None = None, Q: np.ndarray | None = None,
                  violations: bool = True,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, PointArrays]:
        """Candidates ``Q``, objective change, per-kernel violation after each move.

        ``step`` (lots) restricts the moves to the single column ``q + step``; ``Q``
        (``(n, C)`` lot counts) gives the candidates instead of the standard moves.
        ``violations=False`` skips the hard kernels (the violations come back empty).
        """
        P, cost, Sd = self.point(q)
        if Q is None:
            Q = self._moves(q) if step is None else self.step(q, step)[:, None]
        D = (Q - q[:, None]) * self.ell[:, None]
        Z = Q * self.ell[:, None]  # each move's own trade, as its point has it
        W = self.w0[:, None] + Z
        dcost = self.costs(Z) - cost[:, None]
        CASH = P.cash - D - dcost
        own = self._own(D, dcost, slice(None))
        df = self._change(own, self.gT * D, P, Sd, D, dcost)
        V = np.stack([k.candidates(P, Z, W, CASH) for k in self.hard]) \
            if self.hard and violations else np.zeros((0,) + Q.shape)
        df[(Q == q[:, None]) | (Q < self.lo[:, None]) | (Q > self.hi[:, None])] = np.inf
        return Q, df, V, D, P

    def _table_violations(self, q: FloatArray) -> np.ndarray:
        """Every hard kernel's violation after each move of the table :meth:`_singles`
        keeps at ``q`` (``(kernels, n, C)``), as :meth:`_evaluate` gives them, without
        pricing the moves again."""
        P, _, _ = self.point(q)
        Q, D, dcost = self._table[2], self._table[3], self._table[5]  # type: ignore[index]
        if not self.hard:
            return np.zeros((0,) + D.shape)
        Z = Q * self.ell[:, None]
        W = self.w0[:, None] + Z
        CASH = P.cash - D - dcost
        return np.stack([k.candidates(P, Z, W, CASH) for k in self.hard])

    # -------------------------------------------------------------- phases
    def repair(self, q: FloatArray) -> tuple[FloatArray, int, bool]:
        """Restore every hard constraint greedily; returns ``(q, moves, feasible)``.

        Each move is the one with the least objective given up per unit of violation
        removed (``df / reduction``, ties to the lowest index), over the standard moves
        (:meth:`_moves`) that reduce the summed excess violation. Without soft
        constraints or short holding costs, and with a row-pricing cost table, the
        moves are priced on arrays kept from move to move (:meth:`_repair_kept`);
        otherwise each by a full :meth:`_evaluate`. The same moves either way.
        """
        q = np.array(q, dtype=float)
        if self.hard and not self.soft and self._hold is None and self._price_rows is not None:
            return self._repair_kept(q)
        for it in range(self.max_moves):
            cur = np.array(self.violations(q))
            if cur.size == 0 or (cur <= self.tol).all():
                return q, it, True
            Q, df, V, _, _ = self._evaluate(q)
            i, j = self._repair_pick(cur, df, V)
            if i < 0:
                return q, it, False
            q[i] = Q[i, j]
        return q, self.max_moves, bool((np.array(self.violations(q)) <= self.tol).all())

    def _repair_pick(self, cur: np.ndarray, df: np.ndarray, V: np.ndarray) -> tuple[int, int]:
        """The repair's move ``(i, j)`` from the violations ``cur`` now, each move's
        objective change ``df`` and violations ``V``; ``(-1, -1)`` when no move
        reduces the violation."""
        excess_now = np.maximum(cur - self.tol, 0).sum()
        excess = np.maximum(V - self.tol, 0).sum(axis=0)
        red = excess_now - excess
        ok = (red > 1e-12 * (1.0 + excess_now)) & np.isfinite(df)
        if not ok.any():
            return -1, -1
        score = np.where(ok, df / np.where(ok, red, 1.0), np.inf)
        i, j = np.unravel_index(int(np.argmin(score)), score.shape)
        return int(i), int(j)

    def _repair_kept(self, q: FloatArray) -> tuple[FloatArray, int, bool]:
        """:meth:`repair`'s moves with the plan's arrays (trades, weights, per-asset cost,
        cash, ``Sigma d``) and the table of moves (:meth:`_singles`) kept between moves
        and updated in the one asset that moved, as :func:`~rebalopt.rebalance.
        _integer_descent.descend` keeps them: the point after a move is :meth:`point`'s
        (the asset's trade, weight and cost replaced, the sums and ``Sigma d`` in
        full), each move's objective change is :meth:`_singles`' and its violations
        :meth:`_table_violations`', so every number is the one the full evaluation
        gives, bit for bit. On the 20-year backtest's early rebalances (a book fully
        invested, cash a few thousand dollars short after the rounding) the repair
        takes 60-170 one-share sells, each a full evaluation before."""
        tol, hard = self.tol, self.hard
        P, cost, Sd = self.point(q)
        cur = np.array([k.total(P) for k in hard])
        if (cur <= tol).all():
            return q, 0, True
        self._singles(q)  # the table of moves at q
        _, _, Q, D, _, dcost, own, gD = self._table  # type: ignore[misc]
        z, w, cost, cash = P.z.copy(), P.w.copy(), cost.copy(), P.cash
        G, s2, wt, ell, w0 = self.G, self.s2, self.wt, self.ell, self.w0
        Z = Q * ell[:, None]  # each move's trade and weight (the table's rows)
        W = w0[:, None] + Z
        one = hasattr(self.costs, "price_one")
        for it in range(self.max_moves):
            if (cur <= tol).all():
                return q, it, True
            df = own + gD * Sd[:, None]  # _change without soft terms or holding costs
            CASH = cash - D - dcost
            Pn = PointArrays(z, w, cash)
            V = np.stack([k.candidates(Pn, Z, W, CASH) for k in hard])
            i, j = self._repair_pick(cur, df, V)
            if i < 0:
                return q, it, False
            q[i] = Q[i, j]
            z[i] = q[i] * ell[i]
            w[i] = w0[i] + z[i]
            cost[i] = self._price_rows(z[i:i + 1], np.array([i]))[0]  # type: ignore[misc]
            cash = self.c0 - float(z.sum()) - float(cost.sum())
            d = w - wt
            Sd = G @ (G.T @ d) + s2 * d
            Pn = PointArrays(z, w, cash)
            cur = np.array([k.total(Pn) for k in hard])
            if one:
                self._update_one(q, i, cost[i])
            else:
                self._update_rows(q, np.array([i]), cost)
            Z[i] = Q[i] * ell[i]
            W[i] = w0[i] + Z[i]
        return q, self.max_moves, bool((cur <= tol).all())

    def improve(self, q: FloatArray) -> tuple[FloatArray, int, int]:
        """Steepest feasible descent by single moves, then pairs and chains; returns ``(q, singles, pairs)``.

        The single moves are :func:`~rebalopt.rebalance._integer_descent.descend`'s;
        when it stops, one pair or chain is tried, and the descent resumes after it.
        """
        q = q.copy()
        singles = pairs = chains = 0
        max_chains = self.max_chains(q.shape[0])
        f = self.objective(q)
        while singles + pairs < self.max_moves:
            q, f, k = descend(self, q, f, self.max_moves - singles - pairs, self.min_gain,
                              extend=self.extend)
            singles += k
            if singles + pairs >= self.max_moves:
                break
            eps = gain_eps(f, self.min_gain)
            Q, df, D = self._singles(q)
            moved = self._pair(q, f, Q, df, D, eps)
            if moved is None and chains < max_chains:
                chains += 1
                moved = self._chain(q, f, df, D, eps)
            if moved is None:
                break
            q, f = self._extend(q, moved[0], moved[1])
            pairs += 1
        self.chain_passes = chains
        return q, singles, pairs

    def _extend(self, q: FloatArray, q1: FloatArray, f1: float) -> tuple[FloatArray, float]:
        """The pair move ``q -> q1`` (objective ``f1``, confirmed) repeated along its
        line: ``q + k (q1 - q)`` for ``k = 2, 4, 8, ...`` while each is inside the
        box, meets every hard constraint and lowers the objective by more than
        ``eps`` from the last one taken; returns the last taken (``(q1, f1)`` when
        none is).

        On a whole-share book the pair passes otherwise walk such a line one share
        at a time (on the 2009-2010 slice of the 20-year backtest, $100M, 37 pair
        moves per rebalance, each a one-share sell and buy saving about one cent,
        most along a few lines), a full pair pass and descent restart per share.
        Each point is checked as a pair move is (:meth:`_feasible_near`, the
        objective), so the plan is at least as good as ``(q1, f1)``.
        """
        rows = np.flatnonzero(q1 != q)
        if rows.size != 2 or not (np.all(q[rows] == np.floor(q[rows]))
                                  and np.all(q1[rows] == np.floor(q1[rows]))):
            return q1, f1  # off the lot grid (an odd-lot close): not a line of lots
        step = q1[rows] - q[rows]
        quick = self._extend_quick(q, rows, step, f1)
        if quick is not None:
            return quick
        best, fb = q1, f1
        k = 2.0
        while k <= EXTEND_STEPS:
            v = q[rows] + k * step
            if np.any(v < self.lo[rows]) or np.any(v > self.hi[rows]):
                break
            q2 = q.copy()
            q2[rows] = v
            if not self._feasible_near(q, q2, rows):
                break
            f2 = self.objective(q2)
            if not f2 < fb - gain_eps(fb, self.min_gain):
                break
            best, fb = q2, f2
            k *= 2.0
        return best, fb

    def _extend_quick(self, q: FloatArray, rows: np.ndarray, step: FloatArray, f1: float
                      ) -> tuple[FloatArray, float] | None:
        """:meth:`_extend`'s line priced at once: the objective of every multiple ``k =
        2, 4, ...`` inside the box from ``q``'s (its cost change in the two assets,
        ``gamma T (Delta . Sigma d + Delta' Sigma Delta / 2)``, alpha), the same rule
        applied to those values, and the point it stops at checked in full (every
        hard constraint at its own point, its objective priced and lower than
        ``f1`` by more than the least gain). ``None`` (the point-by-point walk) when
        that check fails, the search has soft constraints or a holding cost, or no
        multiple beyond 1 is taken."""
        if self.soft or self._hold is not None or self._price_rows is None:
            return None
        ks = 2.0 ** np.arange(1, int(np.log2(EXTEND_STEPS)) + 1)
        V = q[rows][None, :] + ks[:, None] * step[None, :]  # (multiples, 2) lot counts
        inside = np.all((V >= self.lo[rows]) & (V <= self.hi[rows]), axis=1)
        m = int(np.argmin(inside)) if not inside.all() else ks.size
        if m == 0:
            return None
        V = V[:m]
        P, cost, Sd = self.point(q)
        fq = self.objective(q)
        Zn = V * self.ell[rows]
        Dz = Zn - P.z[rows]
        dc = (self._price_rows(Zn.T, rows).T - cost[rows]).sum(axis=1)
        Gr = self.G[rows]
        Srr = Gr @ Gr.T + np.diag(self.s2[rows])
        risk = self.gT * (Dz @ Sd[rows] + 0.5 * np.einsum("ki,ij,kj->k", Dz, Srr, Dz))
        est = fq + dc + risk
        if self.alpha is not None:
            est = est - Dz @ self.alpha[rows]
        fb, k = f1, -1
        for t in range(m):
            if not est[t] < fb - gain_eps(fb, self.min_gain):
                break
            fb, k = float(est[t]), t
        if k < 0:
            return None
        q2 = q.copy()
        q2[rows] = V[k]
        if not self._feasible_near(q, q2, rows):
            return None
        f2 = self.objective(q2)
        if not f2 < f1 - gain_eps(f1, self.min_gain):
            return None
        return q2, f2

    def chain_cost(self, n: int) -> int:
        """Work of one chain pass on ``n`` assets (asset-move pricings)."""
        return 2 * self.chain_width * n

    def max_chains(self, n: int) -> int:
        """Chain passes one :meth:`improve` may make on ``n`` assets (``chain_work``)."""
        return max(1, self.chain_work // max(self.chain_cost(n), 1))

    def _best_single(self, q: FloatArray, Q: np.ndarray, df: np.ndarray, eps: float,
                     tries: int = 3) -> tuple[int, int]:
        """The feasible single move with the lowest ``df < -eps`` (``(-1, -1)``: none).

        The improving moves are tried best first (ties: lowest asset, then move
        kind), each for feasibility at its own point (every hard kernel's total);
        after ``tries`` infeasible ones, every move's violation is computed at once
        (the kernels' ``candidates``). Either way the answer is the best feasible
        improving move.
        """
        flat = np.flatnonzero(df < -eps)
        if flat.size == 0:
            return -1, -1
        flat = flat[np.argsort(df.ravel()[flat], kind="stable")]
        C = df.shape[1]
        for f in flat[:tries]:
            i, j = divmod(int(f), C)
            q2 = q.copy()
            q2[i] = Q[i, j]
            if self.feasible(q2):
                return i, j
        if flat.size <= tries:
            return -1, -1
        t = self._table
        if t is not None and Q is t[2] and np.array_equal(q, t[1]):
            V = self._table_violations(q)  # the kept table's moves: no re-pricing
        else:
            _, _, V, _, _ = self._evaluate(q, Q=Q)
        feas = (V <= self.tol).all(axis=0) if V.size else np.ones(df.shape, bool)
        ok = feas.ravel()[flat[tries:]]
        if not ok.any():
            return -1, -1
        i, j = divmod(int(flat[tries:][int(np.argmax(ok))]), C)
        return i, j

    def _chain(self, q: FloatArray, f: float, df: np.ndarray, D: np.ndarray, eps: float
               ) -> tuple[FloatArray, float] | None:
        """Best improving feasible one-lot sell/buy pair, each first move's partner exact.

        For each of the ``chain_width`` cheapest one-lot sells (and buys), the
        one-lot buys (sells) of every other asset are evaluated exactly after it,
        every constraint included, so a sell that makes room under a binding cap
        (a group, the cash floor) is paired with the best buy it unblocks, which
        the ranking of buys alone (:meth:`_pair`) misses when that buy is not
        among the best few. Among all chains found, the one with the lowest
        total change is taken if it is negative and confirmed on the full
        objective.

        Without soft constraints the objective is separable up to the risk cross
        term, so every chain's change is ``df_i + df_a + gamma T D_i Sigma_ia D_a``
        at once; the chains are then checked for feasibility best first, in chunks
        (those far from feasible ruled out together, :meth:`_maybe_feasible`, the
        others one by one at their own point, :meth:`_feasible_near`), and the
        first feasible one is the answer. With soft constraints, each first move is
        priced by :meth:`_evaluate`.
        """
        if self.soft:
            return self._chain_exact(q, f, df, eps)
        firsts, cols = [], []
        for col in (1, 0):  # one-lot sells first, then buys
            ranked = np.argsort(df[:, col], kind="stable")[:self.chain_width]
            ranked = ranked[np.isfinite(df[ranked, col])]
            firsts.append(ranked)
            cols.append(np.full(ranked.size, col))
        first = np.concatenate(firsts)
        if first.size == 0:
            return None
        col = np.concatenate(cols)
        other = 1 - col  # the partner's one-lot move, the other way
        d1 = D[first, col]
        cross = self.G[first] @ self.G.T  # Sigma_ia off the diagonal (a != i)
        tot = (df[first, col][:, None] + df[:, other].T
               + self.gT * d1[:, None] * cross * D[:, other].T)
        tot[np.arange(first.size), first] = np.inf
        flat = np.flatnonzero(tot < -eps)
        if flat.size == 0:
            return None
        vals = tot.ravel()[flat]
        up, down = np.floor(q) + 1.0, np.ceil(q) - 1.0  # self.step(q, +-1)
        ranked = flat[:0]  # best first, ties by order: a prefix of the stable sort
        start, chunk = 0, 256
        while start < flat.size:
            if ranked.size < min(start + chunk, flat.size):
                ranked = flat[stable_prefix(vals, start + chunk)]
            fl = ranked[start:start + chunk]
            m = fl.size
            k, a = np.divmod(fl, tot.shape[1])
            i = first[k]
            buy = col[k] == 0  # the first move buys one lot (column 0), else sells one
            vi, va = np.where(buy, up[i], down[i]), np.where(buy, down[a], up[a])
            maybe = self._maybe_feasible(q, np.concatenate([i, a]), np.tile(np.arange(m), 2),
                                         np.concatenate([vi, va]))
            for j in np.flatnonzero(maybe):  # the first feasible chain decides
                q2 = q.copy()
                q2[i[j]], q2[a[j]] = vi[j], va[j]
                if self._feasible_near(q, q2, np.array([i[j], a[j]])):
                    f2 = self.objective(q2)
                    return (q2, f2) if f2 < f - eps else None
            start += m
            chunk *= 4
        return None

    def _chain_exact(self, q: FloatArray, f: float, df: np.ndarray, eps: float
                     ) -> tuple[FloatArray, float] | None:
        """:meth:`_chain` with each first move priced by :meth:`_evaluate` (soft constraints)."""
        best: tuple[float, int, int, float] | None = None
        for first, col in ((-1.0, 1), (1.0, 0)):
            ranked = np.argsort(df[:, col], kind="stable")[:self.chain_width]
            for i in ranked:
                if not np.isfinite(df[i, col]):
                    break
                q1 = q.copy()
                q1[i] = self.step(q[i:i + 1], first)[0]
                _, df2, V2, _, _ = self._evaluate(q1, step=-first)
                ok = (V2 <= self.tol).all(axis=0)[:, 0] if V2.size else \
                    np.ones(df2.shape[0], bool)
                tot = np.where(ok, df[i, col] + df2[:, 0], np.inf)
                tot[i] = np.inf
                a = int(np.argmin(tot))
                if tot[a] < -eps and (best is None or tot[a] < best[0]):
                    best = (float(tot[a]), int(i), a, first)
        if best is None:
            return None
        _, i, a, first = best
        q2 = q.copy()
        q2[i] = self.step(q[i:i + 1], first)[0]
        q2[a] = self.step(q[a:a + 1], -first)[0]
        if self.feasible(q2):
            f2 = self.objective(q2)
            if f2 < f - eps:
                return q2, f2
        return None

    def _pair(self, q: FloatArray, f: float, Q: np.ndarray, df: np.ndarray, D: np.ndarray,
              eps: float) -> tuple[FloatArray, float] | None:
        """Best improving feasible pair of one buy-side and one sell-side move, if any."""
        up = np.where(D[:, 0] > 0, df[:, 0], np.inf)    # +1 lot
        dn = np.where(D[:, 1] < 0, df[:, 1], np.inf)    # -1 lot
        m = self.pair_width
        bi = np.argsort(up, kind="stable")[:m]
        si = np.argsort(dn, kind="stable")[:m]
        bi, si = bi[np.isfinite(up[bi])], si[np.isfinite(dn[si])]
        if bi.size == 0 or si.size == 0:
            return None
        cross = self.G[bi] @ self.G[si].T  # Sigma_ij off-diagonal (i != j)
        tot = (up[bi][:, None] + dn[si][None, :]
               + self.gT * D[bi, 0][:, None] * D[si, 1][None, :] * cross)
        tot[bi[:, None] == si[None, :]] = np.inf
        order = np.argsort(tot, axis=None, kind="stable")[:2 * m]
        order = order[tot.ravel()[order] < -eps]  # a prefix: the order is ascending
        if order.size == 0:
            return None
        A, B = np.divmod(order, tot.shape[1])
        k = order.size
        maybe = None  # the best pair is checked alone; the others filtered together
        for t in range(k):
            if t == 1:
                maybe = self._maybe_feasible(q, np.concatenate([bi[A], si[B]]),
                                             np.tile(np.arange(k), 2),
                                             np.concatenate([Q[bi[A], 0], Q[si[B], 1]]))
            if maybe is not None and not maybe[t]:
                continue  # infeasible whatever the round-off: as the check below finds
            a, b = int(A[t]), int(B[t])
            q2 = q.copy()
            q2[bi[a]], q2[si[b]] = Q[bi[a], 0], Q[si[b], 1]
            if self._feasible_near(q, q2, np.array([bi[a], si[b]])):
                f2 = self.objective(q2)
                if f2 < f - eps:
                    return q2, f2
        return None

    def feasible(self, q: FloatArray) -> bool:
        """Every hard constraint holds at ``q`` (within ``tol``)."""
        return all(v <= self.tol for v in self.violations(q))

    def _maybe_feasible(self, q: FloatArray, rows: np.ndarray, cols: np.ndarray,
                        vals: FloatArray) -> np.ndarray:
        """Whether each candidate plan may be feasible: plan ``c`` is ``q`` with the
        lot count of asset ``rows[e]`` set to ``vals[e]`` for every ``e`` with
        ``cols[e] == c``.

        Every hard kernel's totals over all candidates at once, the cash by the
        changes from ``q``'s, each kernel updated in the changed entries only
        (:func:`~rebalopt.rebalance._integer_kernels.sparse_totals`: on the 500-name
        bench a chain pass's checks of 256 candidate plans took 1-4 ms as whole
        ``(n, 256)`` plans); ``False`` only where a kernel's violation exceeds
        ``tol`` by more than ``MAYBE_MARGIN``, far beyond the round-off in which
        this evaluation and :meth:`feasible` may differ, so a plan ``False`` here is
        infeasible by :meth:`feasible` too.
        """
        m = int(cols.max()) + 1
        if self._price_rows is None or not self.hard:
            return np.ones(m, dtype=bool)
        P, cost, _ = self.point(q)
        z_new = vals * self.ell[rows]
        change = (z_new - P.z[rows]) + (self._price_rows(z_new, rows) - cost[rows])
        CASH2 = P.cash - np.bincount(cols, weights=change, minlength=m)
        moves = SparseMoves(P, self.w0, rows, cols, z_new, m)
        key = rows * m + cols
        twice = np.unique(key).size < key.size  # an asset twice in one plan: last wins
        dense = [moves.dense()] if twice else []
        ok = np.ones(m, dtype=bool)
        for k in self.hard:
            v = k.totals(*dense[0], CASH2) if twice else sparse_totals(k, moves, CASH2, dense)
            ok &= v <= self.tol + MAYBE_MARGIN
        return ok

    def _feasible_near(self, q: FloatArray, q2: FloatArray, rows: np.ndarray) -> bool:
        """:meth:`feasible` at ``q2``, which differs from ``q`` in the assets ``rows``:
        its trades, weights, costs and cash built from ``q``'s point as
        :meth:`point` builds them (the same numbers), without ``Sigma d``."""
        if self._price_rows is None:
            return self.feasible(q2)
        P, cost, _ = self.point(q)
        z, w, c = P.z.copy(), P.w.copy(), cost.copy()
        z[rows] = q2[rows] * self.ell[rows]
        w[rows] = self.w0[rows] + z[rows]
        c[rows] = self._price_rows(z[rows], rows)
        P2 = PointArrays(z, w, self.c0 - float(z.sum()) - float(c.sum()))
        return all(k.total(P2) <= self.tol for k in self.hard)

    def run(self, q0: FloatArray, anchor: FloatArray | None = None) -> SearchResult:
        """Repair then improve from ``q0`` clipped into the box.

        ``anchor`` (lot counts, for example the rounded relaxation) adds the move
        "jump to the anchor's count" for every asset, so a run started far from
        it (from no trade) reaches it in one move per asset.
        """
        self.anchor = None if anchor is None else self.clip(np.asarray(anchor, float))
        self.chain_passes = 0
        try:
            q, nrep, ok = self.repair(self.clip(np.asarray(q0, float)))
            if not ok:
                viol = self.violations(q)
                return SearchResult(q, self.objective(q), False, nrep, 0, 0,
                                    {i: v for i, v in enumerate(viol) if v > self.tol})
            q, nimp, npair = self.improve(q)
            return SearchResult(q, self.objective(q), True, nrep, nimp, npair)
        finally:
            self.anchor = None
