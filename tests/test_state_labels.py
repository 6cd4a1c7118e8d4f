"""PortfolioState per-asset data given without tickers (rev7 finding, state.py is bt7's).

Today ``PortfolioState(..., adv=pd.Series([1e6, 2e6]))`` (pandas' default index 0..1)
keeps ADV NaN for every asset: the values match no ticker and are dropped, so
``MarketImpact`` then freezes every asset as untradable ("no ADV") instead of naming
the unlabelled input. Same for ``volatility``, ``lot_sizes``, ``multipliers`` and
``groups``. Expected: an InputError naming the field, as for targets.
"""

from __future__ import annotations

import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.state import PortfolioState


@pytest.mark.xfail(strict=True, reason="state.py (bt7): a per-asset Series with pandas' "
                   "default index is dropped (NaN / None / defaults) instead of an InputError")
@pytest.mark.parametrize("name, values", [
    ("adv", pd.Series([1e6, 2e6])), ("volatility", pd.Series([0.02, 0.03])),
    ("lot_sizes", pd.Series([100.0, 100.0])), ("multipliers", pd.Series([50.0, 50.0])),
    ("groups", pd.Series(["x", "y"])),
])
def test_per_asset_state_data_without_tickers_is_an_error(name, values) -> None:
    with pytest.raises(InputError):
        PortfolioState({"A": 1.0}, 100.0, {"A": 1.0, "B": 2.0}, **{name: values})
