"""RebalancePlan: preview, summary, order sequencing and submission, on the hand book.

The book and its numbers are worked out in ``test_naive.py``'s docstring; here EEE
(price 10, not held, not targeted) is added to the universe and must not appear in
the preview. Trades: AAA +200, BBB -150, CCC -100, DDD +400; costs Commission
20.00 + Spread 35.75 = 55.75; post cash 8,944.25; equity 50,000.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rebalopt.costs import Commission, Spread
from rebalopt.errors import InputError
from rebalopt.orders import OrderSide
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig, RebalancePlan
from rebalopt.rebalance.plan import evaluate_costs
from rebalopt.state import PortfolioState


@pytest.fixture
def plan() -> RebalancePlan:
    state = PortfolioState({"AAA": 300, "BBB": 150, "CCC": 100}, 25_250.0,
                           {"AAA": 50.0, "BBB": 25.0, "CCC": 60.0, "DDD": 40.0, "EEE": 10.0})
    reb = NaiveRebalancer(RebalanceConfig(round_lots=True, lot_size=100),
                          [Commission(per_share=0.02, minimum=4.0), Spread(10.0)])
    return reb.plan(state, {"AAA": 0.53, "BBB": -0.10, "DDD": 0.30})


def test_preview_columns_and_rows(plan):
    df = plan.preview()
    assert list(df.columns) == [
        "price", "current_shares", "trade_shares", "post_shares", "current_weight",
        "target_weight", "post_weight", "trade_value", "cost_Commission", "cost_Spread", "cost",
    ]
    assert list(df.index) == ["AAA", "BBB", "CCC", "DDD"]  # EEE: not held, targeted or traded
    assert df.loc["AAA"].to_dict() == pytest.approx({
        "price": 50.0, "current_shares": 300, "trade_shares": 200, "post_shares": 500,
        "current_weight": 0.30, "target_weight": 0.53, "post_weight": 0.50,
        "trade_value": 10_000.0, "cost_Commission": 4.0, "cost_Spread": 10.0, "cost": 14.0,
    })
    assert df.loc["BBB", "target_weight"] == 0.0  # the clipped short
    assert df["cost"].sum() == pytest.approx(55.75, abs=1e-9)
    assert df["trade_value"].sum() == pytest.approx(16_250.0, abs=1e-9)


def test_summary_mentions_costs(plan):
    text = plan.summary()
    assert "RebalancePlan (naive): 4 trades on 5 assets" in text
    assert "cash 25,250.00 -> 8,944.25" in text
    assert "turnover (one-way) 35.7500%" in text
    # 55.75 / 50,000 = 11.15 bps
    assert "expected cost 55.75 (11.15 bps of equity)" in text
    assert "Commission" in text and "20.00" in text
    assert "Spread" in text and "35.75" in text
    assert "tracking error" not in text  # no risk model, nothing claimed
    assert "cost=55.75" in repr(plan)
    html = plan._repr_html_()
    assert "<pre>" in html and "<table" in html and "DDD" in html


def test_orders_sells_first_and_submit_in_that_order(plan, make_broker):
    orders = plan.orders()
    assert [(o.asset, o.side) for o in orders] == [
        ("BBB", OrderSide.SELL), ("CCC", OrderSide.SELL),
        ("AAA", OrderSide.BUY), ("DDD", OrderSide.BUY),
    ]
    # each ticket carries its asset's price and expected cost as plain Python values
    # (the hand book's prices; the costs sum to the plan's 55.75)
    assert [(o.reference_price, o.quantity) for o in orders] == [
        (25.0, 150.0), (60.0, 100.0), (50.0, 200.0), (40.0, 400.0)]
    assert all(type(v) is float for o in orders
               for v in (o.quantity, o.reference_price, o.expected_cost))
    assert all(type(o.asset) is str for o in orders)
    assert math.fsum(o.expected_cost for o in orders) == pytest.approx(55.75, abs=1e-9)
    broker = make_broker({"AAA": 300, "BBB": 150, "CCC": 100}, cash=25_250.0)
    returned = plan.submit(broker)
    expected = [("BBB", 150.0, OrderSide.SELL), ("CCC", 100.0, OrderSide.SELL),
                ("AAA", 200.0, OrderSide.BUY), ("DDD", 400.0, OrderSide.BUY)]
    assert broker.calls == [("submit", *e) for e in expected]
    assert returned == expected  # what the broker returned, in order


def test_plan_with_no_trades(make_broker):
    state = PortfolioState({"A": 10}, 0.0, {"A": 10.0})
    plan = NaiveRebalancer(costs=[Spread(5.0)]).plan(state, {"A": 1.0})
    assert plan.n_trades == 0 and plan.orders() == [] and plan.total_cost == 0.0
    assert plan.turnover == 0.0 and plan.post_cash == 0.0
    broker = make_broker({"A": 10}, cash=0.0)
    assert plan.submit(broker) == [] and broker.calls == []
    assert "0 trades" in plan.summary()


def test_duplicate_model_names_are_kept_apart():
    state = PortfolioState({}, 10_000.0, {"A": 100.0})
    trades = np.array([10.0])  # notional 1,000
    costs = evaluate_costs([Spread(1.0), Spread(2.0), Spread(3.0, label="wide")], trades, state)
    assert list(costs) == ["Spread", "Spread#2", "wide"]
    assert [float(v[0]) for v in costs.values()] == pytest.approx([0.1, 0.2, 0.3])


def test_info_fields_reach_the_summary():
    state = PortfolioState({"A": 10}, 1_000.0, {"A": 10.0, "B": 20.0})
    plan = RebalancePlan.from_trades(
        state, np.array([0.0, 0.5]), np.array([-10.0, 25.0]), [], "optimal",
        info={"tracking_error_before": 0.05, "tracking_error_after": 0.001, "solver": "CLARABEL",
              "status": "optimal"})
    text = plan.summary()
    assert "tracking error 5.0000% -> 0.1000% (annualized)" in text
    assert "solver: CLARABEL" in text and "status: optimal" in text
    assert plan.tracking_error_before == 0.05
    # post weights are fractions of pre-trade equity (1,100): B 25 * 20 = 500 -> 0.4545...
    np.testing.assert_allclose(plan.post_weights, [0.0, 500 / 1_100])
    assert plan.post_cash == pytest.approx(1_000 + 100 - 500)
    np.testing.assert_allclose(plan.z, [-100 / 1_100, 500 / 1_100])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_plan_rejects_non_finite_trades(bad):
    state = PortfolioState({}, 1_000.0, {"A": 10.0, "B": 20.0})
    with pytest.raises(InputError) as info:
        RebalancePlan.from_trades(state, np.zeros(2), np.array([1.0, bad]), [], "test")
    assert (info.value.asset, info.value.field) == ("B", "trade")
