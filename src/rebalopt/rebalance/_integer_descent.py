"""The local search's descent by single moves, on arrays kept from move to move.

:meth:`LotSearch.improve <rebalopt.rebalance._integer_search.LotSearch.improve>` and
the big-lot neighbourhood (:meth:`Neighbourhoods._big_lots
<rebalopt.rebalance._integer_lns.Neighbourhoods._big_lots>`) both repeat: price every
single move from the plan, take the best feasible improving one, confirm it on the
objective, move. :func:`descend` does the same moves in the same order, with the
plan's arrays (trades, weights, per-asset cost, cash) and the table of moves kept
between moves and updated in the one asset that moved:

* the objective change of every move is the table's own part plus one product with
  ``Sigma d`` (recomputed in full at each plan, two products with the factor
  loadings), as :meth:`LotSearch._singles` computes it;
* a candidate's point is the plan's with the asset's trade, weight and cost replaced
  and the sums taken in full, as :meth:`LotSearch.point` builds it, so its
  feasibility (every hard kernel's ``total``) and objective are the ones the plain
  loop computes, bit for bit.

So the plan found is the plain loop's (:func:`descend_plain`, kept as the reference
the tests compare with and for searches with soft constraints, short holding costs
or a cost table without row pricing).

Units: ``q`` in lots, everything else fractions of pre-trade equity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.program.search import CashRow, LinearRows, PointArrays

if TYPE_CHECKING:
    from rebalopt.rebalance._integer_search import LotSearch

__all__ = ["EXTEND_STEPS", "MAYBE_MARGIN", "descend", "descend_plain", "gain_eps"]

EXTEND_STEPS = 64
"""Largest multiple of a one-lot move (single, or a pair's) a line extension tries,
doubling from 2 (:func:`descend` with ``extend``, :meth:`LotSearch._extend
<rebalopt.rebalance._integer_search.LotSearch._extend>`)."""

MAYBE_MARGIN = 1e-9
"""Violation beyond ``tol`` past which a candidate is infeasible whatever the round-off
of a vectorized evaluation (kernels' ``candidates`` or ``totals`` against a check at
the candidate's own point); units of the constraint (fractions of equity for cash
and weights)."""

TRIES = 3
"""Improving moves tried one by one for feasibility (best first) before every move's
violation is computed at once (as :meth:`LotSearch._best_single`)."""


def gain_eps(f: float, min_gain: float = 0.0) -> float:
    """The least objective decrease a move from objective ``f`` must make to be taken:
    ``max(1e-13 + 1e-10 |f|, min_gain)`` (round-off of ``f``, or the search's own
    minimum gain; fractions of pre-trade equity)."""
    return max(1e-13 + 1e-10 * abs(f), min_gain)


def descend_plain(S: LotSearch, q: FloatArray, f: float, max_moves: int, min_gain: float,
                  keep_sold: int | None = None, charge: Callable[[], bool] | None = None,
                  extend: bool = False) -> tuple[FloatArray, float, int]:
    """Steepest feasible descent by single moves from ``q`` (feasible, objective ``f``).

    Each move is the feasible standard move (:meth:`LotSearch._moves`) with the lowest
    objective change below ``-eps`` (``eps = max(1e-13 + 1e-10 |f|, min_gain)``),
    taken when the objective confirms the decrease. ``keep_sold``: an asset none of
    whose buying moves is taken. ``charge`` is called before each move's pricing and
    ends the descent when it returns ``False`` (a work budget). ``extend``: a
    one-lot move taken from a count on the lot grid is repeated along its line,
    ``k = 2, 4, 8, ...`` (up to ``EXTEND_STEPS``) times the move from the count before
    it, while each point is inside the box, feasible and lowers the objective by more
    than ``eps`` (recomputed at each point) from the last taken; each point taken
    counts as a move. Returns ``(q, f, moves)``.
    """
    q = np.array(q, dtype=float)
    moves = 0
    last = np.zeros(q.shape[0])  # each asset's last one-lot move (+1, -1; 0: none)
    while moves < max_moves:
        if charge is not None and not charge():
            break
        eps = gain_eps(f, min_gain)
        Q, df, D = S._singles(q)
        if keep_sold is not None:
            df[keep_sold, D[keep_sold] > 0] = np.inf
        i, j = S._best_single(q, Q, df, eps)
        if i < 0:
            break
        q2 = q.copy()
        q2[i] = Q[i, j]
        f2 = S.objective(q2)
        if not f2 < f - eps:
            break
        base, step = q[i], Q[i, j] - q[i]
        q, f = q2, f2
        moves += 1
        again, last[i] = last[i] == step, step if j < 2 else 0.0
        if extend and again and j < 2 and base == np.floor(base):
            k = 2.0
            while k <= EXTEND_STEPS and moves < max_moves:
                v = base + k * step
                if not S.lo[i] <= v <= S.hi[i]:
                    break
                q2 = q.copy()
                q2[i] = v
                if not S.feasible(q2):
                    break
                f2 = S.objective(q2)
                if not f2 < f - gain_eps(f, min_gain):
                    break
                q, f = q2, f2
                moves += 1
                k *= 2.0
    return q, f, moves


def descend(S: LotSearch, q: FloatArray, f: float, max_moves: int, min_gain: float,
            keep_sold: int | None = None, charge: Callable[[], bool] | None = None,
            extend: bool = False) -> tuple[FloatArray, float, int]:
    """:func:`descend_plain`'s moves on kept arrays (module docstring); same arguments."""
    if S.soft or S._hold is not None or S._price_rows is None:
        return descend_plain(S, q, f, max_moves, min_gain, keep_sold, charge, extend)
    q = np.array(q, dtype=float)
    if max_moves <= 0:
        return q, f, 0
    S._singles(q)  # the table of moves at q
    _, _, Q, D, Cz, dcost, own, gD = S._table  # type: ignore[misc]
    P, cost, _ = S.point(q)
    z, w, cost, cash = P.z.copy(), P.w.copy(), cost.copy(), P.cash
    G, s, s2, gT, wt, ell, w0 = S.G, S.s, S.s2, S.gT, S.wt, S.ell, S.w0
    C = Q.shape[1]
    hard = S.hard
    moves = 0

    def at(i: int, j: int) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        """The point after move ``(i, j)``, as :meth:`LotSearch.point` builds it."""
        z2, w2, c2 = z.copy(), w.copy(), cost.copy()
        z2[i] = Q[i, j] * ell[i]
        w2[i] = w0[i] + z2[i]
        c2[i] = Cz[i, j]
        return z2, w2, c2, S.c0 - float(z2.sum()) - float(c2.sum())

    # the kernel that refused last is asked first (the same answer); a composite of
    # one part asked through its part (its total is the part's, float(0 + x) == x)
    korder = [k.parts[0] if len(getattr(k, "parts", ())) == 1 else k for k in hard]

    # per linear kernel, the assets whose every coefficient is <= 0 (a buy can only
    # loosen its rows) and >= 0 (a sell can only loosen them)
    loosen = {id(k): (np.all([(c[:, 0] <= 0) for _, c, _ in k.layers], axis=0),
                      np.all([(c[:, 0] >= 0) for _, c, _ in k.layers], axis=0))
              for k in korder if isinstance(k, LinearRows) and k.layers}

    def feasible(pt: tuple[FloatArray, FloatArray, FloatArray, float], i: int, buy: bool
                 ) -> bool:
        """Every hard kernel's total at ``pt`` (the plan after a move of asset ``i``,
        a buy or a sell) within ``tol``. A linear kernel whose rows the move can only
        loosen is not evaluated: at the feasible plan ``q`` its total is within
        ``tol``, and its row sums (float additions in a fixed order, monotone in each
        term) and their positive parts can only decrease, so the check would pass."""
        P2 = PointArrays(pt[0], pt[1], pt[3])
        for at_k, k in enumerate(korder):
            skip = loosen.get(id(k))
            if skip is not None and skip[0 if buy else 1][i]:
                continue
            if not k.total(P2) <= S.tol:
                if at_k:
                    korder.insert(0, korder.pop(at_k))
                return False
        return True

    def table() -> tuple[np.ndarray, np.ndarray]:
        """Every move's kernel violations at once (the table's trades, the cash by
        each move's change): feasible by them, and infeasible whatever the
        round-off (beyond ``MAYBE_MARGIN``), flattened as ``df``."""
        Z = Q * ell[:, None]
        W = w0[:, None] + Z
        CASH = cash - D - dcost
        Pn = PointArrays(z, w, cash)
        ok = np.ones(Q.size, dtype=bool)
        out = np.zeros(Q.size, dtype=bool)
        for k in hard:
            V = k.candidates(Pn, Z, W, CASH).ravel()
            ok &= V <= S.tol
            out |= V > S.tol + MAYBE_MARGIN
        return ok, out

    rows = [k for k in korder if isinstance(k, (CashRow, LinearRows))]

    def ruled_out(idx: np.ndarray) -> np.ndarray:
        """Whether a cash row, or one row of a linear kernel alone, rules out each of
        the moves ``idx`` (flat indices into ``df``; the improving ones: no other
        move is tried) whatever the round-off: one row violated beyond ``tol +
        MAYBE_MARGIN`` puts the kernel's total (a sum of row violations, each at
        least 0) beyond it too, so :func:`feasible` would refuse the move. Used from
        the first step whose best moves were all refused on: a few vectorized
        operations per step instead of refused tries and the full ``table`` (on a
        500-name book started near the relaxation, the best moves were buys into a
        sector at its cap, step after step). The rows are rearranged to compare each
        move's use of a row with the row's slack (fewer operations); a move whose
        violation sits within round-off of ``tol + MAYBE_MARGIN`` may fall either
        side, and is refused by :func:`feasible` either way, so the picks are the
        same. Computed for the moves ``idx`` only (the same operations on the same
        numbers as over the whole table, so the same answers)."""
        lim = S.tol + MAYBE_MARGIN
        i = idx // C
        Dm = np.ravel(D)[idx]
        bad = np.zeros(idx.size, dtype=bool)
        for k in rows:  # each row's slack beyond the margin against each move's use of it
            if isinstance(k, CashRow):
                # floor - cash after > lim
                bad |= (Dm + np.ravel(dcost)[idx]) > (cash - k.floor + lim)
            else:
                L = np.append(k._lhs(w), 0.0)
                for row, coef, Rr in k.layers:
                    bad |= coef[i, 0] * Dm > (Rr[i, 0] + lim - L[row[i]])
        return bad

    one = hasattr(S.costs, "price_one")
    last = np.zeros(q.shape[0])  # each asset's last one-lot move (+1, -1; 0: none)
    d = w - wt
    gd = G.T @ d
    table_first = False  # the last move needed every move's violations: compute them first
    filtered = False  # the best moves were refused: rule out by the rows first
    while moves < max_moves:
        if charge is not None and not charge():
            break
        eps = gain_eps(f, min_gain)
        Sd = G @ gd + s2 * d
        df = own + gD * Sd[:, None]
        if keep_sold is not None:
            df[keep_sold, D[keep_sold] > 0] = np.inf
        dfl = df.ravel()  # df is this move's own array
        pick = None
        tried = 0
        ok = out = None
        if filtered:
            imp = np.flatnonzero(dfl < -eps)
            dfl[imp[ruled_out(imp)]] = np.inf  # infeasible whatever the round-off: as refused
        elif table_first and hard:
            ok, out = table()
        while tried < TRIES:  # best first; ties to the lowest index, as a stable sort
            fl = int(np.argmin(dfl))
            if not dfl[fl] < -eps:
                break
            i, j = divmod(fl, C)
            if out is None or not out[fl]:  # out: infeasible, as the check would find
                pt = at(i, j)
                if feasible(pt, i, Q[i, j] > q[i]):
                    pick = (i, j, pt)
                    break
            dfl[fl] = np.inf
            tried += 1
        table_first = pick is None and tried == TRIES
        filtered = filtered or (table_first and bool(rows))  # from then on, every step
        if pick is None and tried == TRIES and hard:
            rest = np.flatnonzero(dfl < -eps)  # the improving moves not tried
            if rest.size:
                rest = rest[np.argsort(dfl[rest], kind="stable")]
                if ok is None:
                    ok, out = table()
                good = ok[rest]
                if good.any():
                    i, j = divmod(int(rest[int(np.argmax(good))]), C)
                    pick = (i, j, at(i, j))
        if pick is None:
            break
        i, j, pt = pick
        z2, w2, c2, cash2 = pt
        d2 = w2 - wt
        g2 = G.T @ d2
        f2 = float(c2.sum()) + 0.5 * gT * float(g2 @ g2 + (s * d2) @ (s * d2))
        if S.alpha is not None:
            f2 -= float(S.alpha @ w2)
        if not f2 < f - eps:
            break
        base, step = q[i], Q[i, j] - q[i]
        q[i] = Q[i, j]
        z, w, cost, cash, f, d, gd = z2, w2, c2, cash2, f2, d2, g2
        moves += 1
        again, last[i] = last[i] == step, step if j < 2 else 0.0
        if extend and again and j < 2 and base == np.floor(base):
            k = 2.0
            while k <= EXTEND_STEPS and moves < max_moves:
                v = base + k * step
                if not S.lo[i] <= v <= S.hi[i]:
                    break
                z2, w2, c2 = z.copy(), w.copy(), cost.copy()
                z2[i] = v * ell[i]
                w2[i] = w0[i] + z2[i]
                c2[i] = S._price_rows(z2[i:i + 1], np.array([i]))[0]
                pt = (z2, w2, c2, S.c0 - float(z2.sum()) - float(c2.sum()))
                if not feasible(pt, i, step > 0):
                    break
                d2 = w2 - wt
                g2 = G.T @ d2
                f2 = float(c2.sum()) + 0.5 * gT * float(g2 @ g2 + (s * d2) @ (s * d2))
                if S.alpha is not None:
                    f2 -= float(S.alpha @ w2)
                if not f2 < f - gain_eps(f, min_gain):
                    break
                q[i] = v
                z, w, cost, cash, f, d, gd = z2, w2, c2, pt[3], f2, d2, g2
                moves += 1
                k *= 2.0
        if one:
            S._update_one(q, i, cost[i])
        else:
            S._update_rows(q, np.array([i]), cost)
    return q, f, moves
