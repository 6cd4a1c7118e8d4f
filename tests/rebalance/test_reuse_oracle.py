"""A rebalancer that has planned other accounts answers bit for bit what a fresh one
answers (the oracle): the kept program, its sparse patterns and the per-universe
caches of the constraints carry no state from one book to the next."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt import MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.rebalance._clarabel import CscPattern
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel

N, K = 12, 3
NAMES = [f"S{i:02d}" for i in range(N)]
INDEX = pd.Index(NAMES, dtype=object, name="asset")
_rng = np.random.default_rng(7)
_G = _rng.normal(0.0, 0.1, (N, K))
SECTORS = np.array([f"g{i % 3}" for i in range(N)], dtype=object)
PRICES = _rng.uniform(10.0, 100.0, N)


def _rebalancer() -> OptimalRebalancer:
    risk = FactorModel(pd.DataFrame(_G, index=NAMES), pd.DataFrame(np.eye(K)),
                       pd.Series(np.full(N, 0.04), index=NAMES))
    return OptimalRebalancer(
        risk=risk, costs=[Spread(half_spread_bps=5.0), MarketImpact(coef=1.0)],
        constraints=[LongOnly(), CashFloor(), WeightBounds(upper=0.2),
                     TurnoverLimit(cap=0.3), GroupBounds(upper=0.05, lower=-0.05,
                                                         relative=True)])


def _book(seed: int) -> tuple[PortfolioState, pd.Series]:
    rng = np.random.default_rng(seed)
    target = rng.dirichlet(np.ones(N)) * 0.95
    target = np.minimum(target, 0.15)
    equity = float(rng.uniform(1e5, 1e7))
    w0 = target * np.exp(rng.normal(0.0, 0.5, N))
    w0 *= 0.9 / w0.sum()
    holdings = np.floor(w0 * equity / PRICES)
    state = PortfolioState.from_arrays(
        INDEX, holdings, equity - float(holdings @ PRICES), PRICES,
        adv=rng.uniform(1e4, 1e6, N), volatility=rng.uniform(0.01, 0.03, N), groups=SECTORS)
    return state, pd.Series(target, index=NAMES)  # a string index, as users build them


_SHARED = _rebalancer()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seeds=st.lists(st.integers(0, 10_000), min_size=2, max_size=4))
def test_reused_rebalancer_plans_bit_for_bit_as_a_fresh_one(seeds):
    for seed in seeds:
        state, targets = _book(seed)
        reused = _SHARED.plan(state, targets)
        fresh = pickle.loads(pickle.dumps(_rebalancer())).plan(state, targets)
        assert reused.trades.tobytes() == fresh.trades.tobytes()
        assert reused.info["objective"] == fresh.info["objective"]
    assert _SHARED.compilations == 1  # one universe: one program for every book
    assert _SHARED._direct._patterns[1].hits >= 1  # the kept pattern was used
    assert "_universe_memo" in _SHARED.constraints[-1].__dict__  # and the group rows


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), dup=st.booleans())
def test_csc_pattern_equals_scipy(seed, dup):
    """CscPattern's matrix equals SciPy's from the same coordinates, bit for bit, on the
    first call, on a reuse with new values, and with duplicate entries (always SciPy)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    m, n, nnz = 7, 5, 15
    cells = rng.choice(m * n, size=nnz, replace=False)
    row, col = cells // n, cells % n
    if dup:
        row, col = np.r_[row, row[:3]], np.r_[col, col[:3]]
    pat = CscPattern()
    for _ in range(3):
        val = rng.normal(size=row.size)
        got = pat.matrix(row, col, val, (m, n))
        want = sp.csc_matrix((val, (row, col)), shape=(m, n))
        assert got.indices.tobytes() == want.indices.astype(got.indices.dtype).tobytes()
        assert np.array_equal(got.indptr, want.indptr)
        assert got.data.tobytes() == want.data.tobytes()
        # the format flag a reuse carries equals a fresh scan of its indices
        fresh = sp.csc_matrix((got.data, got.indices.copy(), got.indptr.copy()),
                              shape=(m, n))
        assert got.has_canonical_format == fresh.has_canonical_format
    assert pat.hits == (0 if dup else 2)
