"""The ml4t drop-in and identity risk: a warning, and a covariance window (no ml4t needed)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from rebalopt import Covariance, InputError, NaiveRebalancer, OptimalRebalancer
from rebalopt.adapters.ml4t import Ml4tExecutor
from rebalopt.risk.estimators import sample_covariance


def test_identity_risk_warns_and_a_window_does_not() -> None:
    with pytest.warns(UserWarning, match="identity risk"):
        Ml4tExecutor(OptimalRebalancer())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Ml4tExecutor(OptimalRebalancer(), covariance_window=20)
        Ml4tExecutor(NaiveRebalancer())  # no risk model to speak of
        cov = Covariance(pd.DataFrame(np.eye(2) * 0.04, index=["A", "B"], columns=["A", "B"]))
        Ml4tExecutor(OptimalRebalancer(risk=cov))
    with pytest.raises(InputError):
        Ml4tExecutor(NaiveRebalancer(), covariance_window=1)


def test_covariance_window_matches_the_estimator_on_the_same_returns() -> None:
    rng = np.random.default_rng(0)
    closes = pd.DataFrame(100 * np.cumprod(1 + 0.01 * rng.standard_normal((40, 3)), axis=0),
                          columns=["A", "B", "C"])
    ex = Ml4tExecutor(NaiveRebalancer(), covariance_window=30)
    for t in range(30):
        ex.observe({a: {"close": float(closes.loc[t, a])} for a in closes})
    assert ex.covariance() is None  # 30 closes = 29 returns: window not full
    for t in range(30, 40):
        ex.observe({a: {"close": float(closes.loc[t, a])} for a in closes})
    got = ex.covariance()
    # oracle: the library estimator on the last 30 returns of the same closes
    ref = sample_covariance(closes.pct_change().iloc[-30:], "ledoit_wolf", 252.0)
    np.testing.assert_allclose(got.sigma.to_numpy(), ref.sigma.to_numpy())
    assert got.missing == "average" and list(got.sigma.index) == ["A", "B", "C"]
