"""plan.by_ticker: the plan's arrays labelled by ticker, in any account order."""

from __future__ import annotations

import numpy as np

from rebalopt import NaiveRebalancer, PortfolioState, RebalanceConfig


def test_by_ticker_labels_every_array() -> None:
    # 100,000 cash; A @ 50, B @ 20 (listed B first): targets A 0.3, B 0.5 -> 600 A, 2,500 B
    state = PortfolioState({}, 100_000.0, {"B": 20.0, "A": 50.0})
    plan = NaiveRebalancer(RebalanceConfig(min_weight_change=0.0, min_trade_value=0.0)).plan(
        state, {"A": 0.3, "B": 0.5})
    df = plan.by_ticker
    assert df.index.name == "asset" and list(df.index) == list(state.assets)
    assert df["trade_shares"].to_dict() == {"B": 2500.0, "A": 600.0}
    np.testing.assert_array_equal(df["trade_shares"].to_numpy(), plan.trades)
    np.testing.assert_array_equal(df["post_weight"].to_numpy(), plan.post_weights)
    assert df.loc["A", "target_weight"] == 0.3
    assert len(plan.preview()) == 2  # preview keeps its filter (held, targeted or traded)
