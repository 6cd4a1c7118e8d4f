"""The simulated broker and the strategies at the edges (issue 13, item 8).

* Market impact larger than the price never fills at a price <= 0: the order is
  rejected with a reason (documented in ``rebalopt.backtest.broker``).
* No rebalancer submits an order for an asset without a price on the bar
  (halted, delisted): checked against the feed's own availability table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from rel_helpers import count

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import Scripted, ledger_equity, wide_feed

from rebalopt import BandRebalancer, MarketImpact, NaiveRebalancer, RebalanceConfig
from rebalopt.backtest import Engine, OrderStatus, PortfolioStrategy, SimulatedBroker
from rebalopt.rebalance.optimal import OptimalRebalancer

T = 12
PENNY = [0.03, 0.031, 0.029, 0.032, 0.03, 0.028, 0.031, 0.03, 0.029, 0.03, 0.031, 0.03]


@pytest.mark.parametrize("shares", [1e2, 1e4, 1e5, 1e6, 1e7])
@pytest.mark.parametrize("side", [1, -1])
def test_impact_above_the_price_is_rejected_never_filled_at_a_negative_price(shares, side):
    count("broker_edge")
    feed = wide_feed(close={"P": PENNY}, volume={"P": [1e4] * T})
    broker = SimulatedBroker(1e9, costs=[MarketImpact(coef=1.0, exponent=2.0)],
                             account="margin", max_leverage=1e6, fractional=True)
    res = Engine(feed, Scripted({8: [("P", side * shares)]}), broker, progress=False).run()
    (order,) = res.orders
    ref = PENNY[8]
    # the model's own slippage per share for this trade (closed form, by hand):
    # coef * sigma * p * |q| / ADV, sigma and ADV as the broker knew them on bar 8
    sigma, adv = broker.vol_table[8, 0], broker.adv_table[8, 0]
    slip = 1.0 * sigma * ref * shares / adv
    if slip >= ref:
        assert order.status is OrderStatus.REJECTED
        assert "market impact exceeds the price" in order.reason
        assert broker.fills == [] and broker.cash == 1e9
    else:
        assert order.status is OrderStatus.FILLED
        (fill,) = broker.fills
        assert fill.price == pytest.approx(ref + side * slip, rel=1e-9)
    assert all(f.price > 0 for f in broker.fills)
    _, _, equity = ledger_equity(feed, broker.fills, 1e9)  # accounting still exact
    np.testing.assert_allclose(res.equity, equity, rtol=0, atol=1e-6)


def halted_feed():
    """B has no bar on 4..7 (halted), C stops trading after bar 5 (delisted)."""
    nan = float("nan")
    close = {"A": [10.0 + 0.1 * t for t in range(T)],
             "B": [20.0, 20.2, 20.1, 20.3] + [nan] * 4 + [20.5, 20.4, 20.6, 20.7],
             "C": [30.0, 30.5, 30.2, 30.1, 30.3, 30.4] + [nan] * 6}
    return wide_feed(close=close, volume={a: [1e7] * T for a in close})


REBALANCERS = {
    "naive": lambda: NaiveRebalancer(RebalanceConfig(min_weight_change=0.0, min_trade_value=0.0,
                                                     fractional=True)),
    "band": lambda: BandRebalancer(width=0.0, config=RebalanceConfig(
        min_weight_change=0.0, min_trade_value=0.0, fractional=True)),
    "optimal": lambda: OptimalRebalancer(),
}


@pytest.mark.parametrize("kind", list(REBALANCERS))
def test_no_order_for_an_asset_without_a_price_on_the_bar(kind):
    count("broker_edge")
    feed = halted_feed()
    # the targets move every rebalance, so every asset wants a trade each time
    def optimize(returns, data, context, broker):
        k = len(context.setdefault("calls", []))
        context["calls"].append(k)
        return {"A": 0.2 + 0.1 * (k % 2), "B": 0.4 - 0.1 * (k % 2), "C": 0.3}

    strat = PortfolioStrategy(REBALANCERS[kind](), optimizer=optimize, lookback=1,
                              schedule=1, on_error="raise")
    broker = SimulatedBroker(100_000.0, fractional=True)
    res = Engine(feed, strat, broker, progress=False).run()
    assert res.orders, "the run must trade at all"
    for o in res.orders:  # the oracle: the feed's own table of bars with a price
        assert feed.available[o.created_bar, o.index], (o.asset, o.created_bar)
    # B was held while halted (the rebalancer saw it and left it alone) and trades again
    assert any(o.asset == "B" for o in res.orders if o.created_bar < 4)
    assert any(o.asset == "B" for o in res.orders if o.created_bar >= 8)
