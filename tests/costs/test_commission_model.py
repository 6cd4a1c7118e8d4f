"""Commission: per share + bps of notional, a per-order minimum and a fixed fee, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rebalopt.costs import Commission
from rebalopt.errors import InputError
from rebalopt.state import PortfolioState


@pytest.fixture
def state() -> PortfolioState:
    # A 50/share, B 25/share, MES 4,000/point x 5 (micro future), C 10/share
    return PortfolioState({"A": 100}, 100_000.0, {"A": 50.0, "B": 25.0, "MES": 4_000.0, "C": 10.0},
                          multipliers={"MES": 5.0})


def test_commission_with_minimum_by_hand(state):
    model = Commission(per_share=0.005, bps=1.0, minimum=1.0, per_order=0.5)
    trades = np.array([1_000.0, -20.0, 2.0, 0.0])
    # A  +1,000 sh: 0.005*1,000 = 5.00 ; 1e-4*50,000 = 5.00 ; 10.00 >= 1.00 ; +0.50 -> 10.50
    # B     -20 sh: 0.005*20 = 0.10 ; 1e-4*500 = 0.05 ; 0.15 < 1.00 -> 1.00 ; +0.50 -> 1.50
    # MES    +2 ct: 0.005*2 = 0.01 ; 1e-4*(2*4,000*5 = 40,000) = 4.00 ; 4.01 ; +0.50 -> 4.51
    # C       0   : no order, no charge
    np.testing.assert_allclose(model.evaluate(trades, state), [10.50, 1.50, 4.51, 0.0], atol=1e-9)
    # the sign of the trade does not matter
    np.testing.assert_allclose(model.evaluate(-trades, state), [10.50, 1.50, 4.51, 0.0], atol=1e-9)
    assert not model.exact_in_optimizer


def test_linear_commission_by_hand(state):
    model = Commission(per_share=0.01, bps=2.0)
    # A: 0.01*300 + 2e-4*15,000 = 3.00 + 3.00 = 6.00 ; C: 0.01*7 + 2e-4*70 = 0.07 + 0.014 = 0.084
    np.testing.assert_allclose(model.evaluate(np.array([-300.0, 0, 0, 7.0]), state),
                               [6.0, 0.0, 0.0, 0.084], atol=1e-12)
    # rates: fraction of notional = per_share / (price * multiplier) + bps * 1e-4
    np.testing.assert_allclose(model.rates(state),
                               [0.01 / 50 + 2e-4, 0.01 / 25 + 2e-4, 0.01 / 20_000 + 2e-4,
                                0.01 / 10 + 2e-4], rtol=1e-14)
    assert model.exact_in_optimizer
    assert model.name == "Commission"
    assert Commission(label="IBKR").name == "IBKR"


def test_zero_commission_is_free(state):
    np.testing.assert_array_equal(Commission().evaluate(np.array([5.0, -3, 1, 2]), state), 0.0)


@pytest.mark.parametrize("name", ["per_share", "bps", "minimum", "per_order"])
@pytest.mark.parametrize("value", [-0.01, math.nan, math.inf])
def test_bad_parameters(name, value):
    with pytest.raises(InputError) as info:
        Commission(**{name: value})
    assert info.value.field == f"Commission.{name}"


def test_cost_face_refuses_terms_of_another_structure(state):
    """The cvxpy face is made for one structure; other terms need a new program."""
    from rebalopt.program import CvxpyCost

    face = CvxpyCost([Commission(bps=1.0).terms(state)], state.n)
    with pytest.raises(ValueError, match="structure"):
        face.update([Commission(bps=1.0).terms(state), Commission(bps=1.0).terms(state)])
