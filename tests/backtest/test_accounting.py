"""Accounting identities over random feeds and random orders (hypothesis).

Oracles, all independent of the broker's bookkeeping:
* a ledger rebuilt from the fills alone with pandas forward-filled marks;
* every model's cost recomputed with the validated ``PortfolioState``
  constructor on the single filled asset, with ADV/volatility recomputed by
  brute force from bars strictly before the fill;
* each fill's cash change and slippage from its own fields.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bt_helpers import Scripted, ledger_equity
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.backtest import DataFeed, Engine, ExecutionMode, OrderStatus, SimulatedBroker


def brute_adv_vol(feed: DataFeed, t: int, i: int, window: int = 5, minp: int = 2):
    vols = [feed.volume[s, i] for s in range(max(0, t - window), t)]
    vols = [v for v in vols if np.isfinite(v)]
    adv = np.mean(vols) if len(vols) >= minp else np.nan
    rets = []
    for s in range(max(0, t - window), t):
        if s >= 1:
            r = feed.close[s, i] / feed.close[s - 1, i] - 1
            if np.isfinite(r):
                rets.append(r)
    vol = np.std(rets, ddof=1) if len(rets) >= minp else np.nan
    return adv, vol


@st.composite
def scenario(draw):
    T = draw(st.integers(8, 16))
    N = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (T, N)))
    volume = rng.integers(1_000, 50_000, (T, N)).astype(float)
    missing = rng.random((T, N)) < draw(st.sampled_from([0.0, 0.15]))
    close[missing] = np.nan
    assets = [f"S{i}" for i in range(N)]
    script: dict[int, list[tuple]] = {}
    for t in range(T):
        for _ in range(draw(st.integers(0, 3))):
            a = draw(st.sampled_from(assets))
            q = draw(st.integers(1, 300)) * (1 if draw(st.integers(0, 2)) else -1)
            limit = None
            if draw(st.booleans()) and draw(st.booleans()):
                limit = float(50 * draw(st.floats(0.8, 1.25)))
            script.setdefault(t, []).append((a, float(q), limit))
    mult = draw(st.sampled_from([1.0, 10.0]))
    return {
        "close": close, "open": open_, "volume": volume, "assets": assets, "script": script,
        "account": draw(st.sampled_from(["cash", "margin"])),
        "participation": draw(st.sampled_from([None, 0.01, 0.05])),
        "remainder": draw(st.sampled_from(["pending", "cancel"])),
        "mode": draw(st.sampled_from(list(ExecutionMode))),
        "cash": draw(st.sampled_from([5_000.0, 50_000.0, 1_000_000.0])), "mult": mult,
        "impact": draw(st.booleans()),
    }


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_identities_at_every_bar(sc):
    idx = pd.bdate_range("2023-01-02", periods=len(sc["close"]))
    feed = DataFeed(idx, sc["assets"], sc["close"], open=sc["open"], volume=sc["volume"],
                    multipliers=dict.fromkeys(sc["assets"], sc["mult"]))
    costs = [Commission(per_share=0.005, bps=1.0, minimum=0.5), Spread(half_spread_bps=3.0)]
    if sc["impact"]:
        costs.append(MarketImpact(coef=0.8))
    broker = SimulatedBroker(sc["cash"], costs=costs, account=sc["account"],
                             participation=sc["participation"], remainder=sc["remainder"],
                             adv_window=5, vol_window=5, min_history=2)
    res = Engine(feed, Scripted(sc["script"]), broker, sc["mode"], progress=False).run()

    event(f"fills: {'many' if len(res.fills) > 5 else 'few'}")
    event(f"rejected: {any(o.status is OrderStatus.REJECTED for o in res.orders)}")
    event(f"partial: {any(0 < o.filled < o.quantity for o in res.orders)}")

    # 1. equity, cash and holdings at every bar equal the ledger rebuilt from fills
    cash, hold, equity = ledger_equity(feed, res.fills, sc["cash"])
    np.testing.assert_allclose(res.cash, cash, atol=1e-6)
    np.testing.assert_allclose(res.holdings, hold, atol=1e-9)
    np.testing.assert_allclose(res.equity, equity, atol=1e-6)

    ref_rows = feed.close if sc["mode"] is ExecutionMode.SAME_BAR else feed.open
    filled_by_order: dict[int, float] = {}
    for f in res.fills:
        i = feed.index_of(f.asset)
        # 2. cash change of a fill = -(q * fill price * m) - commission
        assert f.cash_flow == -(f.quantity * f.price * f.multiplier) - f.fee
        assert f.fee == f.costs["Commission"]
        # fills happen on bars with a price, at the mode's reference price
        assert feed.available[f.bar, i] and f.reference_price == ref_rows[f.bar, i]
        # 3. each model's cost equals its evaluate() on a validated single-asset state
        adv, vol = brute_adv_vol(feed, f.bar, i)
        state = PortfolioState({}, 1.0, {f.asset: f.reference_price},
                               adv={f.asset: adv}, volatility={f.asset: vol},
                               multipliers={f.asset: f.multiplier})
        q = np.array([f.quantity])
        slip = 0.0
        for model in costs:
            expect = float(model.evaluate(q, state)[0])
            np.testing.assert_allclose(f.costs[model.name], expect, rtol=1e-12, atol=1e-12)
            slip += expect if model.is_slippage else 0.0
        # slippage is in the price: |q| * |fill - ref| * m == spread + impact
        np.testing.assert_allclose(abs(f.quantity) * (f.price - f.reference_price)
                                   * np.sign(f.quantity) * f.multiplier, slip,
                                   rtol=1e-9, atol=1e-9)
        filled_by_order[f.order_id] = filled_by_order.get(f.order_id, 0.0) + abs(f.quantity)

    # 4. costs by model are the sums of the fills' costs, and match the broker's totals
    for name, total in res.costs_by_model.items():
        np.testing.assert_allclose(total, broker.cost_totals[name], atol=1e-9)

    # 5. orders: filled quantity is the sum of their fills; statuses are consistent
    for o in res.orders:
        np.testing.assert_allclose(o.filled, filled_by_order.get(o.order_id, 0.0), atol=1e-9)
        if o.status is OrderStatus.FILLED:
            assert abs(o.filled - o.quantity) < 1e-9
        if o.status is OrderStatus.REJECTED:
            assert o.reason
    # participation cap: per bar and asset, filled shares <= cap * volume
    if sc["participation"] is not None:
        per = pd.DataFrame([(f.bar, f.asset, abs(f.quantity)) for f in res.fills],
                           columns=["bar", "asset", "q"]).groupby(["bar", "asset"])["q"].sum()
        for (bar, asset), q in per.items():
            assert q <= sc["participation"] * feed.volume[bar, feed.index_of(asset)] + 1e-9

    # 6. a cash account never borrows and never shorts
    if sc["account"] == "cash":
        assert (res.cash >= -1e-6).all()
        assert (res.holdings >= -1e-9).all()


def _book(broker, res):
    """Everything the broker records, as exact values."""
    fills = [(f.bar, f.order_id, f.asset, f.quantity, f.reference_price, f.price,
              f.multiplier, f.fee, f.slippage, sorted(f.costs.items()), f.cash_flow, f.tag)
             for f in res.fills]
    orders = [(o.order_id, o.status, o.filled, o.avg_fill_price, o.reason, o.closed_at)
              for o in res.orders]
    arrays = [a.tobytes() for a in (broker.holdings, broker.avg_cost, broker.realized_pnl,
                                    res.cash, res.equity)]
    return (fills, orders, arrays, broker.cash, sorted(broker.cost_totals.items()),
            list(broker.positions))


@settings(max_examples=150, deadline=None)
@given(scenario(), st.sampled_from([1.0, 1.05, 2.0]))
def test_a_batch_filled_at_once_equals_the_order_by_order_loop(sc, leverage):
    """Oracle: the same broker with the batch path switched off (each order decided and
    applied in turn). Every fill, order, array and total must be equal bit for bit,
    rejections (cash, short sales, leverage near its cap, impact) included."""
    idx = pd.bdate_range("2023-01-02", periods=len(sc["close"]))
    books = []
    for fast in (True, False):
        feed = DataFeed(idx, sc["assets"], sc["close"], open=sc["open"], volume=sc["volume"],
                        multipliers=dict.fromkeys(sc["assets"], sc["mult"]))
        costs = [Commission(per_share=0.005, bps=1.0, minimum=0.5), Spread(half_spread_bps=3.0)]
        if sc["impact"]:
            costs.append(MarketImpact(coef=0.8))
        broker = SimulatedBroker(sc["cash"], costs=costs, account=sc["account"],
                                 participation=sc["participation"], remainder=sc["remainder"],
                                 adv_window=5, vol_window=5, min_history=2,
                                 max_leverage=leverage)
        if not fast:
            broker._fill_all = lambda *a, **k: None
        res = Engine(feed, Scripted(sc["script"]), broker, sc["mode"], progress=False).run()
        books.append(_book(broker, res))
    assert books[0] == books[1]
