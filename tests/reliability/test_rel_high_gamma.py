"""The objective cross-check at high risk aversion (issue 13, item 11).

At ``gamma >= 3e5`` the optimum is a small difference of large quantities (the
tracking term at no trade is thousands of times the optimum), and a solver is
accurate only relative to those. Oracles: the objective recomputed in NumPy by
``OptimalRebalancer.objective_terms``; solver noise injected at a realistic size
(1e-8 of the objective's magnitude, the solvers' own gap tolerance) must be
accepted, a wrong objective (1e-3 of it) refused with both numbers printed in
full.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from rel_helpers import count
from test_rel_solver_failure import sabotage

from rebalopt import Covariance, PortfolioState, Spread
from rebalopt.backtest import Engine, PortfolioStrategy, SimulatedBroker
from rebalopt.rebalance._problem import SCALE
from rebalopt.rebalance.optimal import OptimalRebalancer

N = 12
ASSETS = [f"S{i}" for i in range(N)]


def cov() -> Covariance:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, N)) * 0.015
    return Covariance(pd.DataFrame(np.cov(X.T) * 252, index=ASSETS, columns=ASSETS))


def problem():
    rng = np.random.default_rng(2)
    state = PortfolioState({}, 1e6, dict(zip(ASSETS, rng.uniform(10, 100, N))))  # all cash
    return state, dict(zip(ASSETS, rng.dirichlet(np.ones(N)) * 0.98))


def rebalancer(gamma: float, solver=("CLARABEL", "SCS")) -> OptimalRebalancer:
    return OptimalRebalancer(risk=cov(), costs=[Spread(2.0)], risk_aversion=gamma,
                             solver=solver, backend="cvxpy")


def magnitude(reb, state, targets) -> tuple[float, float]:
    """(objective at the answer, objective at no trade), fractions of equity."""
    sol = reb.solve(state, targets)
    return sol.terms["total"], reb.objective(np.zeros(state.n), state, targets)


def noisy(rel: float, size: float):
    def b(real, problem, compiled, kw):
        real()
        problem._value = problem._value + rel * size * SCALE  # bps
        return problem._value
    return b


@pytest.mark.parametrize("gamma", [3e5, 3e6])
def test_solver_noise_at_the_objectives_magnitude_is_accepted(gamma):
    count("solver_failure")
    state, targets = problem()
    total, at_rest = magnitude(rebalancer(gamma), state, targets)
    assert at_rest > 1e3 * total  # the regime of the issue: a small difference of big terms
    reb = rebalancer(gamma)
    sabotage(reb, state, targets, {"CLARABEL": noisy(1e-8, at_rest)})
    plan = reb.plan(state, targets)
    assert plan.info["attempts"] == [("CLARABEL", "optimal")], plan.info["attempts"]


def test_a_wrong_objective_is_refused_and_the_message_shows_the_difference():
    count("solver_failure")
    state, targets = problem()
    _, at_rest = magnitude(rebalancer(3e5), state, targets)
    reb = rebalancer(3e5)
    sabotage(reb, state, targets, {"CLARABEL": noisy(1e-3, at_rest)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = reb.plan(state, targets)
    first = plan.info["attempts"][0]
    assert first[0] == "CLARABEL" and "objective mismatch" in first[1], plan.info["attempts"]
    solver, recomputed = re.search(r"solver (\S+) vs recomputed (\S+)", first[1]).groups()
    assert solver != recomputed  # printed to the last digit: the difference shows
    assert float(solver) - float(recomputed) == pytest.approx(1e-3 * at_rest, rel=1e-6)
    assert plan.info["solver"] == "SCS"


@pytest.mark.parametrize("gamma", [3e5, 1e6])
def test_backtest_at_high_gamma_never_holds(gamma):
    count("solver_failure")
    T = 10
    rng = np.random.default_rng(9)
    close = {a: list(50 * np.cumprod(1 + rng.normal(0, 0.01, T))) for a in ASSETS}
    from bt_helpers_path import wide_feed

    feed = wide_feed(close=close)
    target = dict(zip(ASSETS, rng.dirichlet(np.ones(N)) * 0.97))
    strat = PortfolioStrategy(OptimalRebalancer(risk=cov(), costs=[Spread(2.0)],
                                                risk_aversion=gamma),
                              optimizer=lambda r, d, c, b: target, lookback=1, schedule=2,
                              on_error="hold")
    Engine(feed, strat, SimulatedBroker(1e6, fractional=True), progress=False).run()
    assert strat.rebalances and strat.n_held == 0, [r["error"] for r in strat.rebalances]
