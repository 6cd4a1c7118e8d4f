"""The simulated broker keeps tax lots: hand-computed wash sale and FIFO/HIFO through fills."""

import pandas as pd
import pytest
from bt_helpers import Scripted

from rebalopt.backtest import DataFeed, Engine, SimulatedBroker
from rebalopt.backtest.lots import TaxLotTracker, tax_alpha
from rebalopt.costs import Commission
from rebalopt.errors import InputError
from rebalopt.taxes import TaxRates, WashSaleRule

DATES = pd.DatetimeIndex(["2024-01-02", "2024-06-03", "2024-06-20", "2024-12-31"])


WASH = WashSaleRule(30)


def _run(script, close, *, wash=WASH, method="fifo", costs=()):
    feed = DataFeed.from_wide(pd.DataFrame(close, index=DATES))
    tracker = TaxLotTracker(method=method, wash_sale=wash,
                            rates=TaxRates(short_term=0.40, long_term=0.20))
    broker = SimulatedBroker(100_000.0, costs=costs, taxes=tracker)
    res = Engine(feed, Scripted(script), broker, "same_bar", progress=False,
                 periods_per_year=4).run()
    return res, tracker


def test_broker_wash_sale_with_commission_by_hand():
    # buy 100 @ 10.00 + 0.01/share commission -> basis 10.01; sell 100 @ 7.50 - 0.01
    # -> proceeds 7.49/share: loss 100 x (7.49 - 10.01) = -252.00; repurchase 17 days
    # later @ 8.00 + 0.01: the loss is disallowed, new basis 8.01 + 2.52 = 10.53
    res, tr = _run({0: [("XYZ", 100)], 1: [("XYZ", -100)], 2: [("XYZ", 100)]},
                   {"XYZ": [10.0, 7.5, 8.0, 9.0]}, costs=[Commission(per_share=0.01)])
    rec = res.taxes.realized.iloc[0]
    assert (round(rec["gain"], 2), round(rec["disallowed"], 2), round(rec["recognized"], 2)) == (
        -252.00, 252.00, 0.00)
    (lot,) = tr.ledger.lots["XYZ"]
    assert round(lot.basis, 2) == 10.53
    assert round(res.taxes.total_tax, 2) == 0.00
    assert len(res.taxes.washes) == 1
    # liquidation at 9.00 (short-term: holding period Jan 2 -> Dec 31 carried):
    # 100 x (9.00 - 10.53) = -153.00, valued at 40% -> -61.20
    assert round(res.taxes.liquidation_tax, 2) == -61.20
    # cash untouched by taxes: equity equals the after-tax equity when no tax accrued
    assert res.taxes.after_tax_equity.iloc[-1] == pytest.approx(res.equity[-1])


def test_broker_loss_without_rule_is_taxed_by_year():
    res, _ = _run({0: [("XYZ", 100)], 1: [("XYZ", -100)], 2: [("XYZ", 100)]},
                  {"XYZ": [10.0, 7.5, 8.0, 9.0]}, wash=None)
    # loss 100 x (7.50 - 10.00) = -250.00 short-term, valued at 40%: -100.00
    assert round(res.taxes.tax_by_year.loc[2024], 2) == -100.00
    assert list(res.taxes.tax_paid.round(2)) == [0.00, -100.00, -100.00, -100.00]
    assert res.taxes.after_tax_equity.iloc[-1] == pytest.approx(res.equity[-1] + 100.0)


@pytest.mark.parametrize("method,gain", [("fifo", 100 * (12.0 - 10.0)),
                                         ("hifo", 100 * (12.0 - 11.0))])
def test_broker_relief_method(method, gain):
    res, tr = _run({0: [("XYZ", 100)], 1: [("XYZ", 100)], 3: [("XYZ", -100)]},
                   {"XYZ": [10.0, 11.0, 11.5, 12.0]}, method=method)
    assert round(res.taxes.realized["gain"].sum(), 2) == round(gain, 2)
    assert tr.ledger.shares("XYZ") == 100


def test_specific_lots_and_tax_alpha():
    script = {0: [("XYZ", 100)], 1: [("XYZ", 100)], 3: [("XYZ", -100)]}
    close = {"XYZ": [10.0, 11.0, 11.5, 12.0]}

    class Chooser(Scripted):
        def on_data(self, timestamp, data, context, broker):
            if data.t == 3:
                first = broker.taxes.ledger.lots["XYZ"][1].lot_id   # the 11.00 lot
                broker.taxes.instruct("XYZ", {first: 100})
            super().on_data(timestamp, data, context, broker)

    feed = DataFeed.from_wide(pd.DataFrame(close, index=DATES))
    rates = TaxRates(short_term=0.40, long_term=0.20)
    aware = Engine(feed, Chooser(script), SimulatedBroker(1e5, taxes=TaxLotTracker(rates=rates)),
                   "same_bar", progress=False, periods_per_year=4).run()
    unaware, _ = _run(script, close)
    assert round(aware.taxes.realized["gain"].sum(), 2) == 100.00     # 100 x (12 - 11)
    assert round(unaware.taxes.realized["gain"].sum(), 2) == 200.00   # FIFO: 100 x (12 - 10)
    # same equity, 40.00 less tax (40% of 100.00): after-tax alpha from that alone
    assert aware.equity[-1] == pytest.approx(unaware.equity[-1])
    years = 4 / 4
    expect = ((aware.equity[-1] - 40.0) / 1e5) ** (1 / years) - ((unaware.equity[-1] - 80.0)
                                                                 / 1e5) ** (1 / years)
    assert tax_alpha(aware, unaware) == pytest.approx(expect)


def test_tax_lots_need_a_cash_account():
    with pytest.raises(InputError, match="cash account"):
        SimulatedBroker(1e5, account="margin", taxes=TaxLotTracker())


def test_portfolio_state_carries_the_lots():
    seen = []

    class Look(Scripted):
        def on_data(self, timestamp, data, context, broker):
            super().on_data(timestamp, data, context, broker)
            if data.t == 2:
                seen.append(broker.portfolio_state())

    feed = DataFeed.from_wide(pd.DataFrame({"XYZ": [10.0, 7.5, 8.0, 9.0],
                                            "ABC": [5.0, 5.0, 5.0, 5.0]}, index=DATES))
    broker = SimulatedBroker(1e5, taxes=TaxLotTracker())
    # bar 0 buys 100 XYZ and 10 ABC; bar 1 sells XYZ at a loss; bar 2 looks (before buying)
    Engine(feed, Look({0: [("XYZ", 100), ("ABC", 10)], 1: [("XYZ", -100)]}), broker,
           "same_bar", progress=False).run()
    (state,) = seen
    assert state.lots.as_of == pd.Timestamp("2024-06-20")
    assert dict(state.lots.loss_sales) == {"XYZ": (pd.Timestamp("2024-06-03"),)}
    state.lots.check_holdings(state.assets, state.holdings)    # holdings = lots
    assert state.lots.shares("ABC") == 10 and "XYZ" not in state.lots


def test_sale_of_dust_the_ledger_dropped_is_cut_to_the_lots():
    # selling all but 5e-6 of a 10,000-share lot leaves dust the ledger drops (below
    # 1e-9 of the lot) but the broker keeps; selling that dust later is not an error
    t = TaxLotTracker(method="fifo")
    t.reset(pd.DatetimeIndex(["2020-01-02"]))
    t.on_fill("A", 10_000.0, 10.0, 0.0, 1.0, "2020-01-02")
    t.on_fill("A", -(10_000.0 - 5e-6), 11.0, 0.0, 1.0, "2020-02-03")
    assert t.ledger.shares("A") == 0.0
    t.on_fill("A", -5e-6, 11.0, 0.0, 1.0, "2020-03-03")  # no lot left: nothing realized
    assert len(t.ledger.records) == 1
    t.on_fill("A", 2.0, 12.0, 0.0, 1.0, "2020-04-01")
    t.on_fill("A", -(2.0 + 5e-6), 13.0, 0.0, 1.0, "2020-05-01")  # cut to the 2 shares held
    assert t.ledger.shares("A") == 0.0
    assert t.ledger.records[-1].shares == pytest.approx(2.0, abs=1e-12)
    with pytest.raises(InputError):  # more than dust over the lots is still an error
        t.on_fill("A", -1e-3, 13.0, 0.0, 1.0, "2020-06-01")
