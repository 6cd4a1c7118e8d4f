"""OptimalRebalancer against independent oracles.

Oracles: the soft-threshold closed form; exact target reach with zero cost; no
trade with huge costs; a second solver (SCS) on random problems; the naive plan
scaled back until feasible (never better than the optimum); the NumPy objective;
accounting identities on the plan; hand-built infeasible sector bounds.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from rebalopt import (
    Commission,
    InfeasibleError,
    MarketImpact,
    NaiveRebalancer,
    PortfolioState,
    RebalanceConfig,
    Spread,
)
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    LongOnly,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel, Identity

SECTORS = ["Tech", "Energy", "Health", "Financials"]


def random_problem(n: int, seed: int, k: int = 3, cash: float = 5_000.0):
    """A long-only book, factor risk, and targets summing to 0.97."""
    rng = np.random.default_rng(seed)
    assets = [f"S{i:03d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 200, n), index=assets)
    hold = pd.Series(np.round(rng.uniform(0, 2_000, n)), index=assets)
    state = PortfolioState(
        hold, cash, prices,
        adv=pd.Series(rng.uniform(2e4, 2e5, n), index=assets),
        volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets),
        groups=pd.Series(rng.choice(SECTORS, n), index=assets),
    )
    targets = pd.Series(rng.dirichlet(np.ones(n)) * 0.97, index=assets)
    B = pd.DataFrame(rng.normal(1.0, 0.3, (n, k)) * [1.0] + rng.normal(0, 0.5, (n, k)),
                     index=assets, columns=[f"f{j}" for j in range(k)])
    A = rng.normal(0, 0.1, (k, k))
    F = pd.DataFrame(A @ A.T + 0.01 * np.eye(k), index=B.columns, columns=B.columns)
    idio = pd.Series(rng.uniform(0.02, 0.09, n), index=assets)
    return state, targets, FactorModel(B, F, idio)


# ------------------------------------------------------------ closed forms
def test_soft_threshold_closed_form():
    """Identity risk, linear cost c_i, no constraints: trade towards the target and
    stop at distance c_i / (gamma * T)."""
    rng = np.random.default_rng(1)
    n = 12
    assets = [f"A{i}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 100, n), index=assets)
    state = PortfolioState(pd.Series(rng.uniform(0, 500, n), index=assets), 1e4, prices)
    targets = pd.Series(rng.dirichlet(np.ones(n)), index=assets)
    half_spread = pd.Series(rng.uniform(0, 400, n), index=assets)  # bps
    gamma, T = 3.0, 0.25
    reb = OptimalRebalancer(risk=Identity(), costs=[Spread(half_spread)], constraints=[],
                            risk_aversion=gamma, horizon=T)
    plan = reb.plan(state, targets)
    c = half_spread.to_numpy() * 1e-4
    d = state.weights - targets.to_numpy()
    z_expect = -np.sign(d) * np.maximum(np.abs(d) - c / (gamma * T), 0.0)
    assert (z_expect == 0).any() and (z_expect != 0).any()  # both regimes exercised
    np.testing.assert_allclose(plan.z, z_expect, atol=1e-6)
    # the same with the default identity (risk=None)
    plan2 = OptimalRebalancer(costs=[Spread(half_spread)], constraints=[],
                              risk_aversion=gamma, horizon=T).plan(state, targets)
    np.testing.assert_allclose(plan2.z, z_expect, atol=1e-6)


def test_zero_cost_reaches_targets_and_huge_cost_does_not_trade():
    state, targets, risk = random_problem(30, 2)
    plan = OptimalRebalancer(risk=risk, costs=[], constraints=[]).plan(state, targets)
    np.testing.assert_allclose(plan.post_weights, targets.to_numpy(), atol=1e-7)
    assert plan.info["tracking_error_after"] < 1e-6 < plan.info["tracking_error_before"]
    huge = OptimalRebalancer(risk=risk, costs=[Spread(1e6)], constraints=[])
    plan = huge.plan(state, targets)
    assert plan.n_trades == 0 and plan.orders() == []
    assert plan.total_cost == 0.0


def test_numpy_objective_matches_solver_and_costs_match_plan():
    state, targets, risk = random_problem(40, 3)
    costs = [Spread(5.0), MarketImpact(coef=0.5), Commission(bps=1.0)]
    reb = OptimalRebalancer(risk=risk, costs=costs,
                            constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.05)])
    sol = reb.solve(state, targets)
    assert sol.solver_objective == pytest.approx(sol.objective, rel=1e-6, abs=1e-12)
    plan = reb.plan(state, targets)
    # cost term == the plan's charged cost (all models exact here), both in equity fractions
    assert plan.info["objective_terms"]["cost"] == pytest.approx(
        plan.total_cost / state.equity, rel=1e-9)
    # risk term from the dense covariance, independently of the root
    root = risk.root(state)
    d = plan.post_weights - targets.to_numpy()
    risk_term = 0.5 * reb.risk_aversion * reb.horizon * d @ root.covariance() @ d
    assert plan.info["objective_terms"]["risk"] == pytest.approx(risk_term, rel=1e-9)
    te = np.sqrt(d @ root.covariance() @ d)
    assert plan.tracking_error_after == pytest.approx(te, rel=1e-9)
    # plan accounting identity
    assert plan.post_cash == pytest.approx(
        state.cash - (plan.trades * state.prices).sum() - plan.total_cost, rel=1e-12)


# --------------------------------------------------------- compile once
def test_dpp_and_sweeps_do_not_recompile():
    state, targets, risk = random_problem(50, 4)
    cap = TurnoverLimit(0.10)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact()],
                            constraints=[LongOnly(), CashFloor(), cap,
                                         GroupBounds(upper=0.6)])
    assert reb.is_dpp(state, targets)
    assert reb.compilations == 1
    turnovers = []
    for c in (0.01, 0.02, 0.04):
        cap.cap = c
        plan = reb.plan(state, targets)
        turnovers.append(plan.turnover)
        assert plan.info["compiled"] is False
    np.testing.assert_allclose(turnovers, [0.01, 0.02, 0.04], atol=1e-7)
    cap.cap = 1.0
    te = []
    for gamma in (1.0, 10.0, 100.0, 1000.0):
        reb.risk_aversion = gamma
        te.append(reb.plan(state, targets).tracking_error_after)
    assert all(a >= b - 1e-9 for a, b in zip(te, te[1:]))  # more aversion, less TE
    assert te[0] > te[-1]
    # a new state on the same universe: parameters only
    state2 = state.replace(cash=state.cash * 2)
    reb.plan(state2, targets)
    assert reb.compilations == 1
    # a new universe recompiles
    small_targets = targets.iloc[:-1] / targets.iloc[:-1].sum() * 0.9
    state3 = state.replace(prices=pd.Series(state.prices[:-1], index=state.assets[:-1]),
                           holdings=pd.Series(state.holdings[:-1], index=state.assets[:-1]))
    reb.plan(state3, small_targets)
    assert reb.compilations == 2


def test_pickle_drops_compiled_program():
    state, targets, risk = random_problem(10, 5)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0)])
    p1 = reb.plan(state, targets)
    reb2 = pickle.loads(pickle.dumps(reb))
    assert reb2._compiled is None
    np.testing.assert_allclose(reb2.plan(state, targets).trades, p1.trades, atol=1e-6)


# ------------------------------------------------------ second solver, naive
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_clarabel_and_scs_agree(seed):
    state, targets, risk = random_problem(25, seed)
    cap = max(state.weights.max(), 0.06) + 0.005  # current book feasible
    groups = max(pd.Series(state.weights).groupby(state.groups).sum().max(), 0.4) + 0.01

    def make(solver):
        return OptimalRebalancer(
            risk=risk, costs=[Spread(5.0), MarketImpact(coef=0.8)], solver=solver,
            constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.04),
                         WeightBounds(upper=cap), GroupBounds(upper=groups)],
            risk_aversion=200.0,
        )
    a = make("CLARABEL").solve(state, targets)
    b = make("SCS").solve(state, targets)
    assert a.solver == "CLARABEL" and b.solver == "SCS"
    assert b.objective == pytest.approx(a.objective, rel=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_never_worse_than_naive_made_feasible(seed):
    state, targets, risk = random_problem(30, 20 + seed)
    cap = max(state.weights.max(), 0.06) + 0.005  # the current book is feasible
    cons = [LongOnly(), CashFloor(), TurnoverLimit(0.03), WeightBounds(upper=cap)]
    reb = OptimalRebalancer(risk=risk, costs=[Spread(8.0), MarketImpact()],
                            constraints=cons)
    opt = reb.solve(state, targets)
    naive = NaiveRebalancer(RebalanceConfig(fractional=True, min_trade_value=0,
                                            min_weight_change=0, max_single_weight=1.0))
    z_naive = naive.plan(state, targets).z

    def feasible(theta):
        return all(s.satisfied for s in reb.check(theta * z_naive, state, targets).values())

    lo, hi = 0.0, 1.0
    assert feasible(0.0)
    if not feasible(1.0):
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    else:
        lo = 1.0
    naive_obj = reb.objective(lo * z_naive, state, targets)
    assert opt.objective <= naive_obj + 1e-12
    assert opt.objective <= reb.objective(np.zeros(state.n), state, targets) + 1e-12


# -------------------------------------------------------------- infeasible
class RecordingBroker:
    """A minimal broker: records orders, holds nothing but cash."""

    def __init__(self, holdings, cash):
        self.positions = dict(holdings)
        self.cash = cash
        self.orders = []

    def submit_order(self, asset, quantity, side, order_type=None, limit_price=None):
        self.orders.append((asset, quantity, side))
        return len(self.orders)

    def get_position(self, asset):
        return self.positions.get(asset, 0.0)

    def get_account_value(self):
        return self.cash

    def get_cash(self):
        return self.cash


def test_infeasible_sector_bounds_names_both_and_sends_no_orders():
    state, targets, risk = random_problem(20, 7)
    cap = GroupBounds.from_text("Tech <= 0.10")
    floor = GroupBounds.from_text("Tech >= 0.20")
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0)],
                            constraints=[LongOnly(), CashFloor(), cap, floor])
    with pytest.raises(InfeasibleError) as err:
        reb.plan(state, targets)
    names = " ".join(c.constraint for c in err.value.conflicts)
    assert "Tech <= 0.10" in names and "Tech >= 0.20" in names
    by_name = {c.constraint.split(" [")[0]: c.violation for c in err.value.conflicts}
    # each alone must give way by the 0.10 gap between the two bounds
    assert by_name[cap.name] == pytest.approx(0.10, abs=1e-5)
    assert by_name[floor.name] == pytest.approx(0.10, abs=1e-5)
    assert "Tech" in str(err.value)
    # through the executor: nothing reaches the broker
    broker = RecordingBroker({a: q for a, q in zip(state.assets, state.holdings)}, state.cash)
    data = {a: {"close": p} for a, p in zip(state.assets, state.prices)}
    data = {a: {**bar, "sector": g} for (a, bar), g in zip(data.items(), state.groups)}
    with pytest.raises(InfeasibleError):
        reb.execute(targets.to_dict(), data, broker)
    assert broker.orders == []


def test_infeasible_cash_and_sector_floor_names_the_conflict():
    state, targets, risk = random_problem(20, 8, cash=0.0)
    floors = GroupBounds.from_text("Tech >= 0.6; Energy >= 0.6")
    reb = OptimalRebalancer(risk=risk, constraints=[LongOnly(), CashFloor(), floors])
    with pytest.raises(InfeasibleError) as err:
        reb.plan(state, targets)
    names = {c.constraint.split(" [")[0] for c in err.value.conflicts}
    assert floors.name in names and "CashFloor(0)" in names


# ----------------------------------------------------------- plan and misc
def test_plan_info_execute_and_dust():
    state, targets, risk = random_problem(30, 9)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(2.0), MarketImpact()],
                            constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.02)])
    plan = reb.plan(state, targets)
    for key in ("solver", "status", "solve_time", "iterations", "objective", "slacks",
                "binding", "tracking_error_before", "tracking_error_after", "attempts"):
        assert key in plan.info
    assert plan.info["solver"] == "CLARABEL" and plan.info["status"] == "optimal"
    assert "TurnoverLimit(0.02)" in plan.info["binding"]
    assert plan.tracking_error_after < plan.tracking_error_before
    nz = plan.z[plan.z != 0]
    assert (np.abs(nz) >= reb.min_trade_weight).all()
    preview = plan.preview()
    assert {"current_weight", "target_weight", "post_weight"} <= set(preview.columns)
    broker = RecordingBroker({a: q for a, q in zip(state.assets, state.holdings)}, state.cash)
    data = {a: {"close": p, "adv": v, "volatility": s} for a, p, v, s in
            zip(state.assets, state.prices, state.adv, state.volatility)}
    sent = reb.execute(targets.to_dict(), data, broker)
    assert len(sent) == plan.n_trades == len(broker.orders)
    sides = [o[2].value for o in broker.orders]
    assert sides == sorted(sides, key=lambda s: s != "sell")  # sells first


def test_alpha_tilts_towards_expected_return():
    state, targets, risk = random_problem(15, 10)
    alpha = pd.Series(0.0, index=state.assets)
    alpha.iloc[0] = 0.02
    base = OptimalRebalancer(risk=risk, costs=[Spread(5.0)], constraints=[LongOnly()])
    tilt = OptimalRebalancer(risk=risk, costs=[Spread(5.0)], constraints=[LongOnly()],
                             alpha=alpha)
    w0 = base.plan(state, targets).post_weights[0]
    w1 = tilt.plan(state, targets).post_weights[0]
    assert w1 > w0 + 1e-4
    sol = tilt.solve(state, targets)
    assert sol.terms["alpha"] == pytest.approx(-0.02 * sol.w[0], rel=1e-9)


def test_commission_minimum_left_out_but_charged():
    state, targets, risk = random_problem(10, 14)
    comm = Commission(bps=1.0, minimum=1.0)
    reb = OptimalRebalancer(risk=risk, costs=[comm], constraints=[LongOnly()])
    plan = reb.plan(state, targets)
    assert plan.info["exact_costs"] is False
    assert plan.cost_by_model["Commission"] >= plan.n_trades * 1.0 - 1e-9


# ---------------------------------------------------------------- fallback
def test_fallback_chain_records_attempts_and_solver():
    from rebalopt import SolverError

    state, targets, risk = random_problem(30, 9)
    cons = [LongOnly(), CashFloor(), TurnoverLimit(0.02)]
    costs = [Spread(2.0), MarketImpact()]
    # Clarabel stopped after 3 iterations has no usable point: SCS takes over
    reb = OptimalRebalancer(risk=risk, costs=costs, constraints=cons,
                            solver=["CLARABEL", "SCS"],
                            solver_options={"CLARABEL": {"max_iter": 3}})
    with pytest.warns(UserWarning):
        plan = reb.plan(state, targets)
    assert plan.info["solver"] == "SCS"
    # Clarabel, Clarabel again with other numerics, then SCS
    assert [a[0] for a in plan.info["attempts"]] == ["CLARABEL", "CLARABEL (retry)", "SCS"]
    ref = OptimalRebalancer(risk=risk, costs=costs, constraints=cons).solve(state, targets)
    assert plan.info["objective"] == pytest.approx(ref.objective, rel=1e-4)
    # OSQP cannot take a power cone: it errors and Clarabel answers
    reb = OptimalRebalancer(risk=risk, costs=costs, constraints=cons,
                            solver=["OSQP", "CLARABEL"])
    sol = reb.solve(state, targets)
    assert sol.solver == "CLARABEL" and sol.attempts[0][0] == "OSQP"
    # nobody answers: SolverError naming every attempt, no plan
    reb = OptimalRebalancer(risk=risk, costs=costs, constraints=cons, solver="CLARABEL",
                            solver_options={"CLARABEL": {"max_iter": 2}})
    with pytest.raises(SolverError, match="CLARABEL"):
        reb.plan(state, targets)
