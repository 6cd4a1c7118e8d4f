"""Broker rules: rejections with reasons, shorts and average cost, limits, caps, multipliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bt_helpers import Scripted, wide_feed

from rebalopt import Commission, InputError, MarketImpact, PortfolioState, Spread
from rebalopt.backtest import Engine, ExecutionMode, OrderStatus, SimulatedBroker
from rebalopt.backtest._state import state_from_arrays
from rebalopt.orders import Broker


def run(feed, script, mode=ExecutionMode.SAME_BAR, **kw):
    broker = SimulatedBroker(**{"initial_cash": 10_000.0, **kw})
    res = Engine(feed, Scripted(script), broker, mode, progress=False).run()
    return res, broker


def test_satisfies_the_broker_protocol(two_asset_feed):
    broker = SimulatedBroker(1_000.0)
    broker.bind(two_asset_feed)
    assert isinstance(broker, Broker)


def test_cash_account_rejects_what_it_cannot_pay(two_asset_feed):
    res, broker = run(two_asset_feed, {0: [("A", 999), ("A", 1001)]}, initial_cash=10_000.0,
                      costs=[Commission(per_share=0.01)])
    first, second = res.orders
    assert first.status is OrderStatus.FILLED  # 9990 + 9.99 fee
    assert second.status is OrderStatus.REJECTED and "insufficient cash" in second.reason
    assert broker.cash == pytest.approx(10_000 - 9_990 - 9.99)


def test_cash_account_rejects_short_sales(two_asset_feed):
    res, _ = run(two_asset_feed, {0: [("A", 10)], 1: [("A", -11)]})
    assert res.orders[1].status is OrderStatus.REJECTED
    assert "short sale" in res.orders[1].reason


def test_margin_short_average_cost_and_realized_pnl(two_asset_feed):
    # A closes 10, 11, 12, 12, 13: short 100 at 10, cover 50 at 11, flip to +30 at 12
    res, broker = run(two_asset_feed, {0: [("A", -100)], 1: [("A", 50)], 2: [("A", 80)]},
                      account="margin")
    assert broker.holdings[0] == 30
    # realized: short 50 covered at 11 (-50), then 50 at 12 (-100)
    assert broker.realized_pnl[0] == pytest.approx(-150.0)
    assert broker.avg_cost[0] == pytest.approx(12.0)
    # equity identity at the end: cash + 30 * 13
    assert res.equity[-1] == pytest.approx(broker.cash + 30 * 13)
    assert res.equity[-1] == pytest.approx(10_000 - 150 + 30 * (13 - 12))


def test_margin_leverage_cap(two_asset_feed):
    res, _ = run(two_asset_feed, {0: [("A", 2500)]}, account="margin", max_leverage=2.0)
    assert res.orders[0].status is OrderStatus.REJECTED and "exceed" in res.orders[0].reason
    res, _ = run(two_asset_feed, {0: [("A", 1900)]}, account="margin", max_leverage=2.0)
    assert res.orders[0].status is OrderStatus.FILLED and res.cash[0] == pytest.approx(-9_000)


def test_whole_shares_reject_fractions_and_fractional_accounts_take_them(two_asset_feed):
    res, _ = run(two_asset_feed, {0: [("A", 1.5)]})
    assert res.orders[0].status is OrderStatus.REJECTED and "fractional" in res.orders[0].reason
    res, broker = run(two_asset_feed, {0: [("A", 1.5)]}, fractional=True)
    assert broker.holdings[0] == 1.5


def test_limit_orders_wait_until_price_after_slippage_is_good(two_asset_feed):
    # buy limit 11.5 on A: close 10 fills at bar 0; sell limit 11.9 with a 10 bps
    # spread: 12 * 0.999 = 11.988 >= 11.9 fills at bar 2 (bar 1 close 11 is below)
    res, _ = run(two_asset_feed, {0: [("A", 100, 11.5)], 1: [("A", -100, 11.9)]},
                 costs=[Spread(half_spread_bps=10.0)])
    assert [(f.bar, round(f.price, 6)) for f in res.fills] == [(0, 10.01), (2, 11.988)]
    # buy limit below every later price never fills and stays pending
    res, broker = run(two_asset_feed, {0: [("A", 100, 9.0)]})
    assert not res.fills and res.orders[0].status is OrderStatus.PENDING
    assert broker.get_pending_orders() == [res.orders[0]]


def test_participation_cap_pending_or_cancel():
    feed = wide_feed(close={"A": [10.0] * 5}, volume={"A": [1000.0, 1000.0, np.nan, 0.0, 500.0]})
    res, _ = run(feed, {0: [("A", 250)]}, participation=0.1)
    # 100 on bar 0, 100 on bar 1, none on bars 2-3 (no volume), 50 on bar 4
    assert [(f.bar, f.quantity) for f in res.fills] == [(0, 100), (1, 100), (4, 50)]
    assert res.orders[0].status is OrderStatus.FILLED
    res, _broker = run(feed, {0: [("A", 250)]}, participation=0.1, remainder="cancel")
    assert [(f.bar, f.quantity) for f in res.fills] == [(0, 100)]
    o = res.orders[0]
    assert o.status is OrderStatus.CANCELLED and o.filled == 100 and "participation" in o.reason


def test_participation_cap_is_shared_by_orders_of_one_asset():
    feed = wide_feed(close={"A": [10.0] * 2}, volume={"A": [1000.0, 1000.0]})
    res, _ = run(feed, {0: [("A", 80), ("A", 80)]}, participation=0.1)
    assert [(f.bar, f.order_id, f.quantity) for f in res.fills] == [(0, 1, 80), (0, 2, 20),
                                                                     (1, 2, 60)]


def test_missing_bars_no_fill_and_mark_at_last_close():
    feed = wide_feed(close={"A": [10.0, np.nan, np.nan, 12.0], "B": [5.0, 5.0, 6.0, 7.0]})
    res, _broker = run(feed, {0: [("A", 10)], 1: [("A", 5)]})
    # the bar-1 order waits for bar 3; A is marked at 10 on bars 1-2
    assert [(f.bar, f.asset) for f in res.fills] == [(0, "A"), (3, "A")]
    np.testing.assert_allclose(res.equity[:3], [10_000.0] * 3)
    assert res.equity[3] == pytest.approx(10_000 - 100 - 60 + 15 * 12)


def test_multiplier_scales_notional_and_costs():
    feed = wide_feed(close={"F": [100.0, 102.0]}, multipliers={"F": 50.0})
    res, _broker = run(feed, {0: [("F", 2)]}, account="margin",
                      costs=[Commission(per_share=2.0), Spread(half_spread_bps=1.0)])
    f = res.fills[0]
    assert f.costs["Spread"] == pytest.approx(2 * 100 * 50 * 1e-4)
    assert f.price == pytest.approx(100 * (1 + 1e-4))
    assert f.cash_flow == pytest.approx(-(2 * 100 * 50 * (1 + 1e-4)) - 4.0)
    assert res.equity[1] - res.equity[0] == pytest.approx(2 * 2 * 50)


def test_impact_without_history_is_rejected_with_a_reason(two_asset_feed):
    res, _ = run(two_asset_feed, {0: [("A", 10)]}, costs=[MarketImpact()])
    assert res.orders[0].status is OrderStatus.REJECTED
    assert "MarketImpact" in res.orders[0].reason and "volatility" in res.orders[0].reason


def test_bad_orders_raise_typed_errors(two_asset_feed):
    broker = SimulatedBroker(1_000.0)
    broker.bind(two_asset_feed)
    broker._advance(0)
    with pytest.raises(InputError, match="'ZZZ'"):
        broker.submit_order("ZZZ", 1)
    with pytest.raises(InputError, match="quantity"):
        broker.submit_order("A", float("nan"))
    with pytest.raises(InputError, match="limit_price"):
        broker.submit_order("A", 1, "buy", "limit", None)
    with pytest.raises(InputError, match="participation"):
        SimulatedBroker(1_000.0, participation=1.5)


def test_cancel_order_and_cancel_all(two_asset_feed):
    broker = SimulatedBroker(1_000.0)
    broker.bind(two_asset_feed)
    broker._advance(0)
    a, b, c = (broker.submit_order("A", 1) for _ in range(3))
    assert broker.cancel_order(a) and not broker.cancel_order(a)
    assert broker.cancel_all_orders() == 2
    assert broker.get_pending_orders() == []
    assert {o.status for o in (a, b, c)} == {OrderStatus.CANCELLED}


def test_state_from_arrays_equals_the_validated_constructor():
    rng = np.random.default_rng(3)
    n = 7
    assets = pd.Index([f"T{i}" for i in range(n)], dtype=object, name="asset")
    px, h = rng.uniform(5, 50, n), rng.integers(-5, 20, n).astype(float)
    adv, vol = rng.uniform(1e4, 1e5, n), rng.uniform(0.01, 0.03, n)
    groups = np.array(["x", "y", None, "x", "y", "z", "x"], dtype=object)
    mult = rng.choice([1.0, 10.0], n)
    fast = state_from_arrays(assets, px, h, 5_000.0, adv=adv, volatility=vol, groups=groups,
                             multipliers=mult)
    ref = PortfolioState(pd.Series(h, index=assets), 5_000.0, pd.Series(px, index=assets),
                         adv=pd.Series(adv, index=assets), volatility=pd.Series(vol, index=assets),
                         groups=pd.Series(groups, index=assets),
                         multipliers=pd.Series(mult, index=assets))
    assert set(vars(fast)) == set(vars(ref))
    for name, value in vars(ref).items():
        got = getattr(fast, name)
        if isinstance(value, np.ndarray) and value.dtype != object:
            np.testing.assert_allclose(got, value, err_msg=name)
        elif isinstance(value, pd.Index):
            assert got.equals(value) and got.name == value.name
        elif isinstance(value, np.ndarray):
            assert list(got) == list(value), name
        else:
            assert got == value, name


def test_the_fast_fill_is_the_dataclass_fill():
    """The broker's ``_fill`` (the instance dictionary filled at once) against the
    frozen dataclass's constructor: equal, the same repr, fields and pickle, and
    still frozen."""
    import dataclasses
    import pickle

    from rebalopt.backtest.records import Fill, _fill

    args = {"bar": 7, "timestamp": pd.Timestamp("2020-01-02"), "order_id": 3, "asset": "AAA",
            "quantity": -12.0, "reference_price": 10.5, "price": 10.49, "multiplier": 1.0,
            "fee": 1.0, "slippage": 0.12, "costs": {"commission": 1.0, "spread": 0.12},
            "cash_flow": 124.88, "tag": 4}
    want = Fill(**args)
    got = _fill(*args.values())
    assert got == want and repr(got) == repr(want) and type(got) is Fill
    assert dataclasses.asdict(got) == dataclasses.asdict(want)
    assert list(vars(got)) == [f.name for f in dataclasses.fields(Fill)] == list(vars(want))
    assert pickle.loads(pickle.dumps(got)) == want
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.price = 1.0  # type: ignore[misc]
