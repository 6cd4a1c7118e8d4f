"""Where the realized tracking error of two daily-deciding runs comes from (issue 14).

Runs one multi-period run and one daily single-period ``+cost`` run of
``benchmarks/bench_quality.py --multiperiod`` (same data, costs, risk models and
broker; its docstring has the set-up) with every plan recorded, and splits each
run's realized statistic bar by bar:

* the realized daily return difference to the paper book, ``net = gross - cost``:
  ``gross`` the positions' part (the bar's rebalancing costs added back), ``cost``
  the bar's charged cost over the previous equity;
* lead 1, the risk model: the one-day forecast ``dt * d' Sigma d`` of the book's
  difference to the paper book after each close (``Sigma`` the model the plan used)
  against the realized ``gross**2`` of the next bar, in all and by period; and the
  same differences held for the next 5 and 10 bars (more draws of the same
  direction: a one-bar ratio over few large bars is mostly noise);
* lead 3, the cost model: the plan's expected first-period convex cost against the
  broker's charge on the same bar (sums and sums of squares);
* the in-model per-bar objective ``sum(dt d' Sigma d + cost**2)`` per year against
  the realized ``sum(gross**2 + cost**2)``;
* the bars that carry most of it, and the statistic with those bars left out;
* the pair re-drawn with each run's positions and costs kept: the bar after each
  decision given the returns of the bar ``j`` bars away (``j = -10..10``, the same
  ``j`` for both runs; 0 is the realized path, up to drift), and given draws from
  each date's own risk model, ``N(0, dt Sigma)``, common to both runs.

Usage (issue 14's $100M floor points; 235-250 s at a load of 2.3-3)::

    python benchmarks/bench_quality_split.py --start 2018-04-01 --end 2021-04-21 \\
        --book 1e8 --periods 10 --mp-gamma 1e4 --daily-gamma 5e4
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.costs import Commission, MarketImpact, Spread
from rebalopt.research import (
    RoundedRebalancer,
    compare,
    daily_optimal_runs,
    liquidity_spreads,
    multiperiod_runs,
    risk_schedule,
    sp500_universe,
    target_schedule,
)
from rebalopt.risk import pca_factor_model

DT = 1.0 / 252.0


class Recorder(RoundedRebalancer):
    """Pass plans through unchanged; keep what each plan assumed (attributes of the
    wrapped rebalancer are read and written through, as ``RoundedRebalancer`` does)."""

    def __init__(self, rebalancer: Any) -> None:
        super().__init__(rebalancer)
        object.__setattr__(self, "recs", [])

    def plan(self, state: Any, targets: Any) -> Any:
        p = self.inner.plan(state, targets)
        root = self.inner.root(state)
        self.recs.append({"assets": list(state.assets), "target": state.target_weights(targets),
                          "G": np.array(root.G), "s": np.array(root.s),
                          "cost": float(p.info["expected_cost"].iloc[0]),
                          "w1": p.info["weights_path"].to_numpy()[0]})
        return p


def bars_of(cmp: Any, name: str, rec: Recorder) -> pd.DataFrame:
    """Per bar after the first decision: net, gross, cost, forecast and plan figures."""
    res = cmp.results[name]
    eq, T, s = res.equity, len(res.equity), cmp.start
    hits = np.zeros(T)
    for f in res.fills:
        if f.tag != 0:
            hits[f.bar] += sum(f.costs.values())
    dec = [r for r in res.rebalances if r["rebalance"] != 0]
    if len(dec) != len(rec.recs):
        raise RuntimeError("plans and decisions do not pair up")
    by_bar = {r["bar"]: x for r, x in zip(dec, rec.recs)}
    held = cmp.held_weights(name).to_numpy()
    paper_w = cmp.paper_weights().to_numpy()
    ret, paper = res.returns.to_numpy(), cmp.paper.to_numpy()
    changes = set(cmp.feed.dates.get_indexer(pd.DatetimeIndex(cmp.targets.index)).tolist())
    assets = list(cmp.feed.assets)
    rows = []
    for t in range(s + 1, T):
        x = by_bar.get(t - 1, by_bar.get(t))  # the model in force at close t-1
        if x["assets"] != assets:
            raise RuntimeError("a plan's universe differs from the feed's (not handled)")
        d = np.nan_to_num(held[t - 1] - paper_w[t - 1])
        f = DT * (np.sum((x["G"].T @ d) ** 2) + np.sum((x["s"] * d) ** 2))
        c = hits[t] / eq[t - 1]
        y = by_bar.get(t)
        rows.append({"date": cmp.feed.dates[t], "bar": t, "net": ret[t] - paper[t],
                     "gross": ret[t] - paper[t] + c, "cost": c, "f": f,
                     "plan_cost": y["cost"] if y is not None else np.nan,
                     "after_change": (t - 1) in changes, "d": d, "G": x["G"], "s": x["s"]})
    return pd.DataFrame(rows).set_index("date")


def te(x: Any) -> float:
    """Annualized tracking error of daily differences, % (sample std x sqrt(252))."""
    return 100.0 * float(np.std(np.asarray(x, float), ddof=1)) * np.sqrt(252.0)


def report(name: str, df: pd.DataFrame, R: np.ndarray) -> None:
    yrs = len(df) / 252.0
    g2, f, c = df["gross"] ** 2, df["f"], df["cost"]
    print(f"\n== {name}: {len(df)} bars ({yrs:.2f} yr)")
    print(f"  net TE {te(df['net']):.4f}%  gross {te(df['gross']):.4f}%  cost-only "
          f"{te(c):.4f}%")
    print(f"  lead 1: realized gross**2 / forecast dt d'Sigma d, next bar: "
          f"{g2.sum() / f.sum():.3f} (per year {g2.sum() / yrs:.3e} / {f.sum() / yrs:.3e}; "
          f"median z**2 {np.median(g2 / f):.3f}, chi2(1) median 0.455)")
    for lab, a, b in (("2019-04..2020-01", "2019-04-01", "2020-01-31"),
                      ("2020-02..2020-05", "2020-02-01", "2020-05-31"),
                      ("2020-06..2021-04", "2020-06-01", "2021-04-30")):
        m = (df.index >= a) & (df.index <= b)
        if m.any():
            print(f"    {lab}: {g2[m].sum() / f[m].sum():.3f} ({m.sum()} bars)")
    for lab, m in (("bars after a target change", df["after_change"]),
                   ("other bars", ~df["after_change"])):
        print(f"    {lab}: {g2[m].sum() / f[m].sum():.3f} ({m.sum()} bars)")
    T = len(R)
    for h in (5, 10):  # the same d held over the next h bars
        real = []
        for b, d in zip(df["bar"], df["d"]):
            fut = R[b:min(b + h, T)]
            real.append(np.mean((fut @ d) ** 2))
        print(f"    each difference held over the next {h} bars: realized / forecast "
              f"{np.sum(real) / f.sum():.3f}")
    pc = df["plan_cost"].notna()
    print(f"  lead 3: broker cost / plan's expected first-period cost {c[pc].sum() / df['plan_cost'][pc].sum():.4f}"
          f"; sum of squares {(c[pc] ** 2).sum() / (df['plan_cost'][pc] ** 2).sum():.4f}")
    print(f"  per year: in-model sum(forecast + cost**2) {(f.sum() + (c ** 2).sum()) / yrs:.3e}"
          f" (forecast {f.sum() / yrs:.3e}, cost**2 {(c ** 2).sum() / yrs:.3e}); realized "
          f"sum(gross**2 + cost**2) {(g2.sum() + (c ** 2).sum()) / yrs:.3e}")
    top = (g2 + c ** 2 + f).nlargest(5).index
    print("  largest bars (forecast, realized gross**2, cost**2):")
    for t in top:
        print(f"    {t.date()}  {f[t]:.3e}  {g2[t]:.3e}  {c[t] ** 2:.3e}")


def pair(names: list[str], dfs: list[pd.DataFrame], R: np.ndarray, draws: int) -> None:
    a, b = dfs
    print(f"\n== {names[0]} (A) against {names[1]} (B)")
    for lab, drop in (("all bars", []), ("without 2020-03-31..04-03",
                                         pd.date_range("2020-03-31", "2020-04-03")),
                      ("without 2020-03..04", pd.date_range("2020-03-01", "2020-04-30"))):
        m = ~a.index.isin(pd.DatetimeIndex(drop))
        print(f"  {lab:28s} A net {te(a['net'][m]):.4f} (gross {te(a['gross'][m]):.4f}, cost "
              f"{te(a['cost'][m]):.4f})  B net {te(b['net'][m]):.4f} (gross "
              f"{te(b['gross'][m]):.4f}, cost {te(b['cost'][m]):.4f})")
    D_a, D_b = np.vstack(a["d"]), np.vstack(b["d"])
    bars = a["bar"].to_numpy()
    T = len(R)
    shifts = []
    for j in range(-10, 11):
        idx = np.clip(bars + j, 1, T - 1)
        shifts.append((j, te(np.sum(D_a * R[idx], 1) - a["cost"]),
                       te(np.sum(D_b * R[idx], 1) - b["cost"])))
    sh = pd.DataFrame(shifts, columns=["j", "A", "B"]).set_index("j")
    print("  the bar after each decision given the returns j bars away (net TE %, A/B):")
    print("    " + "; ".join(f"{j}: {r.A:.4f}/{r.B:.4f}" for j, r in sh.iterrows()))
    print(f"    A below B in {(sh.A < sh.B).sum()}/21; median A {sh.A.median():.4f}, "
          f"B {sh.B.median():.4f}")
    rng = np.random.default_rng(14)
    ga, gb = np.zeros((draws, len(bars))), np.zeros((draws, len(bars)))
    for i, (G, s_) in enumerate(zip(a["G"], a["s"])):
        r = np.sqrt(DT) * (rng.standard_normal((draws, G.shape[1])) @ G.T
                           + rng.standard_normal((draws, len(s_))) * s_)
        ga[:, i], gb[:, i] = r @ D_a[i], r @ D_b[i]
    ta = 100 * np.std(ga - a["cost"].to_numpy(), axis=1, ddof=1) * np.sqrt(252)
    tb = 100 * np.std(gb - b["cost"].to_numpy(), axis=1, ddof=1) * np.sqrt(252)
    print(f"  {draws} draws from the risk models: net TE A median {np.median(ta):.4f} "
          f"(5-95%: {np.percentile(ta, 5):.4f}-{np.percentile(ta, 95):.4f}), rms "
          f"{np.sqrt(np.mean(ta ** 2)):.4f}; B median {np.median(tb):.4f} "
          f"({np.percentile(tb, 5):.4f}-{np.percentile(tb, 95):.4f}), rms "
          f"{np.sqrt(np.mean(tb ** 2)):.4f}; A below B in {np.mean(ta < tb):.1%}; the "
          f"realized A {te(a['net']):.4f} is at the {np.mean(ta < te(a['net'])):.1%} point "
          f"of A's draws, B {te(b['net']):.4f} at the {np.mean(tb < te(b['net'])):.1%} point")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--book", type=float, default=1e8)
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--start", default="2018-04-01")
    ap.add_argument("--end", default="2021-04-21")
    ap.add_argument("--periods", type=int, default=10)
    ap.add_argument("--mp-gamma", type=float, default=1e4)
    ap.add_argument("--daily-gamma", type=float, default=5e4)
    ap.add_argument("--draws", type=int, default=4000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
    t0 = time.perf_counter()
    feed = sp500_universe(args.assets, args.start, args.end)
    closes = pd.DataFrame(feed.close, index=feed.dates, columns=feed.assets)
    targets = target_schedule(closes, "min_variance", lookback=252, frequency="M")
    risk = risk_schedule(closes, targets.index, lookback=252,
                         estimator=lambda r: pca_factor_model(r, k=15, missing="average"))
    costs = [Commission(per_share=0.005, minimum=1.0),
             Spread(half_spread_bps=liquidity_spreads(feed, 2.0, 5.0)),
             MarketImpact(coef=1.0, exponent=1.5)]
    runs = (multiperiod_runs(costs, risk, [args.mp_gamma], periods=args.periods,
                             cost_in_tracking=True)
            + daily_optimal_runs(costs, risk, [args.daily_gamma], cost_in_tracking=True))
    recs = []
    for r in runs:
        r.rebalancer = Recorder(r.rebalancer)
        recs.append(r.rebalancer)
    cmp = compare(feed, targets, costs, runs, initial_cash=args.book, on_error="hold",
                  record_holdings=True)
    R = np.nan_to_num(closes.pct_change().to_numpy())
    print(cmp.table[["tracking_error", "tracking_error_gross", "cost_bps", "n_held",
                     "seconds"]].to_string())
    dfs = [bars_of(cmp, r.name, rec) for r, rec in zip(runs, recs)]
    for r, df in zip(runs, dfs):
        report(r.name, df, R)
    pair([r.name for r in runs], dfs, R, args.draws)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
