"""numbers_by_asset: the array-wise path for numeric Series against the per-value rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt._checks import numbers_by_asset
from rebalopt.errors import InputError


def per_value(values: pd.Series, field: str) -> pd.Series:
    """The per-value rule (the mapping path), the oracle of the array-wise one."""
    return numbers_by_asset(dict(values.items()) if not values.index.has_duplicates
                            else _Pairs(values), field)


class _Pairs(dict):
    """A mapping whose items() repeat keys (a Series with duplicate tickers)."""

    def __init__(self, s: pd.Series) -> None:
        super().__init__()
        self._items = list(s.items())

    def items(self):  # type: ignore[override]
        return self._items


tickers = st.sampled_from(["AAA", "BBB", "CCC", "DDD", "E", "F.G", "7203"])
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.integers(-10, 10).map(float))


def outcome(fn, s: pd.Series):
    try:
        r = fn(s, "Spread.half_spread_bps")
    except InputError as exc:
        return ("error", exc.asset, exc.field, str(exc))
    return ("ok", list(r.index), r.index.dtype, r.to_numpy().tolist())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(tickers, floats), min_size=0, max_size=8),
       st.sampled_from(["object", "str"]))
def test_array_path_equals_per_value_rule(pairs, index_dtype) -> None:
    keys = pd.Index([k for k, _ in pairs], dtype=index_dtype)
    s = pd.Series([v for _, v in pairs], index=keys, dtype=float)
    got, want = outcome(numbers_by_asset, s), outcome(per_value, s)
    if want[0] == "ok":
        assert got[0] == "ok" and got[1] == want[1] and got[2] == object
        np.testing.assert_array_equal(got[3], want[3])
    else:
        assert got == want


def test_integer_series_and_integer_tickers() -> None:
    s = pd.Series(np.array([3, 5], dtype=np.int64), index=pd.Index([10, 20]))
    r = numbers_by_asset(s, "f")
    assert list(r.index) == ["10", "20"] and r.dtype == float
    assert r.tolist() == [3.0, 5.0]


def test_nan_names_the_asset_and_field() -> None:
    s = pd.Series([1.0, np.nan, np.nan], index=["A", "B", "C"])
    with pytest.raises(InputError) as ei:
        numbers_by_asset(s, "Spread.half_spread_bps")
    assert ei.value.asset == "B" and ei.value.field == "Spread.half_spread_bps"


def test_bool_series_still_refused() -> None:
    with pytest.raises(InputError, match="must be a number"):
        numbers_by_asset(pd.Series([True, False], index=["A", "B"]), "f")
