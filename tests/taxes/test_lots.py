"""Tax lots in the state: frames, CSV, validation against holdings."""

import pandas as pd
import pytest

from rebalopt.adapters.files import FileInputError
from rebalopt.errors import InputError
from rebalopt.state import PortfolioState
from rebalopt.taxes import Lot, TaxLots, read_lots_csv

FRAME = pd.DataFrame({
    "asset": ["AAA", "AAA", "BBB"],
    "shares": [60, 40, 10],
    "basis": [10.0, 12.5, 99.0],
    "acquired": ["2020-01-02", "2023-05-01", "2024-02-02"],
})


def test_state_with_lots_from_frame():
    s = PortfolioState({"AAA": 100, "BBB": 10}, 1000.0, {"AAA": 11.0, "BBB": 100.0},
                       lots=FRAME)
    assert [lot.lot_id for lot in s.lots["AAA"]] == ["1", "2"]
    assert s.lots.shares("AAA") == 100 and s.lots["AAA"][1].basis == 12.5
    assert s.replace(cash=5.0).lots is s.lots
    assert s.after(pd.Series({"AAA": -10}).reindex(s.assets).fillna(0).to_numpy(), 0).lots is None
    assert PortfolioState({"AAA": 1}, 1.0, {"AAA": 1.0}).lots is None
    f = s.lots.to_frame()
    assert list(f["shares"]) == [60, 40, 10]


def test_holdings_must_equal_the_lots():
    with pytest.raises(InputError, match="AAA.*differs.*1=60, 2=40") as e:
        PortfolioState({"AAA": 90, "BBB": 10}, 0.0, {"AAA": 11.0, "BBB": 100.0}, lots=FRAME)
    assert e.value.asset == "AAA" and e.value.field == "lots"
    with pytest.raises(InputError, match="holding 0 shares differs.*lots: 1=10") as e:
        PortfolioState({"AAA": 100}, 0.0, {"AAA": 11.0, "BBB": 100.0}, lots=FRAME)
    assert e.value.asset == "BBB"
    with pytest.raises(InputError, match="not held") as e:
        PortfolioState({"AAA": 100}, 0.0, {"AAA": 11.0}, lots=FRAME)
    assert e.value.asset == "BBB"
    with pytest.raises(InputError, match="CCC.*differs"):
        PortfolioState({"AAA": 100, "BBB": 10, "CCC": 5}, 0.0,
                       {"AAA": 11.0, "BBB": 100.0, "CCC": 1.0}, lots=FRAME)
    bad = FRAME.assign(shares=[60, -40, 10])
    with pytest.raises(InputError, match="lot '2'.*shares") as e:
        TaxLots.from_frame(bad)
    assert e.value.asset == "AAA"
    with pytest.raises(InputError, match="duplicate lot id"):
        TaxLots({"AAA": [Lot("x", 1, 1, pd.Timestamp("2020-01-01"))] * 2})


def test_read_lots_csv(tmp_path):
    p = tmp_path / "lots.csv"
    p.write_text("Ticker,lot_id,shares,basis,acquired\nAAA,a,60,10.00,2020-01-02\n\n"
                 "AAA,b,40,12.50,2023-05-01\nBBB,c,10,99,2024-02-02\n")
    lots = read_lots_csv(p)
    assert [(x.lot_id, x.shares, x.basis) for x in lots["AAA"]] == [("a", 60, 10.0),
                                                                     ("b", 40, 12.5)]
    p.write_text("ticker,shares,basis,acquired\nAAA,60,10,2020-01-02\nBBB,10,x,2024-02-02\n")
    with pytest.raises(FileInputError, match=r"lots.csv, line 3, column 'basis'.*'x'") as e:
        read_lots_csv(p)
    assert e.value.asset == "BBB"
    p.write_text("ticker,shares,basis,acquired\nAAA,60,10,notadate\n")
    with pytest.raises(FileInputError, match="line 2.*not a date"):
        read_lots_csv(p)
    p.write_text("ticker,shares,acquired\nAAA,60,2020-01-02\n")
    with pytest.raises(FileInputError, match="basis"):
        read_lots_csv(p)


@pytest.mark.parametrize(("text", "fragments"), [
    # was a bare KeyError('acquired'): a cut row
    ("ticker,shares,basis,acquired\nAAA,60,10,2020-01-02\nBBB,10,99\n",
     ["line 3", "3 cells but the header has 4"]),
    # extra cells were dropped and the rest read by position: an unquoted "1,000" gave
    # shares 1, basis 0 and failed only if the next cell was not a date (here '10.5')...
    ("ticker,shares,basis,acquired\nAAA,1,000,10.5,2020-01-02\n",
     ["line 2", "5 cells but the header has 4"]),
    # ... and was read silently as 1 share at a basis of 0 when it was
    ("ticker,shares,basis,acquired\nAAA,1,000,2020-01-02,L1\n",
     ["line 2", "5 cells but the header has 4"]),
    # was the 'shares' column taken and 'quantity' dropped
    ("ticker,shares,quantity,basis,acquired\nAAA,60,600,10,2020-01-02\n",
     ["line 1", "column 'shares'", "'shares' and 'quantity' both mean shares"]),
    ("ticker,asset,shares,basis,acquired\nAAA,BBB,60,10,2020-01-02\n",
     ["line 1", "'asset' and 'ticker' both mean asset"]),
])
def test_read_lots_csv_what_cannot_be_read_for_certain(tmp_path, text, fragments):
    p = tmp_path / "lots.csv"
    p.write_text(text)
    with pytest.raises(FileInputError) as e:
        read_lots_csv(p)
    for frag in fragments:
        assert frag in str(e.value), (frag, str(e.value))


def test_read_lots_csv_headers_as_desks_write_them(tmp_path):
    """'Lot ID' was not read (ids numbered 1, 2, ... instead of the desk's), nor
    'Cost Basis Per Share' (a missing-column error): headers compare as in the desk
    files."""
    p = tmp_path / "lots.csv"
    p.write_text("Symbol is not read,Ticker,Lot ID,Shares,Cost Basis Per Share,Acquired\n"
                 "x,AAA,L-7,60,10.00,2020-01-02\nx,AAA,L-9,40,12.50,2023-05-01\n")
    lots = read_lots_csv(p)
    assert [(x.lot_id, x.shares, x.basis) for x in lots["AAA"]] == [("L-7", 60, 10.0),
                                                                     ("L-9", 40, 12.5)]


def test_views_of_a_ledger_follow_its_trades():
    # the ledger's per-bar views reuse an asset's sorted lots until they change
    from rebalopt.taxes import LotLedger

    led = LotLedger(method="fifo", wash_sale=None)
    led.buy("XYZ", 10, 5.0, "2024-01-02")
    led.buy("ABC", 4, 7.0, "2024-01-03")
    first = led.tax_lots("2024-02-01")
    assert [lot.shares for lot in first["XYZ"]] == [10.0]
    led.buy("XYZ", 5, 6.0, "2024-01-05")
    led.sell("ABC", 4, 8.0, "2024-02-02")
    later = led.tax_lots("2024-02-03")
    assert [lot.shares for lot in later["XYZ"]] == [10.0, 5.0]
    assert "ABC" not in later and [lot.shares for lot in first["XYZ"]] == [10.0]
    assert later.as_of == pd.Timestamp("2024-02-03")
    moved = later.on("2024-03-01")
    assert moved.as_of == pd.Timestamp("2024-03-01") and moved["XYZ"] == later["XYZ"]
    only = later.subset(["ABC"])
    assert len(only) == 0 and only.as_of == later.as_of
    # the checked path and the constructor agree
    assert TaxLots(led.lots, as_of="2024-02-03")["XYZ"] == later["XYZ"]


def test_read_lots_csv_dates_must_be_certain(tmp_path):
    """'02/03/2023' was 3 February (month first) while '25/03/2023' was 25 March (day
    first): a day-first file was read half right, and the holding period of the first
    lot came out a month short. Oracle: the dates as written in ISO."""
    p = tmp_path / "lots.csv"
    # 25/03 settles the file's order (day first): 02/03/2023 is 2 March
    p.write_text("ticker,shares,basis,acquired\nAAA,60,10,25/03/2023\nAAA,40,12,02/03/2023\n")
    assert sorted(x.acquired for x in read_lots_csv(p)["AAA"]) == [
        pd.Timestamp("2023-03-02"), pd.Timestamp("2023-03-25")]
    # month first (US), settled by 03/25; the purchase date column read the same way
    p.write_text("ticker,shares,basis,acquired,purchased\nAAA,60,10,03/25/2023,03/25/2023\n"
                 "AAA,40,12,02/03/2023,\n")
    assert sorted(x.acquired for x in read_lots_csv(p)["AAA"]) == [
        pd.Timestamp("2023-02-03"), pd.Timestamp("2023-03-25")]
    # nothing settles it
    p.write_text("ticker,shares,basis,acquired\nAAA,60,10,01/03/2023\nAAA,40,12,02/03/2023\n")
    with pytest.raises(FileInputError) as e:
        read_lots_csv(p)
    assert "line 2" in str(e.value) and "column 'acquired'" in str(e.value)
    assert "ambiguous" in str(e.value) and e.value.asset == "AAA"
    # both orders: the second one met is refused, naming the first
    p.write_text("ticker,shares,basis,acquired\nAAA,60,10,25/03/2023\nBBB,40,12,03/26/2023\n")
    with pytest.raises(FileInputError) as e:
        read_lots_csv(p)
    assert "line 3" in str(e.value) and "'25/03/2023' (line 2) is day first" in str(e.value)
    assert e.value.asset == "BBB"
    p.write_text("ticker,shares,basis,acquired\nAAA,60,10,25/03/2023\nAAA,40,12,2023-03-02\n"
                 "AAA,1,1,12/12/2023\n")
    assert sorted(x.acquired for x in read_lots_csv(p)["AAA"]) == [
        pd.Timestamp("2023-03-02"), pd.Timestamp("2023-03-25"), pd.Timestamp("2023-12-12")]


@pytest.mark.parametrize("field,shares,basis", [
    ("lot shares", True, 50.0),      # read as 1 share
    ("lot basis", 10.0, True),       # read as a basis of $1
    ("lot shares", "10", 50.0),      # was a bare TypeError from math.isfinite
    ("lot basis", 10.0, None),
])
def test_a_lots_shares_and_basis_are_numbers(field, shares, basis):
    with pytest.raises(InputError, match="is not a number") as e:
        TaxLots({"AAA": [Lot("a1", shares, basis, "2024-01-02")]})
    assert e.value.asset == "AAA" and e.value.field == field
    # NumPy numbers and ints are numbers: 10 shares at 50 cost 500
    import numpy as np
    ok = TaxLots({"AAA": [Lot("a1", np.int64(10), np.float64(50.0), "2024-01-02")]})
    assert ok.shares("AAA") == 10 and ok["AAA"][0].cost == 500.0


def test_the_holding_period_does_not_start_after_the_purchase(tmp_path):
    # acquired after purchased (e.g. the two columns swapped) would value a lot held
    # since 2023-01-01 as short-term on 2024-06-01; a wash sale only moves it earlier
    with pytest.raises(InputError, match="acquired 2024-05-01 is after its purchase on "
                       "2023-01-01") as e:
        TaxLots({"AAA": [Lot("a1", 10.0, 5.0, acquired="2024-05-01",
                             purchased="2023-01-01")]}, as_of="2024-06-01")
    assert e.value.asset == "AAA" and e.value.field == "acquired"
    p = tmp_path / "lots.csv"
    p.write_text("asset,lot_id,shares,basis,acquired,purchased\n"
                 "AAA,a1,10,5,2022-01-03,2023-01-01\n"
                 "AAA,a2,10,5,2024-05-01,2023-01-01\n")
    with pytest.raises(FileInputError, match="a2") as e:
        read_lots_csv(p)
    assert (e.value.line, e.value.column, e.value.asset) == (3, "acquired", "AAA")
    # the carried-over period (acquired before the purchase) is read as given
    p.write_text("asset,lot_id,shares,basis,acquired,purchased\n"
                 "AAA,a1,10,5,2022-01-03,2023-01-01\n")
    lot = read_lots_csv(p)["AAA"][0]
    assert (lot.acquired, lot.purchased) == (pd.Timestamp("2022-01-03"),
                                             pd.Timestamp("2023-01-01"))


def test_a_loss_sale_after_as_of_is_refused():
    # a sale from the future was dropped silently (only sales on or before as_of
    # restrict a purchase), as a lot bought after as_of is refused
    with pytest.raises(InputError, match="loss sale on 2024-07-01, after as_of 2024-06-03") as e:
        TaxLots({}, as_of="2024-06-03", loss_sales={"BBB": ["2024-05-20", "2024-07-01"]})
    assert (e.value.asset, e.value.field) == ("BBB", "loss_sales")
    # on as_of itself it is kept: 0 days ago is inside the 30-day window
    from rebalopt.costs.tax import TaxCost
    from rebalopt.taxes import TaxRates

    lots = TaxLots({}, as_of="2024-06-03", loss_sales={"BBB": ["2024-06-03"]})
    state = PortfolioState({"BBB": 0.0}, 100.0, {"BBB": 10.0}, lots=lots)
    assert TaxCost(TaxRates()).table(state).no_buy.tolist() == [True]


def test_a_cost_basis_column_is_refused_a_total_basis_is_divided(tmp_path):
    # 'Cost Basis' is the lot's total at Schwab, IBKR and Alpaca: read per share, a
    # 60-share lot bought for 600.00 had a basis of 600.00 a share (every sale a loss)
    p = tmp_path / "lots.csv"
    p.write_text("ticker,shares,Cost Basis,acquired\nAAA,60,600.00,2020-01-02\n")
    with pytest.raises(FileInputError, match="'Cost Basis' is the lot's total cost at some "
                       "brokers") as e:
        read_lots_csv(p)
    assert (e.value.line, e.value.column) == (1, "basis")
    # the lot's total, named so: 600.00 / 60 = 10.00 and 500.00 / 40 = 12.50 a share
    p.write_text("ticker,shares,Total Basis,acquired\nAAA,60,600.00,2020-01-02\n"
                 "AAA,40,500.00,2023-05-01\n")
    assert [(x.shares, x.basis) for x in read_lots_csv(p)["AAA"]] == [(60, 10.0), (40, 12.5)]
    p.write_text("ticker,shares,basis,total_basis,acquired\nAAA,60,10,600,2020-01-02\n")
    with pytest.raises(FileInputError, match="both give the basis"):
        read_lots_csv(p)
    with pytest.raises(InputError, match="cost_basis"):
        TaxLots.from_frame(FRAME.rename(columns={"basis": "cost_basis"}))


def test_a_lots_replacement_flag_is_a_bool():
    # "no" was truthy: the lot bought 10 days ago counted as a replacement, so a loss
    # sale of AAA was not seen as a wash sale against it (its loss valued, not 0)
    with pytest.raises(InputError, match="replacement must be True or False") as e:
        TaxLots({"AAA": [Lot("a1", 10.0, 50.0, "2024-05-24", replacement="no")]})
    assert (e.value.asset, e.value.field) == ("AAA", "replacement")
    from rebalopt.costs.tax import TaxCost

    lots = TaxLots({"AAA": [Lot("a1", 10.0, 50.0, "2024-05-24", replacement=False)]},
                   as_of="2024-06-03")
    state = PortfolioState({"AAA": 10.0}, 0.0, {"AAA": 40.0}, lots=lots)
    assert TaxCost().table(state).no_harvest.tolist() == [True]   # bought 10 days ago
