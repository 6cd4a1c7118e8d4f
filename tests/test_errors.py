"""The error hierarchy: types, the fields errors carry and the messages they print."""

from __future__ import annotations

import pytest

from rebalopt.errors import Conflict, InfeasibleError, InputError, RebalanceError, SolverError


def test_hierarchy():
    assert issubclass(InputError, RebalanceError)
    assert issubclass(InputError, ValueError)  # generic callers catch it the usual way
    assert issubclass(InfeasibleError, RebalanceError)
    assert issubclass(SolverError, RebalanceError)
    assert not issubclass(InfeasibleError, ValueError)


@pytest.mark.parametrize(
    ("asset", "field", "prefix"),
    [
        ("AAPL", "price", "[asset 'AAPL', field 'price'] "),
        (None, "equity", "[field 'equity'] "),
        ("MSFT", None, "[asset 'MSFT'] "),
        (None, None, ""),
    ],
)
def test_input_error_names_asset_and_field(asset, field, prefix):
    err = InputError("is wrong", asset=asset, field=field)
    assert err.asset == asset
    assert err.field == field
    assert str(err) == prefix + "is wrong"
    with pytest.raises(ValueError, match="is wrong"):
        raise err


def test_infeasible_error_lists_conflicts():
    c1 = Conflict("Technology <= 0.25", 0.031, "weight")
    c2 = Conflict("cash >= 0", 1250.0, "currency")
    err = InfeasibleError("no feasible trade", [c1, c2])
    assert err.conflicts == [c1, c2]
    assert str(c1) == "Technology <= 0.25 (violated by 0.031 weight)"
    assert str(err) == ("no feasible trade: Technology <= 0.25 (violated by 0.031 weight); "
                        "cash >= 0 (violated by 1250 currency)")
    assert str(InfeasibleError("plain")) == "plain"
    assert InfeasibleError("plain").conflicts == []


def test_conflict_is_frozen():
    c = Conflict("x", 1.0)
    with pytest.raises(AttributeError):
        c.violation = 2.0  # type: ignore[misc]


def test_solver_error_lists_attempts():
    err = SolverError("all solvers failed", [("CLARABEL", "infeasible_inaccurate"), ("SCS", "error")])
    assert err.attempts == [("CLARABEL", "infeasible_inaccurate"), ("SCS", "error")]
    assert str(err) == "all solvers failed (CLARABEL: infeasible_inaccurate, SCS: error)"
    assert str(SolverError("x")) == "x"
