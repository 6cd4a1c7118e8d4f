"""Fixtures for backtest tests (helpers live in bt_helpers.py)."""

from __future__ import annotations

import pytest
from bt_helpers import wide_feed

from rebalopt.backtest import DataFeed


@pytest.fixture
def two_asset_feed() -> DataFeed:
    return wide_feed(
        close={"A": [10, 11, 12, 12, 13], "B": [20, 19, 18, 20, 21]},
        open_={"A": [10, 10.5, 11, 12.5, 12], "B": [20, 19, 18.5, 18, 21]},
        volume={"A": [1e6] * 5, "B": [1e6] * 5},
    )
