"""The command line under inputs it cannot honour (issue 13, case 4), from the user's side.

Each case writes desk files into ``tmp_path``, runs ``rebalopt`` through
:func:`rebalopt.cli.main` and checks what a user sees: the exit code, one stderr
line naming the file, the line and the column (or the config key), and that no
order file was written (or, for a documented choice, that the order file keeps
every limit when applied to the holdings by hand here).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rel_helpers import count

from rebalopt.cli import EXIT_INFEASIBLE, EXIT_INPUT, EXIT_OTHER, EXIT_SOLVER, main

HOLDINGS = "ticker,shares\nAAA,130\nBBB,50\nCCC,410\n"
TARGETS = "ticker,weight\nAAA,0.26\nBBB,0.26\nCCC,0.26\nDDD,0.22\n"
PRICES = "ticker,price,sector\nAAA,10,Tech\nBBB,20,Tech\nCCC,5,Energy\nDDD,40,Health\n"
PX = {"AAA": 10.0, "BBB": 20.0, "CCC": 5.0, "DDD": 40.0}
HELD = {"AAA": 130.0, "BBB": 50.0, "CCC": 410.0, "DDD": 0.0}
CASH = 25_000.0
OPTIMAL = '[account]\ncash = 25000.0\n[rebalancer]\nmethod = "optimal"\n'


def _files(tmp: Path, config: str, **overrides: str) -> dict[str, Path]:
    contents = {"holdings": HOLDINGS, "targets": TARGETS, "prices": PRICES, "config": config}
    contents.update(overrides)
    paths = {}
    for name, text in contents.items():
        p = tmp / (f"{name}.toml" if name == "config" else f"{name}.csv")
        p.write_text(text)
        paths[name] = p
    return paths


def _run(paths: dict[str, Path], out: Path | str, *extra: str) -> int:
    return main(["rebalance", "--holdings", str(paths["holdings"]), "--targets",
                 str(paths["targets"]), "--prices", str(paths["prices"]), "--config",
                 str(paths["config"]), "--out", str(out), *extra])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("rebalopt: error: ")
    return err[0]


def _orders(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _apply(rows: list[dict[str, str]]) -> tuple[dict[str, float], float]:
    """Holdings and cash after the order file, costs included (computed here)."""
    held, cash = dict(HELD), CASH
    for r in rows:
        q = float(r["quantity"])
        sign = 1.0 if r["side"] == "buy" else -1.0
        held[r["ticker"]] += sign * q
        cash -= sign * q * float(r["reference_price"]) + float(r["expected_cost"])
    return held, cash


def test_exit_codes_are_the_documented_ones() -> None:
    assert (EXIT_OTHER, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_SOLVER) == (1, 2, 3, 4)


# ------------------------------------------------------------------ round lots
def test_optimal_honours_round_lots(tmp_path: Path) -> None:
    """Was: 22 of 23 orders not lot multiples with exit 0. Now every order is a whole
    number of 100-share lots, and the file is fundable and long-only."""
    config = OPTIMAL + "round_lots = true\nlot_size = 100\n[optimal]\nrisk_aversion = 100.0\n"
    paths = _files(tmp_path, config)
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == 0
    rows = _orders(out)
    assert rows
    for r in rows:
        q = float(r["quantity"])
        closes = r["side"] == "sell" and q == HELD[r["ticker"]]
        assert q % 100 == 0 or closes, r
    held, cash = _apply(rows)
    assert cash >= -1e-9 and min(held.values()) >= 0
    count("cli:documented_choice")


@pytest.mark.parametrize(("config", "key", "words"), [
    (OPTIMAL + "fractional = true\nround_lots = true\n", "rebalancer.round_lots",
     "contradicts fractional"),
    (OPTIMAL + "lot_size = 100\n", "rebalancer.lot_size", "only with round_lots"),
    (OPTIMAL + "max_single_weight = 0.1\n", "rebalancer.max_single_weight",
     "[constraints] max_weight"),
    (OPTIMAL + "cash_buffer = 0.02\n", "rebalancer.cash_buffer", "[constraints] cash_floor"),
    ('[rebalancer]\nmethod = "band"\nmin_trade_value = 500\n', "rebalancer.min_trade_value",
     "does not read"),
    (OPTIMAL + "fractional = true\n[optimal]\nmax_trades = 3\n", "optimal.max_trades",
     "needs whole shares"),
])
def test_a_setting_the_method_ignores_is_an_error(tmp_path: Path, capsys, config, key,
                                                  words) -> None:
    paths = _files(tmp_path, config)
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    err = _error_line(capsys)
    line = next(i for i, t in enumerate(config.splitlines(), 1) if t.startswith(key.split(".")[1]))
    assert f"config.toml, line {line}, column '{key}'" in err and words in err, err
    assert not out.exists()
    count("cli:bad_input")


# ------------------------------------------------------------------ cash
NAIVE_LOTS = """\
[account]
cash = 25000.0
[rebalancer]
round_lots = true
lot_size = 100
min_trade_value = 0
min_weight_change = 0
[costs.commission]
per_share = 0.01
minimum = 1
"""


def test_naive_round_lots_never_writes_an_order_file_that_borrows(tmp_path: Path,
                                                                   capsys) -> None:
    """Rounding every buy to the nearest 100 lot takes cash to -522 here (checked below
    from the unfunded run); the default order file honours cash, says so, and keeps
    whole lots."""
    paths = _files(tmp_path, NAIVE_LOTS)
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == 0
    printed = capsys.readouterr().out
    assert "note: the naive plan would take cash from 25,000.00 to -522.00" in printed
    rows = _orders(out)
    held, cash = _apply(rows)
    assert cash >= 0.0 and min(held.values()) >= 0
    assert all(float(r["quantity"]) % 100 == 0 for r in rows)
    assert [r["side"] for r in rows] == sorted(r["side"] for r in rows)[::-1]  # sells first
    # the unfunded plan, kept only on request for a margin account, does borrow
    margin = _files(tmp_path, NAIVE_LOTS.replace("[account]\n", "[account]\nmargin = true\n"))
    out2 = tmp_path / "margin.csv"
    assert _run(margin, out2) == 0
    assert _apply(_orders(out2))[1] == pytest.approx(-522.0)
    # and funding did not give away more than one lot per buy: cash left < cheapest lot
    assert cash < 100 * min(PX.values()) + 1e-9
    count("cli:documented_choice")


def test_band_without_funding_that_borrows_is_refused(tmp_path: Path, capsys) -> None:
    config = NAIVE_LOTS.replace("min_trade_value = 0\nmin_weight_change = 0\n",
                                'method = "band"\n') + "[band]\nwidth = 0.01\nfund = false\n"
    paths = _files(tmp_path, config)
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INFEASIBLE
    err = _error_line(capsys)
    assert "cash account cannot pay" in err and "cash (violated by" in err
    assert not out.exists()
    count("cli:bad_input")


# ------------------------------------------------------------------ empty targets
def test_header_only_targets_do_not_liquidate_the_book(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path, "", targets="ticker,weight\n")
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    err = _error_line(capsys)
    assert "targets.csv, line 1: no target row" in err and "--allow-empty-targets" in err
    assert not out.exists()
    # on purpose: every holding sold, nothing bought
    assert _run(paths, out, "--allow-empty-targets") == 0
    rows = _orders(out)
    assert {(r["ticker"], r["side"], float(r["quantity"])) for r in rows} == {
        ("AAA", "sell", 130.0), ("BBB", "sell", 50.0), ("CCC", "sell", 410.0)}
    count("cli:bad_input")


# ------------------------------------------------------------------ --out
def test_out_naming_a_folder(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path, "")
    folder = tmp_path / "orders"
    folder.mkdir()
    assert _run(paths, folder) == EXIT_INPUT
    assert f"{folder}: --out names a folder, not a file" in _error_line(capsys)
    assert list(folder.iterdir()) == []
    count("cli:bad_input")


def test_out_in_an_unwritable_folder(tmp_path: Path, capsys) -> None:
    if os.geteuid() == 0:  # root writes anywhere a mode bit says it cannot
        target = Path("/proc/rebalopt-orders.csv")
        if not Path("/proc").is_dir():
            pytest.skip("no read-only folder for root on this system")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "orders.csv"
    paths = _files(tmp_path, "")
    assert _run(paths, target) == EXIT_INPUT
    err = _error_line(capsys)
    assert str(target) in err and ("not writable" in err or "cannot write" in err), err
    assert not target.exists()
    count("cli:bad_input")


@pytest.mark.parametrize("which", ["holdings", "targets", "prices", "config"])
def test_out_equal_to_an_input_is_refused(tmp_path: Path, capsys, which) -> None:
    paths = _files(tmp_path, "[account]\ncash = 100.0\n")
    (tmp_path / "sub").mkdir()
    before = paths[which].read_text()
    spelled = tmp_path / "sub" / ".." / paths[which].name  # another spelling, same file
    assert _run(paths, spelled) == EXIT_INPUT
    assert "names an input file" in _error_line(capsys)
    assert paths[which].read_text() == before
    count("cli:bad_input")


def test_out_equal_to_the_risk_file_the_config_reads(tmp_path: Path, capsys) -> None:
    cov = tmp_path / "cov.csv"
    cov.write_text(",AAA,BBB,CCC,DDD\n" + "".join(
        f"{a}," + ",".join("0.04" if a == b else "0" for b in PX) + "\n" for a in PX))
    before = cov.read_text()
    paths = _files(tmp_path, OPTIMAL + '[risk]\nmodel = "covariance"\nfile = "cov.csv"\n')
    assert _run(paths, cov) == EXIT_INPUT
    assert "names an input file" in _error_line(capsys)
    assert cov.read_text() == before


# ------------------------------------------------------------------ risk files, semantics
def test_risk_file_with_a_text_cell(tmp_path: Path, capsys) -> None:
    (tmp_path / "cov.csv").write_text(
        ",AAA,BBB,CCC,DDD\nAAA,0.04,0,0,0\nBBB,0,0.04,x,0\nCCC,0,0,0.04,0\nDDD,0,0,0,0.04\n")
    paths = _files(tmp_path, OPTIMAL + '[risk]\nmodel = "covariance"\nfile = "cov.csv"\n')
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    err = _error_line(capsys)
    assert "cov.csv, line 3, column 'CCC': 'x' is not a number (row 'BBB')" in err
    assert "risk.file in config.toml" in err
    assert not out.exists()
    count("cli:bad_input")


def test_returns_file_with_a_text_cell(tmp_path: Path, capsys) -> None:
    rets = pd.DataFrame(np.random.default_rng(1).normal(0, 0.01, (30, 4)), columns=list(PX),
                        index=pd.bdate_range("2024-01-01", periods=30, name="date"))
    text = rets.to_csv().splitlines()
    cells = text[7].split(",")
    cells[2] = "n.a."  # line 8, column BBB
    text[7] = ",".join(cells)
    (tmp_path / "rets.csv").write_text("\n".join(text) + "\n")
    paths = _files(tmp_path, OPTIMAL + '[risk]\nmodel = "sample"\nreturns = "rets.csv"\n')
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    assert "rets.csv, line 8, column 'BBB': 'n.a.' is not a number" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(("section", "line", "key", "words"), [
    ("[constraints]\nmin_weight = 0.3\nmax_weight = 0.2\n", 6, "constraints.min_weight",
     "min_weight 0.3 is above max_weight 0.2"),
    ('[constraints]\nmax_weight = 0.5\ngroups = ["Utilities <= 0.1"]\n', 7,
     "constraints.groups", "group 'Utilities' has no asset"),
    ('[risk]\nmodel = "covariance"\nfile = "cov.csv"\n', 7, "risk.file",
     "asset 'DDD'"),
])
def test_semantic_config_errors_name_file_line_and_key(tmp_path: Path, capsys, section, line,
                                                       key, words) -> None:
    (tmp_path / "cov.csv").write_text(",AAA,BBB,CCC\nAAA,0.04,0,0\nBBB,0,0.04,0\nCCC,0,0,0.04\n")
    paths = _files(tmp_path, OPTIMAL + section)
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    err = _error_line(capsys)
    assert f"config.toml, line {line}, column '{key}'" in err and words in err, err
    assert not out.exists()
    count("cli:bad_input")


# ------------------------------------------------------------------ integers, solvers
def test_max_trades_must_be_an_integer(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path, OPTIMAL + "[optimal]\nmax_trades = 2.5\n")
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    assert ("config.toml, line 6, column 'optimal.max_trades': expected an integer, got 2.5"
            in _error_line(capsys))
    assert not out.exists()
    # 2 (or 2.0) is read as 2 and kept: at most 2 orders
    paths = _files(tmp_path, OPTIMAL + "[optimal]\nmax_trades = 2.0\n")
    assert _run(paths, out) == 0
    assert 1 <= len(_orders(out)) <= 2
    count("cli:bad_input")


@pytest.mark.parametrize(("solver", "key"), [
    ("options = { CLARABEL = { max_iterr = 50 } }", "solver.options.CLARABEL.max_iterr"),
    ('name = ["CLARABEL", "SCS"]\noptions = { SCS = { max_itrs = 50 } }',
     "solver.options.SCS.max_itrs"),
    ('name = ["CLARABEL", "OSQP"]\noptions = { OSQP = { max_iter = "many" } }',
     "solver.options.OSQP.max_iter"),
    ('options = { OSQP = { max_iter = 50 } }', "solver.options.OSQP"),
    ('name = ["CLARABEL", "GUROBI_NOT_HERE"]', "solver.name"),
])
def test_solver_mistakes_are_errors_not_a_fallback(tmp_path: Path, capsys, solver,
                                                   key) -> None:
    """Was: a misspelt Clarabel option made Clarabel fail and SCS answer, exit 0."""
    paths = _files(tmp_path, OPTIMAL + "[solver]\n" + solver + "\n")
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == EXIT_INPUT
    err = _error_line(capsys)
    assert f"column '{key}'" in err, err
    assert not out.exists()
    count("cli:bad_input")


def test_valid_solver_options_reach_the_solver(tmp_path: Path, capsys) -> None:
    """Oracle for the check above: a correct option is accepted and used (Clarabel
    stopped after 1 iteration cannot be the answering solver)."""
    paths = _files(tmp_path, OPTIMAL + "[solver]\noptions = { CLARABEL = { max_iter = 1 } }\n")
    out = tmp_path / "orders.csv"
    assert _run(paths, out) == 0
    assert "solver: SCS" in capsys.readouterr().out
    paths = _files(tmp_path, OPTIMAL + "[solver]\noptions = { CLARABEL = { max_iter = 200 } }\n")
    assert _run(paths, out) == 0
    assert "solver: CLARABEL" in capsys.readouterr().out


# ------------------------------------------------------------------ backtest --compare
def _panel(tmp: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    tickers = ["AAA", "BBB", "CCC"]
    dates = pd.bdate_range("2021-01-04", periods=45)
    px = np.array([20.0, 35.0, 50.0]) * np.exp(np.cumsum(rng.normal(0, 0.015, (45, 3)), 0))
    rows = [f"{d:%Y-%m-%d},{t},{px[i, j]:.4f},{1e6:.0f}" for i, d in enumerate(dates)
            for j, t in enumerate(tickers)]
    panel = tmp / "panel.csv"
    panel.write_text("date,ticker,close,volume\n" + "\n".join(rows) + "\n")
    tilts = [(0.5, 0.3, 0.2), (0.2, 0.3, 0.5)]
    targets = tmp / "targets.csv"
    targets.write_text("date,AAA,BBB,CCC\n" + "".join(
        f"{dates[k]:%Y-%m-%d},{','.join(map(str, tilts[n % 2]))}\n"
        for n, k in enumerate((25, 40))))
    return panel, targets


def test_backtest_compare_without_config_charges_documented_costs(tmp_path: Path,
                                                                  capsys) -> None:
    """Was: every policy at zero cost, and savings printed. Now the default costs are
    charged, and the output says which."""
    panel, targets = _panel(tmp_path)
    report = tmp_path / "report.html"
    code = main(["backtest", "--prices", str(panel), "--targets", str(targets), "--compare",
                 "--risk-aversions", "100", "--out", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: no [costs] in the config: every run is charged the default costs" in out
    assert "commission 0.005/share" in out and "market impact" in out
    # the naive runs paid something (the table's cost column is not all zero)
    naive = [ln for ln in out.splitlines() if ln.startswith("naive")]
    assert naive and all(float(ln.split()[-4].replace(",", "")) > 0 for ln in naive), naive
    assert report.exists()
    count("cli:documented_choice")


@pytest.mark.parametrize("cash", ["nan", "inf"])
def test_cash_flag_must_be_finite(tmp_path: Path, capsys, cash) -> None:
    paths = _files(tmp_path, "")
    out = tmp_path / "orders.csv"
    assert _run(paths, out, "--cash", cash) == EXIT_INPUT
    assert "[field '--cash'] must be a finite number" in _error_line(capsys)
    assert not out.exists()
    count("cli:bad_input")
