"""The direct Clarabel path against the cvxpy program (an independent construction).

Both read each constraint's one declaration (``rows``): the direct path hands the
builder's matrices to Clarabel, the cvxpy path writes the same program as a DPP cvxpy
Problem and lets cvxpy canonicalize it for its solver. Same optimum on random
problems with every constraint type and cost model (objective to 1e-6 relative,
trades close), the same numeric checks, compile counts, determinism. (A user
constraint declaring only ``rows``: tests/constraints/test_user_rows.py.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from rebalopt import Commission, InfeasibleError, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import (
    CashFloor,
    Constraint,
    FactorBounds,
    GroupBounds,
    Leverage,
    LongOnly,
    ParticipationLimit,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance._clarabel import DirectProblem
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel

SECTORS = ["Tech", "Energy", "Health", "Utilities"]


def random_problem(n: int, seed: int, k: int = 3, short: bool = False):
    rng = np.random.default_rng(seed)
    assets = [f"S{i:03d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 200, n), index=assets)
    hold = pd.Series(np.round(rng.uniform(0, 2_000, n)), index=assets)
    if short:
        hold.iloc[: n // 4] *= -0.3
    state = PortfolioState(
        hold, 20_000.0, prices,
        adv=pd.Series(rng.uniform(2e4, 2e5, n), index=assets),
        volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets),
        groups=pd.Series(rng.choice(SECTORS, n), index=assets),
    )
    w = rng.dirichlet(np.ones(n)) * 0.97
    if short:
        w[-(n // 5):] *= -0.5
    targets = pd.Series(w, index=assets)
    B = pd.DataFrame(rng.normal(1.0, 0.3, (n, k)) + rng.normal(0, 0.5, (n, k)),
                     index=assets, columns=[f"f{j}" for j in range(k)])
    A = rng.normal(0, 0.1, (k, k))
    F = pd.DataFrame(A @ A.T + 0.01 * np.eye(k), index=B.columns, columns=B.columns)
    idio = pd.Series(rng.uniform(0.02, 0.09, n), index=assets)
    return state, targets, FactorModel(B, F, idio), B


def constraint_sets(state, targets, B, rng):
    assets = list(state.assets)
    pick = rng.choice(assets, 6, replace=False)
    return {
        "long-only": [LongOnly(), CashFloor(), TurnoverLimit(0.6),
                      WeightBounds(upper=0.2), GroupBounds(upper=0.45)],
        "groups-relative-factors": [
            LongOnly(), CashFloor(0.01),
            GroupBounds(upper=0.02, lower=-0.02, relative=True),
            FactorBounds(B, upper={"f0": 3.0}, lower={"f1": -1.0}),
            FactorBounds(B, upper=0.05, lower=-0.05, relative=True)],
        "trading": [LongOnly(), CashFloor(), ParticipationLimit(0.05),
                    Restricted(no_buy=pick[:2], no_sell=pick[2:4], no_trade=pick[4:])],
        "long-short": [ShortLimit(per_asset=0.02, total=0.05), Leverage(gross=1.3, net=0.95),
                       CashFloor(-0.2), WeightBounds(lower=-0.03, upper=0.08)],
        "soft": [LongOnly(), CashFloor(), TurnoverLimit(0.01, soft=True, penalty=0.05),
                 GroupBounds(upper=0.2, soft=True, penalty=0.02),
                 Leverage(gross=0.9, soft=True, penalty=0.01)],
    }


COSTS = {
    "spread+impact": lambda: [Spread(5.0), MarketImpact(coef=1.0)],
    "commission+linear-impact": lambda: [Commission(per_share=0.005, bps=1.0, minimum=1.0),
                                         MarketImpact(coef=0.5, exponent=1.0)],
    "quadratic-impact+spread": lambda: [Spread(3.0), MarketImpact(coef=2.0, exponent=2.0)],
    "two-impacts": lambda: [MarketImpact(coef=0.5), MarketImpact(coef=0.3, exponent=1.25)],
    "none": list,
}


def pair(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return (OptimalRebalancer(backend="direct", **kw),
                OptimalRebalancer(backend="cvxpy", solver="CLARABEL", **kw))


@pytest.mark.parametrize("cset", ["long-only", "groups-relative-factors", "trading",
                                  "long-short", "soft"])
@pytest.mark.parametrize("cost", list(COSTS))
def test_direct_and_cvxpy_reach_the_same_optimum(cset, cost):
    seed = 10 * list(COSTS).index(cost) + len(cset)  # stable across processes
    short = cset == "long-short"
    state, targets, risk, B = random_problem(30, seed, short=short)
    cons = constraint_sets(state, targets, B, np.random.default_rng(seed))[cset]
    alpha = (pd.Series(np.random.default_rng(seed).normal(0, 0.002, 30), index=state.assets)
             if cost == "none" else None)
    direct, ref = pair(risk=risk, costs=COSTS[cost](), constraints=cons, alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = direct.solve(state, targets)
        b = ref.solve(state, targets)
    assert a.attempts[0] == ("CLARABEL", "optimal") and direct._direct is not None
    assert ref._direct is None  # the reference really went through cvxpy
    assert a.objective == pytest.approx(b.objective, rel=1e-6, abs=1e-11)
    # the solver's own objective (direct: assembled constant included) matches NumPy's
    assert a.solver_objective == pytest.approx(a.objective, rel=1e-5, abs=1e-10)
    np.testing.assert_allclose(a.z, b.z, atol=2e-5)
    for name, s in a.slacks.items():  # every hard constraint holds (NumPy check)
        c = cons[list(a.slacks).index(name)]
        assert c.soft or s.slack >= -1e-7, (name, s)


def test_soft_slack_reported_like_the_cvxpy_path():
    state, targets, risk, _ = random_problem(25, 5)
    cons = [LongOnly(), CashFloor(), TurnoverLimit(0.005, soft=True, penalty=0.02)]
    direct, ref = pair(risk=risk, costs=[Spread(2.0)], constraints=cons)
    pa, pb = direct.plan(state, targets), ref.plan(state, targets)
    va = pa.info["soft_violations"]["TurnoverLimit(0.005)"]
    vb = pb.info["soft_violations"]["TurnoverLimit(0.005)"]
    assert va > 1e-3 and va == pytest.approx(vb, rel=1e-4)
    # independent: the violation is the plan's one-way turnover above the cap
    assert va == pytest.approx(pa.turnover - 0.005, abs=1e-7)


def test_a_constraint_must_declare_rows():
    """``rows`` is the one declaration (issue 12): a constraint with only a numeric face
    cannot be made (it used to fall back to a cvxpy ``build``/``update``)."""
    class NoBuyFirst(Constraint):
        soft, penalty, label = False, 1.0, None

        def evaluate(self, point):
            return point.z[:1], np.zeros(1)

    with pytest.raises(TypeError, match="rows"):
        NoBuyFirst()


def test_user_cost_model_takes_the_direct_path():
    """A subclass of a built-in declares the same terms: no fallback (issue 12)."""
    class Flat(Spread):
        pass

    state, targets, risk, _ = random_problem(30, 4)
    opt = OptimalRebalancer(risk=risk, costs=[Flat(1.0), Commission(bps=1.0), MarketImpact()],
                            constraints=[LongOnly(), Leverage(gross=1.0)])
    opt.solve(state, targets)
    assert opt._direct is not None and opt._compiled is None and opt.compilations == 1


def test_compile_counts_and_no_cvxpy_on_the_direct_path():
    state, targets, risk, _ = random_problem(40, 8)
    cap = TurnoverLimit(0.1)
    reb = OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact()],
                            constraints=[LongOnly(), CashFloor(), cap, GroupBounds(upper=0.6)],
                            backend="direct")
    first = reb.solve(state, targets)
    assert first.compiled and reb.compilations == 1
    turnovers = []
    for c in (0.01, 0.02, 0.04):  # a frontier sweep: values only
        cap.cap = c
        sol = reb.solve(state, targets)
        assert not sol.compiled
        turnovers.append(0.5 * np.abs(sol.z).sum())
    np.testing.assert_allclose(turnovers, [0.01, 0.02, 0.04], atol=1e-7)
    reb.risk_aversion = 10.0
    reb.solve(state.replace(cash=state.cash * 2), targets)
    assert reb.compilations == 1 and reb._compiled is None  # cvxpy never built
    sub = state.assets[:-1]
    state2 = state.replace(prices=pd.Series(state.prices[:-1], index=sub),
                           holdings=pd.Series(state.holdings[:-1], index=sub))
    reb.solve(state2, targets.iloc[:-1] / targets.iloc[:-1].sum() * 0.9)
    assert reb.compilations == 2


def test_repeated_solves_are_bit_identical():
    """A fresh Clarabel solver per solve: no state carried between solves."""
    state, targets, risk, _ = random_problem(30, 4)
    kw = {"risk": risk, "costs": [Spread(3.0), MarketImpact(coef=0.5)],
          "constraints": [LongOnly(), CashFloor(), TurnoverLimit(0.25), WeightBounds(upper=0.12)],
          "backend": "direct"}
    reb = OptimalRebalancer(**kw)
    first = reb.solve(state, targets).z
    reb.solve(state.replace(cash=1_000.0), targets)  # something else in between
    again = reb.solve(state, targets).z
    fresh = OptimalRebalancer(**kw).solve(state, targets).z
    assert first.tobytes() == again.tobytes() == fresh.tobytes()


def test_infeasible_is_diagnosed_through_the_elastic_program():
    state, targets, risk, _ = random_problem(12, 6)
    g = GroupBounds(upper={"Tech": 0.1, "Energy": 0.1, "Health": 0.1, "Utilities": 0.1})
    reb = OptimalRebalancer(risk=risk, costs=[Spread(1.0)],
                            constraints=[LongOnly(), g, Leverage(net=1.0),
                                         GroupBounds(lower=0.3)],
                            backend="direct")
    with pytest.raises(InfeasibleError) as info:
        reb.solve(state, targets)
    assert info.value.conflicts and reb._direct is not None


def test_power_and_soc_impact_forms_agree_on_a_small_problem():
    state, targets, risk, _ = random_problem(15, 9)
    w = state.target_weights(targets)
    root = risk.root(state)
    costs, cons = [Spread(2.0), MarketImpact(coef=1.0)], [LongOnly(), CashFloor()]
    out = {}
    for form in ("power", "soc"):
        dp = DirectProblem(state, w, root.G.shape[1], costs, cons, False, impact=form)
        raw = dp.solve(state, w, root.G, root.s, 100.0, 1 / 12, None)
        assert raw.status.startswith("optimal")
        out[form] = raw.objective
    assert out["soc"] == pytest.approx(out["power"], rel=1e-4)


def test_default_backend_is_direct_and_path_independent():
    """The batch author's report: one rebalancer planning account 0 then account 192 of a
    100-asset batch answered account 192 differently from a fresh rebalancer (cvxpy's
    cached Clarabel solver). The default (direct) path: bit for bit the same, either order."""
    assert OptimalRebalancer().backend == "direct"
    problems = [random_problem(100, seed) for seed in (20, 21, 22)]
    kw = {"costs": [Spread(5.0), MarketImpact(coef=1.0)],
          "constraints": [LongOnly(), CashFloor(), WeightBounds(upper=0.05),
                          TurnoverLimit(0.3), GroupBounds(upper=0.02, lower=-0.02,
                                                           relative=True)],
          "solver_options": {"CLARABEL": {"warm_start": False}}}  # a cvxpy option: ignored
    fresh = [OptimalRebalancer(risk=p[2], **kw).plan(p[0], p[1]) for p in problems]
    shared = OptimalRebalancer(risk=problems[0][2], **kw)
    for order in ((0, 1, 2), (2, 1, 0), (1, 1, 0)):
        for i in order:
            state, targets, risk, _ = problems[i]
            shared.risk = risk
            plan = shared.plan(state, targets)
            assert plan.info["attempts"] == [("CLARABEL", "optimal")]
            assert plan.trades.tobytes() == fresh[i].trades.tobytes()
