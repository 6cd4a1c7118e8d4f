"""Backtest engine speed: naive monthly rebalance, 500 real S&P 500 tickers, 5 years.

Runs rebalopt's Engine (SAME_BAR and NEXT_BAR, with and without the three cost
models) and, when a Python 3.12 environment with ml4t-backtest 0.2.0 exists at
``.venv312`` (``python3.12 -m venv .venv312 && .venv312/bin/pip install
ml4t-backtest``), ml4t's Engine on the same feed and the same strategy (equal
weights over the assets with a full 60-bar history at every month end after a 60-bar warm-up,
whole shares, min weight change 2 bps, min trade $100, no costs). Reports the
median seconds per bar over repeats and the ratio.

Usage: ``python benchmarks/bench_engine.py [--repeats 5] [--ml4t-repeats 3] [--no-ml4t]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rebalopt import Commission, MarketImpact, NaiveRebalancer, RebalanceConfig, Spread
from rebalopt.backtest import DataFeed, Engine, ExecutionMode, PortfolioStrategy, SimulatedBroker
from rebalopt.datasets import load_sp500

ROOT = Path(__file__).resolve().parents[1]
START, END, N_ASSETS, CASH = "2015-01-01", "2019-12-31", 500, 10_000_000.0


def load() -> tuple[object, DataFeed]:
    df = load_sp500(start=START, end=END)
    counts = df.groupby("ticker").size().sort_values(ascending=False, kind="stable")
    keep = sorted(counts.index[:N_ASSETS])
    df = df[df["ticker"].isin(keep)].reset_index(drop=True)
    return df, DataFeed.from_long(df)


def equal_weight(returns, data, context, broker):
    """Equal weights over the assets with a full 60-bar return history."""
    cols = returns.columns[returns.notna().all().to_numpy()]
    return dict.fromkeys(cols, 0.99 / len(cols))


def run_rebalopt(feed: DataFeed, mode: ExecutionMode, costs: list) -> tuple[float, object]:
    cfg = RebalanceConfig(min_weight_change=0.0002, min_trade_value=100.0)
    strat = PortfolioStrategy(NaiveRebalancer(cfg, costs=costs), optimizer=equal_weight,
                              lookback=60)
    broker = SimulatedBroker(CASH, costs=costs)
    eng = Engine(feed, strat, broker, mode, progress=False, record_holdings=False)
    t0 = time.perf_counter()
    res = eng.run()
    return time.perf_counter() - t0, res


def run_ml4t(df, repeats: int, mode: str) -> dict | None:
    py = ROOT / ".venv312" / "bin" / "python"
    if not py.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feed.parquet"
        df[["date", "ticker", "open", "high", "low", "close", "volume"]].rename(
            columns={"date": "timestamp", "ticker": "asset"}).to_parquet(path)
        out = subprocess.run([str(py), str(ROOT / "benchmarks" / "_ml4t_engine_run.py"),
                              str(path), str(repeats), mode],
                             capture_output=True, text=True, timeout=3600, check=False)
    if out.returncode != 0:
        print("ml4t run failed:", out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ml4t-repeats", type=int, default=3)
    ap.add_argument("--no-ml4t", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    df, feed = load()
    print(f"feed: {feed}  (load + build {time.perf_counter() - t0:.2f} s)")
    T = feed.n_bars
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=2.0),
             MarketImpact(coef=1.0)]
    rows = {}
    for mode in ExecutionMode:
        for label, cm in (("no costs", []), ("3 cost models", costs)):
            times, res = [], None
            for _ in range(args.repeats):
                dt, res = run_rebalopt(feed, mode, cm)
                times.append(dt)
            med = float(np.median(times))
            rows[(mode.value, label)] = med
            print(f"rebalopt {mode.value:8s} {label:14s}: {1e3 * med / T:7.3f} ms/bar median "
                  f"({med:.3f} s/run, {len(res.fills)} fills, {len(res.rebalances)} rebalances, "
                  f"final equity {res.equity[-1]:,.0f})")
    if args.no_ml4t:
        return
    for mode in ExecutionMode:
        ml = run_ml4t(df, args.ml4t_repeats, mode.value)
        if ml is None:
            print("ml4t-backtest: .venv312 with ml4t-backtest not found; per-bar figure above only")
            return
        med = float(np.median(ml["seconds"]))
        ours = rows[(mode.value, "no costs")]
        print(f"ml4t     {mode.value:8s} no costs      : {1e3 * med / ml['bars']:7.3f} ms/bar median "
              f"({med:.3f} s/run, {ml['fills']} fills)  -> rebalopt is {med / ours:.1f}x faster")


if __name__ == "__main__":
    main()
