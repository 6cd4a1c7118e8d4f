"""BorrowCost: written once in costs/, seen by the optimizer, the integer stage and the
simulated broker (which also pays interest on cash). Hand-computed to the cent."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rebalopt import PortfolioState
from rebalopt.backtest import Engine, ExecutionMode, SimulatedBroker
from rebalopt.constraints import Leverage
from rebalopt.costs import BorrowCost
from rebalopt.errors import InputError
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Diagonal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import Scripted, wide_feed

DAYS = 21
T = DAYS / 252  # 21 trading days, in years


def short_book() -> PortfolioState:
    # 1,000 shares of S short at $50; $150,000 cash (incl. the $50,000 short proceeds)
    return PortfolioState({"S": -1_000.0, "L": 1_000.0}, 150_000.0, {"S": 50.0, "L": 50.0})


def test_hand_computed_borrow_in_the_plan():
    # 1,000 sh x $50 = $50,000 short; 3%/yr x 21/252 yr = 0.25% -> $125.00
    state = short_book()
    m = BorrowCost(0.03)
    np.testing.assert_allclose(m.holding(state.holdings, state, T), [125.00, 0.0], atol=0.005)
    assert m.evaluate(np.array([-10.0, 5.0]), state).sum() == 0.0  # nothing at the trade
    # the optimizer's face (declared term) on the post-trade weights, same number
    terms = m.terms(state)
    assert terms.holding_cost(state.weights, T) * state.equity == pytest.approx(125.00, abs=0.005)
    # the program: targets = the book as it is, horizon 21 trading days; its holding
    # term at no trade is the month's borrow
    reb = OptimalRebalancer(costs=[m], constraints=[], horizon=T)
    targets = pd.Series(state.weights, index=state.assets)
    hold = reb.objective_terms(np.zeros(2), state, targets)["holding"]
    assert hold * state.equity == pytest.approx(125.00, abs=0.005)
    # and the optimizer sees it: with identity risk it covers r / gamma of equity
    # (first-order condition of gamma/2 T z^2 + r T (short - z))
    sol = reb.solve(state, targets)
    np.testing.assert_allclose(sol.z, [0.03 / reb.risk_aversion, 0.0], atol=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_both_faces_agree(seed):
    rng = np.random.default_rng(seed)
    n = 6
    assets = [f"X{i}" for i in range(n)]
    pos = rng.normal(0, 500, n)
    state = PortfolioState(dict(zip(assets, pos)), 1e6, dict(zip(assets, rng.uniform(5, 90, n))))
    rates = dict(zip(assets, rng.uniform(0, 0.2, n)))
    m = BorrowCost(rates)
    years = float(rng.uniform(0.01, 1.0))
    numeric = m.holding(state.holdings, state, years).sum()
    declared = m.terms(state).holding_cost(state.weights, years) * state.equity
    assert declared == pytest.approx(numeric, rel=1e-12)


def test_expensive_borrow_is_shorted_less():
    """Two identical assets, one hard to borrow: the plan shorts less of it."""
    assets = ["CHEAP", "DEAR", "LONG"]
    state = PortfolioState({}, 1e6, dict.fromkeys(assets, 40.0))
    targets = pd.Series({"CHEAP": -0.2, "DEAR": -0.2, "LONG": 1.0})
    risk = Diagonal(pd.Series(0.3 ** 2, index=assets))
    reb = OptimalRebalancer(risk=risk, costs=[BorrowCost({"CHEAP": 0.005, "DEAR": 0.25},
                                                          default=0.0)],
                            constraints=[Leverage(gross=1.4)], horizon=T)
    w = reb.solve(state, targets).w
    assert w[0] < 0 and w[1] < 0
    assert -w[1] < -w[0] - 1e-3  # DEAR shorted less than CHEAP
    # independent check: identity-like diagonal risk, no binding gross cap at these
    # numbers -> w = target + rate / (gamma * var) (first-order condition)
    gamma, var = reb.risk_aversion, 0.09
    np.testing.assert_allclose(w[:2], [-0.2 + 0.005 / (gamma * var),
                                       -0.2 + 0.25 / (gamma * var)], atol=1e-6)
    # the integer stage starts from this relaxation and reports the same holding term
    plan = OptimalRebalancer(risk=risk, costs=[BorrowCost({"CHEAP": 0.005, "DEAR": 0.25},
                                                           default=0.0)],
                             constraints=[Leverage(gross=1.4)], horizon=T,
                             integer="round").plan(state, targets)
    sh = dict(zip(state.assets, plan.trades))
    assert sh["DEAR"] > sh["CHEAP"]  # fewer shares sold short of DEAR
    assert plan.info["objective_terms"]["holding"] > 0
    # whole shares nearest the continuous optimum (the search prices the borrow too)
    unit = state.equity / 40.0
    assert abs(sh["DEAR"] - w[1] * unit) <= 1 and abs(sh["CHEAP"] - w[0] * unit) <= 1


def test_borrow_rate_validation():
    with pytest.raises(InputError) as info:
        BorrowCost(-0.01)
    assert info.value.field == "BorrowCost.rate"
    with pytest.raises(InputError) as info:
        BorrowCost({"A": 0.01}).rates(short_book())
    assert info.value.field == "BorrowCost.rate"


# ------------------------------------------------------------------ broker
def flat_feed(days: int, price: float = 50.0):
    return wide_feed(close={"S": [price] * (days + 1)}, volume={"S": [1e7] * (days + 1)})


def test_hand_computed_borrow_in_the_broker():
    # bar 0: sell 1,000 S short at $50 (no trading cost) -> cash 100,000 + 50,000;
    # held over 21 bars at $50: 50,000 x 3% x 21/252 = 125.00 charged to cash
    broker = SimulatedBroker(100_000.0, costs=[BorrowCost(0.03)], account="margin")
    res = Engine(flat_feed(DAYS), Scripted({0: [("S", -1_000)]}), broker,
                 ExecutionMode.SAME_BAR, progress=False).run()
    assert broker.cost_totals["BorrowCost"] == pytest.approx(125.00, abs=0.005)
    assert broker.cash == pytest.approx(150_000.00 - 125.00, abs=0.005)
    assert res.equity[-1] == pytest.approx(100_000.00 - 125.00, abs=0.005)
    # both faces: the plan's number for the same book and time is the broker's
    state = PortfolioState({"S": -1_000.0}, 150_000.0, {"S": 50.0})
    assert BorrowCost(0.03).holding(state.holdings, state, T).sum() == pytest.approx(
        broker.cost_totals["BorrowCost"], abs=0.005)


def test_cash_interest_for_a_month():
    # 100,000.00 idle cash at 5%/yr, 21 daily bars, credited each bar:
    # 100,000 x (1 + 0.05/252)^21 = 100,417.49 (to the cent: 100,417.4901)
    broker = SimulatedBroker(100_000.0, cash_rate=0.05)
    Engine(flat_feed(DAYS), Scripted({}), broker, ExecutionMode.SAME_BAR, progress=False).run()
    assert broker.cash == pytest.approx(100_417.49, abs=0.005)
    assert broker.interest_total == pytest.approx(417.49, abs=0.005)


def test_margin_interest_is_charged_on_borrowed_cash():
    # buy 3,000 S at $50 with 100,000 cash -> cash -50,000.00; 8%/yr for one bar:
    # -50,000 x 0.08 / 252 = -15.873..., cash -50,015.87
    broker = SimulatedBroker(100_000.0, account="margin", margin_rate=0.08, cash_rate=0.05)
    Engine(flat_feed(1), Scripted({0: [("S", 3_000)]}), broker, ExecutionMode.SAME_BAR,
           progress=False).run()
    assert broker.cash == pytest.approx(-50_015.87, abs=0.005)
    assert broker.interest_total == pytest.approx(-15.87, abs=0.005)
