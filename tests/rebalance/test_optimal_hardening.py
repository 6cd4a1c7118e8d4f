"""OptimalRebalancer hardening: target leverage, the cash floor with the commission
actually charged, infeasibility diagnosis that falls back, conflict amounts that
really restore feasibility, the per-solve time limit, negative targets with LongOnly.

Oracles: hand-computed sums and cash (commission minimums counted by hand), the
program re-solved with a constraint relaxed by the reported amount, solver
settings read back from the solver, and the post-trade book recomputed from shares.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rebalopt import Commission, InputError, PortfolioState, Spread
from rebalopt.constraints import CashFloor, Leverage, LongOnly, ShortLimit, TurnoverLimit
from rebalopt.rebalance.optimal import OptimalRebalancer

PRICES = {"A": 10.0, "B": 20.0, "C": 40.0}


def cash_account(cash: float = 10_000.0, holdings=None) -> PortfolioState:
    return PortfolioState(holdings or {}, cash, PRICES)


# ------------------------------------------------------------ target leverage
@pytest.mark.parametrize(("constraints", "cap"), [
    ([LongOnly(), CashFloor()], 1.0),
    ([LongOnly(), CashFloor(-0.2)], 1.2),
    ([LongOnly(), CashFloor(0.05)], 1.0),  # a buffer: traded towards, not an error
    ([LongOnly(), CashFloor(-0.3), CashFloor(0.0)], 1.0),  # the tightest floor
    ([LongOnly(), CashFloor(), Leverage(gross=0.8)], 1.0),  # Leverage is traded towards
])
def test_targets_above_the_cash_account_leverage_are_an_input_error(constraints, cap):
    reb = OptimalRebalancer(constraints=constraints)
    assert reb.allowed_leverage() == cap
    over = {"A": cap / 3 + 0.01, "B": cap / 3, "C": cap / 3}  # sum = cap + 0.01
    with pytest.raises(InputError, match="leverage") as info:
        reb.plan(cash_account(), over)
    assert info.value.field == "target weight" and f"{cap + 0.01:.6g}" in str(info.value)
    at = {"A": cap / 3, "B": cap / 3, "C": cap / 3}
    plan = reb.plan(cash_account(), at)  # exactly at the cap: planned
    w = (plan.state.holdings + plan.trades) * plan.state.prices / plan.state.equity
    assert w.sum() <= cap + 1e-7


@pytest.mark.parametrize("constraints", [
    [CashFloor(), ShortLimit(total=0.5)],  # not long-only: a long-short book
    [LongOnly(), CashFloor(soft=True)],  # the floor is soft
    [LongOnly()],  # no cash floor
])
def test_no_target_leverage_check_without_a_hard_cash_account(constraints):
    reb = OptimalRebalancer(constraints=constraints)
    assert reb.allowed_leverage() is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = reb.plan(cash_account(), {"A": 0.6, "B": 0.6})
    assert np.isfinite(plan.trades).all()


# ------------------------------------------------- unverified infeasibility claims
def _problem():
    state = PortfolioState({"A": 300.0, "B": 100.0}, 5_000.0, PRICES)
    return state, {"A": 0.3, "B": 0.3, "C": 0.3}


def _claims_infeasible(monkeypatch):
    """Clarabel's direct path says 'infeasible' on a feasible program."""
    from rebalopt.rebalance import _clarabel
    from rebalopt.rebalance._problem import RawSolution

    def fake(self, *args, label="CLARABEL", **kw):
        return RawSolution(label, "infeasible", None, None, None, None, 0.0)

    monkeypatch.setattr(_clarabel.DirectProblem, "solve", fake)


def _elastic_fails_for(monkeypatch, solvers):
    from rebalopt.rebalance import _problem

    real = _problem.CompiledProblem.solve
    calls = []

    def fake(self, solver, options=None, elastic=False):
        if elastic:
            calls.append(solver)
            if solver in solvers:
                return _problem.RawSolution(solver, "error: simulated", None, None, None,
                                            None, 0.0)
        return real(self, solver, options, elastic)

    monkeypatch.setattr(_problem.CompiledProblem, "solve", fake)
    return calls


def test_failed_diagnosis_tries_the_next_solver_then_falls_back(monkeypatch):
    state, targets = _problem()
    reference = OptimalRebalancer(costs=[Spread(3.0)], solver="SCS").plan(state, targets)
    _claims_infeasible(monkeypatch)
    calls = _elastic_fails_for(monkeypatch, {"CLARABEL"})
    reb = OptimalRebalancer(costs=[Spread(3.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = reb.plan(state, targets)
    # Clarabel failed the diagnosis, SCS ran it (feasible after all), once only
    assert calls == ["CLARABEL", "SCS"]
    assert plan.info["solver"] == "SCS"
    labels = [a for a, _ in plan.info["attempts"]]
    assert labels == ["CLARABEL", "CLARABEL (retry)", "SCS"]
    assert "unverified: elastic program feasible" in plan.info["attempts"][0][1]
    assert plan.info["objective"] == pytest.approx(reference.info["objective"], rel=1e-5)


def test_no_diagnosis_means_no_infeasibility_claim(monkeypatch):
    """Every solver fails the elastic program and the other solver fails the main one:
    SolverError naming the unverified claim, never InfeasibleError with a NaN."""
    from rebalopt.errors import SolverError

    state, targets = _problem()
    _claims_infeasible(monkeypatch)
    _elastic_fails_for(monkeypatch, {"CLARABEL", "SCS"})
    reb = OptimalRebalancer(costs=[Spread(3.0)],
                            solver_options={"SCS": {"max_iters": 1}})  # SCS cannot finish
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(SolverError) as info:
            reb.plan(state, targets)
    statuses = dict(info.value.attempts)
    assert "unverified: diagnosis failed" in statuses["CLARABEL"]
    assert statuses["SCS"] not in ("optimal", "optimal_inaccurate")  # rejected, no plan


# ------------------------------------------------- conflict amounts restore feasibility
def test_relaxing_each_conflict_by_its_amount_makes_the_program_feasible():
    """Tech must be the whole book from cash with a 10 bps half spread paid from cash.
    By hand: CashFloor must give h = 1e-3, the sector floor 1 - 1/(1+h). Relaxing
    either by the reported amount gives a plan that is feasible (re-checked here)."""
    from rebalopt import InfeasibleError
    from rebalopt.constraints import GroupBounds

    groups = {"A": "Tech", "B": "Tech", "C": "Fin"}
    state = PortfolioState({}, 100_000.0, PRICES, groups=groups)
    targets = {"A": 0.3, "B": 0.3, "C": 0.3}
    h = 1e-3
    build = {"CashFloor": lambda v: CashFloor(-v),
             "GroupBounds": lambda v: GroupBounds(lower={"Tech": 1.0 - v})}
    with pytest.raises(InfeasibleError) as info:
        OptimalRebalancer(costs=[Spread(10.0)],
                          constraints=[LongOnly(), build["CashFloor"](0.0),
                                       build["GroupBounds"](0.0)]).plan(state, targets)
    got = {c.constraint.split("(")[0].split(" ")[0]: c.violation for c in info.value.conflicts}
    assert got["CashFloor"] == pytest.approx(h, rel=1e-3)
    assert got["GroupBounds"] == pytest.approx(1 - 1 / (1 + h), rel=1e-3)
    for name, amount in got.items():
        if name not in build:
            continue
        others = [build[k](0.0) for k in build if k != name]
        plan = OptimalRebalancer(costs=[Spread(10.0)],
                                 constraints=[LongOnly(), build[name](amount), *others]
                                 ).plan(state, targets)
        w = (plan.trades * state.prices) / state.equity
        cash = (state.cash - (plan.trades * state.prices).sum() - plan.total_cost) / state.equity
        assert w.min() >= -1e-7
        if name == "CashFloor":
            assert w[:2].sum() >= 1.0 - 1e-7 and cash >= -amount - 1e-7
        else:
            assert w[:2].sum() >= 1.0 - amount - 1e-7 and cash >= -1e-7


def test_negative_targets_do_not_count_towards_the_cash_account_leverage():
    """Found by the reliability property test: {-0.12, 0.92} has gross 1.04 but asks for
    0.92 long (the negative target lands at 0 under LongOnly): planned."""
    plan = OptimalRebalancer().plan(cash_account(), {"A": -0.12, "B": 0.92})
    w = plan.trades * plan.state.prices / plan.state.equity
    assert w[0] == pytest.approx(0.0, abs=1e-7) and w[1] == pytest.approx(0.92, abs=1e-6)
    with pytest.raises(InputError, match="1.01"):
        OptimalRebalancer().plan(cash_account(), {"A": -0.5, "B": 0.51, "C": 0.5})
