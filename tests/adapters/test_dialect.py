"""Desk dialects: numbers as desks format them read back exactly; headers and aliases.

Oracle: Python's own formatting (``f"{x:,.2f}"``, ``f"{x:.2%}"``) writes the cell,
and the parsed value must equal the number formatted (to the digits written).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalopt.adapters._dialect import ALIASES, canonical_column, normalize_header, parse_number

money = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False,
                    allow_infinity=False)


@given(money)
def test_thousands_separators_and_currency_round_trip(x) -> None:
    v = float(x)
    assert parse_number(f"{v:,.2f}") == (pytest.approx(v, abs=1e-9), False)
    sign = "-" if v < 0 else ""
    assert parse_number(f"{sign}${abs(v):,.2f}")[0] == pytest.approx(v, abs=1e-9)
    accounting = f"({abs(v):,.2f})" if v < 0 else f"{v:,.2f}"
    assert parse_number(accounting)[0] == pytest.approx(v, abs=1e-9)


@given(st.floats(min_value=-5.0, max_value=5.0, allow_nan=False))
def test_percent_signs_divide_by_100(w) -> None:
    text = f"{w:.4%}"
    value, pct = parse_number(text, percent_ok=True)
    assert pct and value == pytest.approx(round(w, 6), abs=1e-12)
    with pytest.raises(ValueError, match="percent sign is not allowed"):
        parse_number(text)


@pytest.mark.parametrize("text", ["1,47", "1,4700", "12,34,567", "1.470,50", ",5", "1,,470",
                                  "abc", "", "$", "()"])
def test_what_is_not_certainly_a_number_is_rejected(text) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize("text", ["(-5)", "(+5)", "(-$1,470)", "($-5)", "(-5%)", "( -5 )"])
def test_a_sign_inside_accounting_parentheses_is_rejected(text) -> None:
    """``(-5)`` was read as +5: the parentheses negated the minus, a silent sign flip
    (a short read as a long); either reading is a guess, so it is an error."""
    with pytest.raises(ValueError, match="sign inside accounting parentheses"):
        parse_number(text, percent_ok=True)


def test_nan_and_inf_are_left_to_the_caller() -> None:
    """float() reads them; the table reader rejects them as not finite."""
    assert math.isnan(parse_number("nan")[0]) and math.isinf(parse_number("inf")[0])


@pytest.mark.parametrize(("header", "canon", "pct"), [
    ("Symbol", "ticker", False), (" TICKER ", "ticker", False), ("Quantity", "shares", False),
    ("Qty", "shares", False), ("Close", "price", False), ("Last Price", "price", False),
    ("PX_LAST", "price", False), ("Weight", "weight", False), ("Weight (%)", "weight", True),
    ("weight_pct", "weight", True), ("% Weight", "weight", True), ("As Of", "date", False),
    ("GICS Sector", "sector", False), ("Adj Close", None, False), ("Vol", None, False),
    ("Market Value", None, False),
])
def test_headers(header, canon, pct) -> None:
    assert canonical_column(header) == (canon, pct)


def test_no_spelling_means_two_columns() -> None:
    spellings = [a for names in ALIASES.values() for a in names]
    assert len(spellings) == len(set(spellings))
    assert all(normalize_header(a) == a for a in spellings)
