"""Spread and MarketImpact on a two-asset trade, by hand, to the cent.

State: A 100/share, ADV 1,000,000 sh/day, daily vol 2%;
       B  20/share, ADV    40,000 sh/day, daily vol 3%.
Trade: A +10,000 sh (notional 1,000,000, participation 1%),
       B  -1,600 sh (notional    32,000, participation 4%).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rebalopt.costs import MarketImpact, Spread
from rebalopt.errors import InputError
from rebalopt.state import PortfolioState

TRADES = np.array([10_000.0, -1_600.0])


@pytest.fixture
def state() -> PortfolioState:
    return PortfolioState({"A": 1_000}, 50_000.0, {"A": 100.0, "B": 20.0},
                          adv={"A": 1_000_000.0, "B": 40_000.0},
                          volatility={"A": 0.02, "B": 0.03})


def test_scalar_spread_by_hand(state):
    # 5 bps half spread: A 1,000,000 * 0.0005 = 500.00 ; B 32,000 * 0.0005 = 16.00
    np.testing.assert_allclose(Spread(5.0).evaluate(TRADES, state), [500.0, 16.0], atol=1e-9)


def test_per_asset_spread_by_hand(state):
    # A 2 bps: 200.00 ; B 10 bps: 32.00
    for hs in ({"A": 2.0, "B": 10.0}, pd.Series({"B": 10.0, "A": 2.0})):
        np.testing.assert_allclose(Spread(hs).evaluate(TRADES, state), [200.0, 32.0], atol=1e-9)
    # B missing, falls back to default 7 bps: 32,000 * 0.0007 = 22.40
    np.testing.assert_allclose(Spread({"A": 2.0}, default_bps=7.0).evaluate(TRADES, state),
                               [200.0, 22.40], atol=1e-9)
    # half spreads are returned as fractions of price
    np.testing.assert_allclose(Spread(3.0).half_spreads(state), [3e-4, 3e-4], rtol=1e-15)


@pytest.mark.parametrize(
    ("coef", "exponent", "expected", "impact"),
    [
        # exponent 1.5 (square-root price impact):
        #   A: 0.02 * sqrt(0.01) = 0.002 ; 1,000,000 * 0.002 = 2,000.00
        #   B: 0.03 * sqrt(0.04) = 0.006 ;    32,000 * 0.006 =   192.00
        (1.0, 1.5, [2_000.0, 192.0], [0.002, 0.006]),
        (0.5, 1.5, [1_000.0, 96.0], [0.001, 0.003]),
        # exponent 2 (linear price impact): A 0.02*0.01 = 2e-4 -> 200.00 ; B 0.03*0.04 -> 38.40
        (1.0, 2.0, [200.0, 38.40], [2e-4, 1.2e-3]),
        # exponent 1 (impact proportional to volatility): A 20,000.00 ; B 960.00
        (1.0, 1.0, [20_000.0, 960.0], [0.02, 0.03]),
    ],
)
def test_market_impact_by_hand(state, coef, exponent, expected, impact):
    model = MarketImpact(coef=coef, exponent=exponent)
    np.testing.assert_allclose(model.evaluate(TRADES, state), expected, atol=1e-9)
    np.testing.assert_allclose(model.evaluate(-TRADES, state), expected, atol=1e-9)
    np.testing.assert_allclose(model.price_impact(TRADES, state), impact, rtol=1e-12)
    assert model.is_slippage


def test_spread_plus_impact_total(state):
    # 5 bps spread + 3/2 impact: 500 + 16 + 2,000 + 192 = 2,708.00
    total = Spread(5.0).evaluate(TRADES, state).sum() + MarketImpact().evaluate(TRADES, state).sum()
    assert total == pytest.approx(2_708.0, abs=1e-9)


def test_impact_coefficients_by_hand(state):
    # equity = 50,000 + 1,000 * 100 = 150,000
    # a_i = coef * sigma_i * (V / (p_i * ADV_i)) ** 0.5
    #   A: 0.02 * (150,000 / 100,000,000) ** 0.5 ; B: 0.03 * (150,000 / 800,000) ** 0.5
    np.testing.assert_allclose(MarketImpact().coefficients(state),
                               [0.02 * math.sqrt(0.0015), 0.03 * math.sqrt(0.1875)], rtol=1e-12)


def test_impact_ignores_missing_data_of_untraded_assets():
    s = PortfolioState({}, 1_000.0, {"A": 10.0, "B": 5.0}, adv={"A": 1_000.0},
                       volatility={"A": 0.01})
    # A: 10 sh of 1,000 ADV -> 0.01 * sqrt(0.01) = 0.001 ; notional 100 -> 0.10
    np.testing.assert_allclose(MarketImpact().evaluate(np.array([10.0, 0.0]), s), [0.1, 0.0])
    with pytest.raises(InputError) as info:
        MarketImpact().evaluate(np.array([10.0, 1.0]), s)
    assert (info.value.asset, info.value.field) == ("B", "volatility")
    # the optimizer's face does not raise: B cannot be priced, so it is untradable
    # (coefficient 0; the rebalancers freeze it and report it)
    a = MarketImpact().coefficients(s)
    assert a[1] == 0.0 and a[0] > 0
    np.testing.assert_array_equal(MarketImpact().tradable(s), [True, False])
    assert "volatility" in MarketImpact().untradable_reasons(s)["B"]


@pytest.mark.parametrize(("adv", "field"), [(0.0, "adv"), (math.nan, "adv")])
def test_impact_needs_positive_adv(adv, field):
    s = PortfolioState({}, 1_000.0, {"A": 10.0, "B": 5.0}, adv={"A": 1_000.0, "B": adv},
                       volatility={"A": 0.01, "B": 0.01})
    with pytest.raises(InputError) as info:
        MarketImpact().evaluate(np.array([0.0, 3.0]), s)
    assert (info.value.asset, info.value.field) == ("B", field)


@pytest.mark.parametrize(("kw", "field"), [
    ({"coef": -1.0}, "MarketImpact.coef"), ({"coef": math.nan}, "MarketImpact.coef"),
    ({"exponent": 0.9}, "MarketImpact.exponent"), ({"exponent": 2.5}, "MarketImpact.exponent"),
    ({"exponent": math.nan}, "MarketImpact.exponent"),
])
def test_impact_bad_parameters(kw, field):
    with pytest.raises(InputError) as info:
        MarketImpact(**kw)
    assert info.value.field == field


@pytest.mark.parametrize(("spread", "asset"), [
    ({"A": 2.0}, "B"),                      # missing, no default
    ({"A": 2.0, "B": -1.0}, "B"),           # negative
    ({"A": math.nan, "B": 1.0}, "A"),       # NaN
    (pd.Series([1.0, 2.0, 3.0], index=["A", "A", "B"]), "A"),  # duplicate ticker
])
def test_spread_bad_inputs(state, spread, asset):
    with pytest.raises(InputError) as info:
        Spread(spread).evaluate(TRADES, state)
    assert (info.value.asset, info.value.field) == (asset, "half_spread_bps")


def test_negative_scalar_spread(state):
    with pytest.raises(InputError) as info:
        Spread(-1.0).evaluate(TRADES, state)
    assert info.value.field == "half_spread_bps" and info.value.asset == "A"
