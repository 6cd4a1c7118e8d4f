"""The array path of the schedules' return windows equals the pandas expression bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt.research import inverse_volatility
from rebalopt.research.targets import _Windows
from rebalopt.risk import pca_factor_model, sample_covariance


def _pandas_window(prices: pd.DataFrame, t: int, lookback: int) -> pd.DataFrame:
    """The schedules' former frame arithmetic (the oracle)."""
    p = prices.iloc[t - lookback: t + 1]
    ok = p.notna().all().to_numpy() & (p > 0).all().to_numpy()
    p = p.loc[:, ok]
    return (p / p.shift(1) - 1.0).iloc[1:]


@st.composite
def _panels(draw: st.DrawFn) -> pd.DataFrame:
    T = draw(st.integers(8, 40))
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    prices = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (T, n)), axis=0))
    holes = rng.random((T, n)) < draw(st.sampled_from([0.0, 0.02, 0.2]))
    prices[holes] = np.nan
    if draw(st.booleans()):  # a non-positive or infinite price drops the asset too
        prices[rng.integers(T), rng.integers(n)] = draw(st.sampled_from([0.0, -1.0, np.inf]))
    idx = pd.bdate_range("2020-01-01", periods=T)
    return pd.DataFrame(prices, index=idx, columns=[f"A{j}" for j in range(n)])


@settings(max_examples=150, deadline=None)
@given(_panels(), st.data())
def test_window_equals_the_frame_arithmetic(prices: pd.DataFrame, data: st.DataObject) -> None:
    lookback = data.draw(st.integers(2, len(prices) - 1))
    t = data.draw(st.integers(lookback, len(prices) - 1))
    want = _pandas_window(prices, t, lookback)
    got = _Windows(prices)(t, lookback)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_estimators_see_the_same_bits(small_prices: pd.DataFrame) -> None:
    """Memory layout matters to a reduction's order: the estimators' answers on the
    array window are bit-identical to those on the frame window."""
    windows = _Windows(small_prices)
    checked = 0
    for t in range(70, len(small_prices), 37):
        a, b = _pandas_window(small_prices, t, 60), windows(t, 60)
        assert np.array_equal(inverse_volatility(a).to_numpy(), inverse_volatility(b).to_numpy())
        ma = pca_factor_model(a, k=min(3, a.shape[1]), missing="average")
        mb = pca_factor_model(b, k=min(3, b.shape[1]), missing="average")
        for x, y in ((ma._B, mb._B), (ma._F, mb._F), (ma._delta, mb._delta)):
            assert np.array_equal(x, y)
        ca, cb = sample_covariance(a), sample_covariance(b)
        assert np.array_equal(ca.matrix.to_numpy(), cb.matrix.to_numpy())
        checked += 1
    assert checked >= 3
