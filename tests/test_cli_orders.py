"""`rebalopt rebalance --format csv|ibkr|alpaca|fix`, end to end: each written file is
parsed back and checked against the hand-computed plan.

The book (as in test_cli.py): equity = 1000 cash + 100*10 + 50*20 = 3000; 30% each:
sell 10 AAA @ 10, sell 5 BBB @ 20, buy 180 CCC @ 5 (sells first). The prices file
carries the date 2024-06-03, the plan's date (client order ids, FIX Text).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from rebalopt.cli import EXIT_INPUT, main

HOLDINGS = "ticker,shares\nAAA,100\nBBB,50\n"
TARGETS = "ticker,weight\nAAA,0.3\nBBB,0.3\nCCC,0.3\n"
PRICES = "date,ticker,price\n2024-06-03,AAA,10\n2024-06-03,BBB,20\n2024-06-03,CCC,5\n"
CONFIG = """\
[account]
cash = 1000.0

[rebalancer]
min_weight_change = 0.0
min_trade_value = 0

[costs.spread]
half_spread_bps = 5
"""
PLAN = [("AAA", "sell", 10, 10.0), ("BBB", "sell", 5, 20.0), ("CCC", "buy", 180, 5.0)]
# limit band 20 bps: sells at price * 0.998 rounded up to the cent, buys at * 1.002 down
LIMITS = {"AAA": "9.98", "BBB": "19.96", "CCC": "5.01"}


def _run(tmp: Path, out: Path, *extra: str, config: str = CONFIG, targets: str = TARGETS) -> int:
    for name, text in (("h.csv", HOLDINGS), ("t.csv", targets), ("p.csv", PRICES),
                       ("c.toml", config)):
        (tmp / name).write_text(text)
    return main(["rebalance", "--holdings", str(tmp / "h.csv"), "--targets", str(tmp / "t.csv"),
                 "--prices", str(tmp / "p.csv"), "--config", str(tmp / "c.toml"),
                 "--out", str(out), *extra])


def _client_id(account: str, basket: str, ticker: str, side: str, qty: int) -> str:
    """The documented id: sha256 of account|basket|as-of|ticker|side|quantity, 32 hex."""
    key = f"{account}|{basket}|2024-06-03|{ticker}|{side}|{qty}"
    return "rb-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def test_ibkr_basket_columns_and_limits(tmp_path: Path) -> None:
    out = tmp_path / "basket.csv"
    assert _run(tmp_path, out, "--format", "ibkr", "--account", "U123", "--basket", "B1",
                "--order-type", "limit", "--limit-band-bps", "20",
                "--time-in-force", "gtc") == 0
    assert out.read_bytes().count(b"\r\n") == 4  # header + 3 rows, CRLF as TWS writes
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["Action", "Quantity", "Symbol", "SecType", "Exchange", "Currency",
                             "TimeInForce", "OrderType", "LmtPrice", "Account", "OrderRef"]
    got = [(r["Symbol"], r["Action"], int(r["Quantity"]), r["LmtPrice"]) for r in rows]
    assert got == [(t, s.upper(), q, LIMITS[t]) for t, s, q, _ in PLAN]
    assert {(r["SecType"], r["Exchange"], r["Currency"], r["TimeInForce"], r["OrderType"],
             r["Account"], r["OrderRef"]) for r in rows} == {
        ("STK", "SMART", "USD", "GTC", "LMT", "U123", "B1")}


def test_alpaca_requests_with_stable_client_ids(tmp_path: Path) -> None:
    out = tmp_path / "orders.jsonl"
    args = ("--format", "alpaca", "--account", "PA1", "--basket", "B1", "--order-type",
            "limit", "--limit-band-bps", "20")
    assert _run(tmp_path, out, *args) == 0
    first = out.read_text()
    reqs = [json.loads(line) for line in first.splitlines()]
    assert [(r["symbol"], r["side"], r["qty"], r["type"], r["time_in_force"])
            for r in reqs] == [(t, s, q, "limit", "day") for t, s, q, _ in PLAN]
    assert [f"{r['limit_price']:.2f}" for r in reqs] == [LIMITS[t] for t, *_ in PLAN]
    assert [r["client_order_id"] for r in reqs] == [
        _client_id("PA1", "B1", t, s, q) for t, s, q, _ in PLAN]
    # a retry of the same plan sends the same ids (the broker refuses duplicates)
    assert _run(tmp_path, out, *args) == 0
    assert out.read_text() == first
    assert _run(tmp_path, out, *args[:5], "B2", *args[6:]) == 0
    assert all(json.loads(a)["client_order_id"] != json.loads(b)["client_order_id"]
               for a, b in zip(first.splitlines(), out.read_text().splitlines(), strict=True))


def test_fix_messages_parse_and_match_the_plan(tmp_path: Path) -> None:
    simplefix = pytest.importorskip("simplefix", reason="simplefix not installed (extra: fix)")
    out = tmp_path / "orders.fix"
    assert _run(tmp_path, out, "--format", "fix", "--account", "ACC9", "--basket", "B1",
                "--time-in-force", "opg") == 0
    raw = out.read_bytes().splitlines()
    assert len(raw) == 3
    parser = simplefix.FixParser()
    for line, (ticker, side, qty, _) in zip(raw, PLAN, strict=True):
        body, _, trailer = line.rpartition(b"10=")
        assert int(trailer.rstrip(b"\x01")) == sum(body) % 256  # the checksum holds
        parser.append_buffer(line)
        m = parser.get_message()
        def tag(k: int, m=m) -> str:
            return m.get(k).decode()

        assert tag(8) == "FIX.4.4" and tag(35) == "D"
        assert (tag(55), tag(54), tag(38)) == (ticker, {"sell": "2", "buy": "1"}[side], str(qty))
        assert (tag(40), tag(59), tag(1), tag(583), tag(15), tag(100)) == (
            "1", "2", "ACC9", "B1", "USD", "SMART")
        assert m.get(44) is None  # market orders carry no price
        assert tag(11) == _client_id("ACC9", "B1", ticker, side, qty)
        assert tag(58) == "basket=B1 asof=2024-06-03"


def test_fix_session_ids_from_flags_and_config(tmp_path: Path) -> None:
    simplefix = pytest.importorskip("simplefix", reason="simplefix not installed (extra: fix)")
    config = CONFIG + '\n[orders]\nformat = "fix"\ntarget_comp_id = "IBKRFIX"\n'
    out = tmp_path / "orders.fix"
    assert _run(tmp_path, out, "--sender-comp-id", "DESK7", config=config) == 0
    parser = simplefix.FixParser()
    for line in out.read_bytes().splitlines():
        parser.append_buffer(line)
        m = parser.get_message()
        assert (m.get(49), m.get(56)) == (b"DESK7", b"IBKRFIX")
    # a session id means nothing in another format: an error naming the flag, no file
    out2 = tmp_path / "orders.csv"
    assert _run(tmp_path, out2, "--format", "csv", "--sender-comp-id", "DESK7") == 2
    assert not out2.exists()


def test_orders_table_in_the_config_and_flags_win(tmp_path: Path) -> None:
    config = CONFIG + '\n[orders]\nformat = "ibkr"\naccount = "U1"\nexchange = "ARCA"\n'
    out = tmp_path / "basket.csv"
    assert _run(tmp_path, out, "--account", "U2", config=config) == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["Account"], r["Exchange"]) for r in rows} == {("U2", "ARCA")}


@pytest.mark.parametrize(("extra", "config_tail", "fragment"), [
    # a setting the format does not write is an error, not dropped
    (("--basket", "B1"), "", "field '--basket'] the csv order format does not write basket"),
    ((), '[orders]\nformat = "alpaca"\nsec_type = "STK"\n',
     "c.toml, line 13, column 'orders.sec_type': the alpaca order format does not write"),
    # the format's own limits are checked before planning, naming the flag
    (("--format", "ibkr", "--time-in-force", "cls"), "",
     "field '--time-in-force'] time_in_force 'cls' has no IB basket equivalent"),
    (("--format", "fix", "--order-type", "limit"), "",
     "a limit order needs limit_band_bps"),
    ((), '[orders]\norder_type = "limit"\n', "column 'orders.order_type': a limit order"),
    ((), '[orders]\nformat = "swift"\n', "column 'orders.format': expected one of"),
    ((), '[orders]\nacount = "U1"\n', "column 'orders.acount': unknown key"),
])
def test_bad_order_settings_exit_2_and_write_nothing(tmp_path: Path, capsys, extra,
                                                     config_tail, fragment) -> None:
    out = tmp_path / "orders.out"
    assert _run(tmp_path, out, *extra, config=CONFIG + "\n" + config_tail) == EXIT_INPUT
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_fractional_plan_refused_by_whole_share_formats(tmp_path: Path, capsys) -> None:
    """IB baskets and FIX orders are whole shares: a fractional plan is exit 2 naming the
    asset, and no file; Alpaca takes it (fractional day orders)."""
    config = CONFIG.replace("[rebalancer]\n", "[rebalancer]\nfractional = true\n")
    targets = "ticker,weight\nAAA,0.3\nBBB,0.3\nCCC,0.3001\n"  # CCC: 180.06 shares
    out = tmp_path / "basket.csv"
    assert _run(tmp_path, out, "--format", "ibkr", config=config, targets=targets) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "asset 'CCC'" in err and "not a whole number" in err and not out.exists()
    assert _run(tmp_path, out, "--format", "alpaca", config=config, targets=targets) == 0
    qty = [json.loads(x)["qty"] for x in out.read_text().splitlines()]
    assert qty[-1] == pytest.approx(0.3001 * 3000 / 5)
