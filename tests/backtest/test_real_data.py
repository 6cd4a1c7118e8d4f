"""A few months of the shared S&P 500 panel with a naive monthly rebalance."""

from __future__ import annotations

import numpy as np
import pytest
from bt_helpers import ledger_equity

from rebalopt import Commission, MarketImpact, NaiveRebalancer, RebalanceConfig, Spread
from rebalopt.backtest import DataFeed, Engine, ExecutionMode, PortfolioStrategy, SimulatedBroker
from rebalopt.datasets import load_sp500, shared_data_dir

pytestmark = pytest.mark.skipif(shared_data_dir() is None,
                                reason="shared S&P 500 data (../shared/data/sp500) not present")

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "JNJ", "PG", "KO", "INTC", "CSCO", "WMT",
           "PFE", "MRK", "GE", "T", "VZ", "HD", "DIS", "BA", "MMM", "IBM"]


@pytest.mark.parametrize("mode", list(ExecutionMode))
def test_naive_monthly_on_real_data(mode):
    df = load_sp500(start="2018-09-01", end="2019-03-31", tickers=TICKERS)
    feed = DataFeed.from_long(df)
    assert feed.n_assets == len(TICKERS) and feed.groups is not None
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=2.0),
             MarketImpact(coef=1.0)]
    w = 0.98 / len(TICKERS)
    strat = PortfolioStrategy(
        NaiveRebalancer(RebalanceConfig(min_weight_change=0.002, min_trade_value=100), costs=costs),
        optimizer=lambda r, d, c, b: dict.fromkeys(r.columns, w), lookback=20)
    broker = SimulatedBroker(1_000_000.0, costs=costs, participation=0.05)
    res = Engine(feed, strat, broker, mode, progress=False).run()
    reb = res.to_frame("rebalances")
    # September ends on bar 19, inside the 20-bar warm-up: Oct..Feb month ends
    assert list(reb["date"].dt.month) == [10, 11, 12, 1, 2] and (reb["status"] == "ok").all()
    assert len(res.fills) >= len(TICKERS)
    assert not [o for o in res.orders if o.status.value == "rejected"]
    _cash, _hold, equity = ledger_equity(feed, res.fills, 1_000_000.0)
    np.testing.assert_allclose(res.equity, equity, atol=1e-6)
    assert (res.cash >= 0).all()
    # after the first rebalance the book is near the targets and costs are a few bps
    assert np.nanmin(res.weight_gap) < 0.01
    assert 0 < res.total_cost < 1e-3 * 1_000_000
    assert set(res.costs_by_model) == {"Commission", "Spread", "MarketImpact"}
    assert all(v > 0 for v in res.costs_by_model.values())
    m = res.metrics()
    assert np.isfinite([m["cagr"], m["volatility"], m["sharpe"], m["max_drawdown"]]).all()
