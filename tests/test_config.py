"""TOML config: every section builds what it names; every mistake names file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rebalopt import Commission, MarketImpact, NaiveRebalancer, PortfolioState, Spread
from rebalopt.adapters.files import FileInputError
from rebalopt.config import Settings, load_config, parse_config


def test_empty_config_is_the_default_naive_rebalancer() -> None:
    s = parse_config("")
    assert s.method == "naive" and s.cash is None and s.costs == [] and s.risk is None
    reb = s.build()
    assert isinstance(reb, NaiveRebalancer)
    assert reb == NaiveRebalancer()


def test_costs_and_options_are_built_as_written() -> None:
    s = parse_config("""
[account]
cash = 5e4
[rebalancer]
fractional = true
min_trade_value = 250
cash_buffer = 0.01
[costs.commission]
per_share = 0.005
minimum = 1
[costs.spread]
half_spread_bps = { AAA = 2.0, BBB = 7.5 }
default_bps = 4
[costs.impact]
coef = 0.8
exponent = 1.5
""")
    assert s.cash == 50_000.0
    assert s.options.fractional and s.options.min_trade_value == 250.0
    assert s.options.cash_buffer == 0.01
    assert s.costs == [Commission(per_share=0.005, minimum=1.0),
                       Spread(half_spread_bps={"AAA": 2.0, "BBB": 7.5}, default_bps=4.0),
                       MarketImpact(coef=0.8, exponent=1.5)]
    # the built spread model really uses the per-asset table: cost of 100 shares at 10
    state = PortfolioState({}, 1e4, {"AAA": 10.0, "BBB": 10.0, "CCC": 10.0})
    cost = s.costs[1].evaluate(np.array([100.0, 100.0, 100.0]), state)
    np.testing.assert_allclose(cost, [1000 * 2e-4, 1000 * 7.5e-4, 1000 * 4e-4])


def test_band_method() -> None:
    from rebalopt.rebalance.band import BandRebalancer

    s = parse_config('[rebalancer]\nmethod = "band"\n[band]\nwidth = 0.03\nto = "edge"\n')
    reb = s.build()
    assert isinstance(reb, BandRebalancer) and reb.width == 0.03 and reb.to == "edge"


def test_risk_from_returns_file_matches_direct_estimate(tmp_path: Path) -> None:
    """Oracle: numpy's covariance (1/T, no shrinkage) times periods_per_year."""
    rng = np.random.default_rng(3)
    rets = pd.DataFrame(rng.normal(0, 0.01, (60, 3)), columns=["A", "B", "C"],
                        index=pd.date_range("2020-01-01", periods=60, name="date"))
    rets.to_csv(tmp_path / "returns.csv")
    (tmp_path / "c.toml").write_text(
        '[risk]\nmodel = "sample"\nreturns = "returns.csv"\nshrinkage = 0.0\n'
        "periods_per_year = 12\n")
    s = load_config(tmp_path / "c.toml")
    expected = 12 * np.cov(rets.to_numpy().T, bias=True)
    np.testing.assert_allclose(s.risk.covariance(pd.Index(["A", "B", "C"])), expected,
                               rtol=1e-10)


def test_risk_from_covariance_file(tmp_path: Path) -> None:
    cov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], index=["A", "B"], columns=["A", "B"])
    cov.to_csv(tmp_path / "cov.csv")
    (tmp_path / "c.toml").write_text('[risk]\nmodel = "covariance"\nfile = "cov.csv"\n')
    s = load_config(tmp_path / "c.toml")
    d = np.array([0.1, -0.2])
    # tracking error by hand: sqrt(d' S d)
    by_hand = np.sqrt(0.04 * 0.01 + 2 * 0.01 * 0.1 * -0.2 + 0.09 * 0.04)
    assert s.risk.tracking_error(d, pd.Index(["A", "B"])) == pytest.approx(by_hand)


BAD = [
    ("[acount]\ncash = 1\n", 1, "acount", "unknown section"),
    ("[account]\ncash = 'lots'\n", 2, "account.cash", "expected a number"),
    ("[account]\ncash = nan\n", 2, "account.cash", "finite"),
    ("[rebalancer]\nfractional = 1\n", 2, "rebalancer.fractional", "true or false"),
    ("[rebalancer]\ncash_buffer = 1.5\n", 2, "rebalancer.cash_buffer", "must be < 1"),
    ("[rebalancer]\nlot_size = 2.5\n", 2, "rebalancer.lot_size", "integer"),
    ("\n[costs.commission]\nper_share = -1\n", 3, "costs.commission.per_share", ">= 0"),
    ("[costs.impact]\nexponent = 3\n", 2, "costs.impact.exponent", "[1, 2]"),
    ("[costs.fees]\nx = 1\n", 1, "costs.fees", "unknown cost model"),
    ("[costs]\nspread = { half_spread_bps = 1, typo = 2 }\n", 2, "costs.spread.typo",
     "unknown key"),
    ("[band]\nwidth = 0.02\n", 1, "band", "method = \"band\""),
    ("[constraints]\nmax_weight = 0.1\n", 1, "constraints", "needs method = \"optimal\""),
    ("[risk]\nmodel = \"magic\"\n", 2, "risk.model", "expected one of"),
    ("[risk]\nmodel = \"covariance\"\nfile = \"nope.csv\"\n", 3, "risk.file", "file not found"),
    ('[rebalancer]\nmethod = "optimal"\nmax_single_weight = 0.1\n', 3,
     "rebalancer.max_single_weight", "does not read max_single_weight"),
    ('[rebalancer]\nmethod = "band"\nmin_weight_change = 0.01\n', 3,
     "rebalancer.min_weight_change", "[band] width"),
    ("[rebalancer]\nlot_size = 100\n", 2, "rebalancer.lot_size", "only with round_lots"),
    ("[rebalancer]\nfractional = true\nround_lots = true\n", 3, "rebalancer.round_lots",
     "contradicts fractional"),
    ('[account]\nmargin = "yes"\n', 2, "account.margin", "true or false"),
    ("[rebalancer\n", 1, None, "invalid TOML"),
    ("a = = 1\n", 1, None, "invalid TOML"),
]


@pytest.mark.parametrize(("text", "line", "key", "match"), BAD)
def test_errors_name_file_line_and_key(tmp_path: Path, text, line, key, match) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(FileInputError) as info:
        load_config(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line
    if key is not None:
        assert err.column == key
    assert match in str(err)
    assert "\n" not in str(err)
    assert str(err).startswith(f"{path}, line {line}")


def test_docstring_example_parses(tmp_path: Path) -> None:
    """The complete example in rebalopt.config's docstring is valid."""
    from rebalopt import config

    doc = config.__doc__ or ""
    block = doc.split("every section and key is optional)::", 1)[1].split("\nPaths inside", 1)[0]
    text = "\n".join(line[4:] for line in block.splitlines())
    rets = pd.DataFrame(np.random.default_rng(0).normal(0, 0.01, (40, 2)), columns=["A", "B"])
    rets.to_csv(tmp_path / "returns.csv")
    # the example names method = "optimal" but also shows [band]; drop [band]
    text = re.sub(r'\[band\].*?\n\n', "", text, flags=re.DOTALL)
    s = parse_config(text, tmp_path / "c.toml")
    assert isinstance(s, Settings) and len(s.costs) == 4 and s.risk is not None
    assert s.cash == 25_000.0
    assert s.tax is not None and s.tax.rates.short_term == 0.37 and s.tax_aware == {"harvest": True}
    assert s.orders["format"] == "ibkr" and s.orders["limit_band_bps"] == 20.0


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileInputError, match="file not found"):
        load_config(tmp_path / "none.toml")


def test_optimal_sections_build_the_named_objects() -> None:
    pytest.importorskip("rebalopt.rebalance.optimal")
    from rebalopt import constraints as C
    from rebalopt.rebalance.integer import IntegerRebalancer
    from rebalopt.rebalance.optimal import OptimalRebalancer

    s = parse_config("""
[rebalancer]
method = "optimal"
[optimal]
risk_aversion = 50
horizon = 0.25
[constraints]
max_weight = 0.1
groups = ["Information Technology <= 0.25", "Energy >= 0.02"]
turnover = 0.2
cash_floor = 0.01
no_trade = ["XYZ"]
[solver]
name = ["CLARABEL", "SCS"]
options = { CLARABEL = { max_iter = 200 } }
[costs.spread]
half_spread_bps = 2
""")
    reb = s.build()
    assert isinstance(reb, IntegerRebalancer) and reb.mode == "round"
    assert isinstance(reb.relaxation, OptimalRebalancer)
    opt = reb.relaxation
    assert opt.risk_aversion == 50 and opt.horizon == 0.25
    assert list(opt.solver) == ["CLARABEL", "SCS"]
    assert opt.solver_options == {"CLARABEL": {"max_iter": 200}}
    kinds = [type(c) for c in opt.constraints]
    assert kinds == [C.LongOnly, C.CashFloor, C.WeightBounds, C.GroupBounds, C.TurnoverLimit,
                     C.Restricted]
    assert opt.constraints[1].floor == 0.01 and opt.constraints[4].cap == 0.2
    assert opt.costs == [Spread(half_spread_bps=2.0)]


@pytest.mark.parametrize(("text", "line", "key"), [
    ('[rebalancer]\nmethod = "optimal"\n[constraints]\ngroups = ["Tech << 0.2"]\n', 4,
     "constraints.groups"),
    ('[rebalancer]\nmethod = "optimal"\n[constraints]\nmax_wieght = 0.2\n', 4,
     "constraints.max_wieght"),
    ('[rebalancer]\nmethod = "optimal"\n[optimal]\nrisk_aversion = -1\n', 4,
     "optimal.risk_aversion"),
])
def test_optimal_config_errors_name_the_key(text, line, key) -> None:
    pytest.importorskip("rebalopt.rebalance.optimal")
    with pytest.raises(FileInputError) as info:
        parse_config(text, "c.toml").build()
    assert info.value.line == line and info.value.column == key


@pytest.mark.parametrize(("text", "line", "key", "match"), [
    ('[rebalancer]\nmethod = "optimal"\n[optimal]\nmax_trades = 2.5\n', 4,
     "optimal.max_trades", "expected an integer, got 2.5"),
    ('[rebalancer]\nmethod = "optimal"\n[optimal]\nmax_trades = true\n', 4,
     "optimal.max_trades", "expected an integer"),
    ('[rebalancer]\nmethod = "optimal"\nfractional = true\n[optimal]\ninteger = "exact"\n', 5,
     "optimal.integer", "needs whole shares"),
    ('[rebalancer]\nmethod = "optimal"\n[constraints]\nmin_weight = 0.2\nmax_weight = 0.1\n',
     4, "constraints.min_weight", "above max_weight"),
    ('[rebalancer]\nmethod = "optimal"\n[solver]\noptions = { CLARABEL = { tol_gapp = 1 } }\n',
     4, "solver.options.CLARABEL.tol_gapp", "CLARABEL has no option 'tol_gapp'"),
    (('[rebalancer]\nmethod = "optimal"\n[solver]\nname = "SCS"\n'
      'options = { CLARABEL = { max_iter = 5 } }\n'), 5, "solver.options.CLARABEL",
     "not in the solver chain (SCS)"),
])
def test_build_errors_name_the_key(text, line, key, match) -> None:
    pytest.importorskip("rebalopt.rebalance.optimal")
    with pytest.raises(FileInputError) as info:
        parse_config(text, "c.toml").build()
    assert (info.value.line, info.value.column) == (line, key)
    assert match in str(info.value)


def test_round_lots_reach_the_optimal_integer_stage() -> None:
    """round_lots = true, lot_size = 100 -> every trade a multiple of 100 shares."""
    pytest.importorskip("rebalopt.rebalance.optimal")
    s = parse_config('[rebalancer]\nmethod = "optimal"\nround_lots = true\nlot_size = 100\n')
    reb = s.build()
    state = PortfolioState({"A": 130.0}, 50_000.0, {"A": 10.0, "B": 20.0, "C": 7.0})
    plan = reb.plan(state, {"A": 0.3, "B": 0.4, "C": 0.25})
    trades = np.asarray(plan.trades)
    closes = (trades == -130.0)
    assert np.all((np.mod(trades, 100) == 0) | closes), trades
    assert np.abs(trades).sum() > 0


def test_locate_traces_a_planning_error_to_its_key() -> None:
    from rebalopt.errors import InputError

    text = '[rebalancer]\nmethod = "optimal"\n[constraints]\ngroups = ["Nowhere <= 0.1"]\n'
    s = parse_config(text, "c.toml")
    s.build()
    err = s.locate(InputError("group 'Nowhere' has no asset", field="GroupBounds"))
    assert isinstance(err, FileInputError)
    assert (err.line, err.column) == (4, "constraints.groups")
    other = InputError("no such thing", field="price")
    assert s.locate(other) is other  # not the config's: unchanged


def test_risk_file_cells_are_checked_with_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "cov.csv").write_text(",A,B\nA,0.04,0.01\nB,0.01,\n")
    (tmp_path / "c.toml").write_text('[risk]\nmodel = "covariance"\nfile = "cov.csv"\n')
    with pytest.raises(FileInputError) as info:
        load_config(tmp_path / "c.toml")
    assert (info.value.line, info.value.column) == (3, "B")
    assert "missing value (row 'B') (risk.file in c.toml)" in str(info.value)


def test_dust_thresholds_reach_the_fractional_optimal_plan() -> None:
    """[rebalancer] dust_value with method = "optimal" (rev7). Before: the optimal
    rebalancer was built with the default $1 threshold, whatever the file said.
    Oracle: the same plan from OptimalRebalancer(dust_value=...) built by hand."""
    from rebalopt.rebalance.optimal import OptimalRebalancer

    s = parse_config('[rebalancer]\nmethod = "optimal"\nfractional = true\n'
                     'dust_value = 60.0\ndust_shares = 0.5\n')
    reb = s.build()
    assert (reb.dust_value, reb.dust_shares) == (60.0, 0.5)
    # a $50 trade in B is dust at $60, not at the default $1
    state = PortfolioState({"A": 100.0, "B": 10.0}, 0.0, {"A": 10.0, "B": 10.0})
    targets = {"A": 0.9 - 0.05 / 1.1, "B": 0.1 / 1.1 + 0.05 / 1.1}
    by_hand = OptimalRebalancer(dust_value=60.0, dust_shares=0.5).plan(state, targets)
    plan = reb.plan(state, targets)
    np.testing.assert_array_equal(plan.trades, by_hand.trades)
    default = OptimalRebalancer().plan(state, targets)
    assert not np.array_equal(default.trades, plan.trades)


@pytest.mark.parametrize(("text", "periods", "key"), [
    ('[rebalancer]\nmethod = "optimal"\ndust_value = 60.0\n', None, "rebalancer.dust_value"),
    ('[rebalancer]\nmethod = "optimal"\nfractional = false\ndust_shares = 0.5\n', None,
     "rebalancer.dust_shares"),
    ('[rebalancer]\nmethod = "optimal"\nfractional = true\ndust_value = 60.0\n', 3,
     "rebalancer.dust_value"),
])
def test_dust_thresholds_a_plan_would_not_read_are_errors(text, periods, key) -> None:
    """Whole-share optimal plans and --periods schedules do not snap dust: the key is an
    error naming its line (before: silently ignored)."""
    pytest.importorskip("rebalopt.rebalance.optimal")
    with pytest.raises(FileInputError) as info:
        parse_config(text, "c.toml").build(periods)
    assert info.value.column == key
    assert info.value.line == text.split("\n").index(
        next(x for x in text.split("\n") if x.startswith(key.split(".")[1]))) + 1
    assert "would be ignored" in str(info.value)


def test_tax_substitutes_name_each_ticker_once():
    base = ('[rebalancer]\nmethod = "optimal"\n[costs.tax]\nshort_term = 0.37\n'
            'long_term = 0.20\n')
    # tickers are upper-cased: XOM and xom were one key and the last (BP) silently won
    with pytest.raises(FileInputError, match="'xom' and 'XOM' are one ticker 'XOM'") as e:
        parse_config(base + 'substitutes = { XOM = "CVX", xom = "BP" }\n', "c.toml")
    assert (e.value.line, e.value.column) == (6, "costs.tax.substitutes.xom")
    s = parse_config(base + 'substitutes = { xom = " cvx", BP = "SHEL" }\n', "c.toml")
    assert s.tax_aware["substitutes"] == {"XOM": "CVX", "BP": "SHEL"}


def test_risk_shrinkage_is_a_number_or_ledoit_wolf(tmp_path):
    (tmp_path / "r.csv").write_text("date,A,B\n2024-01-01,0.01,0.02\n2024-01-02,0.00,-0.01\n"
                                    "2024-01-03,0.02,0.01\n2024-01-04,-0.01,0.00\n")
    head = '[rebalancer]\nmethod = "optimal"\n[risk]\nmodel = "sample"\nreturns = "r.csv"\n'
    # true is an int in Python: it was read as a shrinkage of 1 (the covariance
    # replaced by mu I), false as none
    for flag in ("true", "false"):
        with pytest.raises(FileInputError, match="expected 'ledoit_wolf' or a number") as e:
            parse_config(head + f"shrinkage = {flag}\n", tmp_path / "c.toml")
        assert (e.value.line, e.value.column) == (6, "risk.shrinkage")
    # by hand: deviations A (.005, -.005, .015, -.015), B (.015, -.015, .005, -.005);
    # S (1/T) = [[1.25e-4, 7.5e-5], [7.5e-5, 1.25e-4]], mu = 1.25e-4; half shrunk and
    # x 252: diagonal 0.0315, off-diagonal 0.5 x 7.5e-5 x 252 = 0.00945
    s = parse_config(head + "shrinkage = 0.5\n", tmp_path / "c.toml")
    np.testing.assert_allclose(s.risk.matrix.loc[["A", "B"], ["A", "B"]].to_numpy(),
                               [[0.0315, 0.00945], [0.00945, 0.0315]], rtol=1e-12)


BOOK = dict(holdings={"AAA": 100, "BBB": 50}, cash=1000.0,
            prices={"AAA": 10.0, "BBB": 20.0, "CCC": 5.0})
THIRDS = {"AAA": 0.3, "BBB": 0.3, "CCC": 0.3}


def test_restricted_tickers_are_compared_in_upper_case():
    # the desk files' tickers are upper-cased; no_sell = ["aaa"] matched no asset and
    # the plan sold 10 AAA. Equity 3000, targets 30%: without the limit the plan sells
    # 10 AAA and 5 BBB and buys 180 CCC; with it AAA is kept at 100 shares
    text = ('[rebalancer]\nmethod = "optimal"\nfractional = true\n[optimal]\n'
            'risk_aversion = 1e6\nhorizon = 1.0\n[constraints]\nno_sell = [" aaa"]\n')
    plan = parse_config(text, "c.toml").build().plan(PortfolioState(**BOOK), THIRDS)
    trades = dict(zip(plan.state.assets, plan.trades, strict=True))
    assert trades["AAA"] == 0.0
    assert trades["BBB"] == pytest.approx(-5.0, abs=1e-6)


def test_per_ticker_half_spreads_are_compared_in_upper_case():
    # { aaa = 50 } matched no asset of the upper-cased book: AAA paid default_bps (1).
    # Naive trades: sell 10 AAA (100.00 at 50 bps = 0.50), sell 5 BBB (100.00 at 1 bp =
    # 0.01), buy 180 CCC (900.00 at 1 bp = 0.09)
    text = ('[rebalancer]\nfractional = true\nmin_trade_value = 0\nmin_weight_change = 0\n'
            '[costs.spread]\nhalf_spread_bps = { aaa = 50 }\ndefault_bps = 1\n')
    plan = parse_config(text, "c.toml").build().plan(PortfolioState(**BOOK), THIRDS)
    cost = dict(zip(plan.state.assets, plan.cost_per_asset, strict=True))
    assert [round(cost[a], 2) for a in ("AAA", "BBB", "CCC")] == [0.50, 0.01, 0.09]
    with pytest.raises(FileInputError, match="'AAA' and 'aaa' are one ticker") as e:
        parse_config("[costs.spread]\nhalf_spread_bps = { aaa = 5, AAA = 50 }\n", "c.toml")
    assert e.value.column == "costs.spread.half_spread_bps.AAA"


def test_margin_true_is_not_read_by_the_optimal_plan():
    # the optimal plan never reads margin (it borrows only down to cash_floor): a
    # margin account's config planned as a cash account without a word
    with pytest.raises(FileInputError, match="the optimal plan would ignore it") as e:
        parse_config('[account]\nmargin = true\n[rebalancer]\nmethod = "optimal"\n', "c.toml")
    assert (e.value.line, e.value.column) == (2, "account.margin")
    # read where it is honoured (naive, band), and false is what the optimal plan does
    assert parse_config("[account]\nmargin = true\n", "c.toml").margin is True
    parse_config('[account]\nmargin = false\n[rebalancer]\nmethod = "optimal"\n', "c.toml")
