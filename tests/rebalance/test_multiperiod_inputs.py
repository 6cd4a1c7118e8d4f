"""MultiPeriodRebalancer: no knob or charge accepted and then ignored (rev7).

Before: a schedule under a hard ``CashFloor(0)`` with ``Commission(minimum=5)`` left
the first period's cash at -$19.99 (the minimums are not convex, the program never
saw them; the single-period plan reserves them); ``min_trade_weight=nan``,
``feasibility_tol=-1`` and ``cost_in_tracking="no"`` (truthy) were accepted, a cost
model or constraint of the wrong type was an ``AttributeError``, solver options were
checked only at the first solve, and a target path longer than ``periods`` lost its
extra rows silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt import (
    CashFloor,
    Commission,
    InputError,
    LongOnly,
    MultiPeriodRebalancer,
    OptimalRebalancer,
    PortfolioState,
    Spread,
)
from rebalopt.errors import SolverError


def _cash_book(cash: float = 10_000.0) -> tuple[PortfolioState, pd.Series]:
    st = PortfolioState({"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0}, cash,
                        {"A": 10.0, "B": 20.0, "C": 30.0, "D": 40.0})
    return st, pd.Series({"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25})


def _replayed_cash(state: PortfolioState, shares: pd.DataFrame, costs: list) -> np.ndarray:
    """Cash after each period, replayed from the schedule (shares at today's prices)
    with every cost model's full charge (``evaluate``): the oracle."""
    unit = state.prices * state.multipliers
    cash, out = state.cash, []
    for _, row in shares.iterrows():
        q = row.to_numpy()
        cash -= float(q @ unit) + float(sum(m.evaluate(q, state).sum() for m in costs))
        out.append(cash)
    return np.array(out)


def test_one_period_reserves_commission_minimums_like_the_single_period_plan() -> None:
    st, t = _cash_book()
    costs = [Commission(minimum=5.0)]
    single = OptimalRebalancer(costs=costs).plan(st, t)
    multi = MultiPeriodRebalancer(periods=1, period=1 / 12, costs=costs).plan(st, t)
    assert single.post_cash >= -1e-7 * st.equity  # the oracle holds its floor
    assert multi.post_cash >= -1e-7 * st.equity, multi.post_cash  # before: -19.995
    np.testing.assert_allclose(multi.trades, single.trades, rtol=1e-5, atol=1e-6)
    assert multi.info["fee_reserve"] > 0 and multi.info["fee_reserve_rounds"] >= 1


@pytest.mark.parametrize("costs", [[Commission(minimum=5.0)],
                                   [Commission(bps=2.0, per_order=3.0), Spread(5.0)]])
def test_every_period_holds_the_cash_floor_with_full_charges(costs: list) -> None:
    st, t = _cash_book()
    reb = MultiPeriodRebalancer(periods=3, period=1 / 252, costs=costs, risk_aversion=1e4)
    plan = reb.plan(st, t)
    shares = plan.info["schedule_shares"]
    cash = _replayed_cash(st, shares, costs)
    assert shares.to_numpy().any()
    assert (cash >= -1e-7 * st.equity).all(), cash
    # the schedule's own cash path is the replayed one (fees included)
    np.testing.assert_allclose(plan.info["cash_path"].to_numpy() * st.equity, cash,
                               rtol=0, atol=1e-6 * st.equity)
    fees = plan.info["expected_fees"].to_numpy() * st.equity
    n_orders = (np.abs(shares.to_numpy()) > 0).sum(axis=1)
    if isinstance(costs[0], Commission) and costs[0].per_order:
        np.testing.assert_allclose(fees, 3.0 * n_orders, rtol=1e-9)


def test_fees_that_cannot_be_reserved_leave_the_book_alone() -> None:
    # $100 of cash cannot pay four $60 minimums: not trading is the only plan that
    # holds the floor (the single-period plan, the oracle, says the same)
    st, t = _cash_book(100.0)
    costs = [Commission(minimum=60.0)]
    single = OptimalRebalancer(costs=costs).plan(st, t)
    multi = MultiPeriodRebalancer(periods=2, period=1 / 24, costs=costs).plan(st, t)
    assert single.n_trades == 0
    assert multi.n_trades == 0 and multi.post_cash == st.cash
    assert not multi.info["schedule_shares"].to_numpy().any()


def test_no_fee_no_reserve() -> None:
    st, t = _cash_book()
    plan = MultiPeriodRebalancer(periods=2, costs=[Spread(5.0)]).plan(st, t)
    assert plan.info["fee_reserve"] == 0.0 and plan.info["fee_reserve_rounds"] == 0
    assert (plan.info["expected_fees"] == 0).all()


@pytest.mark.parametrize("kw, field", [
    ({"min_trade_weight": float("nan")}, "min_trade_weight"),
    ({"min_trade_weight": -1.0}, "min_trade_weight"),
    ({"feasibility_tol": -1.0}, "feasibility_tol"),
    ({"cost_in_tracking": "no"}, "cost_in_tracking"),
    ({"risk_aversion": True}, "risk_aversion"),
    ({"costs": [1]}, "costs"),
    ({"constraints": ["long only"]}, "constraints"),
    ({"solver_options": {"bogus": 1}}, "solver_options"),
    ({"solver_options": {"SCS": {"max_iters": 5}}}, "solver_options"),
    ({"solver_options": [("max_iter", 5)]}, "solver_options"),
])
def test_bad_knob_is_an_input_error_at_construction(kw: dict, field: str) -> None:
    with pytest.raises(InputError) as e:
        MultiPeriodRebalancer(**kw)
    assert e.value.field is not None and e.value.field.startswith(
        f"MultiPeriodRebalancer.{field}")


def test_solver_options_keyed_by_clarabel_are_read() -> None:
    # the single-period form {"CLARABEL": {...}} is read as Clarabel's settings
    # (before: "unknown Clarabel setting 'CLARABEL'" at the first solve); oracle: the
    # flat form gives the same schedule, and an iteration cap of 1 is really applied
    st, t = _cash_book()
    flat = MultiPeriodRebalancer(periods=2, solver_options={"max_iter": 200}).plan(st, t)
    keyed = MultiPeriodRebalancer(periods=2,
                                  solver_options={"clarabel": {"max_iter": 200}}).plan(st, t)
    np.testing.assert_array_equal(flat.trades, keyed.trades)
    with pytest.raises(SolverError, match="user_limit"):  # Clarabel's iteration limit
        MultiPeriodRebalancer(periods=2, solver_options={"CLARABEL": {"max_iter": 1}}
                              ).plan(st, t)


def test_target_path_longer_than_the_horizon_is_an_error() -> None:
    st, t = _cash_book()
    path = pd.DataFrame([t, t, t * 0.0])
    with pytest.raises(InputError) as e:
        MultiPeriodRebalancer(periods=2).plan(st, path)
    assert e.value.field == "targets"
    # as many rows as periods, or fewer (the last repeats), is read in full
    MultiPeriodRebalancer(periods=3).plan(st, path)
    MultiPeriodRebalancer(periods=4).plan(st, path)


def test_default_constraints_still_build() -> None:
    reb = MultiPeriodRebalancer(constraints=[LongOnly(), CashFloor(0.01)])
    assert len(reb.constraints) == 2
