"""The estimators' fast paths against the general ones (the oracles): a complete panel
(``nan="drop"``) demeaned without masks, and a FactorModel built from an estimator's
arrays without the user-input checks, give the same numbers bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt.errors import InputError
from rebalopt.risk import FactorModel, pca_factor_model
from rebalopt.risk import estimators as est


def _panel(seed: int, holes: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T, n = 40, 9
    X = rng.normal(0.0, 0.01, (T, n)) + rng.normal(0.0, 0.01, (T, 1))
    R = pd.DataFrame(X, columns=[f"A{i}" for i in range(n)])
    if holes:
        R.iloc[rng.integers(0, T, 5), rng.integers(0, n, 5)] = np.nan
    return R


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), holes=st.booleans())
def test_drop_deviations_equal_the_masked_formulas(seed, holes):
    R = _panel(seed, holes)
    tickers, D, pair = est._deviations(R, "drop")
    X = R.to_numpy(dtype=float)
    obs = ~np.isnan(X)
    X = X[obs.all(axis=1)]
    obs = np.ones_like(X, dtype=bool)  # the general path of a complete panel
    count = obs.sum(axis=0)
    mean = np.where(obs, X, 0.0).sum(axis=0) / count
    o = obs.astype(float)
    assert list(tickers) == list(R.columns)
    assert D.tobytes() == np.where(obs, X - mean, 0.0).tobytes()
    assert pair.tobytes() == (o.T @ o).tobytes()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), missing=st.sampled_from(["raise", "average"]))
def test_pca_model_equals_the_checked_constructor(seed, missing):
    m = pca_factor_model(_panel(seed, False), k=3, missing=missing)
    ref = FactorModel(m.loadings.copy(), m.factor_cov.copy(), m.idio_var.copy(),
                      missing=missing)
    for a, b in ((m._B, ref._B), (m._F, ref._F), (m._LF, ref._LF), (m._delta, ref._delta)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
        if isinstance(a, (pd.DataFrame, pd.Series)):
            assert a.index.equals(b.index)
    assert m._B.columns.equals(ref._B.columns) and m.repaired == ref.repaired
    assert m.missing == ref.missing and m.psd == ref.psd


def test_estimated_rejects_non_finite_numbers():
    idx = pd.Index(["A", "B"], dtype=object)
    f = pd.Index(["pc1"], dtype=object)
    with pytest.raises(InputError) as err:
        FactorModel._estimated(np.array([[1.0], [np.nan]]), np.eye(1), np.ones(2), idx, f)
    assert err.value.field == "loadings"
