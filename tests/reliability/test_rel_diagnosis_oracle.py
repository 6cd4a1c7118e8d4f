"""Infeasibility diagnosis on random books, checked against the hard program itself.

Oracle: for a conflict reported as fixable alone with amount ``a``, the hard program
with that constraint relaxed by ``a`` (plus 1e-6) solves, and relaxed by ``0.99 a``
it is still infeasible; a constraint reported as "cannot be fixed alone" leaves the
program infeasible even when relaxed by far more than any amount in the book. The
books are random (holdings, targets, factor risk), the conflicts two families: a
zero turnover cap against weight caps the book breaks, and group floors that sum
past the budget under a turnover cap.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
from rel_helpers import count

from rebalopt import InfeasibleError, MarketImpact, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.errors import SolverError
from rebalopt.rebalance.optimal import OptimalRebalancer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rebalance"))
from test_clarabel_direct import random_problem  # noqa: E402

N = 14


def constraints(family: str, relax: dict[str, float]) -> list:
    """The family's constraints, each relaxed by ``relax[name]`` (its own units)."""
    d = relax.get
    if family == "turnover-vs-caps":
        return [LongOnly(), CashFloor(-d("CashFloor", 0.0)),
                TurnoverLimit(d("TurnoverLimit", 0.0)),
                WeightBounds(upper=0.5 / N + d("WeightBounds", 0.0))]
    return [LongOnly(), CashFloor(-d("CashFloor", 0.0)),
            GroupBounds(lower=0.3 - d("GroupBounds", 0.0)),
            TurnoverLimit(0.05 + d("TurnoverLimit", 0.0))]


def feasible(book, family: str, relax: dict[str, float]) -> bool | None:
    state, targets, risk = book
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
                            constraints=constraints(family, relax), risk_aversion=50.0)
    try:
        reb.solve(state, targets)
    except InfeasibleError:
        return False
    except SolverError:  # at the boundary the hard program may have no interior
        return None
    return True


@pytest.mark.parametrize("backend", ["direct", "cvxpy"])
@pytest.mark.parametrize("family", ["turnover-vs-caps", "group-floors"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reported_amounts_restore_feasibility_and_no_less_does(seed, family, backend):
    count("infeasible")
    state, targets, risk, _ = random_problem(N, seed, short=(seed == 1))
    book = (state, targets, risk)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
                            constraints=constraints(family, {}), risk_aversion=50.0,
                            backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InfeasibleError) as info:
            reb.solve(state, targets)
        checked = 0
        for c in info.value.conflicts:
            name = c.constraint.split("(")[0].split(" ")[0]
            if name == "LongOnly":
                continue  # no single amount relaxes it here
            if "alone" in c.constraint:
                assert feasible(book, family, {name: 0.3}) is not True, c
                checked += 1
                continue
            a = c.violation
            up = feasible(book, family, {name: a + 1e-6})
            down = feasible(book, family, {name: 0.99 * a})
            assert up is not False, f"{c}: relaxing by the amount is not enough"
            assert down is not True, f"{c}: 0.99 of the amount is already enough"
            checked += up is True
    assert checked >= 1  # at least one statement checked against the oracle
