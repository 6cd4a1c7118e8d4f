"""ml4t-backtest 0.2.0 side of bench_engine.py (runs under Python 3.12).

Same feed (a parquet written by bench_engine.py) and the same strategy: equal
weights over the assets priced on the bar, submitted at each month's last bar
through ml4t's TargetWeightExecutor; no costs. Prints JSON: seconds per run.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd


def main(path: str, repeats: int, mode: str) -> None:
    import polars as pl
    from ml4t.backtest import (
        BacktestConfig,
        DataFeed,
        Engine,
        ExecutionMode,
        RebalanceConfig,
        Strategy,
        TargetWeightExecutor,
    )

    df = pl.read_parquet(path)
    dates = pd.DatetimeIndex(sorted(df["timestamp"].unique().to_list()))
    month = dates.year * 12 + dates.month
    month_end = set(dates[:-1][month[1:] != month[:-1]])
    month_end = {d for i, d in enumerate(dates) if d in month_end and i >= 60}

    class EW(Strategy):
        def __init__(self):
            self.ex = TargetWeightExecutor(RebalanceConfig(min_weight_change=0.0002,
                                                           min_trade_value=100.0))
            self.seen: dict[str, int] = {}

        def on_data(self, timestamp, data, context, broker):
            for a in data:
                self.seen[a] = self.seen.get(a, 0) + 1
            if pd.Timestamp(timestamp) not in month_end:
                return
            ready = [a for a in data if self.seen[a] > 60]  # a full 60-return history
            w = 0.99 / len(ready)
            self.ex.execute({a: w for a in ready}, data, broker)

    times = []
    n_fills = 0
    for _ in range(repeats):
        feed = DataFeed(prices_df=df)
        cfg = BacktestConfig(initial_cash=10_000_000.0,
                             execution_mode=ExecutionMode[mode.upper()])
        eng = Engine(feed, EW(), cfg)
        t0 = time.perf_counter()
        res = eng.run()
        times.append(time.perf_counter() - t0)
        try:
            n_fills = len(res.fills)
        except Exception:  # noqa: BLE001 - result shape differs across versions
            n_fills = -1
    print(json.dumps({"seconds": times, "bars": len(dates), "fills": n_fills}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
