"""Assets a cost model cannot price (a fresh listing without volatility or ADV) are frozen.

Found on real data: one newly listed asset with no trailing volatility in the
universe (not held, target 0) made ``MarketImpact`` raise and held the whole
rebalance. Now every rebalancer plans without it and says so in
``plan.info["untradable"]``.

Oracles: the same program on the universe without the asset (an unheld asset with
target 0 contributes nothing once its trade is 0); the same program with the asset
priced and its weight pinned by a hard ``WeightBounds`` (a held asset); the plan of
a rebalancer without the impact model (naive, band); the cost model's NumPy face.
"""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from rebalopt import BandRebalancer, NaiveRebalancer, PortfolioState, RebalanceConfig
from rebalopt.constraints import CashFloor, LongOnly, WeightBounds
from rebalopt.costs import Commission, MarketImpact, Spread, untradable_assets
from rebalopt.errors import InfeasibleError, InputError
from rebalopt.program import cost_expression
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance

ASSETS = ["A", "B", "C", "D", "E"]
PRICES = {"A": 50.0, "B": 25.0, "C": 80.0, "D": 40.0, "E": 120.0}
ADV = {"A": 2e5, "B": 5e5, "C": 1e5, "D": 3e5, "E": 8e4}
VOL = {"A": 0.02, "B": 0.015, "C": 0.025, "D": 0.03, "E": 0.018}
NAN = math.nan
BACKENDS = ("direct", "cvxpy")


def covariance(assets: list[str] = ASSETS) -> Covariance:
    rng = np.random.default_rng(7)
    g = rng.normal(size=(len(ASSETS), 2)) * 0.15
    sigma = g @ g.T + np.diag(rng.uniform(0.02, 0.06, len(ASSETS)) ** 2)
    full = pd.DataFrame(sigma, index=ASSETS, columns=ASSETS)
    return Covariance(full.loc[assets, assets])


def state(holdings: dict[str, float], *, drop: str | None = None,
          volatility: dict[str, float] | None = None,
          adv: dict[str, float] | None = None) -> PortfolioState:
    keep = [a for a in ASSETS if a != drop]
    vol = {**VOL, **(volatility or {})}
    advs = {**ADV, **(adv or {})}
    return PortfolioState({a: h for a, h in holdings.items() if a in keep}, 20_000.0,
                          {a: PRICES[a] for a in keep},
                          adv={a: advs[a] for a in keep},
                          volatility={a: vol[a] for a in keep})


def costs() -> list:
    return [Spread(3.0), Commission(bps=1.0), MarketImpact(coef=1.0)]


HOLD = {"A": 400.0, "B": 900.0, "C": 150.0, "E": 60.0}   # D not held
TARGETS = {"A": 0.25, "B": 0.2, "C": 0.2, "D": 0.0, "E": 0.25}


def optimal(backend: str, constraints: list | None = None, **kw) -> OptimalRebalancer:
    return OptimalRebalancer(risk=covariance(), costs=costs(), backend=backend,
                             constraints=constraints or [LongOnly(), CashFloor()], **kw)


# ------------------------------------------------------------------ cost model
def test_impact_tradable_mask_and_reasons():
    s = state(HOLD, volatility={"D": NAN}, adv={"E": 0.0})
    m = MarketImpact()
    np.testing.assert_array_equal(m.tradable(s), [True, True, True, False, False])
    frozen, reasons = untradable_assets([Spread(1.0), m], s)
    np.testing.assert_array_equal(frozen, [False, False, False, True, True])
    assert list(reasons) == ["D", "E"]
    assert "volatility" in reasons["D"] and "ADV" in reasons["E"]
    assert "MarketImpact" in reasons["D"]
    # terms do not raise; a trade in an untradable asset still does, naming it
    m.terms(s)
    with pytest.raises(InputError) as info:
        m.evaluate(np.array([0.0, 0.0, 0.0, 5.0, 0.0]), s)
    assert (info.value.asset, info.value.field) == ("D", "volatility")
    with pytest.raises(InputError) as info:
        m.evaluate(np.array([0.0, 0.0, 0.0, 0.0, 5.0]), s)
    assert (info.value.asset, info.value.field) == ("E", "adv")


def test_cost_faces_agree_on_tradable_assets():
    """cvxpy face * equity == NumPy face on trades in the tradable assets; the
    coefficients there are those of the universe without the untradable asset."""
    s = state(HOLD, volatility={"D": NAN})
    s_wo = state(HOLD, drop="D")
    rng = np.random.default_rng(3)
    z = rng.normal(scale=0.02, size=s.n)
    z[s.index_of("D")] = 0.0
    shares = z * s.equity / (s.prices * s.multipliers)
    for m in costs():
        zv = cp.Variable(s.n)
        zv.value = z
        face = float(cost_expression(m.terms(s), zv, cp.abs(zv)).value) * s.equity
        assert face == pytest.approx(float(m.evaluate(shares, s).sum()), rel=1e-10)
    a, a_wo = MarketImpact().coefficients(s), MarketImpact().coefficients(s_wo)
    keep = np.arange(s.n) != s.index_of("D")
    np.testing.assert_allclose(a[keep], a_wo, rtol=1e-12)
    assert a[s.index_of("D")] == 0.0


# ------------------------------------------------------------------ optimal
@pytest.mark.parametrize("backend", BACKENDS)
def test_optimal_plans_without_an_unheld_unpriced_asset(backend):
    s = state(HOLD, volatility={"D": NAN})
    plan = optimal(backend).plan(s, TARGETS)
    assert list(plan.info["untradable"]) == ["D"]
    assert "volatility" in plan.info["untradable"]["D"]
    d = s.index_of("D")
    assert plan.trades[d] == 0.0
    # oracle: the same program on the universe without D (its trade 0, target 0,
    # never held: it adds nothing to cost, risk or constraints)
    s_wo = state(HOLD, drop="D")
    ref = OptimalRebalancer(risk=covariance([a for a in ASSETS if a != "D"]), costs=costs(),
                            backend=backend).plan(s_wo, {k: v for k, v in TARGETS.items()
                                                         if k != "D"})
    keep = np.arange(s.n) != d
    np.testing.assert_allclose(plan.trades[keep] * s.prices[keep] / s.equity,
                               ref.trades * s_wo.prices / s_wo.equity, atol=2e-6)
    assert plan.info["objective"] == pytest.approx(ref.info["objective"], abs=1e-8)
    assert ref.info["untradable"] == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_optimal_keeps_a_held_unpriced_asset_and_counts_its_target(backend):
    hold = {**HOLD, "D": 1500.0}
    targets = {**TARGETS, "D": 0.1, "E": 0.15}  # D held at ~0.42 of equity: a gap of 0.32
    s = state(hold, volatility={"D": NAN})
    plan = optimal(backend).plan(s, targets)
    d = s.index_of("D")
    assert plan.trades[d] == 0.0 and plan.post_holdings[d] == 1500.0
    assert list(plan.info["untradable"]) == ["D"]
    # the tracking error is measured against D's target too (by hand, Sigma from the
    # covariance matrix)
    sigma = covariance().matrix.loc[ASSETS, ASSETS].to_numpy()
    gap = plan.post_weights - plan.targets
    assert gap[d] > 0.25
    assert plan.info["tracking_error_after"] == pytest.approx(
        math.sqrt(gap @ sigma @ gap), rel=1e-9)
    # oracle: D priced, but its weight pinned by a hard constraint (z_D = 0)
    s_priced = state(hold)
    w_d = float(s_priced.weights[d])
    pin = WeightBounds(lower={"D": w_d}, upper={"D": w_d})
    ref = optimal(backend, [LongOnly(), CashFloor(), pin]).plan(s_priced, targets)
    np.testing.assert_allclose(plan.trades * s.prices / s.equity,
                               ref.trades * s.prices / s.equity, atol=2e-6)
    assert plan.info["objective"] == pytest.approx(ref.info["objective"], abs=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_change_in_the_frozen_set_does_not_recompile(backend):
    reb = optimal(backend)
    seq = [state(HOLD, volatility={"D": NAN}), state(HOLD),
           state(HOLD, adv={"C": NAN}), state(HOLD, volatility={"A": NAN, "D": NAN})]
    frozen_seen = []
    for i, s in enumerate(seq):
        plan = reb.plan(s, TARGETS)
        frozen_seen.append(sorted(plan.info["untradable"]))
        assert plan.info["compiled"] == (i == 0)
        for a in plan.info["untradable"]:
            assert plan.trades[s.index_of(a)] == 0.0
    assert frozen_seen == [["D"], [], ["C"], ["A", "D"]]
    assert reb.compilations == 1
    # the answer does not depend on what was frozen before: a fresh rebalancer agrees
    fresh = optimal(backend).plan(seq[-1], TARGETS)
    np.testing.assert_allclose(plan.trades * seq[-1].prices / seq[-1].equity,
                               fresh.trades * seq[-1].prices / seq[-1].equity, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_infeasible_because_frozen_says_so(backend):
    hold = {**HOLD, "D": 1500.0}
    s = state(hold, volatility={"D": NAN})
    reb = optimal(backend, [LongOnly(), CashFloor(), WeightBounds(upper=0.3)])
    with pytest.raises(InfeasibleError) as info:
        reb.plan(s, TARGETS)
    msg = str(info.value)
    assert "untradable" in msg and "'D'" not in msg and "D (" in msg
    assert info.value.conflicts
    # priced, the same program is feasible (D is sold under its bound)
    plan = optimal(backend, [LongOnly(), CashFloor(), WeightBounds(upper=0.3)]).plan(
        state(hold), TARGETS)
    assert plan.post_weights[s.index_of("D")] <= 0.3 + 1e-7


@pytest.mark.parametrize("mode", ["round", "exact"])
def test_integer_stage_never_trades_a_frozen_asset(mode):
    hold = {**HOLD, "D": 1500.0}
    targets = {**TARGETS, "D": 0.1, "E": 0.15}
    s = state(hold, volatility={"D": NAN})
    reb = OptimalRebalancer(risk=covariance(), costs=costs(), integer=mode, time_limit=10.0)
    plan = reb.plan(s, targets)
    d = s.index_of("D")
    assert plan.trades[d] == 0.0
    assert list(plan.info["untradable"]) == ["D"]
    assert np.all(plan.trades == np.round(plan.trades))  # whole shares
    assert plan.trades[np.arange(s.n) != d].any()


# ------------------------------------------------------------------ naive / band
def test_naive_skips_unpriced_assets_and_says_so():
    hold = {**HOLD, "D": 1500.0}
    s = state(hold, volatility={"D": NAN}, adv={"E": NAN})
    targets = {**TARGETS, "D": 0.05}
    cfg = RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0, fractional=True)
    plan = NaiveRebalancer(cfg, costs()).plan(s, targets)
    free = NaiveRebalancer(cfg).plan(s, targets)  # no cost model: trades everything
    frozen = np.isin(np.array(ASSETS), ["D", "E"])
    assert (free.trades[frozen] != 0).all()
    assert (plan.trades[frozen] == 0).all()
    np.testing.assert_array_equal(plan.trades[~frozen], free.trades[~frozen])
    assert sorted(plan.info["untradable"]) == ["D", "E"]
    np.testing.assert_array_equal(plan.targets, free.targets)  # targets stay on the plan


def test_band_skips_unpriced_assets_and_says_so():
    hold = {**HOLD, "D": 1500.0}
    s = state(hold, volatility={"D": NAN})
    targets = {**TARGETS, "D": 0.05}
    band = BandRebalancer(width=0.02, costs=costs(), fund=False)
    plan = band.plan(s, targets)
    ref = BandRebalancer(width=0.02, fund=False).plan(s, targets)
    d = s.index_of("D")
    assert ref.trades[d] < 0 and plan.trades[d] == 0.0  # D is outside its band
    keep = np.arange(s.n) != d
    np.testing.assert_array_equal(plan.trades[keep], ref.trades[keep])
    assert list(plan.info["untradable"]) == ["D"]
    assert plan.info["outside_band"] == ref.info["outside_band"]
    # funded: the plan is still built (costs evaluated only on tradable trades)
    funded = BandRebalancer(width=0.02, costs=costs()).plan(s, targets)
    assert funded.trades[d] == 0.0 and funded.post_cash >= -1e-9


def test_unheld_unpriced_asset_with_target_zero_all_rebalancers():
    """The benchmark's case: a fresh listing in the universe, not held, target 0."""
    s = state(HOLD, volatility={"D": NAN})
    cfg = RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0)
    for reb in (NaiveRebalancer(cfg, costs()), BandRebalancer(width=0.01, costs=costs()),
                optimal("direct")):
        plan = reb.plan(s, TARGETS)
        assert plan.trades[s.index_of("D")] == 0.0, reb.method
        assert list(plan.info["untradable"]) == ["D"], reb.method
        assert plan.trades.any(), reb.method
