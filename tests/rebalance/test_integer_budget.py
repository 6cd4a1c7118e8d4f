"""The neighbourhood search's work budget is a bound on the whole search, in proportion
to the book.

Regression: on a 30-asset whole-share book of notebook 02 one plan took 64 s. An
exchange (one order dropped, another opened) was re-searched by the local search
from scratch: the budget was checked before it and charged after, and the dropped
order could only come back one share per move, so each of the three re-searches ran
to ``max_moves`` (20,000 moves): 14.6M work units against a budget of 300,000.

Oracles: a toy search whose optimum is 5,000 one-lot steps from the start (counted
by hand), and the work each plan reports against the budget it was given.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rebalopt.rebalance._integer_lns import (
    WORK,
    WORK_MIN,
    WORK_PER_ASSET,
    Neighbourhoods,
    default_work,
)
from rebalopt.rebalance._integer_search import LotSearch
from rebalopt.rebalance.integer import IntegerRebalancer


class _NoCost:
    def __call__(self, Z):
        return np.zeros(np.shape(Z))


def _far_walk(extend: bool = False) -> LotSearch:
    """Two assets, no cost, no constraint: the optimum buys 5,000 lots of asset 0
    (lot weight 1e-4, 0.5 below target), 5,000 improving one-lot moves from no trade
    (without the descent's line extension, which the budget tests leave out: the
    walk of the regression came back one share per move)."""
    return LotSearch(
        w0=np.array([0.0, 0.5]), c0=0.5, targets=np.array([0.5, 0.5]),
        ell=np.array([1e-4, 1e-4]), costs=_NoCost(), G=np.zeros((2, 0)),
        s=np.array([0.2, 0.2]), gT=1.0, alpha=None, hard=[], soft=[], kmin=None, tol=0.0,
        extend=extend,
    )


def test_the_line_extension_walks_to_the_optimum_in_few_moves():
    """With the line extension (the default) the 5,000-lot walk ends at the optimum
    (counted by hand: 5,000 lots of asset 0, none of asset 1) in far fewer moves; each
    move on the line is a point taken, and the one-lot walk makes 5,000."""
    q, singles, pairs = _far_walk(extend=True).improve(np.zeros(2))
    np.testing.assert_array_equal(q, [5_000.0, 0.0])
    assert pairs == 0 and singles < 1_000
    q, singles, _ = _far_walk(extend=False).improve(np.zeros(2))
    np.testing.assert_array_equal(q, [5_000.0, 0.0])
    assert singles == 5_000


def test_a_re_search_is_capped_by_the_work_left_and_charged_for_its_moves():
    search = _far_walk()
    nb = Neighbourhoods(search, work=20_000)
    res = nb._local(np.zeros(2))
    assert res is not None and res.feasible
    assert 0 < res.q[0] < 5_000             # stopped by the budget, short of the optimum
    assert nb.used <= 20_000                # charged, and within the budget
    assert nb.stats.get("budget_exhausted", 0) == 0
    assert search.max_moves == 20_000       # the search's own cap is restored
    # nothing left for even one move: not run at all
    spent = Neighbourhoods(search, work=20_000, used=20_000)
    assert spent._local(np.zeros(2)) is None
    assert spent.stats["budget_exhausted"] == 1


def test_a_re_search_jumps_back_to_the_anchor_in_one_move():
    nb = Neighbourhoods(_far_walk(), work=20_000)
    res = nb._local(np.zeros(2), anchor=np.array([5_000.0, 0.0]))
    assert res.q.tolist() == [5_000.0, 0.0]
    assert res.improve_moves == 1


def test_default_budget_is_in_proportion_to_the_book():
    """In proportion up to the books that start from the sequential rounding
    (``GUIDED_ASSETS``), which keep the smallest budget."""
    from rebalopt.rebalance._integer_start import GUIDED_ASSETS

    assert default_work(3) == WORK_MIN
    assert default_work(30) == 30 * WORK_PER_ASSET
    assert default_work(GUIDED_ASSETS) == min(WORK, GUIDED_ASSETS * WORK_PER_ASSET)
    sizes = [1, 6, 20, 30, 40, GUIDED_ASSETS]
    assert all(default_work(a) <= default_work(b) for a, b in itertools.pairwise(sizes))
    assert default_work(GUIDED_ASSETS + 1) == default_work(5_000) == WORK_MIN


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("work", [3_000, 20_000, None])
def test_every_plan_stays_within_its_budget(seed, work):
    """40 assets, 100-share lots, a binding sector cap: the search reports at most its
    budget plus one candidate plan (the last priced)."""
    from test_integer import forty

    state, targets, relax = forty(seed)
    plan = IntegerRebalancer(relax, work=work).plan(state, targets)
    budget = default_work(state.n) if work is None else work
    assert plan.info["work"]["lns_work"] <= budget + state.n


def test_whole_share_book_stays_within_its_budget():
    """The demo's 20-asset $100M whole-share book (the walk's setting) at each risk
    aversion of the quick demo, with the largest budget."""
    pytest.importorskip("skfolio")
    from test_integer_no_trade import demo_book, demo_costs

    from rebalopt.rebalance.optimal import OptimalRebalancer

    state, targets, risk = demo_book()
    for gamma in (3.0, 30.0, 300.0, 3000.0):
        relax = OptimalRebalancer(risk=risk, costs=demo_costs(), horizon=1 / 12,
                                  risk_aversion=gamma)
        plan = IntegerRebalancer(relax, work=WORK).plan(state, targets)
        assert plan.info["work"]["lns_work"] <= WORK + state.n, gamma


def test_work_must_be_a_count():
    from rebalopt.errors import InputError

    with pytest.raises(InputError):
        IntegerRebalancer(work=-1)
    with pytest.raises(InputError):
        IntegerRebalancer(work=1.5)
