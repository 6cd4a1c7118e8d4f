"""Lot dates: time zones, times of day and lots from the future (rev7).

Before: ``Lot(..., acquired=pd.Timestamp("2023-01-03 23:00", tz="US/Eastern"))`` was
kept tz-aware, and selling it on a naive date raised pandas' ``TypeError: Cannot
compare tz-naive and tz-aware timestamps`` (untyped); a lot bought 2025-01-03 in a
book valued on 2024-06-03 was accepted and sold at the short-term rate, as if a
holding period could start after the sale. Oracle: the lots CSV reader's rule
(``as_date``: the wall-clock date, time zone dropped) and the one-year rule.
"""

from __future__ import annotations

import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.taxes import Lot, TaxLots, is_long_term, realize, select_lots
from rebalopt.taxes.lots import as_date

AS_OF = pd.Timestamp("2024-06-03")


@pytest.mark.parametrize("when", [
    pd.Timestamp("2023-01-03 23:00", tz="US/Eastern"),
    pd.Timestamp("2023-01-03 09:30"),
    "2023-01-03",
    pd.Timestamp("2023-01-03").date(),
])
def test_lot_dates_are_dates_as_the_csv_reader_reads_them(when) -> None:
    lot = Lot("a", 10.0, 5.0, when)
    assert lot.acquired == as_date(when) == pd.Timestamp("2023-01-03")
    assert lot.purchased == lot.acquired
    (rec,) = realize([lot], select_lots([lot], 5.0), 7.0, AS_OF, asset="A")
    assert rec.long_term == is_long_term(pd.Timestamp("2023-01-03"), AS_OF) is True
    assert rec.gain == pytest.approx(5.0 * (7.0 - 5.0))


def test_a_time_of_day_does_not_cross_the_one_year_line() -> None:
    # bought 2023-06-02 at 23:00 New York time, sold 2024-06-03: more than one year
    # by dates (the rule), whatever the hour or the zone
    lot = Lot("a", 1.0, 1.0, pd.Timestamp("2023-06-02 23:00", tz="US/Eastern"))
    assert realize([lot], [(0, 1.0)], 2.0, AS_OF)[0].long_term


def test_not_a_date_is_an_input_error() -> None:
    with pytest.raises(InputError) as e:
        Lot("a", 1.0, 1.0, "soon")
    assert e.value.field == "acquired"
    with pytest.raises(InputError) as e:
        Lot("a", 1.0, 1.0, "2023-01-03", purchased="never")
    assert e.value.field == "purchased"


def test_a_lot_bought_after_as_of_is_an_error() -> None:
    late = Lot("b", 10.0, 5.0, pd.Timestamp("2025-01-03"))
    with pytest.raises(InputError) as e:
        TaxLots({"A": [late]}, as_of=AS_OF)
    assert (e.value.asset, e.value.field) == ("A", "acquired")
    TaxLots({"A": [late]})  # no valuation date: nothing to compare
    with pytest.raises(InputError) as e:
        realize([late], [(0, 5.0)], 7.0, AS_OF, asset="A")
    assert (e.value.asset, e.value.field) == ("A", "acquired")
