"""The wash-sale rule on textbook cases, to the cent."""

import pandas as pd
import pytest

from rebalopt.errors import InputError
from rebalopt.taxes import LotLedger, WashSaleRule

D = pd.Timestamp


def _loss_sale():
    # buy 100 shares for 1,000.00 on 2024-01-02; sell them for 750.00 on 2024-06-03
    led = LotLedger(method="fifo", wash_sale=WashSaleRule(30))
    led.buy("XYZ", 100, 10.00, "2024-01-02")
    rec = led.sell("XYZ", 100, 7.50, "2024-06-03")[0]
    assert round(rec.gain, 2) == -250.00
    return led


@pytest.mark.parametrize("day", ["2024-06-20", "2024-07-03"])  # 17 and 30 days after
def test_repurchase_within_30_days_disallows_the_loss(day):
    led = _loss_sale()
    new = led.buy("XYZ", 100, 8.00, day)
    # the 250.00 loss is disallowed and added to the new lot: 800.00 + 250.00 = 1,050.00
    assert len(new) == 1 and round(new[0].cost, 2) == 1050.00
    assert round(new[0].basis, 2) == 10.50
    # holding period carried: the sold shares were held 153 days (Jan 2 -> Jun 3)
    assert new[0].acquired == D(day) - pd.Timedelta(days=153)
    rec = led.records[0]
    assert (round(rec.disallowed, 2), round(rec.recognized, 2)) == (250.00, 0.00)
    assert round(led.washes_frame()["disallowed"].sum(), 2) == 250.00
    # selling the replacement at 9.00 later recognizes 100 x (9.00 - 10.50) = -150.00:
    # over both sales the recognized loss equals the economic loss 1,800 - 1,650
    later = led.sell("XYZ", 100, 9.00, D(day) + pd.Timedelta(days=40))[0]
    assert round(later.recognized, 2) == -150.00


def test_repurchase_31_days_later_is_allowed():
    led = _loss_sale()
    new = led.buy("XYZ", 100, 8.00, "2024-07-04")
    assert round(new[0].basis, 2) == 8.00 and new[0].acquired == D("2024-07-04")
    assert round(led.records[0].recognized, 2) == -250.00
    assert led.washes == []


def test_partial_repurchase_disallows_part():
    led = _loss_sale()
    new = led.buy("XYZ", 60, 8.00, "2024-06-10")
    # loss on 60 of the 100 shares disallowed: 60 x 2.50 = 150.00; 100.00 recognized
    assert round(led.records[0].disallowed, 2) == 150.00
    assert round(led.records[0].recognized, 2) == -100.00
    assert round(new[0].basis, 2) == 10.50
    # the other 40 loss shares stay open: a second purchase inside the window takes them
    more = led.buy("XYZ", 100, 8.20, "2024-06-25")
    assert [(p.shares, round(p.basis, 2)) for p in more] == [(40.0, 10.70), (60.0, 8.20)]
    assert round(led.records[0].recognized, 2) == 0.00
    assert round(sum(lot.cost for lot in led.lots["XYZ"]), 2) == round(
        60 * 10.50 + 40 * 10.70 + 60 * 8.20, 2)


def test_purchase_before_the_loss_sale():
    # buy 100 @ 10.00 on Jan 2, buy 100 @ 8.00 on May 20, sell the first lot (FIFO)
    # @ 7.50 on Jun 3: the May 20 lot, bought 14 days before, replaces it
    led = LotLedger(method="fifo", wash_sale=WashSaleRule(30))
    led.buy("XYZ", 100, 10.00, "2024-01-02")
    led.buy("XYZ", 100, 8.00, "2024-05-20")
    rec = led.sell("XYZ", 100, 7.50, "2024-06-03")[0]
    assert (round(rec.gain, 2), round(rec.disallowed, 2)) == (-250.00, 250.00)
    (lot,) = led.lots["XYZ"]
    assert round(lot.basis, 2) == 10.50 and lot.replacement
    assert lot.acquired == D("2024-05-20") - pd.Timedelta(days=153)
    # a purchase 20 days before a sale of *all* shares is not a replacement (sold itself)
    led2 = LotLedger(method="fifo")
    led2.buy("XYZ", 100, 10.00, "2024-01-02")
    led2.buy("XYZ", 100, 8.00, "2024-05-20")
    recs = led2.sell("XYZ", 200, 7.50, "2024-06-03")
    assert round(sum(r.recognized for r in recs), 2) == -300.00   # -250.00 - 50.00
    assert "XYZ" not in led2.lots


def test_no_rule_and_gains_are_not_washed():
    led = LotLedger(wash_sale=None)
    led.buy("XYZ", 100, 10.00, "2024-01-02")
    led.sell("XYZ", 100, 7.50, "2024-06-03")
    led.buy("XYZ", 100, 8.00, "2024-06-04")
    assert round(led.records[0].recognized, 2) == -250.00
    led = LotLedger()
    led.buy("XYZ", 100, 10.00, "2024-01-02")
    led.sell("XYZ", 100, 12.00, "2024-06-03")   # a gain: the rule does not apply
    led.buy("XYZ", 100, 12.00, "2024-06-04")
    assert round(led.records[0].recognized, 2) == 200.00 and led.washes == []


def test_restrictions():
    led = _loss_sale()
    r = led.restrictions("2024-06-20")
    assert r["no_buy"] == {"XYZ"}
    assert led.restrictions("2024-07-04")["no_buy"] == set()
    led.buy("ABC", 10, 5.0, "2024-06-10")
    assert led.restrictions("2024-06-20")["no_harvest"] == {"ABC"}
    assert led.restrictions("2024-07-11")["no_harvest"] == set()
    with pytest.raises(InputError):
        WashSaleRule(-1)


@pytest.mark.parametrize(("a", "b"), [
    ("2024-06-03", "2024-07-03"), ("2024-06-03", "2024-07-04"), ("2024-07-04", "2024-06-03"),
    ("2024-06-03 18:00", "2024-07-03 06:00"), ("2024-07-03 06:00", "2024-06-03 18:00"),
    ("2024-02-28", "2024-03-29"),
])
def test_within_on_timestamps_matches_the_timedelta_days(a, b):
    # the fast path on two Timestamps (integer days, floored) answers as Timedelta.days
    rule = WashSaleRule(30)
    want = abs((D(b) - D(a)).days) <= 30
    assert rule.within(D(a), D(b)) is want
    assert rule.within(a, b) == want
