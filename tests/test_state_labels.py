"""PortfolioState per-asset data given without tickers.

``PortfolioState(..., adv=pd.Series([1e6, 2e6]))`` (pandas' default index 0..1) used to
keep ADV NaN for every asset: the values matched no ticker and were dropped, so
``MarketImpact`` then froze every asset as untradable ("no ADV") instead of naming
the unlabelled input. Same for ``volatility``, ``lot_sizes``, ``multipliers``,
``groups``, holdings and prices. Now an InputError naming the field, as for targets.
"""

from __future__ import annotations

import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.state import PortfolioState


@pytest.mark.parametrize("name, values", [
    ("adv", pd.Series([1e6, 2e6])), ("volatility", pd.Series([0.02, 0.03])),
    ("lot_sizes", pd.Series([100.0, 100.0])), ("multipliers", pd.Series([50.0, 50.0])),
    ("groups", pd.Series(["x", "y"])),
])
def test_per_asset_state_data_without_tickers_is_an_error(name, values) -> None:
    with pytest.raises(InputError, match="default index") as e:
        PortfolioState({"A": 1.0}, 100.0, {"A": 1.0, "B": 2.0}, **{name: values})
    assert e.value.field in (name, name.rstrip("s"))  # the field, as state errors name it


def test_holdings_and_prices_without_tickers_are_errors() -> None:
    with pytest.raises(InputError, match="default index"):
        PortfolioState(pd.Series([1.0, 2.0]), 100.0, {"A": 1.0, "B": 2.0})
    with pytest.raises(InputError, match="default index"):
        PortfolioState({"A": 1.0}, 100.0, pd.Series([1.0, 2.0]))


def test_labelled_series_still_read() -> None:
    st = PortfolioState({"A": 1.0}, 100.0, {"A": 1.0, "B": 2.0},
                        adv=pd.Series([1e6, 2e6], index=["A", "B"]))
    assert list(st.adv) == [1e6, 2e6]
