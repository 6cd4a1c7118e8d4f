"""Equal-tracking-error comparison: efficient points and interpolation by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.research import cost_at_tracking_error, efficient_points, equal_te_table


def test_efficient_points_drop_dominated_runs() -> None:
    te = np.array([0.010, 0.005, 0.020, 0.006, 0.004])
    cost = np.array([30.0, 60.0, 10.0, 70.0, 65.0])
    x, y = efficient_points(te, cost)
    # (0.006, 70) is dominated by (0.005, 60)
    np.testing.assert_array_equal(x, [0.004, 0.005, 0.010, 0.020])
    np.testing.assert_array_equal(y, [65.0, 60.0, 30.0, 10.0])


def test_cost_at_tracking_error_by_hand() -> None:
    te = np.array([0.01, 0.02, 0.04])
    cost = np.array([40.0, 20.0, 10.0])
    assert cost_at_tracking_error(te, cost, 0.015) == (30.0, "interpolated")
    assert cost_at_tracking_error(te, cost, 0.02) == (20.0, "interpolated")
    assert cost_at_tracking_error(te, cost, 0.05) == (10.0, "bound")
    c, how = cost_at_tracking_error(te, cost, 0.005)
    assert np.isnan(c) and how == "below range"
    with pytest.raises(InputError):
        cost_at_tracking_error(np.array([np.nan]), np.array([1.0]), 0.01)


def test_equal_te_table() -> None:
    table = pd.DataFrame({
        "kind": ["optimal", "optimal", "naive", "band"],
        "tracking_error": [0.01, 0.03, 0.02, 0.005],
        "cost_bps": [50.0, 10.0, 60.0, 80.0],
    }, index=["o1", "o2", "n", "b"])
    eq = equal_te_table(table)
    assert list(eq.index) == ["n", "b"]
    assert eq.loc["n", "optimal_cost_bps"] == pytest.approx(30.0)
    assert eq.loc["n", "ratio"] == pytest.approx(0.5)
    assert eq.loc["b", "how"] == "below range"
    with pytest.raises(InputError, match="optimal"):
        equal_te_table(table[table["kind"] != "optimal"])
