"""Benchmark: the integer stage (not a test).

(a) 50 assets, 100-share lots, a $2M book (coarse lots), 11 sector caps, spread +
    quadratic impact + commission with a $1 minimum: ``round`` against ``exact``
    (SCIP, ``--limit`` seconds per case). Per case: the relaxation bound, round's
    objective, the best exact objective, SCIP's proven bound, and round's gap to
    the proven optimum and to the relaxation (percent of the objective).
(b) 500 S&P 500 stocks (real prices, ADV, volatility and GICS sectors from
    ``../shared/data/sp500`` via ``rebalopt.datasets.load_sp500``), 100-share lots, a
    $10M book, PCA factor risk (k = 10), spread + 3/2 impact + commission, long-only,
    cash account, 11 sector caps: median time round adds beyond the relaxation and the
    ratio (relaxation + round) / relaxation per call (goal <= 1.3), the machine load,
    its gap to the relaxation bound, and (one case) its objective against SCIP given
    ``--limit-500`` seconds (node budget lifted, so the clock is SCIP's only limit).

Run: ``.venv/bin/python benchmarks/bench_integer.py [--cases 4] [--limit 20] [--reps 9]
[--limit-500 60]``
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
import pandas as pd

from rebalopt import Commission, MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel

SECTORS = [f"Sector{j:02d}" for j in range(11)]


# ------------------------------------------------------------------ (a) 50 assets
def case50(seed: int, exponent: float):
    rng = np.random.default_rng(seed)
    n, k, V = 50, 5, 2e6
    assets = [f"A{i:02d}" for i in range(n)]
    prices = pd.Series(rng.uniform(20, 250, n), index=assets)
    groups = pd.Series(rng.choice(SECTORS[:6], n), index=assets)
    raw = rng.dirichlet(np.ones(n) * 2)
    raw[(groups == SECTORS[0]).to_numpy()] *= 1.8
    targets = pd.Series(raw / raw.sum() * 0.98, index=assets)
    hold = np.floor(targets.to_numpy() * V * np.exp(rng.normal(0, 0.3, n)) / prices / 100) * 100
    cash = max(V - float((hold * prices).sum()), 0.01 * V)
    state = PortfolioState(pd.Series(hold, index=assets), cash, prices,
                           adv=pd.Series(rng.uniform(5e4, 5e5, n), index=assets),
                           volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets),
                           groups=groups, lot_sizes=pd.Series(100.0, index=assets))
    B = pd.DataFrame(rng.normal(0, 0.3, (n, k)), index=assets)
    B[0] += 1.0
    F = pd.DataFrame(np.diag([0.03] + [0.005] * (k - 1)), index=B.columns, columns=B.columns)
    risk = FactorModel(B, F, pd.Series(rng.uniform(0.15, 0.35, n), index=assets))
    relax = OptimalRebalancer(
        risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0, exponent=exponent),
                          Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=0.25)], risk_aversion=200.0)
    return state, targets, relax


def bench50(cases: int, limit: float, exponent: float) -> pd.DataFrame:
    rows = []
    for seed in range(cases):
        state, targets, relax = case50(seed, exponent)
        r = IntegerRebalancer(relax).plan(state, targets).info
        e = IntegerRebalancer(relax, mode="exact", time_limit=limit).plan(state, targets).info
        opt = e["integer_objective"]
        bound = e.get("mip_bound")
        rows.append({
            "case": seed, "relax_bps": 1e4 * r["relaxation_objective"],
            "round_bps": 1e4 * r["integer_objective"], "exact_bps": 1e4 * opt,
            "mip_bound_bps": None if bound is None else 1e4 * bound,
            "proven": e.get("mip_proven_optimal", False),
            "mip_s": e.get("mip_time"),
            "round_ms": 1e3 * r["integer_time"],
            "round_vs_exact_%": 100 * (r["integer_objective"] - opt) / opt,
            "round_vs_bound_%": None if bound is None else
            100 * (r["integer_objective"] - bound) / r["integer_objective"],
            "exact_vs_relax_%": 100 * (opt - r["relaxation_objective"]) / opt,
            "round_vs_relax_%": 100 * r["integer_gap_rel"],
        })
    return pd.DataFrame(rows).set_index("case")


# ------------------------------------------------------------------ (b) S&P 500
def sp500_universe():
    from rebalopt.datasets import load_sp500
    from rebalopt.risk.estimators import pca_factor_model

    df = load_sp500(start="2020-04-01", end="2021-04-21")
    close = df.pivot(index="date", columns="ticker", values="close")
    vol_sh = df.pivot(index="date", columns="ticker", values="volume")
    sector = df.groupby("ticker")["sector"].last()
    close = close.dropna(axis=1, how="any")
    tickers = close.columns[:500]
    close = close[tickers]
    rets = close.pct_change().iloc[1:]
    risk = pca_factor_model(rets, k=10)
    last = close.iloc[-1]
    adv = vol_sh[tickers].iloc[-63:].mean()
    dvol = rets.iloc[-63:].std()
    return tickers, close, last, adv, dvol, sector[tickers].fillna("Unknown"), risk


def bench500(reps: int, limit: float) -> dict[str, float]:
    tickers, close, last, adv, dvol, sector, risk = sp500_universe()
    n, V = len(tickers), 1e7
    rng = np.random.default_rng(0)
    targets = pd.Series(rng.dirichlet(np.ones(n) * 2) * 0.98, index=tickers)
    cap = float(targets.groupby(sector).sum().max()) * 0.97  # the largest sector binds
    relax = OptimalRebalancer(
        risk=risk, costs=[Spread(3.0), MarketImpact(coef=1.0),
                          Commission(per_share=0.005, minimum=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=cap)], risk_aversion=100.0)
    reb = IntegerRebalancer(relax)
    relax_t, extra_t, gaps, gaps_bps, moves, works = [], [], [], [], [], []
    last_state = None
    for r in range(reps + 1):
        # a book bought at 100-share lots a month ago, prices drifted since
        px_then = close.iloc[-22 - r]
        hold = np.floor(targets * V / px_then / 100) * 100
        cash = max(V - float((hold * last).sum()), 0.005 * V)
        state = PortfolioState(hold, cash, last, adv=adv, volatility=dvol,
                               groups=sector, lot_sizes=pd.Series(100.0, index=tickers))
        info = reb.plan(state, targets).info
        if r == 0:
            continue  # first call compiles
        relax_t.append(info["relaxation_time"])
        extra_t.append(info["integer_time"])
        gaps.append(info["integer_gap_rel"])
        gaps_bps.append(info["integer_gap_bps"])
        moves.append(sum(info["moves"].values()))
        works.append(info["work"].get("lns_work", 0))
        last_state = state
    ratio = [(a + b) / a for a, b in zip(relax_t, extra_t)]
    out = {
        "n": n, "load_1min": os.getloadavg()[0],
        "relax_ms_median": 1e3 * statistics.median(relax_t),
        "round_extra_ms_median": 1e3 * statistics.median(extra_t),
        "round_extra_ms_max": 1e3 * max(extra_t),
        "total_over_relax_median": statistics.median(ratio),
        "total_over_relax_max": max(ratio),
        "lns_work_median": statistics.median(works),
        "gap_to_relax_%_median": 100 * statistics.median(gaps),
        "gap_to_relax_%_max": 100 * max(gaps),
        "gap_to_relax_bps_median": statistics.median(gaps_bps),
        "moves_median": statistics.median(moves),
    }
    rd = reb.plan(last_state, targets).info
    ex = IntegerRebalancer(relax, mode="exact", time_limit=limit,
                           mip_nodes=10**9).plan(last_state, targets).info
    b = ex.get("mip_bound")
    out.update({
        "round_certified_gap_%": 100 * rd["certified_gap_rel"],
        "round_bound_source": rd["bound_source"],
        "round_vs_exact_%": 100 * (rd["integer_objective"] - ex["integer_objective"])
        / ex["integer_objective"],
        "scip_timed_out_obj_bps": None if ex.get("mip_timed_out_objective") is None
        else 1e4 * ex["mip_timed_out_objective"],
        "round_vs_scip_%": None if ex.get("mip_timed_out_objective") is None
        else 100 * (rd["integer_objective"] - ex["mip_timed_out_objective"])
        / ex["mip_timed_out_objective"],
        "load_1min_after": os.getloadavg()[0],
        "exact_status": ex.get("mip_status"), "exact_s": ex.get("mip_time"),
        "exact_obj_bps": 1e4 * ex["integer_objective"],
        "round_obj_bps": 1e4 * ex["round_objective"],
        "relax_bps": 1e4 * ex["relaxation_objective"],
        "mip_bound_bps": None if b is None else 1e4 * b,
        "round_vs_mip_bound_%": None if b is None else
        100 * (ex["round_objective"] - max(b, ex["relaxation_objective"]))
        / ex["round_objective"],
        "notes": "; ".join(ex.get("notes", [])),
    })
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--limit", type=float, default=20.0)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--limit-500", type=float, default=60.0)
    ap.add_argument("--skip-50", action="store_true")
    ap.add_argument("--skip-500", action="store_true")
    args = ap.parse_args()
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        if not args.skip_50:
            for p in (2.0, 1.5):
                print(f"(a) 50 assets, $2M, 100-share lots, impact exponent {p}, "
                      f"SCIP limit {args.limit:g} s")
                print(bench50(args.cases, args.limit, p).round(3).to_string())
        if not args.skip_500:
            print("(b) 500 S&P 500 stocks, $10M, 100-share lots")
            for k, v in bench500(args.reps, args.limit_500).items():
                print(f"  {k:<26} {v if not isinstance(v, float) else round(v, 4)}")


if __name__ == "__main__":
    main()
