"""A comparison a reader can trust: constraints and cost models disclosed per run,
fully invested bands, cash and dollar columns, no duplicate column, one report for a
comparison and a frontier, labels that do not overlap, log-log interpolation."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from research_costs import real_costs

from rebalopt.backtest import DataFeed
from rebalopt.constraints import CashFloor, LongOnly, WeightBounds
from rebalopt.errors import InputError
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.research import (
    Comparison,
    band_runs,
    compare,
    frontier,
    naive_runs,
    optimal_runs,
    risk_schedule,
    target_schedule,
)
from rebalopt.research.quality import cost_at_tracking_error, equal_te_table

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def targets(small_prices: pd.DataFrame) -> pd.DataFrame:
    return target_schedule(small_prices, "inverse_volatility", 60)


@pytest.fixture(scope="module")
def cmp(small_feed: DataFeed, small_prices: pd.DataFrame, targets: pd.DataFrame) -> Comparison:
    costs = real_costs()
    risk = risk_schedule(small_prices, targets.index, 60)
    capped = OptimalRebalancer(risk=risk, costs=copy.deepcopy(costs), horizon=1 / 12,
                               constraints=[LongOnly(), CashFloor(), WeightBounds(upper=0.2)])
    kept = band_runs(costs, absolute=(0.02,), relative=(), to=("edge",), invest_cash=False)
    kept[0].name += " (cash kept)"
    runs = (naive_runs(costs, every=(1,))
            + band_runs(costs, absolute=(0.02,), relative=(), to=("edge",))
            + kept
            + optimal_runs(costs, risk, (10.0,), rebalancer=capped))
    return compare(small_feed, targets, costs, runs, initial_cash=2e7, on_error="raise",
                   participation=0.5, adv_window=10)


def test_constraints_and_cost_models_disclosed_per_run(cmp: Comparison) -> None:
    t = cmp.table
    opt = t.loc["optimal γ=10", "constraints"]
    assert "WeightBounds" in opt and "upper=0.2" in opt and "LongOnly" in opt
    for name in ("naive monthly", "band abs 2.00% to edge"):
        assert "WeightBounds" not in t.loc[name, "constraints"]
    for name in t.index:
        costs = t.loc[name, "planning_costs"]
        assert "Spread(half_spread_bps=3" in costs and "MarketImpact(" in costs, name
        assert "object at 0x" not in costs and "object at 0x" not in t.loc[name, "constraints"]
    assert cmp.settings["costs"][1].startswith("Spread(half_spread_bps=3")
    assert cmp.settings["participation"] == 0.5 and cmp.settings["adv_window"] == 10


def test_bands_are_fully_invested_unless_told_otherwise(cmp: Comparison) -> None:
    t = cmp.table
    invested = t.loc["band abs 2.00% to edge"]
    kept = t.loc["band abs 2.00% to edge (cash kept)"]
    # the targets are fully invested (they sum to 1): the band's cash stays within 1%
    assert float(cmp.targets.sum(axis=1).min()) == pytest.approx(1.0)
    assert invested["cash_max"] <= 0.01
    # the oracle for the column: cash / equity recomputed from the backtest record
    res = cmp.results["band abs 2.00% to edge (cash kept)"]
    w = res.cash[cmp.start:] / res.equity[cmp.start:]
    assert kept["cash_avg"] == pytest.approx(w.mean()) and kept["cash_max"] == pytest.approx(
        w.max())
    assert kept["cash_max"] > invested["cash_max"]
    from rebalopt.research.report import runs_table

    rt = runs_table(cmp)
    assert rt.loc["band abs 2.00% to edge", "rebalancer"].endswith("+ cash invested")
    assert "cash invested" not in rt.loc["band abs 2.00% to edge (cash kept)", "rebalancer"]


def test_summary_has_no_duplicate_column_and_shows_cash_and_dollars(cmp: Comparison) -> None:
    from rebalopt.research.report import summary_table

    s = summary_table(cmp)
    assert len(set(s.columns)) == len(s.columns)
    assert " (bps/yr)" not in s.columns and all(not c.startswith(" ") for c in s.columns)
    assert {"cost ($)", "cash avg (%)", "cash max (%)", "final equity ($)"} <= set(s.columns)
    np.testing.assert_allclose(s["cost ($)"], cmp.table["cost"])


def test_one_report_for_a_comparison_and_a_frontier(cmp: Comparison, small_feed: DataFeed,
                                                    small_prices: pd.DataFrame,
                                                    targets: pd.DataFrame,
                                                    tmp_path: Path) -> None:
    from rebalopt.research.report import write_report

    risk = risk_schedule(small_prices, targets.index, 60)
    fr = frontier(small_feed, targets, real_costs(), risk, (1000.0,), initial_cash=2e7,
                  on_error="raise", participation=0.5, adv_window=10)
    text = write_report(cmp, tmp_path / "r.html", frontier=fr,
                        interpolation="loglog").read_text(encoding="utf-8")
    runs = text[text.index('id="runs"'):]
    runs = runs[: runs.index("</table>")]
    for name in [*cmp.table.index, *fr.table.index]:
        assert f"<th>{name}</th>" in runs, name
    assert "upper=0.2" in runs
    summary = text[text.index('id="summary"'):]
    assert "<th>optimal γ=1000</th>" in summary[: summary.index("</table>")]
    assert "in log TE and log cost" in text
    # a frontier on other targets cannot join
    with pytest.raises(InputError):
        write_report(cmp, tmp_path / "x.html", frontier=cmp)  # same run names


def test_frontier_labels_do_not_overlap(cmp: Comparison) -> None:
    from rebalopt.research.plots import count_overlaps, plot_frontier

    fig = plot_frontier(cmp)
    assert len(fig.axes[0].texts) == len(cmp.table)
    assert count_overlaps(fig, list(fig.axes[0].texts)) == 0


def test_loglog_interpolation_by_hand() -> None:
    te, cost = np.array([1.0, 4.0]), np.array([100.0, 25.0])
    # linear: halfway in TE from 1 to 4 at 2.5 -> 62.5; log-log at 2: 100 * 0.25**0.5 = 50
    assert cost_at_tracking_error(te, cost, 2.5) == (62.5, "interpolated")
    c, how = cost_at_tracking_error(te, cost, 2.0, "loglog")
    assert how == "interpolated" and math.isclose(c, 50.0)
    table = pd.DataFrame({"kind": ["optimal", "optimal", "naive"],
                          "tracking_error": [1.0, 4.0, 2.0], "cost_bps": [100.0, 25.0, 80.0]},
                         index=["o1", "o2", "n"])
    assert equal_te_table(table, interpolation="loglog").loc["n", "optimal_cost_bps"] == (
        pytest.approx(50.0))
    with pytest.raises(InputError):
        equal_te_table(table, interpolation="cubic")
