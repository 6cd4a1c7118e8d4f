"""The two faces of every cost model agree.

For trade weights ``z`` (fractions of equity ``V``) the optimizer's face (the
model's declared ``terms`` through :class:`rebalopt.program.CvxpyCost`) gives
``expression(z).value`` as a fraction of equity and the broker's face gives
``evaluate(q, state)`` in currency for ``q = z V / (p m)`` shares. Wherever the
model is convex the two must agree: ``expression(z).value * V == evaluate(q).sum()``.
The per-order minimum and fixed fee of ``Commission`` are not convex: the
expression leaves them out, so it is a lower bound of what the broker charges.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from rebalopt.costs import Commission, MarketImpact, Spread
from rebalopt.program import CvxpyCost
from rebalopt.state import PortfolioState

N = 8


def random_state(seed: int, n: int = N) -> PortfolioState:
    rng = np.random.default_rng(seed)
    tickers = [f"T{i}" for i in range(n)]
    prices = np.exp(rng.uniform(np.log(2.0), np.log(2_000.0), n))
    mult = np.where(rng.random(n) < 0.25, rng.choice([5.0, 50.0], n), 1.0)
    holdings = np.round(rng.normal(0, 500, n)) * (rng.random(n) < 0.7)
    value = float((holdings * prices * mult).sum())
    cash = abs(value) + float(rng.uniform(1e4, 1e6))
    return PortfolioState(
        dict(zip(tickers, holdings)), cash, dict(zip(tickers, prices)),
        adv=dict(zip(tickers, np.exp(rng.uniform(np.log(1e3), np.log(1e7), n)))),
        volatility=dict(zip(tickers, rng.uniform(0.005, 0.06, n))),
        multipliers=dict(zip(tickers, mult)),
    )


def random_z(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    z = rng.normal(0, 0.05, n)
    z[rng.random(n) < 0.25] = 0.0  # some assets not traded
    return z


MODEL_IDS = ["spread-scalar", "spread-per-asset", "impact-exp1", "impact-exp1.5", "impact-exp2",
             "impact-exp1.25", "commission-share-bps", "commission-bps"]


def models_in_agreement():
    rng = np.random.default_rng(7)
    return [
        Spread(3.0),
        Spread({f"T{i}": float(v) for i, v in enumerate(rng.uniform(0.5, 30, N))}),
        MarketImpact(coef=0.8, exponent=1.0),
        MarketImpact(coef=1.0, exponent=1.5),
        MarketImpact(coef=1.3, exponent=2.0),
        MarketImpact(coef=0.7, exponent=1.25),
        Commission(per_share=0.005, bps=1.5),
        Commission(bps=10.0),
    ]


def z_holder(kind: str, z: np.ndarray) -> cp.Expression:
    holder = cp.Variable(len(z)) if kind == "variable" else cp.Parameter(len(z))
    holder.value = z
    return holder


@pytest.mark.parametrize("kind", ["variable", "parameter"])
@pytest.mark.parametrize("model", models_in_agreement(), ids=MODEL_IDS)
@pytest.mark.parametrize("seed", range(6))
def test_faces_agree(model, seed, kind):
    state = random_state(seed)
    z = random_z(seed)
    face = CvxpyCost([model.terms(state)], N)
    zz = z_holder(kind, z)
    expr = face.trading(zz)[0]
    assert expr.is_convex()
    optimizer_cost = float(expr.value) * state.equity
    q = z * state.equity / (state.prices * state.multipliers)
    broker_cost = model.evaluate(q, state)
    assert optimizer_cost == pytest.approx(broker_cost.sum(), rel=1e-9)
    # asset by asset, too (one non-zero trade at a time)
    for i in np.flatnonzero(z)[:3]:
        e = np.zeros(N)
        e[i] = z[i]
        zz.value = e
        assert float(expr.value) * state.equity == pytest.approx(broker_cost[i], rel=1e-9)
    # the shared epigraph variable gives the same value when it is tight (t = |z|)
    zz.value = z
    t = cp.Variable(N)
    t.value = np.abs(z)
    assert float(face.trading(zz, t)[0].value) == pytest.approx(float(expr.value), rel=1e-12)


@pytest.mark.parametrize("model", models_in_agreement(), ids=MODEL_IDS)
def test_expression_is_dpp_and_parameters_are_rewritten_in_place(model):
    """Compile once, then only write ``.value``: an old expression follows the new state."""
    s1, s2 = random_state(101), random_state(202)
    face = CvxpyCost([model.terms(s1)], N)
    z = cp.Variable(N)
    expr = face.trading(z)[0]
    assert expr.is_dpp()
    w_target = cp.Parameter(N)
    problem = cp.Problem(cp.Minimize(expr + cp.sum_squares(z - w_target)), [cp.sum(z) == 0])
    assert problem.is_dpp()
    params_before = {id(p) for p in expr.parameters()}
    face.update([model.terms(s2)])  # same universe size: the Parameters are reused
    assert {id(p) for p in expr.parameters()} == params_before
    zv = random_z(5)
    z.value = zv
    q = zv * s2.equity / (s2.prices * s2.multipliers)
    assert float(expr.value) * s2.equity == pytest.approx(model.evaluate(q, s2).sum(), rel=1e-9)


def test_impact_parameter_holds_coefficients():
    s = random_state(3)
    model = MarketImpact()
    face = CvxpyCost([model.terms(s)], N)
    np.testing.assert_array_equal(face.power[0][0].value, model.coefficients(s))


@pytest.mark.parametrize("seed", range(6))
def test_commission_minimum_makes_expression_a_lower_bound(seed):
    """With a minimum or a per-order fee the expression is only the linear part.

    The broker charges ``max(linear, minimum) + per_order`` per traded asset; the
    optimizer sees ``linear``. They differ by exactly ``max(0, minimum - linear) +
    per_order`` on every traded asset, and not at all on untraded ones.
    """
    state = random_state(seed)
    z = random_z(seed)
    z[:2] = [1e-6, -2e-6]  # tiny trades: linear part far below the minimum
    per_share, bps, minimum, per_order = 0.005, 1.0, 1.0, 0.35
    model = Commission(per_share=per_share, bps=bps, minimum=minimum, per_order=per_order)
    assert not model.exact_in_optimizer
    face = CvxpyCost([model.terms(state)], N)
    zz = cp.Variable(N)
    zz.value = z
    optimizer_cost = float(face.trading(zz)[0].value) * state.equity
    q = z * state.equity / (state.prices * state.multipliers)
    broker = model.evaluate(q, state)
    # independent linear part: per share + bps of notional
    linear = per_share * np.abs(q) + bps * 1e-4 * np.abs(q) * state.prices * state.multipliers
    assert optimizer_cost == pytest.approx(linear.sum(), rel=1e-9)
    traded = q != 0
    gap = np.where(traded, np.maximum(0.0, minimum - linear) + per_order, 0.0)
    assert broker.sum() >= optimizer_cost
    assert broker.sum() - optimizer_cost == pytest.approx(gap.sum(), rel=1e-9)
    assert (broker[:2] == minimum + per_order).all()
    assert (broker[~traded] == 0).all()


def test_commission_faces_agree_above_the_minimum_without_fee():
    """Where every linear charge clears the minimum and there is no fixed fee, they agree."""
    state = random_state(0)
    z = np.full(N, 0.02)
    model = Commission(per_share=0.01, minimum=1e-3)
    face = CvxpyCost([model.terms(state)], N)
    zz = cp.Variable(N)
    zz.value = z
    q = z * state.equity / (state.prices * state.multipliers)
    assert (0.01 * np.abs(q) > 1e-3).all()
    assert float(face.trading(zz)[0].value) * state.equity == pytest.approx(
        model.evaluate(q, state).sum(), rel=1e-9)
