"""Quality benchmark: does the optimal frontier dominate naive and band rebalancing?

Set-up (issue 6, DESIGN.md section 10 "Quality"):

* data: the shared S&P 500 panel (``../shared/data/sp500`` or ``$REBALOPT_DATA``),
  the ``--assets`` (100) most liquid names by median dollar volume over 2009 among
  those trading on every bar of 2009-01-02 .. 2021-04-21;
* targets: monthly long-only minimum variance (skfolio ``MeanRisk``, Ledoit-Wolf
  covariance) or inverse volatility, from the 252 daily returns ending at each
  month's last close; decisions from January 2010;
* costs, charged by the simulated broker on every fill: commission $0.005/share
  with a $1 minimum, half spread 2-5 bps by liquidity rank, 3/2-power market
  impact ``sigma * |q|^1.5 / ADV^0.5`` from trailing 20-day volatility and ADV;
* book ``--book`` ($100M), fills at the decision date's close, whole shares;
* runs: naive monthly / every 2 / every 3 months; bands absolute 0.25/0.5/1/2% and
  relative 10/25/50%, each to target and to edge; optimal (risk aversions swept
  without recompiling; risk = a statistical factor model of the same 252
  returns, ``--factors`` (15) principal components plus idiosyncratic variance,
  or ``--factors 0`` for the dense Ledoit-Wolf covariance, about 8x slower per
  solve at 100 names; horizon one month).

The comparison is at equal realized tracking error (std of daily return
differences to the cost-free paper portfolio x sqrt(252)), interpolating the
optimal frontier's cost between its efficient points. Printed: every run, the
ratios optimal / baseline, and their summary; ``--out`` writes the HTML report.
Not a test: several minutes.

Multi-period rows (``--multiperiod``, issue 14): policies that also trade between
the monthly target dates, each deciding on every bar with the paper portfolio's
drifted weights as its target there (:mod:`rebalopt.research.baselines`): naive
TWAP-5 (naive monthly's trade split evenly over 5 bars), tolerance bands checked
every bar, the single-period optimal plan re-made every bar (horizon one day; with
the same ``gamma/2 * cost**2`` term as the multi-period policy when it has it, so the
comparison is like for like: ``daily optimal +cost``), and
the multi-period policy (``MultiPeriodRebalancer``, ``--periods`` (5) days of one
bar each, re-planned every bar, first day traded; its gamma sweep on one program;
``cost_in_tracking=True`` unless ``--no-mp-cost-in-tracking``: each day's cost is
also a tracking difference, ``gamma/2 * cost_t**2``, see docs/howto/backtest.md).
Every row also shows ``gross``, the tracking error with each bar's costs added back
(at $1B naive monthly's tracking error is almost all its monthly cost hits).
Printed beside the usual table: every run against the multi-period frontier at its
own tracking error, and the multi-period frontier against the monthly single-period
frontier across the middle of their common TE range. Daily decisions cost about
``--periods`` x the monthly runs' solves per bar: ``--start`` shortens the window.

Usage: ``python benchmarks/bench_quality.py [--book 1e8] [--assets 100]
[--targets min_variance|inverse_volatility] [--out reports/bench_quality.html]
[--multiperiod] [--periods 5] [--mp-gammas 1e2,1e3,...] [--no-mp-cost-in-tracking]
[--mp-terminal target|0.01] [--daily-plain] [--only-multiperiod] [--only-daily-optimal]
[--rows a.csv b.csv ...]``
(``--daily-plain``: the plain daily single-period runs beside the ``+cost`` ones).

Issue 14's figures (two years of decisions, 2019-04..2021-04, 100 names, H = 10 with
the cost term; docs/howto/backtest.md has the table; about 48 minutes per book at a
load of 3-5 on two cores, most of it the multi-period rows)::

    W="--start 2018-04-01 --end 2021-04-21"
    python benchmarks/bench_quality.py $W --book 1e9 --multiperiod --only-daily \
        --daily-plain --periods 10 --mp-gammas 30,100,300,1000,3000,10000,50000 \
        --out y2h10_1e9.html
    python benchmarks/bench_quality.py $W --book 1e8 --multiperiod --only-daily \
        --daily-plain --periods 10 --mp-gammas 100,300,1000,3000,20000 \
        --out y2h10_1e8.html

The $100M low-TE points (multi-period and daily +cost, run separately, then merged)::

    python benchmarks/bench_quality.py $W --book 1e8 --multiperiod --only-multiperiod \
        --periods 10 --mp-gammas 1000,1500,2000,3000,10000,100000,300000 --out mp_1e8.html
    python benchmarks/bench_quality.py $W --book 1e8 --multiperiod --only-daily-optimal \
        --mp-gammas 3000,5000,10000,20000,50000,100000,300000 --out daily_1e8.html
    python benchmarks/bench_quality.py --rows y2h10_1e8.csv mp_1e8.csv daily_1e8.csv

Why the multi-period floor at $100M sits above the daily +cost one (one decision on
2020-03-31, measured bar by bar): ``benchmarks/bench_quality_split.py``.

Earlier sweeps on the same window (other gammas, the plain objective) merge with
``--rows y2h10_1e9.csv extra.csv``
(``--rows`` takes every ``multiperiod`` row as one frontier; ``--mp-select`` keeps one
objective's rows.) Faster iteration: a six-month window,
``--start 2018-04-01 --end 2019-10-31`` (about 2.5 minutes at $1B with ``--only-daily``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from rebalopt.costs import Commission, MarketImpact, Spread
from rebalopt.datasets import shared_data_dir
from rebalopt.research import (
    band_runs,
    compare,
    cost_at_tracking_error,
    daily_band_runs,
    daily_optimal_runs,
    efficient_points,
    equal_te_against,
    equal_te_table,
    liquidity_spreads,
    multiperiod_runs,
    naive_runs,
    optimal_runs,
    risk_schedule,
    sp500_universe,
    target_schedule,
    twap_runs,
    write_report,
)
from rebalopt.risk import RiskModel, pca_factor_model

GAMMAS = (1.0, 3.0, 10.0, 30.0, 60.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 3000.0, 10000.0,
          30000.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--book", type=float, default=1e8, help="initial book, USD")
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--start", default="2009-01-01")
    ap.add_argument("--end", default="2021-04-21")
    ap.add_argument("--targets", default="min_variance",
                    choices=("min_variance", "inverse_volatility"))
    ap.add_argument("--factors", type=int, default=15,
                    help="PCA factors of the optimal's risk model (0: dense Ledoit-Wolf)")
    ap.add_argument("--gammas", default=",".join(f"{g:g}" for g in GAMMAS))
    ap.add_argument("--out", default="reports/bench_quality.html")
    ap.add_argument("--json", default=None, help="write the figures as JSON here")
    ap.add_argument("--multiperiod", action="store_true",
                    help="add TWAP-5, daily bands, daily single-period and multi-period runs")
    ap.add_argument("--periods", type=int, default=5, help="multi-period horizon H (days)")
    ap.add_argument("--mp-gammas", default="300,1000,2000,5000,20000,100000",
                    help="risk aversions of the daily single-period and multi-period runs")
    ap.add_argument("--mp-cost-in-tracking", action=argparse.BooleanOptionalAction,
                    default=True, help="multi-period objective with gamma/2 * cost_t**2 "
                    "per day (MultiPeriodRebalancer.cost_in_tracking); --no-... for the plain one")
    ap.add_argument("--mp-terminal", default=None,
                    help="multi-period terminal condition: 'target' or a band (weight)")
    ap.add_argument("--daily-plain", action="store_true",
                    help="with --multiperiod and the +cost objective: also run the plain daily "
                         "single-period plan (without the cost term) at the same gammas")
    ap.add_argument("--only-daily", action="store_true",
                    help="with --multiperiod: skip the monthly bands (naive and the monthly "
                         "optimal frontier are kept as references)")
    ap.add_argument("--only-multiperiod", action="store_true",
                    help="run naive monthly and the multi-period runs only (rows printed; "
                         "the comparisons need the other runs' rows, e.g. from another run)")
    ap.add_argument("--only-daily-optimal", action="store_true",
                    help="with --multiperiod: run naive monthly and the daily single-period "
                         "runs only, at --mp-gammas (+cost; also plain with --daily-plain); "
                         "rows written beside --out, merge with --rows")
    ap.add_argument("--rows", nargs="+", default=None, metavar="CSV",
                    help="run nothing: merge the rows of earlier runs on the same window and "
                         "book (the CSV written beside --out; a later file's row replaces an "
                         "earlier one of the same name) and print the comparisons")
    ap.add_argument("--mp-select", default=None, metavar="TEXT",
                    help="with --rows: keep the multi-period rows whose name contains TEXT "
                         "(e.g. '+cost', or 'H=5 γ' for the plain objective)")
    args = ap.parse_args()
    if args.rows:
        frames = [pd.read_csv(f, index_col="run") for f in args.rows]
        table = pd.concat(frames)
        table = table[~table.index.duplicated(keep="last")]
        if args.mp_select:
            mp = table["kind"] == "multiperiod"
            table = table[~mp | table.index.str.contains(args.mp_select, regex=False)]
        figures = summarize(table, multiperiod="multiperiod" in set(table["kind"]))
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))
        return 0
    if shared_data_dir() is None:
        print("bench_quality: the shared S&P 500 panel (../shared/data/sp500 or "
              "$REBALOPT_DATA) is absent; nothing to measure.")
        return 0
    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
    t0 = time.perf_counter()
    feed = sp500_universe(args.assets, args.start, args.end)
    closes = pd.DataFrame(feed.close, index=feed.dates, columns=feed.assets)
    t1 = time.perf_counter()
    targets = target_schedule(closes, args.targets, lookback=252, frequency="M")
    def pca(returns: pd.DataFrame) -> RiskModel:
        return pca_factor_model(returns, k=args.factors, missing="average")

    risk = risk_schedule(closes, targets.index, lookback=252,
                         estimator=pca if args.factors > 0 else None)
    t2 = time.perf_counter()
    costs = [Commission(per_share=0.005, minimum=1.0),
             Spread(half_spread_bps=liquidity_spreads(feed, 2.0, 5.0)),
             MarketImpact(coef=1.0, exponent=1.5)]
    gammas = tuple(float(g) for g in args.gammas.split(","))
    monthly_bands = [] if (args.multiperiod and args.only_daily) else band_runs(costs)
    runs = naive_runs(costs) + monthly_bands + optimal_runs(costs, risk, gammas)
    if args.only_multiperiod or args.only_daily_optimal:
        runs = naive_runs(costs, every=(1,))
    if args.multiperiod:
        mpg = tuple(float(g) for g in args.mp_gammas.split(","))
        if args.only_daily_optimal:
            runs += daily_optimal_runs(costs, risk, mpg,
                                       cost_in_tracking=args.mp_cost_in_tracking)
            if args.daily_plain and args.mp_cost_in_tracking:
                runs += daily_optimal_runs(costs, risk, mpg, cost_in_tracking=False)
        elif not args.only_multiperiod:
            runs += (twap_runs(costs, (5,))
                     + daily_band_runs(costs, absolute=(0.005, 0.01, 0.02), relative=(0.25,))
                     + daily_optimal_runs(costs, risk, mpg,
                                          cost_in_tracking=args.mp_cost_in_tracking))
            if args.daily_plain and args.mp_cost_in_tracking:
                runs += daily_optimal_runs(costs, risk, mpg, cost_in_tracking=False)
        term = args.mp_terminal
        if term is not None and term != "target":
            term = float(term)
        if not args.only_daily_optimal:
            runs += multiperiod_runs(costs, risk, mpg, periods=args.periods, terminal=term,
                                     cost_in_tracking=args.mp_cost_in_tracking)
    print(f"universe {feed.n_assets} names, {feed.n_bars} bars {feed.dates[0].date()}.."
          f"{feed.dates[-1].date()} (load {t1 - t0:.1f}s); {len(targets)} monthly "
          f"{args.targets} targets + risk models in {t2 - t1:.1f}s; book ${args.book:,.0f}")
    print(f"{'run':<34} {'TE %/yr':>8} {'gross':>6} {'cost bps/yr':>11} {'turnover':>9} "
          f"{'orders':>7} {'held':>4} {'sec':>6}")

    def show(name: str, row: dict) -> None:
        print(f"{name:<34} {100 * row['tracking_error']:8.3f} "
              f"{100 * row['tracking_error_gross']:6.3f} {row['cost_bps']:11.2f} "
              f"{100 * row['turnover']:8.1f}% {row['n_orders']:7d} {row['n_held']:4d} "
              f"{row['seconds']:6.1f}", flush=True)

    cmp = compare(feed, targets, costs, runs, initial_cash=args.book, on_error="hold",
                  record_holdings=True, progress=show)
    t3 = time.perf_counter()
    if args.only_multiperiod or args.only_daily_optimal:
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            cmp.table.to_csv(Path(args.out).with_suffix(".csv"))
        print(f"rows only (--only-multiperiod / --only-daily-optimal; compare with --rows); "
              f"total {t3 - t0:.0f}s")
        return 0
    print(f"\nall runs in {t3 - t2:.0f}s; optimal program compiled "
          f"{int(cmp.table['compilations'].max())} time(s); held rebalances "
          f"{int(cmp.table['n_held'].sum())}")
    figures = summarize(cmp.table, args.multiperiod)
    figures.update({"book": args.book, "targets": args.targets, "seconds": t3 - t0})
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        cmp.table.to_csv(Path(args.out).with_suffix(".csv"))
        path = write_report(cmp, Path(args.out), title="rebalopt quality benchmark: S&P 500 "
                            f"top {feed.n_assets}, ${args.book / 1e6:,.0f}M book",
                            description=__doc__.split("\n\n")[1].replace("\n", " "))
        print(f"report: {path}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print(f"total {time.perf_counter() - t0:.0f}s")
    return 0


def summarize(table: pd.DataFrame, multiperiod: bool) -> dict:
    """Print the monthly comparisons (and the multi-period ones) of a run table."""
    eq = equal_te_table(table[~table["kind"].isin(
        ["multiperiod", "optimal daily", "twap", "band daily"])])
    pd.set_option("display.width", 160)
    print("\nAt equal realized tracking error (optimal frontier cost / run cost):")
    print(eq.assign(tracking_error=100 * eq["tracking_error"]).round(3).to_string())
    bands = eq[eq["kind"] == "band"]
    ok = bands[bands["how"] != "below range"]["ratio"]
    figures = {
        "naive_monthly": float(eq.loc["naive monthly", "ratio"]),
        "naive_every_2": float(eq.loc["naive every 2", "ratio"]),
        "naive_every_3": float(eq.loc["naive every 3", "ratio"]),
        "bands_min": float(ok.min()) if len(ok) else float("nan"),
        "bands_median": float(ok.median()) if len(ok) else float("nan"),
        "bands_max": float(ok.max()) if len(ok) else float("nan"),
        "bands_below_frontier_range": int((bands["how"] == "below range").sum()),
        "bands_dominated": int((ok < 1).sum()),
        "bands_compared": len(ok),
    }
    print("\nSummary (ratio = optimal cost at the run's own TE / the run's cost):")
    print(f"  vs naive every 2 months: {figures['naive_every_2']:.0%}   "
          f"vs naive every 3 months: {figures['naive_every_3']:.0%}")
    print(f"  vs bands: min {figures['bands_min']:.0%}, median {figures['bands_median']:.0%}, "
          f"max {figures['bands_max']:.0%} ({figures['bands_dominated']}/"
          f"{figures['bands_compared']} below 1; {figures['bands_below_frontier_range']} "
          "with a TE below the frontier's range)")
    print(f"  vs naive monthly at its own TE: {figures['naive_monthly']:.0%}")
    fr = table[table["kind"] == "optimal"]
    print(f"  frontier TE range {100 * fr['tracking_error'].min():.3f}%.."
          f"{100 * fr['tracking_error'].max():.3f}%/yr; naive monthly TE "
          f"{100 * table.loc['naive monthly', 'tracking_error']:.3f}%/yr")
    if multiperiod:
        figures.update(multiperiod_summary(table))
    return figures


def multiperiod_summary(table: pd.DataFrame) -> dict:
    """Print and return the multi-period comparisons (see the module docstring)."""
    out: dict = {}
    mp = table[table["kind"] == "multiperiod"]
    print("\nMulti-period frontier (receding horizon, re-planned every bar):")
    cols = [c for c in ("tracking_error", "tracking_error_gross", "cost_bps", "turnover",
                        "n_held", "seconds") if c in mp.columns]
    print((mp[cols] * pd.Series({"tracking_error": 100.0, "tracking_error_gross": 100.0})
           .reindex(cols).fillna(1.0)).round(3).to_string())
    eq = equal_te_against(table, "multiperiod")
    print("\nEvery run against the multi-period frontier at its own TE "
          "(ratio = multi-period cost / run cost):")
    print(eq.assign(tracking_error=100 * eq["tracking_error"]).round(3).to_string())
    for name in ("naive monthly", "naive TWAP-5"):
        if name in eq.index:
            out[f"mp_vs_{name.replace(' ', '_')}"] = float(eq.loc[name, "ratio"])
            out[f"mp_vs_{name.replace(' ', '_')}_how"] = str(eq.loc[name, "how"])
    for kind in ("band daily", "optimal daily", "optimal"):
        sub = eq[(eq["kind"] == kind) & (eq["how"] != "below range")]["ratio"]
        out[f"mp_vs_{kind.replace(' ', '_')}_max"] = float(sub.max()) if len(sub) else None
        out[f"mp_vs_{kind.replace(' ', '_')}_median"] = (float(sub.median()) if len(sub)
                                                          else None)
        # only where the multi-period frontier reaches the run's TE (no bound)
        sub = eq[(eq["kind"] == kind) & (eq["how"] == "interpolated")]["ratio"]
        out[f"mp_vs_{kind.replace(' ', '_')}_interpolated_max"] = (float(sub.max()) if len(sub)
                                                                   else None)
    # the two frontiers at equal TE across the middle of their common range
    sp = table[table["kind"] == "optimal"]
    lo = max(mp["tracking_error"].min(), sp["tracking_error"].min())
    hi = min(mp["tracking_error"].max(), sp["tracking_error"].max())
    if hi > lo:
        grid = np.linspace(lo + 0.25 * (hi - lo), lo + 0.75 * (hi - lo), 9)
        r = [cost_at_tracking_error(mp["tracking_error"].to_numpy(), mp["cost_bps"].to_numpy(),
                                    x)[0]
             / cost_at_tracking_error(sp["tracking_error"].to_numpy(),
                                      sp["cost_bps"].to_numpy(), x)[0] for x in grid]
        print(f"\nmulti-period / single-period (monthly) frontier cost at equal TE, middle "
              f"of the common range {100 * grid[0]:.3f}..{100 * grid[-1]:.3f} %/yr: "
              + ", ".join(f"{v:.2f}" for v in r))
        out["mp_vs_sp_frontier_mid"] = [float(v) for v in r]
    else:
        print("\nthe multi-period and single-period frontiers share no TE range")
        out["mp_vs_sp_frontier_mid"] = None
    out.update(mp_vs_daily_cost(table, mp))
    for k, v in out.items():
        print(f"  {k}: {v}")
    return out


def mp_vs_daily_cost(table: pd.DataFrame, mp: pd.DataFrame) -> dict:
    """The multi-period frontier against the fair daily ``+cost`` single-period frontier.

    Both frontiers' efficient points; each point of one read off the other at its own TE
    (linear and log-log interpolation, NaN below the other's range); and the ratio
    multi-period / daily on a grid over their whole common TE range, its lowest end first.
    """
    dc = table[(table["kind"] == "optimal daily") & table.index.str.contains("+cost",
                                                                             regex=False)]
    if dc.empty:
        return {}
    fr = {"multi-period": mp, "daily +cost": dc}
    eff = {k: efficient_points(v["tracking_error"].to_numpy(), v["cost_bps"].to_numpy())
           for k, v in fr.items()}
    print("\nThe multi-period frontier against the daily +cost single-period frontier "
          "(efficient points, TE %/yr · bps/yr):")
    for k, (x, y) in eff.items():
        print(f"  {k:>12}: " + "; ".join(f"{100 * a:.4f} · {b:.2f}" for a, b in zip(x, y)))
    for k, other in (("multi-period", "daily +cost"), ("daily +cost", "multi-period")):
        ox, oy = eff[other]
        print(f"  each {k} point against the {other} frontier at its TE "
              f"({other} cost / {k} cost, linear | log-log):")
        for name, r in fr[k].sort_values("tracking_error").iterrows():
            at, base = float(r["tracking_error"]), float(r["cost_bps"])
            lin, how = cost_at_tracking_error(ox, oy, at)
            log, _ = cost_at_tracking_error(ox, oy, at, interpolation="loglog")
            print(f"    {name:<34} {100 * at:.4f} {base:7.2f}  {lin / base:.4f} | "
                  f"{log / base:.4f}  {how}")
    lo = max(eff["multi-period"][0][0], eff["daily +cost"][0][0])
    hi = min(eff["multi-period"][0][-1], eff["daily +cost"][0][-1])
    res: dict = {"mp_floor_te": float(eff["multi-period"][0][0]),
                 "daily_cost_floor_te": float(eff["daily +cost"][0][0])}
    if hi <= lo:
        print("  the two frontiers share no TE range")
        res["mp_vs_daily_cost_grid"] = None
        return res
    grid = np.geomspace(lo, hi, 13)
    for interp in ("linear", "loglog"):
        r = [cost_at_tracking_error(*eff["multi-period"], x, interp)[0]
             / cost_at_tracking_error(*eff["daily +cost"], x, interp)[0] for x in grid]
        print(f"  multi-period / daily +cost at equal TE ({interp}), TE "
              + ", ".join(f"{100 * x:.3f}: {v:.3f}" for x, v in zip(grid, r)))
        res[f"mp_vs_daily_cost_grid_{interp}"] = [[float(x), float(v)] for x, v in zip(grid, r)]
    return res


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
