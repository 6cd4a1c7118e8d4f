"""PSD repair: eigenvalue clipping gives a PSD matrix, and the nearest one in the
Frobenius norm (checked against random PSD competitors and the closed-form distance)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _risk_helpers import random_cov, tickers

from rebalopt.risk import Covariance, FactorModel


def _indefinite(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.linspace(-0.05, 0.3, n)
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    return pd.DataFrame(A, index=tickers(n), columns=tickers(n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repair_is_psd_and_nearest(seed: int) -> None:
    A = _indefinite(6, seed)
    with pytest.warns(UserWarning, match="semidefinite"):
        model = Covariance(A)
    assert model.repaired and model.min_eigenvalue == pytest.approx(-0.05)
    fixed = model.sigma.to_numpy()
    assert np.linalg.eigvalsh(fixed).min() >= -1e-14
    lam, V = np.linalg.eigh(A.to_numpy())
    np.testing.assert_allclose(fixed, (V * np.clip(lam, 0, None)) @ V.T, atol=1e-14)
    dist = np.linalg.norm(A.to_numpy() - fixed)
    assert dist == pytest.approx(np.sqrt(np.sum(lam[lam < 0] ** 2)), rel=1e-10)
    rng = np.random.default_rng(100 + seed)
    for _ in range(200):  # random PSD competitors, including perturbations of the answer
        M = rng.normal(size=(6, 6)) * rng.uniform(0.001, 0.3)
        P = M @ M.T if rng.random() < 0.5 else fixed + 0.01 * (M @ M.T)
        assert np.linalg.norm(A.to_numpy() - P) >= dist - 1e-12
    # the root of the repaired matrix reproduces it (singular: eigen root, rank 5)
    root = model.root(pd.Index(tickers(6)))
    np.testing.assert_allclose(root.covariance(), fixed, atol=1e-13)
    assert root.k == 5


def test_positive_definite_input_is_untouched() -> None:
    A = random_cov(5, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = Covariance(A)
    assert not model.repaired
    np.testing.assert_array_equal(model.sigma.to_numpy(), A.to_numpy())


def test_factor_covariance_repair() -> None:
    F = pd.DataFrame([[0.04, 0.05], [0.05, 0.04]], index=["a", "b"], columns=["a", "b"])
    B = pd.DataFrame([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], index=["X", "Y", "Z"],
                     columns=["a", "b"])
    d = pd.Series({"X": 0.01, "Y": 0.02, "Z": 0.03})
    with pytest.warns(UserWarning):
        model = FactorModel(B, F, d)
    assert model.repaired
    # eigen: 0.09 on (1,1)/sqrt2, -0.01 clipped -> F' = 0.045 * ones
    names = pd.Index(["X", "Y", "Z"])
    expected = B.to_numpy() @ np.full((2, 2), 0.045) @ B.to_numpy().T + np.diag(d.to_numpy())
    np.testing.assert_allclose(model.covariance(names), expected, atol=1e-15)
    np.testing.assert_allclose(model.root(names).covariance(), expected, atol=1e-15)
    assert model.root(names).k == 1
