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
from rebalopt.constraints import CashFloor, Leverage, LongOnly, ShortLimit
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
    from rebalopt.rebalance import _problem as problem_mod

    real = problem_mod.CompiledProblem.solve
    calls = []

    def fake(self, solver, options=None, elastic=False):
        if elastic:
            calls.append(solver)
            if solver in solvers:
                return problem_mod.RawSolution(solver, "error: simulated", None, None, None,
                                            None, 0.0)
        return real(self, solver, options, elastic)

    monkeypatch.setattr(problem_mod.CompiledProblem, "solve", fake)
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
    # Clarabel failed the diagnosis (with its settings, then its retry settings), SCS
    # ran it (feasible after all), once only
    assert calls == ["CLARABEL", "CLARABEL", "SCS"]
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


# ------------------------------------------- the cash floor with the fees charged
def _cash_after(plan) -> float:
    """Post-trade cash in currency from shares and the plan's charged costs."""
    s = plan.state
    return float(s.cash - (plan.trades * s.prices * s.multipliers).sum() - plan.total_cost)


@pytest.mark.parametrize(("commission", "fees"), [
    (Commission(bps=1.0, minimum=5.0), 15.0),  # three minimums
    (Commission(bps=1.0, per_order=2.0), None),  # per-order fee on top of 1 bp
    (Commission(per_share=0.01, minimum=4.0, per_order=1.0), None),
])
@pytest.mark.parametrize("floor", [0.0, 0.02, -0.1])
def test_cash_floor_holds_with_minimums_and_per_order_fees(commission, fees, floor):
    state = cash_account()
    targets = {"A": 0.4, "B": 0.3, "C": 0.3 - floor}  # the floor binds
    reb = OptimalRebalancer(costs=[commission], risk_aversion=1e4,
                            constraints=[LongOnly(), CashFloor(floor)])
    plan = reb.plan(state, targets)
    if fees is not None:
        assert plan.total_cost == pytest.approx(fees)
    # by hand: commission per traded asset from its closed form
    q = np.abs(plan.trades)
    by_hand = np.where(q > 0, np.maximum(commission.per_share * q
                                         + commission.bps * 1e-4 * q * state.prices,
                                         commission.minimum) + commission.per_order, 0.0)
    assert plan.total_cost == pytest.approx(by_hand.sum(), rel=1e-12)
    cash = _cash_after(plan)
    assert cash >= floor * state.equity - 1e-7 * state.equity
    # and not far above it: the reserve is the fees the program cannot see, no more
    assert cash <= floor * state.equity + 1e-5 * state.equity
    assert plan.info["fee_reserve"] > 0 and plan.info["fee_reserve_rounds"] >= 1
    assert plan.info["slacks"][f"CashFloor({floor:g})"] >= -1e-7
    assert reb.constraints[1].floor == floor  # the floor object is left as given


def test_no_fee_reserve_when_the_floor_is_not_binding_or_costs_are_convex():
    state = cash_account()
    targets = {"A": 0.3, "B": 0.3, "C": 0.3}  # 10% cash left: minimums fit
    plan = OptimalRebalancer(costs=[Commission(bps=1.0, minimum=5.0)]).plan(state, targets)
    assert plan.info["fee_reserve"] == 0.0 and plan.info["fee_reserve_rounds"] == 0
    assert _cash_after(plan) >= 0
    plan = OptimalRebalancer(costs=[Commission(bps=1.0)]).plan(
        state, {"A": 0.4, "B": 0.3, "C": 0.3})
    assert plan.info["fee_reserve_rounds"] == 0 and _cash_after(plan) >= -1e-7 * state.equity


def test_fees_that_cannot_be_reserved_hold_or_are_infeasible_with_a_reason():
    """$3 of cash and a $5 minimum per order, A may not be sold. Buying B would
    overdraw the account once the minimum is charged; not trading pays no fee."""
    from rebalopt import InfeasibleError
    from rebalopt.constraints import Restricted, WeightBounds

    state = PortfolioState({"A": 1000.0}, 3.0, PRICES)  # $10,003 equity, $3 cash
    costs = [Commission(bps=1.0, minimum=5.0)]
    reb = OptimalRebalancer(costs=costs, constraints=[LongOnly(), CashFloor(),
                                                      Restricted(no_sell=["A"])])
    plan = reb.plan(state, {"A": 0.9997, "B": 0.0003})
    assert not plan.trades.any() and plan.total_cost == 0.0 and _cash_after(plan) == 3.0
    assert plan.info["attempts"][-1][0] == "no trade [fees cannot be reserved]"
    # B must be bought ($2 at least): no trade breaks that, a trade breaks the floor
    must = OptimalRebalancer(costs=costs, constraints=[
        LongOnly(), CashFloor(), Restricted(no_sell=["A"]), WeightBounds(lower={"B": 0.0002})])
    with pytest.raises(InfeasibleError, match="reserved from cash"):
        must.plan(state, {"A": 0.9997, "B": 0.0003})
    # selling A is allowed: the sale pays the fees, the floor holds with them
    plan = OptimalRebalancer(costs=costs, constraints=[LongOnly(), CashFloor()]).plan(
        state, {"A": 0.5, "B": 0.25, "C": 0.25})
    assert plan.total_cost == pytest.approx(15.0) and _cash_after(plan) >= -1e-7 * 10_003


# ------------------------------------------------------------ per-solve time limit
def test_time_limit_reaches_every_solver_and_is_recorded(monkeypatch):
    import clarabel

    from rebalopt.rebalance import _problem as problem_mod

    seen: dict[str, float] = {}
    real_solver = clarabel.DefaultSolver

    def spy_solver(P, q, A, b, cones, settings):
        seen["CLARABEL"] = settings.time_limit
        return real_solver(P, q, A, b, cones, settings)

    real_solve = problem_mod.CompiledProblem.solve

    def spy_solve(self, solver, options=None, elastic=False):
        seen[solver] = (options or {}).get("time_limit_secs")
        return real_solve(self, solver, options, elastic)

    monkeypatch.setattr(clarabel, "DefaultSolver", spy_solver)
    monkeypatch.setattr(problem_mod.CompiledProblem, "solve", spy_solve)
    state, targets = _problem()
    plan = OptimalRebalancer(costs=[Spread(3.0)], time_limit=7.5).plan(state, targets)
    assert plan.info["time_limit"] == 7.5 and seen == {"CLARABEL": 7.5}
    plan = OptimalRebalancer(costs=[Spread(3.0)], solver="SCS", time_limit=3.0).plan(
        state, targets)
    assert seen["SCS"] == 3.0 and plan.info["solver"] == "SCS"
    # an explicit solver option wins
    OptimalRebalancer(costs=[Spread(3.0)], time_limit=3.0,
                      solver_options={"CLARABEL": {"time_limit": 9.0}}).plan(state, targets)
    assert seen["CLARABEL"] == 9.0


def test_a_time_limit_too_short_for_every_solver_is_a_solver_error():
    from rebalopt.errors import SolverError

    state, targets = _problem()
    reb = OptimalRebalancer(costs=[Spread(3.0)], time_limit=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(SolverError) as info:
            reb.plan(state, targets)
    statuses = dict(info.value.attempts)
    assert statuses["CLARABEL"].startswith("user_limit")
    assert statuses["SCS"] not in ("optimal", "optimal_inaccurate")


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "10"])
def test_time_limit_must_be_positive_seconds(bad):
    with pytest.raises(InputError) as info:
        OptimalRebalancer(time_limit=bad)
    assert info.value.field == "OptimalRebalancer.time_limit"


# ------------------------------------------------- negative targets with LongOnly
def test_negative_targets_with_long_only_land_at_zero_and_stay_on_the_plan():
    """Identity risk, no cost: the plan is the projection of the targets onto w >= 0
    (and the cash floor, slack here): A at 0, the others exactly at their targets."""
    state = cash_account(holdings={"A": 200.0})  # A held at 2000 / 12000
    targets = {"A": -0.2, "B": 0.3, "C": 0.4}
    plan = OptimalRebalancer().plan(state, targets)
    w = (state.holdings + plan.trades) * state.prices / state.equity
    np.testing.assert_allclose(w, [0.0, 0.3, 0.4], atol=1e-7)
    assert w.min() >= -1e-9  # never short (within the solver accuracy, in weight)
    assert plan.targets[0] == -0.2  # the goal as given, not clipped


# ------------------------------------------ PortfolioState.align fast path (solve input)
def _align_both(state, values):
    """(result or error text) through align, with and without the fast path."""
    out = []
    for fast in (True, False):
        try:
            if fast:
                r = state.align(values, "target weight")
            else:
                orig = PortfolioState._align_fast
                PortfolioState._align_fast = lambda self, v: None
                try:
                    r = state.align(values, "target weight")
                finally:
                    PortfolioState._align_fast = orig
            out.append(("ok", r.tobytes()))
        except Exception as exc:  # noqa: BLE001  (compared, type and text)
            out.append((type(exc).__name__, str(exc), getattr(exc, "asset", None)))
    return out


def test_align_fast_path_answers_exactly_like_the_full_path():
    """Oracle: the full (pandas) path of align, with the fast path switched off."""
    import pandas as pd
    from hypothesis import given, settings
    from hypothesis import strategies as st

    state = PortfolioState({"A": 10.0}, 1_000.0, {"A": 10.0, "B": 20.0, "C": 40.0, "D": 5.0})
    finite = st.floats(-2, 2, allow_nan=False)
    value = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf]))

    @settings(deadline=None, max_examples=300)
    @given(vals=st.lists(value, min_size=3, max_size=5),
           kind=st.sampled_from(["array", "series", "series-reordered", "series-object"]))
    def check(vals, kind):
        n = state.n
        if kind == "array":
            values = np.array(vals)
        elif kind == "series":
            values = pd.Series(vals[:n] + [0.0] * (n - len(vals[:n])), index=state.assets)
        elif kind == "series-reordered":
            values = pd.Series(vals[:n] + [0.0] * (n - len(vals[:n])),
                               index=state.assets[::-1])
        else:
            values = pd.Series([str(v) for v in vals[:n]] + ["0"] * (n - len(vals[:n])),
                               index=state.assets, dtype=object)
        a, b = _align_both(state, values)
        assert a == b

    check()
    # not a number in an object Series: the full path's words
    bad = pd.Series(["0.1", "lots", "0.2", "0"], index=state.assets, dtype=object)
    a, b = _align_both(state, bad)
    assert a == b and a[0] == "InputError" and a[2] == "B"
    # the returned array is the caller's to keep: not a view of the input
    arr = np.full(state.n, 0.2)
    out = state.align(arr, "target weight")
    out[0] = 9.0
    assert arr[0] == 0.2
