"""`rebalopt rebalance` on files as desks and optimizers write them (issue 17).

Desk exports: a byte-order mark and CRLF line ends, lower-case tickers, ``Symbol`` /
``Quantity`` / ``Close`` headers, ``"1,470"``, ``2.00%``, extra columns, a price
history with several dates. Optimizer exports, written by the real packages:
PyPortfolioOpt's ``save_weights_to_file`` (.csv without a header, and .json),
riskfolio-lib's ``w.to_csv()``, a pandas Series' ``to_csv()``.

Oracle: the order file is applied to the holdings here; with the naive rebalancer
and no thresholds each trade must be the target's shares rounded to the nearest
whole share (computed here from the weights the optimizer returned, not from the
file); with the optimal one, the limits of the config are re-checked from the files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rebalopt.cli import EXIT_INPUT, main

NAIVE = "[rebalancer]\nmin_trade_value = 0\nmin_weight_change = 0\n"


def _orders(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _run(tmp: Path, holdings: str | Path, targets: str | Path, prices: str | Path,
         config: str = NAIVE, *extra: str) -> tuple[int, Path]:
    paths = []
    for name, content in (("holdings.csv", holdings), ("targets.csv", targets),
                          ("prices.csv", prices)):
        if isinstance(content, Path):
            paths.append(content)
        else:
            p = tmp / name
            p.write_bytes(content.encode("utf-8"))
            paths.append(p)
    cfg = tmp / "config.toml"
    cfg.write_text(config)
    out = tmp / "orders.csv"
    code = main(["rebalance", "--holdings", str(paths[0]), "--targets", str(paths[1]),
                 "--prices", str(paths[2]), "--config", str(cfg), "--out", str(out), *extra])
    return code, out


def _naive_trades(held: dict[str, float], cash: float, px: dict[str, float],
                  weights: dict[str, float]) -> dict[str, float]:
    """Shares to trade, by hand: target value / price minus holding, rounded half away."""
    equity = cash + sum(held.get(a, 0.0) * p for a, p in px.items())
    out = {}
    for a, p in px.items():
        x = weights.get(a, 0.0) * equity / p - held.get(a, 0.0)
        q = float(np.sign(x) * np.floor(abs(x) + 0.5))
        if q:
            out[a] = q
    return out


def _signed(rows: list[dict[str, str]]) -> dict[str, float]:
    return {r["ticker"]: (1.0 if r["side"] == "buy" else -1.0) * float(r["quantity"])
            for r in rows}


def _sells_first(rows: list[dict[str, str]]) -> bool:
    sides = [r["side"] for r in rows]
    return sides == ["sell"] * sides.count("sell") + ["buy"] * sides.count("buy")


# ------------------------------------------------------------------ desk exports
DESK_HOLDINGS = ("\ufeffAccount,Symbol,Description,Quantity,Market Value\r\n"
                 'U123,aapl,Apple Inc,"1,470","$309,611.40"\r\n'
                 'U123,MSFT,Microsoft Corp,300,"$134,085.00"\r\n'
                 "U123,xom,Exxon Mobil,0,$0.00\r\n")
DESK_TARGETS = "\ufeffTicker,Name,Weight\r\nAAPL,Apple,40.00%\r\nmsft,Microsoft,35.00%\r\nJNJ,J&J,20.00%\r\n"
DESK_PRICES = ("Date,Symbol,Close,Adj Close,Volume,GICS Sector\n"
               "2024-06-27,AAPL,214.10,213.90,1000000,Tech\n"
               "2024-06-27,MSFT,452.85,452.00,1000000,Tech\n"
               "2024-06-27,JNJ,146.00,145.10,1000000,Health\n"
               '2024-06-28,aapl,"210.62",210.40,1000000,Tech\n'
               '2024-06-28,MSFT,"446.95",446.10,1000000,Tech\n'
               "2024-06-28,JNJ,146.16,145.90,1000000,Health\n")
LATEST = {"AAPL": 210.62, "MSFT": 446.95, "JNJ": 146.16}
EARLIER = {"AAPL": 214.10, "MSFT": 452.85, "JNJ": 146.00}
HELD = {"AAPL": 1470.0, "MSFT": 300.0}


def test_desk_exports_naive_orders_match_hand_computation(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, DESK_HOLDINGS, DESK_TARGETS, DESK_PRICES, NAIVE, "--cash",
                     "10000")
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = _orders(out)
    assert _sells_first(rows)
    assert all(float(r["quantity"]).is_integer() for r in rows)
    assert {r["ticker"]: float(r["reference_price"]) for r in rows} == {
        t: LATEST[t] for t in _signed(rows)}
    expected = _naive_trades(HELD, 10_000.0, LATEST, {"AAPL": 0.40, "MSFT": 0.35, "JNJ": 0.20})
    assert _signed(rows) == expected
    # what was read differently is printed
    assert "tickers upper-cased: aapl -> AAPL (line 2), xom -> XOM (line 4)" in printed
    assert "msft -> MSFT (line 3)" in printed
    assert "prices of 2024-06-28 (the latest)" in printed
    assert "3 'Weight' cells with a percent sign read as percent" in printed
    assert "left out: XOM" in printed


def test_desk_exports_as_of_an_earlier_date(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, DESK_HOLDINGS, DESK_TARGETS, DESK_PRICES, NAIVE, "--cash",
                     "10000", "--as-of", "2024-06-27")
    assert code == 0
    rows = _orders(out)
    expected = _naive_trades(HELD, 10_000.0, EARLIER, {"AAPL": 0.40, "MSFT": 0.35, "JNJ": 0.20})
    assert _signed(rows) == expected
    assert all(float(r["reference_price"]) == EARLIER[r["ticker"]] for r in rows)
    assert "prices of 2024-06-27 (on or before --as-of 2024-06-27)" in capsys.readouterr().out


def test_wide_price_history(tmp_path: Path) -> None:
    """``closes.to_csv()``: a date column and one column per ticker; a blank cell is no
    price that day."""
    closes = pd.DataFrame({"AAPL": [214.10, 210.62], "msft": [452.85, 446.95],
                           "JNJ": [146.00, 146.16], "IBM": [170.0, np.nan]},
                          index=pd.Index(pd.to_datetime(["2024-06-27", "2024-06-28"]),
                                         name="Date"))
    code, out = _run(tmp_path, DESK_HOLDINGS, DESK_TARGETS, closes.to_csv(), NAIVE, "--cash",
                     "10000")
    assert code == 0
    expected = _naive_trades(HELD, 10_000.0, LATEST, {"AAPL": 0.40, "MSFT": 0.35, "JNJ": 0.20})
    assert _signed(_orders(out)) == expected


OPTIMAL = """\
[rebalancer]
method = "optimal"
[optimal]
risk_aversion = 1000.0
[constraints]
max_weight = 0.38
groups = ["Tech <= 0.70"]
[costs.commission]
per_share = 0.005
minimum = 1.0
[costs.spread]
half_spread_bps = 3
"""


def test_desk_exports_optimal_keeps_the_limits(tmp_path: Path) -> None:
    """Applied to the holdings here: whole shares, sells first, cash >= 0 after the
    expected costs, every weight <= 0.38, Tech <= 0.70, at the latest prices."""
    code, out = _run(tmp_path, DESK_HOLDINGS, DESK_TARGETS, DESK_PRICES, OPTIMAL, "--cash",
                     "10000")
    assert code == 0
    rows = _orders(out)
    assert rows and _sells_first(rows)
    held, cash = dict(HELD), 10_000.0
    equity = cash + sum(HELD[a] * LATEST[a] for a in HELD)
    for r in rows:
        q = float(r["quantity"])
        assert q.is_integer() and q > 0
        assert float(r["reference_price"]) == LATEST[r["ticker"]]
        sign = 1.0 if r["side"] == "buy" else -1.0
        held[r["ticker"]] = held.get(r["ticker"], 0.0) + sign * q
        cash -= sign * q * LATEST[r["ticker"]] + float(r["expected_cost"])
    weights = {a: q * LATEST[a] / equity for a, q in held.items()}
    assert cash >= 0 and min(held.values()) >= 0
    assert max(weights.values()) <= 0.38 + 1e-6
    assert weights.get("AAPL", 0) + weights.get("MSFT", 0) <= 0.70 + 1e-6


# ------------------------------------------------------------------ optimizer exports
TICKERS = ["MSFT", "AAPL", "JNJ", "XOM", "PG"]
PX = {"MSFT": 446.95, "AAPL": 210.62, "JNJ": 146.16, "XOM": 112.40, "PG": 164.92}
BOOK = "ticker,shares\nPG,100\nXOM,250\nAAPL,40\n"  # another order than the optimizers'
BOOK_HELD = {"PG": 100.0, "XOM": 250.0, "AAPL": 40.0}
PRICES = "ticker,price\n" + "".join(f"{t},{p}\n" for t, p in PX.items())


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    cov = 0.0001 * (np.eye(5) + 0.3)
    return pd.DataFrame(rng.multivariate_normal(np.full(5, 4e-4), cov, size=400),
                        columns=TICKERS, index=pd.bdate_range("2022-01-03", periods=400))


def _check_naive(tmp_path: Path, targets: Path, weights: dict[str, float]) -> None:
    """Weights summing to 1 rounded to the nearest share can overdraw by a few dollars;
    ``margin = true`` keeps the plain naive arithmetic the oracle computes (funding
    is tested in tests/reliability/test_rel_cli.py)."""
    code, out = _run(tmp_path, BOOK, targets, PRICES, NAIVE + "[account]\nmargin = true\n",
                     "--cash", "50000")
    assert code == 0
    rows = _orders(out)
    assert _sells_first(rows)
    assert _signed(rows) == _naive_trades(BOOK_HELD, 50_000.0, PX, weights)


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_pypfopt_save_weights_to_file(tmp_path: Path, returns: pd.DataFrame, ext) -> None:
    pypfopt = pytest.importorskip("pypfopt", reason="PyPortfolioOpt not installed")
    ef = pypfopt.EfficientFrontier(returns.mean() * 252, returns.cov() * 252)
    ef.min_volatility()
    path = tmp_path / f"weights.{ext}"
    ef.save_weights_to_file(str(path))
    if ext == "csv":
        assert "," in path.read_text().splitlines()[0]  # no header: 'MSFT,0.2...'
    weights = dict(ef.clean_weights())
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-4)
    _check_naive(tmp_path, path, weights)


def test_riskfolio_weights_to_csv(tmp_path: Path, returns: pd.DataFrame) -> None:
    rp = pytest.importorskip("riskfolio", reason="riskfolio-lib not installed")
    port = rp.Portfolio(returns=returns)
    port.assets_stats(method_mu="hist", method_cov="hist")
    w = port.optimization(model="Classic", rm="MV", obj="MinRisk", hist=True)
    path = tmp_path / "w.csv"
    w.to_csv(path)
    assert path.read_text().splitlines()[0] == ",weights"
    _check_naive(tmp_path, path, w["weights"].to_dict())


@pytest.mark.parametrize("name", [None, "w", "weight"])
def test_pandas_series_to_csv(tmp_path: Path, name) -> None:
    s = pd.Series({"JNJ": 0.3, "msft": 0.25, "PG": 0.2, "XOM": 0.15, "AAPL": 0.1}, name=name)
    path = tmp_path / "s.csv"
    s.to_csv(path)
    _check_naive(tmp_path, path, {k.upper(): v for k, v in s.items()})


def test_zero_weight_without_price_is_left_out(tmp_path: Path, capsys) -> None:
    """An optimizer's export lists its whole universe; a 0 weight needs no price."""
    weights = {"MSFT": 0.5, "AAPL": 0.5, "TSLA": 0.0}
    path = tmp_path / "w.json"
    path.write_text(json.dumps(weights))
    _check_naive(tmp_path, path, weights)
    assert "left out: TSLA" in capsys.readouterr().out


# ------------------------------------------------------------------ what stays an error
@pytest.mark.parametrize(("files", "fragments"), [
    ({"prices": "ticker,close,price\nAAPL,1,1\n"},
     ["prices.csv, line 1, column 'price'", "'close' and 'price' both mean price"]),
    ({"targets": "ticker,weight\nMSFT,50%\nAAPL,0.5\n"},
     ["targets.csv, line 3, column 'weight'", "mixes percent (line 2: '50%')"]),
    ({"holdings": "ticker,shares\nPG,\"1,47\"\n"},
     ["holdings.csv, line 2, column 'shares'", "'1,47' is not a number", "decimal comma"]),
    ({"holdings": "ticker,shares\nPG,5%\n"},
     ["holdings.csv, line 2, column 'shares'", "percent sign is not allowed"]),
    ({"holdings": "Symbol,Qty\nPG,1\npg,2\n"},
     ["holdings.csv, line 3, column 'Symbol'", "duplicate row for ticker 'PG'",
      "first on line 2; tickers compared in upper case"]),
    ({"prices": "date,ticker,price\n2024-06-27,PG,1\n2024-06-28,MSFT,2\n"},
     ["prices.csv, line 2, column 'price'", "no price for 'PG' on 2024-06-28",
      "its last: 2024-06-27"]),
    ({"prices": "date,ticker,price\n2024-06-27,PG,1\n27/13/2024,MSFT,2\n"},
     ["prices.csv, line 3, column 'date'", "'27/13/2024' is not a date"]),
    # numeric dates no date of the file settles (day first or month first?)
    ({"prices": "date,ticker,price\n01/07/2024,PG,1\n02/07/2024,PG,2\n"},
     ["prices.csv, line 2, column 'date'", "'01/07/2024' is ambiguous",
      "no date in the file settles the order", "YYYY-MM-DD"]),
    # both orders in one file
    ({"prices": "date,ticker,price\n30/06/2024,PG,1\n07/13/2024,PG,2\n"},
     ["prices.csv, line 3, column 'date'",
      "'07/13/2024' is month first but '30/06/2024' (line 2) is day first", "YYYY-MM-DD"]),
    # were two groups: a bound on 'Tech' left 'tech' free
    ({"prices": "ticker,price,sector\nPG,10,Tech\nMSFT,20,tech\nAAPL,30,Energy\n"},
     ["prices.csv, line 3, column 'sector'", "'tech' differs from 'Tech' (line 2)"]),
    ({"prices": "ticker,price,sector\nPG,10,Info Tech\nMSFT,20,Energy\nAAPL,30,Info  Tech\n"},
     ["prices.csv, line 4, column 'sector'", "only in case or spacing"]),
])
def test_what_cannot_be_read_for_certain_is_an_error(tmp_path: Path, capsys, files,
                                                     fragments) -> None:
    contents = {"holdings": "ticker,shares\nPG,1\n", "targets": "ticker,weight\nPG,0.5\n",
                "prices": "ticker,price\nPG,10\nMSFT,20\nAAPL,30\n", **files}
    code, out = _run(tmp_path, contents["holdings"], contents["targets"], contents["prices"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_INPUT and len(err) == 1, err
    for frag in fragments:
        assert frag in err[0], (frag, err[0])
    assert not out.exists()


@pytest.mark.parametrize(("history", "latest", "day"), [
    # a day-first history: 30/06 was read as 30 June and 01/07 as 7 January, so the
    # "latest" prices were June's, silently; 30/06 settles the order: 01/07 is 1 July
    ("30/06/2024,PG,1\n01/07/2024,PG,2\n", 2.0, "2024-07-01"),
    # a month-first (US) history: 06/30 settles it, 07/01 is 1 July
    ("06/30/2024,PG,1\n07/01/2024,PG,2\n", 2.0, "2024-07-01"),
    ("07/01/2024,PG,2\n06/30/2024,PG,1\n", 2.0, "2024-07-01"),
    # ISO dates beside numeric ones: only the numeric ones need an order
    ("2024-07-02,PG,3\n30/06/2024,PG,1\n01/07/2024,PG,2\n", 3.0, "2024-07-02"),
])
def test_a_history_file_reads_its_numeric_dates_in_one_order(tmp_path: Path, capsys,
                                                             history: str, latest: float,
                                                             day: str) -> None:
    """The latest price is the one of the latest date, read in the order the file's
    certain dates show (oracle: the same history with ISO dates, by hand); that date is
    the table's, and the plan's (tax-lot terms, order ids) when no --as-of is given."""
    from rebalopt.adapters.files import read_prices

    p = tmp_path / "prices.csv"
    p.write_text("date,ticker,price\n" + history)
    table = read_prices(p, ["PG"])
    price = float(table.rows[0]["price"]) if len(table.rows) == 1 else None
    assert price == latest, table.rows
    assert table.date == pd.Timestamp(day)
    code, _ = _run(tmp_path, "ticker,shares\nPG,10\n", "ticker,weight\nPG,0.5\n", p, NAIVE,
                   "--format", "alpaca")
    assert code == 0
    assert f"note: plan dated {day} (prices.csv)" in capsys.readouterr().out


def test_as_of_before_every_date(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, "ticker,shares\nPG,1\n", "ticker,weight\nPG,0.5\n",
                     "date,ticker,price\n2024-06-27,PG,1\n", NAIVE, "--as-of", "2024-01-01")
    assert code == EXIT_INPUT
    assert "no date on or before 2024-01-01" in capsys.readouterr().err
    assert not out.exists()


def test_json_targets_with_a_repeated_key(tmp_path: Path, capsys) -> None:
    """``{"PG": 0.5, "PG": 0.3}``: json.loads keeps the last value, so the file's first
    weight was silently dropped (PG planned at 0.3); now an error naming the second key's
    line and the first's."""
    path = tmp_path / "w.json"
    path.write_text('{\n  "PG": 0.5,\n  "MSFT": 0.2,\n  "PG": 0.3\n}\n')
    code, out = _run(tmp_path, "ticker,shares\nPG,1\n", path,
                     "ticker,price\nPG,10\nMSFT,20\n")
    err = capsys.readouterr().err
    assert code == EXIT_INPUT, err
    assert "w.json, line 4" in err and "duplicate ticker 'PG'" in err
    assert "first on line 2" in err
    assert not out.exists()


def test_a_bound_on_a_group_spelled_two_ways(tmp_path: Path, capsys) -> None:
    """Was: 'Tech <= 0.2' bounded PG (Tech) and left MSFT (tech) free, so the plan held
    two Tech names at 0.5 of equity (PG 0.2, MSFT 0.3), above the 0.2 bound (exit 0)."""
    config = '[rebalancer]\nmethod = "optimal"\n[constraints]\ngroups = ["Tech <= 0.2"]\n'
    code, out = _run(tmp_path, "ticker,shares\nPG,10\nMSFT,5\n",
                     "ticker,weight\nPG,0.3\nMSFT,0.3\n",
                     "ticker,price,sector\nPG,10,Tech\nMSFT,20,tech\n", config,
                     "--cash", "1000")
    assert code == EXIT_INPUT
    assert "prices.csv, line 3, column 'sector'" in capsys.readouterr().err
    assert not out.exists()


def test_blank_multiplier_and_lot_cells_are_said(tmp_path: Path, capsys) -> None:
    """A blank multiplier is 1 (a share), as in a file mixing futures and shares; it was
    silent, so a futures row left blank was valued 50 times too low unnoticed. Oracle:
    the naive trades by hand with multiplier 1 for MSFT, and the printed note."""
    code, out = _run(tmp_path, "ticker,shares\nPG,1\nMSFT,2\n",
                     "ticker,weight\nPG,0.5\nMSFT,0.25\n",
                     "ticker,price,multiplier,lot_size\nPG,10,50,\nMSFT,20,,1\n",
                     NAIVE, "--cash", "1000")
    assert code == 0
    printed = capsys.readouterr().out
    assert "blank 'multiplier' read as 1 (a share): MSFT (line 3)" in printed
    assert "blank 'lot_size' read as 1 share: PG (line 2)" in printed
    equity = 1000 + 1 * 10 * 50 + 2 * 20 * 1  # 1540
    assert _signed(_orders(out)) == {"PG": round(0.5 * equity / 500) - 1,
                                     "MSFT": round(0.25 * equity / 20) - 2}


def test_as_of_must_be_certainly_one_date(tmp_path: Path, capsys) -> None:
    """``--as-of 01/07/2024`` was 7 January (pandas reads month first)."""
    code, out = _run(tmp_path, "ticker,shares\nPG,1\n", "ticker,weight\nPG,0.5\n",
                     "date,ticker,price\n2024-01-05,PG,1\n2024-06-28,PG,2\n", NAIVE,
                     "--as-of", "01/07/2024")
    assert code == EXIT_INPUT
    assert "--as-of" in capsys.readouterr().err
    assert not out.exists()
