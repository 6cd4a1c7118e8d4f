"""state_from_broker and execute(): the seed's executor call against a fake broker.

Book (as in test_naive.py): cash 25,250; AAA 300 @ 50, BBB 150 @ 25, CCC 100 @ 60;
DDD @ 40 not held; equity 50,000.
"""

from __future__ import annotations

import enum
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rebalopt.costs import Commission, MarketImpact, Spread
from rebalopt.errors import InputError
from rebalopt.orders import OrderSide
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig, state_from_broker

HOLDINGS = {"AAA": 300, "BBB": 150, "CCC": 100}
DATA = {"AAA": {"close": 50.0}, "BBB": {"close": 25.0}, "CCC": {"close": 60.0},
        "DDD": {"close": 40.0}}
TARGETS = {"AAA": 0.53, "BBB": -0.10, "DDD": 0.30}


class ForeignSide(enum.Enum):
    """A side enum from another library (not a str subclass)."""

    BUY = "BUY"
    SELL = "SELL"


def test_state_from_broker_reads_book_and_bar(make_broker):
    broker = make_broker({"AAA": 300, "BBB": 150, "CCC": 0}, cash=25_250.0)
    broker.positions["EEE"] = 0.0  # a plain number is accepted as a quantity too
    data = {
        "AAA": {"close": 50.0, "adv": 1e6, "volatility": 0.02, "sector": "Tech"},
        "BBB": SimpleNamespace(close=25.0, lot_size=10),  # attribute-style bar
        "DDD": {"close": 40.0, "multiplier": 2.0, "group": "Energy"},
    }
    state = state_from_broker(broker, data, {"AAA": 0.5, "ZZZ": 0.1})
    # order: held assets, then targets, then the rest of the bar; ZZZ has no bar -> unpriced
    assert list(state.assets) == ["AAA", "BBB", "DDD"]
    assert "ZZZ" in state.unpriced
    np.testing.assert_array_equal(state.holdings, [300, 150, 0])
    np.testing.assert_array_equal(state.prices, [50, 25, 40])
    assert state.cash == 25_250.0
    # equity 25,250 + 15,000 + 3,750 = 44,000
    assert state.equity == pytest.approx(44_000.0)
    assert state.adv[0] == 1e6 and math.isnan(state.adv[1])
    assert list(state.groups) == ["Tech", None, "Energy"]
    np.testing.assert_array_equal(state.lot_sizes, [1, 10, 1])
    np.testing.assert_array_equal(state.multipliers, [1, 1, 2])
    # a Series of targets works like a dict
    s2 = state_from_broker(broker, data, pd.Series({"AAA": 0.5, "ZZZ": 0.1}))
    assert list(s2.assets) == list(state.assets)
    # another price field
    s3 = state_from_broker(broker, {"AAA": {"open": 49.0}, "BBB": {"open": 26.0}}, None,
                           price_field="open")
    np.testing.assert_array_equal(s3.prices, [49, 26])


def test_pending_orders_are_counted_when_asked(make_broker, pending_order):
    pending = [
        pending_order("DDD", OrderSide.BUY, 100, remaining=60),   # 40 already filled
        pending_order("AAA", "SELL", 50),
        pending_order("BBB", ForeignSide.BUY, 10),
        pending_order("BBB", ForeignSide.SELL, 4),
    ]
    broker = make_broker({"AAA": 300, "BBB": 150}, cash=25_250.0, pending=pending)
    data = {"AAA": {"close": 50.0}, "BBB": {"close": 25.0}, "DDD": {"close": 40.0,
                                                                      "multiplier": 2.0}}
    plain = state_from_broker(broker, data)
    np.testing.assert_array_equal(plain.holdings, [300, 150, 0])
    assert plain.cash == 25_250.0
    counted = state_from_broker(broker, data, include_pending=True)
    # AAA 300 - 50 = 250 ; BBB 150 + 10 - 4 = 156 ; DDD + 60 contracts
    np.testing.assert_array_equal(counted.holdings, [250, 156, 60])
    # cash 25,250 + 50 * 50 - 6 * 25 - 60 * 40 * 2 = 25,250 + 2,500 - 150 - 4,800 = 22,800
    assert counted.cash == pytest.approx(22_800.0)
    assert counted.equity == pytest.approx(plain.equity)  # at reference prices, nothing is lost


@pytest.mark.parametrize(("data", "asset"), [
    ({"BBB": {"close": 25.0}}, "AAA"),                        # held, no bar
    ({"AAA": {"open": 50.0}, "BBB": {"close": 25.0}}, "AAA"),  # held, no close
    ({"AAA": {"close": math.nan}, "BBB": {"close": 25.0}}, "AAA"),
    ({"AAA": {"close": 0.0}, "BBB": {"close": 25.0}}, "AAA"),
])
def test_state_from_broker_bad_bars(make_broker, data, asset):
    with pytest.raises(InputError) as info:
        state_from_broker(make_broker({"AAA": 1}, cash=100.0), data)
    assert (info.value.asset, info.value.field) == (asset, "price")


def test_pending_order_on_unpriced_asset(make_broker, pending_order):
    broker = make_broker({"AAA": 1}, cash=100.0, pending=[pending_order("ZZZ", "buy", 5)])
    with pytest.raises(InputError) as info:
        state_from_broker(broker, {"AAA": {"close": 10.0}}, include_pending=True)
    assert (info.value.asset, info.value.field) == ("ZZZ", "price")


# -------------------------------------------------------------------- execute
def rebalancer(**cfg) -> NaiveRebalancer:
    return NaiveRebalancer(RebalanceConfig(round_lots=True, lot_size=100, **cfg),
                           [Commission(per_share=0.02, minimum=4.0), Spread(10.0)])


def test_execute_cancels_then_submits_sells_first(make_broker, pending_order):
    broker = make_broker(HOLDINGS, cash=25_250.0, pending=[pending_order("DDD", "buy", 400)])
    returned = rebalancer().execute(TARGETS, DATA, broker)
    expected = [("BBB", 150.0, OrderSide.SELL), ("CCC", 100.0, OrderSide.SELL),
                ("AAA", 200.0, OrderSide.BUY), ("DDD", 400.0, OrderSide.BUY)]
    assert broker.calls == [("cancel",)] + [("submit", *e) for e in expected]
    assert returned == expected
    # a Series of targets gives the same orders
    broker2 = make_broker(HOLDINGS, cash=25_250.0)
    rebalancer().execute(pd.Series(TARGETS), DATA, broker2)
    assert broker2.submitted == expected


def test_execute_accounts_for_pending_orders(make_broker, pending_order):
    # the DDD buy of 400 is already pending: with pending="account" it is not sent again,
    # and nothing is cancelled
    broker = make_broker(HOLDINGS, cash=25_250.0, pending=[pending_order("DDD", "buy", 400)])
    rebalancer(pending="account").execute(TARGETS, DATA, broker)
    assert broker.calls == [("submit", "BBB", 150.0, OrderSide.SELL),
                            ("submit", "CCC", 100.0, OrderSide.SELL),
                            ("submit", "AAA", 200.0, OrderSide.BUY)]


@pytest.mark.parametrize(("targets", "data", "asset", "field"), [
    ({**TARGETS, "ZZZ": 0.05}, DATA, "ZZZ", "target weight"),          # no bar for a target
    ({"AAA": 0.5, "DDD": math.nan}, DATA, "DDD", "target weight"),
    ({"AAA": 0.5, "DDD": math.inf}, DATA, "DDD", "target weight"),
    ({"AAA": 0.7, "DDD": 0.5}, DATA, None, "target weight"),          # gross 1.2
    (TARGETS, {**DATA, "CCC": {"close": math.nan}}, "CCC", "price"),  # held, NaN close
    (TARGETS, {k: v for k, v in DATA.items() if k != "BBB"}, "BBB", "price"),  # held, no bar
    (TARGETS, {**DATA, "DDD": {"close": -40.0}}, "DDD", "target weight"),
])
def test_execute_emits_nothing_when_planning_fails(make_broker, pending_order, targets, data,
                                                   asset, field):
    broker = make_broker(HOLDINGS, cash=25_250.0, pending=[pending_order("AAA", "sell", 1)])
    with pytest.raises(InputError) as info:
        rebalancer().execute(targets, data, broker)
    assert (info.value.asset, info.value.field) == (asset, field)
    assert broker.calls == []          # no cancel, no order: plan whole or nothing
    assert len(broker.pending) == 1


def test_execute_emits_nothing_when_a_cost_model_fails(make_broker):
    broker = make_broker(HOLDINGS, cash=25_250.0)
    reb = NaiveRebalancer(RebalanceConfig(), [Spread({"AAA": 1.0})])  # no spread for BBB..
    with pytest.raises(InputError) as info:
        reb.execute(TARGETS, DATA, broker)
    assert (info.value.asset, info.value.field) == ("BBB", "half_spread_bps")
    assert broker.calls == []


def test_execute_leaves_assets_the_impact_model_cannot_price(make_broker):
    """No volatility/ADV in the bar: market impact cannot price any asset, so none is
    traded (documented: untradable assets are frozen), and no order goes out."""
    broker = make_broker(HOLDINGS, cash=25_250.0)
    reb = NaiveRebalancer(RebalanceConfig(), [MarketImpact()])
    assert reb.execute(TARGETS, DATA, broker) == []
    assert broker.calls == [("cancel",)]  # the usual cancel of pending orders, no order


def test_pending_orders_with_signed_quantities_and_no_side() -> None:
    """The seed's convention: a pending order without a side carries a signed quantity."""
    from types import SimpleNamespace

    from rebalopt.rebalance._broker_state import pending_quantities

    broker = SimpleNamespace(get_pending_orders=lambda: [
        SimpleNamespace(asset="A", quantity=100.0, side=None),
        SimpleNamespace(asset="B", quantity=-40.0, side=None),
        SimpleNamespace(asset="A", quantity=-30.0, side=None),
    ])
    assert pending_quantities(broker) == {"A": 70.0, "B": -40.0}
