"""Hypothesis property tests over random factor models and covariances."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt.risk import Covariance, FactorModel, sample_covariance


@st.composite
def factor_models(draw: st.DrawFn) -> tuple[FactorModel, pd.DataFrame, pd.DataFrame, pd.Series]:
    n = draw(st.integers(1, 15))
    k = draw(st.integers(0, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    names = [f"A{i}" for i in range(n)]
    factors = [f"F{j}" for j in range(k)]
    B = pd.DataFrame(rng.normal(size=(n, k)) * draw(st.floats(0.0, 3.0)), index=names,
                     columns=factors)
    rank = draw(st.integers(0, k))  # possibly singular factor covariance
    M = rng.normal(size=(k, rank)) * 0.2
    F = pd.DataFrame(M @ M.T, index=factors, columns=factors)
    zero_idio = draw(st.booleans())
    delta = pd.Series(0.0 if zero_idio else rng.uniform(0.0, 0.1, n), index=names)
    return FactorModel(B, F, delta), B, F, delta


@settings(deadline=None, max_examples=150)
@given(factor_models(), st.integers(0, 2**31 - 1))
def test_factor_model_root_properties(case: tuple, seed: int) -> None:  # type: ignore[type-arg]
    model, B, F, delta = case
    rng = np.random.default_rng(seed)
    n = len(B)
    perm = rng.permutation(n)
    universe = pd.Index([B.index[p] for p in perm])
    root = model.root(universe)
    Bp = B.to_numpy()[perm]
    dense = Bp @ F.to_numpy() @ Bp.T + np.diag(delta.to_numpy()[perm])
    scale = max(1.0, np.abs(dense).max())
    assert root.G.shape[0] == n and root.G.shape[1] <= F.shape[0]
    np.testing.assert_allclose(root.covariance(), dense, atol=1e-10 * scale)
    d = rng.normal(size=n)
    v = root.variance(d)
    assert v >= 0
    assert abs(v - d @ dense @ d) <= 1e-9 * scale * max(1.0, float(d @ d))
    assert root.tracking_error(d) == np.sqrt(v)
    # the cache returns the same object for the same order
    assert model.root(universe) is root


@settings(deadline=None, max_examples=60)
@given(st.integers(2, 12), st.integers(2, 40), st.integers(0, 2**31 - 1),
       st.sampled_from(["ledoit_wolf", None, 0.5]))
def test_sample_covariance_root_properties(n: int, T: int, seed: int, shrink: object) -> None:
    rng = np.random.default_rng(seed)
    R = pd.DataFrame(rng.normal(0, 0.02, (T, n)), columns=[f"S{i}" for i in range(n)])
    model = sample_covariance(R, shrinkage=shrink)  # type: ignore[arg-type]
    sig = model.sigma.to_numpy()
    assert np.allclose(sig, sig.T)
    assert np.linalg.eigvalsh(sig).min() >= -1e-12 * np.abs(sig).max()
    root = model.root(pd.Index(R.columns[::-1]))
    np.testing.assert_allclose(root.covariance(), sig[::-1, ::-1], atol=1e-12 * np.abs(sig).max())
    # shrinking towards mu I keeps the average variance (trace) unchanged
    ref = sample_covariance(R, shrinkage=None).sigma.to_numpy()
    assert np.trace(sig) == pytest.approx(np.trace(ref), rel=1e-10)


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_repaired_covariance_is_psd(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A = 0.5 * (A + A.T)
    np.fill_diagonal(A, np.abs(np.diag(A)))  # a negative variance is rejected, not repaired
    names = [f"X{i}" for i in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = Covariance(pd.DataFrame(A, index=names, columns=names))
    sig = model.sigma.to_numpy()
    lam = np.linalg.eigvalsh(A)
    assert np.linalg.eigvalsh(sig).min() >= -1e-12 * max(1.0, np.abs(lam).max())
    dist = np.linalg.norm(A - sig)
    assert abs(dist - np.sqrt(np.sum(np.clip(lam, None, 0) ** 2))) <= 1e-10 * max(1.0, dist)
    np.testing.assert_allclose(model.root(pd.Index(names)).covariance(), sig,
                               atol=1e-9 * max(1.0, np.abs(sig).max()))
