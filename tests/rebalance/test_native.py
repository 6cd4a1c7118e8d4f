"""The builder's program solved by Clarabel and SCS through their own APIs.

Oracles: the same program written as a cvxpy Problem and solved through cvxpy (an
independent construction: cvxpy canonicalizes it for the solver), a second solver
(SCS against Clarabel), and a hand-checked row order for SCS's cone layout.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_clarabel_direct import random_problem

from rebalopt import InfeasibleError, MarketImpact, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.rebalance._native import _scs_order, solve_native
from rebalopt.rebalance.optimal import OptimalRebalancer


def test_scs_row_order_groups_cones_by_kind() -> None:
    # zero(2), nonneg(3), power x1 (3 rows), soc3 x2 (6 rows), power x1 (3 rows)
    spec = [("zero", 2, 0.0), ("nonneg", 3, 0.0), ("power", 1, 0.6), ("soc3", 2, 0.0),
            ("power", 1, 0.4)]
    perm, cone = _scs_order(spec)
    assert perm.tolist() == [0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 5, 6, 7, 14, 15, 16]
    assert cone == {"z": 2, "l": 3, "q": [3, 3], "p": [0.6, 0.4]}


def _compiled(n: int, seed: int):
    state, targets, risk, _ = random_problem(n, seed)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
                            constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.3),
                                         WeightBounds(upper=0.1), GroupBounds(upper=0.5)],
                            risk_aversion=50.0)
    w_t = state.target_weights(targets)
    root = reb.root(state)
    prob = reb._cvxpy_program(state, w_t, root.G.shape[1])
    prob.update(state, w_t, root.G, root.s, reb.risk_aversion, reb.horizon, None)
    return prob


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("solver", ["CLARABEL", "SCS"])
def test_native_solve_matches_the_cvxpy_problem(seed: int, solver: str) -> None:
    prob = _compiled(25, seed)
    opts = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000} if solver == "SCS" else {}
    prob.native = True
    native = prob.solve(solver, opts)
    prob.native = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        through_cvxpy = prob.solve(solver, opts)
    assert native.status == "optimal" and through_cvxpy.status.startswith("optimal")
    scale = max(1.0, abs(through_cvxpy.objective))
    assert native.objective == pytest.approx(through_cvxpy.objective, abs=1e-6 * scale)
    np.testing.assert_allclose(native.z, through_cvxpy.z, atol=5e-4)


def test_native_scs_agrees_with_native_clarabel() -> None:
    prob = _compiled(30, 7)
    prob.native = True
    a = prob.solve("CLARABEL")
    b = prob.solve("SCS", {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000})
    assert a.status == b.status == "optimal"
    assert b.objective == pytest.approx(a.objective, rel=1e-5, abs=1e-9)


def test_unknown_native_solver_is_an_error() -> None:
    prob = _compiled(5, 0)
    with pytest.raises(ValueError, match="no native path"):
        solve_native(prob.builder.program(*prob._args), "OSQP")


def test_diagnosis_with_clarabel_alone_names_the_conflict() -> None:
    """The elastic program of this book stalls Clarabel under its own equilibration
    (InsufficientProgress); the diagnosis retries with the chain's retry settings, so
    a Clarabel-only rebalancer still names the conflict (before, it could not verify
    the infeasibility and raised a SolverError)."""
    state, targets, risk, _ = random_problem(120, 3)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
                            constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.0),
                                         WeightBounds(upper=0.5 / 120)],
                            risk_aversion=100.0, solver="CLARABEL")
    with pytest.raises(InfeasibleError) as info:
        reb.solve(state, targets)
    names = " ".join(c.constraint for c in info.value.conflicts)
    assert "TurnoverLimit" in names and "WeightBounds" in names


def _turnover_vs_weight_cap(cap: float, upper: float):
    return [LongOnly(), CashFloor(), TurnoverLimit(cap), WeightBounds(upper=upper)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("backend", ["direct", "cvxpy"])
def test_diagnosed_turnover_amount_is_the_one_that_restores_feasibility(
        seed: int, backend: str) -> None:
    """Oracle: the hard program itself. A turnover cap of 0 against weight caps the
    book breaks: the reported amount ``a`` is the smallest turnover that restores
    feasibility, so ``TurnoverLimit(a)`` solves and ``TurnoverLimit(0.99 a)`` does not.
    (Before the elastic program had its tie-break, the amounts of the two backends
    differed by up to 10% on such books, with one of them below the true minimum.)"""
    n = 40
    state, targets, risk, _ = random_problem(n, seed)
    kw = {"risk": risk, "costs": [Spread(5.0), MarketImpact(coef=1.0)], "risk_aversion": 50.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reb = OptimalRebalancer(constraints=_turnover_vs_weight_cap(0.0, 0.5 / n),
                                backend=backend, **kw)
        with pytest.raises(InfeasibleError) as info:
            reb.solve(state, targets)
        turnover = [c for c in info.value.conflicts if c.constraint.startswith("TurnoverLimit")]
        assert len(turnover) == 1 and "alone" not in turnover[0].constraint
        a = turnover[0].violation
        assert a > 0.01
        # the oracle: the hard program, on the default backend
        OptimalRebalancer(constraints=_turnover_vs_weight_cap(a + 1e-6, 0.5 / n),
                          **kw).solve(state, targets)
        with pytest.raises(InfeasibleError):
            OptimalRebalancer(constraints=_turnover_vs_weight_cap(0.99 * a, 0.5 / n),
                              **kw).solve(state, targets)


def test_a_feasible_program_is_not_called_infeasible_by_the_tie_break() -> None:
    """The elastic program's tie-break pulls its slacks off zero on a feasible program
    with a binding constraint (~1e-5 here); the diagnosis solves again at a lighter
    tie-break and finds the pull, so it says "feasible after all" (an empty list)."""
    n = 40
    state, targets, risk, _ = random_problem(n, 5)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
                            constraints=_turnover_vs_weight_cap(0.05, 1.0),
                            risk_aversion=5000.0)
    plan = reb.solve(state, targets)  # feasible: the turnover cap binds
    assert plan.z is not None
    w_t = state.target_weights(targets)
    prob = reb._cvxpy_program(state, w_t, reb.root(state).G.shape[1])
    root = reb.root(state)
    prob.update(state, w_t, root.G, root.s, reb.risk_aversion, reb.horizon, None)
    prob.set_elastic_caps(None)
    pulled = prob.solve("CLARABEL", elastic=True)
    assert 1e-7 < max(pulled.slacks.values()) < 1e-3  # the pull shows
    assert reb._diagnose(prob, state, w_t, "CLARABEL") == []


def test_direct_diagnosis_compiles_no_cvxpy_program() -> None:
    """On the direct backend the elastic program is solved natively too."""
    state, targets, risk, _ = random_problem(30, 4)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0)],
                            constraints=_turnover_vs_weight_cap(0.0, 0.5 / 30))
    with pytest.raises(InfeasibleError):
        reb.solve(state, targets)
    prob = reb._compiled
    assert prob is not None and prob._program is None and prob._elastic_program is None
