"""The neighbourhood search on a large book (:mod:`rebalopt.rebalance._integer_lns`).

On books of more than ``GUIDED_ASSETS`` assets the neighbourhoods take only the
multi-lot single moves. Oracle: every single-asset change of the round plan by the
lot counts that pass prices (1, 2, 4 or 8 lots either way) or to no trade, priced on the full objective
(:meth:`IntegerRebalancer.objective`) and checked against every hard constraint
(:meth:`IntegerRebalancer.check`): none is feasible and lower by more than the
search's smallest saving.
"""

from __future__ import annotations

import numpy as np
from integer_books import lot_book

from rebalopt.rebalance._integer_start import GUIDED_ASSETS
from rebalopt.rebalance.integer import IntegerRebalancer


def _book(seed: int, n: int):
    """``n`` assets in 100-share lots, holdings below target in whole lots
    (:func:`integer_books.lot_book`)."""
    return lot_book(seed, n, lot_holdings=True)


def test_a_large_books_plan_has_no_improving_multi_lot_single_move():
    state, targets, relax = _book(3, GUIDED_ASSETS + 20)
    reb = IntegerRebalancer(relax)
    sol = reb.solve(state, targets)
    assert sol.work.get("lns_sets", 0) == 0  # no pair or triple neighbourhoods on this book
    assert "big_lot_moves" not in sol.work
    w_t = state.target_weights(targets)
    f = reb.objective(sol.shares, state, w_t)
    lots = sol.lots
    tried = improving = 0
    for i in range(state.n):
        for change in (-8, -4, -2, -1, 1, 2, 4, 8, None):
            x = sol.shares.copy()
            x[i] = 0.0 if change is None else x[i] + change * lots[i]
            if np.array_equal(x, sol.shares):
                continue
            if any(not s.satisfied for c, s in zip(reb.constraints(state),
                                                  reb.check(x, state, w_t).values())
                   if not c.soft):
                continue
            tried += 1
            improving += reb.objective(x, state, w_t) < f - reb.min_saving / state.equity
    assert tried > 5 * state.n and improving == 0
