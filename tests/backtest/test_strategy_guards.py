"""Strategy guards: fractional plans on a whole-share broker, and rejected orders in the results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bt_helpers import wide_feed

from rebalopt import (
    InputError,
    IntegerRebalancer,
    NaiveRebalancer,
    OptimalRebalancer,
    PortfolioState,
    RebalanceConfig,
    RebalancePlan,
    Spread,
)
from rebalopt.backtest import Engine, ExecutionMode, PortfolioStrategy, SimulatedBroker
from rebalopt.backtest.result import OUTCOMES
from rebalopt.backtest.strategy import check_whole_lots
from rebalopt.research import RoundedRebalancer, ScheduledTargets

CFG = {"min_weight_change": 0.0, "min_trade_value": 0.0}
TARGETS = {"A": 0.5, "B": 0.3}


def odd_feed(T: int = 8):
    # prices that make 50% / 30% of 100,000 a fractional number of shares
    return wide_feed(close={"A": [33.3 + 0.1 * t for t in range(T)],
                            "B": [71.7 - 0.2 * t for t in range(T)]},
                     volume={"A": [1e7] * T, "B": [1e7] * T})


def run(rebalancer, broker, on_error="raise", targets=TARGETS, feed=None,
        mode=ExecutionMode.SAME_BAR):
    feed = odd_feed() if feed is None else feed
    strat = PortfolioStrategy(rebalancer, optimizer=lambda r, d, c, b: targets, lookback=1,
                              schedule=3, on_error=on_error)
    return Engine(feed, strat, broker, mode, progress=False).run(), strat


def test_plan_is_fractional_so_the_guard_has_something_to_catch():
    # independent premise: the default optimal plan is not whole shares here
    s = PortfolioState({}, 100_000.0, {"A": 33.4, "B": 71.5})
    p = OptimalRebalancer().plan(s, pd.Series(TARGETS))
    assert np.abs(p.trades - np.round(p.trades)).max() > 1e-3


def test_fractional_optimal_on_whole_share_broker_raises():
    with pytest.raises(InputError) as ei:
        run(OptimalRebalancer(), SimulatedBroker(100_000.0))
    e = ei.value
    assert e.field == "trade" and e.asset in ("A", "B")
    msg = str(e)
    assert "integer='round'" in msg and "IntegerRebalancer" in msg
    assert "fractional=True" in msg


@pytest.mark.parametrize("mode", list(ExecutionMode))
def test_fractional_optimal_on_whole_share_broker_holds(mode):
    res, _ = run(OptimalRebalancer(), SimulatedBroker(100_000.0), on_error="hold", mode=mode)
    assert len(res.rebalances) >= 2
    assert all(r["status"] == "held" for r in res.rebalances)
    assert all("integer='round'" in r["error"] for r in res.rebalances)
    assert res.n_held == len(res.rebalances)
    # nothing submitted, nothing rejected, the book stays in cash
    assert res.orders == [] and res.fills == []
    assert res.n_rejected == 0 and res.rejected_orders.empty
    np.testing.assert_array_equal(res.cash, 100_000.0)
    for r in res.rebalances:
        assert r["n_orders"] == 0 and all(r[k] == 0 for k in OUTCOMES)


@pytest.mark.parametrize("reb", [
    lambda: OptimalRebalancer(integer="round"),
    lambda: IntegerRebalancer(relaxation=OptimalRebalancer(), mode="round"),
], ids=["optimal-round", "integer-rebalancer"])
def test_whole_share_plans_run_without_rejections(reb):
    res, _ = run(reb(), SimulatedBroker(100_000.0))
    assert res.n_rejected == 0 and res.rejected_orders.empty
    assert res.metrics()["n_rejected"] == 0.0
    assert all(r["status"] == "ok" for r in res.rebalances)
    first = res.rebalances[0]
    assert first["n_orders"] == 2 and first["n_filled"] == 2
    for r in res.rebalances:
        assert r["n_filled"] == r["n_orders"]
    # whole shares held, near the targets (a share of A is 0.03% of equity)
    assert np.all(res.holdings == np.round(res.holdings))
    t = res.rebalances[0]["bar"]
    w = res.holdings[t] * np.array([33.3 + 0.1 * t, 71.7 - 0.2 * t]) / res.equity[t]
    np.testing.assert_allclose(w, [0.5, 0.3], atol=1e-3)


def test_fractional_broker_is_not_checked():
    res, _ = run(OptimalRebalancer(), SimulatedBroker(100_000.0, fractional=True))
    assert res.n_rejected == 0 and all(r["status"] == "ok" for r in res.rebalances)
    assert res.fills and np.abs(res.holdings - np.round(res.holdings)).max() > 1e-3


def test_naive_all_in_with_spread_records_the_rejected_buy():
    # 100% of 100,000 in A at 10: naive plans 10,000 shares; the spread fills at
    # 10 * (1 + 10e-4) = 10.01, so the buy needs 100,100 of cash and a cash account rejects it
    T = 4
    feed = wide_feed(close={"A": [10.0] * T, "B": [20.0] * T})
    broker = SimulatedBroker(100_000.0, costs=[Spread(10.0)])
    res, _ = run(NaiveRebalancer(RebalanceConfig(**CFG)), broker, targets={"A": 1.0},
                     feed=feed)
    rej = res.rejected_orders
    assert len(rej) == len(res.rebalances) == res.n_rejected  # every rebalance tries again
    row = rej.iloc[0]
    assert (row["asset"], row["side"], row["quantity"], row["filled"]) == ("A", "buy", 1e4, 0.0)
    assert "cash" in row["reason"]
    assert row["tag"] == 0
    assert res.metrics()["n_rejected"] == float(len(rej))
    assert f"rejected orders {len(rej)}" in res.summary()
    rec = res.rebalances[0]
    assert rec["status"] == "ok" and rec["n_orders"] == 1
    assert rec["n_rejected"] == 1 and rec["n_filled"] == 0
    frame = res.rebalances_frame()
    assert list(frame["n_rejected"]) == [1] * len(res.rebalances)
    assert res.fills == [] and (res.cash == 100_000.0).all()


def test_outcomes_partition_partial_fills_under_a_cap():
    # participation 10% of 1,000 shares a bar: each order fills 100 of its 5,000-ish
    # shares and the remainder is cancelled at the end of the pass -> one partial each
    T = 9
    feed = wide_feed(close={"A": [10.0] * T, "B": [20.0] * T},
                     volume={"A": [1000.0] * T, "B": [1000.0] * T})
    broker = SimulatedBroker(100_000.0, participation=0.1, remainder="cancel")
    res, _ = run(NaiveRebalancer(RebalanceConfig(**CFG)), broker, targets={"A": 0.5},
                     feed=feed)
    frame = res.rebalances_frame()
    assert len(frame) >= 2
    for r in res.rebalances:
        assert r["n_orders"] == 1 and r["n_partial"] == 1
        assert sum(r[k] for k in OUTCOMES) == r["n_orders"]
    # the records the strategy wrote and the frame computed from the orders agree
    for k in OUTCOMES:
        assert list(frame[k]) == [r[k] for r in res.rebalances]
    assert (frame[list(OUTCOMES)].sum(axis=1) == frame["n_orders"]).all()


# ------------------------------------------------------------ check_whole_lots
def _plan(holdings, trades, lots=None):
    s = PortfolioState(holdings, 10_000.0, {"A": 10.0, "B": 20.0}, lot_sizes=lots)
    return RebalancePlan.from_trades(s, np.zeros(2), np.asarray(trades, float), [], "test")


class _Whole:
    fractional = False


def test_check_whole_lots_cases():
    whole = _Whole()
    check_whole_lots(_plan({}, [3.0, -0.0]), whole)  # whole shares
    check_whole_lots(_plan({"A": 2.5}, [-2.5, 1.0]), whole)  # exact close of a fractional holding
    check_whole_lots(_plan({}, [200.0, 30.0], lots={"A": 100, "B": 10}), whole)
    with pytest.raises(InputError) as ei:
        check_whole_lots(_plan({"A": 2.5}, [-1.5, 1.0]), whole)  # a partial close is not exempt
    assert ei.value.asset == "A" and ei.value.field == "trade"
    with pytest.raises(InputError) as ei:
        check_whole_lots(_plan({}, [200.0, 35.0], lots={"A": 100, "B": 10}), whole)
    assert ei.value.asset == "B" and "lot 10" in str(ei.value)
    with pytest.raises(InputError, match="2 such trades"):
        check_whole_lots(_plan({}, [0.5, 0.25]), whole)
    # fractional or unknown brokers are not checked
    check_whole_lots(_plan({}, [0.5, 0.25]), SimulatedBroker(fractional=True))
    check_whole_lots(_plan({}, [0.5, 0.25]), object())


# ------------------------------------------------------------ research strategy
def _scheduled(rebalancer, on_error="raise"):
    feed = odd_feed(6)
    frame = pd.DataFrame([TARGETS, TARGETS], index=feed.dates[[1, 4]])
    strat = ScheduledTargets(frame, rebalancer, on_error=on_error)
    return Engine(feed, strat, SimulatedBroker(100_000.0), progress=False).run()


def test_scheduled_targets_guard():
    with pytest.raises(InputError, match="integer='round'"):
        _scheduled(OptimalRebalancer())
    held = _scheduled(OptimalRebalancer(), on_error="hold")
    assert [r["status"] for r in held.rebalances] == ["held", "held"]
    assert held.orders == []
    ok = _scheduled(RoundedRebalancer(OptimalRebalancer()))
    assert ok.n_rejected == 0 and ok.orders
    assert [r["n_filled"] for r in ok.rebalances] == [r["n_orders"] for r in ok.rebalances]
