"""Any exception from a solver is contained (issue 13, item 5).

Clarabel is made to raise, the way a crashing native solver does, by replacing
``clarabel.DefaultSolver`` (used by both the direct backend and cvxpy's Clarabel
interface): ``RuntimeError``, ``MemoryError``, ``KeyError``, ``OSError`` and a
Rust panic (PyO3's ``PanicException`` derives from ``BaseException``). The rest
of the chain (SCS) must be tried and its verified answer used; with no other
solver a :class:`SolverError` naming the failure, no plan, no order; a backtest
with ``on_error="hold"`` holds and runs to the end.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from rel_helpers import count

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import wide_feed

from rebalopt import PortfolioState, SolverError, Spread
from rebalopt.backtest import Engine, PortfolioStrategy, SimulatedBroker
from rebalopt.constraints import CashFloor, LongOnly, WeightBounds
from rebalopt.rebalance.optimal import OptimalRebalancer


class PanicException(BaseException):
    """What a Rust panic inside a PyO3 extension raises."""


ERRORS = [RuntimeError("solver crashed"), MemoryError(), KeyError("x"),
          OSError("shared library"), PanicException("index out of bounds")]


@pytest.fixture
def crashing_clarabel(monkeypatch):
    import clarabel

    def install(exc: BaseException) -> None:
        class Crashing:
            def __init__(self, *args, **kwargs):
                raise exc

        monkeypatch.setattr(clarabel, "DefaultSolver", Crashing)

    return install


def problem():
    rng = np.random.default_rng(3)
    assets = [f"S{i}" for i in range(6)]
    state = PortfolioState(dict(zip(assets, rng.uniform(0, 100, 6).round())), 10_000.0,
                           dict(zip(assets, rng.uniform(10, 50, 6))))
    return state, dict(zip(assets, rng.dirichlet(np.ones(6)) * 0.95))


def rebalancer(solver=("CLARABEL", "SCS"), backend="direct") -> OptimalRebalancer:
    return OptimalRebalancer(costs=[Spread(2.0)],
                             constraints=[LongOnly(), CashFloor(), WeightBounds(upper=0.4)],
                             solver=solver, backend=backend)


@pytest.mark.parametrize("backend", ["direct", "cvxpy"])
@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_any_solver_exception_falls_back_to_the_rest_of_the_chain(exc, backend,
                                                                  crashing_clarabel):
    count("solver_failure")
    state, targets = problem()
    ref = rebalancer(solver="SCS", backend=backend).plan(state, targets)
    crashing_clarabel(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plan = rebalancer(backend=backend).plan(state, targets)
    attempts = plan.info["attempts"]
    assert plan.info["solver"] == "SCS", attempts
    assert any(type(exc).__name__ in why for _, why in attempts[:-1]), attempts
    np.testing.assert_allclose(plan.trades, ref.trades, rtol=0, atol=1e-9 * state.equity)


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_a_chain_that_only_crashes_is_a_solver_error_and_no_order(exc, crashing_clarabel,
                                                                  make_broker):
    count("solver_failure")
    state, targets = problem()
    crashing_clarabel(exc)
    plans = []
    with pytest.raises(SolverError) as info:
        plans.append(rebalancer(solver="CLARABEL").plan(state, targets))
    assert plans == [] and type(exc).__name__ in str(info.value)
    broker = make_broker({a: q for a, q in zip(state.assets, state.holdings) if q}, state.cash)
    with pytest.raises(SolverError):
        rebalancer(solver="CLARABEL").execute(
            targets, {a: {"close": float(p)} for a, p in zip(state.assets, state.prices)},
            broker)
    assert broker.calls == []


def test_backtest_holds_when_every_solver_crashes(crashing_clarabel):
    count("solver_failure")
    crashing_clarabel(PanicException("attempt to subtract with overflow"))
    T = 8
    feed = wide_feed(close={"A": [10 + 0.1 * t for t in range(T)],
                            "B": [20 - 0.1 * t for t in range(T)]})
    strat = PortfolioStrategy(rebalancer(solver="CLARABEL"),
                              optimizer=lambda r, d, c, b: {"A": 0.5, "B": 0.4},
                              lookback=1, schedule=2, on_error="hold")
    broker = SimulatedBroker(10_000.0, fractional=True)
    res = Engine(feed, strat, broker, progress=False).run()
    assert strat.rebalances and strat.n_held == len(strat.rebalances)
    assert all("SolverError" in r["error"] and "PanicException" in r["error"]
               for r in strat.rebalances)
    assert res.orders == [] and broker.cash == 10_000.0
