"""PortfolioStrategy(replan=k): a receding horizon between target dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bt_helpers import ledger_equity, wide_feed
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt import (
    CashFloor,
    Commission,
    InputError,
    LongOnly,
    MarketImpact,
    MultiPeriodRebalancer,
    ParticipationLimit,
    Spread,
)
from rebalopt.backtest import Engine, PortfolioStrategy, SimulatedBroker


def feed(T: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = {a: list(p0 * np.cumprod(1 + 0.01 * rng.standard_normal(T)))
             for a, p0 in (("A", 50.0), ("B", 20.0), ("C", 80.0))}
    volume = {a: [20_000.0] * T for a in close}
    return wide_feed(close=close, volume=volume)


def test_replan_must_be_a_positive_int():
    with pytest.raises(InputError):
        PortfolioStrategy(object(), optimizer=lambda *a: None, replan=0)


def test_replans_between_target_dates_and_carries_the_capped_remainder():
    f = feed()
    target = {"A": 0.5, "B": 0.3, "C": 0.15}
    reb = MultiPeriodRebalancer(periods=4, costs=[Spread(half_spread_bps=2.0)],
                                constraints=[LongOnly(), CashFloor()], risk_aversion=1e4)
    strat = PortfolioStrategy(reb, optimizer=lambda *a: target, lookback=1, schedule=10,
                              warmup=5, replan=1)
    # the broker fills at most 5% of the bar's volume: 1,000 shares of A ($50k of $1M)
    broker = SimulatedBroker(1e6, costs=[Spread(half_spread_bps=2.0)], fractional=True,
                             participation=0.05)
    res = Engine(f, strat, broker, "same_bar", progress=False).run()
    kinds = [r["kind"] for r in strat.rebalances]
    assert kinds[0] == "target" and "replan" in kinds
    assert [r["bar"] for r in strat.rebalances] == list(range(5, 30))  # every bar after warm-up
    assert sum(k == "target" for k in kinds) == 3  # bars 5, 15, 25
    # A needs 10,000 shares, the cap fills 1,000 a bar: the remainder is re-planned
    # (cancelled and asked again from the true holdings) until the book gets there
    held_a = res.holdings[:, 0]
    assert np.all(np.diff(held_a[5:16]) <= 1_000 + 1e-9)
    cancelled = [o for o in res.orders if o.status.value == "cancelled"]
    assert cancelled  # remainders carried by the next plan, not left pending
    w_end = held_a[-1] * f.close[-1, 0] / res.equity[-1]
    assert abs(w_end - 0.5) < 0.02


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 1000), every=st.integers(1, 3), cap=st.sampled_from([None, 0.05]))
def test_replanned_backtest_accounting_identity_every_bar(seed, every, cap):
    f = feed(25, seed)
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0),
             MarketImpact()]
    rng = np.random.default_rng(seed)

    def optimize(*_a):
        w = rng.dirichlet(np.ones(3)) * 0.95
        return dict(zip("ABC", w))

    reb = MultiPeriodRebalancer(periods=3, costs=costs, risk_aversion=500.0,
                                constraints=[LongOnly(), CashFloor(), ParticipationLimit(0.1)])
    strat = PortfolioStrategy(reb, optimizer=optimize, lookback=1, schedule=7, warmup=6,
                              replan=every, on_error="hold")
    broker = SimulatedBroker(2e6, costs=costs, fractional=True, participation=cap)
    res = Engine(f, strat, broker, "same_bar", progress=False).run()
    assert len(res.fills) > 0
    cash, hold, equity = ledger_equity(f, res.fills, 2e6)
    np.testing.assert_allclose(res.cash, cash, atol=1e-6)
    np.testing.assert_allclose(res.holdings, hold, atol=1e-9)
    np.testing.assert_allclose(res.equity, equity, atol=1e-6)
    # equity = cash + marked holdings at every bar, and no decision was held by an error
    marks = pd.DataFrame(f.close).ffill().to_numpy()
    np.testing.assert_allclose(res.equity, res.cash + (res.holdings * marks).sum(axis=1),
                               atol=1e-6)
    assert strat.n_held == 0
    replans = [r for r in strat.rebalances if r["kind"] == "replan"]
    assert all((r["bar"] - 6) % 7 % every == 0 for r in replans)
