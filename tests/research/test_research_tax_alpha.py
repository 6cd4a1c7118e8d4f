"""Smoke test of the direct-indexing tax experiment on eight real stocks (fast)."""

import numpy as np
import pandas as pd
import pytest

from rebalopt.costs.tax import TaxCost
from rebalopt.errors import InputError
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.rebalance.tax_aware import TaxAwareRebalancer
from rebalopt.research.targets import risk_schedule
from rebalopt.research.tax_alpha import (
    direct_index_feeds,
    equal_te_tax_alpha,
    frontier_table,
    mean_tax_alpha,
    run_tax_backtest,
    spread_cost,
    tax_alpha_at_own_te,
    tax_alpha_table,
    tax_frontier,
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


# ---------------------------------------------------------------- equal tracking error
def _frontiers():
    """Two small frontiers (TE, after-tax return), hand-made; ``aware`` has one
    dominated run (TE 2.5%, 6.0%: a run with less TE returns more)."""
    rows = [("a1", "aware", 0.010, 0.070), ("a2", "aware", 0.020, 0.075),
            ("a3", "aware", 0.030, 0.078), ("a4", "aware", 0.025, 0.060),
            ("u1", "unaware", 0.005, 0.060), ("u2", "unaware", 0.015, 0.064),
            ("u3", "unaware", 0.025, 0.066)]
    return pd.DataFrame(rows, columns=["run", "kind", "tracking_error",
                                       "after_tax_return"]).set_index("run")


def test_equal_te_tax_alpha_on_the_efficient_frontiers_by_hand():
    grid = equal_te_tax_alpha(_frontiers(), points=4)
    # common range [max(1%, 0.5%), min(3%, 2.5%)] = [1%, 2.5%], in steps of 0.5%
    np.testing.assert_allclose(grid["tracking_error"], [0.010, 0.015, 0.020, 0.025])
    # aware: 7% at 1%, halfway to 7.5% at 1.5%, 7.5% at 2%, halfway 2%..3% at 2.5%
    # (the dominated 6% run is not on the frontier)
    np.testing.assert_allclose(grid["aware"], [0.070, 0.0725, 0.075, 0.0765], atol=1e-15)
    # unaware: 6% + 0.4% * (1% - 0.5%) / 1% = 6.2% at 1%, then 6.4%, 6.5%, 6.6%
    np.testing.assert_allclose(grid["unaware"], [0.062, 0.064, 0.065, 0.066], atol=1e-15)
    np.testing.assert_allclose(grid["tax_alpha"], [0.008, 0.0085, 0.010, 0.0105], atol=1e-15)
    assert set(grid["how_aware"]) == set(grid["how_unaware"]) == {"interpolated"}
    # trapezoids over 0.5% steps / 1.5% = (0.825% + 0.925% + 1.025%) / 3
    assert mean_tax_alpha(grid) == pytest.approx(0.00925, abs=1e-15)


def test_equal_te_tax_alpha_at_given_tes_stays_in_the_common_range():
    grid = equal_te_tax_alpha(_frontiers(), at=[0.005, 0.0125, 0.02, 0.03])
    np.testing.assert_allclose(grid["tracking_error"], [0.0125, 0.02])  # 0.5%, 3%: outside
    # aware 7.125%, unaware 6.3% at 1.25%
    np.testing.assert_allclose(grid["tax_alpha"], [0.00825, 0.010], atol=1e-15)


def test_equal_te_tax_alpha_along_the_raw_sweep_keeps_every_run():
    grid = equal_te_tax_alpha(_frontiers(), points=4, frontier="sweep")
    # the dominated run is a point of the sweep: 6.0% - 6.6% at 2.5%
    np.testing.assert_allclose(grid["tax_alpha"], [0.008, 0.0085, 0.010, -0.006], atol=1e-15)


def test_tax_alpha_at_own_te_against_the_unaware_frontier():
    own = tax_alpha_at_own_te(_frontiers())
    assert list(own.index) == ["a1", "a2", "a3", "a4"]
    np.testing.assert_allclose(own["frontier_after_tax_return"], [0.062, 0.065, 0.066, 0.066],
                               atol=1e-15)
    np.testing.assert_allclose(own["tax_alpha"], [0.008, 0.010, 0.012, -0.006], atol=1e-15)
    # TE 3% lies beyond the unaware runs: read at their largest-TE efficient point
    assert list(own["how"]) == ["interpolated", "interpolated", "bound", "interpolated"]


def test_equal_te_tax_alpha_edges():
    t = _frontiers()
    apart = t.assign(tracking_error=np.where(t["kind"] == "aware", t["tracking_error"] + 0.1,
                                             t["tracking_error"]))
    assert equal_te_tax_alpha(apart).empty  # no common TE: no comparison
    assert np.isnan(mean_tax_alpha(equal_te_tax_alpha(apart)))
    with pytest.raises(InputError):
        equal_te_tax_alpha(t, aware="nope")
    with pytest.raises(InputError):
        equal_te_tax_alpha(t, frontier="hull")


def test_tax_frontier_accounting_and_disclosure(feeds):
    """Both policies on one compiled rebalancer each, same risk schedule; after-tax
    wealth = pre-tax wealth - tax accrued in the side account, to the cent."""
    monthly, closes = feeds
    rates = TaxRates(short_term=0.408, long_term=0.238)
    spread = spread_cost(5.0)
    dates = monthly.dates[monthly.dates >= closes.index[252]]
    risk = risk_schedule(closes, dates)
    tax = TaxCost(rates, wash_sale=WASH)
    kw = {"broker_costs": [spread], "rates": rates, "wash_sale": WASH, "initial_cash": 1e6,
              "risk": risk}
    runs = (tax_frontier(monthly, closes, OptimalRebalancer(costs=[spread]), [10.0, 1000.0],
                         kind="unaware", **kw)
            + tax_frontier(monthly, closes, TaxAwareRebalancer(
                OptimalRebalancer(costs=[spread, tax]), tax), [10.0, 1000.0], kind="aware",
                **kw))
    table = frontier_table(runs)
    assert list(table["risk_aversion"]) == [10.0, 1000.0, 10.0, 1000.0]
    assert list(table["kind"]) == ["unaware"] * 2 + ["aware"] * 2
    # same constraints for every run; the planning costs differ by the tax term only
    assert table["constraints"].nunique() == 1 and "LongOnly" in table["constraints"].iloc[0]
    assert all(c.endswith("TaxCost") for c in table.loc[table["kind"] == "aware",
                                                        "planning_costs"])
    for r in runs:
        rep, res = r.result.taxes, r.result
        # after-tax wealth = pre-tax wealth - cumulative tax, on every bar, to the cent
        np.testing.assert_allclose(rep.after_tax_equity.to_numpy(),
                                   res.equity - rep.tax_paid.to_numpy(), rtol=0, atol=0.005)
        assert rep.after_tax_equity.iloc[-1] == pytest.approx(res.equity[-1] - r.tax,
                                                              abs=0.005)
        years = len(res.equity) / 12
        assert r.after_tax_return == pytest.approx(
            (rep.after_tax_equity.iloc[-1] / 1e6) ** (1 / years) - 1, abs=1e-12)
    np.testing.assert_allclose(table["tax_drag"], table["pre_tax_return"]
                               - table["after_tax_return"], atol=1e-15)
    grid = equal_te_tax_alpha(table, points=3)
    assert len(grid) in (0, 3)
