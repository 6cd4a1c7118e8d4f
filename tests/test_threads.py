"""limited_blas: one BLAS thread inside the block, the caller's setting restored after."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info, threadpool_limits

from rebalopt import _threads
from rebalopt.risk import pca_factor_model


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_one_thread_inside_restored_after(monkeypatch):
    monkeypatch.delenv(_threads.ENV, raising=False)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with _threads.limited_blas():
            assert _blas_threads() == {1}
        assert _blas_threads() == before
        monkeypatch.setenv(_threads.ENV, "0")  # leave the libraries alone
        with _threads.limited_blas():
            assert _blas_threads() == before


def test_pca_top_k_matches_the_full_decomposition():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 25)) @ rng.normal(size=(25, 25)) * 0.01
    model = pca_factor_model(pd.DataFrame(X, columns=[f"T{i}" for i in range(25)]), k=4)
    D = X - X.mean(axis=0)
    lam, V = np.linalg.eigh(D.T @ D / len(X))  # the oracle: every eigenpair
    np.testing.assert_allclose(np.diag(model.factor_cov.to_numpy()), 252 * lam[::-1][:4],
                               rtol=1e-10)
    B = model.loadings.to_numpy()
    np.testing.assert_allclose(np.abs(B.T @ V[:, ::-1][:, :4]), np.eye(4), atol=1e-8)
