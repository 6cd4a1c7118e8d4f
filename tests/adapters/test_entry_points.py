"""Optimizer objects straight into every entry point, matched by name, never by position.

Eight real outputs (skfolio x3, PyPortfolioOpt x3, riskfolio-lib x2) go as-is into
``plan`` of the naive, band and optimal rebalancers, into ``execute`` and into
``rebalance_many``, for an account that lists its tickers in another order than the
optimizer. Oracle: the same rebalancer given a plain ``{ticker: weight}`` dict built
by hand from the object's own names and numbers; and, from an all-cash account, each
ticker's post-trade weight lands on that ticker's target (so a positional mix-up
cannot pass). A bare array is rejected (``field='targets'``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rebalopt import (
    BandRebalancer,
    Covariance,
    InputError,
    NaiveRebalancer,
    OptimalRebalancer,
    PortfolioState,
    RebalanceConfig,
)
from rebalopt.rebalance.batch import Account, rebalance_many
from rebalopt.rebalance.dust import DUST_VALUE

skd = pytest.importorskip("skfolio.datasets", reason="skfolio not installed (extra: demo)")
pypfopt = pytest.importorskip("pypfopt", reason="PyPortfolioOpt not installed (extra: adapters)")
rp = pytest.importorskip("riskfolio", reason="riskfolio-lib not installed (extra: adapters)")

TICKERS = ["AAPL", "AMD", "BAC", "JNJ", "KO"]


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    p = skd.load_sp500_dataset()[TICKERS].iloc[-80:]
    p.columns = p.columns.astype(str)
    return p


@pytest.fixture(scope="module")
def outputs(prices: pd.DataFrame) -> dict[str, tuple[Any, dict[str, float]]]:
    """name -> (the optimizer's object as it comes, {ticker: weight} read by hand)."""
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk

    returns = prices.pct_change().dropna()
    out: dict[str, tuple[Any, dict[str, float]]] = {}

    def named(names: Any, weights: Any) -> dict[str, float]:
        return {str(k): float(v) for k, v in zip(list(names), list(weights), strict=True)}

    mr = MeanRisk().fit(returns)
    out["skfolio MeanRisk"] = (mr, named(mr.feature_names_in_, mr.weights_))
    hrp = HierarchicalRiskParity().fit(returns)
    out["skfolio HierarchicalRiskParity"] = (hrp, named(hrp.feature_names_in_, hrp.weights_))
    port = mr.predict(returns)
    out["skfolio Portfolio"] = (port, named(port.assets, port.weights))

    cov = pypfopt.risk_models.sample_cov(prices)
    ef = pypfopt.EfficientFrontier(None, cov)
    raw = ef.min_volatility()
    out["pypfopt min_volatility"] = (raw, dict(raw))
    cleaned = ef.clean_weights()
    assert isinstance(cleaned, OrderedDict)
    out["pypfopt clean_weights"] = (cleaned, dict(cleaned))
    hrpopt = pypfopt.HRPOpt(returns)
    hw = hrpopt.optimize()
    out["pypfopt HRPOpt"] = (hw, dict(hw))

    port_rp = rp.Portfolio(returns=returns)
    port_rp.assets_stats(method_mu="hist", method_cov="hist")
    frame = port_rp.optimization(model="Classic", rm="MV", obj="MinRisk", hist=True)
    out["riskfolio Portfolio"] = (frame, named(frame.index, frame["weights"]))
    hc = rp.HCPortfolio(returns=returns)
    hframe = hc.optimization(model="HRP", codependence="pearson", rm="MV", linkage="single")
    out["riskfolio HCPortfolio"] = (hframe, named(hframe.index, hframe["weights"]))
    assert len(out) == 8
    for _obj, w in out.values():
        assert sorted(w) == sorted(TICKERS)
    return out


NAMES = ["skfolio MeanRisk", "skfolio HierarchicalRiskParity", "skfolio Portfolio",
         "pypfopt min_volatility", "pypfopt clean_weights", "pypfopt HRPOpt",
         "riskfolio Portfolio", "riskfolio HCPortfolio"]

CFG = RebalanceConfig(min_weight_change=0.0, min_trade_value=0.0, fractional=True)


def _rebalancers(prices: pd.DataFrame) -> dict[str, Any]:
    cov = prices.pct_change().dropna().cov() * 252
    # the risk model in the account's order (reversed), keyed by ticker
    cov = cov.loc[TICKERS[::-1], TICKERS[::-1]]
    return {
        "naive": NaiveRebalancer(CFG),
        "band": BandRebalancer(width=0.0, config=CFG),
        "optimal": OptimalRebalancer(risk=Covariance(cov)),
    }


def _state(prices: pd.DataFrame, holdings: dict[str, float] | None = None) -> PortfolioState:
    """An account listing tickers in the reverse of the optimizers' order."""
    last = prices.iloc[-1][TICKERS[::-1]]
    return PortfolioState(holdings or {}, 1_000_000.0, last)


@pytest.mark.parametrize("name", NAMES)
def test_every_rebalancer_takes_the_object_as_it_comes(name, outputs, prices) -> None:
    obj, by_hand = outputs[name]
    state = _state(prices)
    assert list(state.assets) == TICKERS[::-1]
    for kind, reb in _rebalancers(prices).items():
        plan = reb.plan(state, obj)
        oracle = reb.plan(state, by_hand)
        np.testing.assert_array_equal(plan.trades, oracle.trades, err_msg=f"{name} {kind}")
        # from cash, every ticker reaches its own target (by name): a positional mix-up
        # would put e.g. AAPL's weight on KO
        post = dict(zip(state.assets, plan.post_weights, strict=True))
        for ticker, w in by_hand.items():
            tol = 1e-6 if kind != "optimal" else 2e-4
            assert post[ticker] == pytest.approx(max(w, 0.0), abs=tol), (name, kind, ticker)


def test_execute_and_rebalance_many_take_the_objects(outputs, prices, make_broker) -> None:
    last = prices.iloc[-1]
    data = {t: {"close": float(last[t])} for t in TICKERS[::-1]}
    accounts = []
    for k, name in enumerate(NAMES):
        obj, by_hand = outputs[name]
        broker = make_broker({}, cash=1_000_000.0)
        NaiveRebalancer(CFG).execute(obj, data, broker)
        got = {asset: qty for asset, qty, _side in broker.submitted}
        assert got, name
        for ticker, w in by_hand.items():
            if w * 1_000_000.0 >= DUST_VALUE:  # smaller orders are dust, snapped to 0
                assert got[ticker] == pytest.approx(w * 1_000_000.0 / float(last[ticker]),
                                                    rel=1e-9), (name, ticker)
        accounts.append(Account(f"acct{k}", _state(prices), obj))
    result = rebalance_many(accounts, NaiveRebalancer(CFG))
    assert not result.errors
    for k, name in enumerate(NAMES):
        oracle = NaiveRebalancer(CFG).plan(_state(prices), outputs[name][1])
        np.testing.assert_array_equal(result.plans[f"acct{k}"].trades, oracle.trades)


@pytest.mark.parametrize("bare", [np.array([0.2] * 5), [0.2] * 5, (0.2,) * 5,
                                  pd.Series([0.2] * 5)])
def test_bare_array_is_rejected_everywhere(bare, prices) -> None:
    state = _state(prices)
    for kind, reb in _rebalancers(prices).items():
        with pytest.raises(InputError) as info:
            reb.plan(state, bare)
        assert info.value.field == "targets", kind
        assert "pd.Series(weights, index=tickers)" in str(info.value)
    result = rebalance_many([Account("a", state, bare)], NaiveRebalancer(CFG))
    assert "targets" in str(result.errors["a"])


def test_skfolio_estimator_fitted_on_an_array_is_rejected(prices) -> None:
    from skfolio.optimization import MeanRisk

    model = MeanRisk().fit(prices.pct_change().dropna().to_numpy())
    with pytest.raises(InputError, match="assets"):
        NaiveRebalancer(CFG).plan(_state(prices), model)


def test_portfolio_strategy_takes_an_estimator_from_optimize(prices) -> None:
    """The backtest's optimize() may return the fitted skfolio estimator itself."""
    from skfolio.optimization import MeanRisk

    from rebalopt.backtest import DataFeed, Engine, PortfolioStrategy, SimulatedBroker

    feed = DataFeed.from_wide(prices)
    fitted: list[Any] = []

    def optimize(returns, data, context, broker):
        fitted.append(MeanRisk().fit(returns))
        return fitted[-1]

    strat = PortfolioStrategy(NaiveRebalancer(CFG), optimizer=optimize, lookback=30,
                              schedule=25)
    broker = SimulatedBroker(1_000_000.0, fractional=True)
    Engine(feed, strat, broker, "same_bar", progress=False).run()
    assert fitted and all(r["status"] == "ok" for r in strat.rebalances)
    # the book after the last rebalance holds the last estimator's weights, by name
    last = dict(zip(fitted[-1].feature_names_in_, fitted[-1].weights_, strict=True))
    np.testing.assert_allclose(strat.targets, [last[a] for a in feed.assets])
