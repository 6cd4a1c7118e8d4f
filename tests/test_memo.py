"""universe_memo: a value kept across states of one universe, read again after any edit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt._memo import universe_memo
from rebalopt.state import PortfolioState


class Owner:
    pass


def state(cash: float = 1e4, assets=("A", "B", "C")) -> PortfolioState:
    n = len(assets)
    return PortfolioState.from_arrays(list(assets), np.ones(n), cash, np.full(n, 10.0))


def counted(owner, st, inputs):
    calls = []

    def compute():
        calls.append(1)
        return sum(np.asarray(pd.Series(x) if isinstance(x, dict) else x, dtype=float).sum()
                   for x in inputs if x is not None)

    value = universe_memo(owner, st, "v", inputs, compute, groups=False)
    return value, len(calls)


@pytest.mark.parametrize("make", [
    lambda: pd.Series([1.0, 2.0, 3.0], index=["A", "B", "C"]),
    lambda: np.array([1.0, 2.0, 3.0]),
    lambda: {"A": 1.0, "B": 2.0, "C": 3.0},
])
def test_kept_across_states_until_edited_in_place(make) -> None:
    owner, x = Owner(), make()
    assert counted(owner, state(1e4), (x, 0.5)) == (6.5, 1)
    assert counted(owner, state(2e4), (x, 0.5)) == (6.5, 0)  # same universe: kept
    if isinstance(x, pd.Series):
        x.iloc[1] = 5.0
    else:
        x["B" if isinstance(x, dict) else 1] = 5.0
    assert counted(owner, state(3e4), (x, 0.5)) == (9.5, 1)  # edited: computed again
    assert counted(owner, state(4e4), (x, 0.5)) == (9.5, 0)


def test_a_new_object_a_new_universe_or_a_replaced_index_recompute() -> None:
    owner = Owner()
    s = pd.Series([1.0, 2.0, 3.0], index=["A", "B", "C"])
    assert counted(owner, state(), (s,))[1] == 1
    assert counted(owner, state(), (s.copy(),))[1] == 1  # another object
    assert counted(owner, state(assets=("A", "B", "D")), (s,))[1] == 1  # another universe
    assert counted(owner, state(), (s,))[1] == 1
    s.index = ["A", "B", "X"]  # labels replaced, values equal
    assert counted(owner, state(), (s,))[1] == 1


def test_an_untrusted_input_is_kept_for_one_state_only() -> None:
    owner, lst, st = Owner(), [1.0, 2.0], state()
    assert counted(owner, st, (lst,))[1] == 1
    assert counted(owner, st, (lst,))[1] == 0  # the same state: PortfolioState.memo
    assert counted(owner, state(2e4), (lst,))[1] == 1


def test_nan_values_are_never_trusted_as_unchanged() -> None:
    owner = Owner()
    s = pd.Series([1.0, np.nan, 3.0], index=["A", "B", "C"])
    assert counted(owner, state(), (s,))[1] == 1
    assert counted(owner, state(2e4), (s,))[1] == 1  # NaN != NaN: computed again
