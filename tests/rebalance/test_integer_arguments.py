"""IntegerRebalancer's argument checks: no knob accepted and then ignored (rev7).

Before: ``IntegerRebalancer(OptimalRebalancer(max_trades=2))`` planned 4 trades (the
relaxation's integer-stage fields were dropped), ``OptimalRebalancer(integer="exact")``
as the relaxation ran in round mode, ``max_trades=2.7`` planned with at most 2 trades,
and ``max_moves=-1``, ``mip_nodes=-5``, ``prove_infeasible="no"`` were accepted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.state import PortfolioState


def _book() -> tuple[PortfolioState, pd.Series]:
    st = PortfolioState(holdings=pd.Series({"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0}),
                        cash=10_000.0,
                        prices=pd.Series({"A": 10.0, "B": 20.0, "C": 30.0, "D": 40.0}))
    return st, pd.Series({"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25})


@pytest.mark.parametrize("name, value", [("max_trades", 2), ("min_trade_value", 3000.0),
                                         ("lots", 50.0)])
def test_relaxation_stage_knob_is_honoured(name: str, value: float) -> None:
    # oracle: the same knob given on the stage itself (the documented way)
    st, t = _book()
    via_relax = IntegerRebalancer(OptimalRebalancer(**{name: value})).plan(st, t)
    direct = IntegerRebalancer(OptimalRebalancer(), **{name: value}).plan(st, t)
    np.testing.assert_array_equal(via_relax.trades, direct.trades)
    if name == "max_trades":
        assert via_relax.n_trades <= 2
    if name == "lots":
        assert np.all(np.mod(via_relax.trades, 50.0) == 0)


def test_relaxation_and_stage_disagree_is_an_error() -> None:
    with pytest.raises(InputError) as e:
        IntegerRebalancer(OptimalRebalancer(max_trades=3), max_trades=2)
    assert e.value.field == "IntegerRebalancer.max_trades"
    # the same value twice is not a conflict (OptimalRebalancer(integer=...) builds this)
    IntegerRebalancer(OptimalRebalancer(max_trades=2), max_trades=2)


def test_relaxation_integer_mode_must_match() -> None:
    with pytest.raises(InputError) as e:
        IntegerRebalancer(OptimalRebalancer(integer="exact"))
    assert e.value.field == "IntegerRebalancer.mode"
    assert IntegerRebalancer(OptimalRebalancer(integer="exact"), mode="exact").mode == "exact"
    assert IntegerRebalancer(OptimalRebalancer(integer="off")).mode == "round"


@pytest.mark.parametrize("kw, field", [
    ({"max_trades": 2.7}, "max_trades"), ({"max_trades": True}, "max_trades"),
    ({"max_moves": -1}, "max_moves"), ({"mip_nodes": -5}, "mip_nodes"),
    ({"mip_nodes": 1.5}, "mip_nodes"), ({"chain_width": 0}, "chain_width"),
    ({"prove_infeasible": "no"}, "prove_infeasible"), ({"time_limit": True}, "time_limit"),
])
def test_bad_knob_is_an_input_error(kw: dict, field: str) -> None:
    with pytest.raises(InputError) as e:
        IntegerRebalancer(**kw)
    assert e.value.field == f"IntegerRebalancer.{field}"


def test_optimal_plan_uses_integer_knobs_through_its_stage() -> None:
    # OptimalRebalancer(integer="round", max_trades=2) builds the stage from its own
    # fields; the stage adopts nothing twice and the plan honours the cap
    st, t = _book()
    plan = OptimalRebalancer(integer="round", max_trades=2).plan(st, t)
    assert plan.n_trades <= 2


@pytest.mark.parametrize("name, value", [("max_trades", 2), ("lots", 100.0),
                                         ("min_trade_value", 3000.0)])
def test_optimal_off_rejects_integer_stage_knobs(name: str, value: float) -> None:
    st, t = _book()
    with pytest.raises(InputError) as e:
        OptimalRebalancer(**{name: value}).plan(st, t)
    assert e.value.field == f"OptimalRebalancer.{name}"


@pytest.mark.parametrize("name, term", [
    ("cvxpy_constraints", lambda v: [v.w[0] <= 0.3]),
    ("cvxpy_objective", lambda v: 10 * v.w[0]),
])
def test_cvxpy_escape_hatch_is_refused_by_the_whole_share_stage(name, term) -> None:
    """Before: with cvxpy_constraints=[w_A <= 0.3] the fractional plan held A at 0.300
    of equity but IntegerRebalancer (and integer="round") planned 71 shares of A, 0.497
    of equity: the stage never saw the callable. Oracle: the fractional plan honours it."""
    st = PortfolioState({"A": 0.0, "B": 0.0}, 1000.0, {"A": 7.0, "B": 13.0})
    t = pd.Series({"A": 0.5, "B": 0.5})
    relax = OptimalRebalancer(**{name: [term]})
    frac = relax.plan(st, t)
    if name == "cvxpy_constraints":
        assert frac.trades[0] * 7.0 / 1000.0 <= 0.3 + 1e-7
    with pytest.raises(InputError) as e:
        IntegerRebalancer(relax)
    assert e.value.field == f"OptimalRebalancer.{name}"
    with pytest.raises(InputError):
        OptimalRebalancer(integer="round", **{name: [term]}).plan(st, t)
