"""BandRebalancer against hand-computed bands and properties over random books."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt import Commission, InputError, PortfolioState, RebalanceConfig, Spread
from rebalopt.rebalance.band import BandRebalancer

FRACTIONAL = RebalanceConfig(min_trade_value=0, min_weight_change=0, fractional=True)


def book() -> PortfolioState:
    # equity = 100 + 100*50 + 50*20 = 6,100; weights A 0.8197, B 0.1639, C 0
    return PortfolioState({"A": 100, "B": 50}, 100.0, {"A": 50.0, "B": 20.0, "C": 10.0})


def test_absolute_band_to_target_by_hand() -> None:
    s = book()
    targets = {"A": 0.6, "B": 0.2, "C": 0.2}
    plan = BandRebalancer(0.02, config=FRACTIONAL).plan(s, targets)
    # every asset is outside +-2%: A 0.8197 > 0.62, B 0.1639 < 0.18, C 0 < 0.18
    expected = np.array([(0.6 * 6100 - 5000) / 50, (0.2 * 6100 - 1000) / 20, 0.2 * 6100 / 10])
    np.testing.assert_allclose(plan.trades, expected, rtol=1e-12)
    np.testing.assert_allclose(plan.post_weights, [0.6, 0.2, 0.2], rtol=1e-12)


def test_inside_band_is_not_traded() -> None:
    s = book()
    # B at 0.1639 within 0.15 +- 0.02; A, C outside
    plan = BandRebalancer(0.02, config=FRACTIONAL).plan(s, {"A": 0.65, "B": 0.15, "C": 0.2})
    assert plan.trades[1] == 0.0
    assert plan.trades[0] < 0 and plan.trades[2] > 0


def test_relative_band_and_edge_by_hand() -> None:
    s = book()
    # relative 10%: A band [0.72, 0.88] holds 0.8197 -> no trade; B band [0.09, 0.11] -> edge 0.11
    plan = BandRebalancer(0.1, relative=True, to="edge", config=FRACTIONAL, fund=False).plan(
        s, {"A": 0.8, "B": 0.1, "C": 0.1})
    assert plan.trades[0] == 0.0
    assert plan.trades[1] == pytest.approx((0.11 * 6100 - 1000) / 20, rel=1e-12)
    assert plan.trades[2] == pytest.approx(0.09 * 6100 / 10, rel=1e-12)  # C: 0 -> edge 0.09


def test_bad_width_is_named() -> None:
    with pytest.raises(InputError) as e:
        BandRebalancer(-0.1)
    assert e.value.field == "BandRebalancer.width"


@settings(deadline=None, max_examples=150)
@given(
    data=st.data(),
    n=st.integers(2, 8),
    width=st.floats(0.0, 0.1),
    relative=st.booleans(),
    to=st.sampled_from(["target", "edge"]),
)
def test_band_properties(data: st.DataObject, n: int, width: float, relative: bool,
                         to: str) -> None:
    prices = np.array(data.draw(st.lists(st.floats(1.0, 500.0), min_size=n, max_size=n)))
    holdings = np.array(data.draw(st.lists(st.integers(0, 2000), min_size=n, max_size=n)),
                        dtype=float)
    cash = data.draw(st.floats(0.0, 1e5))
    raw = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    if raw.sum() == 0 or holdings @ prices + cash <= 0:
        return
    targets = raw / raw.sum()
    tickers = [f"T{i}" for i in range(n)]
    s = PortfolioState(dict(zip(tickers, holdings)), cash, dict(zip(tickers, prices)))
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(3.0)]
    band = BandRebalancer(width, relative=relative, to=to, costs=costs)
    plan = band.plan(s, dict(zip(tickers, targets)))
    lo, hi = band.bands(targets)
    inside = (s.weights >= lo - 1e-12) & (s.weights <= hi + 1e-12)
    assert np.all(plan.trades[inside] == 0)
    assert np.all(plan.trades == np.round(plan.trades))  # whole shares
    assert plan.post_cash >= -1e-9  # funded: a cash account can pay
    assert plan.post_cash == pytest.approx(
        s.cash - plan.trade_values.sum() - plan.total_cost, abs=1e-6)
    sells = [o for o in plan.orders() if o.side.value == "sell"]
    assert plan.orders()[: len(sells)] == sells
