"""Property tests (hypothesis): every emitted plan keeps every hard constraint.

The checks here do not call ``Constraint.check`` nor the cost models'
``evaluate``: post-trade weights, cash and every constraint are recomputed from
the plan's trades (shares) with the formulas written in this file, and costs
with :func:`rel_helpers.cost_by_hand` (closed forms). Tolerance: 1e-7 in the
constraint's units (weights, cash weight, turnover).

A random constraint set may be infeasible: the rebalancer must then raise
``InfeasibleError`` with named, finite conflicts and build no plan. A solver
failure must be a ``SolverError`` (no plan). Outcomes are tallied.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_helpers import cost_by_hand, count

from rebalopt import (
    BandRebalancer,
    Commission,
    InfeasibleError,
    MarketImpact,
    NaiveRebalancer,
    PortfolioState,
    RebalanceConfig,
    SolverError,
    Spread,
)
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    Leverage,
    LongOnly,
    ParticipationLimit,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance.optimal import OptimalRebalancer

TOL = 1e-7
def fast(n: int) -> settings:
    """``n`` examples, no deadline (solves and compiles vary in time)."""
    return settings(deadline=None, max_examples=n,
                    suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Account:
    state: PortfolioState
    targets: dict[str, float]


@st.composite
def accounts(draw, short: bool = False, lots: bool = False) -> Account:
    n = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    assets = [f"X{i}" for i in range(n)]
    prices = rng.uniform(1.0, 500.0, n).round(2)
    equity = draw(st.sampled_from([1e4, 1e5, 1e6]))
    w0 = rng.dirichlet(np.ones(n)) * draw(st.floats(0.0, 1.0))
    if short:
        w0 = w0 * rng.choice([-1.0, 1.0], n) * 0.5
    hold = np.round(w0 * equity / prices)
    cash = equity - float(hold @ prices)
    tw = rng.dirichlet(np.ones(n)) * draw(st.floats(0.5, 1.0))
    if short and draw(st.booleans()):
        tw = tw - 0.15 * rng.random(n)
    zero = rng.random(n) < 0.2  # some targets exit the asset
    tw[zero] = 0.0
    state = PortfolioState(
        dict(zip(assets, hold)), cash, dict(zip(assets, prices)),
        adv=dict(zip(assets, rng.uniform(1e3, 1e6, n))),
        volatility=dict(zip(assets, rng.uniform(0.005, 0.05, n))),
        groups=dict(zip(assets, rng.choice(["G1", "G2"], n))),
        lot_sizes=dict(zip(assets, rng.choice([1.0, 10.0, 100.0], n))) if lots else None,
    )
    return Account(state, dict(zip(assets, tw)))


@st.composite
def cost_sets(draw, convex_only: bool = False) -> list[Any]:
    out: list[Any] = []
    if draw(st.booleans()):
        out.append(Spread(draw(st.floats(0.0, 30.0))))
    if draw(st.booleans()):
        out.append(MarketImpact(coef=draw(st.floats(0.0, 2.0)),
                                exponent=draw(st.sampled_from([1.0, 1.5, 2.0]))))
    if draw(st.booleans()):
        minimum = 0.0 if convex_only else draw(st.sampled_from([0.0, 1.0, 5.0]))
        out.append(Commission(per_share=draw(st.sampled_from([0.0, 0.005])),
                              bps=draw(st.floats(0.0, 5.0)), minimum=minimum))
    return out


@st.composite
def constraint_sets(draw, acc: Account) -> list[Any]:
    s = acc.state
    cons: list[Any] = []
    margin = draw(st.booleans())
    if not margin:
        cons += [LongOnly(), CashFloor(draw(st.sampled_from([0.0, 0.0, 0.01, 0.05])))]
    else:
        cons += [CashFloor(draw(st.sampled_from([-0.5, -0.2]))),
                 ShortLimit(per_asset=draw(st.sampled_from([0.1, 0.3])),
                            total=draw(st.sampled_from([0.2, 0.5])))]
    if draw(st.booleans()):
        cons.append(WeightBounds(upper=draw(st.floats(0.2, 0.8))))
    if draw(st.booleans()):
        g = draw(st.sampled_from(sorted({x for x in s.groups if x})))
        cons.append(GroupBounds(upper={g: draw(st.floats(0.2, 0.9))}))
    if draw(st.booleans()):
        cons.append(TurnoverLimit(draw(st.floats(0.01, 0.6))))
    if draw(st.booleans()):
        cons.append(Leverage(gross=draw(st.floats(0.8, 1.6))))
    if draw(st.booleans()):
        cons.append(ParticipationLimit(draw(st.sampled_from([0.01, 0.1, 1.0]))))
    if draw(st.booleans()):
        a, b = draw(st.permutations(list(s.assets)))[:2]
        cons.append(Restricted(no_buy=[a], no_sell=[b]))
    return cons


def linear_part(costs: list[Any]) -> list[Any]:
    """The cost models with commission minimums and per-order fees taken out."""
    return [Commission(per_share=m.per_share, bps=m.bps) if isinstance(m, Commission) else m
            for m in costs]


def hard_violations(plan, cons: list[Any], costs: list[Any]) -> dict[str, float]:
    """Worst violation of every hard constraint on the plan's trades, by hand.

    The cash floor is checked with ``costs`` as given: pass :func:`linear_part` to
    check it the way the optimizer models it (commission minimums left out).
    """
    s = plan.state
    q = np.asarray(plan.trades, dtype=float)
    V = s.equity
    unit = s.prices * s.multipliers
    z = q * unit / V
    w = (s.holdings + q) * unit / V
    fee = float(cost_by_hand(q, s.prices, s.multipliers, s.adv, s.volatility, costs).sum())
    cash = (s.cash - float((q * unit).sum()) - fee) / V
    out: dict[str, float] = {}

    def worst(name: str, excess: np.ndarray | float) -> None:
        e = np.atleast_1d(np.asarray(excess, dtype=float))
        out[name] = max(out.get(name, 0.0), float(e.max()) if e.size else 0.0)

    for c in cons:
        if isinstance(c, LongOnly):
            worst("LongOnly", -w)
        elif isinstance(c, CashFloor):
            worst("CashFloor", c.floor - cash)
        elif isinstance(c, ShortLimit):
            worst("ShortLimit", -w - c.per_asset)
            worst("ShortLimit", np.maximum(-w, 0).sum() - c.total)
        elif isinstance(c, WeightBounds):
            worst("WeightBounds", w - c.upper)
        elif isinstance(c, GroupBounds):
            for g, ub in c.upper.items():
                worst("GroupBounds", w[s.groups == g].sum() - ub)
        elif isinstance(c, TurnoverLimit):
            worst("TurnoverLimit", 0.5 * np.abs(z).sum() - c.cap)
        elif isinstance(c, Leverage):
            worst("Leverage", np.abs(w).sum() - c.gross)
        elif isinstance(c, ParticipationLimit):
            worst("ParticipationLimit", np.abs(z) - c.fraction * s.adv * unit / V)
        elif isinstance(c, Restricted):
            idx = {a: i for i, a in enumerate(s.assets)}
            worst("Restricted", np.array([z[idx[a]] for a in c.no_buy]))
            worst("Restricted", np.array([-z[idx[a]] for a in c.no_sell]))
        else:  # pragma: no cover
            raise TypeError(type(c))
    return out


def check_plan_accounting(plan, costs: list[Any]) -> None:
    """Costs by hand, the cash identity, and clean orders."""
    s = plan.state
    q = plan.trades
    assert np.isfinite(q).all()
    by_hand = cost_by_hand(q, s.prices, s.multipliers, s.adv, s.volatility, costs)
    np.testing.assert_allclose(plan.cost_per_asset, by_hand, rtol=1e-9, atol=1e-9)
    notional = float((q * s.prices * s.multipliers).sum())
    assert plan.post_cash == pytest.approx(s.cash - notional - by_hand.sum(),
                                           rel=1e-12, abs=1e-8 * s.equity)
    orders = plan.orders()
    assert len(orders) == int(np.count_nonzero(q))
    seen_buy = False
    for o in orders:
        assert np.isfinite(o.quantity) and o.quantity > 0
        assert np.isfinite(o.reference_price) and o.reference_price > 0
        assert np.isfinite(o.expected_cost) and o.expected_cost >= 0
        i = s.index_of(o.asset)
        assert o.signed_quantity == q[i]
        seen_buy |= o.side.value == "buy"
        assert not (seen_buy and o.side.value == "sell")  # sells first


# ------------------------------------------------------------------ optimal
def _optimal_case(data, convex_only: bool) -> None:
    acc = data.draw(accounts(short=True))
    costs = data.draw(cost_sets(convex_only=convex_only))
    cons = data.draw(constraint_sets(acc))
    reb = OptimalRebalancer(costs=costs, constraints=cons,
                            risk_aversion=data.draw(st.sampled_from([1.0, 100.0, 1e4])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            plan = reb.plan(acc.state, acc.targets)
        except InfeasibleError as exc:
            if any(c.constraint.startswith("unknown (the elastic program failed")
                   for c in exc.conflicts):
                # known bug, xfail'd in test_rel_solver_failure: the elastic (diagnosis)
                # solve failed in Clarabel and no other solver was tried. Still no plan.
                count("optimal outcome: infeasible, diagnosis failed (known bug)")
                return
            count("optimal outcome: infeasible")
            assert exc.conflicts and all(np.isfinite(c.violation) and c.violation > 0
                                         for c in exc.conflicts), str(exc)
            return
        except SolverError as exc:
            count("optimal outcome: solver error")
            assert exc.attempts
            return
    count("optimal outcome: plan")
    check_plan_accounting(plan, costs)
    bad = {k: v for k, v in hard_violations(plan, cons, linear_part(costs)).items() if v > TOL}
    assert not bad, f"hard constraints broken on the emitted trades: {bad}"
    assert plan.info["solver"] in ("CLARABEL", "SCS")


@fast(1000)
@given(st.data())
def test_optimal_plans_keep_every_hard_constraint(data):
    count("hypothesis:optimal_plans")
    _optimal_case(data, convex_only=True)


@fast(400)
@given(st.data())
def test_optimal_plans_with_commission_minimums(data):
    """Minimums and per-order fees are not in the program (documented): every hard
    constraint holds, the cash floor with the linear part of the commission."""
    count("hypothesis:optimal_plans_min_commission")
    _optimal_case(data, convex_only=False)


def test_cash_floor_holds_with_the_commission_actually_charged():
    count("hypothesis:optimal_plans_min_commission")  # the shrunk case, kept as a test
    state = PortfolioState({}, 10_000.0, {"A": 10.0, "B": 20.0, "C": 40.0})
    costs = [Commission(bps=1.0, minimum=5.0)]
    plan = OptimalRebalancer(costs=costs, risk_aversion=1e4).plan(
        state, {"A": 0.4, "B": 0.3, "C": 0.3})
    assert plan.total_cost == pytest.approx(15.0)  # three minimums
    assert hard_violations(plan, [CashFloor(0.0)], costs)["CashFloor"] <= TOL


# ------------------------------------------------------------------ naive / band
@fast(1500)
@given(acc=accounts(lots=True), costs=cost_sets(), kind=st.sampled_from(["naive", "band"]),
       fractional=st.booleans(), short=st.booleans(), width=st.floats(0.0, 0.1),
       buffer=st.sampled_from([0.0, 0.02]))
def test_naive_and_band_plans_are_clean(acc, costs, kind, fractional, short, width, buffer):
    count("hypothesis:naive_band_plans")
    cfg = RebalanceConfig(fractional=fractional, allow_short=short, min_trade_value=0.0,
                          min_weight_change=0.0, max_gross_leverage=2.0, cash_buffer=buffer)
    reb = (NaiveRebalancer(cfg, costs=costs) if kind == "naive"
           else BandRebalancer(width=width, config=cfg, costs=costs))
    plan = reb.plan(acc.state, acc.targets)
    check_plan_accounting(plan, costs)
    s = acc.state
    if not short:
        assert np.all(plan.post_holdings >= -1e-9)  # shorting off: never short
    if not fractional:
        closing = (s.holdings != 0) & (plan.trades == -s.holdings)  # sells the whole odd lot
        lots = plan.trades / s.lot_sizes
        whole = np.abs(lots - np.round(lots)) <= 1e-9
        assert np.all(whole | closing)  # lots, except a close of the whole holding
    if kind == "band":  # funded: a cash account can pay the plan, costs included
        assert plan.post_cash >= -1e-9 * s.equity or plan.post_cash >= s.cash - 1e-9


def test_band_lot_rounding_never_sells_a_long_position_short():
    """Regression (found by the property test above): 70 shares held, 100-share lots,
    the band asks to sell 60; rounding made it 100, a 30-share short in a long-only book."""
    count("hypothesis:naive_band_plans")  # the shrunk case, kept as a test
    state = PortfolioState({"A": 70.0}, 9_300.0, {"A": 10.0, "B": 10.0},
                           lot_sizes={"A": 100.0, "B": 1.0})
    plan = BandRebalancer(width=0.0).plan(state, {"A": 0.01, "B": 0.5})
    assert plan.trades[0] == -70.0 and plan.post_holdings[0] == 0.0
