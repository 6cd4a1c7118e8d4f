"""The README's demo: naive vs band vs optimal rebalancing on real S&P 500 prices.

Runs on a fresh machine with no data files: the prices are skfolio's 20 S&P 500
stocks shipped in its wheel (daily adjusted closes). That data has no volume,
so the demo assumes every stock trades :data:`DEMO_ADV_DOLLARS` a day (about
the median 63-day dollar ADV of S&P 500 members in 2021, $216M); the broker's
trailing ADV in shares is that amount over the price. Volatility for market
impact is the trailing 20-day realized volatility of the real prices.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pandas as pd

from rebalopt.backtest import DataFeed
from rebalopt.costs import Commission, MarketImpact, Spread
from rebalopt.datasets import load_demo_prices
from rebalopt.research.compare import Comparison, band_runs, compare, naive_runs, optimal_runs
from rebalopt.research.quality import equal_te_table
from rebalopt.research.report import write_report
from rebalopt.research.targets import risk_schedule, target_schedule

__all__ = ["DEMO_ADV_DOLLARS", "demo_comparison", "demo_feed", "run_demo"]

DEMO_ADV_DOLLARS = 200e6
"""Assumed average daily traded value per stock in the demo, currency per day."""

DEMO_BOOK = 100e6
"""The demo's initial book, currency."""


def demo_feed(start: str = "2012-01-01", end: str | None = None) -> DataFeed:
    """The demo data as a :class:`DataFeed`, volume = ``DEMO_ADV_DOLLARS / close`` (shares)."""
    prices = load_demo_prices().loc[start:end]
    return DataFeed.from_wide(prices, volume=DEMO_ADV_DOLLARS / prices)


def demo_comparison(quick: bool = False) -> Comparison:
    """Run the demo's comparison and return it (no file written).

    Full: 2012-2022 (targets from 2013, one year of lookback), naive monthly /
    every 2 / every 3, 14 bands, 9 optimal risk aversions. ``quick``: 2019-2022
    and a handful of runs, for tests.
    """
    start = "2019-01-01" if quick else "2012-01-01"
    feed = demo_feed(start)
    closes = pd.DataFrame(feed.close, index=feed.dates, columns=feed.assets)
    targets = target_schedule(closes, "min_variance", lookback=252, frequency="M")
    risk = risk_schedule(closes, targets.index, lookback=252)
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0),
             MarketImpact(coef=1.0, exponent=1.5)]
    if quick:
        runs = (naive_runs(costs)
                + band_runs(costs, absolute=(0.01,), relative=(0.25,), to=("target", "edge"))
                + optimal_runs(costs, risk, (3.0, 30.0, 300.0, 3000.0)))
    else:
        runs = (naive_runs(costs) + band_runs(costs)
                + optimal_runs(costs, risk, (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0,
                                             3000.0, 10000.0)))
    return compare(feed, targets, costs, runs, initial_cash=DEMO_BOOK, on_error="hold")


def run_demo(out_dir: Path | None = None, quick: bool = False) -> Path:
    """Run the demo end to end and write its HTML report; returns the report's path.

    Parameters
    ----------
    out_dir
        Folder of the report (created); default ``./reports``.
    quick
        A short period and few runs (seconds), for tests.

    Returns
    -------
    Path
        ``out_dir / "demo.html"`` (a self-contained page); the per-run table is
        also written beside it as ``demo.csv``.
    """
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else Path("reports")
    print(f"rebalopt demo: {'quick' if quick else 'full'} comparison of naive, band and "
          "optimal rebalancing on real prices (a progress bar follows on a terminal; the "
          "full run takes minutes)", flush=True)
    with warnings.catch_warnings():
        # cvxpy warns on "optimal_inaccurate"; the rebalancer verifies such points itself
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        cmp = demo_comparison(quick=quick)
    desc = ("20 S&P 500 stocks (skfolio's dataset, real daily prices), monthly long-only "
            "minimum-variance targets from skfolio's MeanRisk on one year of returns, a "
            f"${DEMO_BOOK / 1e6:,.0f}M book. Costs: $0.005/share commission with a $1 "
            "minimum, 3 bps half spread, square-root market impact from trailing 20-day "
            f"volatility and an assumed ${DEMO_ADV_DOLLARS / 1e6:,.0f}M daily traded value "
            "per stock (the data set has no volume).")
    path = write_report(cmp, out / "demo.html", description=desc)
    cmp.table.to_csv(out / "demo.csv")
    eq = equal_te_table(cmp.table)
    t = cmp.table
    print(f"rebalopt demo: {len(t)} runs in {time.perf_counter() - t0:.1f}s")
    for name in [n for n in t.index if t.loc[n, "kind"] == "naive"]:
        r = eq.loc[name]
        print(f"  {name:<16} TE {100 * r['tracking_error']:.2f}%/yr  cost "
              f"{r['cost_bps']:.1f} bps/yr  optimal at same TE {r['optimal_cost_bps']:.1f} "
              f"bps/yr ({r['ratio']:.0%})")
    print(f"report: {path}")
    return path
