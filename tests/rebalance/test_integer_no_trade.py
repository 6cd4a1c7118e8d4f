"""Round mode never fails, nor loses to doing nothing, when doing nothing is allowed.

Regression: in the README demo (quick), rebalance 2021-08-31 at ``gamma = 3000``
raised "no whole-lot plan found ... LongOnly [w >= 0: BAC] (violated by
3.46e-07)". The book held 23 BAC shares with a target of 0 and $7 of cash; the
relaxation closed BAC exactly, rounding left cash a few dollars short, and the
repair covered the shortfall by selling a 24th BAC share (one violation traded
for another), a step no single-share move could undo without breaking cash
again. The per-asset hard constraints are now a box the search never leaves, and
when no trade is feasible the search also runs from no trade.

Oracles: the no-trade objective by hand (zero cost, ``gamma T / 2 d' Sigma d``
with the explicit covariance); feasibility of no trade and of the plan from
shares, prices and cash by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.rebalance._integer_search import LotSearch
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance

# ---------------------------------------------------------- the demo's failing book
ASSETS = ["AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK",
          "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM"]
PRICES = [150.296, 110.72, 39.819, 107.441, 90.641, 81.663, 310.758, 165.157, 150.77, 53.05,
          252.507, 71.59, 297.136, 148.219, 42.883, 135.516, 14.449, 405.125, 144.083, 50.907]
HOLDINGS = [0.0, 22996.0, 23.0, 12826.0, 44.0, 16247.0, 21494.0, 63485.0, 56445.0, 158678.0,
            13400.0, 205447.0, 0.0, 56060.0, 222073.0, 169150.0, 54651.0, 0.0, 112846.0, 24.0]
ADV = [1364494.764515153, 1841615.650950462, 5129610.966083346, 1884485.883844133,
       2162918.1089447467, 2494948.3654649225, 639590.3117645417, 1200815.0616469178,
       1345451.0833743433, 3754093.9826668566, 772367.1257267618, 2776510.9252786892,
       691236.2018356083, 1353392.5445295738, 4528900.260103233, 1467207.326422827,
       14471065.269224916, 492212.991554445, 1390161.3053653843, 3845486.922023614]
VOL = [0.011828505858434582, 0.02859951802976646, 0.013437821145213604, 0.027307909485815088,
       0.014738429896912939, 0.014832217555912486, 0.013737897972447772, 0.007198129214517036,
       0.012107195898360994, 0.006667757178401469, 0.014842319352486909, 0.008027768295879563,
       0.009536477827519546, 0.007733122678146513, 0.023599688481225355, 0.006811902759310806,
       0.033878555382582075, 0.011988815248647063, 0.009334405546642551, 0.016890903255049272]
CASH = 7.412540457909927
TARGETS = {"AMD": 0.033241496058040984, "BBY": 0.0022553098330343174,
           "GE": 0.019665193316761764, "HD": 0.06015415469873049, "JNJ": 0.09016815403627342,
           "JPM": 0.06780909035254598, "KO": 0.08380431162330344, "LLY": 0.02308772459381953,
           "MRK": 0.13685893433901059, "PEP": 0.06761318542496322,
           "PFE": 0.04704168962318922, "PG": 0.20654033648356118,
           "RRC": 0.012178267348950346, "UNH": 1.140452442306512e-05,
           "WMT": 0.14957074774339246}
DATE = "2021-08-31"


def demo_book():
    """The demo's book on 2021-08-31 (gamma=3000 run) and that date's risk model."""
    from rebalopt.datasets import load_demo_prices
    from rebalopt.research.targets import risk_schedule

    idx = pd.Index(ASSETS)
    state = PortfolioState(pd.Series(HOLDINGS, index=idx), CASH, pd.Series(PRICES, index=idx),
                           adv=pd.Series(ADV, index=idx), volatility=pd.Series(VOL, index=idx))
    closes = load_demo_prices().loc["2019-01-01":DATE]
    risk = risk_schedule(closes, pd.DatetimeIndex([DATE]), lookback=252)
    risk.set_date(DATE)
    return state, pd.Series(TARGETS), risk


def demo_costs():
    return [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0),
            MarketImpact(coef=1.0, exponent=1.5)]


def test_demo_rebalance_that_sold_past_a_closed_position_now_plans():
    pytest.importorskip("skfolio")
    state, targets, risk = demo_book()
    relax = OptimalRebalancer(risk=risk, costs=demo_costs(), horizon=1 / 12,
                              risk_aversion=3000.0)
    reb = IntegerRebalancer(relax, prove_infeasible=False)  # the search alone must succeed
    plan = reb.plan(state, targets)
    post = state.holdings + plan.trades
    assert np.array_equal(plan.trades, np.round(plan.trades))
    assert (post >= 0).all()
    cash = state.cash - float(plan.trades @ state.prices) - plan.total_cost
    assert cash >= 0.0
    # the relaxation closes the untargeted leftovers; the whole-share plan closes them
    # exactly, unless keeping them is cheaper on the full cost (priced by the plan's own
    # objective: the neighbourhood search finds such plans)
    bac = ASSETS.index("BAC")
    assert state.holdings[bac] == 23.0
    if post[bac] != 0.0:
        closed = plan.trades.copy()
        closed[bac] = -23.0
        assert plan.info["integer_objective"] < reb.objective(closed, state, targets)
    # and it beats doing nothing, priced by hand: zero cost, (gamma T / 2) d' Sigma d
    w_t = state.target_weights(targets)
    G, s = np.asarray(risk.root(state).G), np.asarray(risk.root(state).s)
    sigma = G @ G.T + np.diag(s * s)
    d0 = state.weights - w_t
    f0 = 0.5 * 3000.0 / 12 * d0 @ sigma @ d0
    assert plan.info["integer_objective"] < f0
    assert plan.info["relaxation_objective"] <= plan.info["integer_objective"] + 1e-12


def _toy(box):
    """Asset 0 (lot weight 1e-4) closed exactly by 100 lots; asset 1 (lot weight 1e-3)
    bought 11 lots; cash starts at 0, so the plan is one asset-1 lot (1e-3) short."""
    return LotSearch(
        w0=np.array([1e-2, 0.5]), c0=0.0, targets=np.array([0.0, 0.511]),
        ell=np.array([1e-4, 1e-3]), costs=_NoCost(), G=np.zeros((2, 0)),
        s=np.array([0.01, 0.1]), gT=1.0, alpha=None, hard=[_neg_weight(), _cash()], soft=[],
        kmin=None, tol=1e-5, box=box,
    )


def test_search_never_leaves_the_per_asset_box():
    """The repair's cheapest cure for the shortfall is selling asset 0 past zero: it
    reduces the summed excess over tolerance by ``tol`` at almost no objective cost
    (the demo bug's mechanism). With the box the search never takes it."""
    q0 = np.array([-100.0, 11.0])
    loose = _toy(None)
    loose.max_moves = 1
    q1, _, _ = loose.repair(q0)
    assert q1[0] == -101.0  # the move the box exists to forbid
    boxed = _toy((np.array([-100.0, -np.inf]), np.array([np.inf, np.inf])))
    res = boxed.run(q0)
    assert res.feasible
    assert res.q[0] == -100.0          # closed exactly, never short
    assert res.q[1] == 10.0            # the shortfall is covered by one lot less of asset 1
    assert boxed.feasible(res.q)


class _NoCost:
    def __call__(self, Z):
        return np.zeros(np.shape(Z))


def _neg_weight():
    from rebalopt.program.search import PerAsset as _PerAsset

    return _PerAsset(lambda Z, W: np.maximum(-W, 0.0))


def _cash():
    from rebalopt.program.search import CashRow as _Cash

    return _Cash(0.0)


# ------------------------------------------------------------------ the property
@st.composite
def books(draw):
    """Books where no trade is feasible by construction (cash >= 0, every cap at or
    above the current book), with the demo bug's ingredients drawn often: a few
    dollars of cash, small leftover positions whose target is 0, large accounts,
    high risk aversion. Whole shares or lots, optional group / weight caps and a
    turnover cap."""
    n = draw(st.integers(3, 10))
    rng = np.random.default_rng(draw(st.integers(0, 100_000)))
    assets = [f"B{i:02d}" for i in range(n)]
    prices = rng.uniform(5, 400, n)
    lot = draw(st.sampled_from([1.0, 1.0, 10.0, 100.0]))
    V = draw(st.sampled_from([2e5, 5e6, 1e8, 1e8]))
    targets = rng.dirichlet(np.ones(n)) * draw(st.floats(0.95, 1.0))
    zeroed = rng.random(n) < 0.3
    targets[zeroed] = 0.0
    hold = np.floor(targets * V * np.exp(rng.normal(0, 0.05, n)) / prices / lot) * lot
    hold = np.where(zeroed, rng.integers(1, 50, n) * lot, hold)
    spent = float(hold @ prices)
    cash = draw(st.sampled_from([0.0, 7.41, 50.0, 0.02 * spent]))
    state = PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(prices, index=assets),
                           lot_sizes=pd.Series(lot, index=assets),
                           groups=pd.Series(rng.choice(["A", "B"], n), index=assets),
                           adv=pd.Series(rng.uniform(1e4, 1e7, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.005, 0.03, n), index=assets))
    vol = rng.uniform(0.1, 0.4, n)
    sigma = pd.DataFrame(np.outer(vol, vol) * (0.3 + 0.7 * np.eye(n)), index=assets,
                         columns=assets)
    gamma = draw(st.sampled_from([1.0, 30.0, 3000.0, 3000.0]))
    w0 = state.weights
    cap = draw(st.one_of(st.none(), st.floats(0.0, 0.05)))
    if cap is not None:  # at or above both groups' current weights
        cap += max(w0[state.groups == g].sum() for g in ("A", "B"))
    wcap = draw(st.one_of(st.none(), st.floats(0.0, 0.05)))
    if wcap is not None:
        wcap += float(w0.max())
    turnover = draw(st.one_of(st.none(), st.floats(0.001, 0.3)))
    return state, pd.Series(targets, index=assets), sigma, gamma, cap, wcap, turnover


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(books())
def test_round_is_never_worse_than_no_trade_when_no_trade_is_feasible(book):
    state, targets, sigma, gamma, cap, wcap, turnover = book
    w0 = state.weights  # no trade is feasible, checked by hand
    assert state.cash >= 0 and (w0 >= 0).all()
    assert wcap is None or (w0 <= wcap).all()
    assert cap is None or all(w0[state.groups == g].sum() <= cap for g in ("A", "B"))
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(3.0), MarketImpact(coef=1.0)]
    cons = [LongOnly(), CashFloor()]
    if cap is not None:
        cons.append(GroupBounds(upper=cap))
    if wcap is not None:
        cons.append(WeightBounds(upper=wcap))
    if turnover is not None:
        cons.append(TurnoverLimit(turnover))
    relax = OptimalRebalancer(risk=Covariance(sigma), costs=costs, constraints=cons,
                              risk_aversion=gamma, horizon=1 / 12)
    reb = IntegerRebalancer(relax, prove_infeasible=False)  # no MIP to rescue the search
    plan = reb.plan(state, targets)  # must not raise: no trade is a plan
    d0 = w0 - state.target_weights(targets)
    f0 = 0.5 * gamma / 12 * d0 @ sigma.to_numpy() @ d0
    assert plan.info["integer_objective"] <= f0 + 1e-12 * max(1.0, f0)
    post = state.holdings + plan.trades
    assert (post >= 0).all()
    assert np.allclose(plan.trades / state.lot_sizes, np.round(plan.trades / state.lot_sizes))
    cash = state.cash - float(plan.trades @ state.prices) - plan.total_cost
    assert cash >= -1e-9 * state.equity * 1e-3  # float round-off only, not a solver tolerance
    w = post * state.prices / state.equity
    assert wcap is None or (w <= wcap + 1e-12).all()
    assert cap is None or all(w[state.groups == g].sum() <= cap + 1e-12 for g in ("A", "B"))
    assert turnover is None or 0.5 * np.abs(plan.trades * state.prices).sum() / state.equity \
        <= turnover + 1e-12


def test_a_stuck_repair_falls_back_to_the_search_from_no_trade(monkeypatch):
    """Wiring of the safety net: when the rounded relaxation cannot be repaired and no
    trade is feasible, round mode searches from no trade (jumping towards the rounded
    relaxation) instead of raising, and the plan beats no trade."""
    pytest.importorskip("skfolio")
    state, targets, risk = demo_book()
    original = LotSearch.repair

    def stuck_unless_from_zero(self, q):
        if np.any(q != 0):
            return q, 0, False
        return original(self, q)

    monkeypatch.setattr(LotSearch, "repair", stuck_unless_from_zero)
    relax = OptimalRebalancer(risk=risk, costs=demo_costs(), horizon=1 / 12,
                              risk_aversion=3000.0)
    plan = IntegerRebalancer(relax, prove_infeasible=False).plan(state, targets)
    assert any("from no trade" in n for n in plan.info["notes"])
    assert plan.trades.any()
    w_t = state.target_weights(targets)
    root = risk.root(state)
    G, s = np.asarray(root.G), np.asarray(root.s)
    d0 = state.weights - w_t
    f0 = 0.5 * 3000.0 / 12 * (np.sum((G.T @ d0) ** 2) + np.sum((s * d0) ** 2))
    assert plan.info["integer_objective"] < f0
    cash = state.cash - float(plan.trades @ state.prices) - plan.total_cost
    assert cash >= 0.0 and (state.holdings + plan.trades >= 0).all()
    # the jump moves bring it close to the plan from the rounded relaxation
    assert plan.info["integer_objective"] - plan.info["relaxation_objective"] < \
        0.05 * (f0 - plan.info["relaxation_objective"])
