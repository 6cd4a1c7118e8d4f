"""NaiveRebalancer: a hand-computed book, the config's switches, bad inputs, properties.

Hand-computed book (round lots of 100 shares, allow_short=False):

    cash 25,250
    AAA 300 sh @ 50 = 15,000     target  0.53
    BBB 150 sh @ 25 =  3,750     target -0.10 -> clipped to 0 -> closed (150 sh, not a lot)
    CCC 100 sh @ 60 =  6,000     not in the targets          -> closed
    DDD   0 sh @ 40              target  0.30
    equity 50,000

    AAA 0.53 * 50,000 = 26,500; - 15,000 = 11,500 -> 230 sh -> 2.3 lots -> 200 sh (+10,000)
    DDD 0.30 * 50,000 = 15,000                     -> 375 sh -> 3.75 lots -> 400 sh (+16,000)
    BBB -150 sh (-3,750);  CCC -100 sh (-6,000)

    Commission(per_share=0.02, minimum=4): AAA 4.00, BBB 3.00->4.00, CCC 2.00->4.00, DDD 8.00 = 20.00
    Spread(10 bps): AAA 10.00, BBB 3.75, CCC 6.00, DDD 16.00 = 35.75
    total cost 55.75; signed notional +16,250
    post cash 25,250 - 16,250 - 55.75 = 8,944.25
    post weights AAA 25,000 / 50,000 = 0.50, DDD 16,000 / 50,000 = 0.32
    turnover 0.5 * 35,750 / 50,000 = 0.3575
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt.costs import Commission, MarketImpact, Spread
from rebalopt.errors import InputError
from rebalopt.orders import OrderSide
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig
from rebalopt.state import PortfolioState

CENT = 1e-6  # tighter than a cent


def hand_state(**kw) -> PortfolioState:
    return PortfolioState({"AAA": 300, "BBB": 150, "CCC": 100}, 25_250.0,
                          {"AAA": 50.0, "BBB": 25.0, "CCC": 60.0, "DDD": 40.0}, **kw)


HAND_TARGETS = {"AAA": 0.53, "BBB": -0.10, "DDD": 0.30}
HAND_COSTS = [Commission(per_share=0.02, minimum=4.0), Spread(10.0)]


def test_hand_computed_round_lot_rebalance():
    state = hand_state()
    assert state.equity == pytest.approx(50_000.0, abs=CENT)
    reb = NaiveRebalancer(RebalanceConfig(round_lots=True, lot_size=100), HAND_COSTS)
    plan = reb.plan(state, HAND_TARGETS)

    np.testing.assert_array_equal(plan.trades, [200, -150, -100, 400])
    np.testing.assert_array_equal(plan.post_holdings, [500, 0, 0, 400])
    np.testing.assert_allclose(plan.targets, [0.53, 0.0, 0.0, 0.30], atol=1e-15)
    np.testing.assert_allclose(plan.costs["Commission"], [4.00, 4.00, 4.00, 8.00], atol=CENT)
    np.testing.assert_allclose(plan.costs["Spread"], [10.00, 3.75, 6.00, 16.00], atol=CENT)
    assert plan.cost_by_model == pytest.approx({"Commission": 20.00, "Spread": 35.75}, abs=CENT)
    assert plan.total_cost == pytest.approx(55.75, abs=CENT)
    np.testing.assert_allclose(plan.trade_values, [10_000, -3_750, -6_000, 16_000], atol=CENT)
    assert plan.post_cash == pytest.approx(8_944.25, abs=CENT)
    np.testing.assert_allclose(plan.post_weights, [0.50, 0.0, 0.0, 0.32], atol=1e-12)
    assert plan.turnover == pytest.approx(0.3575, abs=1e-12)
    assert plan.post_equity == pytest.approx(50_000 - 55.75, abs=CENT)
    assert plan.n_trades == 4

    orders = plan.orders()
    assert [(o.asset, o.side, o.quantity) for o in orders] == [
        ("BBB", OrderSide.SELL, 150), ("CCC", OrderSide.SELL, 100),
        ("AAA", OrderSide.BUY, 200), ("DDD", OrderSide.BUY, 400),
    ]
    assert [o.expected_cost for o in orders] == pytest.approx([7.75, 10.00, 14.00, 24.00],
                                                              abs=CENT)
    assert [o.reference_price for o in orders] == [25.0, 60.0, 50.0, 40.0]


def test_hand_computed_whole_shares_with_state_lots_and_fractional():
    # whole shares, per-asset lots from the state: AAA lot 1 -> 230 sh;
    # DDD lot 40: 375 / 40 = 9.375 lots -> 9 lots = 360 sh
    state = hand_state(lot_sizes={"DDD": 40})
    plan = NaiveRebalancer(RebalanceConfig()).plan(state, HAND_TARGETS)
    np.testing.assert_array_equal(plan.trades, [230, -150, -100, 360])
    # post cash without costs: 25,250 - (11,500 - 3,750 - 6,000 + 14,400) = 9,100
    assert plan.post_cash == pytest.approx(9_100.0, abs=CENT)
    assert plan.total_cost == 0.0
    # fractional: exact shares, 230 and 375
    plan = NaiveRebalancer(RebalanceConfig(fractional=True)).plan(state, HAND_TARGETS)
    np.testing.assert_allclose(plan.trades, [230, -150, -100, 375], atol=1e-9)
    # round_lots overrides the state's lots (and the fractional flag): 200 and 400
    plan = NaiveRebalancer(RebalanceConfig(fractional=True, round_lots=True)).plan(
        state, HAND_TARGETS)
    np.testing.assert_array_equal(plan.trades, [200, -150, -100, 400])


def test_thresholds_skip_small_trades_but_never_a_close():
    # equity: 10,000 cash + 100 * 50 (AAA) + 1 * 10 (EEE, a 10-currency dust position) = 15,010
    state = PortfolioState({"AAA": 100, "EEE": 1}, 10_000.0, {"AAA": 50.0, "BBB": 10.0, "EEE": 10.0})
    eq = 15_010.0
    # AAA: 5,000 now; target 5,000 + 450 -> delta 450 < 1% of equity (150.10)? no: 450 > 150.10
    #      but with min_weight_change 0.05 (750.50) it is skipped
    # BBB: buy 120 -> 12 sh, below min_trade_value 200 -> skipped
    targets = {"AAA": (5_000 + 450) / eq, "BBB": 120 / eq}
    cfg = RebalanceConfig(min_weight_change=0.05, min_trade_value=200.0, fractional=True)
    plan = NaiveRebalancer(cfg).plan(state, targets)
    np.testing.assert_array_equal(plan.trades, [0.0, 0.0, -1.0])  # EEE closed regardless
    cfg = RebalanceConfig(min_weight_change=0.0, min_trade_value=100.0, fractional=True)
    plan = NaiveRebalancer(cfg).plan(state, targets)
    np.testing.assert_allclose(plan.trades, [9.0, 12.0, -1.0], atol=1e-9)
    assert not np.signbit(plan.trades[plan.trades == 0]).any()


def test_single_weight_cap_cash_buffer_and_shorts():
    state = PortfolioState({}, 100_000.0, {"A": 100.0, "B": 50.0})
    # cap 0.4: A 0.6 -> 0.4 -> 400 sh ; cash buffer 10%: x0.9 -> 360 sh
    cfg = RebalanceConfig(max_single_weight=0.4, cash_buffer=0.1)
    plan = NaiveRebalancer(cfg).plan(state, {"A": 0.6, "B": -0.2})
    np.testing.assert_array_equal(plan.trades, [360, 0])   # B's short clipped to 0
    np.testing.assert_allclose(plan.targets, [0.36, 0.0])
    # shorts allowed (gross 0.8 <= 1.5): A 0.6 -> 600 sh; B -0.2 * 100,000 / 50 -> -400 sh
    cfg = RebalanceConfig(allow_short=True, max_gross_leverage=1.5)
    plan = NaiveRebalancer(cfg).plan(state, {"A": 0.6, "B": -0.2})
    np.testing.assert_array_equal(plan.trades, [600, -400])
    # a short sale is a sell and is sequenced first
    assert [o.side for o in plan.orders()] == [OrderSide.SELL, OrderSide.BUY]
    # closing a short buys it back; equity 100,000 - 100 * 50 = 95,000 -> A 0.5 -> 475 sh
    short = PortfolioState({"B": -100}, 100_000.0, {"A": 100.0, "B": 50.0})
    plan = NaiveRebalancer().plan(short, {"A": 0.5})
    np.testing.assert_array_equal(plan.trades, [475, 100])
    assert plan.post_holdings[1] == 0


def test_lot_rounding_never_opens_a_short_when_shorts_are_not_allowed():
    # 60 shares held, 100-share lots, target ~0: the sell of 59.x shares rounds to a full lot
    # (100) which would leave -40; with allow_short=False it stops at 0.
    state = PortfolioState({"A": 60}, 10_000.0, {"A": 10.0, "B": 10.0})
    cfg = RebalanceConfig(round_lots=True, lot_size=100, min_weight_change=0, min_trade_value=0)
    plan = NaiveRebalancer(cfg).plan(state, {"A": 0.0001, "B": 0.5})
    np.testing.assert_array_equal(plan.trades, [-60, 500])
    assert plan.post_holdings[0] == 0


# ------------------------------------------------------------------ bad inputs
def expect_no_plan(state_fn, targets, asset, field, config=None, costs=()):
    """Building the state or the plan raises InputError naming asset and field."""
    with pytest.raises(InputError) as info:
        NaiveRebalancer(config or RebalanceConfig(), list(costs)).plan(state_fn(), targets)
    assert (info.value.asset, info.value.field) == (asset, field), str(info.value)


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(("targets", "asset", "field"), [
    ({"AAA": 0.3, "ZZZ": 0.1}, "ZZZ", "target weight"),            # unknown asset
    ({"AAA": NAN}, "AAA", "target weight"),
    ({"DDD": INF}, "DDD", "target weight"),
    ({"DDD": -INF}, "DDD", "target weight"),
    (pd.Series([0.1, 0.2], index=["AAA", "AAA"]), "AAA", "target weight"),
    (np.array([0.1, 0.2]), None, "targets"),  # unlabelled: names, never positions
    ({"AAA": 0.7, "DDD": 0.5}, None, "target weight"),               # gross 1.2 > 1
])
def test_bad_targets(targets, asset, field):
    expect_no_plan(hand_state, targets, asset, field)


def test_target_for_asset_with_invalid_price():
    for bad in (NAN, INF, 0.0, -40.0):
        def make(bad=bad):
            return PortfolioState({"AAA": 300}, 25_250.0, {"AAA": 50.0, "DDD": bad})
        expect_no_plan(make, {"AAA": 0.5, "DDD": 0.2}, "DDD", "target weight")


@pytest.mark.parametrize(("prices", "holdings", "asset", "field"), [
    ({"AAA": NAN, "BBB": 25.0}, {"AAA": 1}, "AAA", "price"),
    ({"AAA": 0.0, "BBB": 25.0}, {"AAA": 1}, "AAA", "price"),
    ({"AAA": -1.0, "BBB": 25.0}, {"AAA": 1}, "AAA", "price"),
    ({"AAA": INF, "BBB": 25.0}, {"AAA": 1}, "AAA", "price"),
    ({"BBB": 25.0}, {"AAA": 1}, "AAA", "price"),                     # held, no price
    ({"AAA": 50.0, "BBB": 25.0}, {"AAA": NAN}, "AAA", "holdings"),
    ({"AAA": 50.0, "BBB": 25.0}, {"AAA": -INF}, "AAA", "holdings"),
])
def test_bad_state_means_no_plan(prices, holdings, asset, field):
    expect_no_plan(lambda: PortfolioState(holdings, 1_000.0, prices), {"BBB": 0.5}, asset, field)


def test_gross_leverage_with_shorts():
    cfg = RebalanceConfig(allow_short=True)
    expect_no_plan(hand_state, {"AAA": 0.8, "DDD": -0.3}, None, "target weight", cfg)
    plan = NaiveRebalancer(RebalanceConfig(allow_short=True, max_gross_leverage=1.1)).plan(
        hand_state(), {"AAA": 0.8, "DDD": -0.3})
    assert plan.n_trades == 4


def test_cost_model_missing_data_freezes_the_asset():
    # impact needs volatility and ADV for every traded asset: CCC (held, target 0, so
    # naive would close it) has no volatility, so it is not traded and is reported;
    # the other trades are those of the plan without the impact model
    state = hand_state(adv={"AAA": 1e6, "BBB": 1e5, "CCC": 1e5, "DDD": 1e5},
                       volatility={"AAA": 0.02, "BBB": 0.02, "DDD": 0.02})
    plan = NaiveRebalancer(RebalanceConfig(), [MarketImpact()]).plan(state, HAND_TARGETS)
    free = NaiveRebalancer(RebalanceConfig()).plan(state, HAND_TARGETS)
    c = state.index_of("CCC")
    assert free.trades[c] == -100.0 and plan.trades[c] == 0.0
    others = np.arange(state.n) != c
    np.testing.assert_array_equal(plan.trades[others], free.trades[others])
    assert list(plan.info["untradable"]) == ["CCC"]
    assert "volatility" in plan.info["untradable"]["CCC"]
    # the cost face still refuses a trade in it, naming asset and field
    with pytest.raises(InputError) as info:
        MarketImpact().evaluate(np.where(others, 0.0, -100.0), state)
    assert (info.value.asset, info.value.field) == ("CCC", "volatility")


@pytest.mark.parametrize(("kw", "field"), [
    ({"min_trade_value": -1.0}, "min_trade_value"),
    ({"min_trade_value": NAN}, "min_trade_value"),
    ({"min_trade_value": "100"}, "min_trade_value"),
    ({"min_weight_change": -0.01}, "min_weight_change"),
    ({"min_weight_change": INF}, "min_weight_change"),
    ({"lot_size": 0}, "lot_size"),
    ({"lot_size": -100}, "lot_size"),
    ({"max_single_weight": 0.0}, "max_single_weight"),
    ({"max_gross_leverage": 0.0}, "max_gross_leverage"),
    ({"max_gross_leverage": -1.0}, "max_gross_leverage"),
    ({"cash_buffer": 1.0}, "cash_buffer"),
    ({"cash_buffer": -0.1}, "cash_buffer"),
    ({"min_weight_change": 0.5, "max_single_weight": 0.3}, "max_single_weight"),  # contradictory
    ({"pending": "maybe"}, "pending"),
])
def test_bad_config(kw, field):
    with pytest.raises(InputError) as info:
        RebalanceConfig(**kw)
    assert info.value.field == f"RebalanceConfig.{field}"


def test_config_accepts_numpy_scalars():
    cfg = RebalanceConfig(min_trade_value=np.int64(100), min_weight_change=np.float64(0.0))
    assert cfg.min_trade_value == 100


# ------------------------------------------------------------- property tests
@st.composite
def problems(draw):
    n = draw(st.integers(1, 6))
    tickers = [f"A{i}" for i in range(n)]
    prices = draw(st.lists(st.floats(1.0, 1_000.0), min_size=n, max_size=n))
    lots = draw(st.lists(st.sampled_from([1, 1, 10, 100]), min_size=n, max_size=n))
    mults = draw(st.lists(st.sampled_from([1.0, 1.0, 1.0, 5.0, 50.0]), min_size=n, max_size=n))
    units = draw(st.lists(st.integers(-20, 60), min_size=n, max_size=n))
    # mostly whole lots; sometimes an odd lot or a fractional share (a dividend reinvested)
    odd = draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 7.0, 0.5]), min_size=n, max_size=n))
    holdings = [u * lot + (x if u > 0 else 0.0) for u, lot, x in zip(units, lots, odd)]
    value = sum(h * p * m for h, p, m in zip(holdings, prices, mults))
    gross_value = sum(abs(h * p * m) for h, p, m in zip(holdings, prices, mults))
    cash = max(0.0, -value) + 0.2 * gross_value + draw(st.floats(1e3, 1e7))
    state = PortfolioState(
        dict(zip(tickers, holdings)), cash, dict(zip(tickers, prices)),
        adv=dict(zip(tickers, draw(st.lists(st.floats(1e3, 1e7), min_size=n, max_size=n)))),
        volatility={t: 0.02 for t in tickers},
        lot_sizes=dict(zip(tickers, lots)), multipliers=dict(zip(tickers, mults)),
    )
    raw = draw(st.lists(st.one_of(st.none(), st.just(0.0), st.floats(-0.5, 1.0)),
                        min_size=n, max_size=n))
    targets = {t: w for t, w in zip(tickers, raw) if w is not None}
    gross = sum(abs(w) for w in targets.values())
    if gross > 1.0:
        targets = {t: w / gross * 0.999 for t, w in targets.items()}
    config = RebalanceConfig(
        min_trade_value=draw(st.sampled_from([0.0, 100.0, 5_000.0])),
        min_weight_change=draw(st.sampled_from([0.0, 0.005, 0.05])),
        fractional=draw(st.booleans()),
        round_lots=draw(st.booleans()),
        lot_size=draw(st.sampled_from([1, 10, 100])),
        allow_short=draw(st.booleans()),
        cash_buffer=draw(st.sampled_from([0.0, 0.02])),
    )
    costs = [Commission(per_share=0.005, bps=0.5, minimum=1.0, per_order=0.25), Spread(4.0),
             MarketImpact()]
    return state, targets, config, costs


PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(problems())
def test_naive_plan_properties(problem):
    state, targets, config, costs = problem
    plan = NaiveRebalancer(config, costs).plan(state, targets)
    unit = state.prices * state.multipliers
    orders = plan.orders()

    # accounting identity, from the order tickets and the models called afresh
    notional = sum(o.signed_quantity * unit[state.index_of(o.asset)] for o in orders)
    ticket_costs = sum(o.expected_cost for o in orders)
    model_costs = sum(m.evaluate(plan.trades, state).sum() for m in costs)
    tol = 1e-9 * (state.equity + abs(notional)) + 1e-9
    assert ticket_costs == pytest.approx(model_costs, abs=tol)
    assert plan.total_cost == pytest.approx(model_costs, abs=tol)
    assert plan.post_cash == pytest.approx(state.cash - notional - model_costs, abs=tol)
    if plan.post_equity > 0:  # a state with no equity left cannot be built
        assert plan.post_cash == pytest.approx(state.after(plan.trades, model_costs).cash, abs=tol)
    assert plan.post_weights.sum() + plan.post_cash_weight == pytest.approx(
        1.0 - plan.total_cost / state.equity, abs=1e-9)

    # tickets: finite, non-zero, one per traded asset, sells first
    assert len(orders) == np.count_nonzero(plan.trades)
    for o in orders:
        assert math.isfinite(o.quantity) and o.quantity > 0
        assert math.isfinite(o.expected_cost) and o.expected_cost >= 0
    sides = [o.side for o in orders]
    assert sides == sorted(sides, key=lambda s: s is OrderSide.BUY)

    w = plan.targets
    closing = (w == 0) & (state.holdings != 0)
    # closing positions are fully closed; untargeted flat assets are not traded
    np.testing.assert_array_equal(plan.post_holdings[closing], 0.0)
    np.testing.assert_array_equal(plan.trades[(w == 0) & (state.holdings == 0)], 0.0)
    if not config.allow_short:
        assert (w >= 0).all()
        # no short is opened or deepened
        assert (plan.post_holdings >= np.minimum(state.holdings, 0.0) - 1e-9).all()
        assert (plan.post_holdings[state.holdings >= 0] >= 0).all()
    # whole-share mode: every trade is a whole number of lots, or takes the position to 0
    lots = (np.full(state.n, float(config.lot_size)) if config.round_lots
            else None if config.fractional else state.lot_sizes)
    if lots is not None:
        n_lots = plan.trades / lots
        whole = np.abs(n_lots - np.round(n_lots)) < 1e-9
        assert (whole | (plan.post_holdings == 0)).all()
    # small non-closing trades are skipped
    delta = w * state.equity - state.values
    small = (np.abs(delta) < config.min_weight_change * state.equity) | (
        np.abs(delta) < config.min_trade_value)
    np.testing.assert_array_equal(plan.trades[small & ~closing], 0.0)


@PROPERTY
@given(problems())
def test_fractional_plan_reaches_targets_exactly(problem):
    """Without thresholds or rounding, post-trade weights equal the (prepared) targets."""
    state, targets, config, costs = problem
    cfg = RebalanceConfig(min_trade_value=0, min_weight_change=0, fractional=True,
                          allow_short=config.allow_short, dust_value=0.0, dust_shares=0.0)
    plan = NaiveRebalancer(cfg, costs).plan(state, targets)
    expected = np.array([targets.get(a, 0.0) for a in state.assets])
    if not cfg.allow_short:
        expected = np.clip(expected, 0, None)
    np.testing.assert_allclose(plan.post_weights, expected, atol=1e-9)
