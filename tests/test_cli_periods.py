"""`rebalopt rebalance --periods N --schedule CSV`: the multi-period plan from the command
line. N = 1 is the single-period plan (the same order file, byte for byte); the schedule
file's first period is the order file, its cash column follows the accounting identity,
every period keeps the limits; options the multi-period planner would ignore are errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from rebalopt.cli import EXIT_INPUT, main

HOLDINGS = "ticker,shares\nAAA,100\nBBB,50\n"
TARGETS = "ticker,weight\nAAA,0.3\nBBB,0.3\nCCC,0.3\n"
PRICES = "ticker,price,adv,volatility\nAAA,10,2000,0.3\nBBB,20,1000,0.25\nCCC,5,5000,0.4\n"
PRICE = {"AAA": 10.0, "BBB": 20.0, "CCC": 5.0}
HELD = {"AAA": 100.0, "BBB": 50.0, "CCC": 0.0}
CONFIG = """\
[account]
cash = 1000.0

[rebalancer]
method = "optimal"
fractional = true

[optimal]
risk_aversion = 50.0
horizon = 0.1

[costs.spread]
half_spread_bps = 5

[costs.impact]
coef = 1.0

[constraints]
max_weight = 0.32
"""


def _run(tmp: Path, *extra: str, config: str = CONFIG) -> int:
    for name, text in (("h.csv", HOLDINGS), ("t.csv", TARGETS), ("p.csv", PRICES),
                       ("c.toml", config)):
        (tmp / name).write_text(text)
    return main(["rebalance", "--holdings", str(tmp / "h.csv"), "--targets", str(tmp / "t.csv"),
                 "--prices", str(tmp / "p.csv"), "--config", str(tmp / "c.toml"), *extra])


def _signed(path: Path) -> dict[str, float]:
    with path.open(newline="") as fh:
        return {r["ticker"]: float(r["quantity"]) * (1 if r["side"] == "buy" else -1)
                for r in csv.DictReader(fh)}


def test_one_period_is_the_single_period_plan(tmp_path: Path) -> None:
    single, multi = tmp_path / "single.csv", tmp_path / "multi.csv"
    assert _run(tmp_path, "--out", str(single)) == 0
    assert _run(tmp_path, "--out", str(multi), "--periods", "1") == 0
    assert multi.read_bytes() == single.read_bytes()
    assert len(_signed(single)) == 3


def test_schedule_first_period_is_the_orders_and_cash_adds_up(tmp_path: Path, capsys) -> None:
    out, sched = tmp_path / "orders.csv", tmp_path / "schedule.csv"
    assert _run(tmp_path, "--out", str(out), "--periods", "5", "--schedule", str(sched)) == 0
    printed = capsys.readouterr().out
    assert "schedule: 5 periods of 5.04 trading days" in printed
    with sched.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["period", "AAA", "BBB", "CCC", "expected_cost", "cash",
                             "tracking_error"]
    assert [int(r["period"]) for r in rows] == [1, 2, 3, 4, 5]
    first = _signed(out)
    assert {t: float(rows[0][t]) for t in first} == pytest.approx(first, rel=1e-9)
    cash, held = 1000.0, dict(HELD)
    equity = 1000.0 + sum(HELD[t] * PRICE[t] for t in PRICE)
    for r in rows:  # cash_t = cash_{t-1} - traded value - expected cost (currency)
        cash -= sum(float(r[t]) * PRICE[t] for t in PRICE) + float(r["expected_cost"])
        assert float(r["cash"]) == pytest.approx(cash, abs=1e-6)
        for t, price in PRICE.items():  # long only and max_weight 0.32 in every period
            held[t] += float(r[t])
            assert held[t] >= -1e-6 and held[t] * price / equity <= 0.32 + 1e-6
    # spreading the trade: the first period trades less than the single-period plan
    single = tmp_path / "single.csv"
    assert _run(tmp_path, "--out", str(single)) == 0
    assert abs(first["CCC"]) < abs(_signed(single)["CCC"])


NAIVE = "[account]\ncash = 1000.0\n"


@pytest.mark.parametrize(("extra", "config", "fragment"), [
    (("--periods", "0"), CONFIG, "field '--periods'] must be >= 1"),
    (("--schedule", "s.csv"), CONFIG, "field '--schedule'] the schedule is a multi-period"),
    (("--periods", "3"), NAIVE, ("c.toml, column 'rebalancer.method': --periods plans with the "
     "multi-period optimizer; method = 'naive' would ignore it")),
    (("--periods", "3"), CONFIG.replace("fractional = true\n", ""),
     "column 'rebalancer.fractional': --periods plans a schedule in fractional shares"),
    (("--periods", "3"), CONFIG + '\n[solver]\nname = ["SCS"]\n',
     "line 22, column 'solver.name': --periods solves with CLARABEL only"),
    (("--periods", "3"), CONFIG.replace("horizon = 0.1", "horizon = 0.1\nmax_trades = 2"),
     "column 'optimal.max_trades': max_trades needs whole shares"),
])
def test_options_the_planner_would_ignore_are_errors(tmp_path: Path, capsys, extra, config,
                                                     fragment) -> None:
    out = tmp_path / "orders.csv"
    assert _run(tmp_path, "--out", str(out), *extra, config=config) == EXIT_INPUT
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "s.csv").exists()


def test_periods_without_config_names_the_flag(tmp_path: Path, capsys) -> None:
    for name, text in (("h.csv", HOLDINGS), ("t.csv", TARGETS), ("p.csv", PRICES)):
        (tmp_path / name).write_text(text)
    assert main(["rebalance", "--holdings", str(tmp_path / "h.csv"), "--targets",
                 str(tmp_path / "t.csv"), "--prices", str(tmp_path / "p.csv"), "--preview",
                 "--periods", "2"]) == EXIT_INPUT
    assert "field '--periods'] plans with the multi-period optimizer" in capsys.readouterr().err


def _schedule(tmp_path: Path, config: str, periods: str = "3") -> list[dict[str, str]]:
    out, sched = tmp_path / "orders.csv", tmp_path / "schedule.csv"
    assert _run(tmp_path, "--out", str(out), "--periods", periods, "--schedule", str(sched),
                config=config) == 0
    with sched.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_multiperiod_section_terminal_target_reaches_the_targets(tmp_path: Path) -> None:
    """``[multiperiod] terminal = "target"``: the last period's weights are the targets
    (0.3 each, in fractions of the starting equity, as the planner's weights are)."""
    rows = _schedule(tmp_path, CONFIG + '\n[multiperiod]\nterminal = "target"\n')
    held = dict(HELD)
    for r in rows:
        for t in PRICE:
            held[t] += float(r[t])
    equity = 1000.0 + sum(HELD[t] * PRICE[t] for t in PRICE)
    assert {t: held[t] * PRICE[t] / equity for t in PRICE} == pytest.approx(
        dict.fromkeys(PRICE, 0.3), abs=1e-6)
    plain = _schedule(tmp_path, CONFIG)  # without it the schedule stops short of them
    last = {t: HELD[t] + sum(float(r[t]) for r in plain) for t in PRICE}
    assert max(abs(last[t] * PRICE[t] / equity - 0.3) for t in PRICE) > 1e-3


def test_multiperiod_section_cost_in_tracking_reaches_the_planner(tmp_path: Path) -> None:
    with_cost = _schedule(tmp_path, CONFIG + "\n[multiperiod]\ncost_in_tracking = true\n")
    plain = _schedule(tmp_path, CONFIG)
    assert max(abs(float(a[t]) - float(b[t])) for a, b in zip(with_cost, plain)
               for t in PRICE) > 1e-6


@pytest.mark.parametrize(("extra", "section", "fragment"), [
    ((), "[multiperiod]\ncost_in_tracking = true\n",
     "column 'multiperiod': is read only with --periods"),
    (("--periods", "3"), "[multiperiod]\ncost_in_tracking = 1\n",
     "column 'multiperiod.cost_in_tracking': must be true or false"),
    (("--periods", "3"), "[multiperiod]\nterminal = -0.1\n",
     "column 'multiperiod.terminal': must be \"target\" or a band >= 0"),
    (("--periods", "3"), "[multiperiod]\nterminal = \"end\"\n",
     "column 'multiperiod.terminal': expected a number"),
    (("--periods", "3"), "[multiperiod]\nhorizon = 5\n", "multiperiod.horizon"),
])
def test_multiperiod_section_errors_name_the_key(tmp_path: Path, capsys, extra, section,
                                                 fragment) -> None:
    out = tmp_path / "orders.csv"
    assert _run(tmp_path, "--out", str(out), *extra, config=CONFIG + "\n" + section) == EXIT_INPUT
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("ticker", ["cash", "expected_cost", "tracking_error"])
def test_a_ticker_named_like_a_summary_column_is_an_error(ticker: str) -> None:
    """The schedule's summary columns come after the tickers' in one header: a ticker of
    the same name would have its shares overwritten by the summary, silently."""
    from types import SimpleNamespace

    from rebalopt.cli_schedule import schedule_frame
    from rebalopt.errors import InputError

    shares = pd.DataFrame([[1.0, 2.0]], index=[1], columns=["AAA", ticker])
    plan = SimpleNamespace(
        state=SimpleNamespace(equity=100.0),
        info={"schedule_shares": shares, "expected_cost": pd.Series([0.0], index=[1]),
              "cash_path": pd.Series([0.1], index=[1]),
              "tracking_error": pd.Series([0.01], index=[1])})
    with pytest.raises(InputError, match=f"ticker named '{ticker}'") as err:
        schedule_frame(plan)
    assert err.value.asset == ticker
    plan.info["schedule_shares"] = shares.rename(columns={ticker: "BBB"})
    frame = schedule_frame(plan)  # the oracle: without the clash, every column is kept
    assert list(frame.columns) == ["AAA", "BBB", "expected_cost", "cash", "tracking_error"]
    assert frame.loc[1, "BBB"] == 2.0 and frame.loc[1, "cash"] == 10.0
