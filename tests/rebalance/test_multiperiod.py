"""MultiPeriodRebalancer against closed forms, the single-period program, and its own checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt import (
    CashFloor,
    Commission,
    Diagonal,
    GroupBounds,
    InfeasibleError,
    InputError,
    LongOnly,
    MarketImpact,
    MultiPeriodRebalancer,
    OptimalRebalancer,
    ParticipationLimit,
    PortfolioState,
    Spread,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.constraints import Point
from rebalopt.rebalance.multiperiod import ac_schedule

TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}


def one_asset() -> PortfolioState:
    """$100M in cash, one asset at $100, ADV 1M shares, 2% daily volatility."""
    return PortfolioState({"A": 0.0}, 1e8, {"A": 100.0}, adv={"A": 1e6},
                          volatility={"A": 0.02})


def test_quadratic_impact_no_risk_terminal_is_twap():
    st_ = one_asset()
    for H in (2, 5, 8):
        mp = MultiPeriodRebalancer(periods=H, costs=[MarketImpact(exponent=2.0)],
                                   risk_aversion=0.0, terminal="target", solver_options=TIGHT)
        sol = mp.solve(st_, {"A": 0.5})
        np.testing.assert_allclose(sol.z[:, 0], np.full(H, 0.5 / H), atol=1e-6)
        assert abs(sol.w[-1, 0] - 0.5) <= 1e-7


@pytest.mark.parametrize("gamma", [2.0, 10.0, 30.0])  # kappa~ = 0.2, 1, 3
def test_risk_term_gives_discrete_almgren_chriss(gamma):
    """The sinh schedule, exact for the discrete program (not the continuous limit)."""
    st_ = one_asset()
    imp = MarketImpact(exponent=2.0)
    H = 6
    mp = MultiPeriodRebalancer(periods=H, costs=[imp], risk_aversion=gamma, terminal="target",
                               solver_options=TIGHT)
    sol = mp.solve(st_, {"A": 0.5})
    eta = float(imp.coefficients(st_)[0])  # cost = eta * z^2 (fraction of equity)
    lam = 0.5 * gamma * mp.period * 1.0  # identity risk: sigma^2 = 1 per year
    x = ac_schedule(-0.5, H, lam / eta)  # distance to target, x_0 = w0 - w* = -0.5
    np.testing.assert_allclose(sol.z[:, 0], np.diff(x), atol=1e-6)
    # front-loaded: the closed form is not the even schedule at these gammas
    assert np.diff(x)[0] > 0.5 / H * 1.05
    # and independently: the first-order conditions hold on the solver's path
    xs = np.r_[-0.5, sol.w[:, 0] - 0.5]
    lhs = xs[2:] - 2 * xs[1:-1] + xs[:-2]
    np.testing.assert_allclose(lhs, lam / eta * xs[1:-1], atol=1e-6)


def test_ac_schedule_closed_form_limits():
    np.testing.assert_allclose(ac_schedule(1.0, 4, 0.0), [1, 0.75, 0.5, 0.25, 0])
    x = ac_schedule(1.0, 4, 1e-9)
    np.testing.assert_allclose(x, [1, 0.75, 0.5, 0.25, 0], atol=1e-8)


def universe(n: int = 12, seed: int = 0) -> tuple[PortfolioState, pd.Series]:
    rng = np.random.default_rng(seed)
    tick = [f"T{i:02d}" for i in range(n)]
    px = pd.Series(rng.uniform(10, 200, n), index=tick)
    hold = pd.Series(rng.uniform(0, 2e4, n), index=tick)
    st_ = PortfolioState(hold, 1e5, px, adv=pd.Series(rng.uniform(2e4, 2e5, n), index=tick),
                         volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=tick),
                         groups=pd.Series(["a", "b", "c"] * (n // 3), index=tick))
    tg = pd.Series(rng.dirichlet(np.ones(n)), index=tick)
    return st_, tg


def costs() -> list:
    return [Spread(half_spread_bps=3.0), Commission(per_share=0.005), MarketImpact()]


def test_one_period_equals_single_period_plan():
    st_, tg = universe()
    risk = Diagonal(pd.Series(np.linspace(0.15, 0.4, st_.n), index=st_.assets))
    cons = [LongOnly(), CashFloor(0.01), ParticipationLimit(0.05), TurnoverLimit(0.4),
            GroupBounds(upper={"a": 0.4})]
    single = OptimalRebalancer(risk=risk, costs=costs(), constraints=cons, horizon=1 / 12,
                               risk_aversion=50.0, solver_options={"CLARABEL": TIGHT})
    multi = MultiPeriodRebalancer(periods=1, period=1 / 12, risk=risk, costs=costs(),
                                  constraints=cons, risk_aversion=50.0, solver_options=TIGHT)
    a, b = single.solve(st_, tg), multi.solve(st_, tg)
    np.testing.assert_allclose(b.z[0], a.z, atol=1e-9)
    assert abs(a.objective - b.objective) <= 1e-9
    pa, pb = single.plan(st_, tg), multi.plan(st_, tg)
    np.testing.assert_allclose(pb.trades, pa.trades, atol=1e-9 * st_.equity / st_.prices.min())


def _schedule_points(mp, st_, tg, sol):
    w = st_.weights.copy()
    cash = st_.cash_weight
    path = mp.target_path(st_, tg)
    from rebalopt.rebalance._problem import convex_costs

    for t in range(mp.periods):
        z = sol.z[t]
        c = float(sum(convex_costs(mp.costs, z, st_).values()))
        w = w + z
        cash = cash - z.sum() - c
        yield t, Point(z=z, w=w.copy(), cash=cash, state=st_, targets=path[t])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), H=st.integers(2, 6), part=st.floats(0.005, 0.2),
       floor=st.floats(0.0, 0.05), gamma=st.floats(1.0, 1e4))
def test_every_period_keeps_every_hard_constraint(seed, H, part, floor, gamma):
    st_, tg = universe(9, seed)
    cons = [LongOnly(), CashFloor(floor), ParticipationLimit(part), WeightBounds(upper=0.35),
            TurnoverLimit(0.3)]
    mp = MultiPeriodRebalancer(periods=H, costs=costs(), constraints=cons, risk_aversion=gamma)
    try:
        sol = mp.solve(st_, tg)
    except InfeasibleError as exc:  # e.g. a position above the cap the caps cannot cut
        assert exc.conflicts
        return
    cum = np.zeros(st_.n)
    for t, point in _schedule_points(mp, st_, tg, sol):
        caps = ParticipationLimit(part).caps(st_)
        assert (np.abs(point.z) <= caps + 1e-7).all()  # per day, independently
        assert point.w.min() >= -1e-7
        assert point.cash >= floor - 1e-7  # the cash path never breaks the floor
        assert 0.5 * np.abs(point.z).sum() <= 0.3 + 1e-7
        for c in cons:
            assert c.check(point).satisfied, (t, c.name)
        np.testing.assert_allclose(point.cash, sol.cash[t], atol=1e-9)
        cum = cum + point.z


def test_participation_caps_spread_a_large_trade_over_days():
    st_ = one_asset()
    cap = ParticipationLimit(0.1)  # 10% of 1M shares at $100 = 10% of equity per day
    mp = MultiPeriodRebalancer(periods=8, costs=[Spread(half_spread_bps=2.0)],
                               constraints=[LongOnly(), CashFloor(), cap], risk_aversion=1e4)
    sol = mp.solve(st_, {"A": 0.45})
    assert np.all(sol.z[:, 0] <= 0.1 + 1e-9)
    np.testing.assert_allclose(sol.z[:4, 0], 0.1, atol=1e-6)  # as fast as the cap allows
    assert abs(sol.w[-1, 0] - 0.45) < 1e-5
    # the single-period plan can only do one day's worth
    one = OptimalRebalancer(costs=[Spread(half_spread_bps=2.0)],
                            constraints=[LongOnly(), CashFloor(), cap]).solve(st_, {"A": 0.45})
    assert one.z[0] <= 0.1 + 1e-9


def test_terminal_infeasible_under_caps_names_period_and_constraint():
    st_ = one_asset()
    mp = MultiPeriodRebalancer(periods=3, costs=[Spread(half_spread_bps=2.0)],
                               constraints=[LongOnly(), CashFloor(), ParticipationLimit(0.1)],
                               terminal="target")
    with pytest.raises(InfeasibleError) as ei:
        mp.solve(st_, {"A": 0.45})  # 3 days x 10% < 45%
    names = " ".join(c.constraint for c in ei.value.conflicts)
    assert "ParticipationLimit" in names and "period" in names


def test_terminal_band_and_target_path():
    st_, tg = universe()
    path = pd.DataFrame([tg.to_numpy() * 0.5, tg.to_numpy()], columns=tg.index)
    mp = MultiPeriodRebalancer(periods=4, costs=costs(), terminal=0.002, risk_aversion=1.0)
    sol = mp.solve(st_, path)
    np.testing.assert_allclose(sol.targets[0], tg.to_numpy() * 0.5)
    np.testing.assert_allclose(sol.targets[3], tg.to_numpy())  # last row repeats
    assert np.abs(sol.w[-1] - tg.to_numpy()).max() <= 0.002 + 1e-7


def test_plan_carries_schedule_and_first_period_orders():
    st_, tg = universe()
    mp = MultiPeriodRebalancer(periods=5, costs=costs(), constraints=[
        LongOnly(), CashFloor(), ParticipationLimit(0.02)], risk_aversion=200.0)
    p = mp.plan(st_, tg)
    sched = p.info["schedule_shares"]
    assert sched.shape == (5, st_.n) and list(sched.columns) == list(st_.assets)
    np.testing.assert_allclose(p.trades, sched.iloc[0].to_numpy())
    assert {o.asset for o in p.orders()} <= set(st_.assets[np.abs(p.trades) > 0])
    assert len(p.info["expected_cost"]) == 5 and len(p.info["tracking_error"]) == 5
    # same inputs, same plan
    np.testing.assert_array_equal(mp.plan(st_, tg).trades, p.trades)
    assert mp.compilations == 1
    mp.risk_aversion = 10.0  # a sweep: new values, same program
    mp.plan(st_, tg)
    assert mp.compilations == 1


def test_bad_knobs_are_input_errors():
    with pytest.raises(InputError):
        MultiPeriodRebalancer(periods=0)
    with pytest.raises(InputError):
        MultiPeriodRebalancer(terminal="sometimes")
    with pytest.raises(InputError):
        MultiPeriodRebalancer(period=-1.0)


def _cvxpy_cost_in_tracking(st_, tg, var, H, gamma, dt, hs_bps):
    """The cost-in-tracking schedule written from the formulas in cvxpy (independent of
    the cost models' declarations and of the stacked matrices)."""
    import cvxpy as cp

    n, V = st_.n, st_.equity
    a = st_.volatility * np.sqrt(V / (st_.prices * st_.adv))  # impact: a |z|^1.5
    lin = hs_bps * 1e-4 * np.ones(n)
    Z = cp.Variable((H, n))
    k = cp.Variable(H)
    w0, c0 = st_.weights, st_.cash_weight
    obj, cons, spent = 0, [], 0
    for t in range(H):
        w_t = w0 + cp.sum(Z[: t + 1], axis=0)
        cost_t = lin @ cp.abs(Z[t]) + a @ cp.power(cp.abs(Z[t]), 1.5)
        spent = spent + cp.sum(Z[t]) + cost_t
        obj += cost_t + 0.5 * gamma * (dt * cp.sum(cp.multiply(var, cp.square(w_t - tg)))
                                       + cp.square(k[t]))
        cons += [k[t] >= cost_t, w_t >= 0, spent <= c0]
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    return Z.value, prob.value


@pytest.mark.parametrize("seed", [0, 3])
def test_cost_in_tracking_matches_independent_cvxpy_program(seed):
    """gamma/2 * cost_t**2 per period (the day's cost is a tracking difference too):
    the stacked program's schedule equals a cvxpy program written from the formulas,
    and the term changes the schedule (so the comparison is not vacuous)."""
    st_, tg = universe(9, seed)
    def ser(v):
        return pd.Series(v, index=st_.assets)

    st_ = PortfolioState(ser(st_.holdings), 5e7, ser(st_.prices), adv=ser(st_.adv / 20),
                         volatility=ser(st_.volatility))  # big trades: costs of a few %
    var = np.linspace(0.02, 0.12, st_.n)
    risk = Diagonal(pd.Series(var, index=st_.assets))
    H, gamma = 4, 3e3
    kw = {"periods": H, "risk": risk, "costs": [Spread(half_spread_bps=3.0), MarketImpact()],
          "risk_aversion": gamma, "solver_options": TIGHT}
    on = MultiPeriodRebalancer(cost_in_tracking=True, **kw).solve(st_, tg)
    off = MultiPeriodRebalancer(**kw).solve(st_, tg)
    Zc, objc = _cvxpy_cost_in_tracking(st_, tg.reindex(st_.assets).to_numpy(), var, H, gamma,
                                       1 / 252, 3.0)
    assert abs(on.objective - objc) <= 1e-7 * max(1.0, abs(objc))
    np.testing.assert_allclose(on.z, Zc, atol=1e-5)
    assert np.abs(off.z - Zc).max() > 1e-3
    # the reported tracking term holds the cost's square
    np.testing.assert_allclose(on.risk - 0.5 * gamma * on.cost**2,
                               [0.5 * gamma / 252 * float(var @ (w - tg.reindex(st_.assets)
                                                                 .to_numpy())**2)
                                for w in on.w], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("kappa_tilde", [0.3, 1.5])
def test_cost_in_tracking_linear_cost_is_almgren_chriss_whatever_gamma(kappa_tilde):
    """How the schedule weighs each period's risk against its cost**2 (issue 14's $100M
    floor): one asset, a linear cost ``a |z_t|`` (half spread, ``a`` = 5 bps), risk
    ``v`` per year, terminal target. On a one-way schedule the linear part sums to
    ``a |x_0|`` whatever the split, so the objective is that constant plus ``gamma/2 *
    sum_t (dt v x_t**2 + a**2 z_t**2)``: the discrete Almgren-Chriss problem with
    ``kappa~ = dt v / a**2`` (risk held ``dt`` per period, the cost squared once per
    period, the first period like the others). Its sinh schedule, and the same schedule
    for every ``gamma`` (the multi-period frontier's floor: at high gamma the plan
    tends to this gamma-free schedule)."""
    st_ = one_asset()
    a, dt, H = 5e-4, 1 / 252, 6
    v = kappa_tilde * a**2 / dt
    x = ac_schedule(-0.5, H, kappa_tilde)  # distance to the target, x_0 = w0 - w* = -0.5
    for gamma in (1e2, 1e4, 1e6):
        mp = MultiPeriodRebalancer(periods=H, period=dt, risk=Diagonal({"A": v}),
                                   costs=[Spread(half_spread_bps=5.0)], risk_aversion=gamma,
                                   terminal="target", cost_in_tracking=True,
                                   solver_options=TIGHT)
        sol = mp.solve(st_, {"A": 0.5})
        np.testing.assert_allclose(sol.z[:, 0], np.diff(x), atol=1e-6)
        np.testing.assert_allclose(sol.cost, a * np.abs(np.diff(x)), atol=1e-9)
    assert np.diff(x)[0] > 0.5 / H * 1.05  # front-loaded: not the even schedule
