"""Failing solvers: fallback used and recorded, unverifiable answers rejected, no order.

A failure is simulated by wrapping ``solve`` of the compiled cvxpy problem (the
one ``OptimalRebalancer`` re-solves) for one solver name: it raises
``cvxpy.SolverError``, or runs the real solver and then corrupts what it
returns (status, point, objective) the way a misbehaving solver would. The other
solvers of the chain run for real.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from rel_helpers import count

from rebalopt import InfeasibleError, PortfolioState, SolverError, Spread
from rebalopt.constraints import CashFloor, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.costs import MarketImpact
from rebalopt.rebalance.optimal import OptimalRebalancer

N = 8


def problem() -> tuple[PortfolioState, dict[str, float]]:
    rng = np.random.default_rng(11)
    assets = [f"S{i}" for i in range(N)]
    prices = dict(zip(assets, rng.uniform(10, 100, N)))
    hold = dict(zip(assets, rng.uniform(0, 200, N).round()))
    state = PortfolioState(hold, 20_000.0, prices, adv=dict.fromkeys(assets, 1e5),
                           volatility=dict.fromkeys(assets, 0.02))
    w = rng.dirichlet(np.ones(N)) * 0.97
    return state, dict(zip(assets, w))


def rebalancer(solver: Any = ("CLARABEL", "SCS")) -> OptimalRebalancer:
    return OptimalRebalancer(
        costs=[Spread(3.0), MarketImpact(coef=0.5)],
        constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.2),
                     WeightBounds(upper=0.3)],
        solver=solver,
        backend="cvxpy",  # the sabotage wraps the cvxpy program's solve
    )


Behaviour = Callable[[Callable[..., Any], Any, Any, dict[str, Any]], Any]


def sabotage(reb: OptimalRebalancer, state: PortfolioState, targets: dict[str, float],
             behaviours: dict[str, Behaviour], elastic: dict[str, Behaviour] | None = None
             ) -> None:
    """Compile ``reb`` for ``state`` and wrap its problem's ``solve`` per solver name."""
    w_t = state.target_weights(targets)
    compiled = reb.compiled(state, w_t, reb.root(state).G.shape[1])

    def wrap(problem: cp.Problem, table: dict[str, Behaviour]) -> None:
        real = problem.solve

        def fake(*args: Any, solver: str | None = None, **kw: Any) -> Any:
            b = table.get(solver)
            if b is None:
                return real(*args, solver=solver, **kw)
            return b(lambda: real(*args, solver=solver, **kw), problem, compiled, kw)

        problem.solve = fake  # type: ignore[method-assign]

    wrap(compiled.problem, behaviours)
    if elastic:
        wrap(compiled.elastic_problem(), elastic)


# ------------------------------------------------------------------ behaviours
def raises(real, problem, compiled, kw):
    raise cp.error.SolverError("simulated solver crash")


def status(name: str) -> Behaviour:
    def b(real, problem, compiled, kw):
        real()
        problem._status = name
        return problem._value
    return b


def nan_point(real, problem, compiled, kw):
    real()
    compiled.z.save_value(np.full(compiled.n, np.nan))
    return problem._value


def violating(status_name: str) -> Behaviour:
    """The real answer with 0.4 of equity more bought of the first asset (breaks the
    cash floor and the 0.3 weight cap), claimed with ``status_name``."""
    def b(real, problem, compiled, kw):
        real()
        z = np.array(compiled.z.value, dtype=float)
        z[0] += 0.4
        compiled.z.save_value(z)
        problem._status = status_name
        return problem._value
    return b


def wrong_objective(real, problem, compiled, kw):
    real()
    problem._value = problem._value * 3 + 50.0  # bps: a claimed optimum that is not this point
    return problem._value


def claims_infeasible(real, problem, compiled, kw):
    real()
    problem._status = "infeasible"  # the (feasible) point it found is ignored
    return problem._value


FALLBACK_CASES = {
    "raises-SolverError": (raises, "error: SolverError"),
    "status-solver_error": (status("solver_error"), "solver_error (no solution)"),
    "status-unbounded": (status("unbounded"), "unbounded (no solution)"),
    "status-user_limit": (status("user_limit"), "user_limit (no solution)"),
    "nan-solution": (nan_point, "no solution"),
    "optimal_inaccurate-violating": (violating("optimal_inaccurate"), "violated"),
    "optimal-violating": (violating("optimal"), "violated"),
    "objective-mismatch": (wrong_objective, "objective mismatch"),
    "claims-infeasible-on-a-feasible-program": (claims_infeasible, "infeasible"),
}


@pytest.fixture(scope="module")
def reference():
    state, targets = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sol = rebalancer("CLARABEL").solve(state, targets)
    return state, targets, sol


@pytest.mark.parametrize("name", list(FALLBACK_CASES))
def test_fallback_is_used_and_recorded(name, reference):
    count("solver_failure")
    state, targets, ref = reference
    behaviour, marker = FALLBACK_CASES[name]
    reb = rebalancer()
    sabotage(reb, state, targets, {"CLARABEL": behaviour})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = reb.plan(state, targets)
    attempts = plan.info["attempts"]
    # every Clarabel try (the first and its retry with other numerics) was refused, then SCS
    assert len(attempts) >= 2 and attempts[-1][0] == "SCS", attempts
    for label, why in attempts[:-1]:
        assert label.startswith("CLARABEL") and marker in why, attempts
    assert plan.info["solver"] == "SCS" and attempts[-1][1].startswith("optimal")
    # the answer is SCS's own, verified: same optimum as the reference, constraints hold
    assert plan.info["objective"] == pytest.approx(ref.objective, rel=1e-4, abs=1e-9)
    w = plan.post_weights
    assert w.min() >= -1e-7 and w.max() <= 0.3 + 1e-7
    assert plan.turnover <= 0.2 + 1e-7 and plan.post_cash >= -1e-7 * state.equity
    assert all(np.isfinite(o.quantity) and o.quantity > 0 for o in plan.orders())


def test_inaccurate_but_verified_answer_is_accepted_and_says_so(reference):
    count("solver_failure")
    state, targets, ref = reference
    reb = rebalancer()
    sabotage(reb, state, targets, {"CLARABEL": status("optimal_inaccurate")})
    plan = reb.plan(state, targets)
    assert plan.info["solver"] == "CLARABEL" and plan.info["status"] == "optimal_inaccurate"
    assert plan.info["attempts"] == [("CLARABEL", "optimal_inaccurate")]
    np.testing.assert_allclose(plan.z, ref.z, atol=1e-12)
    assert "optimal_inaccurate" in plan.summary()


@pytest.mark.parametrize("second", ["raises", "violating", "nan"])
def test_all_solvers_fail_is_a_solver_error_and_no_order(second, reference, make_broker):
    count("solver_failure")
    state, targets, _ = reference
    reb = rebalancer()
    other = {"raises": raises, "violating": violating("optimal_inaccurate"),
             "nan": nan_point}[second]
    sabotage(reb, state, targets, {"CLARABEL": status("solver_error"), "SCS": other})
    plans = []
    with pytest.raises(SolverError) as info:
        plans.append(reb.plan(state, targets))
    assert plans == []
    labels = [a[0] for a in info.value.attempts]
    assert labels[0] == "CLARABEL" and labels[-1] == "SCS", labels
    assert "CLARABEL" in str(info.value) and "SCS" in str(info.value)
    # through the seed's executor: nothing reaches the broker
    broker = make_broker({a: q for a, q in zip(state.assets, state.holdings) if q}, state.cash)
    data = {a: {"close": float(p), "adv": 1e5, "volatility": 0.02}
            for a, p in zip(state.assets, state.prices)}
    with pytest.raises(SolverError):
        reb.execute(targets, data, broker)
    assert broker.calls == []


def test_time_limit_through_solver_options_falls_back(reference):
    """Clarabel stopped by its own ``time_limit`` (seconds) has no accepted answer."""
    count("solver_failure")
    state, targets, ref = reference
    reb = OptimalRebalancer(costs=rebalancer().costs, constraints=rebalancer().constraints,
                            solver=["CLARABEL", "SCS"],
                            solver_options={"CLARABEL": {"time_limit": 1e-9}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = reb.plan(state, targets)
    assert plan.info["solver"] == "SCS"
    assert plan.info["attempts"][0][0] == "CLARABEL"
    assert not plan.info["attempts"][0][1].startswith("optimal ")
    assert plan.info["objective"] == pytest.approx(ref.objective, rel=1e-4, abs=1e-9)
    # alone, the time-limited solver is a SolverError (no plan)
    only = OptimalRebalancer(costs=reb.costs, constraints=reb.constraints, solver="CLARABEL",
                             solver_options={"CLARABEL": {"time_limit": 1e-9}})
    with pytest.raises(SolverError, match="CLARABEL"):
        only.plan(state, targets)


def test_false_infeasible_claim_with_a_broken_elastic_solve_falls_back(reference):
    count("solver_failure")
    state, targets, ref = reference
    reb = rebalancer()
    sabotage(reb, state, targets, {"CLARABEL": claims_infeasible},
             elastic={"CLARABEL": raises})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            plan = reb.plan(state, targets)
    except InfeasibleError as exc:  # what happens today
        assert all(np.isnan(c.violation) for c in exc.conflicts)
        raise AssertionError(f"feasible program reported infeasible: {exc}") from exc
    assert plan.info["solver"] == "SCS"
