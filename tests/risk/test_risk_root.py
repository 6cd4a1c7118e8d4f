"""RiskRoot and every model's root: G G' + diag(s^2) equals the model's covariance,
and the O(nk) variance equals the dense d' Sigma d."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _risk_helpers import random_cov, random_factor_inputs, state_for, tickers

from rebalopt.errors import InputError
from rebalopt.risk import Covariance, Diagonal, FactorModel, Identity, RiskModel, RiskRoot


def _models(n: int, seed: int) -> list[RiskModel]:
    names = tickers(n)
    rng = np.random.default_rng(seed)
    B, F, delta = random_factor_inputs(n, 3, seed)
    return [
        Identity(),
        Diagonal(pd.Series(rng.uniform(0.01, 0.2, n), index=names)),
        Covariance(random_cov(n, seed)),
        Covariance(random_cov(n, seed, rank=2)),  # singular: eigen root
        FactorModel(B, F, delta),
    ]


def _hand_covariance(model: RiskModel, names: list[str]) -> np.ndarray:
    """Dense covariance straight from the model's inputs, written out here."""
    if isinstance(model, Identity):
        return np.eye(len(names))
    if isinstance(model, Diagonal):
        return np.diag(model.variances.reindex(names).to_numpy())
    if isinstance(model, Covariance):
        return model.matrix.loc[names, names].to_numpy()
    assert isinstance(model, FactorModel)
    B = model.loadings.loc[names].to_numpy()
    F = model.factor_cov.loc[model.loadings.columns, model.loadings.columns].to_numpy()
    return B @ F @ B.T + np.diag(model.idio_var.reindex(names).to_numpy())


@pytest.mark.parametrize("i", range(5))
def test_root_reproduces_covariance(i: int) -> None:
    n = 12
    model = _models(n, seed=7)[i]
    names = tickers(n)
    state = state_for(names)
    root = model.root(state)
    expected = _hand_covariance(model, names)
    np.testing.assert_allclose(root.G @ root.G.T + np.diag(root.s**2), expected,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariance(state), expected, rtol=1e-12, atol=1e-14)
    assert root.s.min() >= 0


@pytest.mark.parametrize("i", range(5))
def test_variance_matches_dense_quadratic_form(i: int) -> None:
    n = 12
    model = _models(n, seed=3)[i]
    names = tickers(n)
    state = state_for(names)
    sigma = _hand_covariance(model, names)
    rng = np.random.default_rng(11)
    for _ in range(5):
        d = rng.normal(size=n) * 0.05
        dense = float(d @ sigma @ d)
        assert model.variance(d, state) == pytest.approx(dense, rel=1e-10, abs=1e-15)
        assert model.tracking_error(d, state) == pytest.approx(np.sqrt(dense), rel=1e-10)


def test_identity_is_weight_distance() -> None:
    state = state_for(tickers(4))
    root = Identity().root(state)
    assert root.G.shape == (4, 0) and root.k == 0
    d = np.array([0.1, -0.2, 0.0, 0.05])
    assert root.variance(d) == pytest.approx(0.01 + 0.04 + 0.0025)


def test_hand_computed_two_asset_covariance() -> None:
    # vols 20% and 30%, correlation 0.5: var(d) = .04 d1^2 + .09 d2^2 + 2*.5*.2*.3 d1 d2
    m = pd.DataFrame([[0.04, 0.03], [0.03, 0.09]], index=["A", "B"], columns=["A", "B"])
    root = Covariance(m).root(pd.Index(["A", "B"]))
    assert root.variance(np.array([0.1, -0.1])) == pytest.approx(0.0004 + 0.0009 - 0.0006)
    assert root.tracking_error(np.array([1.0, 0.0])) == pytest.approx(0.2)


def test_factor_root_has_k_columns_and_no_dense_matrix() -> None:
    B, F, delta = random_factor_inputs(300, 5, 1)
    root = FactorModel(B, F, delta).root(pd.Index(B.index))
    assert root.G.shape == (300, 5)
    assert root.s.shape == (300,)


def test_alignment_follows_state_order() -> None:
    n = 10
    names = tickers(n)
    perm = np.random.default_rng(5).permutation(n)
    shuffled = [names[p] for p in perm]
    for model in _models(n, seed=9):
        base = model.root(state_for(names))
        other = model.root(state_for(shuffled))
        sig = base.covariance()
        np.testing.assert_allclose(other.covariance(), sig[np.ix_(perm, perm)], rtol=1e-10,
                                   atol=1e-13)
        np.testing.assert_allclose(other.s, base.s[perm])
        if isinstance(model, FactorModel):  # factor roots permute row by row
            np.testing.assert_allclose(other.G, base.G[perm])


def test_subset_universe_is_principal_submatrix() -> None:
    model = Covariance(random_cov(8, 2))
    names = tickers(8)
    sub = [names[5], names[1], names[6]]
    full = model.covariance(pd.Index(names))
    pos = [5, 1, 6]
    np.testing.assert_allclose(model.root(pd.Index(sub)).covariance(), full[np.ix_(pos, pos)],
                               rtol=1e-12)


def test_roots_are_cached_per_order_and_read_only() -> None:
    B, F, delta = random_factor_inputs(6, 2, 0)
    model = FactorModel(B, F, delta)
    names = tickers(6)
    a = model.root(state_for(names))
    assert model.root(state_for(names)) is a
    b = model.root(state_for(names[::-1]))
    assert b is not a
    assert model.root(pd.Index(names)) is a
    with pytest.raises(ValueError):
        a.G[0, 0] = 1.0
    model.clear_cache()
    assert model.root(pd.Index(names)) is not a


def test_missing_asset_raises_by_default() -> None:
    model = Diagonal(pd.Series({"A": 0.04, "B": 0.09}))
    with pytest.raises(InputError) as e:
        model.root(state_for(["A", "B", "ZZZ"]))
    assert e.value.asset == "ZZZ" and e.value.field == "risk model"


def test_missing_average_fills_zero_loadings_and_mean_idio() -> None:
    B, F, delta = random_factor_inputs(5, 2, 4)
    model = FactorModel(B, F, delta, missing="average")
    names = tickers(5)
    universe = [names[2], "NEW1", names[0], "NEW2"]
    root = model.root(pd.Index(universe))
    assert np.all(root.G[[1, 3]] == 0)
    assert root.s[1] ** 2 == pytest.approx(delta.mean())
    sig = root.covariance()
    ref = model.covariance(pd.Index(universe))
    np.testing.assert_allclose(sig, ref, rtol=1e-10, atol=1e-14)
    # hand: the new assets are uncorrelated with everything, with the mean idio variance
    assert sig[1, 1] == pytest.approx(delta.mean()) and sig[1, 0] == 0 and sig[1, 3] == 0
    known = model.covariance(pd.Index([names[2], names[0]]))
    np.testing.assert_allclose(sig[np.ix_([0, 2], [0, 2])], known)
    np.testing.assert_array_equal(model.exposures(pd.Index(universe)).loc["NEW1"].to_numpy(), 0.0)

    cov = Covariance(random_cov(3, 1), missing="average")
    r = cov.root(pd.Index(["X", "T000"]))
    assert r.s[0] ** 2 == pytest.approx(np.diag(cov.matrix.to_numpy()).mean())
    dia = Diagonal(pd.Series({"A": 0.04, "B": 0.08}), missing="average")
    assert dia.root(pd.Index(["C"])).s[0] ** 2 == pytest.approx(0.06)


def test_root_rejects_bad_shapes_and_values() -> None:
    with pytest.raises(InputError):
        RiskRoot(np.zeros((3, 1)), np.ones(2))
    with pytest.raises(InputError):
        RiskRoot(np.zeros((2, 1)), np.array([1.0, -1.0]))
    with pytest.raises(InputError):
        RiskRoot(np.array([[np.nan], [0.0]]), np.ones(2))
    root = RiskRoot(np.zeros((2, 0)), np.ones(2))
    with pytest.raises(InputError) as e:
        root.variance(np.ones(3))
    assert e.value.field == "weight difference"


def test_pickle_drops_cache_and_keeps_model() -> None:
    import pickle

    B, F, delta = random_factor_inputs(6, 2, 3)
    model = FactorModel(B, F, delta)
    names = pd.Index(tickers(6))
    before = model.root(names)
    clone = pickle.loads(pickle.dumps(model))
    assert "_root_cache" not in clone.__dict__
    np.testing.assert_array_equal(clone.root(names).G, before.G)
    np.testing.assert_array_equal(clone.covariance(names), model.covariance(names))


def test_cache_is_bounded() -> None:
    model = Identity()
    names = tickers(12)
    first = model.root(pd.Index(names[:1]))
    for m in range(2, 12):
        model.root(pd.Index(names[:m]))
    assert len(model.__dict__["_root_cache"]) == 8
    assert model.root(pd.Index(names[:1])) is not first
