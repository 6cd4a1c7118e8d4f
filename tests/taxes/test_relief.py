"""Lot relief and gains, hand-computed to the cent."""

import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.taxes import Lot, LotLedger, TaxRates, is_long_term, realize, relieve, select_lots

D = pd.Timestamp

THREE = (
    Lot("L1", 100, 50.25, D("2020-01-15")),
    Lot("L2", 100, 80.10, D("2021-06-01")),
    Lot("L3", 100, 65.33, D("2022-03-10")),
)
RATES = TaxRates(short_term=0.37, long_term=0.20)


def _sell(method):
    picks = select_lots(THREE, 150, method, asset="XYZ")
    return picks, realize(THREE, picks, 70.07, D("2022-09-01"), asset="XYZ")


def test_fifo_three_lots_by_hand():
    # FIFO: 100 of L1 (bought 2020-01-15, long): 100 x (70.07 - 50.25) = 1,982.00
    #        50 of L2 (bought 2021-06-01, long):  50 x (70.07 - 80.10) = -501.50
    picks, recs = _sell("fifo")
    assert picks == [(0, 100.0), (1, 50.0)]
    assert [round(r.gain, 2) for r in recs] == [1982.00, -501.50]
    assert [r.term for r in recs] == ["long", "long"]
    long_gain = sum(r.gain for r in recs if r.long_term)
    assert round(long_gain, 2) == 1480.50
    assert round(RATES.tax(0.0, long_gain), 2) == 296.10          # 20% of 1,480.50
    left = relieve(THREE, picks)
    assert [(lot.lot_id, lot.shares) for lot in left] == [("L2", 50.0), ("L3", 100.0)]


def test_hifo_three_lots_by_hand():
    # HIFO: 100 of L2 (basis 80.10, long): 100 x (70.07 - 80.10) = -1,003.00
    #        50 of L3 (basis 65.33, bought 2022-03-10, short): 50 x 4.74 = 237.00
    picks, recs = _sell("hifo")
    assert picks == [(1, 100.0), (2, 50.0)]
    assert [round(r.gain, 2) for r in recs] == [-1003.00, 237.00]
    assert [r.term for r in recs] == ["long", "short"]
    # tax: 0.37 x 237.00 + 0.20 x (-1,003.00) = 87.69 - 200.60 = -112.91
    assert round(RATES.tax(237.00, -1003.00), 2) == -112.91
    left = relieve(THREE, picks)
    assert [(lot.lot_id, lot.shares) for lot in left] == [("L1", 100.0), ("L3", 50.0)]


def test_specific_lots_and_lifo():
    picks = select_lots(THREE, 150, {"L3": 100, "L1": 50})
    recs = realize(THREE, picks, 70.07, D("2022-09-01"))
    # L1: 50 x 19.82 = 991.00 long; L3: 100 x 4.74 = 474.00 short
    assert [(r.lot_id, round(r.gain, 2), r.term) for r in recs] == [
        ("L1", 991.00, "long"), ("L3", 474.00, "short")]
    assert select_lots(THREE, 150, "lifo") == [(2, 100.0), (1, 50.0)]
    with pytest.raises(InputError, match="add up|sale is"):
        select_lots(THREE, 150, {"L3": 100})
    with pytest.raises(InputError, match="no lot"):
        select_lots(THREE, 10, {"L9": 10})
    with pytest.raises(InputError, match="cannot sell 301"):
        select_lots(THREE, 301, "fifo", asset="XYZ")


def test_one_year_line():
    # bought 2023-03-15; sold on the anniversary: held exactly one year -> short-term;
    # the day after -> long-term (the IRS counts "more than one year")
    lot = (Lot("a", 10, 100.00, D("2023-03-15")),)
    on = realize(lot, [(0, 10)], 112.50, D("2024-03-15"))[0]
    after = realize(lot, [(0, 10)], 112.50, D("2024-03-16"))[0]
    assert (on.term, round(on.gain, 2)) == ("short", 125.00)
    assert (after.term, round(after.gain, 2)) == ("long", 125.00)
    assert round(RATES.tax(on.gain, 0), 2) == 46.25     # 37% of 125.00
    assert round(RATES.tax(0, after.gain), 2) == 25.00  # 20% of 125.00
    assert not is_long_term(D("2023-03-15"), D("2024-03-15"))
    assert is_long_term(D("2023-03-15"), D("2024-03-16"))


def test_ledger_fifo_vs_hifo_and_multiplier():
    for method, expected in (("fifo", {"long": 1480.50}), ("hifo", {"long": -1003.00,
                                                                   "short": 237.00})):
        led = LotLedger({"XYZ": THREE}, method=method, wash_sale=None)
        led.sell("XYZ", 150, 70.07, "2022-09-01")
        g = led.gains_by_year().loc[2022]
        assert round(g["long"], 2) == expected.get("long", 0.0)
        assert round(g["short"], 2) == expected.get("short", 0.0)
        assert led.shares("XYZ") == 150
    led = LotLedger(wash_sale=None)
    led.buy("ES", 2, 4000.25, "2024-01-02", multiplier=50)
    rec = led.sell("ES", 1, 4010.50, "2024-02-01", multiplier=50)[0]
    assert round(rec.gain, 2) == 512.50   # 1 x 10.25 points x 50


def test_rates_validation_and_loss_rate():
    with pytest.raises(InputError, match="short_term"):
        TaxRates(short_term=1.5)
    r = TaxRates(short_term=0.40, long_term=0.20, loss=0.30)
    assert round(r.tax(-100.0, 100.0), 2) == -10.00   # -30 + 20


@pytest.mark.parametrize("name", ["short_term", "long_term", "loss"])
def test_a_rate_is_not_a_bool(name):
    # True is an int: it was accepted as a 100% rate (False as 0%)
    for flag in (True, False):
        with pytest.raises(InputError, match="must be a number in") as e:
            TaxRates(**{name: flag})
        assert e.value.field == name
    # 1 and 0 as numbers stay rates: a $100 short-term gain at 1 is $100 of tax
    assert TaxRates(short_term=1, long_term=0).tax(100.0, 100.0) == 100.0


def test_ledger_trades_need_a_finite_price_and_multiplier():
    led = LotLedger(wash_sale=None)
    led.buy("AAA", 10, 50.0, "2024-01-02")
    # a NaN sale price recorded a NaN gain (and NaN tax for the year)
    with pytest.raises(InputError, match="sell at price nan") as e:
        led.sell("AAA", 5, float("nan"), "2024-02-01")
    assert (e.value.asset, e.value.field) == ("AAA", "price")
    for m in (0.0, -1.0, float("nan"), True):
        with pytest.raises(InputError, match="multiplier") as e:
            led.sell("AAA", 5, 60.0, "2024-02-01", multiplier=m)
        assert e.value.field == "multiplier"
        with pytest.raises(InputError, match="multiplier"):
            led.buy("AAA", 5, 60.0, "2024-02-01", multiplier=m)
    assert led.shares("AAA") == 10 and not led.records     # nothing booked
    # net proceeds below 0 (fees above the price) are a sale: 5 x (-1 - 50) = -255
    rec = led.sell("AAA", 5, -1.0, "2024-02-01")
    assert rec[0].gain == -255.0


def test_specific_lots_name_each_lot_once():
    lots = (Lot("1", 6, 10.0, pd.Timestamp("2024-01-01")),
            Lot("2", 14, 20.0, pd.Timestamp("2024-01-02")))
    # ids are compared as text: {1: 5, "1": 5} sold 10 shares of the 6-share lot '1'
    with pytest.raises(InputError, match="lot '1' is named twice") as e:
        select_lots(lots, 10, {1: 5, "1": 5}, asset="AAA")
    assert (e.value.asset, e.value.field) == ("AAA", "lot_id")
    # an int id is still the lot it names: 5 of '1' and 5 of '2' leave 1 and 9 shares
    picks = select_lots(lots, 10, {1: 5, "2": 5}, asset="AAA")
    assert picks == [(0, 5.0), (1, 5.0)]
    assert [lot.shares for lot in relieve(lots, picks)] == [1.0, 9.0]
