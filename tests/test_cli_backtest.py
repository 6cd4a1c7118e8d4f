"""`rebalopt backtest` on small synthetic panels built here.

Oracles: with no costs and fractional shares the backtest's equity must equal the
paper portfolio computed independently in numpy from the panel and the targets;
the printed figures must equal the ones recomputed from the written equity/fills
files; each commission must be ``max(per_share * |quantity|, minimum)``. Every
malformed panel or targets file gives one stderr line naming file, line and
column, exit code 2, and no file (nor temporary file) written.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rebalopt.cli import EXIT_INPUT, main
from rebalopt.research.report import PLOT_IDS

TICKERS = ["AAA", "BBB", "CCC", "DDD"]
N_BARS = 90
FREE = """\
[rebalancer]
fractional = true
min_trade_value = 0
min_weight_change = 0
"""
COSTLY = """\
[rebalancer]
min_trade_value = 0
min_weight_change = 0

[costs.commission]
per_share = 0.005
minimum = 1.0

[costs.spread]
half_spread_bps = 5
"""


def _closes(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=N_BARS)
    rets = rng.normal(0.0003, 0.015, (N_BARS, len(TICKERS)))
    px = np.array([20.0, 35.0, 50.0, 80.0]) * np.exp(np.cumsum(rets, axis=0))
    return pd.DataFrame(np.round(px, 4), index=dates, columns=TICKERS)


def _panel_frame(closes: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for d, row in closes.iterrows():
        for i, t in enumerate(closes.columns):
            c = float(row[t])
            if np.isnan(c):
                continue
            rows.append({"date": d.strftime("%Y-%m-%d"), "ticker": t, "open": round(c * 0.999, 4),
                         "high": round(c * 1.01, 4), "low": round(c * 0.99, 4), "close": c,
                         "volume": 1e6, "sector": "Tech" if i < 2 else "Energy"})
    return pd.DataFrame(rows)


def _targets_csv(closes: pd.DataFrame, dates: list[int]) -> tuple[str, pd.DataFrame]:
    """Wide targets on bars ``dates``: alternately tilted weights, summing to 1."""
    tilts = [np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])]
    frame = pd.DataFrame([tilts[k % 2] for k in range(len(dates))],
                         index=closes.index[dates], columns=TICKERS)
    text = "date," + ",".join(TICKERS) + "\n" + "".join(
        d.strftime("%Y-%m-%d") + "," + ",".join(f"{w:g}" for w in row) + "\n"
        for d, row in zip(frame.index, frame.to_numpy(), strict=True))
    return text, frame


DECISIONS = [25, 45, 65, 85]


def _files(tmp: Path, *, panel: str | None = None, targets: str | None = None,
           config: str = FREE) -> dict[str, Path]:
    closes = _closes()
    if panel is None:
        panel = _panel_frame(closes).to_csv(index=False)
    if targets is None:
        targets, _ = _targets_csv(closes, DECISIONS)
    paths = {"prices": tmp / "panel.csv", "targets": tmp / "targets.csv",
             "config": tmp / "config.toml"}
    paths["prices"].write_text(panel)
    paths["targets"].write_text(targets)
    paths["config"].write_text(config)
    return paths


def _argv(paths: dict[str, Path], *extra: str) -> list[str]:
    return ["backtest", "--prices", str(paths["prices"]), "--targets", str(paths["targets"]),
            "--config", str(paths["config"]), *extra]


def _paper_equity(closes: pd.DataFrame, targets: pd.DataFrame, cash: float) -> np.ndarray:
    """Equity of a book set to ``targets`` at each decision date's close, drifting in
    between, with no cost: cash until the first decision date."""
    px = closes.to_numpy()
    pos = closes.index.get_indexer(targets.index)
    eq = np.full(len(px), cash)
    shares = np.zeros(px.shape[1])
    value = cash
    for t in range(len(px)):
        if t > pos[0]:
            value = float(shares @ px[t])
        eq[t] = value
        if t in pos:
            w = targets.to_numpy()[list(pos).index(t)]
            shares = w * value / px[t]
    return eq


def test_free_fractional_run_matches_the_paper_portfolio(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path)
    eq_csv, fills_csv = tmp_path / "equity.csv", tmp_path / "fills.csv"
    code = main(_argv(paths, "--cash", "250000", "--equity-csv", str(eq_csv),
                      "--fills-csv", str(fills_csv)))
    out = capsys.readouterr().out
    assert code == 0
    closes = _closes()
    _, targets = _targets_csv(closes, DECISIONS)
    expected = _paper_equity(closes, targets, 250_000.0)
    equity = pd.read_csv(eq_csv, index_col="date", parse_dates=True)
    np.testing.assert_allclose(equity["equity"].to_numpy(), expected, rtol=1e-9)
    fills = pd.read_csv(fills_csv)
    # one fill per asset per decision date (each rebalance moves every weight)
    assert len(fills) == len(TICKERS) * len(DECISIONS)
    # the printed figures, recomputed from the equity file over the post-funding window
    window = equity["equity"].to_numpy()[DECISIONS[0]:]
    r = window[1:] / window[:-1] - 1.0
    cagr = (window[-1] / window[0]) ** (252.0 / len(r)) - 1.0
    vol = r.std(ddof=1) * np.sqrt(252.0)
    sharpe = r.mean() / r.std(ddof=1) * np.sqrt(252.0)
    dd = np.max(1.0 - window / np.maximum.accumulate(window))
    assert f"CAGR {cagr:.2%}" in out
    assert f"vol {vol:.2%}" in out
    assert f"Sharpe {sharpe:.2f}" in out
    assert f"max drawdown {dd:.2%}" in out
    assert "cost 0.00 bps/yr (no cost model)" in out
    assert "realized tracking error 0.00%/yr" in out
    assert "3 rebalances, 0 held" in out
    assert "4 decision dates from 2021-02-08" in out


def test_costs_turnover_and_commissions_agree_with_the_fills_file(tmp_path: Path,
                                                                  capsys) -> None:
    paths = _files(tmp_path, config=COSTLY)
    eq_csv, fills_csv = tmp_path / "equity.csv", tmp_path / "fills.csv"
    report = tmp_path / "one.html"
    assert main(_argv(paths, "--equity-csv", str(eq_csv), "--fills-csv", str(fills_csv),
                      "--out", str(report))) == 0
    out = capsys.readouterr().out
    assert 'id="summary"' in report.read_text()  # the one run's report
    fills = pd.read_csv(fills_csv)
    equity = pd.read_csv(eq_csv)["equity"].to_numpy()
    # whole shares and the commission model, fill by fill
    assert np.all(fills["quantity"] == np.round(fills["quantity"]))
    np.testing.assert_allclose(fills["cost_Commission"],
                               np.maximum(0.005 * fills["quantity"].abs(), 1.0))
    np.testing.assert_allclose(fills["cost_Spread"],
                               5e-4 * (fills["quantity"] * fills["reference_price"]).abs())
    # bps/yr of the mean post-funding equity, funding fills (tag 0) excluded
    start = DECISIONS[0]
    years = (len(equity) - 1 - start) / 252.0
    avg = equity[start:].mean()
    later = fills[fills["tag"] != 0]
    for model in ("Commission", "Spread"):
        bps = 1e4 * later[f"cost_{model}"].sum() / avg / years
        assert f"{model} {bps:.2f}" in out
    turnover = 0.5 * later["notional"].abs().sum() / avg / years
    assert f"turnover {turnover:.2%}/yr" in out
    funding = 1e4 * fills.loc[fills["tag"] == 0, ["cost_Commission", "cost_Spread"]].sum().sum()
    assert f"funding trade {funding / 1e6:.2f} bps" in out  # default cash 1e6


def test_compare_writes_the_report(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path, config=COSTLY)
    report = tmp_path / "report.html"
    code = main(_argv(paths, "--compare", "--risk-aversions", "10,1000", "--out", str(report)))
    out = capsys.readouterr().out
    assert code == 0
    html = report.read_text()
    for pid in PLOT_IDS:
        assert f"id='{pid}'" in html
    assert 'id="summary"' in html and 'id="equal-te"' in html
    for run in ("naive monthly", "naive every 3", "band abs 1.00% to edge", "band rel 50% to target",
                "optimal γ=10", "optimal γ=1000"):
        assert run in html and run in out
    assert f"wrote {report}" in out
    assert "optimal at the same TE" in out
    assert not list(tmp_path.glob(".report*"))


def test_optimizer_targets_and_parquet_panel(tmp_path: Path, capsys) -> None:
    """Inverse-volatility targets at month ends after a 20-bar lookback; the parquet
    panel gives the same figures as the CSV one."""
    paths = _files(tmp_path, config=COSTLY)
    base = ["backtest", "--optimizer", "inverse_volatility", "--lookback", "20",
            "--config", str(paths["config"])]
    assert main([*base, "--prices", str(paths["prices"])]) == 0
    from_csv = capsys.readouterr().out
    pq = tmp_path / "panel.parquet"
    frame = pd.read_csv(paths["prices"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame.to_parquet(pq)
    assert main([*base, "--prices", str(pq)]) == 0
    from_pq = capsys.readouterr().out
    assert from_csv == from_pq
    # month ends of Feb, Mar and Apr 2021 (May is the last, incomplete month)
    assert "3 decision dates from 2021-02-26" in from_csv


def test_start_end_window(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path)
    closes = _closes()
    start, end = closes.index[40], closes.index[80]
    assert main(_argv(paths, "--start", str(start.date()), "--end", str(end.date()))) == 0
    out = capsys.readouterr().out
    assert f"41 bars {start.date()}..{end.date()}" in out
    assert f"2 decision dates from {closes.index[45].date()}" in out  # 45 and 65 fall inside


def _lines() -> list[str]:
    return _panel_frame(_closes()).to_csv(index=False).splitlines()


def _replace_line(n: int, old: str, new: str) -> str:
    lines = _lines()
    assert old in lines[n - 1]
    lines[n - 1] = lines[n - 1].replace(old, new, 1)
    return "\n".join(lines) + "\n"


def _drop_column(name: str) -> str:
    return _panel_frame(_closes()).drop(columns=name).to_csv(index=False)


def _line_7() -> list[str]:
    return _lines()[6].split(",")  # line 7 = data row 6: 2021-01-05, BBB


def _malformed_panels() -> list[tuple[str, str, list[str]]]:
    row = _line_7()
    close, volume = row[5], row[6]
    lines = _lines()
    dup = "\n".join([*lines[:10], lines[6], *lines[10:]]) + "\n"  # line 11 repeats line 7
    blank = "\n".join([*lines[:3], "", *lines[3:]]) + "\n"  # a blank line 4 shifts the rest
    blank = blank.replace(f",{close},{volume},", ",nan,1000000.0,", 1)
    return [
        ("missing close", _drop_column("close"),
         ["panel.csv, line 1, column 'close'", "missing required column"]),
        ("nan close", _replace_line(7, f",{close},", ",nan,"),
         ["panel.csv, line 7, column 'close'", "'nan' is not a finite number",
          "ticker 'BBB'", "2021-01-05"]),
        ("empty close", _replace_line(7, f",{close},", ",,"),
         ["panel.csv, line 7, column 'close'", "missing close"]),
        ("text close", _replace_line(7, f",{close},", ",abc,"),
         ["panel.csv, line 7, column 'close'", "'abc' is not a number"]),
        ("zero close", _replace_line(7, f",{close},", ",0,"),
         ["panel.csv, line 7, column 'close'", "must be > 0"]),
        ("negative volume", _replace_line(7, f",{volume},", ",-5,"),
         ["panel.csv, line 7, column 'volume'", "must be >= 0"]),
        ("bad date", _replace_line(7, "2021-01-05", "2021-13-45"),
         ["panel.csv, line 7, column 'date'", "'2021-13-45' is not a date"]),
        ("empty ticker", _replace_line(7, ",BBB,", ",,"),
         ["panel.csv, line 7, column 'ticker'", "empty ticker"]),
        ("duplicate row", dup,
         ["panel.csv, line 11, column 'ticker'", "duplicate row for ticker 'BBB' on 2021-01-05",
          "first on line 7"]),
        ("blank line shifts numbering", blank,
         ["panel.csv, line 8, column 'close'", "'nan' is not a finite number"]),
    ]


@pytest.mark.parametrize(("label", "panel", "fragments"), _malformed_panels(),
                         ids=[m[0] for m in _malformed_panels()])
def test_malformed_panel_one_line_error_and_no_file(tmp_path: Path, capsys, label: str,
                                                    panel: str, fragments: list[str]) -> None:
    paths = _files(tmp_path, panel=panel)
    report, eq_csv = tmp_path / "r.html", tmp_path / "eq.csv"
    code = main(_argv(paths, "--out", str(report), "--equity-csv", str(eq_csv)))
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rebalopt: error: ")
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert not report.exists() and not eq_csv.exists()
    assert not list(tmp_path.glob(".*"))


def test_parquet_errors_name_the_row(tmp_path: Path, capsys) -> None:
    frame = _panel_frame(_closes())
    frame["date"] = pd.to_datetime(frame["date"])
    frame.loc[5, "close"] = np.nan  # 2021-01-05 BBB, data row 6
    pq = tmp_path / "panel.parquet"
    frame.to_parquet(pq)
    paths = _files(tmp_path)
    paths["prices"] = pq
    assert main(_argv(paths)) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "panel.parquet, column 'close': row 6: missing close" in err


def _targets_with(header: str | None = None, line: int | None = None,
                  row: str | None = None) -> str:
    text, _ = _targets_csv(_closes(), DECISIONS)
    lines = text.splitlines()
    if header is not None:
        lines[0] = header
    if line is not None and row is not None:
        lines[line - 1] = row
    return "\n".join(lines) + "\n"


def _malformed_targets() -> list[tuple[str, str, list[str]]]:
    closes = _closes()
    d1 = closes.index[DECISIONS[1]].strftime("%Y-%m-%d")
    sunday = "2021-02-07"
    return [
        ("unknown ticker", _targets_with(header="date,AAA,BBB,CCC,ZZZ"),
         ["targets.csv, line 1, column 'ZZZ'", "ticker 'ZZZ' is not in the panel panel.csv"]),
        ("text weight", _targets_with(line=3, row=f"{d1},0.1,x,0.3,0.4"),
         ["targets.csv, line 3, column 'BBB'", "'x' is not a number"]),
        ("nan weight", _targets_with(line=3, row=f"{d1},0.1,nan,0.3,0.4"),
         ["targets.csv, line 3, column 'BBB'", "'nan' is not a finite number"]),
        ("not a trading day", _targets_with(line=2, row=f"{sunday},0.4,0.3,0.2,0.1"),
         ["targets.csv, line 2, column 'date'", "2021-02-07 is not a date of the panel"]),
        ("duplicate date", _targets_with(line=4, row=f"{d1},0.4,0.3,0.2,0.1"),
         ["targets.csv, line 4, column 'date'", "first on line 3"]),
        ("missing date column", _targets_with(header="day,AAA,BBB,CCC,DDD"),
         ["targets.csv, line 1, column 'date'", "missing required column"]),
        ("wrong cell count", _targets_with(line=3, row=f"{d1},0.1,0.2"),
         ["targets.csv, line 3", "3 cells but the header has 5"]),
        # 03/08/2021 was read month first (8 March); a day-first desk meant 3 August
        ("ambiguous date", _targets_with(line=3, row=f"{closes.index[DECISIONS[1]]:%m/%d/%Y}"
                                                    ",0.4,0.3,0.2,0.1"),
         ["targets.csv, line 3, column 'date'", "is ambiguous", "YYYY-MM-DD"]),
    ]


@pytest.mark.parametrize(("label", "targets", "fragments"), _malformed_targets(),
                         ids=[m[0] for m in _malformed_targets()])
def test_malformed_targets_one_line_error_and_no_file(tmp_path: Path, capsys, label: str,
                                                      targets: str,
                                                      fragments: list[str]) -> None:
    paths = _files(tmp_path, targets=targets)
    report = tmp_path / "r.html"
    code = main(_argv(paths, "--compare", "--out", str(report)))
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert not report.exists()
    assert not list(tmp_path.glob(".*"))


def test_weight_on_an_asset_without_a_price_that_day(tmp_path: Path, capsys) -> None:
    """CCC has no row on the second decision date: a weight there is rejected."""
    closes = _closes()
    gap = closes.copy()
    gap.iloc[DECISIONS[1], 2] = np.nan
    paths = _files(tmp_path, panel=_panel_frame(gap).to_csv(index=False))
    assert main(_argv(paths)) == EXIT_INPUT
    err = capsys.readouterr().err
    d1 = closes.index[DECISIONS[1]].date()
    assert re.search(rf"targets\.csv, line 3, column 'CCC': weight 0\.3 for 'CCC' on {d1}, "
                     r"but panel\.csv has no price for it that day", err), err


def test_write_failure_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    """The report is complete when writing the equity CSV fails: neither appears."""
    paths = _files(tmp_path)

    def boom(self: pd.DataFrame, path: Path, **kw: object) -> None:
        Path(path).write_text("date,equity\n")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    report, eq_csv = tmp_path / "r.html", tmp_path / "eq.csv"
    with pytest.raises(OSError, match="disk full"):
        main(_argv(paths, "--equity-csv", str(eq_csv), "--out", str(report)))
    assert not report.exists() and not eq_csv.exists()
    assert not list(tmp_path.glob(".*"))


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--compare"], "--compare writes an HTML report: give --out"),
    (["--out", "missing/r.html"], "output folder does not exist"),
    (["--compare", "--out", "r.html", "--equity-csv", "e.csv"], "describe one run"),
    (["--cash", "-5"], "must be finite and > 0"),
    (["--start", "2021-02-30"], "'2021-02-30' is not a date"),
    (["--start", "2030-01-01"], "no row of panel.csv between --start and --end"),
    (["--compare", "--out", "r.html", "--risk-aversions", "1,x"], "comma-separated numbers"),
    # rev7: before, the list was read by nothing and the run used [optimal] risk_aversion
    (["--risk-aversions", "1,10"], "--risk-aversions sets the optimal runs of --compare"),
    # before, an explicit --lookback beside --targets and a naive rebalancer was read by nothing
    (["--lookback", "30"], "[field '--lookback'] read by nothing here: the targets come from"),
    (["--lookback", "1"], "must be >= 2, got 1"),
])
def test_bad_options(tmp_path: Path, capsys, monkeypatch, extra: list[str],
                     fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    paths = _files(tmp_path)
    assert main(_argv(paths, *extra)) == EXIT_INPUT
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "panel.csv",
                                                          "targets.csv"]


def test_missing_panel_file(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path)
    paths["prices"] = tmp_path / "nope.csv"
    assert main(_argv(paths)) == EXIT_INPUT
    assert "nope.csv: file not found" in capsys.readouterr().err


def test_desk_headers_in_the_panel_give_the_same_run(tmp_path: Path) -> None:
    """``Date,Symbol,Open,High,Low,Last Price,Volume,GICS Sector`` is the canonical panel:
    the free fractional run's equity equals the paper portfolio computed here."""
    closes = _closes()
    frame = _panel_frame(closes).rename(columns={
        "date": "Date", "ticker": "Symbol", "open": "Open", "high": "High", "low": "Low",
        "close": "Last Price", "volume": "Volume", "sector": "GICS Sector"})
    paths = _files(tmp_path, panel=frame.to_csv(index=False))
    eq_csv = tmp_path / "equity.csv"
    assert main(_argv(paths, "--cash", "250000", "--equity-csv", str(eq_csv))) == 0
    _, targets = _targets_csv(closes, DECISIONS)
    equity = pd.read_csv(eq_csv, index_col="date", parse_dates=True)
    np.testing.assert_allclose(equity["equity"].to_numpy(),
                               _paper_equity(closes, targets, 250_000.0), rtol=1e-9)


def test_two_headers_meaning_the_close_are_a_duplicate(tmp_path: Path, capsys) -> None:
    frame = _panel_frame(_closes())
    frame["Price"] = frame["close"]
    paths = _files(tmp_path, panel=frame.to_csv(index=False))
    assert main(_argv(paths)) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "panel.csv, line 1, column 'close': duplicate column in header" in err


def test_a_config_that_cannot_be_honoured_fails_instead_of_holding(tmp_path: Path,
                                                                   capsys) -> None:
    """Was: every rebalance held (a warning), figures printed, exit 0. A group bound
    naming a sector no asset has is the config's error: exit 2 naming its line and
    key, no file written."""
    config = '[rebalancer]\nmethod = "optimal"\n[constraints]\ngroups = ["Utilities <= 0.1"]\n'
    paths = _files(tmp_path, config=config)
    eq_csv = tmp_path / "equity.csv"
    assert main(_argv(paths, "--equity-csv", str(eq_csv))) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("rebalopt: error: ")
    assert "config.toml, line 4, column 'constraints.groups'" in err
    assert "group 'Utilities' has no asset" in err
    assert not eq_csv.exists() and not list(tmp_path.glob(".equity.csv*"))


def _dated(frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime(fmt)
    return out


def test_a_day_first_panel_is_read_day_first(tmp_path: Path) -> None:
    """The 90-bar panel written ``dd/mm/yyyy`` (its 4 January is ``04/01/2021``, which
    pandas alone reads as 1 April): the run's equity is the paper portfolio's on the
    ISO dates."""
    closes = _closes()
    paths = _files(tmp_path, panel=_dated(_panel_frame(closes), "%d/%m/%Y").to_csv(index=False))
    eq_csv = tmp_path / "equity.csv"
    assert main(_argv(paths, "--cash", "250000", "--equity-csv", str(eq_csv))) == 0
    _, targets = _targets_csv(closes, DECISIONS)
    equity = pd.read_csv(eq_csv, index_col="date", parse_dates=True)
    assert list(equity.index) == list(closes.index)
    np.testing.assert_allclose(equity["equity"].to_numpy(),
                               _paper_equity(closes, targets, 250_000.0), rtol=1e-9)


def test_month_starts_settled_by_one_later_date(tmp_path: Path) -> None:
    """Bars on the 4th to 8th of January and one on the 13th, written day first: the
    13th (``13/01/2021``) settles the order of the five ambiguous ones."""
    closes = _closes().iloc[:6]
    closes.index = pd.DatetimeIndex(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07",
                                     "2021-01-08", "2021-01-13"])
    targets = "date," + ",".join(TICKERS) + "\n2021-01-05,0.25,0.25,0.25,0.25\n"
    paths = _files(tmp_path, panel=_dated(_panel_frame(closes), "%d/%m/%Y").to_csv(index=False),
                   targets=targets)
    eq_csv = tmp_path / "equity.csv"
    assert main(_argv(paths, "--equity-csv", str(eq_csv))) == 0
    equity = pd.read_csv(eq_csv, index_col="date", parse_dates=True)
    assert list(equity.index) == list(closes.index)


@pytest.mark.parametrize(("days", "why"), [
    (["2021-01-04", "2021-01-05", "2021-01-06"],
     "line 2, column 'date': '04/01/2021' is ambiguous"),
    (["2021-01-04", "2021-01-13", "2021-01-14"], None),
])
def test_a_panel_that_cannot_settle_its_date_order_is_refused(tmp_path: Path, capsys,
                                                              days: list[str],
                                                              why: str | None) -> None:
    """Only ambiguous dates: refused at the first one (no date settles the order).
    Day first and month first in one file: refused at the second order's first date."""
    closes = _closes().iloc[:len(days)]
    closes.index = pd.DatetimeIndex(days)
    frame = _dated(_panel_frame(closes), "%d/%m/%Y")
    if why is None:  # the last bar's rows written month first
        last = frame["date"] == "14/01/2021"
        frame.loc[last, "date"] = "01/14/2021"
        why = "'01/14/2021' is month first but '13/01/2021'"
    targets = "date," + ",".join(TICKERS) + "\n" + days[0] + ",0.25,0.25,0.25,0.25\n"
    paths = _files(tmp_path, panel=frame.to_csv(index=False), targets=targets)
    eq_csv = tmp_path / "equity.csv"
    assert main(_argv(paths, "--equity-csv", str(eq_csv))) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "panel.csv" in err and why in err, err
    assert not eq_csv.exists()


@pytest.mark.parametrize(("config", "line", "key", "fragment"), [
    # the comparison's own bands ran, the configured 5% band never did
    ('[rebalancer]\nmethod = "band"\n[band]\nwidth = 0.05\n', 3, "band", "[band] would be "
     "ignored"),
    # its naive runs trade every difference: min_trade_value = 500 was read by nothing
    ("[rebalancer]\nmin_trade_value = 500\n", 2, "rebalancer.min_trade_value",
     "with min_trade_value = 0.0: the config's 500.0 would be ignored"),
    ("[rebalancer]\nfractional = true\nround_lots = false\nmax_single_weight = 0.3\n", 4,
     "rebalancer.max_single_weight", "with max_single_weight = 1.0"),
])
def test_compare_refuses_a_naive_or_band_setting_it_would_not_read(
        tmp_path: Path, capsys, config: str, line: int, key: str, fragment: str) -> None:
    paths = _files(tmp_path, config=config)
    report = tmp_path / "r.html"
    assert main(_argv(paths, "--compare", "--out", str(report))) == EXIT_INPUT
    err = capsys.readouterr().err
    assert f"config.toml, line {line}, column '{key}'" in err and fragment in err
    assert not report.exists()


def test_margin_false_is_refused_by_the_backtest(tmp_path: Path, capsys) -> None:
    # the backtest's broker is a margin account: margin = false was read by nothing
    paths = _files(tmp_path, config=FREE + "[account]\nmargin = false\n")
    assert main(_argv(paths)) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "config.toml, line 6, column 'account.margin'" in err and "margin = false" in err
    paths = _files(tmp_path, config=FREE + "[account]\nmargin = true\n")
    assert main(_argv(paths)) == 0
