"""Baselines that trade between target dates (TWAP-k, daily bands, daily single-period)
and the multi-period policy, through the same backtest as every other run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from research_costs import real_costs

from rebalopt import PortfolioState, Spread
from rebalopt.backtest import DataFeed
from rebalopt.research import (
    TWAPRebalancer,
    compare,
    daily_band_runs,
    daily_optimal_runs,
    equal_te_against,
    multiperiod_runs,
    paper_weights,
    risk_schedule,
    target_schedule,
    twap_runs,
)

LOOKBACK = 60


@pytest.fixture(scope="module")
def window(small_prices: pd.DataFrame) -> pd.DataFrame:
    return small_prices.loc[:"2020-12-31"]


@pytest.fixture(scope="module")
def targets(window: pd.DataFrame) -> pd.DataFrame:
    return target_schedule(window, "inverse_volatility", LOOKBACK)


@pytest.fixture(scope="module")
def cmp(window: pd.DataFrame, targets: pd.DataFrame):
    feed = DataFeed.from_wide(window, volume=50e6 / window)
    costs = real_costs()
    risk = risk_schedule(window, targets.index, LOOKBACK)
    runs = (twap_runs(costs, (3,))
            + daily_band_runs(costs, absolute=(0.005,), relative=(), to=("edge",))
            + daily_optimal_runs(costs, risk, (300.0,))
            + multiperiod_runs(costs, risk, (30.0, 3000.0), periods=3))
    return compare(feed, targets, costs, runs, initial_cash=2e8, on_error="raise")


def test_twap_slices_the_gap_evenly():
    st_ = PortfolioState({"A": 0.0, "B": 1000.0}, 1e6, {"A": 10.0, "B": 100.0})
    reb = TWAPRebalancer(4, [Spread(half_spread_bps=1.0)], fractional=True)
    gap0 = np.array([0.5, 0.4]) - st_.weights
    for step in range(4):
        reb.step = step
        gap = np.array([0.5, 0.4]) - st_.weights
        p = reb.plan(st_, {"A": 0.5, "B": 0.4})
        np.testing.assert_allclose(p.z, gap / (4 - step), atol=1e-12)  # the rule
        np.testing.assert_allclose(p.z, gap0 / 4, rtol=1e-3)  # hence even slices
        st_ = PortfolioState(dict(zip(st_.assets, p.post_holdings)), p.post_cash,
                             dict(zip(st_.assets, st_.prices)))
        assert p.total_cost > 0
    assert np.abs(st_.weights - [0.5, 0.4]).max() < 1e-4  # the book got there (costs aside)
    reb.step = 4
    assert not reb.plan(st_, {"A": 0.9, "B": 0.0}).z.any()  # done until the next target


def test_daily_runs_decide_between_target_dates(cmp, targets):
    feed = cmp.feed
    pos = feed.dates.get_indexer(targets.index)
    for name, res in cmp.results.items():
        bars = {f.bar for f in res.fills if f.tag != 0}
        between = [b for b in bars if b not in set(pos)]
        assert between, f"{name} never traded between target dates"
    # TWAP-3 trades on the decision date and the two bars after it only
    res = cmp.results["naive TWAP-3"]
    for f in res.fills:
        k = int(np.searchsorted(pos, f.bar, side="right")) - 1
        assert f.bar - pos[k] < 3, f.bar


def test_between_dates_the_target_is_the_drifted_paper_book(cmp, targets):
    # a daily band to its edge is checked against the paper weights on every bar, so
    # right after each close (when it trades) every name is within the band of them
    held = cmp.held_weights("daily band abs 0.50% to edge").to_numpy()
    paper = paper_weights(cmp.feed, targets).to_numpy()
    start = cmp.start + 1
    gap = np.abs(held[start:] - paper[start:])
    assert np.nanmax(gap) <= 0.005 + 1e-3  # whole shares and costs aside


def test_costs_are_the_broker_fills_and_frontier_is_compiled_once(cmp):
    t = cmp.table
    for name, res in cmp.results.items():
        total = sum(sum(f.costs.values()) for f in res.fills if f.tag != 0)
        assert t.loc[name, "cost"] == pytest.approx(total, rel=1e-12)
    mp = t[t["kind"] == "multiperiod"]
    assert (mp["compilations"] == 1).all()
    # more risk aversion: less tracking error, more cost
    lo, hi = mp.sort_values("knob").iloc[0], mp.sort_values("knob").iloc[-1]
    assert hi["tracking_error"] < lo["tracking_error"]
    assert hi["cost_bps"] > lo["cost_bps"]
    eq = equal_te_against(t, "multiperiod")
    assert set(eq.index) == set(t.index[t["kind"] != "multiperiod"])
    assert set(eq["how"]) <= {"interpolated", "bound", "below range"}


def test_multiperiod_runs_pass_their_options_and_name_the_cost_variant():
    costs = real_costs()
    plain = multiperiod_runs(costs, None, (10.0,), periods=4)
    with_cost = multiperiod_runs(costs, None, (10.0, 20.0), periods=4, cost_in_tracking=True,
                                 terminal=0.01)
    assert [r.name for r in plain] == ["multi-period H=4 γ=10"]
    assert [r.name for r in with_cost] == ["multi-period H=4 +cost γ=10",
                                           "multi-period H=4 +cost γ=20"]
    inner = with_cost[0].rebalancer.inner
    assert inner.cost_in_tracking is True and inner.terminal == 0.01 and inner.periods == 4
    assert with_cost[1].rebalancer is with_cost[0].rebalancer  # one program for the sweep
    assert plain[0].rebalancer.inner.cost_in_tracking is False


def test_daily_optimal_with_cost_in_tracking_is_one_period_of_the_planner():
    """The fair daily baseline for a multi-period policy with the cost term: the same
    term on the single-period plan. Oracle (an inequality of optima): adding a penalty
    increasing in the day's cost to the plain objective cannot raise the optimal cost,
    and here it lowers it."""
    costs = real_costs()
    rng = np.random.default_rng(3)
    assets = [f"S{i}" for i in range(6)]
    state = PortfolioState(dict(zip(assets, rng.uniform(1e4, 5e4, 6).round())), 1e5,
                           dict(zip(assets, rng.uniform(20, 80, 6))),
                           adv=dict.fromkeys(assets, 2e4),
                           volatility=dict.fromkeys(assets, 0.02))
    targets = dict(zip(assets, rng.dirichlet(np.ones(6)) * 0.97))
    plain = daily_optimal_runs(costs, None, (1e4,))
    with_cost = daily_optimal_runs(costs, None, (1e4, 2e4), cost_in_tracking=True)
    assert [r.name for r in with_cost] == ["daily optimal +cost γ=10000",
                                           "daily optimal +cost γ=20000"]
    assert {r.kind for r in with_cost} == {"optimal daily"}
    inner = with_cost[0].rebalancer.inner
    assert inner.periods == 1 and inner.cost_in_tracking is True
    a, b = plain[0].rebalancer.inner, inner
    a.risk_aversion = b.risk_aversion = 1e4
    pa, pb = a.plan(state, targets), b.plan(state, targets)
    ca, cb = pa.total_cost, pb.total_cost  # currency, the cost models of the broker
    assert cb <= ca + 1e-9 * abs(ca)
    assert cb < 0.999 * ca
