"""The integer stage against a brute-force oracle family (``integer_family.py``).

Each seed is a small cash account (3-6 assets, lots of 1 or 100 shares, odd-lot
holdings, sector caps, commission minimums and per-order fees, 3/2-power impact,
``MinTradeValue``, ``MaxTrades``, ``TurnoverLimit``) whose every integer plan in a
box that provably holds the optimum is enumerated and priced by hand. Checked:

* round's objective against the true optimum (distribution: p99 within 1%, worst
  within 5%), and every plan meeting the hard constraints by hand;
* the certificate: the reported gap is never below the true gap, and a plan
  reported proven optimal is the optimum;
* infeasibility: round raises only when the oracle finds no plan at all;
* the oracle's own winner passes the rebalancer's numeric ``check`` and its
  ``objective`` equals the hand-computed one (the two pricings agree);
* ``exact`` (SCIP) equals the optimum whenever it says proven.

Before this work round missed the optimum on 15 of 278 feasible seeds (p95 2.2%,
p99 27%, worst 63%, over whole-lot plans; worse once closing odd lots counts).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from integer_family import case, oracle

from rebalopt import InfeasibleError

SEEDS = range(240)


def _hand_feasible(c, x: np.ndarray, total_cost: float) -> None:
    s = c.state
    lot = s.lot_sizes
    on_grid = np.abs(x / lot - np.round(x / lot)) < 1e-9
    closes = np.abs(x + s.holdings) < 1e-9
    assert (on_grid | closes).all(), "neither whole lots nor a close"
    post = s.holdings + x
    assert (post >= -1e-9).all()
    assert s.cash - float(x @ s.prices) - total_cost >= -1e-6
    w = post * s.prices / s.equity
    for g in set(s.groups):
        assert w[s.groups == g].sum() <= c.cap + 1e-9
    traded = x != 0
    if c.turnover is not None:
        assert 0.5 * float(np.abs(x * s.prices).sum()) / s.equity <= c.turnover + 1e-9
    if c.min_value is not None:
        assert (np.abs(x[traded]) * s.prices[traded] >= c.min_value - 1e-6).all()
    if c.max_trades is not None:
        assert traded.sum() <= c.max_trades


def test_round_against_the_brute_force_family():
    gaps, compared, infeasible, proven = [], 0, 0, 0
    for seed in SEEDS:
        c = case(seed)
        reb = c.rebalancer()
        try:
            plan = reb.plan(c.state, c.targets)
        except InfeasibleError:
            best, _, _ = oracle(c, 1e9)  # the box bounded by caps and turnover alone
            assert best == np.inf, f"seed {seed}: round raised but a plan exists"
            infeasible += 1
            continue
        info = plan.info
        f = info["integer_objective"]
        _hand_feasible(c, plan.trades, plan.total_cost)
        try:
            best, x, _ = oracle(c, f)
        except ValueError:  # box too large to enumerate in a test
            continue
        compared += 1
        assert best <= f + 1e-12 * max(1.0, abs(f)), f"seed {seed}: oracle missed round's plan"
        # the oracle's winner, through the rebalancer's own numeric checks and pricing
        slacks = reb.check(x, c.state, c.targets)
        assert all(sl.satisfied for sl in slacks.values()), seed
        assert reb.objective(x, c.state, c.targets) == pytest.approx(best, rel=1e-9, abs=1e-14)
        true_gap = f - best
        gaps.append(true_gap / abs(best) if best else 0.0)
        assert info["certified_gap"] >= true_gap - 1e-12 * max(1.0, abs(f)), seed
        assert info["integer_gap"] >= true_gap - 1e-12 * max(1.0, abs(f)), seed
        if info["proven_optimal"]:
            proven += 1
            assert true_gap <= 1e-9 * abs(best) + 1e-13, f"seed {seed}: proven but not optimal"
    g = np.array(gaps)
    assert compared >= 200, compared
    p99, worst = np.percentile(g, 99), g.max()
    assert p99 <= 0.01, f"p99 gap {p99:.4%}"
    assert worst <= 0.05, f"worst gap {worst:.4%}"
    assert proven >= 0.5 * compared  # enumeration proves most of these small books
    assert infeasible >= 5  # the family does hold infeasible books


@pytest.mark.skipif("SCIP" not in cp.installed_solvers(), reason="SCIP not installed")
@pytest.mark.parametrize("seed", [0, 2, 3, 7, 12, 18, 28, 33, 41, 45])
def test_exact_equals_the_optimum_when_it_says_proven(seed):
    c = case(seed)
    plan = c.rebalancer(mode="exact", time_limit=20.0).plan(c.state, c.targets)
    f = plan.info["integer_objective"]
    best, _, _ = oracle(c, f)
    assert f >= best - 1e-12 * max(1.0, abs(best))
    assert plan.info["certified_gap"] >= f - best - 1e-12
    if plan.info["proven_optimal"]:
        assert f == pytest.approx(best, rel=1e-9, abs=1e-13)
