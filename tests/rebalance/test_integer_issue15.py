"""Issue 15's 4-asset example as a regression test (round reaches 36.19 bps).

The issue gives only the outcome: 100-share lots, a group cap that no trade breaks;
round stopped at trades [+100, +100, -200, +1400] costing 40.14 bps while the optimum
[+300, 0, -200, +1400] costs 36.19 bps, and every single or pair move from round's
answer is worse or breaks the cap. Reconstructed here: three Tech names (AAA, BBB,
CCC) over the cap at no trade, a fourth name (DDD) outside it; targets 4, 1, -2 and
14 lots away; a diagonal covariance whose AAA/BBB variance ratio (0.56622) and risk
aversion (1987.26) were solved for so that the two plans cost 40.14 and 36.19 bps.
With these inputs the previous round mode (commit 63ff3a7) returned exactly
[+100, +100, -200, +1400] at 40.14 bps. The oracle is brute force over every lot
combination within 4 lots of that plan, priced and checked by the rebalancer's own
numeric ``objective`` and ``check``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance

A = ["AAA", "BBB", "CCC", "DDD"]
STUCK = np.array([100.0, 100.0, -200.0, 1400.0])
OPTIMUM = np.array([300.0, 0.0, -200.0, 1400.0])


def example():
    V = 100_000.0
    px = np.array([10.0, 20.0, 30.0, 5.0])
    hold = np.array([1000.0, 1500.0, 1400.0, 2000.0])
    lot = 100 * px / V
    w0 = hold * px / V
    targets = pd.Series(w0 + np.array([4, 1, -2, 14]) * lot, index=A)
    cap = float(w0[:3].sum() - 0.025)           # no trade breaks it (0.82 > 0.795)
    state = PortfolioState(pd.Series(hold, index=A), V - float(hold @ px),
                           pd.Series(px, index=A), lot_sizes=pd.Series(100.0, index=A),
                           groups=pd.Series(["Tech", "Tech", "Tech", "Other"], index=A),
                           adv=pd.Series(2e5, index=A), volatility=pd.Series(0.02, index=A))
    vol = np.array([np.sqrt(0.56622) * 0.3, 0.3, 0.3, 0.3])
    relax = OptimalRebalancer(
        risk=Covariance(pd.DataFrame(np.diag(vol ** 2), index=A, columns=A)),
        costs=[Spread(2.0), MarketImpact(coef=0.5, exponent=1.5),
               Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)],
        risk_aversion=1987.26, horizon=1 / 12)
    return state, targets, relax


def test_round_reaches_the_optimum_of_issue_15():
    state, targets, relax = example()
    reb = IntegerRebalancer(relax)
    ok = lambda x: all(s.satisfied for s in reb.check(x, state, targets).values())
    bps = lambda x: 1e4 * reb.objective(x, state, targets)
    assert not ok(np.zeros(4))                                  # no trade breaks the cap
    # the issue's figures, reproduced
    assert round(bps(STUCK), 2) == 40.14 and round(bps(OPTIMUM), 2) == 36.19
    # every one-lot single or pair move from the stuck plan is worse or infeasible
    steps = [s * np.eye(4)[i] for i in range(4) for s in (100.0, -100.0)]
    steps += [100.0 * (np.eye(4)[i] - np.eye(4)[j]) for i in range(4) for j in range(4) if i != j]
    for st in steps:
        assert not ok(STUCK + st) or bps(STUCK + st) > bps(STUCK)
    # brute force: the optimum within 4 lots of it
    best = min((bps(STUCK + 100.0 * np.array(d)), d)
               for d in itertools.product(range(-4, 5), repeat=4) if ok(STUCK + 100.0 * np.array(d)))
    assert np.array_equal(STUCK + 100.0 * np.array(best[1]), OPTIMUM)
    plan = reb.plan(state, targets)
    assert np.array_equal(plan.trades, OPTIMUM)
    assert plan.info["objective_bps"] == pytest.approx(36.19, abs=5e-3)
    assert plan.info["proven_optimal"]                       # small book: enumeration proves it
