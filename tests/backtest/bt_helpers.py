"""Helpers for backtest tests: tiny feeds, scripted strategies, an independent ledger."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rebalopt.backtest import DataFeed, Strategy


class Scripted(Strategy):
    """Submits ``script[t]`` = list of (asset, signed quantity[, limit]) on bar ``t``."""

    def __init__(self, script: dict[int, list[tuple]]) -> None:
        self.script = script
        self.seen: list[dict[str, float]] = []
        self.submitted: list[Any] = []

    def on_data(self, timestamp, data, context, broker) -> None:
        self.seen.append({a: data[a]["close"] for a in data})
        for item in self.script.get(data.t, []):
            asset, q = item[0], item[1]
            if len(item) > 2 and item[2] is not None:
                o = broker.submit_order(asset, abs(q), "buy" if q > 0 else "sell", "limit",
                                        item[2])
            else:
                o = broker.submit_order(asset, q)
            self.submitted.append(o)


def wide_feed(close: dict[str, list[float]], open_: dict[str, list[float]] | None = None,
              volume: dict[str, list[float]] | None = None, **kw: Any) -> DataFeed:
    n = len(next(iter(close.values())))
    idx = pd.bdate_range("2024-01-01", periods=n)
    c = pd.DataFrame(close, index=idx)
    o = None if open_ is None else pd.DataFrame(open_, index=idx)
    v = None if volume is None else pd.DataFrame(volume, index=idx)
    return DataFeed.from_wide(c, open=o, volume=v, **kw)


def ledger_equity(feed: DataFeed, fills, initial_cash: float) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """Cash, holdings and equity per bar rebuilt from the fills alone (independent of the broker).

    Marks: last known close, forward-filled with pandas.
    """
    T, N = feed.n_bars, feed.n_assets
    marks = pd.DataFrame(feed.close).ffill().fillna(0.0).to_numpy()
    cash = np.full(T, initial_cash, dtype=float)
    hold = np.zeros((T, N))
    col = {a: i for i, a in enumerate(feed.assets)}
    for f in fills:
        cash[f.bar:] += -(f.quantity * f.price * f.multiplier) - f.fee
        hold[f.bar:, col[f.asset]] += f.quantity
    equity = cash + (hold * marks * feed.multipliers).sum(axis=1)
    return cash, hold, equity
