"""Per-asset cost inputs without tickers (rev7).

Before: ``Spread(pd.Series([5.0] * 4), default_bps=1.0)`` charged 1 bp on every asset
(the 5 bp values, keyed 0..3, matched no ticker and were dropped);
``BorrowCost(pd.Series([...]), default=0.0)`` charged nothing; a duplicate ticker in
a ``BorrowCost`` rate Series was a pandas ``ValueError`` at the first plan.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt.costs import BorrowCost, Spread
from rebalopt.errors import InputError
from rebalopt.state import PortfolioState

TICKERS = ["A", "B", "C", "D"]


def test_spread_series_without_tickers_is_an_error() -> None:
    with pytest.raises(InputError, match="default index") as e:
        Spread(pd.Series([5.0] * 4), default_bps=1.0)
    assert e.value.field == "half_spread_bps"
    # labelled: 5 bp of notional on every trade (oracle: the formula)
    st = PortfolioState(dict.fromkeys(TICKERS, 0.0), 1e5,
                        {"A": 10.0, "B": 20.0, "C": 30.0, "D": 40.0})
    q = np.array([10.0, -5.0, 0.0, 2.0])
    got = Spread(pd.Series(5.0, index=TICKERS), default_bps=1.0).evaluate(q, st)
    np.testing.assert_allclose(got, np.abs(q) * st.prices * 5e-4)


@pytest.mark.parametrize("rate, match", [
    (pd.Series([0.01] * 4), "default index"),
    (pd.Series([0.01, 0.02], index=["A", "A"]), "duplicate ticker"),
    ({"A": "1%"}, "must be a number"),
    ({"A": float("nan")}, "NaN"),
    (np.array([0.01] * 4), "mapping keyed by ticker"),
])
def test_borrow_rates_are_checked_by_ticker_at_construction(rate, match) -> None:
    with pytest.raises(InputError, match=match) as e:
        BorrowCost(rate, default=0.0)
    assert e.value.field == "BorrowCost.rate"


def test_labelled_borrow_rates_are_read() -> None:
    st = PortfolioState({"A": -100.0, "B": 0.0}, 1e5, {"A": 10.0, "B": 20.0})
    cost = BorrowCost(pd.Series({"A": 0.05, "B": 0.02}))
    np.testing.assert_allclose(cost.rates(st), [0.05, 0.02])


@pytest.mark.parametrize("kw, field", [
    ({"rate": True}, "BorrowCost.rate"), ({"rate": "2%"}, "BorrowCost.rate"),
    ({"rate": -0.01}, "BorrowCost.rate"), ({"rate": {"A": 0.01}, "default": True},
                                            "BorrowCost.default"),
    ({"rate": {"A": 0.01}, "default": "x"}, "BorrowCost.default"),
])
def test_borrow_scalars_are_numbers(kw, field) -> None:
    # before: True was a 100% borrow rate, default="x" a TypeError
    with pytest.raises(InputError) as e:
        BorrowCost(**kw)
    assert e.value.field == field
