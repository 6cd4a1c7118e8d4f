"""Estimators against independent oracles: scikit-learn's LedoitWolf and
EmpiricalCovariance, NumPy's SVD, and brute-force pairwise loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _risk_helpers import random_returns
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from rebalopt.risk import ledoit_wolf_shrinkage, pca_factor_model, sample_covariance


@pytest.mark.parametrize(("T", "n", "seed"), [(250, 10, 0), (40, 30, 1), (15, 25, 2), (500, 3, 3)])
def test_ledoit_wolf_matches_sklearn(T: int, n: int, seed: int) -> None:
    R = random_returns(T, n, seed)
    model = sample_covariance(R, shrinkage="ledoit_wolf", periods_per_year=252)
    lw = LedoitWolf().fit(R.to_numpy())
    np.testing.assert_allclose(model.sigma.to_numpy() / 252, lw.covariance_, rtol=1e-10,
                               atol=1e-16)
    X = R.to_numpy() - R.to_numpy().mean(axis=0)
    assert ledoit_wolf_shrinkage(X) == pytest.approx(lw.shrinkage_, rel=1e-10)
    assert list(model.sigma.index) == list(R.columns)


def test_unshrunk_and_fixed_shrinkage_by_hand() -> None:
    R = random_returns(60, 5, 4)
    emp = EmpiricalCovariance().fit(R.to_numpy()).covariance_
    none = sample_covariance(R, shrinkage=None, periods_per_year=12).sigma.to_numpy()
    np.testing.assert_allclose(none, 12 * emp, rtol=1e-12)
    mu = np.trace(emp) / 5
    fixed = sample_covariance(R, shrinkage=0.3, periods_per_year=12).sigma.to_numpy()
    np.testing.assert_allclose(fixed, 12 * (0.7 * emp + 0.3 * mu * np.eye(5)), rtol=1e-12)


def test_nan_drop_equals_estimate_on_complete_rows() -> None:
    R = random_returns(120, 6, 5)
    R.iloc[3, 1] = np.nan
    R.iloc[50:60, 4] = np.nan
    got = sample_covariance(R).sigma.to_numpy()
    ref = 252 * LedoitWolf().fit(R.dropna().to_numpy()).covariance_
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_nan_pairwise_brute_force() -> None:
    R = random_returns(80, 4, 6)
    R.iloc[0:10, 0] = np.nan  # a late listing
    R.iloc[40, 2] = np.nan
    model = sample_covariance(R, shrinkage=None, periods_per_year=1, nan="pairwise")
    X = R.to_numpy()
    n = X.shape[1]
    ref = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            mi = np.nanmean(X[:, i])
            mj = np.nanmean(X[:, j])
            both = ~np.isnan(X[:, i]) & ~np.isnan(X[:, j])
            ref[i, j] = np.sum((X[both, i] - mi) * (X[both, j] - mj)) / both.sum()
    assert not model.repaired
    np.testing.assert_allclose(model.sigma.to_numpy(), ref, rtol=1e-12)
    # without NaN the two policies agree exactly
    clean = random_returns(50, 4, 7)
    np.testing.assert_allclose(sample_covariance(clean, nan="pairwise").sigma.to_numpy(),
                               sample_covariance(clean, nan="drop").sigma.to_numpy(), rtol=1e-12)


def test_pairwise_not_psd_is_repaired() -> None:
    # three series observed on disjoint-ish windows: pairwise estimates are inconsistent
    idx = pd.RangeIndex(6)
    R = pd.DataFrame({"A": [1, -1, 1, -1, np.nan, np.nan],
                      "B": [1, -1, np.nan, np.nan, 1, -1],
                      "C": [np.nan, np.nan, -1, 1, 1, -1]}, index=idx, dtype=float) * 0.01
    with pytest.warns(UserWarning, match="semidefinite"):
        model = sample_covariance(R, shrinkage=None, nan="pairwise")
    assert model.repaired
    assert np.linalg.eigvalsh(model.sigma.to_numpy()).min() >= -1e-14


def _svd_rank_k(R: pd.DataFrame, k: int, P: float) -> tuple[np.ndarray, np.ndarray]:
    X = R.to_numpy() - R.to_numpy().mean(axis=0)
    T = X.shape[0]
    _, sv, Vt = np.linalg.svd(X, full_matrices=False)
    Vk = Vt[:k].T
    approx = P * (Vk * (sv[:k] ** 2 / T)) @ Vk.T
    full = P * X.T @ X / T
    return approx, full


@pytest.mark.parametrize(("T", "n", "k"), [(300, 12, 3), (300, 12, 1), (100, 20, 5),
                                          (60, 90, 5), (252, 400, 10)])  # T < n: Gram path
def test_pca_reproduces_top_k_structure(T: int, n: int, k: int) -> None:
    R = random_returns(T, n, 8 + k)
    model = pca_factor_model(R, k=k, periods_per_year=252)
    names = pd.Index(R.columns)
    B = model.loadings.to_numpy()
    F = model.factor_cov.to_numpy()
    approx, full = _svd_rank_k(R, k, 252)
    np.testing.assert_allclose(B @ F @ B.T, approx, rtol=1e-8, atol=1e-12)
    resid = np.diag(full) - np.diag(approx)
    np.testing.assert_allclose(model.idio_var.to_numpy(),
                               np.maximum(resid, 1e-4 * np.diag(full)), rtol=1e-8)
    assert (model.idio_var > 0).all()
    # the model's total variance of each asset equals the sample variance (no floor hit)
    np.testing.assert_allclose(np.diag(model.covariance(names)), np.diag(full), rtol=1e-8)
    assert model.root(names).G.shape == (n, k)
    # loadings orthonormal, factor variances descending
    np.testing.assert_allclose(B.T @ B, np.eye(k), atol=1e-10)
    assert np.all(np.diff(np.diag(F)) <= 0)


def test_pca_full_rank_reproduces_sample_covariance() -> None:
    # T - 1 < n: the centered returns have rank T - 1, so k = T - 1 factors explain all of S
    R = random_returns(8, 15, 11)
    model = pca_factor_model(R, k=7, idio_floor=0.0)
    sample = sample_covariance(R, shrinkage=None)
    np.testing.assert_allclose(model.covariance(pd.Index(R.columns)), sample.sigma.to_numpy(),
                               rtol=1e-8, atol=1e-12)
    # asking for more factors than the rank caps k at the rank
    assert len(pca_factor_model(R, k=12).factors) == 7
    # T > n, k = n: exact as well
    R2 = random_returns(200, 6, 12)
    m2 = pca_factor_model(R2, k=6, idio_floor=0.0)
    np.testing.assert_allclose(m2.covariance(pd.Index(R2.columns)),
                               sample_covariance(R2, shrinkage=None).sigma.to_numpy(),
                               rtol=1e-8, atol=1e-14)


def test_pca_floor_keeps_idio_positive() -> None:
    R = random_returns(200, 5, 13)
    model = pca_factor_model(R, k=5, idio_floor=1e-3)
    var = np.diag(sample_covariance(R, shrinkage=None).sigma.to_numpy())
    np.testing.assert_allclose(model.idio_var.to_numpy(), 1e-3 * var, rtol=1e-6)


def test_periods_per_year_scales_linearly() -> None:
    R = random_returns(100, 4, 14)
    a = sample_covariance(R, periods_per_year=252).sigma.to_numpy()
    b = sample_covariance(R, periods_per_year=52).sigma.to_numpy()
    np.testing.assert_allclose(a / 252, b / 52, rtol=1e-12)


@pytest.mark.parametrize(("T", "n", "k"), [(40, 120, 10), (252, 480, 10), (9, 30, 20)])
def test_pca_gram_path_equals_the_assets_path(T: int, n: int, k: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With fewer dates than assets the eigenpairs come from the dates x dates Gram
    matrix; the n x n decomposition (the same function with the Gram path switched
    off) gives the same model to rounding, the rank cap included (k > T - 1)."""
    import rebalopt.risk.estimators as est

    R = random_returns(T, n, 21 + T)
    gram = pca_factor_model(R, k=k, missing="average")
    monkeypatch.setattr(est, "_top_from_gram", lambda D, k: None)
    full = pca_factor_model(R, k=k, missing="average")
    assert list(gram.factors) == list(full.factors)
    assert len(gram.factors) == min(k, T - 1)
    np.testing.assert_allclose(gram.loadings.to_numpy(), full.loadings.to_numpy(),
                               rtol=1e-9, atol=1e-11)  # signs fixed by the same convention
    np.testing.assert_allclose(gram.factor_cov.to_numpy(), full.factor_cov.to_numpy(),
                               rtol=1e-11)
    np.testing.assert_allclose(gram.idio_var.to_numpy(), full.idio_var.to_numpy(), rtol=1e-9)


def test_pca_constant_panel_takes_the_assets_path() -> None:
    """No direction to recover from a zero Gram matrix: the n x n path answers (one
    factor of zero variance, the idiosyncratic floor)."""
    import rebalopt.risk.estimators as est

    R = pd.DataFrame(np.full((5, 8), 0.01), columns=[f"A{i}" for i in range(8)])
    D = R.to_numpy() - R.to_numpy().mean(axis=0)
    assert est._top_from_gram(D, 3) is None
    m = pca_factor_model(R, k=3)
    assert len(m.factors) == 1 and float(m.factor_cov.iloc[0, 0]) == 0.0
    np.testing.assert_allclose(m.idio_var.to_numpy(), 1e-12)
