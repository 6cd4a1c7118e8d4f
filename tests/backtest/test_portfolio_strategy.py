"""PortfolioStrategy: schedule, pending orders under a participation cap, error policy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from bt_helpers import wide_feed

from rebalopt import InfeasibleError, InputError, NaiveRebalancer, RebalanceConfig
from rebalopt.backtest import Engine, ExecutionMode, PortfolioStrategy, SimulatedBroker

CFG = {"min_weight_change": 0.0, "min_trade_value": 0.0}


def capped_feed(T=12):
    return wide_feed(close={"A": [10.0] * T, "B": [20.0] * T},
                     volume={"A": [1000.0] * T, "B": [1000.0] * T})


@pytest.mark.parametrize("pending", ["cancel", "account"])
@pytest.mark.parametrize("mode", list(ExecutionMode))
def test_partial_fills_no_double_allocation(pending, mode):
    # target 50% A = 5,000 shares at 10; the cap fills 100 shares per bar, so every
    # rebalance (each bar) meets an open order from the one before
    feed = capped_feed()
    strat = PortfolioStrategy(NaiveRebalancer(RebalanceConfig(pending=pending, **CFG)),
                              optimizer=lambda r, d, c, b: {"A": 0.5}, lookback=1, schedule=1)
    broker = SimulatedBroker(100_000.0, participation=0.1)
    seen = []

    class Watch:
        def evaluate(self, ts, data, broker):
            # what the next rebalance will see: true holdings and open orders
            seen.append((broker.holdings[0], broker.pending_shares()[0]))

    res = Engine(feed, strat, broker, mode, rules=[Watch()], progress=False).run()
    for held, pend in seen:
        assert held + pend <= 5_000 + 1e-9  # never more than the target is in flight
    # holdings grow by the cap every bar that fills
    first = 1 if mode is ExecutionMode.SAME_BAR else 2  # first rebalance on bar 1
    np.testing.assert_allclose(res.holdings[:, 0],
                               100.0 * np.maximum(0, np.arange(feed.n_bars) - first + 1))
    open_orders = broker.get_pending_orders()
    assert sum(o.remaining for o in open_orders) + broker.holdings[0] == pytest.approx(5_000)
    if pending == "account":  # one order, never re-sent
        assert len({f.order_id for f in res.fills}) == 1
    else:  # each rebalance cancels the previous order and re-plans from true holdings
        cancelled = [o for o in res.orders if o.status.value == "cancelled"]
        assert len(cancelled) == len(res.orders) - 1
        for o in res.orders:
            # each rebalance asks exactly for target - true holdings when it plans
            assert o.quantity == 5_000 - seen[o.created_bar][0]


def test_month_end_schedule_and_turnover_records():
    import pandas as pd

    idx = pd.bdate_range("2024-01-01", "2024-04-30")
    rng = np.random.default_rng(5)
    close = 30 * np.exp(np.cumsum(rng.normal(0, 0.01, (len(idx), 3)), axis=0))
    feed = wide_feed(close={k: close[:, i] for i, k in enumerate("XYZ")})
    feed.dates = idx  # same length, real calendar
    strat = PortfolioStrategy(NaiveRebalancer(RebalanceConfig(fractional=True, **CFG)),
                              optimizer=lambda r, d, c, b: {"X": 0.3, "Y": 0.3, "Z": 0.3},
                              lookback=10)
    res = Engine(feed, strat, SimulatedBroker(1e6, fractional=True), progress=False).run()
    reb = res.to_frame("rebalances")
    assert list(pd.DatetimeIndex(reb["date"]).strftime("%Y-%m-%d")) == [
        "2024-01-31", "2024-02-29", "2024-03-29"]
    # planned and realized turnover agree without costs (SAME_BAR, fractional shares)
    np.testing.assert_allclose(reb["planned_turnover"], reb["realized_turnover"], rtol=1e-9)
    assert reb["planned_turnover"].iloc[0] == pytest.approx(0.45)
    # right after each rebalance the held weights equal the targets
    gap = res.to_frame("equity")["weight_gap"]
    for d in reb["date"]:
        assert gap[d] < 1e-9


def test_on_error_hold_counts_and_logs(caplog):
    feed = capped_feed(8)
    calls = iter([{"A": 0.5}, {"NOPE": 0.5}, {"A": 0.2}])

    def opt(r, d, c, b):
        return next(calls)

    strat = PortfolioStrategy(NaiveRebalancer(RebalanceConfig(**CFG)), optimizer=opt,
                              lookback=1, schedule=3, on_error="hold")
    with caplog.at_level(logging.WARNING):
        res = Engine(feed, strat, SimulatedBroker(1e5), progress=False).run()
    assert [r["status"] for r in res.rebalances] == ["ok", "held", "ok"]
    assert res.n_held == 1 and "NOPE" in res.rebalances[1]["error"]
    assert "held" in caplog.text
    # the held bar traded nothing
    assert not [f for f in res.fills if f.bar == 4]


def test_on_error_raise():
    feed = capped_feed(4)

    def opt(r, d, c, b):
        raise InfeasibleError("no feasible trade")

    strat = PortfolioStrategy(NaiveRebalancer(), optimizer=opt, lookback=1, schedule=1)
    with pytest.raises(InfeasibleError):
        Engine(feed, strat, SimulatedBroker(1e5), progress=False).run()


def test_failed_plan_leaves_pending_orders_untouched():
    # a hold must not cancel the open orders of the previous rebalance
    feed = capped_feed(5)  # rebalances on bars 1 and 3
    calls = iter([{"A": 0.5}, {"A": float("nan")}])
    strat = PortfolioStrategy(NaiveRebalancer(RebalanceConfig(**CFG)),
                              optimizer=lambda r, d, c, b: next(calls), lookback=1, schedule=2,
                              on_error="hold")
    broker = SimulatedBroker(1e5, participation=0.1)
    res = Engine(feed, strat, broker, progress=False).run()
    assert res.rebalances[1]["status"] == "held"
    assert res.orders[0].is_open
    assert len(res.orders) == 1 and res.orders[0].filled == 400  # 100 per bar, bars 1..4


def test_seed_execute_only_rebalancer_is_supported():
    class ExecOnly:
        def __init__(self):
            self.inner = NaiveRebalancer(RebalanceConfig(**CFG))

        def execute(self, target_weights, data, broker):
            return self.inner.execute(target_weights, data, broker)

    feed = capped_feed(4)
    strat = PortfolioStrategy(ExecOnly(), optimizer=lambda r, d, c, b: {"B": 0.4}, lookback=1,
                              schedule=2)
    res = Engine(feed, strat, SimulatedBroker(1e5), progress=False).run()
    assert res.fills[0].asset == "B" and res.fills[0].quantity == 2_000


def test_bad_config_is_a_typed_error():
    with pytest.raises(InputError, match="schedule"):
        PortfolioStrategy(NaiveRebalancer(), schedule="weekly")
    with pytest.raises(InputError, match="on_error"):
        PortfolioStrategy(NaiveRebalancer(), on_error="ignore")


def test_planned_costs_equal_charged_costs_in_same_bar_mode():
    # same prices, same trailing ADV/volatility, same trades: the plan's expected cost
    # per model is exactly what the broker charges
    from rebalopt import Commission, MarketImpact, Spread

    rng = np.random.default_rng(11)
    T, names = 60, ["P", "Q", "R", "S"]
    close = 40 * np.exp(np.cumsum(rng.normal(0, 0.015, (T, 4)), axis=0))
    vol = rng.integers(20_000, 80_000, (T, 4)).astype(float)
    feed = wide_feed(close={k: close[:, i] for i, k in enumerate(names)},
                     volume={k: vol[:, i] for i, k in enumerate(names)})
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0),
             MarketImpact(coef=0.7)]
    targets = iter([{"P": 0.3, "Q": 0.3, "R": 0.3}, {"P": 0.1, "Q": 0.2, "S": 0.6},
                    {"R": 0.5, "S": 0.4}])
    strat = PortfolioStrategy(NaiveRebalancer(RebalanceConfig(**CFG), costs=costs),
                              optimizer=lambda r, d, c, b: next(targets), lookback=20,
                              schedule=15)
    res = Engine(feed, strat, SimulatedBroker(1e6, costs=costs), progress=False).run()
    reb = res.to_frame("rebalances")
    assert list(reb["status"]) == ["ok"] * 3
    np.testing.assert_allclose(reb["realized_cost"], reb["planned_cost"], rtol=1e-12)
    assert (reb["planned_cost"] > 0).all()
