"""The integer search's fast paths give what the plain evaluation gives.

* the table of single moves improve keeps between moves (updated in the rows of the
  assets that moved) is, bit for bit, a full :meth:`LotSearch._evaluate`;
* the lazy choice of the best single move (best first, feasibility at its own
  point) is the best feasible improving move of the full evaluation;
* the all-at-once chain pass finds the chain the per-move pass finds.

Oracle: the full evaluation, at random plans reached by random moves of one, two
or many assets, on a 40-asset book with odd lots, a minimum trade and a binding
sector cap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance


def _search(seed: int):
    rng = np.random.default_rng(seed)
    n, V = 40, 2e6
    assets = [f"A{i:02d}" for i in range(n)]
    prices = rng.uniform(20, 300, n)
    targets = rng.dirichlet(np.ones(n) * 2) * 0.97
    hold = np.floor(targets * V * np.exp(rng.normal(0, 0.3, n)) / prices)  # odd lots
    cash = max(V - float(hold @ prices), 0.01 * V)
    groups = rng.choice(["G1", "G2", "G3"], n)
    state = PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(prices, index=assets),
                           lot_sizes=pd.Series(100.0, index=assets),
                           groups=pd.Series(groups, index=assets),
                           adv=pd.Series(rng.uniform(5e4, 5e5, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    vol = rng.uniform(0.1, 0.4, n)
    sigma = pd.DataFrame(np.outer(vol, vol) * (0.3 + 0.7 * np.eye(n)), index=assets,
                         columns=assets)
    cap = float(pd.Series(targets).groupby(groups).sum().max()) * 0.97
    relax = OptimalRebalancer(
        risk=Covariance(sigma), costs=[Spread(5.0), MarketImpact(coef=1.0),
                                       Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)], risk_aversion=200.0)
    reb = IntegerRebalancer(relax, min_trade_value=3_000.0)
    sol = reb.relaxed().solve(state, pd.Series(targets, index=assets))
    search, _, res, _ = reb._search(state, sol, reb.lot_sizes(state), [])
    return search, res.q, rng


def _walk(search, q, rng, steps: int = 25):
    """Plans reached by random moves of one, two or (sometimes) many assets."""
    q = q.copy()
    for k in range(steps):
        m = 12 if k % 7 == 6 else int(rng.integers(1, 3))
        i = rng.choice(q.size, m, replace=False)
        q[i] += rng.integers(-2, 3, m)
        q = search.clip(q)
        yield q.copy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_table_of_single_moves_is_a_full_evaluation_bit_for_bit(seed):
    search, q0, rng = _search(seed)
    for anchor in (None, np.round(q0 + rng.normal(0, 1, q0.size))):
        search.anchor = None if anchor is None else search.clip(anchor)
        for q in _walk(search, q0, rng):
            Q, df, D = search._singles(q)
            Qf, dff, _, Df, _ = search._evaluate(q, violations=False)
            np.testing.assert_array_equal(Q, Qf)
            np.testing.assert_array_equal(D, Df)
            np.testing.assert_array_equal(df, dff)
    search.anchor = None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_lazy_best_move_is_the_best_feasible_improving_move(seed):
    search, q0, rng = _search(seed)
    for q in _walk(search, q0, rng):
        f = search.objective(q)
        eps = 1e-13 + 1e-10 * abs(f)
        _, df, V, _, _ = search._evaluate(q)
        feas = (V <= search.tol).all(axis=0)
        cand = np.where(feas, df, np.inf)
        want = np.unravel_index(int(np.argmin(cand)), cand.shape)
        got = search._best_single(q, *search._singles(q)[:2], eps)
        if cand[want] < -eps:
            assert got == tuple(int(x) for x in want)
        else:
            assert got == (-1, -1)


def test_the_chain_pass_at_once_finds_the_per_move_chain():
    found = 0
    for seed in range(3):
        search, q0, rng = _search(seed)
        for q in _walk(search, q0, rng, steps=15):
            f = search.objective(q)
            eps = 1e-13 + 1e-10 * abs(f)
            _, df, D = search._singles(q)
            fast = search._chain(q, f, df.copy(), D.copy(), eps)
            slow = search._chain_exact(q, f, df.copy(), eps)
            assert (fast is None) == (slow is None)
            if fast is not None:
                found += 1
                np.testing.assert_array_equal(fast[0], slow[0])
                assert fast[1] == slow[1]
    assert found  # the walks leave room for chains


@pytest.mark.parametrize("extend", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_descent_on_kept_arrays_makes_the_plain_loops_moves(seed, extend):
    """descend (kept arrays, one asset updated per move) == descend_plain (the plain
    loop: full table, lazy best move, objective re-priced), with a work count
    ending it early and with an asset kept sold, from feasible plans off the optimum
    (random moves, then the repair); with and without the line extension of
    repeated one-lot moves."""
    from rebalopt.rebalance._integer_descent import descend, descend_plain

    search, q0, rng = _search(seed)
    compared = moved = 0
    for q in _walk(search, q0, rng, steps=12):
        q, _, ok = search.repair(q)  # a feasible plan off the optimum
        if not ok:
            continue
        f = search.objective(q)
        for min_gain, keep, budget in ((0.0, None, None), (1e-7, None, None),
                                       (0.0, int(np.argmax(q0)), None), (0.0, None, 3)):
            runs = []
            for fn in (descend, descend_plain):
                left = [budget]

                def charge(left=left):
                    if left[0] is None:
                        return True
                    left[0] -= 1
                    return left[0] >= 0

                runs.append(fn(search, q, f, 500, min_gain, keep_sold=keep, charge=charge,
                               extend=extend))
                if fn is descend:  # the table it updated, one asset a move, is a full one
                    Qt, dft, Dt = search._singles(runs[-1][0])
                    Qf, dff, _, Df, _ = search._evaluate(runs[-1][0], violations=False)
                    np.testing.assert_array_equal(Qt, Qf)
                    np.testing.assert_array_equal(Dt, Df)
                    np.testing.assert_array_equal(dft, dff)
            (qa, fa, ka), (qb, fb, kb) = runs
            np.testing.assert_array_equal(qa, qb)
            assert fa == fb and ka == kb
            assert fa == search.objective(qa) and search.feasible(qa)
            if keep is not None:
                assert qa[keep] <= q[keep]
            compared += 1
            moved += ka > 0
    assert compared >= 8 and moved >= 4


def test_the_stable_prefix_is_the_stable_sorts():
    from rebalopt.rebalance._integer_search import stable_prefix

    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        vals = rng.integers(-4, 4, n).astype(float)  # many ties
        vals[rng.random(n) < 0.1] = np.inf
        full = np.argsort(vals, kind="stable")
        for k in (1, 2, 5, n // 2 + 1, n, n + 3):
            np.testing.assert_array_equal(stable_prefix(vals, k), full[:min(k, n)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kept_tables_violations_are_a_full_evaluations_bit_for_bit(seed):
    search, q0, rng = _search(seed)
    for q in _walk(search, q0, rng):
        search._singles(q)
        _, _, V, _, _ = search._evaluate(q)
        np.testing.assert_array_equal(search._table_violations(q), V)


def _plain_repair(search, q):
    """The repair as first written: every move priced by a full :meth:`_evaluate`."""
    q = q.copy()
    for it in range(search.max_moves):
        cur = np.array(search.violations(q))
        if cur.size == 0 or (cur <= search.tol).all():
            return q, it, True
        Q, df, V, _, _ = search._evaluate(q)
        excess_now = np.maximum(cur - search.tol, 0).sum()
        red = excess_now - np.maximum(V - search.tol, 0).sum(axis=0)
        ok = (red > 1e-12 * (1.0 + excess_now)) & np.isfinite(df)
        if not ok.any():
            return q, it, False
        score = np.where(ok, df / np.where(ok, red, 1.0), np.inf)
        i, j = np.unravel_index(int(np.argmin(score)), score.shape)
        q[i] = Q[i, j]
    return q, search.max_moves, bool((np.array(search.violations(q)) <= search.tol).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_repair_on_the_kept_table_makes_the_full_evaluations_moves(seed):
    """Infeasible starts (cash spent past its floor, the sector cap broken: buys of up
    to 40 lots, some odd-lot counts) repaired on the kept table of moves and by the
    plain loop: the same moves, so the same plan and count."""
    search, q0, rng = _search(seed)
    moved = 0
    for k in range(6):
        start = q0.copy()
        buy = rng.choice(q0.size, 15, replace=False)
        start[buy] += rng.integers(1, 40, buy.size)
        if k % 2:
            start[buy[:3]] += 0.5  # off the lot grid: the steps back onto it
        start = search.clip(start)
        search._table = None
        want = _plain_repair(search, start)
        search._table = None
        got = search.repair(start)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:] == want[1:]
        moved += want[1]
    assert moved > 0  # the starts needed repairing


def _plain_pair(search, q, f, Q, df, D, eps):
    """The pair step as first written: candidates best first, each checked by
    ``feasible`` at its own point, the first feasible improving one taken."""
    up = np.where(D[:, 0] > 0, df[:, 0], np.inf)
    dn = np.where(D[:, 1] < 0, df[:, 1], np.inf)
    m = search.pair_width
    bi = np.argsort(up, kind="stable")[:m]
    si = np.argsort(dn, kind="stable")[:m]
    bi, si = bi[np.isfinite(up[bi])], si[np.isfinite(dn[si])]
    if bi.size == 0 or si.size == 0:
        return None
    cross = search.G[bi] @ search.G[si].T
    tot = (up[bi][:, None] + dn[si][None, :]
           + search.gT * D[bi, 0][:, None] * D[si, 1][None, :] * cross)
    tot[bi[:, None] == si[None, :]] = np.inf
    for flat in np.argsort(tot, axis=None, kind="stable")[:2 * m]:
        a, b = np.unravel_index(int(flat), tot.shape)
        if not tot[a, b] < -eps:
            break
        q2 = q.copy()
        q2[bi[a]], q2[si[b]] = Q[bi[a], 0], Q[si[b], 1]
        if search.feasible(q2):
            f2 = search.objective(q2)
            if f2 < f - eps:
                return q2, f2
    return None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairs_and_the_feasibility_filter_against_plain_checks(seed):
    """The pair step (filtered by _maybe_feasible, checked at points built by
    _feasible_near) finds the plain loop's pair; the filter never rules out a plan
    feasible() accepts, and _feasible_near is feasible()."""
    search, q0, rng = _search(seed)
    found = ruled_out = 0
    for q in _walk(search, q0, rng, steps=15):
        q, _, ok = search.repair(q)
        if not ok:
            continue
        f = search.objective(q)
        eps = 1e-13 + 1e-10 * abs(f)
        Q, df, D = search._singles(q)
        got = search._pair(q, f, Q, df, D, eps)
        Q, df, D = search._singles(q)
        want = _plain_pair(search, q, f, Q, df, D, eps)
        assert (got is None) == (want is None)
        if got is not None:
            found += 1
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1] == want[1]
        # random two- and three-asset changes of one or two lots
        m = 40
        rows = np.concatenate([rng.choice(q.size, 3, replace=False) for _ in range(m)])
        cols = np.repeat(np.arange(m), 3)
        vals = np.clip(q[rows] + rng.integers(-2, 3, rows.size), search.lo[rows], search.hi[rows])
        maybe = search._maybe_feasible(q, rows, cols, vals)
        for c in range(m):
            q2 = q.copy()
            q2[rows[cols == c]] = vals[cols == c]
            feas = search.feasible(q2)
            assert feas <= maybe[c]
            assert search._feasible_near(q, q2, rows[cols == c]) == feas
            ruled_out += not maybe[c]
    assert found and ruled_out


class _ZeroCost:
    """No trading cost, with the row pricing the kept-array descent needs."""

    def __call__(self, Z):
        return np.zeros(np.shape(Z))

    def price_rows(self, z, rows):
        return np.zeros(np.shape(z))

    def price_one(self, i, z):
        return np.zeros(np.shape(z))


def test_a_move_leaving_cash_just_above_its_floor_is_not_ruled_out():
    """Regression: the descent's row filter (used from the first step whose best
    moves were refused) ruled out every move leaving the cash less than ``tol +
    MAYBE_MARGIN`` *above* its floor (the margin's sign reversed), so the descent
    stopped with a feasible improving move left (on the 2009-2010 backtest slice,
    $100M in whole shares: one share of buy-back worth $0.09 against a $0.01
    minimum gain). Here: four big lots are unaffordable (refused, so the filter
    turns on), one small lot is bought, then one lot that leaves the cash
    ``MAYBE_MARGIN / 2`` above zero. Oracles: descend_plain (each move checked at
    its own point) and every single move from the end plan, checked exactly."""
    from rebalopt.program.search import CashRow
    from rebalopt.rebalance._integer_descent import MAYBE_MARGIN, descend, descend_plain
    from rebalopt.rebalance._integer_search import LotSearch

    M = MAYBE_MARGIN
    ell = np.array([0.02, 0.02, 0.02, 0.02, 0.01 - M / 2, 0.001])
    S = LotSearch(
        w0=np.full(6, 0.05), c0=0.011, targets=np.array([0.1, 0.1, 0.1, 0.1, 0.06, 0.051]),
        ell=ell, costs=_ZeroCost(), G=np.zeros((6, 0)),
        s=np.array([0.5, 0.5, 0.5, 0.5, 0.2, 3.0]), gT=1.0, alpha=None,
        hard=[CashRow(0.0)], soft=[], kmin=None, tol=1e-12)
    q0 = np.zeros(6)
    f0 = S.objective(q0)
    qa, fa, ka = descend(S, q0, f0, 100, 0.0)
    S._table = None
    qb, fb, kb = descend_plain(S, q0, f0, 100, 0.0)
    np.testing.assert_array_equal(qa, qb)
    assert (fa, ka) == (fb, kb)
    assert S.feasible(qa) and qa[4] == 1.0  # the lot that leaves M / 2 of cash
    eps = 1e-13 + 1e-10 * abs(fa)
    for i in range(6):  # no single move from the end plan is feasible and improving
        for v in (qa[i] - 1, qa[i] + 1, 0.0):
            q2 = qa.copy()
            q2[i] = v
            assert not (S.feasible(q2) and S.objective(q2) < fa - eps)
