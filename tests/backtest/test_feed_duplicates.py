"""DataFeed.from_long finds duplicate (date, ticker) rows by counting cells; the error
names the first duplicate as np.unique's sorted order does (the oracle, computed here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt.backtest import DataFeed
from rebalopt.errors import InputError


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["A", "B", "C"])),
                     min_size=1, max_size=12))
def test_duplicates_found_and_named_like_the_sorted_oracle(rows):
    dates = pd.to_datetime("2021-01-04") + pd.to_timedelta([d for d, _ in rows], unit="D")
    frame = pd.DataFrame({"date": dates, "ticker": [t for _, t in rows],
                          "close": np.arange(1.0, len(rows) + 1.0)})
    keys = [(d, t) for d, t in rows]
    if len(set(keys)) == len(keys):
        feed = DataFeed.from_long(frame)
        assert feed.close.shape == (len({d for d, _ in rows}), len({t for _, t in rows}))
        return
    dup = min(k for k in set(keys) if keys.count(k) > 1)  # smallest (date, ticker) cell
    first = keys.index(dup)
    with pytest.raises(InputError) as err:
        DataFeed.from_long(frame)
    assert err.value.asset == rows[first][1]
    assert str(dates[first].date()) in str(err.value)
