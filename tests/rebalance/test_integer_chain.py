"""Round mode's sell/buy chains: the improve phase ends pair-optimal.

Regression (bench_integer (a), case 1, quadratic impact): round stopped 0.58% above
SCIP's proven optimum because the one improving move left, sell one lot of an asset
in a capped sector and buy one lot of another in the same sector, paired a buy and a
sell that were not both among the 12 best of their side. The chain pass evaluates,
after each of the cheapest sells (buys), every buy (sell) exactly.

Oracles: brute force over every one-lot sell/buy pair and every single one-lot move
at the plan round returns (objective and feasibility recomputed for each), and a
three-asset toy whose optimum is found by enumerating every lot combination.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.program.search import Kernel
from rebalopt.rebalance._integer_search import LotSearch
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance


class _NoCost:
    def __call__(self, Z):
        return np.zeros(np.shape(Z))


class _GroupCap(Kernel):
    """Assets 0 and 1 together at most ``cap`` of equity (a hard kernel by hand; its
    ``totals`` is the base class's, one ``total`` per column)."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def total(self, P) -> float:
        return max(float(P.w[0] + P.w[1]) - self.cap, 0.0)

    def candidates(self, P, Z, W, CASH):
        base = P.w[0] + P.w[1]
        after = base + (W - P.w[:, None])
        after[2:] = base  # asset 2 is outside the group
        return np.maximum(after - self.cap, 0.0)


def _toy(pair_width: int, chain_width: int) -> LotSearch:
    """Asset 0 under target, asset 1 over, the group cap binding at the start:
    buying 0 alone breaks the cap, selling 1 alone costs more risk than it saves
    (asset 1's variance is tiny next to asset 0's), the sell-1/buy-0 pair wins."""
    return LotSearch(
        w0=np.array([0.10, 0.30, 0.30]), c0=0.30, targets=np.array([0.13, 0.29, 0.30]),
        ell=np.array([0.01, 0.01, 0.01]), costs=_NoCost(), G=np.zeros((3, 0)),
        s=np.array([0.4, 0.05, 0.2]), gT=1.0, alpha=None, hard=[_GroupCap(0.40)], soft=[],
        kmin=None, tol=1e-12, pair_width=pair_width, chain_width=chain_width,
    )


def test_chain_finds_the_pair_that_makes_room_under_the_cap():
    start = np.zeros(3)
    stuck = _toy(pair_width=0, chain_width=0).run(start)
    assert stuck.feasible and stuck.pair_moves == 0
    search = _toy(pair_width=0, chain_width=16)
    res = search.run(start)
    # oracle: every lot combination in a box around the start
    best = min((search.objective(np.array(q, float)), q)
               for q in itertools.product(range(-4, 5), repeat=3)
               if search.feasible(np.array(q, float)))
    assert res.feasible and res.pair_moves >= 1
    assert res.objective < stuck.objective
    assert abs(res.objective - best[0]) <= 1e-15
    assert tuple(res.q) == best[1]


def _book(n: int, seed: int, cap: float):
    """A book of ``n`` assets in two groups, each at most ``cap`` of equity (``books``)."""
    rng = np.random.default_rng(seed)
    assets = [f"C{i:02d}" for i in range(n)]
    prices = rng.uniform(20, 250, n)
    V = 2e5
    targets = rng.dirichlet(np.ones(n) * 2) * 0.98
    hold = np.floor(targets * V * np.exp(rng.normal(0, 0.3, n)) / prices / 10) * 10
    cash = max(V - float(hold @ prices), 0.01 * V)
    state = PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(prices, index=assets),
                           lot_sizes=pd.Series(10.0, index=assets),
                           groups=pd.Series(rng.choice(["A", "B"], n), index=assets),
                           adv=pd.Series(rng.uniform(5e3, 5e4, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    vol = rng.uniform(0.1, 0.4, n)
    sigma = pd.DataFrame(np.outer(vol, vol) * (0.3 + 0.7 * np.eye(n)), index=assets,
                         columns=assets)
    return state, pd.Series(targets, index=assets), sigma, cap


def test_chain_passes_are_a_work_count_in_proportion_to_the_book():
    """Two passes of 16 sells and buys on a 500-asset book (what kept round mode in its
    time budget), a hundred and more on a 9-asset one, where a pass is cheap."""
    search = _toy(pair_width=0, chain_width=16)
    assert search.max_chains(500) == 2
    assert search.max_chains(9) >= 100
    assert search.max_chains(10**6) == 1  # at least one pass


@st.composite
def books(draw):
    return _book(draw(st.integers(4, 10)), draw(st.integers(0, 10_000)), draw(st.floats(0.4, 0.7)))


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(books())
# Counterexamples found with many more examples (about 1 book in 150 of 9 assets):
# two chain passes per improve, then a neighbourhood budget spent on infeasible
# combinations, left sell C03 / buy C07 improving (0.04%); and a neighbourhood move
# taken just before the budget ran out, never polished, left sell C05 / buy C06 (0.28%).
@example(_book(9, 21, 0.4))
@example(_book(9, 109, 0.5))
# a pair saving 1.45e-8 of equity (a third of a cent on this $200k book), below
# min_saving: the test's own tolerance was finer than the documented one (not a miss)
@example(_book(9, 713, 0.7))
def test_round_ends_where_no_single_move_or_lot_pair_improves(book):
    state, targets, sigma, cap = book
    relax = OptimalRebalancer(
        risk=Covariance(sigma), costs=[Spread(5.0), MarketImpact(coef=1.0, exponent=2.0),
                                       Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)], risk_aversion=200.0)
    reb = IntegerRebalancer(relax)
    sol = reb.relaxed().solve(state, targets)
    search, _, res, _ = reb._search(state, sol, reb.lot_sizes(state), [])
    if not res.feasible:
        return
    q, n = res.q, state.n
    f = search.objective(q)
    # a move saving less than min_saving (one cent by default) is not made, by design
    eps = max(1e-13 + 1e-10 * abs(f), search.min_gain)
    steps = [np.eye(n)[i] * s for i in range(n) for s in (1.0, -1.0)]
    steps += [np.eye(n)[i] - np.eye(n)[j] for i in range(n) for j in range(n) if i != j]
    lo, hi = search.lo, search.hi
    for step in steps:
        q2 = q + step
        if (q2 < lo).any() or (q2 > hi).any() or not search.feasible(q2):
            continue
        assert search.objective(q2) >= f - eps, step


def _line_toy() -> LotSearch:
    """Fine lots (0.1% of equity) and a binding group cap over assets 0 and 1:
    asset 0 sits 3% under its target, asset 1 at its own; buying 0 alone breaks
    the cap and selling 1 alone moves it off target, so only sell-1/buy-0 pairs
    improve, about 30 of them along one line (asset 2 boxed at no trade)."""
    return LotSearch(
        w0=np.array([0.10, 0.30, 0.30]), c0=0.30, targets=np.array([0.13, 0.30, 0.30]),
        ell=np.array([0.001, 0.001, 0.001]), costs=_NoCost(), G=np.zeros((3, 0)),
        s=np.array([0.4, 0.05, 0.2]), gT=1.0, alpha=None, hard=[_GroupCap(0.40)], soft=[],
        kmin=None, tol=1e-12, box=(np.array([-200.0, -200.0, 0.0]),
                                   np.array([200.0, 200.0, 0.0])),
    )


def test_a_pair_line_is_walked_in_a_few_pair_moves_to_the_optimum():
    """The pair pass's move repeated along its line (k = 2, 4, ...), each point
    checked: the optimum is reached in a few pair moves, not one per lot.
    Oracle: every lot pair (q0, q1) in [-200, 200]^2, objective in closed form
    (no cost, diagonal risk) and the cap checked on the weights."""
    search = _line_toy()
    res = search.run(np.zeros(3))
    q = np.arange(-200.0, 201.0)
    Q0, Q1 = np.meshgrid(q, q, indexing="ij")
    w0, w1 = 0.10 + 0.001 * Q0, 0.30 + 0.001 * Q1
    f = 0.5 * (0.16 * (w0 - 0.13) ** 2 + 0.0025 * (w1 - 0.30) ** 2)
    f = np.where(w0 + w1 <= 0.40 + 1e-12, f, np.inf)
    k = np.unravel_index(int(np.argmin(f)), f.shape)
    assert res.feasible
    assert (res.q[0], res.q[1], res.q[2]) == (q[k[0]], q[k[1]], 0.0)
    assert abs(res.objective - float(f[k])) <= 1e-15
    assert res.pair_moves <= 8 < abs(q[k[0]])  # fewer pair moves than lots moved
