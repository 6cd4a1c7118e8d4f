"""Benchmark: OptimalRebalancer cold build and warm re-solve (not a test).

Synthetic universes of 100 / 500 / 2,000 assets: factor risk (k = 10), half-spread +
3/2-power impact, long-only, cash floor, 11 sector caps, one-way turnover cap and
position caps. For each size:

* cold: first ``solve`` (validation + compile + solve), seconds;
* warm: median of ``solve`` on drifted books of the same universe (parameter update +
  solve + NumPy verification), and of ``plan`` (adds the plan's accounting);
* solver: median of the solver's own ``solve_time`` in those warm solves;
* overhead = warm / solver.

Both backends: ``direct`` (matrices from NumPy straight into Clarabel, a fresh solver
per solve) and ``cvxpy`` (the DPP-compiled cvxpy program, the reference); ``obj_vs_cvxpy``
is the largest relative objective difference of the direct path on the same books.

Goal (issue 4): 500 assets warm <= 1.15 x solver and < 60 ms; 2,000 < 350 ms.

Run: ``.venv/bin/python benchmarks/bench_optimal.py [--sizes 100 500 2000] [--reps 15]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from rebalopt import MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import FactorModel

SECTORS = [f"Sector{j:02d}" for j in range(11)]


def universe(n: int, k: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    assets = [f"A{i:04d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 300, n), index=assets)
    B = pd.DataFrame(rng.normal(0, 1, (n, k)) * 0.3, index=assets,
                     columns=[f"f{j}" for j in range(k)])
    B["f0"] += 1.0
    A = rng.normal(0, 0.05, (k, k))
    F = pd.DataFrame(A @ A.T + np.diag(np.full(k, 0.002)), index=B.columns, columns=B.columns)
    risk = FactorModel(B, F, pd.Series(rng.uniform(0.01, 0.09, n), index=assets))
    extras = dict(adv=pd.Series(rng.uniform(1e5, 5e6, n), index=assets),
                  volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=assets),
                  groups=pd.Series(rng.choice(SECTORS, n), index=assets))
    targets = pd.Series(rng.dirichlet(np.ones(n) * 2) * 0.98, index=assets)
    return assets, prices, extras, targets, risk


def drifted_state(assets, prices, extras, targets, rng, equity=1e8):
    """A book near the targets after a month of random returns."""
    drift = np.exp(rng.normal(0, 0.08, len(assets)))
    px = prices * drift
    value = targets.to_numpy() * equity
    hold = pd.Series(value / prices.to_numpy(), index=assets)
    return PortfolioState(hold, 0.02 * equity, px, **extras)


def bench(n: int, reps: int, backend: str) -> dict[str, float]:
    assets, prices, extras, targets, risk = universe(n)
    rng = np.random.default_rng(1)
    reb = OptimalRebalancer(
        risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=0.15),
                     TurnoverLimit(0.05), WeightBounds(upper=max(0.02, 3.0 / n))],
        risk_aversion=100.0, backend=backend,
    )
    state = drifted_state(assets, prices, extras, targets, rng)
    t0 = time.perf_counter()
    sol = reb.solve(state, targets)
    cold = time.perf_counter() - t0
    warm, solver, plan_t, iters, objs = [], [], [], [], []
    for _ in range(reps):
        state = drifted_state(assets, prices, extras, targets, rng)
        t0 = time.perf_counter()
        sol = reb.solve(state, targets)
        warm.append(time.perf_counter() - t0)
        solver.append(sol.solve_time)
        iters.append(sol.iterations)
        objs.append(sol.objective)
        t0 = time.perf_counter()
        reb.plan(state, targets)
        plan_t.append(time.perf_counter() - t0)
    assert reb.compilations == 1, "a warm re-solve recompiled"
    w, s = statistics.median(warm), statistics.median(solver)
    return {"backend": backend, "n": n, "cold_s": cold, "warm_ms": 1e3 * w, "solver_ms": 1e3 * s,
            "overhead": w / s, "plan_ms": 1e3 * statistics.median(plan_t),
            "iters": statistics.median(iters), "objs": objs,
            "binding": ",".join(sol.binding)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--backends", nargs="+", default=["direct", "cvxpy"])
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        got = {b: bench(n, args.reps, b) for b in args.backends}
        for b, r in got.items():
            if b != "cvxpy" and "cvxpy" in got:
                ref = np.array(got["cvxpy"]["objs"])
                r["obj_vs_cvxpy"] = float(np.max(np.abs(np.array(r["objs"]) / ref - 1)))
            rows.append(r)
    for r in rows:
        r.pop("objs")
    df = pd.DataFrame(rows).set_index(["n", "backend"])
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(df.round(3).to_string())


if __name__ == "__main__":
    main()
