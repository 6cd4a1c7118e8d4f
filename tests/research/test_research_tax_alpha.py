"""Smoke test of the direct-indexing tax experiment on eight real stocks (fast)."""

import numpy as np
import pytest

from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.research.tax_alpha import (
    direct_index_feeds,
    run_tax_backtest,
    spread_cost,
    tax_alpha_table,
)
from rebalopt.taxes import TaxRates, WashSaleRule


@pytest.fixture(scope="module")
def feeds(small_feed):
    return direct_index_feeds(small_feed, "2021-06-01")


WASH = WashSaleRule(30)


def _run(feeds, rebalancer, rates, method="fifo", wash=WASH):
    monthly, closes = feeds
    return run_tax_backtest(monthly, closes, rebalancer, broker_costs=[spread_cost(5.0)],
                            rates=rates, wash_sale=wash, method=method, initial_cash=1e6)


def test_unaware_runs_and_table(feeds):
    rates = TaxRates(short_term=0.408, long_term=0.238)
    fifo = _run(feeds, OptimalRebalancer(costs=[spread_cost(5.0)]), rates)
    hifo = _run(feeds, OptimalRebalancer(costs=[spread_cost(5.0)]), rates, method="hifo")
    table = tax_alpha_table({"fifo": fifo, "hifo": hifo}, "fifo")
    assert table.loc["fifo", "tax_alpha"] == 0.0
    # same trades, only the lots relieved differ: equal equity, different tax
    assert fifo.result.equity[-1] == pytest.approx(hifo.result.equity[-1])
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    # the tax is the rates on the recognized gains of the ledger, year by year
    rep = fifo.result.taxes
    g = rep.gains_by_year
    assert rep.total_tax == pytest.approx(sum(rates.tax(s, lg) for s, lg in zip(
        g["short"], g["long"], strict=True)))
    # zero rates: no tax, after-tax return = pre-tax return
    zero = _run(feeds, OptimalRebalancer(costs=[spread_cost(5.0)]), TaxRates(0.0, 0.0))
    assert zero.tax == 0.0 and zero.after_tax_return == pytest.approx(zero.pre_tax_return)
