"""A two-asset, five-bar backtest computed by hand, to the cent, in both execution modes.

Costs: Commission(per_share=0.01, minimum=1.00) and a 10 bps half spread.
Orders: bar 0 buy 100 A and 50 B; bar 2 sell 40 A; bar 3 sell 50 B, buy 20 A.
Initial cash 10,000.00. The expected numbers below were worked out on paper
(see comments); the code does not compute them.
"""

from __future__ import annotations

import numpy as np
import pytest
from bt_helpers import Scripted

from rebalopt import Commission, Spread
from rebalopt.backtest import Engine, ExecutionMode, SimulatedBroker

SCRIPT = {0: [("A", 100), ("B", 50)], 2: [("A", -40)], 3: [("B", -50), ("A", 20)]}


def run(feed, mode):
    costs = [Commission(per_share=0.01, minimum=1.0), Spread(half_spread_bps=10.0)]
    broker = SimulatedBroker(10_000.0, costs=costs)
    res = Engine(feed, Scripted(SCRIPT), broker, mode, progress=False).run()
    return res, broker


def test_same_bar_to_the_cent(two_asset_feed):
    res, broker = run(two_asset_feed, ExecutionMode.SAME_BAR)
    # t0: A 100 @ 10*1.001=10.01 -> 1001.00 + 1.00 fee; B 50 @ 20.02 -> 1001.00 + 1.00
    #     cash 7996.00, equity 7996 + 1000 + 1000 = 9996.00
    # t1: 7996 + 1100 + 950 = 10046.00
    # t2: sell 40 A @ 12*0.999=11.988 -> +479.52 - 1.00: cash 8474.52; 8474.52+720+900
    # t3: sell 50 B @ 19.98 -> +999.00 - 1; buy 20 A @ 12.012 -> -240.24 - 1: cash 9231.28
    #     equity 9231.28 + 80*12 = 10191.28
    # t4: 9231.28 + 80*13 = 10271.28
    np.testing.assert_allclose(res.equity, [9996.00, 10046.00, 10094.52, 10191.28, 10271.28],
                               atol=0.005)
    np.testing.assert_allclose(res.cash, [7996.00, 7996.00, 8474.52, 9231.28, 9231.28],
                               atol=0.005)
    prices = [(f.bar, f.asset, round(f.price, 6)) for f in res.fills]
    assert prices == [(0, "A", 10.01), (0, "B", 20.02), (2, "A", 11.988), (3, "B", 19.98),
                      (3, "A", 12.012)]
    # average cost of A: (60 * 10.01 + 20 * 12.012) / 80 = 10.5105; realized (11.988-10.01)*40
    assert broker.get_position("A").avg_cost == pytest.approx(10.5105, abs=1e-9)
    assert broker.realized_pnl[0] == pytest.approx(79.12, abs=1e-9)
    assert broker.get_position("B") is None
    assert res.costs_by_model["Commission"] == pytest.approx(5.00, abs=1e-9)
    # spread: 1.00 + 1.00 + 0.48 + 1.00 + 0.24
    assert res.costs_by_model["Spread"] == pytest.approx(3.72, abs=1e-9)


def test_next_bar_to_the_cent(two_asset_feed):
    res, _broker = run(two_asset_feed, ExecutionMode.NEXT_BAR)
    # t0: nothing fills; equity 10000.00
    # t1 open: A 100 @ 10.5*1.001=10.5105 -> 1051.05 + 1; B 50 @ 19.019 -> 950.95 + 1
    #     cash 7996.00; equity 7996 + 1100 + 950 = 10046.00
    # t2: 7996 + 1200 + 900 = 10096.00
    # t3 open: sell 40 A @ 12.5*0.999=12.4875 -> +499.50 - 1: cash 8494.50
    #     equity 8494.50 + 60*12 + 50*20 = 10214.50
    # t4 open: sell 50 B @ 20.979 -> +1048.95 - 1; buy 20 A @ 12.012 -> -240.24 - 1
    #     cash 9301.21; equity 9301.21 + 80*13 = 10341.21
    np.testing.assert_allclose(res.equity, [10000.00, 10046.00, 10096.00, 10214.50, 10341.21],
                               atol=0.005)
    np.testing.assert_allclose(res.cash, [10000.00, 7996.00, 7996.00, 8494.50, 9301.21],
                               atol=0.005)
    prices = [(f.bar, f.asset, round(f.price, 6)) for f in res.fills]
    assert prices == [(1, "A", 10.5105), (1, "B", 19.019), (3, "A", 12.4875), (4, "B", 20.979),
                      (4, "A", 12.012)]
    assert res.costs_by_model["Commission"] == pytest.approx(5.00, abs=1e-9)
