"""A user constraint that declares only ``rows`` (and its numeric ``evaluate``) works on
every path: the direct Clarabel program, the SCS fallback, ``backend="cvxpy"``, the
infeasibility diagnosis, and the integer stage (round and exact). The optimum is
compared with an independent cvxpy formulation written here, not built from the
declarations."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from rebalopt import InfeasibleError, PortfolioState
from rebalopt.constraints import CashFloor, Constraint, LongOnly, Point, WeightBounds
from rebalopt.costs import Spread
from rebalopt.program import MatrixRows
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Diagonal

N = 10
SUBSET = [0, 1, 2]


@dataclass
class SubsetCap(Constraint):
    """``sum(w[idx]) <= cap``: one dense row on post-trade weights."""

    idx: list[int] = field(default_factory=lambda: list(SUBSET))
    cap: float = 0.2
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def rows(self, layout, state, targets):
        return [MatrixRows.dense_rows(layout.w[self.idx], np.ones((1, len(self.idx))),
                                      [self.cap])]

    def evaluate(self, point: Point):
        return np.array([point.w[self.idx].sum()]), np.array([self.cap])


@dataclass
class TradeBudget(Constraint):
    """``sum(|z_i|, i in idx) <= budget`` through an auxiliary block ``u >= |z[idx]|``
    of its own (``main=False`` rows), so its declaration exercises ``layout.aux``."""

    idx: list[int] = field(default_factory=lambda: [3, 4, 5])
    budget: float = 0.02
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    units: str = "turnover"

    def rows(self, layout, state, targets):
        k = len(self.idx)
        u = layout.aux((id(self), "u"), k)
        z = layout.z[self.idx]
        i = np.arange(k)  # z - u <= 0, -z - u <= 0
        define = MatrixRows(np.r_[i, i, k + i, k + i], np.r_[z, u, z, u],
                            np.r_[np.ones(k), -np.ones(k), -np.ones(k), -np.ones(k)],
                            np.zeros(2 * k), main=False)
        return [define, MatrixRows.dense_rows(u, np.ones((1, k)), [self.budget])]

    def evaluate(self, point: Point):
        return np.array([np.abs(point.z[self.idx]).sum()]), np.array([self.budget])


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    assets = [f"U{i}" for i in range(N)]
    prices = pd.Series(rng.uniform(20, 120, N), index=assets)
    hold = pd.Series(np.round(rng.uniform(0, 300, N)), index=assets)
    hold.iloc[SUBSET] = np.round(4_000 / prices.iloc[SUBSET])  # the subset is heavy now
    state = PortfolioState(hold, 6_000.0, prices)
    w = rng.dirichlet(np.ones(N)) * 0.97
    w[SUBSET] = 0.15  # and the targets want it heavy too: the cap binds
    targets = pd.Series(w / w.sum() * 0.97, index=assets)
    var = pd.Series(rng.uniform(0.1, 0.4, N) ** 2, index=assets)
    return state, targets, var


def oracle(state, targets, var, reb, cap=None, budget=None, soft_cap=None):
    """The same program written by hand in cvxpy: spread, diagonal risk, long-only, no
    borrowing, the subset cap (hard, or soft with a penalty) and the trade budget."""
    z = cp.Variable(state.n)
    w = state.weights + z
    wt = state.target_weights(targets)
    cost = Spread(5.0).half_spreads(state) @ cp.abs(z)
    obj = cost + 0.5 * reb.risk_aversion * reb.horizon * cp.sum_squares(
        cp.multiply(np.sqrt(var.to_numpy()), w - wt))
    cons = [w >= 0, state.cash_weight - cp.sum(z) - cost >= 0]
    if cap is not None:
        cons.append(cp.sum(w[SUBSET]) <= cap)
    if soft_cap is not None:
        cap_, pen = soft_cap
        obj = obj + pen * cp.pos(cp.sum(w[SUBSET]) - cap_)
    if budget is not None:
        cons.append(cp.sum(cp.abs(z[[3, 4, 5]])) <= budget)
    prob = cp.Problem(cp.Minimize(1e4 * obj), cons)
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    return prob.value / 1e4, z.value


def make(var, **kw):
    kw.setdefault("constraints", [LongOnly(), CashFloor(), SubsetCap(cap=0.2),
                                  TradeBudget(budget=0.02)])
    return OptimalRebalancer(risk=Diagonal(var), costs=[Spread(5.0)], **kw)


def test_the_user_constraint_binds_in_this_problem():
    state, targets, var = problem()
    _, free_z = oracle(state, targets, var, make(var))
    assert (state.weights + free_z)[SUBSET].sum() > 0.2 + 1e-3
    assert np.abs(free_z[[3, 4, 5]]).sum() > 0.02 + 1e-3


@pytest.mark.parametrize("backend", ["direct", "cvxpy"])
def test_direct_and_cvxpy_backends_match_the_oracle(backend):
    state, targets, var = problem()
    reb = make(var, backend=backend)
    sol = reb.solve(state, targets)
    ref, zref = oracle(state, targets, var, reb, cap=0.2, budget=0.02)
    assert sol.solver == "CLARABEL" and reb.compilations == 1
    assert (reb._direct is not None) == (backend == "direct")
    assert (reb._compiled is not None) == (backend == "cvxpy")
    assert sol.objective == pytest.approx(ref, rel=1e-6, abs=1e-10)
    np.testing.assert_allclose(sol.z, zref, atol=1e-5)
    # a re-solve on a new state: values only
    again = reb.solve(state.replace(cash=state.cash * 1.2), targets)
    assert not again.compiled and reb.compilations == 1
    if backend == "cvxpy":
        assert reb.is_dpp(state, targets)
        assert reb._compiled._program.rebuilds == 0  # the declared rows kept their shape


def test_scs_fallback_matches_the_oracle():
    state, targets, var = problem()
    reb = make(var, solver="SCS", solver_options={"SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9}})
    sol = reb.solve(state, targets)
    ref, _ = oracle(state, targets, var, reb, cap=0.2, budget=0.02)
    assert sol.solver == "SCS"
    assert sol.objective == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize("backend", ["direct", "cvxpy"])
def test_soft_user_constraint_is_priced_like_the_oracle(backend):
    state, targets, var = problem()
    cap = SubsetCap(cap=0.2, soft=True, penalty=0.01)
    reb = make(var, backend=backend, constraints=[LongOnly(), CashFloor(), cap])
    sol = reb.solve(state, targets)
    ref, _ = oracle(state, targets, var, reb, soft_cap=(0.2, 0.01))
    assert sol.objective == pytest.approx(ref, rel=1e-6, abs=1e-10)
    assert cap.check(Point.from_trades(state, state.target_weights(targets), sol.z, 0.0)
                     ).violation > 1e-4  # cheap enough to break


@pytest.mark.parametrize("backend", ["direct", "cvxpy"])
def test_diagnosis_names_the_user_constraint(backend):
    """Hard floors of 3% on each subset asset against a subset cap of 5%: the cap must
    give way by 4% alone, or the floors by 4% in total (the elastic program reads the
    user's rows like any other)."""
    state, targets, var = problem()
    floors = WeightBounds(lower={state.assets[i]: 0.03 for i in SUBSET})
    reb = make(var, backend=backend,
               constraints=[LongOnly(), CashFloor(), floors, SubsetCap(cap=0.05)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(InfeasibleError) as info:
            reb.solve(state, targets)
    got = {c.constraint.split(" [")[0]: c.violation for c in info.value.conflicts}
    assert "SubsetCap" in got and "WeightBounds" in got
    assert got["SubsetCap"] == pytest.approx(0.04, rel=1e-3)


@pytest.mark.parametrize("mode", ["round", "exact"])
def test_integer_stage_reads_the_user_rows(mode):
    state, targets, var = problem()
    cons = [LongOnly(), CashFloor(), SubsetCap(cap=0.2), TradeBudget(budget=0.02)]
    reb = make(var, constraints=cons, integer=mode)
    plan = reb.plan(state, targets)
    assert np.all(plan.trades == np.round(plan.trades))
    point = Point.from_plan(plan)
    for c in cons:  # the numeric oracle, on the emitted whole-share plan
        assert c.check(point).satisfied, c.name
    relaxed = reb.solve(state, targets).objective
    assert plan.info["objective"] >= relaxed - 1e-9  # the relaxation bounds it below
    if mode == "exact":  # the MIP wrote the user's rows (aux block included) and proved it
        assert plan.info["mip_status"] == "optimal" and plan.info["mip_proven_optimal"]
        assert plan.info["mip_bound"] >= relaxed - 1e-9
