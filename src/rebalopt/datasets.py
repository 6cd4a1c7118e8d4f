"""Loaders for the demo data and for a user's own price panels.

The demo uses real prices shipped inside a registry package (skfolio's S&P 500
dataset: 20 stocks, daily adjusted closes, 1990-2022), so it runs on a fresh
machine with no files from us. Larger panels are read from a path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["load_demo_prices", "shared_data_dir"]


def load_demo_prices() -> pd.DataFrame:
    """Daily prices of 20 S&P 500 stocks (wide frame: dates x tickers, currency).

    Shipped in skfolio's wheel (``pip install rebalopt[demo]``); no network needed.
    """
    try:
        from skfolio.datasets import load_sp500_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the demo data needs skfolio: pip install 'rebalopt[demo]'") from exc
    prices = load_sp500_dataset()
    prices.index = pd.DatetimeIndex(prices.index, name="date")
    prices.columns = prices.columns.astype(str)
    return prices.astype(float)


def shared_data_dir() -> Path | None:
    """The shared real-data folder (``$REBALOPT_DATA``, default ``../shared/data``), if present."""
    env = os.environ.get("REBALOPT_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" for p in here.parents]
    candidates += [Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if (c / "sp500" / "prices.parquet").exists():
            return c
    return None
