"""PortfolioState: derived quantities against hand computation, and every bad input.

Book used by the hand-computed tests (numbers worked out in the comments):

    cash 50,000
    AAA  300 shares @ 50             value  15,000
    SHRT -100 shares @ 20            value  -2,000   (a short)
    MES  1 contract @ 4,000 x 5      value  20,000   (multiplier 5 currency/point)
    BAD  not held, price NaN         left out of the universe
    ZERO not held, price 0           left out of the universe
    equity = 50,000 + 15,000 - 2,000 + 20,000 = 83,000
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.state import PortfolioState


def book(**changes) -> PortfolioState:
    kw = {
        "holdings": {"AAA": 300, "SHRT": -100, "MES": 1},
        "cash": 50_000.0,
        "prices": {"AAA": 50.0, "SHRT": 20.0, "MES": 4_000.0, "BAD": math.nan, "ZERO": 0.0},
        "adv": {"AAA": 1e6, "SHRT": 2e5},
        "volatility": {"AAA": 0.02, "SHRT": 0.03, "MES": 0.01},
        "groups": {"AAA": "Tech", "SHRT": "Energy"},
        "multipliers": {"MES": 5.0},
    }
    kw.update(changes)
    holdings, cash, prices = kw.pop("holdings"), kw.pop("cash"), kw.pop("prices")
    return PortfolioState(holdings, cash, prices, **kw)


def test_derived_quantities_by_hand():
    s = book()
    assert list(s.assets) == ["AAA", "SHRT", "MES"]
    assert s.n == 3
    assert s.unpriced.keys() == {"BAD", "ZERO"} and s.unpriced["ZERO"] == 0.0
    np.testing.assert_array_equal(s.holdings, [300, -100, 1])
    np.testing.assert_array_equal(s.values, [15_000, -2_000, 20_000])
    assert s.equity == pytest.approx(83_000, abs=1e-9)
    np.testing.assert_allclose(s.weights, np.array([15_000, -2_000, 20_000]) / 83_000, rtol=1e-15)
    assert s.cash_weight == pytest.approx(50_000 / 83_000, rel=1e-15)
    assert s.weights.sum() + s.cash_weight == pytest.approx(1.0, rel=1e-15)
    # optional data: missing ADV/vol are NaN, missing lot size / multiplier default to 1
    np.testing.assert_array_equal(s.adv[:2], [1e6, 2e5])
    assert math.isnan(s.adv[2])
    np.testing.assert_array_equal(s.volatility, [0.02, 0.03, 0.01])
    np.testing.assert_array_equal(s.lot_sizes, [1, 1, 1])
    np.testing.assert_array_equal(s.multipliers, [1, 1, 5])
    assert list(s.groups) == ["Tech", "Energy", None]
    assert s.index_of("MES") == 2
    assert "equity=83,000.00" in repr(s)


def test_series_and_mappings_agree_and_zero_holdings_are_dropped():
    a = book()
    b = PortfolioState(
        pd.Series({"AAA": 300.0, "SHRT": -100.0, "MES": 1.0, "FLAT": 0.0}),  # FLAT: no price, not held
        50_000,
        pd.Series({"AAA": 50.0, "SHRT": 20.0, "MES": 4_000.0}),
        multipliers=pd.Series({"MES": 5.0}),
    )
    assert list(b.assets) == list(a.assets)
    np.testing.assert_array_equal(b.values, a.values)
    assert b.equity == a.equity


def test_after_trades_by_hand():
    s = book()
    # sell 100 AAA (+5,000 cash), buy 1 MES (-20,000 cash), pay 12.50 of costs
    # cash 50,000 + 5,000 - 20,000 - 12.50 = 34,987.50; equity 83,000 - 12.50
    t = s.after(np.array([-100.0, 0.0, 1.0]), 12.5)
    np.testing.assert_array_equal(t.holdings, [200, -100, 2])
    assert t.cash == pytest.approx(34_987.5, abs=1e-9)
    assert t.equity == pytest.approx(82_987.5, abs=1e-9)
    # optional data survives the copy
    np.testing.assert_array_equal(t.multipliers, s.multipliers)
    np.testing.assert_array_equal(t.volatility, s.volatility)
    assert list(t.groups) == list(s.groups)


def test_replace_and_to_frame():
    s = book()
    r = s.replace(cash=0.0)
    assert r.equity == pytest.approx(33_000)
    f = s.to_frame()
    assert list(f.columns) == ["price", "holding", "value", "weight", "adv", "volatility",
                               "group", "lot_size", "multiplier"]
    assert f.loc["MES", "value"] == 20_000
    assert list(f.index) == ["AAA", "SHRT", "MES"]


def test_align_and_target_weights():
    s = book()
    np.testing.assert_array_equal(s.target_weights({"AAA": 0.5}), [0.5, 0.0, 0.0])
    # names, never positions (issue 13 item 2): a bare array is rejected, the same numbers
    # labelled by ticker are read
    expect_input_error(lambda: s.target_weights(np.array([0.1, 0.0, 0.2])), None, "targets")
    np.testing.assert_array_equal(
        s.target_weights(pd.Series([0.1, 0.0, 0.2], index=s.assets)), [0.1, 0.0, 0.2])
    # a zero weight for an asset outside the universe is harmless
    np.testing.assert_array_equal(s.target_weights({"AAA": 0.5, "BAD": 0.0, "NOPE": 0}),
                                  [0.5, 0.0, 0.0])
    np.testing.assert_array_equal(s.target_weights(pd.Series({"MES": "0.25"})), [0, 0, 0.25])


def test_a_flag_is_not_a_number():
    """``{"AAA": True}`` was a target of 1.0 (pandas reads True as 1): the plan put the
    whole book in AAA. Flags are errors naming the asset and field wherever per-asset
    numbers are read; text that reads as a number stays accepted (above)."""
    s = book()
    expect_input_error(lambda: s.target_weights({"AAA": True}), "AAA", "target weight")
    expect_input_error(lambda: s.target_weights(pd.Series([False, True, False], index=s.assets)),
                       "AAA", "target weight")
    expect_input_error(lambda: s.target_weights(pd.Series([0.5, True, 0.0], index=s.assets)),
                       "SHRT", "target weight")
    expect_input_error(lambda: s.target_weights({"AAA": 0.2, "MES": np.True_}), "MES",
                       "target weight")
    expect_input_error(lambda: PortfolioState({"AAA": True}, 0.0, {"AAA": 10.0}), "AAA",
                       "holdings")
    expect_input_error(lambda: s.align(np.array([True, False, False]), "volatility"), None,
                       "volatility")


def expect_input_error(fn, asset, field):
    with pytest.raises(InputError) as info:
        fn()
    err = info.value
    assert err.asset == asset, str(err)
    assert err.field == field, str(err)
    if asset is not None:
        assert repr(asset) in str(err)
    return err


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("bad_price", [NAN, INF, -INF, 0.0, -5.0, None, "n/a"])
def test_held_asset_with_invalid_price(bad_price):
    expect_input_error(lambda: book(prices={"AAA": bad_price, "SHRT": 20.0, "MES": 4_000.0}),
                       "AAA", "price")


def test_held_asset_without_price():
    expect_input_error(lambda: book(prices={"AAA": 50.0, "MES": 4_000.0}), "SHRT", "price")


@pytest.mark.parametrize("bad", [NAN, INF, -INF, "x"])
def test_bad_holdings(bad):
    expect_input_error(lambda: book(holdings={"AAA": 300, "SHRT": bad}), "SHRT", "holdings")


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("holdings", "holdings"), ("price", "prices"), ("adv", "adv"),
        ("volatility", "volatility"), ("group", "groups"), ("lot_size", "lot_sizes"),
        ("multiplier", "multipliers"),
    ],
)
def test_duplicate_tickers(field, kw):
    values = {"holdings": [300.0, 1.0], "prices": [50.0, 51.0], "groups": ["Tech", "Tech"]}
    dup = pd.Series(values.get(kw, [1.0, 2.0]), index=["AAA", "AAA"])
    if kw == "prices":
        dup = pd.concat([dup, pd.Series({"SHRT": 20.0, "MES": 4_000.0})])
    expect_input_error(lambda: book(**{kw: dup}), "AAA", field)


@pytest.mark.parametrize(
    ("kw", "value", "field"),
    [
        ("adv", -1.0, "adv"),
        ("adv", INF, "adv"),
        ("volatility", -0.01, "volatility"),
        ("volatility", INF, "volatility"),
        ("lot_sizes", 0.0, "lot_size"),
        ("lot_sizes", -100.0, "lot_size"),
        ("lot_sizes", NAN, "lot_size"),
        ("multipliers", 0.0, "multiplier"),
        ("multipliers", -5.0, "multiplier"),
    ],
)
def test_bad_optional_data(kw, value, field):
    expect_input_error(lambda: book(**{kw: {"AAA": 1.0, "SHRT": value}}), "SHRT", field)


@pytest.mark.parametrize("cash", [-83_000.0, -100_000.0])
def test_non_positive_equity(cash):
    err = expect_input_error(lambda: book(cash=cash), None, "equity")
    assert "equity" in str(err)


@pytest.mark.parametrize("cash", [NAN, INF, "lots"])
def test_bad_cash(cash):
    expect_input_error(lambda: book(cash=cash), None, "cash")


@pytest.mark.parametrize("prices", [{}, {"A": NAN, "B": 0.0}, pd.Series(dtype=float)])
def test_empty_universe(prices):
    err = expect_input_error(lambda: PortfolioState({}, 1000.0, prices), None, "price")
    assert "empty universe" in str(err)


def test_prices_of_wrong_type():
    expect_input_error(lambda: PortfolioState({}, 1000.0, [1.0, 2.0]), None, "price")


def test_invalid_data_outside_universe_is_ignored():
    # a negative ADV for an asset that is not in the universe cannot be used anyway
    s = book(adv={"AAA": 1e6, "ELSEWHERE": -1.0})
    assert s.adv[0] == 1e6


@pytest.mark.parametrize(
    ("targets", "asset"),
    [
        ({"AAA": 0.1, "BAD": 0.2}, "BAD"),     # NaN price
        ({"ZERO": 0.2}, "ZERO"),               # zero price
        ({"NOPE": 0.2}, "NOPE"),               # unknown asset
        ({"AAA": NAN}, "AAA"),
        ({"SHRT": INF}, "SHRT"),
        ({"MES": -INF}, "MES"),
        ({"MES": "lots"}, "MES"),
    ],
)
def test_bad_target_weights(targets, asset):
    s = book()
    err = expect_input_error(lambda: s.target_weights(targets), asset, "target weight")
    if asset in ("BAD", "ZERO"):
        assert "price" in str(err)


def test_duplicate_targets_and_wrong_length_arrays():
    s = book()
    expect_input_error(lambda: s.target_weights(pd.Series([0.1, 0.2], index=["AAA", "AAA"])),
                       "AAA", "target weight")
    for arr in (np.zeros(2), np.zeros(4), np.zeros((3, 1))):
        err = expect_input_error(lambda a=arr: s.target_weights(a), None, "targets")
        assert "3 assets" in str(err)


def test_index_of_unknown_asset():
    expect_input_error(lambda: book().index_of("NOPE"), "NOPE", None)
