"""Every bad input raises InputError naming the asset (when there is one) and the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _risk_helpers import random_cov, random_factor_inputs

from rebalopt.errors import InputError
from rebalopt.risk import Covariance, Diagonal, FactorModel, pca_factor_model, sample_covariance


def _raises(fn, asset, field):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as e:
        fn()
    assert e.value.field == field, str(e.value)
    assert e.value.asset == asset, str(e.value)
    assert (asset is None or repr(asset) in str(e.value)) and repr(field) in str(e.value)
    return e.value


def test_diagonal_bad_values() -> None:
    _raises(lambda: Diagonal(pd.Series({"A": 0.04, "B": np.nan})), "B", "variance")
    _raises(lambda: Diagonal(pd.Series({"A": np.inf, "B": 0.1})), "A", "variance")
    _raises(lambda: Diagonal(pd.Series({"A": 0.04, "B": -0.01})), "B", "variance")
    _raises(lambda: Diagonal(pd.Series({"A": 0.04, "B": "x"})), "B", "variance")
    _raises(lambda: Diagonal(pd.Series([0.1, 0.2], index=["A", "A"])), "A", "variance")
    _raises(lambda: Diagonal([0.1, 0.2]), None, "variance")  # type: ignore[arg-type]
    _raises(lambda: Diagonal(pd.Series({"A": 0.1}), missing="zero"), None, "missing")  # type: ignore[arg-type]


def _cov() -> pd.DataFrame:
    return random_cov(4, 0)


def test_covariance_bad_values() -> None:
    m = _cov()
    m.iloc[1, 2] = np.nan
    _raises(lambda: Covariance(m), "T001", "covariance")
    m = _cov()
    m.iloc[3, 0] = np.inf
    _raises(lambda: Covariance(m), "T003", "covariance")
    m = _cov()
    m.iloc[2, 2] = -0.5
    _raises(lambda: Covariance(m), "T002", "covariance")
    m = _cov()
    m.iloc[0, 1] += 0.1  # not symmetric
    err = _raises(lambda: Covariance(m), "T000", "covariance")
    assert "symmetric" in str(err)
    m = _cov()
    m.index = ["T000", "T001", "T002", "T000"]
    _raises(lambda: Covariance(m), "T000", "covariance")
    m = _cov()
    m.columns = ["T000", "T001", "T002", "X"]  # mismatched row and column labels
    e = _raises(lambda: Covariance(m), "T003", "covariance columns")
    assert "missing" in str(e)
    _raises(lambda: Covariance(_cov().to_numpy()), None, "covariance")  # type: ignore[arg-type]


def test_covariance_column_order_is_irrelevant() -> None:
    m = _cov()
    shuffled = m.loc[:, m.columns[::-1]]
    np.testing.assert_allclose(Covariance(shuffled).sigma.to_numpy(), m.to_numpy())


def test_not_psd_raise_names_field() -> None:
    m = pd.DataFrame([[1.0, 2.0], [2.0, 1.0]], index=["A", "B"], columns=["A", "B"])
    e = _raises(lambda: Covariance(m, psd="raise"), e_asset(m), "covariance")
    assert "semidefinite" in str(e)
    _raises(lambda: Covariance(m, psd="clip"), None, "psd")  # type: ignore[arg-type]


def e_asset(m: pd.DataFrame) -> str:
    """The asset the smallest eigenvector loads most on (ties: the first)."""
    _lam, V = np.linalg.eigh(m.to_numpy())
    return str(m.index[int(np.argmax(np.abs(V[:, 0])))])


def test_factor_model_bad_inputs() -> None:
    B, F, d = random_factor_inputs(4, 2, 0)
    b = B.copy()
    b.iloc[2, 1] = np.nan
    _raises(lambda: FactorModel(b, F, d), "T002", "loadings")
    f = F.copy()
    f.iloc[0, 1] = 5.0
    _raises(lambda: FactorModel(B, f, d), "f0", "factor covariance")
    dd = d.copy()
    dd["T001"] = -0.1
    _raises(lambda: FactorModel(B, F, dd), "T001", "idiosyncratic variance")
    _raises(lambda: FactorModel(B, F, d.drop("T003")), "T003", "idiosyncratic variance")
    _raises(lambda: FactorModel(B, F, pd.concat([d, pd.Series({"Z": 0.1})])), "Z", "loadings")
    _raises(lambda: FactorModel(B.drop(columns="f1"), F, d), None, "loadings")
    _raises(lambda: FactorModel(B, F.drop(index="f1", columns="f1"), d), None,
            "factor covariance")
    b = B.copy()
    b.index = ["T000", "T001", "T001", "T003"]
    _raises(lambda: FactorModel(b, F, d), "T001", "loadings")
    bad_f = pd.DataFrame([[1.0, 2.0], [2.0, 1.0]], index=F.index, columns=F.columns)
    _raises(lambda: FactorModel(B, bad_f, d, psd="raise"), None, "factor covariance")


def test_estimator_bad_inputs() -> None:
    r = pd.DataFrame(np.random.default_rng(0).normal(0, 0.01, (30, 3)), columns=["A", "B", "C"])
    x = r.copy()
    x.iloc[4, 1] = np.inf
    _raises(lambda: sample_covariance(x), "B", "returns")
    x = r.copy()
    x["C"] = np.nan
    x.iloc[0, 2] = 0.01
    _raises(lambda: sample_covariance(x, nan="pairwise"), "C", "returns")
    _raises(lambda: sample_covariance(x), "A", "returns")  # dropping dates leaves nothing
    x = r.copy()
    x.columns = ["A", "B", "A"]
    _raises(lambda: sample_covariance(x), "A", "returns")
    _raises(lambda: sample_covariance(r, shrinkage=1.5), None, "shrinkage")
    _raises(lambda: sample_covariance(r, shrinkage="oas"), None, "shrinkage")  # type: ignore[arg-type]
    _raises(lambda: sample_covariance(r, periods_per_year=0), None, "periods_per_year")
    _raises(lambda: sample_covariance(r, nan="zero"), None, "nan")  # type: ignore[arg-type]
    _raises(lambda: pca_factor_model(r, k=4), None, "k")
    _raises(lambda: pca_factor_model(r, k=0), None, "k")
    _raises(lambda: pca_factor_model(r, k=2, idio_floor=-1.0), None, "idio_floor")
    _raises(lambda: sample_covariance(r.to_numpy()), None, "returns")  # type: ignore[arg-type]
