"""to_target_weights on the real optimizers' outputs, plain inputs, and ambiguous input."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt import InputError, NaiveRebalancer, PortfolioState, RebalanceConfig
from rebalopt.adapters import to_target_weights


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    skfolio_datasets = pytest.importorskip("skfolio.datasets")
    p = skfolio_datasets.load_sp500_dataset().iloc[-260:]
    p.columns = p.columns.astype(str)
    return p


@pytest.fixture(scope="module")
def returns(prices: pd.DataFrame) -> pd.DataFrame:
    return prices.pct_change().dropna()


def _as_dict(s: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in s.items()}


# ----------------------------------------------------------------- skfolio (real)
def test_skfolio_estimator_and_portfolio(returns: pd.DataFrame) -> None:
    from skfolio.optimization import MeanRisk

    model = MeanRisk().fit(returns)
    w = to_target_weights(model)
    # oracle: the estimator's own arrays, paired by position
    expected = dict(zip(model.feature_names_in_.tolist(), model.weights_.tolist(), strict=True))
    assert _as_dict(w) == expected
    assert list(w.index) == list(returns.columns)
    assert w.dtype == float

    portfolio = model.predict(returns)
    wp = to_target_weights(portfolio)
    # a second, independent view of the same numbers: skfolio's composition table
    comp = portfolio.composition.iloc[:, 0]
    for asset, v in comp.items():
        assert wp[str(asset)] == pytest.approx(float(v), abs=1e-12)
    assert _as_dict(wp) == pytest.approx(expected)


def test_skfolio_fitted_on_array_needs_names(returns: pd.DataFrame) -> None:
    from skfolio.optimization import MeanRisk

    model = MeanRisk().fit(returns.to_numpy())
    with pytest.raises(InputError, match="assets"):
        to_target_weights(model)
    with pytest.raises(InputError, match="x0"):
        to_target_weights(model.predict(returns.to_numpy()))
    w = to_target_weights(model, assets=list(returns.columns))
    assert list(w.index) == list(returns.columns)
    np.testing.assert_array_equal(w.to_numpy(), model.weights_)
    wp = to_target_weights(model.predict(returns.to_numpy()), assets=list(returns.columns))
    np.testing.assert_allclose(wp.to_numpy(), model.weights_)


def test_skfolio_unfitted_estimator_is_rejected() -> None:
    from skfolio.optimization import MeanRisk

    with pytest.raises(InputError, match="fit it first"):
        to_target_weights(MeanRisk())


def test_skfolio_targets_drive_a_rebalance(prices: pd.DataFrame, returns: pd.DataFrame) -> None:
    """End to end: skfolio weights -> plan from cash reaches them within one share each."""
    from skfolio.optimization import MeanRisk

    w = to_target_weights(MeanRisk().fit(returns))
    last = prices.iloc[-1]
    state = PortfolioState({}, 1_000_000.0, last)
    plan = NaiveRebalancer(RebalanceConfig(min_weight_change=0.0, min_trade_value=0.0)).plan(
        state, w)
    dev = np.abs(plan.post_weights - w.reindex(state.assets).to_numpy())
    assert (dev <= 0.5 * state.prices / state.equity + 1e-12).all()


# ---------------------------------------------------------- PyPortfolioOpt (real)
def test_pypfopt_clean_weights_and_optimizer(prices: pd.DataFrame) -> None:
    pypfopt = pytest.importorskip("pypfopt", reason="PyPortfolioOpt not installed (extra: adapters)")
    cov = pypfopt.risk_models.sample_cov(prices)
    ef = pypfopt.EfficientFrontier(None, cov)
    ef.min_volatility()
    cleaned = ef.clean_weights()
    assert isinstance(cleaned, OrderedDict)
    w = to_target_weights(cleaned)
    assert _as_dict(w) == dict(cleaned)
    assert list(w.index) == list(cleaned)
    # the optimizer object itself: raw (uncleaned) weights in ticker order
    w_raw = to_target_weights(ef)
    np.testing.assert_array_equal(w_raw.to_numpy(), ef.weights)
    assert list(w_raw.index) == list(ef.tickers)
    assert np.abs(w_raw - w).max() <= 1e-5  # clean_weights rounds to 5 decimals


# ----------------------------------------------------------- riskfolio-lib (real)
def test_riskfolio_weights_frame(returns: pd.DataFrame) -> None:
    rp = pytest.importorskip("riskfolio", reason="riskfolio-lib not installed (extra: adapters)")
    port = rp.Portfolio(returns=returns)
    port.assets_stats(method_mu="hist", method_cov="hist")
    frame = port.optimization(model="Classic", rm="MV", obj="MinRisk", hist=True)
    assert list(frame.columns) == ["weights"]
    w = to_target_weights(frame)
    assert _as_dict(w) == {str(k): float(v) for k, v in frame["weights"].items()}
    # an efficient frontier (one column per portfolio) is ambiguous
    frontier = port.efficient_frontier(model="Classic", rm="MV", points=3, hist=True)
    with pytest.raises(InputError, match="3 columns"):
        to_target_weights(frontier)
    assert _as_dict(to_target_weights(frontier.iloc[:, [1]])) == {
        str(k): float(v) for k, v in frontier.iloc[:, 1].items()}


# ---------------------------------------------------------------- plain inputs
def test_plain_inputs_agree() -> None:
    names = ["AAA", "BBB", "CCC"]
    vals = [0.5, 0.3, 0.2]
    expected = dict(zip(names, vals, strict=True))
    for obj in (
        pd.Series(vals, index=names),
        dict(expected),
        OrderedDict(expected),
        pd.DataFrame({"weights": vals}, index=names),
    ):
        assert _as_dict(to_target_weights(obj)) == expected
    for arr in (np.array(vals), vals, tuple(vals), np.array([vals]), pd.Series(vals)):
        assert _as_dict(to_target_weights(arr, assets=names)) == expected


def test_assets_reorders_named_input() -> None:
    w = to_target_weights({"A": 0.1, "B": 0.9}, assets=["B", "A"])
    assert list(w.index) == ["B", "A"] and w["A"] == 0.1


@pytest.mark.parametrize(
    ("obj", "assets", "match", "asset"),
    [
        (np.array([0.5, 0.5]), None, "no asset names", None),
        (pd.Series([0.5, 0.5]), None, "no asset names", None),
        (pd.DataFrame({"a": [0.5], "b": [0.5]}), None, "2 columns", None),
        (pd.DataFrame({"w1": [0.5, 0.5], "w2": [0.4, 0.6]}, index=["A", "B"]), None,
         "several portfolios", None),
        (pd.Series([0.5, 0.5], index=["A", "A"]), None, "duplicate", "A"),
        ([0.5, 0.5], ["A", "A"], "duplicate", "A"),
        ({"A": 0.5, "B": float("nan")}, None, "not finite", "B"),
        ({"A": 0.5, "B": float("inf")}, None, "not finite", "B"),
        ({"A": 0.5, "B": "half"}, None, "not a number", "B"),
        ({"A": 0.5, "B": None}, None, "not a number", "B"),
        ({"A": True}, None, "not a number", "A"),
        ({"A": 0.5, "": 0.5}, None, "empty ticker", None),
        ([0.2, 0.3, 0.5], ["A", "B"], "3 weights but 2", None),
        (np.ones((2, 3)) / 3, ["A", "B", "C"], "shape", None),
        ({"A": 0.5, "B": 0.5}, ["A", "C"], "not in assets", "B"),
        ({"A": 0.5}, ["A", "C"], "not in weights mapping", "C"),
        ({}, None, "empty", None),
        (np.array([]), ["A"], "empty", None),
        ("AAPL", None, "cannot read", None),
    ],
)
def test_ambiguous_or_bad_input_is_rejected(obj, assets, match, asset) -> None:
    with pytest.raises(InputError, match=match) as info:
        to_target_weights(obj, assets=assets)
    assert info.value.asset == asset
    assert info.value.field is not None


@settings(deadline=None, max_examples=60)
@given(
    st.dictionaries(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=5),
        st.floats(min_value=-2, max_value=2, allow_nan=False),
        min_size=1, max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_property_every_form_round_trips(weights: dict[str, float], rnd) -> None:
    """Mapping, Series, frame and array-with-names of the same weights give the same Series,
    and assets=<a permutation> only reorders."""
    names = list(weights)
    vals = list(weights.values())
    base = to_target_weights(weights)
    assert _as_dict(base) == weights
    forms = [pd.Series(vals, index=names), pd.DataFrame({"weights": vals}, index=names)]
    for f in forms:
        pd.testing.assert_series_equal(to_target_weights(f), base)
    pd.testing.assert_series_equal(to_target_weights(np.array(vals), assets=names), base)
    perm = names[:]
    rnd.shuffle(perm)
    permuted = to_target_weights(weights, assets=perm)
    assert list(permuted.index) == perm
    assert _as_dict(permuted) == weights


def test_a_complex_weight_is_an_input_error():
    # float() refuses a complex number: it was a bare TypeError naming no asset
    with pytest.raises(InputError, match="is not a real number") as e:
        to_target_weights({"AAA": 0.5, "BBB": 0.5 + 0j})
    assert (e.value.asset, e.value.field) == ("BBB", "target weight")
    # Decimal and NumPy numbers stay weights: 0.25 + 0.75 = 1
    from decimal import Decimal
    w = to_target_weights({"AAA": Decimal("0.25"), "BBB": np.float32(0.75)})
    assert w.to_dict() == {"AAA": 0.25, "BBB": 0.75}
