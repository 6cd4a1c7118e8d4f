"""Target and risk schedules: no look-ahead, hand-checked weights, minimum variance optimality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import LedoitWolf

from rebalopt.errors import InputError
from rebalopt.research import (
    inverse_volatility,
    min_variance,
    rebalance_dates,
    risk_schedule,
    target_schedule,
)
from rebalopt.state import PortfolioState


def test_rebalance_dates_month_end_by_hand() -> None:
    idx = pd.DatetimeIndex(["2021-01-28", "2021-01-29", "2021-02-01", "2021-02-26",
                            "2021-03-01", "2021-03-02"])
    got = rebalance_dates(idx, "M")
    # last bar of January and February; March is incomplete (its last bar is the final bar)
    assert list(got) == [pd.Timestamp("2021-01-29"), pd.Timestamp("2021-02-26")]
    assert list(rebalance_dates(idx, "M", start=2)) == [pd.Timestamp("2021-02-26")]
    assert list(rebalance_dates(idx, 2, start=1)) == list(idx[[1, 3, 5]])
    with pytest.raises(InputError, match="frequency"):
        rebalance_dates(idx, 0)


def test_inverse_volatility_by_hand() -> None:
    r = pd.DataFrame({"A": [0.01, -0.01, 0.01, -0.01], "B": [0.02, -0.02, 0.02, -0.02]})
    w = inverse_volatility(r)
    # std(B) = 2 std(A): weights 2/3 and 1/3
    assert w["A"] == pytest.approx(2 / 3) and w["B"] == pytest.approx(1 / 3)
    with pytest.raises(InputError, match="'C'"):
        inverse_volatility(r.assign(C=0.0))


def test_schedule_uses_only_data_known_at_each_date(small_prices: pd.DataFrame) -> None:
    lookback = 60
    base = target_schedule(small_prices, "inverse_volatility", lookback)
    cut = base.index[len(base) // 2]
    shocked = small_prices.copy()
    after = shocked.index > cut
    shocked.loc[after] *= np.linspace(0.5, 3.0, after.sum())[:, None]  # rewrite the future
    again = target_schedule(shocked, "inverse_volatility", lookback)
    pd.testing.assert_frame_equal(base.loc[:cut], again.loc[:cut])
    assert not np.allclose(base.loc[base.index > cut], again.loc[again.index > cut])
    # every row: the optimizer on exactly the lookback returns ending at that date
    d = base.index[3]
    t = small_prices.index.get_loc(d)
    window = small_prices.iloc[t - lookback: t + 1].pct_change().iloc[1:]
    pd.testing.assert_series_equal(base.loc[d], inverse_volatility(window), check_names=False)
    assert (base.index == rebalance_dates(small_prices.index, "M", start=lookback)).all()


def test_schedule_gives_zero_to_assets_without_a_full_window(small_prices: pd.DataFrame) -> None:
    p = small_prices.copy()
    p.iloc[:100, 0] = np.nan  # AAPL listed late
    sched = target_schedule(p, "inverse_volatility", 60)
    first_full = p.index[100 + 60]
    assert (sched.loc[sched.index < first_full, "AAPL"] == 0).all()
    assert (sched.loc[sched.index >= first_full, "AAPL"] > 0).all()
    np.testing.assert_allclose(sched.sum(axis=1), 1.0)


def test_min_variance_beats_every_random_portfolio(small_prices: pd.DataFrame) -> None:
    r = small_prices.pct_change().iloc[1:253]
    w = min_variance(r)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    S = LedoitWolf().fit(r.to_numpy()).covariance_  # the same estimator, from scikit-learn
    v = float(w @ S @ w)
    rng = np.random.default_rng(0)
    others = rng.dirichlet(np.ones(len(w)), size=2000)
    assert v <= np.einsum("ij,jk,ik->i", others, S, others).min() + 1e-12
    assert v <= float(inverse_volatility(r) @ S @ inverse_volatility(r)) + 1e-12


def test_schedule_bad_inputs(small_prices: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="optimize"):
        target_schedule(small_prices, "max_sharpe")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="lookback"):
        target_schedule(small_prices, "inverse_volatility", lookback=1)
    def bad(r: pd.DataFrame) -> pd.Series:
        return pd.Series([0.5, np.nan] + [0.0] * (r.shape[1] - 2), index=r.columns)

    with pytest.raises(InputError, match="'JNJ'"):
        target_schedule(small_prices, bad, 60)


def test_risk_schedule_switches_models_by_date(small_prices: pd.DataFrame) -> None:
    sched = target_schedule(small_prices, "inverse_volatility", 60)
    rs = risk_schedule(small_prices, sched.index[:3], lookback=60)
    state = PortfolioState({}, 1e6, small_prices.iloc[-1])
    with pytest.raises(InputError, match="set_date"):
        rs.root(state)
    d0, d1 = sched.index[0], sched.index[1]
    rs.set_date(d0)
    v0 = rs.root(state).variance(np.eye(len(state.assets))[0])
    t = small_prices.index.get_loc(d0)
    direct = small_prices.iloc[t - 60: t + 1].pct_change().iloc[1:]
    # independent oracle: scikit-learn's Ledoit-Wolf on the same window, annualized
    lw = LedoitWolf(assume_centered=False).fit(direct.to_numpy()).covariance_ * 252
    assert v0 == pytest.approx(lw[0, 0], rel=1e-6)
    rs.set_date(d1)
    assert rs.root(state).variance(np.eye(len(state.assets))[0]) != pytest.approx(v0)
    with pytest.raises(InputError, match="no risk model"):
        rs.set_date(sched.index[-1])


def test_schedule_rows_are_the_optimizers_weights_reindexed(small_prices: pd.DataFrame) -> None:
    """Oracle: each row is the optimizer's answer through ``reindex(columns).fillna(0)``
    (the pandas expression), for answers that name tickers outside the frame, leave
    some out, come in another order, as a mapping, or repeat a ticker."""
    p = small_prices.copy()
    p.iloc[:100, 1] = np.nan  # one asset without a full window at first
    calls = []

    def odd(r: pd.DataFrame):
        k = len(calls)
        cols = list(r.columns)
        w = pd.Series(np.arange(1.0, len(cols) + 1) / 7.0, index=cols)
        out = {0: w, 1: w.iloc[::-1].iloc[1:], 2: pd.concat([w, pd.Series({"NOPE": 0.3})]),
               3: dict(w.iloc[:2]), 4: pd.Series(-0.0, index=cols)}.get(k % 5, w)
        calls.append(pd.Series(out, dtype=float))
        return out

    got = target_schedule(p, odd, 60)
    want = pd.DataFrame([w.reindex(p.columns).fillna(0.0) for w in calls],
                        index=got.index, columns=p.columns)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_names=False)
    assert (got.to_numpy() != 0).any()

    def twice(r: pd.DataFrame) -> pd.Series:  # a repeated ticker: pandas' own error
        return pd.Series([0.5, 0.5], index=[r.columns[0], r.columns[0]])

    with pytest.raises(ValueError):
        target_schedule(p, twice, 60)
