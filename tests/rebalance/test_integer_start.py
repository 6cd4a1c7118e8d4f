"""The start of the lot search on large books (:mod:`rebalopt.rebalance._integer_start`).

* the sequential rounding gives each asset, biggest lot first, the count in its box
  with the lowest *full* objective given the counts of the blocks before it (oracle:
  the search's own objective at every candidate mixed plan, priced in full);
* the guided box holds the start and the search's own box, and no count more than
  ``GUIDE_LOTS`` median lot weights from the relaxed count except the nearest;
* a book beyond ``GUIDED_ASSETS`` gets the same plan in consecutive calls and in a
  fresh process, verified against every hard constraint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from integer_books import lot_book

from rebalopt.rebalance._integer_start import (
    GUIDE_LOTS,
    GUIDED_ASSETS,
    ZERO_LOTS,
    blocks,
    guided_box,
    sequential_round,
)
from rebalopt.rebalance.integer import IntegerRebalancer

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def book(seed: int, n: int):
    """``n`` assets, 100-share lots, odd-lot holdings below target (:func:`lot_book`)."""
    return lot_book(seed, n)


def _search_and_k(seed: int, n: int = 40):
    state, targets, relax = book(seed, n)
    reb = IntegerRebalancer(relax)
    sol = reb.relaxed().solve(state, targets)
    lots = reb.lot_sizes(state)
    search, _, _, ell = reb._search(state, sol, lots, [])
    k = sol.z / ell
    q0 = np.round(k)
    if search.close is not None:
        q0 = np.where(np.abs(k - search.close) < np.abs(k - q0), search.close, q0)
    return search, k, search.clip(q0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_asset_gets_its_best_count_given_the_ones_before(seed):
    search, k, q0 = _search_and_k(seed)
    lo, hi = guided_box(search, k, q0)
    q = sequential_round(search, k, lo, hi, q0)
    choice = (hi > lo) & (lo == np.floor(lo)) & (hi == np.floor(hi)) & ~np.isnan(k)
    assert choice.sum() >= 10
    assert (q[~choice] == q0[~choice]).all()
    mixed = np.where(choice, k, q0)  # the ones not rounded yet sit at their relaxed count
    idx = np.flatnonzero(choice)
    order = idx[np.argsort(-search.ell[idx], kind="stable")]
    for b in blocks(order.size):
        for i in order[b]:
            vals = np.arange(lo[i], min(hi[i], lo[i] + 8) + 1)
            objs = []
            for v in vals:
                trial = mixed.copy()
                trial[i] = v
                objs.append(search.objective(trial))
            best = min(objs)
            assert q[i] in vals
            assert objs[list(vals).index(q[i])] <= best + 1e-12 * (1 + abs(best))
        mixed[order[b]] = q[order[b]]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_guided_box_holds_the_start_within_the_searchs_box(seed):
    search, k, q0 = _search_and_k(seed)
    lo, hi = guided_box(search, k, q0)
    assert (lo <= q0).all() and (q0 <= hi).all()
    assert (lo >= search.lo).all() and (hi <= search.hi).all()
    tol = GUIDE_LOTS * float(np.median(search.ell))
    ok = ~np.isnan(k)
    near = np.maximum(tol, np.abs(np.round(k) - k) * search.ell) + 1e-12
    below, above = ok & (lo < q0), ok & (hi > q0)  # bounds the start did not set
    assert ((k - lo) * search.ell <= near)[below].all()
    assert ((hi - k) * search.ell <= near)[above].all()
    assert (below | above).sum() >= 10


def run(seed: int) -> dict:
    state, targets, relax = book(seed, GUIDED_ASSETS + 50)
    reb = IntegerRebalancer(relax)
    a, b = reb.plan(state, targets), reb.plan(state, targets)
    x = np.asarray(a.trades, dtype=float)
    whole = (np.mod(x, 100.0) == 0) | (x == -state.holdings)  # lots, or a position closed
    return {"trades": [float(v).hex() for v in a.trades],
            "again": [float(v).hex() for v in b.trades],
            "whole": bool(whole.all()), "cash": float(state.cash - x @ state.prices),
            "objective": a.info["integer_objective"],
            "relaxation": a.info["relaxation_objective"]}


def test_a_guided_book_plans_the_same_in_a_row_and_in_a_fresh_process():
    a = run(3)
    assert a["trades"] == a["again"]
    assert a["whole"] and a["cash"] >= 0  # lots only; a cash account (before costs)
    assert a["objective"] >= a["relaxation"] - 1e-9  # the relaxation bounds every plan
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]),
               PYTHONHASHSEED="random")
    code = "import json, test_integer_start as t; print(json.dumps(t.run(3)))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=str(HERE), timeout=600)
    b = json.loads(out.stdout.strip().splitlines()[-1])
    assert b["trades"] == a["trades"]


def _whole_share_search(seed: int, n: int = 40, invested: bool = False):
    """:func:`lot_book`'s targets in whole shares on 20 times its equity, the book
    within 1% of them, so the relaxed trades are tens to hundreds of shares and the $1
    commission minimum binds below 200 shares. ``invested``: targets summing to 1 and
    the book 0-2% below them (the cash floor binds)."""
    import pandas as pd

    from rebalopt.state import PortfolioState

    state, targets, relax = lot_book(seed, n)
    prices = np.asarray(state.prices, float)
    V = 20.0 * state.equity
    drift = np.random.default_rng(seed).uniform(0.99, 1.01, n)  # a book near its targets
    if invested:
        targets = targets / targets.sum()
        drift = drift - 0.01
    hold = np.floor(targets.to_numpy() * V * drift / prices)
    cash = V - float(hold @ prices)
    idx = targets.index
    whole = PortfolioState(pd.Series(hold, index=idx), cash, pd.Series(prices, index=idx),
                           lot_sizes=pd.Series(1.0, index=idx),
                           groups=pd.Series(np.asarray(state.groups), index=idx),
                           adv=pd.Series(np.asarray(state.adv) * 20.0, index=idx),
                           volatility=pd.Series(np.asarray(state.volatility), index=idx))
    reb = IntegerRebalancer(relax)
    sol = reb.relaxed().solve(whole, targets)
    lots = reb.lot_sizes(whole)
    search, _, _, ell = reb._search(whole, sol, lots, [])
    k = sol.z / ell
    return whole, search, k, search.clip(np.round(k))


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_shares_the_rounding_may_pick_no_trade_beside_the_box(seed):
    """Whole shares, $0.005 a share with a $1 minimum: the order floor is 200 shares'
    weight (by hand: $1 / $0.005); an asset whose relaxed trade is below it and whose
    box holds no zero is also offered no trade, and gets the best of its box's counts
    and no trade given the blocks before it (oracle: the search's full objective at
    each mixed plan); some assets take it."""
    state, search, k, q0 = _whole_share_search(seed)
    unit = state.prices * state.multipliers / state.equity
    np.testing.assert_allclose(search.costs.order_floor(), 200.0 * unit, rtol=1e-12)
    assert (search.costs.order_floor() >= ZERO_LOTS * search.ell).all()
    lo, hi = guided_box(search, k, q0)
    q = sequential_round(search, k, lo, hi, q0)
    choice = (hi > lo) & (lo == np.floor(lo)) & (hi == np.floor(hi)) & ~np.isnan(k)
    offered = choice & (np.abs(k * search.ell) < search.costs.order_floor()) \
        & ((lo > 0) | (hi < 0))
    assert offered.sum() >= 3
    mixed = np.where(choice, k, q0)
    idx = np.flatnonzero(choice)
    order = idx[np.argsort(-search.ell[idx], kind="stable")]
    for b in blocks(order.size):
        for i in order[b]:
            vals = list(np.arange(lo[i], min(hi[i], lo[i] + 8) + 1))
            if offered[i]:
                vals.append(0.0)
            objs = []
            for v in vals:
                trial = mixed.copy()
                trial[i] = v
                objs.append(search.objective(trial))
            assert q[i] in vals
            best = min(objs)
            assert objs[vals.index(q[i])] <= best + 1e-12 * (1 + abs(best))
        mixed[order[b]] = q[order[b]]
    assert ((q == 0) & offered).sum() >= 1
    assert ((q != 0) | offered | ((lo <= 0) & (hi >= 0)) | ~choice).all()


class _LinearCost:
    """1% of the traded weight (one lot of 1e-4: 1e-6), priced by rows too."""

    def __call__(self, Z):
        return 0.01 * np.abs(np.asarray(Z, float))

    def price_rows(self, Z, rows):
        return 0.01 * np.abs(np.asarray(Z, float))


@pytest.mark.parametrize("c0", [0.002, 0.05])
def test_a_pair_line_priced_at_once_ends_where_the_walk_does(c0):
    """LotSearch._extend prices a pair move's line at once (_extend_quick) and checks
    only the point it stops at. Two assets, a cash floor at 0 with ``c0`` of cash spent by the descent first:
    asset 0 is 0.2 under target, asset 1 0.2 over; a one-lot buy (gain 3.2e-6 of
    risk) pays its cost (1e-6) but needs cash, a one-lot sale alone (8e-7) does
    not, so once the cash is spent the sale-and-buy pair (4e-6 for 2e-6) is the
    move, along a line of some 1,000 lots (by hand: the pair's marginal gain
    0.2 (0.2 - k 1e-4) 1e-4 meets its cost 2e-6 near k = 1,000). Oracle: the
    point-by-point walk (each multiple checked at its own point and priced in
    full); the same plan and objective, feasible, beyond the one-lot pair."""
    from rebalopt.program.search import CashRow
    from rebalopt.rebalance._integer_descent import descend
    from rebalopt.rebalance._integer_search import LotSearch

    S = LotSearch(w0=np.array([0.3, 0.7]), c0=c0, targets=np.array([0.5, 0.5]),
                  ell=np.array([1e-4, 1e-4]), costs=_LinearCost(), G=np.zeros((2, 0)),
                  s=np.array([0.4, 0.2]), gT=1.0, alpha=None, hard=[CashRow(0.0)], soft=[],
                  kmin=None, tol=1e-12, extend=False)
    q, f, _ = descend(S, np.zeros(2), S.objective(np.zeros(2)), 10_000, 0.0)
    q1 = q + np.array([1.0, -1.0])
    f1 = S.objective(q1)
    assert S.feasible(q1) and f1 < f
    qa, fa = S._extend(q, q1, f1)
    walk = LotSearch._extend_quick
    try:
        LotSearch._extend_quick = lambda *a, **kw: None
        qb, fb = S._extend(q, q1, f1)
    finally:
        LotSearch._extend_quick = walk
    np.testing.assert_array_equal(qa, qb)
    assert fa == fb == S.objective(qa) and S.feasible(qa)
    assert qa[0] - q[0] >= 2.0  # beyond the one-lot pair
