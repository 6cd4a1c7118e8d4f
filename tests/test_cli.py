"""`rebalopt rebalance` on small CSV files: a hand-checked order file, and every malformed
input gives one line naming file/line/column, a non-zero exit, and no output file."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from rebalopt.cli import EXIT_INPUT, main

HOLDINGS = "ticker,shares\nAAA,100\nBBB,50\n"
TARGETS = "ticker,weight\nAAA,0.3\nBBB,0.3\nCCC,0.3\n"
PRICES = "ticker,price\nAAA,10\nBBB,20\nCCC,5\n"
CONFIG = """\
[account]
cash = 1000.0

[rebalancer]
min_weight_change = 0.0
min_trade_value = 0

[costs.commission]
per_share = 0.01
minimum = 1.0

[costs.spread]
half_spread_bps = 5
"""


def _files(tmp: Path, **overrides: str) -> dict[str, Path]:
    contents = {"holdings": HOLDINGS, "targets": TARGETS, "prices": PRICES, "config": CONFIG}
    contents.update(overrides)
    paths = {}
    for name, text in contents.items():
        p = tmp / (f"{name}.toml" if name == "config" else f"{name}.csv")
        p.write_text(text)
        paths[name] = p
    return paths


def _argv(paths: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["rebalance", "--holdings", str(paths["holdings"]), "--targets", str(paths["targets"]),
            "--prices", str(paths["prices"]), "--config", str(paths["config"]), "--out", str(out),
            *extra]


def _read_orders(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_order_file_matches_hand_computation(tmp_path: Path, capsys) -> None:
    """Equity = 1000 cash + 100*10 + 50*20 = 3000; 30% each = 900 currency.
    AAA 1000 -> 900: sell 10; BBB 1000 -> 900: sell 5; CCC 0 -> 900: buy 180.
    Commission max(0.01 * shares, 1): 1, 1, 1.80. Spread 5 bps of notional: 0.05, 0.05, 0.45."""
    paths = _files(tmp_path)
    out = tmp_path / "orders.csv"
    assert main(_argv(paths, out)) == 0
    rows = _read_orders(out)
    assert list(rows[0]) == ["ticker", "side", "quantity", "reference_price", "expected_cost"]
    got = [(r["ticker"], r["side"], float(r["quantity"]), float(r["reference_price"]),
            float(r["expected_cost"])) for r in rows]
    assert got == [
        ("AAA", "sell", 10.0, 10.0, pytest.approx(1.05)),
        ("BBB", "sell", 5.0, 20.0, pytest.approx(1.05)),
        ("CCC", "buy", 180.0, 5.0, pytest.approx(2.25)),
    ]
    printed = capsys.readouterr().out
    assert "3 trades" in printed and "expected cost 4.35" in printed
    assert "wrote 3 orders" in printed
    assert not list(tmp_path.glob(".orders.csv.*"))  # no temp file left behind


def test_cash_flag_overrides_config(tmp_path: Path) -> None:
    """With --cash 3000 equity is 5000: 1500 each. AAA sells 0? 1000 -> 1500: buy 50."""
    paths = _files(tmp_path)
    out = tmp_path / "orders.csv"
    assert main(_argv(paths, out, "--cash", "3000")) == 0
    got = {r["ticker"]: (r["side"], float(r["quantity"])) for r in _read_orders(out)}
    assert got == {"AAA": ("buy", 50.0), "BBB": ("buy", 25.0), "CCC": ("buy", 300.0)}


def test_preview_without_out_writes_nothing(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path)
    argv = _argv(paths, tmp_path / "x.csv", "--preview")
    argv = argv[: argv.index("--out")] + ["--preview"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "target_weight" in printed and "CCC" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["holdings.csv", "targets.csv", "prices.csv", "config.toml"])


def test_no_trades_writes_header_only(tmp_path: Path) -> None:
    paths = _files(tmp_path, targets="ticker,weight\nAAA,0.33333333333\nBBB,0.33333333333\n",
                   config="[account]\ncash = 1000.0\n")
    out = tmp_path / "orders.csv"
    assert main(_argv(paths, out)) == 0
    assert out.read_text().strip() == "ticker,side,quantity,reference_price,expected_cost"


MALFORMED = [
    # (file overrides, expected fragments of the one-line error)
    ({"holdings": "ticker,amount\nAAA,100\n"}, ["holdings.csv", "line 1", "column 'shares'",
                                             "missing required column"]),
    ({"prices": "name,price\nAAA,10\n"}, ["prices.csv", "line 1", "column 'ticker'"]),
    ({"targets": "ticker,weight\nAAA,0.3\nZZZ,0.3\n"}, ["targets.csv", "line 3",
                                                         "column 'ticker'", "'ZZZ'",
                                                         "no row in prices.csv"]),
    ({"holdings": "ticker,shares\nAAA,100\nQQQ,5\n"}, ["holdings.csv", "line 3",
                                                        "column 'ticker'", "'QQQ'"]),
    ({"prices": "ticker,price\nAAA,10\nBBB,nan\nCCC,5\n"}, ["prices.csv", "line 3",
                                                             "column 'price'", "BBB"]),
    ({"prices": "ticker,price\nAAA,10\nBBB,\nCCC,5\n"}, ["prices.csv", "line 3",
                                                          "column 'price'"]),
    ({"prices": "ticker,price\nAAA,10\nBBB,-2\nCCC,5\n"}, ["prices.csv", "line 3",
                                                            "must be > 0"]),
    ({"holdings": "ticker,shares\nAAA,100\nBBB,50\nAAA,7\n"}, ["holdings.csv", "line 4",
                                                                "column 'ticker'", "duplicate",
                                                                "first on line 2"]),
    ({"targets": "ticker,weight\nAAA,0.3\nAAA,0.3\n"}, ["targets.csv", "line 3", "duplicate"]),
    ({"prices": "ticker,price\nAAA,10\nBBB,20\nCCC,5\nBBB,21\n"}, ["prices.csv", "line 5",
                                                                    "duplicate"]),
    ({"holdings": "ticker,shares\nAAA,ten\n"}, ["holdings.csv", "line 2", "column 'shares'",
                                                "'ten' is not a number"]),
    ({"holdings": "ticker,shares\nAAA,100,3\n"}, ["holdings.csv", "line 2", "3 cells"]),
    ({"targets": ""}, ["targets.csv", "empty file"]),
    ({"config": "[costs.spread\nhalf_spread_bps = 1\n"}, ["config.toml", "line 1", "column 14",
                                                          "invalid TOML"]),
    ({"config": "[account]\ncash = 1\n\n[costs.spread]\nhalf_spred_bps = 1\n"},
     ["config.toml", "line 5", "costs.spread.half_spred_bps", "unknown key"]),
    ({"config": "[rebalancer]\nmethod = 'greedy'\n"}, ["config.toml", "line 2",
                                                       "rebalancer.method"]),
    ({"config": "[costs.impact]\ncoef = 1.0\n"}, ["prices.csv", "column 'volatility'",
                                                  "AAA"]),
]


@pytest.mark.parametrize(("overrides", "fragments"), MALFORMED)
def test_malformed_input_one_line_error_and_no_output(tmp_path: Path, capsys, overrides,
                                                      fragments) -> None:
    paths = _files(tmp_path, **overrides)
    out = tmp_path / "orders.csv"
    out.write_text("previous run\n")  # an earlier order file must survive a failed run
    code = main(_argv(paths, out))
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rebalopt: error: ")
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert out.read_text() == "previous run\n"
    assert not list(tmp_path.glob(".orders.csv.*"))


def test_missing_input_file(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path)
    paths["prices"] = tmp_path / "nope.csv"
    out = tmp_path / "orders.csv"
    assert main(_argv(paths, out)) == EXIT_INPUT
    assert "nope.csv: file not found" in capsys.readouterr().err
    assert not out.exists()


def test_failure_while_writing_leaves_no_file(tmp_path: Path, monkeypatch, capsys) -> None:
    """Atomic write: an OS error half-way through the order file leaves nothing, and is
    one line naming the file with exit 2 (no traceback)."""
    from rebalopt.adapters import files

    paths = _files(tmp_path)
    out = tmp_path / "orders.csv"
    calls = {"n": 0}

    def boom(x: float) -> str:
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError("disk full")
        return str(x)

    monkeypatch.setattr(files, "_number", boom)
    assert main(_argv(paths, out)) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rebalopt: error: {out}: cannot write: disk full"]
    assert not out.exists()
    assert list(tmp_path.iterdir()) and not list(tmp_path.glob(".orders*"))


def test_out_without_folder_is_an_input_error(tmp_path: Path, capsys) -> None:
    paths = _files(tmp_path)
    assert main(_argv(paths, tmp_path / "missing" / "o.csv")) == EXIT_INPUT
    assert "output folder does not exist" in capsys.readouterr().err


def test_console_entry_point_runs(tmp_path: Path) -> None:
    """The installed module runs as a process; the exit code and stderr are real."""
    paths = _files(tmp_path, targets="ticker,weight\nAAA,0.3\nZZZ,0.1\n")
    out = tmp_path / "orders.csv"
    proc = subprocess.run([sys.executable, "-m", "rebalopt.cli", *_argv(paths, out)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_INPUT
    assert proc.stderr.count("\n") == 1 and "targets.csv, line 3" in proc.stderr
    assert not out.exists()


def test_demo_writes_the_report_it_prints(capsys, tmp_path: Path) -> None:
    pytest.importorskip("skfolio")
    assert main(["demo", "--quick", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    reports = list(tmp_path.glob("*.html"))
    assert len(reports) == 1
    assert f"report written to {reports[0].resolve()}" in out
    assert "<table" in reports[0].read_text()


OPT_PRICES = ("ticker,price,sector\nAAA,10,Tech\nBBB,20,Tech\nCCC,5,Energy\nDDD,40,Health\n")
OPT_TARGETS = "ticker,weight\nAAA,0.25\nBBB,0.25\nCCC,0.25\nDDD,0.25\n"
OPT_CONFIG = """\
[account]
cash = 1000.0
[rebalancer]
method = "optimal"
[optimal]
risk_aversion = 1000.0
[constraints]
groups = ["Tech <= 0.40"]
max_weight = 0.30
[costs.spread]
half_spread_bps = 5
"""


def test_optimal_with_sector_bound_order_file_obeys_constraints(tmp_path: Path) -> None:
    """Independent check from the files alone: apply the order file to the holdings and
    verify whole shares, cash >= 0 after costs, the sector cap and the weight cap."""
    pytest.importorskip("rebalopt.rebalance.optimal")
    paths = _files(tmp_path, prices=OPT_PRICES, targets=OPT_TARGETS, config=OPT_CONFIG)
    out = tmp_path / "orders.csv"
    assert main(_argv(paths, out)) == 0
    px = {"AAA": 10.0, "BBB": 20.0, "CCC": 5.0, "DDD": 40.0}
    sector = {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "DDD": "Health"}
    held = {"AAA": 100.0, "BBB": 50.0, "CCC": 0.0, "DDD": 0.0}
    cash = 1000.0
    equity = cash + sum(held[a] * px[a] for a in held)
    rows = _read_orders(out)
    assert rows, "expected trades: the book is far from the targets"
    for r in rows:
        q = float(r["quantity"])
        assert q == int(q) and q > 0
        sign = 1.0 if r["side"] == "buy" else -1.0
        held[r["ticker"]] += sign * q
        cash -= sign * q * float(r["reference_price"]) + float(r["expected_cost"])
        assert float(r["expected_cost"]) == pytest.approx(q * px[r["ticker"]] * 5e-4)
    assert cash >= -1e-9
    weights = {a: held[a] * px[a] / equity for a in held}
    assert all(h >= 0 for h in held.values())
    assert max(weights.values()) <= 0.30 + 1e-6
    tech = sum(w for a, w in weights.items() if sector[a] == "Tech")
    assert tech <= 0.40 + 1e-6
    # and the optimizer did move towards the targets: the tracking distance shrank
    before = {"AAA": 1000 / equity, "BBB": 1000 / equity, "CCC": 0.0, "DDD": 0.0}
    dist = lambda w: sum((w[a] - 0.25) ** 2 for a in w)
    assert dist(weights) < 0.5 * dist(before)


def test_optimal_infeasible_exit_code_and_no_file(tmp_path: Path, capsys) -> None:
    pytest.importorskip("rebalopt.rebalance.optimal")
    from rebalopt.cli import EXIT_INFEASIBLE

    config = OPT_CONFIG.replace('groups = ["Tech <= 0.40"]',
                                'groups = ["Tech <= 0.10", "Health >= 0.95"]')
    paths = _files(tmp_path, prices=OPT_PRICES, targets=OPT_TARGETS, config=config)
    out = tmp_path / "orders.csv"
    code = main(_argv(paths, out))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_INFEASIBLE
    assert len(err) == 1 and err[0].startswith("rebalopt: error: ")
    assert not out.exists()
