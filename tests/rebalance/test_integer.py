"""Integer stage against independent oracles.

Oracles: brute force over every lot combination on tiny problems, with the objective
and every hard constraint computed by hand in this file (explicit covariance matrix,
the cost models' ``evaluate``, cash and group sums from shares and prices);
nearest-lot rounding as the baseline that breaks sector caps; the kernels and the
cost table against the constraints' and models' own ``evaluate``.
"""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from rebalopt import Commission, InfeasibleError, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    Leverage,
    LongOnly,
    LotSize,
    MaxTrades,
    MinTradeValue,
    ParticipationLimit,
    Point,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance._integer_costs import CostTable
from rebalopt.rebalance._integer_kernels import PointArrays, kernel_for
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance

HAS_SCIP = "SCIP" in cp.installed_solvers()
needs_scip = pytest.mark.skipif(not HAS_SCIP, reason="SCIP (pyscipopt) not installed")


# ----------------------------------------------------------------- tiny problems
def tiny(seed: int, n: int = 3):
    """A cash account of ~$10k, lots worth $1.5k-$4k, 2 sectors, dense covariance."""
    rng = np.random.default_rng(seed)
    assets = [f"T{i}" for i in range(n)]
    prices = pd.Series(rng.uniform(15, 40, n), index=assets)
    lots = pd.Series(rng.choice([50.0, 100.0], n), index=assets)
    hold = pd.Series(rng.integers(0, 3, n) * lots.to_numpy() + rng.choice([0, 10], n),
                     index=assets, dtype=float)
    cash = float(rng.uniform(1_000, 5_000))
    groups = pd.Series([("G1" if i % 2 == 0 else "G2") for i in range(n)], index=assets)
    state = PortfolioState(hold, cash, prices, lot_sizes=lots, groups=groups,
                           adv=pd.Series(rng.uniform(2e3, 2e4, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    targets = pd.Series(rng.dirichlet(np.ones(n)) * 0.95, index=assets)
    A = rng.normal(0, 0.2, (n, n))
    sigma = pd.DataFrame(A @ A.T + np.diag(rng.uniform(0.01, 0.05, n)), index=assets,
                         columns=assets)
    return state, targets, sigma


def brute_force(state, targets, sigma, *, costs, cap, gamma, T, min_value=0.0,
                max_trades=None, floor=0.0):
    """Every lot combination: (objective, shares) of the best feasible one, by hand."""
    n = state.n
    lots, px, V = state.lot_sizes, state.prices, state.equity
    ranges = []
    for i in range(n):
        lo = -int(np.floor(state.holdings[i] / lots[i] + 1e-9))      # long-only
        hi = int(np.floor((state.cash + state.values.sum()) / (lots[i] * px[i])))
        ranges.append(range(lo, hi + 1))
    Q = np.array(list(itertools.product(*ranges)), dtype=float)     # (m, n)
    X = Q * lots
    cost = np.zeros(len(Q))
    for m in costs:
        cost += np.array([m.evaluate(x, state).sum() for x in X])
    post_cash = state.cash - (X * px).sum(axis=1) - cost
    W = (state.holdings + X) * px / V
    w_t = state.target_weights(targets)
    D = W - w_t
    S = sigma.loc[state.assets, state.assets].to_numpy()
    risk = 0.5 * gamma * T * np.einsum("mi,ij,mj->m", D, S, D)
    obj = cost / V + risk
    ok = post_cash >= floor * V - 1e-9
    ok &= (W >= -1e-12).all(axis=1)
    g = np.array(state.groups)
    for lab in set(g):
        ok &= W[:, g == lab].sum(axis=1) <= cap + 1e-9
    traded = X != 0
    if min_value > 0:
        ok &= ~(traded & (np.abs(X) * px < min_value - 1e-9)).any(axis=1)
    if max_trades is not None:
        ok &= traded.sum(axis=1) <= max_trades
    if not ok.any():
        return None, None
    k = int(np.argmin(np.where(ok, obj, np.inf)))
    return float(obj[k]), X[k]


def hand_check(plan, state, targets, *, cap, floor=0.0, min_value=0.0, max_trades=None):
    """Every hard constraint from shares and prices, independent of rebalopt's checks."""
    lots = state.lot_sizes
    k = plan.trades / lots
    assert np.allclose(k, np.round(k), atol=1e-9), "trade is not a whole number of lots"
    post = state.holdings + plan.trades
    assert (post >= -1e-9).all(), "short position in a long-only book"
    cost = plan.total_cost
    cash = state.cash - float((plan.trades * state.prices).sum()) - cost
    assert cash >= floor * state.equity - 1e-6, f"cash {cash} below floor"
    w = post * state.prices / state.equity
    for lab in set(state.groups):
        assert w[state.groups == lab].sum() <= cap + 1e-7, f"group {lab} above cap"
    traded = plan.trades != 0
    if min_value:
        assert (np.abs(plan.trades[traded]) * state.prices[traded] >= min_value - 1e-6).all()
    if max_trades is not None:
        assert traded.sum() <= max_trades


def rebalancer(sigma, costs, cap, *, mode="round", min_value=None, max_trades=None,
               gamma=100.0, T=1.0 / 12.0):
    relax = OptimalRebalancer(risk=Covariance(sigma), costs=costs,
                              constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)],
                              risk_aversion=gamma, horizon=T)
    return IntegerRebalancer(relax, mode=mode, min_trade_value=min_value,
                             max_trades=max_trades, time_limit=30.0)


COSTS = [
    lambda: [Spread(5.0), Commission(per_share=0.01, minimum=5.0)],
    lambda: [Spread(10.0), MarketImpact(coef=0.5), Commission(per_order=3.0)],
    lambda: [Commission(bps=5.0, minimum=2.0, per_order=1.0), MarketImpact(coef=1.0,
                                                                             exponent=2.0)],
]


@pytest.mark.parametrize("seed", range(6))
def test_round_and_exact_against_brute_force(seed):
    n = 3 if seed % 2 == 0 else 4
    state, targets, sigma = tiny(seed, n)
    costs = COSTS[seed % 3]()
    cap = 0.7
    min_value = 500.0 if seed % 3 == 1 else 0.0
    max_trades = 2 if seed % 3 == 2 else None
    best, _ = brute_force(state, targets, sigma, costs=costs, cap=cap, gamma=100.0,
                          T=1 / 12, min_value=min_value, max_trades=max_trades)
    assert best is not None
    kw = {"min_value": min_value or None, "max_trades": max_trades}
    rnd = rebalancer(sigma, costs, cap, **kw).plan(state, targets)
    hand_check(rnd, state, targets, cap=cap, min_value=min_value, max_trades=max_trades)
    info = rnd.info
    # the relaxation is a lower bound; round lands at or above the true optimum and
    # within the gap it reports
    assert info["relaxation_objective"] <= best + 1e-9
    assert info["integer_objective"] >= best - 1e-12
    assert info["integer_objective"] - best <= info["integer_gap"] + 1e-12
    # the reported objective is what the broker charges plus the risk, by hand
    x = rnd.trades
    w = (state.holdings + x) * state.prices / state.equity
    d = w - state.target_weights(targets)
    S = sigma.loc[state.assets, state.assets].to_numpy()
    by_hand = rnd.total_cost / state.equity + 0.5 * 100 / 12 * d @ S @ d
    assert info["integer_objective"] == pytest.approx(by_hand, rel=1e-9, abs=1e-13)
    if HAS_SCIP:
        ex = rebalancer(sigma, costs, cap, mode="exact", **kw).plan(state, targets)
        hand_check(ex, state, targets, cap=cap, min_value=min_value, max_trades=max_trades)
        assert ex.info["integer_objective"] == pytest.approx(best, rel=1e-7, abs=1e-12)
        assert ex.info["mip_proven_optimal"]
        assert ex.info["mip_bound"] <= best + 1e-9
        assert ex.info["mip_bound"] == pytest.approx(best, rel=1e-5, abs=1e-10)  # gap closed


@needs_scip
@pytest.mark.parametrize("seed", range(3))
def test_exact_with_three_halves_impact_is_exact_at_integers(seed):
    """Secant lines through consecutive lot counts price |q|^1.5 exactly at integers."""
    state, targets, sigma = tiny(10 + seed, 3)
    costs = [Spread(5.0), MarketImpact(coef=3.0, exponent=1.5)]
    best, _ = brute_force(state, targets, sigma, costs=costs, cap=0.8, gamma=50.0, T=1 / 12)
    ex = rebalancer(sigma, costs, 0.8, mode="exact", gamma=50.0).plan(state, targets)
    assert ex.info["integer_objective"] == pytest.approx(best, rel=1e-7, abs=1e-12)


# ------------------------------------------------------------- infeasibility
def test_no_whole_lot_plan_raises_naming_the_constraint():
    """A weight band narrower than one lot: the relaxation is feasible, no lot plan is."""
    state = PortfolioState({"AAA": 0, "BBB": 0}, 10_000.0, {"AAA": 20.0, "BBB": 50.0},
                           lot_sizes={"AAA": 100, "BBB": 10})
    targets = {"AAA": 0.31, "BBB": 0.5}
    relax = OptimalRebalancer(constraints=[LongOnly(), CashFloor(),
                                           WeightBounds(lower={"AAA": 0.30},
                                                        upper={"AAA": 0.32})])
    assert relax.plan(state, targets).post_weights[0] == pytest.approx(0.31, abs=1e-6)
    for mode in ("round", "exact"):
        with pytest.raises(InfeasibleError) as err:
            IntegerRebalancer(relax, mode=mode).plan(state, targets)
        assert "WeightBounds" in str(err.value) and "AAA" in str(err.value)
        assert err.value.conflicts
    if HAS_SCIP:
        with pytest.raises(InfeasibleError, match="proven by SCIP"):
            IntegerRebalancer(relax).plan(state, targets)


def test_infeasible_emits_no_orders(make_broker):
    broker = make_broker({"AAA": 0.0}, 10_000.0)
    relax = OptimalRebalancer(constraints=[LongOnly(), CashFloor(),
                                           WeightBounds(lower={"AAA": 0.30},
                                                        upper={"AAA": 0.32})])
    reb = IntegerRebalancer(relax, lots=100)
    data = {"AAA": {"close": 20.0}, "BBB": {"close": 50.0}}
    with pytest.raises(InfeasibleError):
        reb.execute({"AAA": 0.31, "BBB": 0.5}, data, broker)
    assert broker.calls == []


# ------------------------------------------------------- sector caps at scale
def forty(seed: int, cap: float = 0.30):
    """40 assets, 100-share lots, a $2M book whose targets put one sector above the cap."""
    rng = np.random.default_rng(seed)
    n = 40
    assets = [f"S{i:02d}" for i in range(n)]
    prices = pd.Series(rng.uniform(30, 400, n), index=assets)
    sectors = np.array(["Tech"] * 12 + ["Energy"] * 10 + ["Health"] * 10 + ["Fin"] * 8)
    raw = rng.dirichlet(np.ones(n))
    raw[sectors == "Tech"] *= 2.0
    targets = pd.Series(raw / raw.sum() * 0.97, index=assets)
    V = 2e6
    hold = np.floor(targets.to_numpy() * V * np.exp(rng.normal(0, 0.25, n)) / prices / 100) * 100
    cash = max(V - float((hold * prices).sum()), 2e4)
    state = PortfolioState(pd.Series(hold, index=assets), cash, prices,
                           groups=pd.Series(sectors, index=assets),
                           lot_sizes=pd.Series(100.0, index=assets),
                           adv=pd.Series(rng.uniform(2e5, 2e6, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets))
    vol = rng.uniform(0.15, 0.4, n)
    C = 0.3 + 0.7 * np.eye(n)
    sigma = pd.DataFrame(np.outer(vol, vol) * C, index=assets, columns=assets)
    relax = OptimalRebalancer(
        risk=Covariance(sigma), costs=[Spread(5.0), Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)], risk_aversion=200.0)
    return state, targets, relax


def test_round_keeps_the_sector_cap_where_nearest_rounding_breaks_it():
    broken = 0
    for seed in range(20):
        state, targets, relax = forty(seed)
        reb = IntegerRebalancer(relax)
        plan = reb.plan(state, targets)
        hand_check(plan, state, targets, cap=0.30)
        # baseline: the relaxation rounded to the nearest lot
        sol = relax.solve(state, targets)
        lots = state.lot_sizes
        x = np.round(sol.z * state.equity / state.prices / lots) * lots
        w = (state.holdings + x) * state.prices / state.equity
        caps = [w[state.groups == g].sum() for g in set(state.groups)]
        broken += max(caps) > 0.30 + 1e-9
        assert plan.info["integer_gap"] >= -1e-9
    assert broken >= 3, f"nearest rounding broke the cap in only {broken} of 20 cases"


# ---------------------------------------------------------- exact fallbacks
def test_exact_falls_back_to_round_without_a_solver(monkeypatch):
    state, targets, sigma = tiny(3, 3)
    reb = rebalancer(sigma, [Spread(5.0)], 0.7, mode="exact")
    monkeypatch.setattr(cp, "installed_solvers", lambda: ["CLARABEL"])
    plan = reb.plan(state, targets)
    assert plan.info["integer_method"] == "round"
    assert "no MIP solver" in plan.info["fallback"]
    hand_check(plan, state, targets, cap=0.7)


@needs_scip
def test_exact_with_a_tiny_time_limit_still_returns_a_verified_plan():
    state, targets, relax = forty(0)
    reb = IntegerRebalancer(relax, mode="exact", time_limit=0.05)
    plan = reb.plan(state, targets)
    hand_check(plan, state, targets, cap=0.30)
    assert plan.info["integer_objective"] <= plan.info["round_objective"] + 1e-15
    if plan.info.get("mip_bound") is not None:
        assert plan.info["mip_bound"] <= plan.info["integer_objective"] + 1e-9


def test_linear_objective_goes_to_highs():
    """gamma = 0 with alpha: a linear objective, solved by HiGHS, brute-forced by hand."""
    pytest.importorskip("highspy")
    state, targets, sigma = tiny(5, 3)
    alpha = pd.Series([0.010, 0.004, -0.002], index=state.assets)
    relax = OptimalRebalancer(risk=Covariance(sigma), costs=[Commission(per_order=2.0),
                                                             Spread(5.0)],
                              constraints=[LongOnly(), CashFloor(), GroupBounds(upper=0.7)],
                              risk_aversion=0.0, alpha=alpha)
    plan = IntegerRebalancer(relax, mode="exact").plan(state, targets)
    assert plan.info["mip_solver"] == "HIGHS"
    # brute force: -alpha'w + cost over every lot combination
    best = np.inf
    lots, px, V = state.lot_sizes, state.prices, state.equity
    rng_ = [range(-int(state.holdings[i] // lots[i]), int(V // (lots[i] * px[i])) + 1)
            for i in range(3)]
    for q in itertools.product(*rng_):
        x = np.array(q, float) * lots
        cost = sum(m.evaluate(x, state).sum() for m in relax.costs)
        w = (state.holdings + x) * px / V
        if state.cash - (x * px).sum() - cost < 0 or (w < 0).any():
            continue
        if max(w[state.groups == g].sum() for g in ("G1", "G2")) > 0.7 + 1e-9:
            continue
        best = min(best, cost / V - alpha.to_numpy() @ w)
    assert plan.info["integer_objective"] == pytest.approx(best, rel=1e-7, abs=1e-12)


# ------------------------------------------------------ building blocks
def test_cost_table_matches_evaluate():
    state, _, _ = tiny(1, 4)
    models = [Spread(7.0), MarketImpact(coef=0.8), MarketImpact(coef=0.3, exponent=2.0),
              Commission(per_share=0.01, bps=2.0, minimum=4.0, per_order=1.5)]
    table = CostTable(models, state)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(-3, 4, state.n) * state.lot_sizes
        z = x * state.prices / state.equity
        want = sum(m.evaluate(x, state) for m in models) / state.equity
        assert np.allclose(table(z), want, rtol=1e-12, atol=1e-16)


def test_kernels_match_the_constraints_own_evaluate():
    state, targets, _ = tiny(2, 4)
    w_t = state.target_weights(targets)
    V = state.equity
    cons = [LongOnly(), CashFloor(0.01), GroupBounds(upper=0.5, lower={"G1": 0.1}),
            TurnoverLimit(0.2), Leverage(gross=1.0, net=0.95), ShortLimit(0.05, total=0.08),
            WeightBounds(lower=0.02, upper=0.45), ParticipationLimit(0.2),
            Restricted(no_buy=["T0"], no_sell=["T1"], no_trade=["T3"]),
            MinTradeValue(900.0), MaxTrades(2), LotSize()]
    rng = np.random.default_rng(1)
    for c in cons:
        k = kernel_for(c, state, w_t)
        assert k.exact, c  # every built-in declares its closed form (search_kernel)
        for _ in range(5):
            z = rng.integers(-2, 3, state.n) * state.lot_sizes * state.prices / V
            cash = state.cash_weight - z.sum() - rng.uniform(0, 1e-3)
            P = PointArrays(z, state.weights + z, cash)

            def total(zz, ww, cc, c=c):
                lhs, rhs = c.evaluate(Point(zz, ww, cc, state, w_t))
                return float(np.maximum(np.atleast_1d(lhs) - np.atleast_1d(rhs), 0).sum())

            assert k.total(P) == pytest.approx(total(z, P.w, cash), abs=1e-12)
            D = rng.integers(-2, 3, (state.n, 3)) * (state.lot_sizes * state.prices / V)[:, None]
            Z, W = z[:, None] + D, P.w[:, None] + D
            CASH = cash - D
            got = k.candidates(P, Z, W, CASH)
            for i in range(state.n):
                for j in range(3):
                    zz, ww = z.copy(), P.w.copy()
                    zz[i], ww[i] = Z[i, j], W[i, j]
                    assert got[i, j] == pytest.approx(total(zz, ww, CASH[i, j]), abs=1e-12), c


def test_a_subclass_keeps_the_closed_form_kernel_and_a_rows_only_constraint_is_generic():
    """The kernel is declared by the constraint (no type switch): a plain subclass of a
    built-in keeps its closed form; a constraint that declares none is evaluated
    point by point, with the same violations."""
    state, targets, _ = tiny(2, 4)
    w_t = state.target_weights(targets)

    class MyBounds(WeightBounds):
        pass

    class Generic(WeightBounds):
        def search_kernel(self, state, targets):
            return None

    mine = kernel_for(MyBounds(upper=0.3), state, w_t)
    generic = kernel_for(Generic(upper=0.3), state, w_t)
    assert mine.exact and not generic.exact
    V = state.equity
    z = np.ones(state.n) * state.lot_sizes * state.prices / V
    P = PointArrays(z, state.weights + z, state.cash_weight - z.sum())
    D = np.arange(-1, 2)[None, :] * (state.lot_sizes * state.prices / V)[:, None]
    Z, W, CASH = z[:, None] + D, P.w[:, None] + D, P.cash - D
    assert mine.total(P) == pytest.approx(generic.total(P), abs=1e-14)
    assert np.allclose(mine.candidates(P, Z, W, CASH), generic.candidates(P, Z, W, CASH),
                       atol=1e-14)


def test_integer_constraints_check_by_hand():
    state = PortfolioState({"A": 100}, 5_000.0, {"A": 10.0, "B": 20.0},
                           lot_sizes={"A": 100, "B": 5})
    V = state.equity  # 6,000

    def pt(shares):
        z = np.array(shares, float) * state.prices / V
        return Point.from_trades(state, np.zeros(2), z, 0.0)

    assert LotSize().check(pt([100, 15])).satisfied
    s = LotSize().check(pt([150, 15]))
    assert not s.satisfied and s.violation == pytest.approx(50.0) and "A" in s.row
    assert not LotSize(lots=10).check(pt([100, 15])).satisfied
    m = MinTradeValue(500.0)
    assert m.check(pt([100, 0])).satisfied            # $1,000 and no trade
    s = m.check(pt([100, 20]))                         # B: $400 < $500
    assert s.violation == pytest.approx(100.0 / V) and "B" in s.row
    assert MaxTrades(1).check(pt([100, 0])).satisfied
    assert MaxTrades(1).check(pt([100, 5])).violation == 1.0
    with pytest.raises(ValueError):
        MaxTrades(-1)
    with pytest.raises(ValueError):
        MinTradeValue(float("nan"))


def test_integer_constraints_inside_the_relaxation_are_moved_to_the_integer_stage():
    state, targets, sigma = tiny(4, 4)
    relax = OptimalRebalancer(risk=Covariance(sigma), costs=[Spread(5.0)],
                              constraints=[LongOnly(), CashFloor(), MaxTrades(1),
                                           MinTradeValue(300.0)])
    plan = IntegerRebalancer(relax).plan(state, targets)
    traded = plan.trades != 0
    assert traded.sum() <= 1
    assert (np.abs(plan.trades[traded]) * state.prices[traded] >= 300.0 - 1e-9).all()
    assert relax.constraints[2].name == "MaxTrades(1)"  # the user's list is untouched


def test_round_is_deterministic():
    state, targets, relax = forty(7)
    a = IntegerRebalancer(relax).plan(state, targets)
    b = IntegerRebalancer(relax).plan(state, targets)
    assert np.array_equal(a.trades, b.trades)


def test_optimal_rebalancer_hook_gives_the_integer_stage():
    import pickle

    state, targets, relax = forty(3)
    relax.integer = "round"
    plan = relax.plan(state, targets)
    assert plan.method == "optimal-integer"
    hand_check(plan, state, targets, cap=0.30)
    direct = IntegerRebalancer(dataclasses_replace(relax, integer="off")).plan(state, targets)
    assert np.array_equal(plan.trades, direct.trades)
    assert pickle.loads(pickle.dumps(relax)).plan(state, targets).trades.tolist() == \
        plan.trades.tolist()
    relax.integer = "off"
    assert relax.plan(state, targets).method == "optimal"


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_cost_table_reprices_only_changed_rows_bit_for_bit():
    """The table keeps its last candidate table per shape and re-prices the rows that
    changed: the answer is the one a fresh table gives, bit for bit."""
    state, _, _ = tiny(1, 4)
    models = [Spread(7.0), MarketImpact(coef=0.8), MarketImpact(coef=0.3, exponent=2.0),
              Commission(per_share=0.01, bps=2.0, minimum=4.0, per_order=1.5)]
    kept = CostTable(models, state)
    rng = np.random.default_rng(3)
    unit = (state.lot_sizes * state.prices / state.equity)[:, None]
    Z = rng.integers(-3, 4, (state.n, 3)) * unit
    for _ in range(30):
        Z = Z.copy()
        i = rng.integers(state.n)
        Z[i] = rng.integers(-3, 4, 3) * unit[i]  # one asset moved (or not)
        np.testing.assert_array_equal(kept(Z), CostTable(models, state)(Z))
