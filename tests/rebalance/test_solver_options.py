"""OptimalRebalancer.solver_options: every option reaches a solver of the chain, or the
input is an InputError naming the field (an ignored option is a silent wrong answer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt import InputError, MarketImpact, PortfolioState, SolverError, Spread
from rebalopt.constraints import CashFloor, LongOnly
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Identity


def make(**kw):
    rng = np.random.default_rng(3)
    names = [f"A{i}" for i in range(12)]
    state = PortfolioState.from_arrays(names, rng.integers(0, 50, 12).astype(float), 5e3,
                                       rng.uniform(10, 100, 12),
                                       adv=np.full(12, 1e6), volatility=np.full(12, 0.02))
    targets = pd.Series(rng.dirichlet(np.ones(12)) * 0.95, index=names)
    risk = Identity()
    reb = OptimalRebalancer(risk=risk, costs=[Spread(2.0), MarketImpact()],
                            constraints=[LongOnly(), CashFloor()], **kw)
    return reb, state, targets


@pytest.mark.parametrize("options, words", [
    ({"max_iter": 3}, "options are given per solver"),  # a flat mapping of settings
    ({"OSQP": {"max_iter": 3}}, "not in the solver chain"),
    ({"CLARABEL": 3}, "must be a mapping"),
    ({"CLARABEL": {"max_iters": 3}}, "no setting 'max_iters'"),  # SCS's spelling
    (["CLARABEL"], "must map a solver name"),
])
def test_options_that_would_be_ignored_are_input_errors(options, words) -> None:
    with pytest.raises(InputError, match=words) as ei:  # at construction
        make(solver_options=options)
    assert ei.value.field.startswith("OptimalRebalancer.solver_options")


def test_a_solver_name_in_any_case_is_honoured() -> None:
    # two iterations cannot finish: the option reached Clarabel whatever the key's case
    for key in ("CLARABEL", "clarabel", "Clarabel"):
        reb, state, targets = make(solver="CLARABEL", solver_options={key: {"max_iter": 2}})
        with pytest.raises(SolverError, match="CLARABEL"):
            reb.plan(state, targets)


def test_options_changed_between_solves_are_checked_again() -> None:
    reb, state, targets = make()
    reb.solve(state, targets)
    reb.solver_options = {"CLARABEL": {"no_such_setting": 1}}
    with pytest.raises(InputError, match="no_such_setting"):
        reb.solve(state, targets)
