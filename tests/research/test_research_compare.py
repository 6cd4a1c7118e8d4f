"""Fairness of the comparison: same targets on the same dates, costs equal the broker's
fills, zero costs give the paper portfolio, frontier re-solves without recompiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from research_costs import real_costs

from rebalopt.backtest import DataFeed
from rebalopt.errors import InputError
from rebalopt.research import (
    Comparison,
    band_runs,
    compare,
    frontier,
    naive_runs,
    optimal_runs,
    paper_returns,
    risk_schedule,
    target_schedule,
    tracking_error,
    whole_share_floor,
)

LOOKBACK = 60


@pytest.fixture(scope="module")
def targets(small_prices: pd.DataFrame) -> pd.DataFrame:
    return target_schedule(small_prices, "inverse_volatility", LOOKBACK)


@pytest.fixture(scope="module")
def cmp(small_feed: DataFeed, small_prices: pd.DataFrame, targets: pd.DataFrame) -> Comparison:
    costs = real_costs()
    risk = risk_schedule(small_prices, targets.index, LOOKBACK)
    runs = (naive_runs(costs, every=(1, 2))
            + band_runs(costs, absolute=(0.01,), relative=(0.25,), to=("target", "edge"))
            + optimal_runs(costs, risk, (3.0, 300.0)))
    return compare(small_feed, targets, costs, runs, initial_cash=2e7, on_error="raise")


def test_every_run_sees_the_same_targets_on_the_same_dates(cmp: Comparison,
                                                           targets: pd.DataFrame) -> None:
    assert len(cmp.seen) == len(cmp.table) == 8
    for name, seen in cmp.seen.items():
        dates = [pd.Timestamp(d) for d, _ in seen]
        assert dates == list(targets.index), name
        for (_, w), (_, row) in zip(seen, targets.iterrows()):
            np.testing.assert_array_equal(w, row.reindex(cmp.feed.assets).to_numpy())
    # lower-frequency runs trade on a subset of those dates only
    res = cmp.results["naive every 2"]
    traded = sorted({f.tag for f in res.fills})
    assert traded == list(range(0, len(targets), 2))


def test_costs_in_the_frame_equal_the_broker_fills(cmp: Comparison) -> None:
    t = cmp.table
    for name, res in cmp.results.items():
        fills = res.fills_frame()
        later = fills[fills["tag"] != 0]
        first = fills[fills["tag"] == 0]
        for model in res.cost_names:
            assert t.loc[name, f"cost_{model}"] == pytest.approx(later[f"cost_{model}"].sum(),
                                                                  rel=1e-12, abs=1e-9)
        all_costs = sum(res.costs_by_model.values())
        assert t.loc[name, "cost"] + t.loc[name, "initial_cost_bps"] * 1e-4 * res.initial_cash \
            == pytest.approx(all_costs, rel=1e-10)
        # the funding trade is the same for every run
        assert first["quantity"].sum() == pytest.approx(
            cmp.results["naive monthly"].fills_frame().query("tag == 0")["quantity"].sum())
        # bps per year: recomputed from the equity curve and the fill costs
        eq = res.equity[cmp.start:]
        years = (len(res.equity) - 1 - cmp.start) / 252
        bps = 1e4 * later[[f"cost_{m}" for m in res.cost_names]].to_numpy().sum() / eq.mean() / years
        assert t.loc[name, "cost_bps"] == pytest.approx(bps, rel=1e-10)
        parts = sum(t.loc[name, f"cost_{m}_bps"] for m in res.cost_names)
        assert parts == pytest.approx(t.loc[name, "cost_bps"], rel=1e-10)
        turnover = 0.5 * later["notional"].abs().sum() / eq.mean() / years
        assert t.loc[name, "turnover"] == pytest.approx(turnover, rel=1e-10)
        assert t.loc[name, "n_orders"] == sum(1 for o in res.orders if o.tag not in (None, 0))
        assert t.loc[name, "n_held"] == 0


def test_tracking_error_is_the_std_of_return_differences(cmp: Comparison) -> None:
    for name, res in cmp.results.items():
        r = res.equity[cmp.start + 1:] / res.equity[cmp.start:-1] - 1.0
        p = cmp.paper.to_numpy()[cmp.start + 1:]
        assert cmp.table.loc[name, "tracking_error"] == pytest.approx(
            np.std(r - p, ddof=1) * np.sqrt(252), rel=1e-10)
    t = cmp.table
    # more frequent / tighter policies track better; low risk aversion trades less
    assert t.loc["naive monthly", "tracking_error"] < t.loc["naive every 2", "tracking_error"]
    assert t.loc["optimal γ=3", "cost_bps"] < t.loc["optimal γ=300", "cost_bps"]
    assert t.loc["optimal γ=3", "tracking_error"] > t.loc["optimal γ=300", "tracking_error"]


def test_gross_tracking_error_adds_back_each_bars_costs(cmp: Comparison) -> None:
    for name, res in cmp.results.items():
        f = res.fills_frame()
        f = f[f["tag"] != 0]
        hit = (f[[c for c in f.columns if c.startswith("cost_")]].sum(axis=1)
               .groupby(f["bar"]).sum())
        eq = res.equity
        r = eq[1:] / eq[:-1] - 1.0
        r[hit.index.to_numpy() - 1] += hit.to_numpy() / eq[hit.index.to_numpy() - 1]
        p = cmp.paper.to_numpy()[1:]
        s = cmp.start
        assert cmp.table.loc[name, "tracking_error_gross"] == pytest.approx(
            np.std(r[s:] - p[s:], ddof=1) * np.sqrt(252), rel=1e-9)


def test_naive_monthly_tracks_by_its_cost_hits_alone(small_feed: DataFeed,
                                                     targets: pd.DataFrame) -> None:
    """Fractional naive monthly holds the paper book after every decision close: what is
    left of its tracking error once the costs are added back is second order."""
    cmp1 = compare(small_feed, targets, real_costs(), naive_runs(real_costs(), every=(1,),
                                                                 fractional=True),
                   initial_cash=2e9, fractional=True, on_error="raise")
    row = cmp1.table.loc["naive monthly"]
    assert row["cost"] > 0
    assert row["tracking_error_gross"] < 0.05 * row["tracking_error"]


def test_paper_portfolio_by_hand() -> None:
    dates = pd.bdate_range("2021-01-01", periods=5)
    close = pd.DataFrame({"A": [10.0, 11.0, 12.0, 12.0, 13.2], "B": [20.0, 20.0, 18.0, 19.8, 19.8]},
                         index=dates)
    feed = DataFeed.from_wide(close)
    targets = pd.DataFrame({"A": [0.5, 0.25], "B": [0.5, 0.25]}, index=dates[[1, 3]])
    r = paper_returns(feed, targets).to_numpy()
    assert np.isnan(r[:2]).all()
    # bar 2: 0.5 * (12/11 - 1) + 0.5 * (18/20 - 1)
    assert r[2] == pytest.approx(0.5 * (1 / 11) - 0.05)
    # bar 3: weights drifted after bar 2
    wa = 0.5 * 12 / 11 / (1 + r[2])
    wb = 0.5 * 0.9 / (1 + r[2])
    assert r[3] == pytest.approx(wa * 0.0 + wb * 0.1)
    # bar 4: reset to 25% / 25% / 50% cash at bar 3's close
    assert r[4] == pytest.approx(0.25 * 0.1 + 0.25 * 0.0)


@pytest.mark.parametrize("fractional", [True, False])
def test_zero_costs_naive_monthly_is_the_paper_portfolio(small_feed: DataFeed,
                                                         targets: pd.DataFrame,
                                                         fractional: bool) -> None:
    runs = naive_runs([], every=(1,), fractional=fractional)
    cmp0 = compare(small_feed, targets, [], runs, initial_cash=2e7, fractional=fractional,
                   on_error="raise")
    te = cmp0.table.loc["naive monthly", "tracking_error"]
    assert cmp0.table.loc["naive monthly", "cost"] == 0.0
    if fractional:
        assert te < 1e-12
    else:
        floor = whole_share_floor(small_feed, cmp0.results["naive monthly"].equity, cmp0.start)
        assert 0 < te <= 1.05 * floor + 1e-6
        assert floor < 1e-3  # whole shares on a $20M book: well under 10 bps a year


def test_frontier_resolves_without_recompiling(small_feed: DataFeed, small_prices: pd.DataFrame,
                                               targets: pd.DataFrame) -> None:
    risk = risk_schedule(small_prices, targets.index, LOOKBACK)
    gammas = (1.0, 30.0, 1000.0)
    fr = frontier(small_feed, targets, real_costs(), risk, gammas, initial_cash=2e7,
                  on_error="raise")
    assert list(fr.table["knob"]) == list(gammas)
    assert (fr.table["compilations"] == 1).all()  # one compile, re-solved for every gamma
    cost = fr.table["cost_bps"].to_numpy()
    assert cost[0] < cost[1] < cost[2]
    assert fr.table["tracking_error"].iloc[0] > fr.table["tracking_error"].iloc[2]


def test_compare_rejects_bad_inputs(small_feed: DataFeed, targets: pd.DataFrame) -> None:
    runs = naive_runs([], every=(1,))
    with pytest.raises(InputError, match="duplicate run"):
        compare(small_feed, targets, [], runs + runs)
    shifted = targets.copy()
    shifted.index = shifted.index + pd.Timedelta(hours=1)
    with pytest.raises(InputError, match="not a bar"):
        compare(small_feed, shifted, [], runs)
    with pytest.raises(InputError, match="'ZZZ'"):
        compare(small_feed, targets.assign(ZZZ=0.0), [], runs)


def test_tracking_error_helper() -> None:
    r = np.array([np.nan, 0.01, 0.02, 0.00])
    p = np.array([np.nan, 0.00, 0.01, 0.01])
    assert tracking_error(r, p) == pytest.approx(np.std([0.01, 0.01, -0.01], ddof=1) * np.sqrt(252))
    assert np.isnan(tracking_error(r[:2], p[:2]))


def test_an_integer_rebalancer_runs_and_shares_its_relaxation(small_feed: DataFeed,
                                                              small_prices: pd.DataFrame,
                                                              targets: pd.DataFrame) -> None:
    from rebalopt.rebalance.integer import IntegerRebalancer
    from rebalopt.rebalance.optimal import OptimalRebalancer
    from rebalopt.research import Run

    costs = real_costs()
    risk = risk_schedule(small_prices, targets.index, LOOKBACK)
    reb = IntegerRebalancer(OptimalRebalancer(risk=risk, costs=real_costs()))
    runs = [Run(f"integer γ={g:g}", reb, kind="optimal", knob=g, risk_aversion=g)
            for g in (10.0, 1000.0)]
    out = compare(small_feed, targets, costs, runs, initial_cash=2e7, on_error="raise")
    assert reb.relaxation.risk_aversion == 1000.0
    assert (out.table["compilations"] == 1).all()
    for res in out.results.values():
        assert all(float(f.quantity).is_integer() for f in res.fills)
    assert out.table["cost_bps"].iloc[0] < out.table["cost_bps"].iloc[1]


def test_optimal_runs_whole_share_modes() -> None:
    from rebalopt.rebalance.integer import IntegerRebalancer
    from rebalopt.research import RoundedRebalancer

    runs = optimal_runs([], None, (1.0, 2.0))  # the product's integer stage by default
    assert isinstance(runs[0].rebalancer, IntegerRebalancer)
    assert runs[0].rebalancer.mode == "round"
    assert isinstance(optimal_runs([], None, (1.0,), whole_shares="round")[0].rebalancer,
                      RoundedRebalancer)
    assert runs[0].rebalancer is runs[1].rebalancer  # one program for the whole sweep
    from rebalopt.rebalance.optimal import OptimalRebalancer
    assert isinstance(optimal_runs([], None, (1.0,), fractional=True)[0].rebalancer,
                      OptimalRebalancer)
    with pytest.raises(InputError, match="whole_shares"):
        optimal_runs([], None, (1.0,), whole_shares="floor")  # type: ignore[arg-type]
