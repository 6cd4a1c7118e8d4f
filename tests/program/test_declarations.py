"""Declared cost terms and constraint rows (issue 12): the faces agree, user
declarations get the direct path, and the optimum matches an independent cvxpy
formulation written here (not built from the declarations)."""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from rebalopt import PortfolioState
from rebalopt.constraints import CashFloor, Constraint, LongOnly, Point
from rebalopt.costs import Commission, CostModel, MarketImpact, Spread
from rebalopt.program import AuxTerm, CostTerms, MatrixLayout, MatrixRows, PowerTerm
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Diagonal

N = 12


def problem(seed: int, n: int = N):
    rng = np.random.default_rng(seed)
    assets = [f"A{i:02d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 300, n), index=assets)
    hold = pd.Series(np.round(rng.uniform(0, 400, n)), index=assets)
    state = PortfolioState(hold, 5_000.0, prices,
                           adv=pd.Series(rng.uniform(1e4, 1e5, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    targets = pd.Series(rng.dirichlet(np.ones(n)) * 0.97, index=assets)
    var = pd.Series(rng.uniform(0.1, 0.4, n) ** 2, index=assets)  # annual variances
    return state, targets, var


# ------------------------------------------------------------ faces agree
@pytest.mark.parametrize("model", [Spread(7.0), Commission(per_share=0.01, bps=2.0),
                                   MarketImpact(coef=0.8), MarketImpact(exponent=1.0),
                                   MarketImpact(exponent=2.0)], ids=repr)
@pytest.mark.parametrize("seed", range(4))
def test_terms_price_trades_like_evaluate(model, seed):
    state, _, _ = problem(seed)
    z = np.random.default_rng(seed + 10).normal(0, 0.02, N)
    shares = z * state.equity / (state.prices * state.multipliers)
    got = model.terms(state).trading_cost(z) * state.equity
    assert got == pytest.approx(float(model.evaluate(shares, state).sum()), rel=1e-10)


def test_commission_per_order_part_is_declared():
    state, _, _ = problem(0)
    m = Commission(per_share=0.005, minimum=1.0, per_order=0.35)
    t = m.terms(state)
    assert not t.exact and t.per_order is not None
    q = np.zeros(N)
    q[:3] = [1.0, -2_000.0, 0.0]
    notional = np.abs(q) * state.prices
    lin = t.per_order.rate * notional
    # full charge = linear part + declared per-order excess (independent: evaluate)
    np.testing.assert_allclose(lin + t.per_order.excess(notional), m.evaluate(q, state),
                               rtol=1e-12)


# --------------------------------------------------------------- layout
def test_rows_on_w_and_cash_resolve_to_z():
    """Rows declared on the virtual blocks equal the same rows on z after substitution."""
    rng = np.random.default_rng(3)
    n = 5
    L = MatrixLayout(n=n, z=np.arange(n), t=np.arange(n, 2 * n), ncols=2 * n)
    L.cost_cols, L.cost_vals = L.t, rng.uniform(0, 1e-3, n)
    w0, c0 = rng.uniform(0, 0.2, n), 0.1
    M = rng.normal(size=(2, n))
    rows = [MatrixRows.dense_rows(L.w, M, [0.3, -0.1]),
            MatrixRows.dense_rows(L.cash, [[-2.0]], [-0.05]),
            MatrixRows.dense_rows(np.r_[L.cost, L.z[:1]], [[3.0, 1.0]], [0.01])]
    z = rng.normal(0, 0.05, n)
    x = np.r_[z, np.abs(z)]
    cost = float(L.cost_vals @ np.abs(z))
    w, cash = w0 + z, c0 - z.sum() - cost
    expect = [M @ w - [0.3, -0.1], np.array([-2.0 * cash + 0.05]),
              np.array([3.0 * cost + z[0] - 0.01])]
    for r, e in zip(rows, expect):
        res = L.resolve(r, w0, c0)
        assert res.col.min() >= 0
        A = np.zeros((res.m, 2 * n))
        np.add.at(A, (res.row, res.col), res.val)
        np.testing.assert_allclose(A @ x - res.b, e, atol=1e-14)


# ----------------------------------------------------- user declarations
class MySpread(Spread):
    """A plain subclass of a built-in."""


@dataclass
class QuadraticCost(CostModel):
    """A user cost model: ``k * z**2`` per asset plus a flat 1 bp (fraction of equity)."""

    k: float = 0.05
    label: str | None = None

    def terms(self, state):
        return CostTerms(linear=np.full(state.n, 1e-4), quadratic=np.full(state.n, self.k))

    def evaluate(self, trades, state):
        z = np.asarray(trades) * state.prices * state.multipliers / state.equity
        return (1e-4 * np.abs(z) + self.k * z ** 2) * state.equity


@dataclass
class MaxPosition(Constraint):
    """A user constraint declared on post-trade weights: ``w_i <= cap``."""

    cap: float = 0.1
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def rows(self, layout, state, targets):
        return [MatrixRows.diagonal(layout.w, 1.0, np.full(state.n, self.cap))]

    def evaluate(self, point: Point):
        return point.w, np.full(point.state.n, self.cap)


def independent_cvxpy(state, targets, var, gamma, horizon, lin, quad, power, cap, floor=0.0):
    """The same program written by hand in cvxpy (not from the declarations)."""
    w0 = state.weights
    wt = state.target_weights(targets)
    z = cp.Variable(state.n)
    w = w0 + z
    cost = lin @ cp.abs(z) + quad @ cp.square(z)
    for a, p in power:
        cost = cost + a @ cp.power(cp.abs(z), p)
    risk = 0.5 * gamma * horizon * cp.sum_squares(cp.multiply(np.sqrt(var), w - wt))
    cons = [w >= 0, state.cash_weight - cp.sum(z) - cost >= floor]
    if cap is not None:
        cons.append(w <= cap)
    prob = cp.Problem(cp.Minimize(1e4 * (cost + risk)), cons)
    prob.solve(solver="CLARABEL")
    return prob.value / 1e4, z.value


@pytest.mark.parametrize("seed", range(3))
def test_user_models_solve_on_the_direct_path_and_match_cvxpy(seed):
    state, targets, vol = problem(seed)
    costs = [MySpread(5.0), QuadraticCost(0.05), MarketImpact(coef=0.5)]
    reb = OptimalRebalancer(risk=Diagonal(vol), costs=costs,
                            constraints=[LongOnly(), CashFloor(), MaxPosition(0.12)])
    sol = reb.solve(state, targets)
    assert reb._direct is not None and reb._compiled is None  # no cvxpy fallback
    assert sol.solver == "CLARABEL" and reb.compilations == 1
    state2 = state.replace(cash=state.cash * 1.5)
    sol2 = reb.solve(state2, targets)
    assert not sol2.compiled and reb.compilations == 1  # re-solve: values only
    hs = MySpread(5.0).half_spreads(state)
    a = MarketImpact(coef=0.5).coefficients(state)
    ref, zref = independent_cvxpy(state, targets, vol.to_numpy(), reb.risk_aversion,
                                  reb.horizon, hs + 1e-4, np.full(N, 0.05), [(a, 1.5)], 0.12)
    assert sol.objective == pytest.approx(ref, rel=1e-6, abs=1e-10)
    np.testing.assert_allclose(sol.z, zref, atol=1e-5)


def test_user_power_term_of_any_exponent():
    """A declared power 1.3 gets its own power cone; same optimum as cvxpy's cp.power."""
    @dataclass
    class Power13(CostModel):
        label: str | None = None

        def terms(self, state):
            return CostTerms(power=(PowerTerm(np.full(state.n, 2e-3), 1.3),))

        def evaluate(self, trades, state):
            z = np.asarray(trades) * state.prices * state.multipliers / state.equity
            return 2e-3 * np.abs(z) ** 1.3 * state.equity

    state, targets, vol = problem(7)
    reb = OptimalRebalancer(risk=Diagonal(vol), costs=[Power13()])
    sol = reb.solve(state, targets)
    assert reb._direct is not None
    ref, _ = independent_cvxpy(state, targets, vol.to_numpy(), reb.risk_aversion, reb.horizon,
                               np.zeros(N), np.zeros(N), [(np.full(N, 2e-3), 1.3)], None)
    assert sol.objective == pytest.approx(ref, rel=1e-6, abs=1e-10)


def test_cvxpy_backend_reads_the_same_declarations():
    state, targets, vol = problem(4)
    kw = dict(risk=Diagonal(vol), costs=[MySpread(5.0), QuadraticCost(0.05)],
              constraints=[LongOnly(), CashFloor(), MaxPosition(0.12)])
    a = OptimalRebalancer(backend="direct", **kw).solve(state, targets)
    b = OptimalRebalancer(backend="cvxpy", **kw).solve(state, targets)
    assert a.objective == pytest.approx(b.objective, rel=1e-6)


# ------------------------------------------------------------- cvxpy hatch
def test_to_cvxpy_is_the_same_program():
    state, targets, var = problem(5)
    reb = OptimalRebalancer(risk=Diagonal(var), costs=[Spread(5.0), MarketImpact(coef=0.5)],
                            constraints=[LongOnly(), CashFloor(), MaxPosition(0.12)])
    sol = reb.solve(state, targets)
    prob, v = reb.to_cvxpy(state, targets)
    prob.solve(solver="CLARABEL")
    assert prob.value / 1e4 == pytest.approx(sol.objective, rel=1e-6)
    np.testing.assert_allclose(v.z.value, sol.z, atol=1e-5)
    np.testing.assert_allclose(v.w.value, state.weights + v.z.value, atol=1e-12)


@pytest.mark.parametrize("seed", range(2))
def test_cvxpy_escape_hatch_constraint_and_objective(seed):
    """A cvxpy constraint (group cap on w) and an objective term on post-trade weights
    (quadratic penalty on the first two assets) through to_cvxpy; same optimum as the
    program written independently here."""
    state, targets, var = problem(seed)
    lam = 0.02
    reb = OptimalRebalancer(
        risk=Diagonal(var), costs=[Spread(5.0)], constraints=[LongOnly(), CashFloor()],
        cvxpy_constraints=[lambda v: [cp.sum(v.w[:3]) <= 0.15]],
        cvxpy_objective=[lambda v: lam * cp.sum_squares(v.w[:2])])
    sol = reb.solve(state, targets)
    assert sol.solver == "CLARABEL" and "user" in sol.terms
    assert float(sol.w[:3].sum()) <= 0.15 + 1e-7
    # independent
    w0, wt = state.weights, state.target_weights(targets)
    z = cp.Variable(N)
    w = w0 + z
    cost = MySpread(5.0).half_spreads(state) @ cp.abs(z)
    obj = (cost + 0.5 * reb.risk_aversion * reb.horizon
           * cp.sum_squares(cp.multiply(np.sqrt(var.to_numpy()), w - wt))
           + lam * cp.sum_squares(w[:2]))
    ref = cp.Problem(cp.Minimize(1e4 * obj), [w >= 0, state.cash_weight - cp.sum(z) - cost >= 0,
                                              cp.sum(w[:3]) <= 0.15])
    ref.solve(solver="CLARABEL")
    assert sol.objective == pytest.approx(ref.value / 1e4, rel=1e-6)
    np.testing.assert_allclose(sol.z, z.value, atol=1e-5)


@pytest.mark.parametrize("mode", ["round", "exact"])
def test_integer_stage_accepts_user_declarations(mode):
    """Whole shares with a Spread subclass, a user cost model and a user constraint:
    the integer stage reads their declarations (and the user constraint's check)."""
    state, targets, var = problem(11)
    reb = OptimalRebalancer(risk=Diagonal(var), costs=[MySpread(5.0), QuadraticCost(0.05)],
                            constraints=[LongOnly(), CashFloor(), MaxPosition(0.12)],
                            integer=mode)
    plan = reb.plan(state, targets)
    assert np.all(plan.trades == np.round(plan.trades))
    assert plan.post_weights.max() <= 0.12 + 1e-9
    assert plan.post_cash_weight >= -1e-9
    relaxed = reb.solve(state, targets).objective
    assert plan.info["objective"] >= relaxed - 1e-9  # the relaxation bounds it below


@dataclass
class SpreadViaAux(CostModel):
    """A half spread written with its own block ``u >= |z|`` (an aux term), the way a
    tax-lot cost declares lot-level sells: rows over ``z`` and the block, a linear cost."""

    bps: float = 5.0
    paid_from_cash: bool = True
    label: str | None = None

    def terms(self, state):
        n = state.n

        def rows(layout):
            u = layout.aux((id(self), "u"), n)
            i = np.arange(n)  # z - u <= 0, -z - u <= 0
            return [MatrixRows(np.r_[i, i, n + i, n + i], np.r_[layout.z, u, layout.z, u],
                               np.r_[np.ones(n), -np.ones(n), -np.ones(n), -np.ones(n)],
                               np.zeros(2 * n), main=False)]

        return CostTerms(aux=(AuxTerm((id(self), "u"), n, np.full(n, self.bps * 1e-4), rows,
                                      self.paid_from_cash),))

    def evaluate(self, trades, state):
        return np.abs(trades) * state.prices * state.multipliers * self.bps * 1e-4


def test_aux_cost_block_matches_the_built_in_it_rewrites():
    state, targets, var = problem(8)
    kw = dict(risk=Diagonal(var), constraints=[LongOnly(), CashFloor()])
    a = OptimalRebalancer(costs=[SpreadViaAux(5.0)], **kw)
    b = OptimalRebalancer(costs=[Spread(5.0)], **kw)
    sa, sb = a.solve(state, targets), b.solve(state, targets)
    assert a._direct is not None and a._compiled is None
    assert sa.objective == pytest.approx(sb.objective, rel=1e-6)
    np.testing.assert_allclose(sa.z, sb.z, atol=1e-6)
    # the block's cost is paid from cash: post-trade cash matches the built-in's
    assert sa.cash == pytest.approx(sb.cash, abs=1e-8)
