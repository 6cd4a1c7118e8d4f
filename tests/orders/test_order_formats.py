"""Broker-ready orders: each format checked against its documented layout.

Book: cash 10,000; AAA 100 @ 50, BBB 50 @ 20, CCC @ 10 not held; equity 16,000.
Targets AAA 0, BBB -0.10, CCC 0.50 (shorts allowed) -> sell 100 AAA, sell 130 BBB
(50 close the long, 80 open a short: -1,600 / 20), buy 800 CCC (8,000 / 10).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest

from rebalopt import InputError, NaiveRebalancer, PortfolioState, RebalanceConfig
from rebalopt.orders import FORMATS, Order, OrderSettings, OrderSide, render, write

simplefix = pytest.importorskip("simplefix", reason="simplefix not installed (extra: fix)")
alpaca_requests = pytest.importorskip("alpaca.trading.requests",
                                      reason="alpaca-py not installed (extra: alpaca)")

CFG = RebalanceConfig(allow_short=True, max_gross_leverage=1.5, min_weight_change=0.0,
                      min_trade_value=0.0)


@pytest.fixture
def plan():
    state = PortfolioState({"AAA": 100, "BBB": 50}, 10_000.0,
                           {"AAA": 50.0, "BBB": 20.0, "CCC": 10.0})
    p = NaiveRebalancer(CFG).plan(state, {"AAA": 0.0, "BBB": -0.10, "CCC": 0.50})
    assert [(o.asset, o.side.value, o.quantity) for o in p.orders()] == [
        ("AAA", "sell", 100), ("BBB", "sell", 130), ("CCC", "buy", 800)]
    return p


SETTINGS = OrderSettings(account="U123", order_type="limit", limit_band_bps=50.0,
                         basket="rebal-2024-06", as_of="2024-06-28")


# ---------------------------------------------------------------- IB basket CSV
def test_ibkr_basket_layout(plan, tmp_path) -> None:
    path = write(plan, tmp_path / "basket.csv", format="ibkr")
    text = path.read_bytes().decode("utf-8")
    assert text.splitlines()[0] == ("Action,Quantity,Symbol,SecType,Exchange,Currency,"
                                    "TimeInForce,OrderType")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["Action"], r["Quantity"], r["Symbol"]) for r in rows] == [
        ("SELL", "100", "AAA"), ("SELL", "130", "BBB"), ("BUY", "800", "CCC")]
    assert {(r["SecType"], r["Exchange"], r["Currency"], r["TimeInForce"], r["OrderType"])
            for r in rows} == {("STK", "SMART", "USD", "DAY", "MKT")}


def test_ibkr_limit_account_basket(plan) -> None:
    from rebalopt.orders.ibkr import ibkr_csv

    rows = list(csv.DictReader(io.StringIO(ibkr_csv(plan, SETTINGS))))
    assert list(rows[0]) == ["Action", "Quantity", "Symbol", "SecType", "Exchange", "Currency",
                             "TimeInForce", "OrderType", "LmtPrice", "Account", "OrderRef"]
    # sells limited 50 bps below the reference price, buys 50 bps above (by hand)
    assert [r["LmtPrice"] for r in rows] == ["49.75", "19.90", "10.05"]
    assert {r["OrderType"] for r in rows} == {"LMT"}
    assert {(r["Account"], r["OrderRef"]) for r in rows} == {("U123", "rebal-2024-06")}


def test_limit_prices_stay_inside_the_band() -> None:
    # 33.33 * 1.0025 = 33.4133... -> 33.41 (down); * 0.9975 = 33.2466... -> 33.25 (up)
    s = OrderSettings(order_type="limit", limit_band_bps=25)
    buy = Order("X", OrderSide.BUY, 1, 33.33)
    sell = Order("X", OrderSide.SELL, 1, 33.33)
    assert str(s.limit_price(buy)) == "33.41"
    assert str(s.limit_price(sell)) == "33.25"
    # below $1 the tick is 0.0001: 0.5 * 1.0025 = 0.50125 -> 0.5012
    assert str(s.limit_price(Order("Y", OrderSide.BUY, 1, 0.5))) == "0.5012"


def test_ibkr_rejects_fractional_shares() -> None:
    from rebalopt.orders.ibkr import ibkr_rows

    with pytest.raises(InputError) as info:
        ibkr_rows([Order("AAA", OrderSide.BUY, 1.5, 10.0)])
    assert (info.value.asset, info.value.field) == ("AAA", "quantity")


# ------------------------------------------------------------------- Alpaca
def test_alpaca_requests_are_alpaca_py_models(plan) -> None:
    reqs = render(plan, "alpaca", SETTINGS)
    assert all(isinstance(r, alpaca_requests.LimitOrderRequest) for r in reqs)
    body = [{k: getattr(v, "value", v) for k, v in r.to_request_fields().items()} for r in reqs]
    assert [(b["symbol"], b["qty"], b["side"], b["type"], b["time_in_force"], b["limit_price"])
            for b in body] == [("AAA", 100, "sell", "limit", "day", 49.75),
                               ("BBB", 130, "sell", "limit", "day", 19.9),
                               ("CCC", 800, "buy", "limit", "day", 10.05)]
    # client_order_id: SHA-256 of account|basket|as-of|ticker|side|qty (recomputed here)
    key = "U123|rebal-2024-06|2024-06-28|CCC|buy|800"
    assert body[2]["client_order_id"] == "rb-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    # stable across retries, different for another as-of date
    again = render(plan, "alpaca", SETTINGS)
    assert [r.client_order_id for r in again] == [r.client_order_id for r in reqs]
    other = render(plan, "alpaca", OrderSettings(account="U123", basket="rebal-2024-06",
                                                 as_of="2024-07-31"))
    assert not {r.client_order_id for r in other} & {r.client_order_id for r in reqs}
    assert len({r.client_order_id for r in reqs}) == 3


def test_alpaca_notional_buys_and_jsonl(plan, tmp_path) -> None:
    s = OrderSettings(notional=True, as_of=dt.date(2024, 6, 28))
    reqs = render(plan, "alpaca", s)
    assert all(isinstance(r, alpaca_requests.MarketOrderRequest) for r in reqs)
    assert [(r.qty, r.notional) for r in reqs] == [(100, None), (130, None), (None, 8000.0)]
    lines = write(plan, tmp_path / "orders.jsonl", "alpaca", s).read_text().splitlines()
    bodies = [json.loads(x) for x in lines]
    assert bodies[2] == {"symbol": "CCC", "notional": 8000.0, "side": "buy", "type": "market",
                         "time_in_force": "day", "client_order_id": reqs[2].client_order_id}
    with pytest.raises(InputError) as info:
        OrderSettings(notional=True, time_in_force="gtc")
    assert info.value.field == "notional"


def test_alpaca_fractional_only_for_day_orders() -> None:
    with pytest.raises(InputError) as info:
        render([Order("AAA", OrderSide.BUY, 0.5, 10.0)], "alpaca",
               OrderSettings(time_in_force="gtc"))
    assert (info.value.asset, info.value.field) == ("AAA", "quantity")
    (req,) = render([Order("AAA", OrderSide.BUY, 0.5, 10.0)], "alpaca")
    assert req.qty == 0.5


# ---------------------------------------------------------------------- FIX
def _fields(raw: bytes) -> list[tuple[int, bytes]]:
    return [(int(t), v) for t, v in (f.split(b"=", 1) for f in raw.split(b"\x01") if f)]


def test_fix_new_order_single_layout(plan, tmp_path) -> None:
    when = dt.datetime(2024, 6, 28, 19, 45, 0, tzinfo=dt.UTC)
    from rebalopt.orders.fix import fix_bytes

    raw = fix_bytes(plan, SETTINGS, sending_time=when)
    msgs = raw.splitlines()
    assert len(msgs) == 4  # BBB's sale split: 50 close the long, 80 sold short
    parsed = []
    for m in msgs:
        f = _fields(m)
        # header order and framing (FIX 4.4 session layer), checked by hand
        assert [t for t, _ in f[:3]] == [8, 9, 35] and f[0][1] == b"FIX.4.4" and f[2][1] == b"D"
        assert f[-1][0] == 10
        body = m[m.index(b"\x0135=") + 1: m.rindex(b"10=")]
        assert int(f[1][1]) == len(body)
        assert int(f[-1][1]) == sum(m[: m.rindex(b"10=")]) % 256
        parsed.append(dict(f))
    for d in parsed:
        for tag in (11, 55, 54, 60, 38, 40):  # required in NewOrderSingle
            assert tag in d
        assert d[1] == b"U123" and d[21] == b"1" and d[40] == b"2" and d[59] == b"0"
        assert d[583] == b"rebal-2024-06" and d[60] == b"20240628-19:45:00.000"
        assert d[58] == b"basket=rebal-2024-06 asof=2024-06-28"
    assert [(d[55], d[54], d[38], d[44]) for d in parsed] == [
        (b"AAA", b"2", b"100", b"49.75"), (b"BBB", b"2", b"50", b"19.90"),
        (b"BBB", b"5", b"80", b"19.90"), (b"CCC", b"1", b"800", b"10.05")]
    assert [d[34] for d in parsed] == [b"1", b"2", b"3", b"4"]
    # simplefix's own parser reads them back
    p = simplefix.FixParser()
    p.append_buffer(raw.replace(b"\n", b""))
    assert [p.get_message().get(55) for _ in msgs] == [b"AAA", b"BBB", b"BBB", b"CCC"]
    # the file is the same bytes
    assert write(plan, tmp_path / "orders.fix", "fix", SETTINGS).stat().st_size > 0


def test_unknown_format_and_bad_settings() -> None:
    assert FORMATS == ("csv", "ibkr", "alpaca", "fix")
    with pytest.raises(InputError) as info:
        render([], "xml")
    assert info.value.field == "format"
    for kwargs, field in [({"order_type": "stop"}, "order_type"),
                          ({"order_type": "limit"}, "limit_band_bps"),
                          ({"limit_band_bps": 10.0}, "limit_band_bps"),
                          ({"time_in_force": "week"}, "time_in_force"),
                          ({"as_of": "28/06/2024"}, "as_of"),
                          # were accepted: "no" is truthy (notional buys were sent), True a
                          # tick of $1, a number an account (a bare TypeError when writing)
                          ({"notional": "no"}, "notional"), ({"notional": 1}, "notional"),
                          ({"tick": True}, "tick"), ({"tick": "0.01"}, "tick"),
                          ({"account": 123}, "account"), ({"basket": 7}, "basket"),
                          ({"currency": None}, "currency")]:
        with pytest.raises(InputError) as info:
            OrderSettings(**kwargs)
        assert info.value.field == field, kwargs


@pytest.mark.parametrize(("fmt", "ticker"), [("fix", "AB\x01C"), ("fix", "Ä"), ("fix", ""),
                                             ("ibkr", "A\nB"), ("ibkr", "A\x01B")])
def test_a_ticker_the_format_cannot_carry(tmp_path, fmt, ticker) -> None:
    """Was written: in FIX a SOH ends tag 55 early (a FIX parser reads Symbol 'AB' and a
    stray 'C'), a non-ASCII ticker goes out as UTF-8 bytes; in an IB basket a line
    break splits the row. Now an InputError naming the asset, and no file."""
    orders = [Order("OK", OrderSide.SELL, 3, 10.0), Order(ticker, OrderSide.BUY, 10, 5.0)]
    with pytest.raises(InputError) as info:
        write(orders, tmp_path / "orders.out", fmt)
    assert info.value.asset == ticker and info.value.field == "ticker"
    assert not (tmp_path / "orders.out").exists()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"account": "U1\x01U2"}, "account"), ({"basket": "b\nc"}, "basket"),
    ({"currency": ""}, "currency"), ({"exchange": "SMART\x01"}, "exchange"),
    ({"sec_type": ""}, "sec_type")])
def test_settings_text_a_format_cannot_carry(kwargs, field) -> None:
    """A SOH in the account was written into tag 1 (``1=U1<SOH>U2``: an engine reads
    account 'U1' and a malformed field), an empty currency as ``15=``."""
    with pytest.raises(InputError) as info:
        OrderSettings(**kwargs)
    assert info.value.field == field


def test_account_and_basket_cannot_shift_the_client_id_key() -> None:
    """The client id hashes ``account|basket|as_of|ticker|side|quantity``: account
    'a|b' with basket 'c' gave the same ids as account 'a' with basket 'b|c' (two
    accounts' orders refused as duplicates, or one account's retried as another's)."""
    from rebalopt.orders.settings import Leg

    order = Order("AAA", OrderSide.BUY, 1, 5.0)
    leg = Leg("AAA", "buy", 1.0, order)
    a, b = OrderSettings(account="a", basket="x"), OrderSettings(account="a", basket="y")
    assert a.client_order_id(leg) != b.client_order_id(leg)  # the fields reach the id
    for kwargs, field in (({"account": "a|b", "basket": "c"}, "account"),
                          ({"account": "a", "basket": "b|c"}, "basket")):
        with pytest.raises(InputError, match="'|' is not allowed") as info:
            OrderSettings(**kwargs)
        assert info.value.field == field


def test_fix_text_fields_are_ascii() -> None:
    from rebalopt.orders.fix import fix_messages

    with pytest.raises(InputError) as info:
        fix_messages([Order("AAA", OrderSide.BUY, 1, 5.0)], OrderSettings(account="Müller"))
    assert info.value.field == "account"


def test_alpaca_amounts_at_the_precision_alpaca_takes() -> None:
    """Was: a $0.001 notional buy went out as ``"notional": 0.0`` (a zero order) and a
    quantity of 1e-12 shares as ``"qty": 1e-12``; Alpaca takes 9 decimals. Oracle:
    Decimal arithmetic by hand."""
    with pytest.raises(InputError) as info:
        render([Order("AAA", OrderSide.BUY, 0.001, 1.0)], "alpaca",
               OrderSettings(notional=True))
    assert (info.value.asset, info.value.field) == ("AAA", "notional")
    with pytest.raises(InputError) as info:
        render([Order("BBB", OrderSide.SELL, 4e-10, 1.0)], "alpaca")
    assert (info.value.asset, info.value.field) == ("BBB", "quantity")
    (req,) = render([Order("CCC", OrderSide.SELL, 12.3456789012345, 10.0)], "alpaca")
    assert req.qty == 12.345678901  # 9 decimals, half to even
    (req,) = render([Order("CCC", OrderSide.BUY, 0.006, 1.0)], "alpaca",
                    OrderSettings(notional=True))
    assert req.notional == 0.01  # $0.006 to the cent


def test_a_limit_at_or_above_a_dollar_is_in_whole_cents() -> None:
    s = OrderSettings(order_type="limit", limit_band_bps=20.0)
    # 0.9995 x 1.002 = 1.001499: the sub-dollar tick (0.0001) gave 1.0014, a sub-penny
    # price at or above $1 that US venues refuse; in cents, rounded down: 1.00
    assert str(s.limit_price(Order("Y", OrderSide.BUY, 1, 0.9995))) == "1.00"
    # below $1 the tick stays 0.0001: 0.9970 x 1.002 = 0.998994 -> 0.9989
    assert str(s.limit_price(Order("Y", OrderSide.BUY, 1, 0.9970))) == "0.9989"
    # a tick given is kept: 1.001499 at 0.0001 -> 1.0014
    t = OrderSettings(order_type="limit", limit_band_bps=20.0, tick=0.0001)
    assert str(t.limit_price(Order("Y", OrderSide.BUY, 1, 0.9995))) == "1.0014"
