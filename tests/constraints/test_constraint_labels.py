"""Per-asset constraint inputs without tickers, and switches that were read as truthy (rev7).

Before: ``WeightBounds(upper=pd.Series([0.1] * 4))`` (pandas' default index 0..3, no
tickers) bounded nothing -- its keys "0".."3" are outside the universe and were
dropped -- so the plan bought 25% of each asset; ``LotSize(pd.Series([100.0] * 4))``
kept the state's 1-share lots; ``TurnoverLimit(0.1, soft="no")`` was *soft* (a
non-empty string is truthy) and ``penalty=5`` on a hard constraint was never used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt.constraints import (
    CashFloor,
    LongOnly,
    LotSize,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.errors import InputError
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.state import PortfolioState

TICKERS = ["A", "B", "C", "D"]


def _book() -> tuple[PortfolioState, pd.Series]:
    st = PortfolioState(dict.fromkeys(TICKERS, 0.0), 100_000.0,
                        {"A": 10.0, "B": 20.0, "C": 30.0, "D": 40.0})
    return st, pd.Series(0.25, index=TICKERS)


@pytest.mark.parametrize("make, field", [
    (lambda v: WeightBounds(upper=v), "WeightBounds.upper"),
    (lambda v: WeightBounds(lower=-v), "WeightBounds.lower"),
    (lambda v: ShortLimit(per_asset=v), "ShortLimit.per_asset"),
    (lambda v: LotSize(v * 1000), "LotSize.lots"),
])
def test_a_series_without_tickers_is_an_input_error(make, field) -> None:
    with pytest.raises(InputError, match="default index") as e:
        make(pd.Series([0.1, 0.1, 0.1, 0.1]))
    assert e.value.field == field
    make(pd.Series([0.1] * 4, index=TICKERS))  # labelled: accepted


def test_labelled_bounds_bind_where_the_unlabelled_ones_did_nothing() -> None:
    # oracle: the cap is w <= 0.1 per asset, so with targets of 0.25 each asset lands
    # on its cap (identity risk, no cost): 0.1 of equity, exactly what the labels say
    st, t = _book()
    cons = [LongOnly(), CashFloor(), WeightBounds(upper=pd.Series(0.1, index=TICKERS))]
    plan = OptimalRebalancer(constraints=cons).plan(st, t)
    w = plan.trades * st.prices / st.equity
    np.testing.assert_allclose(w, 0.1, atol=1e-6)


def test_labelled_lot_series_reaches_the_integer_stage() -> None:
    st, t = _book()
    lots = pd.Series(100.0, index=TICKERS)
    plan = IntegerRebalancer(lots=lots).plan(st, t)
    assert np.all(np.mod(plan.trades, 100.0) == 0) and np.abs(plan.trades).sum() > 0
    with pytest.raises(InputError, match="default index"):
        IntegerRebalancer(lots=pd.Series([100.0] * 4))
    with pytest.raises(InputError, match="mapping keyed by ticker"):
        IntegerRebalancer(lots=np.full(4, 100.0))


@pytest.mark.parametrize("soft", ["no", "False", 0, 1, None])
def test_soft_must_be_a_bool(soft) -> None:
    with pytest.raises(InputError) as e:
        TurnoverLimit(0.1, soft=soft)
    assert e.value.field == "TurnoverLimit.soft"


def test_soft_no_string_was_a_soft_limit() -> None:
    # oracle: the hard cap holds (one-way turnover, half the traded notional over
    # equity, <= 0.1); soft=True prices it and,
    # at the default penalty, lets it go (the behaviour soft="no" used to get)
    st, t = _book()
    hard = OptimalRebalancer(constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.1)])
    soft = OptimalRebalancer(constraints=[LongOnly(), CashFloor(),
                                          TurnoverLimit(0.1, soft=True)])
    turnover = lambda p: float(np.abs(p.trades * st.prices).sum() / st.equity) / 2  # noqa: E731
    assert turnover(hard.plan(st, t)) <= 0.1 + 1e-6
    assert turnover(soft.plan(st, t)) > 0.1 + 1e-3


def test_penalty_on_a_hard_constraint_is_an_error() -> None:
    with pytest.raises(InputError, match="soft=True") as e:
        TurnoverLimit(0.1, penalty=5.0)
    assert e.value.field == "TurnoverLimit.penalty"
    assert TurnoverLimit(0.1, soft=True, penalty=5.0).penalty == 5.0
    assert WeightBounds(upper=0.2, penalty=1.0).penalty == 1.0  # the default: fine
