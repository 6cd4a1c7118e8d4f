"""No look-ahead: what a strategy sees on bar t, and where its orders fill."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bt_helpers import Scripted, wide_feed

from rebalopt import NaiveRebalancer, RebalanceConfig
from rebalopt.backtest import (
    DataFeed,
    Engine,
    ExecutionMode,
    PortfolioStrategy,
    SimulatedBroker,
    Strategy,
)


class BuyOnClose(Strategy):
    """Reads the close of bar t and buys 10 shares of A at every bar."""

    def __init__(self):
        self.read: list[tuple[int, float]] = []

    def on_data(self, timestamp, data, context, broker):
        self.read.append((data.t, data["A"]["close"]))
        broker.submit_order("A", 10)


def feed_distinct():
    # every open differs from every close so a fill price tells its source
    return wide_feed(close={"A": [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]},
                     open_={"A": [99.5, 100.5, 101.5, 102.5, 103.5, 104.5]},
                     volume={"A": [1e5] * 6})


def test_next_bar_never_fills_at_a_price_of_the_bar_seen():
    feed = feed_distinct()
    strat = BuyOnClose()
    res = Engine(feed, strat, SimulatedBroker(1e6), ExecutionMode.NEXT_BAR, progress=False).run()
    bar_prices = {t: {feed.open[t, 0], feed.high[t, 0], feed.low[t, 0], feed.close[t, 0]}
                  for t in range(feed.n_bars)}
    created = {o.order_id: o.created_bar for o in res.orders}
    assert len(res.fills) == feed.n_bars - 1  # the last bar's order has no next bar
    for f in res.fills:
        t_seen = created[f.order_id]
        assert f.bar == t_seen + 1
        assert f.price not in bar_prices[t_seen]
        assert f.price == feed.open[t_seen + 1, 0]
    # what the strategy read is the close of its own bar
    assert strat.read == [(t, feed.close[t, 0]) for t in range(feed.n_bars)]


def test_same_bar_fills_at_the_close_seen():
    feed = feed_distinct()
    strat = BuyOnClose()
    res = Engine(feed, strat, SimulatedBroker(1e6), ExecutionMode.SAME_BAR, progress=False).run()
    assert [(f.bar, f.price) for f in res.fills] == strat.read


def test_trailing_adv_and_volatility_ignore_the_current_and_later_bars():
    rng = np.random.default_rng(0)
    T, N = 40, 3
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    vol = rng.integers(100, 1000, (T, N)).astype(float)
    idx = pd.bdate_range("2020-01-01", periods=T)
    a = DataFeed(idx, list("XYZ"), close, volume=vol)
    t = 25
    close2, vol2 = close.copy(), vol.copy()
    close2[t:] *= 3.0
    vol2[t:] *= 7.0
    b = DataFeed(idx, list("XYZ"), close2, volume=vol2)
    np.testing.assert_array_equal(a.trailing_adv()[: t + 1], b.trailing_adv()[: t + 1])
    np.testing.assert_array_equal(a.trailing_volatility()[: t + 1],
                                  b.trailing_volatility()[: t + 1])
    # and they are the plain statistics of the window before t
    np.testing.assert_allclose(a.trailing_adv()[t], vol[t - 20:t].mean(axis=0))
    r = close[1:] / close[:-1] - 1
    np.testing.assert_allclose(a.trailing_volatility()[t], r[t - 21:t - 1].std(axis=0, ddof=1))


def test_portfolio_strategy_returns_stop_at_the_current_bar():
    rng = np.random.default_rng(1)
    T = 30
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, 2)), axis=0))
    seen: list[pd.DataFrame] = []

    def opt(returns, data, context, broker):
        seen.append(returns)
        assert returns.index[-1] == data.timestamp
        return {"A": 0.5, "B": 0.5}

    strat = PortfolioStrategy(NaiveRebalancer(RebalanceConfig(min_weight_change=0)),
                              optimizer=opt, lookback=10, schedule=5)
    feed = wide_feed(close={"A": close[:, 0], "B": close[:, 1]})
    Engine(feed, strat, SimulatedBroker(1e6), progress=False).run()
    assert len(seen) == 4  # bars 10, 15, 20, 25
    for r in seen:
        t = feed.dates.get_loc(r.index[-1])
        np.testing.assert_allclose(r.to_numpy(), close[t - 9: t + 1] / close[t - 10: t] - 1)


def test_scripted_orders_fill_in_submission_order_sells_first(two_asset_feed):
    # a cash account can fund a buy with the proceeds of an earlier sell on the same bar
    script = {0: [("A", 90)], 1: [("A", -90), ("B", 45)]}
    broker = SimulatedBroker(1_000.0)
    res = Engine(two_asset_feed, Scripted(script), broker, progress=False).run()
    assert [o.status.value for o in res.orders] == ["filled", "filled", "filled"]
