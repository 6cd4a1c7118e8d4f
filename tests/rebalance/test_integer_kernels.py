"""The kernels' totals at candidate plans that change a few assets
(:func:`~rebalopt.rebalance._integer_kernels.sparse_totals`).

Oracle: each kernel's own ``totals`` at the whole candidate plans (every asset's
trade and weight written out), for the kernels of every constraint that declares
one (per-asset rows, aggregates, sparse linear rows of groups and factors, the cash
row) and for a constraint without a declared kernel (the generic one), at plans
that change one, two or three assets, some of them the same asset by the same
amount in several plans.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt import PortfolioState
from rebalopt.constraints import (
    CashFloor,
    FactorBounds,
    GroupBounds,
    Leverage,
    LongOnly,
    MaxTrades,
    MinTradeValue,
    ParticipationLimit,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.program.search import PointArrays
from rebalopt.rebalance._integer_kernels import SparseMoves, kernel_for, sparse_totals


def _book(seed: int, n: int = 30):
    """A $1M book near equal weights, 3 groups, 3 factors, and eleven constraints set
    so that small trades keep them and the candidates' larger ones break them."""
    rng = np.random.default_rng(seed)
    assets = [f"A{i:02d}" for i in range(n)]
    prices = rng.uniform(20, 300, n)
    hold = np.round(0.9e6 / n / prices * rng.uniform(0.8, 1.2, n))
    cash = 1e6 - float(hold @ prices)
    state = PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(prices, index=assets),
                           groups=pd.Series(rng.choice(["G1", "G2", "G3"], n), index=assets),
                           adv=pd.Series(rng.uniform(1e3, 1e4, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    loadings = pd.DataFrame(rng.normal(0, 0.1, (n, 3)), index=assets)
    targets = np.full(n, 0.9 / n)
    expo = loadings.to_numpy().T @ state.weights
    top = float(pd.Series(state.weights).groupby(np.asarray(state.groups)).sum().max())
    cons = [LongOnly(), CashFloor(0.09), GroupBounds(upper=top + 0.005),
            FactorBounds(loadings, upper=dict(enumerate(np.abs(expo) + 0.005)),
                         lower=dict(enumerate(-np.abs(expo) - 0.005))),
            Leverage(0.93), ShortLimit(per_asset=0.005, total=0.01), TurnoverLimit(0.02),
            WeightBounds(upper=0.045), ParticipationLimit(0.02), MinTradeValue(500.0),
            MaxTrades(8)]
    return state, targets, cons, rng


def _candidates(rng, n: int, m: int, w_scale: float):
    """Plans changing 1-3 distinct assets each; some (asset, new trade) pairs repeat."""
    rows, cols, vals = [], [], []
    pool = rng.normal(0, w_scale, (n, 2))  # two new trades per asset, shared by plans
    for c in range(m):
        k = int(rng.integers(1, 4))
        for i in rng.choice(n, k, replace=False):
            rows.append(i)
            cols.append(c)
            vals.append(pool[i, int(rng.integers(0, 2))])
    return np.array(rows), np.array(cols), np.array(vals)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sparse_totals_equal_the_totals_of_the_whole_candidate_plans(seed):
    state, targets, cons, rng = _book(seed)
    n = state.n
    w0 = state.weights
    z = np.zeros(n)
    z[rng.choice(n, 6, replace=False)] = rng.normal(0, 0.003, 6)
    P = PointArrays(z, w0 + z, state.cash_weight - float(z.sum()) - 1e-4)
    rows, cols, vals = _candidates(rng, n, 60, 0.012)
    m = int(cols.max()) + 1
    cash = P.cash - np.bincount(cols, weights=vals - z[rows], minlength=m)
    moves = SparseMoves(P, w0, rows, cols, vals, m)
    Z = np.repeat(z[:, None], m, axis=1)
    Z[rows, cols] = vals
    W = w0[:, None] + Z
    seen_violation = 0
    for c in cons:
        k = kernel_for(c, state, targets)
        want = k.totals(Z, W, cash)
        got = sparse_totals(k, moves, cash)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=c.describe())
        seen_violation += int((want > 0).any() and (want == 0).any())
    assert seen_violation >= 6  # the plans straddle most constraints' boundaries


class _NoKernel(LongOnly):
    """``w >= 0`` without a declared kernel: the generic kernel through ``evaluate``."""

    def search_kernel(self, state, targets):  # type: ignore[no-untyped-def]
        return None


def test_a_constraint_without_a_kernel_is_checked_on_the_whole_plans():
    state, targets, _, rng = _book(5)
    n = state.n
    z = rng.normal(0, 0.01, n)
    P = PointArrays(z, state.weights + z, state.cash_weight - float(z.sum()))
    rows, cols, vals = _candidates(rng, n, 12, 0.02)
    m = int(cols.max()) + 1
    cash = np.full(m, P.cash)
    k = kernel_for(_NoKernel(), state, targets)
    assert not k.exact
    Z = np.repeat(z[:, None], m, axis=1)
    Z[rows, cols] = vals
    want = k.totals(Z, state.weights[:, None] + Z, cash)
    dense: list = []
    got = sparse_totals(k, SparseMoves(P, state.weights, rows, cols, vals, m), cash, dense)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert len(dense) == 1 and (want > 0).any()
