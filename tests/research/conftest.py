"""Fixtures for the research tests: a small real-data comparison, built once per module."""

from __future__ import annotations

import pandas as pd
import pytest

from rebalopt.backtest import DataFeed
from rebalopt.datasets import load_demo_prices

TICKERS = ["AAPL", "JNJ", "JPM", "KO", "MSFT", "PG", "WMT", "XOM"]


@pytest.fixture(scope="session")
def small_prices() -> pd.DataFrame:
    """Eight real stocks (skfolio's S&P 500 data), 2020-2022, daily adjusted closes."""
    return load_demo_prices().loc["2020-06-01":"2022-06-30", TICKERS]


@pytest.fixture(scope="session")
def small_feed(small_prices: pd.DataFrame) -> DataFeed:
    """The small panel with an assumed $50M daily traded value per stock."""
    return DataFeed.from_wide(small_prices, volume=50e6 / small_prices)
