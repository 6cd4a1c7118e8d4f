"""Each constraint binding and slack.

Oracle: with zero costs and identity risk the optimizer solves
``min ||w - w*||^2`` over the constraint set, i.e. the Euclidean projection of the
target onto it, which has a closed form (or a 1-d root find) for every single
constraint below. Each binding case is checked three ways: the projection, the
constraint's own ``check`` (slack 0), and a direct computation from the plan's shares.
"""

from __future__ import annotations

import pickle

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from rebalopt import PortfolioState
from rebalopt.constraints import (
    CashFloor,
    FactorBounds,
    GroupBounds,
    Leverage,
    LongOnly,
    ParticipationLimit,
    Point,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.errors import InputError
from rebalopt.rebalance.optimal import OptimalRebalancer

TOL = 1e-6
ASSETS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
SECTORS = ["Tech", "Tech", "Energy", "Energy", "Health", "Health"]


def make_state(cash: float = 20_000.0) -> PortfolioState:
    prices = pd.Series([50.0, 20.0, 80.0, 10.0, 40.0, 25.0], index=ASSETS)
    holdings = pd.Series([300.0, 500.0, 100.0, 1500.0, 200.0, 400.0], index=ASSETS)
    return PortfolioState(holdings, cash, prices, adv=pd.Series(1e4, index=ASSETS),
                          volatility=pd.Series(0.02, index=ASSETS),
                          groups=pd.Series(SECTORS, index=ASSETS))


TARGETS = pd.Series([0.30, 0.05, 0.10, 0.25, 0.05, 0.20], index=ASSETS)


def solve(constraint, targets=TARGETS, state=None):
    state = state or make_state()
    reb = OptimalRebalancer(costs=[], constraints=[constraint] if constraint else [])
    plan = reb.plan(state, targets)
    return state, plan


def weights_from_shares(state, plan):
    """Post-trade weights computed directly from shares (independent of plan fields)."""
    return (state.holdings + plan.trades) * state.prices / state.equity


def l1_projection_trades(d, budget):
    """z minimizing ||d + z||^2 s.t. sum|z| <= budget (soft threshold with bisection)."""
    if np.abs(d).sum() <= budget:
        return -d
    lam = brentq(lambda l: np.maximum(np.abs(d) - l, 0).sum() - budget, 0, np.abs(d).max())
    return -np.sign(d) * np.maximum(np.abs(d) - lam, 0)


# ----------------------------------------------------------- each constraint
def test_no_constraint_reaches_targets():
    state, plan = solve(None)
    np.testing.assert_allclose(weights_from_shares(state, plan), TARGETS.to_numpy(), atol=1e-7)


def test_long_only_binding_and_slack():
    t = TARGETS.copy()
    t["BBB"] = -0.05
    state, plan = solve(LongOnly(), t)
    w = weights_from_shares(state, plan)
    expect = np.clip(t.to_numpy(), 0, None)  # projection onto w >= 0
    np.testing.assert_allclose(w, expect, atol=TOL)
    s = LongOnly().check(plan)
    assert abs(s.slack) < TOL and s.binding and "BBB" in s.row
    # slack case: positive targets, minimum weight is the slack
    state, plan = solve(LongOnly())
    s = LongOnly().check(plan)
    assert s.slack == pytest.approx(TARGETS.min(), abs=TOL) and not s.binding


def test_short_limit_per_asset_and_total():
    t = TARGETS.copy()
    t["BBB"], t["DDD"] = -0.20, -0.10
    c = ShortLimit(per_asset=0.15)
    state, plan = solve(c, t)
    w = weights_from_shares(state, plan)
    np.testing.assert_allclose(w, np.maximum(t.to_numpy(), -0.15), atol=TOL)
    assert abs(c.check(plan).slack) < TOL
    # total short: projection onto sum(max(-w,0)) <= 0.2 shrinks the shorts equally
    c = ShortLimit(total=0.2)
    state, plan = solve(c, t)
    w = weights_from_shares(state, plan)
    expect = t.to_numpy().copy()
    expect[[1, 3]] += 0.05  # shorts 0.20 and 0.10 each give 0.05 back
    np.testing.assert_allclose(w, expect, atol=TOL)
    assert np.maximum(-w, 0).sum() == pytest.approx(0.2, abs=TOL)
    assert abs(c.check(plan).slack) < TOL
    state, plan = solve(ShortLimit(per_asset=0.5, total=1.0), t)
    assert ShortLimit(per_asset=0.5, total=1.0).check(plan).slack > 0.1


def test_weight_bounds_projection():
    c = WeightBounds(lower=0.08, upper={"AAA": 0.2, "DDD": 0.22})
    state, plan = solve(c)
    w = weights_from_shares(state, plan)
    expect = TARGETS.to_numpy().copy()
    expect = np.maximum(expect, 0.08)
    expect[0], expect[3] = 0.2, 0.22
    np.testing.assert_allclose(w, expect, atol=TOL)
    s = c.check(plan)
    assert abs(s.slack) < TOL
    state, plan = solve(WeightBounds(lower=0.0, upper=0.5))
    assert WeightBounds(lower=0.0, upper=0.5).check(plan).slack == pytest.approx(0.05, abs=TOL)


def test_weight_bounds_bad_input_names_asset():
    with pytest.raises(InputError, match="BBB"):
        WeightBounds(lower={"BBB": 0.3}, upper=0.2).check(
            Point.from_trades(make_state(), TARGETS.to_numpy(), np.zeros(6), 0.0))


def test_group_bounds_absolute_from_text():
    c = GroupBounds.from_text("Tech <= 0.25")
    state, plan = solve(c)
    w = weights_from_shares(state, plan)
    expect = TARGETS.to_numpy().copy()
    excess = expect[:2].sum() - 0.25  # 0.35 - 0.25, shared equally by the two Tech names
    expect[:2] -= excess / 2
    np.testing.assert_allclose(w, expect, atol=TOL)
    assert w[:2].sum() == pytest.approx(0.25, abs=TOL)
    s = c.check(plan)
    assert abs(s.slack) < TOL and "Tech" in s.row
    assert "Tech <= 0.25" in c.name


@pytest.mark.parametrize("lines", [["Tech <= 0.25", "Tech <= 0.40"], "Tech <= 0.25; Tech < 0.4",
                                   ["0 <= Tech <= 0.25", "Tech <= 0.40"],
                                   ["Tech >= 0.30", "0.1 <= Tech <= 0.5"]])
def test_group_bounds_one_bound_per_side(lines):
    """Was: the second bound overwrote the first, so ``["Tech <= 0.25", "Tech <= 0.40"]``
    (a config's ``groups`` list is one object) planned Tech at the 0.35 target, above the
    0.25 the user wrote. Now an error naming the group."""
    with pytest.raises(InputError, match="two (upper|lower) bounds") as info:
        GroupBounds.from_text(lines)
    assert info.value.asset == "Tech" and info.value.field == "GroupBounds"
    # the lower and the upper bound of one group in one object stay fine
    both = GroupBounds.from_text(["Tech <= 0.25", "Tech >= 0.05"])
    state, plan = solve(both)
    assert weights_from_shares(state, plan)[:2].sum() == pytest.approx(0.25, abs=TOL)


def test_group_bounds_relative_to_target():
    # Energy target weight 0.35; allow at most target - 0.05 = 0.30 (relative form)
    c = GroupBounds.from_text("Energy <= target - 5%")
    assert c.relative
    state, plan = solve(c)
    w = weights_from_shares(state, plan)
    assert w[2:4].sum() == pytest.approx(0.30, abs=TOL)
    np.testing.assert_allclose(w[2:4] - TARGETS.to_numpy()[2:4], [-0.025, -0.025], atol=TOL)
    assert abs(c.check(plan).slack) < TOL
    c = GroupBounds.from_text(["Energy >= target - 0.1", "Energy <= target + 0.1"])
    state, plan = solve(c)
    assert c.check(plan).slack == pytest.approx(0.1, abs=TOL)


def test_group_bounds_text_forms_and_errors():
    c = GroupBounds.from_text("0.1 <= Tech <= 40%; Health >= 0.05")
    assert c.upper == {"Tech": 0.4} and c.lower == {"Tech": 0.1, "Health": 0.05}
    with pytest.raises(InputError, match="cannot read"):
        GroupBounds.from_text("Tech == 0.2")
    with pytest.raises(InputError, match="mixes"):
        GroupBounds.from_text("Tech <= 0.2; Energy <= target")
    with pytest.raises(InputError, match="Materials"):
        solve(GroupBounds.from_text("Materials <= 0.2"))


def test_factor_bounds_halfspace_projection():
    b = pd.Series([1.2, 0.8, 1.0, 1.5, 0.5, 0.9], index=ASSETS)
    c = FactorBounds(loadings=b.to_frame("beta"), upper=0.9)
    state, plan = solve(c)
    w = weights_from_shares(state, plan)
    bb, wt = b.to_numpy(), TARGETS.to_numpy()
    expect = wt - (bb @ wt - 0.9) / (bb @ bb) * bb  # projection onto b'w <= 0.9
    assert bb @ wt > 0.9
    np.testing.assert_allclose(w, expect, atol=TOL)
    assert abs(c.check(plan).slack) < TOL
    loose = FactorBounds(loadings=b.to_frame("beta"), upper=2.0, lower=0.0)
    state, plan = solve(loose)
    assert loose.check(plan).slack == pytest.approx(2.0 - bb @ wt, abs=TOL)


def test_factor_bounds_missing_asset_is_input_error():
    b = pd.DataFrame({"beta": [1.0] * 5}, index=ASSETS[:5])
    with pytest.raises(InputError, match="FFF"):
        solve(FactorBounds(loadings=b, upper=1.0))


def test_turnover_limit_l1_projection():
    state = make_state()
    d = state.weights - TARGETS.to_numpy()
    cap = 0.05
    c = TurnoverLimit(cap)
    _, plan = solve(c, state=state)
    z_expect = l1_projection_trades(d, 2 * cap)
    traded_value = plan.trades * state.prices
    np.testing.assert_allclose(traded_value / state.equity, z_expect, atol=TOL)
    assert 0.5 * np.abs(traded_value).sum() / state.equity == pytest.approx(cap, abs=TOL)
    assert abs(c.check(plan).slack) < TOL
    loose = TurnoverLimit(1.0)
    _, plan = solve(loose, state=state)
    assert loose.check(plan).slack == pytest.approx(1.0 - 0.5 * np.abs(d).sum(), abs=TOL)


def test_participation_limit_clips_trades():
    state = make_state()
    c = ParticipationLimit(0.02)  # 2% of 10,000 shares = 200 shares per asset
    _, plan = solve(c, state=state)
    unclipped = (TARGETS.to_numpy() * state.equity - state.values) / state.prices
    np.testing.assert_allclose(plan.trades, np.clip(unclipped, -200, 200), atol=1e-3)
    assert np.abs(plan.trades).max() == pytest.approx(200, abs=1e-3)
    assert abs(c.check(plan).slack) < TOL
    loose = ParticipationLimit(10.0)
    _, plan = solve(loose, state=state)
    assert loose.check(plan).slack > 0


def test_restricted_lists():
    state = make_state()
    dz = TARGETS.to_numpy() - state.weights
    buy, sell = ASSETS[int(np.argmax(dz))], ASSETS[int(np.argmin(dz))]
    frozen = "CCC"
    c = Restricted(no_buy=[buy], no_sell=[sell], no_trade=[frozen])
    _, plan = solve(c, state=state)
    idx = {a: i for i, a in enumerate(ASSETS)}
    assert plan.trades[idx[buy]] == 0 and plan.trades[idx[sell]] == 0
    assert plan.trades[idx[frozen]] == 0
    others = [i for a, i in idx.items() if a not in (buy, sell, frozen)]
    w = weights_from_shares(state, plan)
    np.testing.assert_allclose(w[others], TARGETS.to_numpy()[others], atol=TOL)
    assert abs(c.check(plan).slack) < TOL and c.check(plan).binding


def test_leverage_gross_and_net():
    t = pd.Series([0.6, -0.3, 0.4, -0.2, 0.5, 0.1], index=ASSETS)  # gross 2.1, net 1.1
    c = Leverage(gross=1.5)
    state, plan = solve(c, t)
    w = weights_from_shares(state, plan)
    # projection onto the l1 ball of radius 1.5: soft threshold
    lam = brentq(lambda l: np.maximum(np.abs(t) - l, 0).sum() - 1.5, 0, 1)
    np.testing.assert_allclose(w, np.sign(t) * np.maximum(np.abs(t) - lam, 0), atol=TOL)
    assert abs(c.check(plan).slack) < TOL
    c = Leverage(net=1.0)
    state, plan = solve(c, t)
    w = weights_from_shares(state, plan)
    np.testing.assert_allclose(w, t.to_numpy() - 0.1 / 6, atol=TOL)
    assert abs(c.check(plan).slack) < TOL


def test_cash_floor_halfspace_projection_and_costs_paid_from_cash():
    state = make_state(cash=0.0)
    t = TARGETS / TARGETS.sum() * 1.02  # wants 2% more than equity: needs borrowing
    c = CashFloor(0.0)
    _, plan = solve(c, t, state)
    w = weights_from_shares(state, plan)
    np.testing.assert_allclose(w, t.to_numpy() - 0.02 / 6, atol=TOL)
    assert plan.post_cash == pytest.approx(0.0, abs=1e-6 * state.equity)
    assert abs(c.check(plan).slack) < TOL
    # with costs: cash after paying them is exactly at the floor
    from rebalopt import Spread

    reb = OptimalRebalancer(costs=[Spread(10.0)], constraints=[CashFloor(0.01)])
    plan = reb.plan(state, t)
    cash_direct = state.cash - (plan.trades * state.prices).sum() - plan.total_cost
    assert cash_direct / state.equity == pytest.approx(0.01, abs=1e-7)
    assert abs(CashFloor(0.01).check(plan).slack) < 1e-7
    state2 = make_state(cash=50_000.0)
    _, plan = solve(CashFloor(), TARGETS * 0.5, state2)
    assert CashFloor().check(plan).slack > 0.4


def test_soft_constraint_is_penalized_not_enforced():
    cheap = TurnoverLimit(0.02, soft=True, penalty=1e-6)
    state, plan = solve(cheap)
    # a tiny penalty: the optimizer ignores the cap and goes to the target
    np.testing.assert_allclose(weights_from_shares(state, plan), TARGETS.to_numpy(), atol=1e-5)
    assert cheap.check(plan).violation > 0.01
    assert plan.info["soft_violations"]
    dear = TurnoverLimit(0.02, soft=True, penalty=100.0)
    state, plan = solve(dear)
    assert dear.check(plan).violation < 1e-6


def test_constraints_pickle_without_cvxpy_objects():
    c = GroupBounds.from_text("Tech <= 0.25")
    solve(c)
    c2 = pickle.loads(pickle.dumps(c))
    # a constraint holds data only (its rows are declared, never solver objects)
    assert not any(isinstance(v, (cp.Parameter, cp.Variable)) for v in vars(c2).values())
    assert c2.upper == {"Tech": 0.25}
    state, plan = solve(c2)
    assert abs(c2.check(plan).slack) < TOL


@pytest.mark.parametrize("bad", [
    lambda: TurnoverLimit(-0.1), lambda: Leverage(), lambda: ShortLimit(),
    lambda: WeightBounds(), lambda: LongOnly(soft=True, penalty=0.0),
    lambda: CashFloor(np.nan), lambda: ParticipationLimit(-1.0),
])
def test_bad_parameters_are_input_errors(bad):
    with pytest.raises(InputError):
        bad()


@pytest.mark.parametrize(("make", "group"), [
    (lambda: GroupBounds(lower={"Tech": 0.6}, upper={"Tech": 0.4, "Energy": 0.9}), "Tech"),
    (lambda: GroupBounds(lower=0.3, upper={"Energy": 0.2}), "Energy"),
    (lambda: GroupBounds(lower={"Health": 0.5}, upper=0.45), "Health"),
    (lambda: GroupBounds(lower=0.5, upper=0.4), "every group"),
    (lambda: GroupBounds.from_text("0.6 <= Tech <= 0.4"), "Tech"),
    (lambda: GroupBounds.from_text("Energy >= 10%; Energy <= 5%"), "Energy"),
    (lambda: GroupBounds.from_text("target + 0.02 <= Tech <= target - 0.02"), "Tech"),
])
def test_group_bounds_lower_above_upper_rejected_at_construction(make, group):
    with pytest.raises(InputError, match=group) as info:
        make()
    assert info.value.field == "GroupBounds" and "above upper" in str(info.value)


def test_group_bounds_equal_or_disjoint_bounds_are_fine():
    GroupBounds(lower={"Tech": 0.3}, upper={"Tech": 0.3})  # pinned
    GroupBounds(lower={"Tech": 0.6}, upper={"Energy": 0.1})  # different groups
    state, plan = solve(GroupBounds.from_text("0.3 <= Tech <= 0.3"))
    assert weights_from_shares(state, plan)[:2].sum() == pytest.approx(0.3, abs=TOL)


def test_weight_bounds_per_asset_lower_above_upper_rejected_at_construction():
    with pytest.raises(InputError) as info:
        WeightBounds(lower={"BBB": 0.4}, upper={"AAA": 0.5, "BBB": 0.2})
    assert (info.value.asset, info.value.field) == ("BBB", "WeightBounds")
    with pytest.raises(InputError) as info:
        WeightBounds(lower=0.1, upper={"CCC": 0.05})
    assert info.value.asset == "CCC"
    WeightBounds(lower={"AAA": 0.3}, upper={"BBB": 0.1})  # different assets: fine
    # two numbers: checked when planning, naming the first asset of the universe
    with pytest.raises(InputError) as info:
        solve(WeightBounds(lower=0.5, upper=0.1))
    assert info.value.asset == "AAA"
