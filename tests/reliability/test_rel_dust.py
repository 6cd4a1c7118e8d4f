"""Dust orders (issue 13, item 9): no emitted order is below the dust threshold
unless it closes a position, and the optimal plan still holds every hard constraint.

Oracles: the order list of the plan checked against the thresholds and the
holdings here; constraints re-checked by formulas written here (cash, long-only).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_helpers import count

from rebalopt import BandRebalancer, NaiveRebalancer, PortfolioState, RebalanceConfig, Spread
from rebalopt.rebalance.dust import DUST_SHARES, DUST_VALUE
from rebalopt.rebalance.optimal import OptimalRebalancer

ZERO = {"min_trade_value": 0.0, "min_weight_change": 0.0, "fractional": True}


def check_no_dust(plan, value=DUST_VALUE, shares=DUST_SHARES) -> None:
    s = plan.state
    for o in plan.orders():
        i = s.index_of(o.asset)
        q = o.quantity
        closes = abs(s.holdings[i]) > 0 and abs(abs(q) - abs(s.holdings[i])) == 0.0
        notional = abs(q) * s.prices[i] * s.multipliers[i]
        assert closes or (notional >= value and abs(q) >= shares), (o, notional)


def check_hard(plan) -> None:
    s = plan.state
    post = s.holdings + plan.trades
    cash = s.cash - float(plan.trades @ (s.prices * s.multipliers)) - plan.total_cost
    assert cash >= -1e-7 * s.equity  # CashFloor(0)
    assert (post * s.prices >= -1e-7 * s.equity).all()  # LongOnly


def test_the_issues_case_zero_targets_give_no_dust_orders():
    """A fractional optimal plan where several assets have a zero target and nothing held:
    the solver's residue there used to become orders of a fraction of a cent."""
    count("dust")
    rng = np.random.default_rng(4)
    n = 12
    assets = [f"S{i}" for i in range(n)]
    state = PortfolioState({a: float(q) for a, q in zip(assets[:6], rng.integers(1, 50, 6))},
                           3_000.0, dict(zip(assets, rng.uniform(5, 400, n))))
    targets = dict(zip(assets[:6], rng.dirichlet(np.ones(6)) * 0.97))
    plan = OptimalRebalancer(costs=[Spread(1.0)]).plan(state, targets)
    check_no_dust(plan)
    check_hard(plan)
    raw = OptimalRebalancer(costs=[Spread(1.0)], dust_value=0.0, dust_shares=0.0)
    assert raw.dust_value == 0.0  # the threshold is a documented, configurable choice


@st.composite
def accounts(draw):
    n = draw(st.integers(2, 7))
    assets = [f"A{i}" for i in range(n)]
    prices = draw(st.lists(st.floats(0.05, 3_000.0), min_size=n, max_size=n))
    held = draw(st.lists(st.sampled_from([0.0, 1e-7, 0.3, 1.0, 7.0, 150.0]),
                         min_size=n, max_size=n))
    cash = draw(st.sampled_from([0.5, 20.0, 1_000.0, 1e6]))
    raw = draw(st.lists(st.sampled_from([0.0, 0.0, 1e-9, 1e-6, 1e-4, 0.05, 0.3]),
                        min_size=n, max_size=n))
    total = sum(raw)
    scale = draw(st.sampled_from([0.5, 0.9, 1.0])) / total if total > 0 else 0.0
    targets = {a: w * scale for a, w in zip(assets, raw)}
    state = PortfolioState(dict(zip(assets, held)), cash, dict(zip(assets, prices)))
    return state, targets


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(acct=accounts(), kind=st.sampled_from(["naive", "band", "optimal"]))
def test_no_emitted_order_is_dust_unless_it_closes_a_position(acct, kind, examples):
    examples()
    state, targets = acct
    reb = {"naive": lambda: NaiveRebalancer(RebalanceConfig(**ZERO)),
           "band": lambda: BandRebalancer(width=0.0, config=RebalanceConfig(**ZERO)),
           "optimal": lambda: OptimalRebalancer(costs=[Spread(1.0)])}[kind]()
    plan = reb.plan(state, targets)
    check_no_dust(plan)
    if kind == "optimal":
        check_hard(plan)


@pytest.mark.parametrize("value", [0.01, 5.0])
def test_threshold_is_configurable(value):
    count("dust")
    state = PortfolioState({"A": 10.0}, 100.0, {"A": 10.0, "B": 1.0})
    # B: a 2 currency buy (0.01 of equity 200); A: target keeps it
    plan = NaiveRebalancer(RebalanceConfig(**ZERO, dust_value=value)).plan(
        state, {"A": 0.5, "B": 0.01})
    traded = plan.trades[state.index_of("B")] != 0
    assert traded == (value < 2.0)


def test_a_sell_that_would_leave_a_crumb_closes_the_position_exactly():
    """SCS stops a sale a hair short of the holding (a position of a few millionths of
    a share is left); the plan closes it exactly, and the plan is re-verified."""
    count("dust")
    rng = np.random.default_rng(0)
    n = 12
    assets = [f"S{i}" for i in range(n)]
    state = PortfolioState({a: float(q) for a, q in zip(assets[:8], rng.integers(1, 50, 8))},
                           3_000.0, dict(zip(assets, rng.uniform(5, 400, n))),
                           adv=dict.fromkeys(assets, 1e5), volatility=dict.fromkeys(assets, 0.02))
    targets = dict(zip(assets[:6], rng.dirichlet(np.ones(6)) * 0.97))

    def plan(**kw):
        from rebalopt import MarketImpact

        return OptimalRebalancer(costs=[Spread(1.0), MarketImpact(0.5)], solver="SCS",
                                 **kw).plan(state, targets)

    i = state.index_of("S7")
    raw = plan(dust_value=0.0, dust_shares=0.0)
    crumb = raw.state.holdings[i] + raw.trades[i]
    assert crumb != 0.0 and abs(crumb) * state.prices[i] < DUST_VALUE  # the defect
    snapped = plan()
    assert snapped.state.holdings[i] + snapped.trades[i] == 0.0
    assert snapped.info["dust"] == {"S7": "closed"}
    check_no_dust(snapped)
    check_hard(snapped)


def test_a_close_is_exact_in_shares():
    """Found by the property test above: a one-share position sold to a zero target came
    out as 0.9999999999999999 shares (weights -> shares lost an ulp after the close was
    made exact in shares)."""
    count("dust")
    # equity $20.30: -1 share x $1 / 20.3 x 20.3 / $1 = -0.9999999999999999 in floats
    state = PortfolioState({"A0": 1.0}, 19.3, {"A0": 1.0, "A1": 3.0})
    assert (-1.0 / state.equity) * state.equity != -1.0  # the rounding this guards
    plan = OptimalRebalancer(costs=[Spread(1.0)]).plan(state, {"A0": 0.0, "A1": 0.0})
    i = state.index_of("A0")
    assert plan.trades[i] == -1.0  # exact, not within a tolerance
    check_no_dust(plan)
    check_hard(plan)
