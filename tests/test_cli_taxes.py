"""`rebalopt rebalance --lots CSV` with a [costs.tax] term: the tax-aware plan, the lots
each sell relieves, gains and tax to the cent (hand-computed), and typed errors.

Book (plan dated 2024-06-03, the prices file's date): cash 1000, AAA 100 @ 10, BBB 50 @
20, CCC @ 5; equity 3000; targets 30% each: sell 10 AAA, sell 5 BBB, buy 180 CCC (risk
aversion 1e6 over a year: one share off target costs far more than any tax, so the
optimizer trades exactly these shares and the tax term only chooses the lots).
Rates: short-term 40%, long-term 20%, a loss valued at its own term's rate.

AAA lots (tax per share sold = rate x gain):
  a1  40 @ 6.00, 2020-01-15, long,  gain 4.00 -> 0.80
  a2   6 @ 9.50, 2024-01-10, short, gain 0.50 -> 0.20
  a3  54 @ 7.50, 2023-09-01, short, gain 2.50 -> 1.00
  min-tax: 6 from a2 (gain 3.00, tax 1.20), then 4 from a1 (gain 16.00, tax 3.20).
  (FIFO would sell 10 of a1: gain 40.00, tax 8.00.)
BBB lots:
  b1  20 @ 15.00, 2023-06-03, short (sold on the anniversary), gain 5.00 -> 2.00
  b2  30 @ 22.00, 2023-06-02, long, loss 2.00 -> -0.40 (harvested: BBB is not bought)
  min-tax: 5 from b2 (gain -10.00, tax -2.00).
Totals: gain 9.00 (short 3.00, long 6.00), tax 2.40.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rebalopt.cli import EXIT_INPUT, main

HOLDINGS = "ticker,shares\nAAA,100\nBBB,50\n"
TARGETS = "ticker,weight\nAAA,0.3\nBBB,0.3\nCCC,0.3\n"
PRICES = "date,ticker,price\n2024-06-03,AAA,10\n2024-06-03,BBB,20\n2024-06-03,CCC,5\n"
LOTS = """\
asset,lot_id,shares,basis,acquired
AAA,a1,40,6.00,2020-01-15
AAA,a2,6,9.50,2024-01-10
AAA,a3,54,7.50,2023-09-01
BBB,b1,20,15.00,2023-06-03
BBB,b2,30,22.00,2023-06-02
"""
OPTIMAL = """\
[account]
cash = 1000.0

[rebalancer]
method = "optimal"

[optimal]
risk_aversion = {gamma}
horizon = 1.0

[costs.spread]
half_spread_bps = 5
"""
TAX = """
[costs.tax]
short_term = 0.40
long_term = 0.20
"""


def _run(tmp: Path, *extra: str, config: str, lots: str | None = LOTS,
         holdings: str = HOLDINGS) -> int:
    for name, text in (("h.csv", holdings), ("t.csv", TARGETS), ("p.csv", PRICES),
                       ("c.toml", config), ("lots.csv", lots)):
        if text is not None:
            (tmp / name).write_text(text)
    lot_args = ["--lots", str(tmp / "lots.csv")] if lots is not None else []
    return main(["rebalance", "--holdings", str(tmp / "h.csv"), "--targets", str(tmp / "t.csv"),
                 "--prices", str(tmp / "p.csv"), "--config", str(tmp / "c.toml"), *lot_args,
                 *extra])


def _orders(path: Path) -> dict[str, tuple[str, float]]:
    with path.open(newline="") as fh:
        return {r["ticker"]: (r["side"], float(r["quantity"])) for r in csv.DictReader(fh)}


def test_lots_sold_gains_and_tax_to_the_cent(tmp_path: Path, capsys) -> None:
    out = tmp_path / "orders.csv"
    assert _run(tmp_path, "--preview", "--out", str(out),
                config=OPTIMAL.format(gamma=1e6) + TAX) == 0
    assert _orders(out) == {"AAA": ("sell", 10), "BBB": ("sell", 5), "CCC": ("buy", 180)}
    printed = capsys.readouterr().out
    assert ("tax: realized gain 9.00 (short-term 3.00, long-term 6.00), tax 2.40 at 40.00% "
            "short / 20.00% long") in printed
    assert "losses harvested (not bought): BBB" in printed
    table = printed.split("lots sold:\n", 1)[1].splitlines()
    assert table[0].split() == ["asset", "lot_id", "shares", "basis", "acquired", "term",
                                "gain", "tax"]
    rows = sorted(tuple(line.split()) for line in table[1:4])
    assert rows == [
        ("AAA", "a1", "4.00", "6.00", "2020-01-15", "long", "16.00", "3.20"),
        ("AAA", "a2", "6.00", "9.50", "2024-01-10", "short", "3.00", "1.20"),
        ("BBB", "b2", "5.00", "22.00", "2023-06-02", "long", "-10.00", "-2.00"),
    ]
    assert "plan dated 2024-06-03 (p.csv)" in printed


def test_the_tax_term_changes_the_plan(tmp_path: Path) -> None:
    """A large long-term gain (AAA all at basis 1: tax 1.80 a share) at a modest risk
    aversion: the tax-aware plan sells less AAA than the same config without the tax."""
    lots = "asset,shares,basis,acquired\nAAA,100,1.00,2015-01-02\nBBB,50,20,2024-05-01\n"
    out = tmp_path / "orders.csv"
    assert _run(tmp_path, "--out", str(out), config=OPTIMAL.format(gamma=10.0), lots=None) == 0
    plain = _orders(out)["AAA"]
    assert _run(tmp_path, "--out", str(out), config=OPTIMAL.format(gamma=10.0) + TAX,
                lots=lots) == 0
    taxed = _orders(out).get("AAA", ("sell", 0.0))
    assert plain == ("sell", 10) and taxed[0] == "sell" and taxed[1] < plain[1]


@pytest.mark.parametrize(("kwargs", "fragments"), [
    # holdings must equal the sum of the lots: asset, lots file line and holdings line
    ({"lots": LOTS.replace("AAA,a3,54", "AAA,a3,44")},
     ["lots.csv, line 2, column 'shares'", "(ticker 'AAA')", ("holding 100 shares differs from "
      "the sum of its lots 90"), "(h.csv line 2)", "(lots: a1=40, a3=44, a2=6)"]),
    ({"lots": LOTS + "ZZZ,z1,5,1.0,2020-01-01\n"},
     ["lots.csv, line 7", "(ticker 'ZZZ')", "lots for an asset that is not held"]),
    ({"holdings": HOLDINGS + "CCC,7\n"},
     ["h.csv, line 4", "(ticker 'CCC')", "lots.csv has no lot for it"]),
    ({"lots": LOTS.replace("2020-01-15", "someday")},
     ["lots.csv, line 2, column 'acquired'", "(ticker 'AAA')", "is not a date"]),
    ({"lots": None}, ["field '--lots'", "[costs.tax] needs the tax lots"]),
    ({"config": OPTIMAL.format(gamma=1e6)}, ["field '--lots'", "add a [costs.tax] table"]),
    ({"config": OPTIMAL.format(gamma=1e6) + TAX.replace("long_term = 0.20\n", "")},
     ["c.toml, line 14, column 'costs.tax'", "needs long_term"]),
    ({"config": OPTIMAL.format(gamma=1e6) + TAX.replace("0.40", "1.5")},
     ["column 'costs.tax.short_term'", "[0, 1]"]),
    ({"config": "[rebalancer]\nmethod = \"naive\"\n" + TAX},
     ["column 'costs.tax'", "needs method = \"optimal\""]),
])
def test_lot_and_tax_errors_exit_2_and_write_nothing(tmp_path: Path, capsys, kwargs,
                                                     fragments) -> None:
    args = {"config": OPTIMAL.format(gamma=1e6) + TAX, **kwargs}
    out = tmp_path / "orders.csv"
    assert _run(tmp_path, "--out", str(out), **args) == EXIT_INPUT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()


def test_lower_case_tickers_in_the_lots_file_are_folded(tmp_path: Path, capsys) -> None:
    lots = LOTS.replace("BBB,b1", "bbb,b1").replace("BBB,b2", "bbb,b2")
    assert _run(tmp_path, "--preview", config=OPTIMAL.format(gamma=1e6) + TAX, lots=lots) == 0
    printed = capsys.readouterr().out
    assert "lots.csv: tickers upper-cased: bbb (line 5)" in printed
    assert "tax 2.40" in printed


def test_periods_with_a_tax_term_is_an_error(tmp_path: Path, capsys) -> None:
    """The multi-period planner has no tax block: the tax would be ignored."""
    config = OPTIMAL.format(gamma=1e6).replace('"optimal"\n', '"optimal"\nfractional = true\n')
    assert _run(tmp_path, "--preview", "--periods", "2", config=config + TAX) == EXIT_INPUT
    assert "column 'costs.tax': --periods does not plan with tax lots" in capsys.readouterr().err


def test_one_ticker_in_two_cases_in_the_lots_file(tmp_path: Path, capsys) -> None:
    """'BBB' and 'bbb' rows without lot ids were read as two assets, each with a lot '1'
    ... and merged into one: a false 'duplicate lot id' error pointing at the wrong
    column. Now one asset, its lots numbered together; oracle: the same plan and tax
    as the file written in one case."""
    lots = LOTS.replace("BBB,b2", "bbb,b2")
    lots = "\n".join(",".join(c for k, c in enumerate(line.split(",")) if k != 1)
                     for line in lots.splitlines()) + "\n"  # no lot_id column
    assert "lot_id" not in lots.splitlines()[0] and "bbb," in lots
    assert _run(tmp_path, "--preview", config=OPTIMAL.format(gamma=1e6) + TAX, lots=lots) == 0
    mixed = capsys.readouterr().out
    assert _run(tmp_path, "--preview", config=OPTIMAL.format(gamma=1e6) + TAX,
                lots=lots.replace("bbb,", "BBB,")) == 0
    upper = capsys.readouterr().out
    assert "tickers upper-cased: bbb" in mixed

    def plan_lines(text: str) -> list[str]:
        return [ln for ln in text.splitlines()
                if not ln.startswith("note:") and "solve_time" not in ln]

    assert "realized gain" in upper and "BBB      2" in upper  # bbb's lot sold, numbered 2
    assert plan_lines(mixed) == plan_lines(upper)


def test_as_of_with_a_time_zone_is_the_date_as_written(tmp_path: Path, capsys) -> None:
    # a time zone in --as-of made the prices history's comparison raise a bare
    # TypeError; it is read as the files' dates are, at the date written (2024-06-03,
    # though 23:00 at -05:00 is 4 June in UTC): the hand-computed plan of
    # test_lots_sold_gains_and_tax_to_the_cent
    out = tmp_path / "orders.csv"
    assert _run(tmp_path, "--out", str(out), "--as-of", "2024-06-03T23:00:00-05:00",
                config=OPTIMAL.format(gamma=1e6) + TAX) == 0
    assert _orders(out) == {"AAA": ("sell", 10), "BBB": ("sell", 5), "CCC": ("buy", 180)}
    printed = capsys.readouterr().out
    assert ("tax: realized gain 9.00 (short-term 3.00, long-term 6.00), tax 2.40 at 40.00% "
            "short / 20.00% long") in printed
    assert "plan dated 2024-06-03 (--as-of)" in printed


def test_a_zero_target_without_lots_in_a_whole_share_plan(tmp_path: Path, capsys) -> None:
    # DDD (not held, target 0): the whole-share search priced "sell 1 DDD" (a short
    # sale it then discards) with the tax term, which raised "sells ... its lots hold
    # 0" and failed the plan; now the same hand-computed plan as without DDD
    out = tmp_path / "orders.csv"
    (tmp_path / "t.csv").write_text(TARGETS + "DDD,0\n")
    prices = tmp_path / "p2.csv"
    prices.write_text(PRICES + "2024-06-03,DDD,7\n")
    for name, text in (("h.csv", HOLDINGS), ("c.toml", OPTIMAL.format(gamma=1e6) + TAX),
                       ("lots.csv", LOTS)):
        (tmp_path / name).write_text(text)
    assert main(["rebalance", "--holdings", str(tmp_path / "h.csv"), "--targets",
                 str(tmp_path / "t.csv"), "--prices", str(prices), "--config",
                 str(tmp_path / "c.toml"), "--lots", str(tmp_path / "lots.csv"),
                 "--out", str(out)]) == 0
    assert _orders(out) == {"AAA": ("sell", 10), "BBB": ("sell", 5), "CCC": ("buy", 180)}
    assert ("tax: realized gain 9.00 (short-term 3.00, long-term 6.00), tax 2.40 at 40.00% "
            "short / 20.00% long") in capsys.readouterr().out
