"""Benchmark: OptimalRebalancer cold build and warm re-solve against Clarabel (not a test).

Synthetic universes of 100 to 20,000 assets: factor risk (k = 10), half-spread +
3/2-power impact, long-only, cash floor, 11 sector caps, one-way turnover cap and
position caps. Each (size, backend, spread) runs in its own process, so its peak
memory is its own; the machine's load (1-minute average) is noted before and after.

Per row:

* ``cold_s``: the first plan's state (from arrays) + ``solve`` (validation, compile,
  solve, verification), seconds;
* ``warm_ms``: median over drifted books of the same universe of building the state
  with :meth:`PortfolioState.from_arrays` **and** ``solve`` (parameter update, solve,
  NumPy verification); ``state_ms`` is the state-building part alone;
* ``clarabel_ms``: median wall time of Clarabel's own ``solve()`` calls in those warm
  solves (timed around the call; solver construction and set-up excluded), and
  ``solve_time_ms`` Clarabel's reported ``solve_time`` (which includes its set-up);
* ``x_clarabel`` = warm / clarabel (the issue-16 bar: <= 1.10 at 500 and 2,000 assets);
* ``plan_ms``: ``plan`` (the solve plus the plan's accounting) on the same book;
* ``peak_mb``: the process's peak resident memory, and ``base_mb`` the same just
  before the rebalancer is made (interpreter, libraries, data).

``--spread per-asset`` prices the half spread from a Series keyed by ticker (the
coefficients are aligned once per state). Backends: ``direct`` (matrices from NumPy
straight into Clarabel) and ``cvxpy`` (the DPP-compiled program, the reference; only
up to ``--cvxpy-max`` assets: its compile does not fit in memory at 10,000);
``obj_vs_cvxpy`` is the largest relative objective difference on the same books.

Goals (issue 16): warm <= 1.10 x Clarabel's ``solve()`` at 500 and 2,000 assets;
10,000 assets warm <= 1.2 s, cold <= 1.5 s, peak <= 0.5 GB; 20,000 under 1 GB.

Run: ``.venv/bin/python benchmarks/bench_optimal.py [--sizes 100 500 2000 5000 10000 20000]
[--reps 15] [--spread scalar per-asset]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, ClassVar

import numpy as np
import pandas as pd

SECTORS = [f"Sector{j:02d}" for j in range(11)]


def universe(n: int, k: int = 10, seed: int = 0):
    from rebalopt.risk import FactorModel

    rng = np.random.default_rng(seed)
    assets = [f"A{i:05d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 300, n), index=assets)
    B = pd.DataFrame(rng.normal(0, 1, (n, k)) * 0.3, index=assets,
                     columns=[f"f{j}" for j in range(k)])
    B["f0"] += 1.0
    A = rng.normal(0, 0.05, (k, k))
    F = pd.DataFrame(A @ A.T + np.diag(np.full(k, 0.002)), index=B.columns, columns=B.columns)
    risk = FactorModel(B, F, pd.Series(rng.uniform(0.01, 0.09, n), index=assets))
    extras = {"adv": pd.Series(rng.uniform(1e5, 5e6, n), index=assets),
              "volatility": pd.Series(rng.uniform(0.01, 0.03, n), index=assets),
              "groups": pd.Series(rng.choice(SECTORS, n), index=assets)}
    targets = pd.Series(rng.dirichlet(np.ones(n) * 2) * 0.98, index=assets)
    return assets, prices, extras, targets, risk


def drifted_book(prices: np.ndarray, targets: np.ndarray, rng, equity: float = 1e8):
    """Holdings, cash and prices of a book near the targets after a month of returns."""
    px = prices * np.exp(rng.normal(0, 0.08, len(prices)))
    return targets * equity / prices, 0.02 * equity, px


def drifted_state(assets, prices, extras, targets, rng, equity=1e8):
    """The same book as a PortfolioState (kept for other benchmarks that import it)."""
    from rebalopt import PortfolioState

    hold, cash, px = drifted_book(prices.to_numpy(), targets.to_numpy(), rng, equity)
    return PortfolioState(pd.Series(hold, index=assets), cash, pd.Series(px, index=assets),
                          **extras)


class _ClarabelClock:
    """Wraps ``clarabel.DefaultSolver`` so every ``solve()`` call is timed (wall)."""

    calls: ClassVar[list[float]] = []

    def __init__(self, real: Any) -> None:
        self.real = real

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        clock = self

        class Timed:
            def __init__(self) -> None:
                self._s = clock.real(*args, **kwargs)

            def solve(self, *a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                out = self._s.solve(*a, **k)
                _ClarabelClock.calls.append(time.perf_counter() - t0)
                return out

            def __getattr__(self, name: str) -> Any:
                return getattr(self._s, name)

        return Timed()


def child(n: int, reps: int, backend: str, spread: str) -> dict[str, Any]:
    import clarabel

    from rebalopt import MarketImpact, PortfolioState, Spread
    from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
    from rebalopt.rebalance.optimal import OptimalRebalancer

    clarabel.DefaultSolver = _ClarabelClock(clarabel.DefaultSolver)
    load0 = os.getloadavg()[0]
    assets, prices, extras, targets, risk = universe(n)
    index = pd.Index(assets, dtype=object, name="asset")
    px0, tw = prices.to_numpy(), targets.to_numpy()
    tg = pd.Series(tw, index=index)  # labelled by ticker; same Index: no look-ups
    adv, vol = extras["adv"].to_numpy(), extras["volatility"].to_numpy()
    groups = extras["groups"].to_numpy(dtype=object)
    hs = (Spread(5.0) if spread == "scalar" else
          Spread(pd.Series(np.random.default_rng(7).uniform(2.0, 8.0, n), index=assets)))
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reb = OptimalRebalancer(
        risk=risk, costs=[hs, MarketImpact(coef=1.0)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=0.15),
                     TurnoverLimit(0.05), WeightBounds(upper=max(0.02, 3.0 / n))],
        risk_aversion=100.0, backend=backend,
    )
    rng = np.random.default_rng(1)

    def state_of(book: tuple[np.ndarray, float, np.ndarray]) -> PortfolioState:
        hold, cash, px = book
        return PortfolioState.from_arrays(index, hold, cash, px, adv=adv, volatility=vol,
                                          groups=groups)

    book = drifted_book(px0, tw, rng)
    t0 = time.perf_counter()
    sol = reb.solve(state_of(book), tg)
    cold = time.perf_counter() - t0
    warm, state_t, clar, stime, plan_t, iters, objs = [], [], [], [], [], [], []
    for _ in range(reps):
        book = drifted_book(px0, tw, rng)
        _ClarabelClock.calls.clear()
        t0 = time.perf_counter()
        state = state_of(book)
        t1 = time.perf_counter()
        sol = reb.solve(state, tg)
        t2 = time.perf_counter()
        warm.append(t2 - t0)
        state_t.append(t1 - t0)
        clar.append(sum(_ClarabelClock.calls) if _ClarabelClock.calls else np.nan)
        stime.append(sol.solve_time)
        iters.append(sol.iterations)
        objs.append(sol.objective)
        t0 = time.perf_counter()
        reb.plan(state, tg)
        plan_t.append(time.perf_counter() - t0)
    assert reb.compilations == 1, "a warm re-solve recompiled"
    w, c = statistics.median(warm), statistics.median(clar)
    return {"n": n, "backend": backend, "spread": spread,
            "load": f"{load0:.1f}/{os.getloadavg()[0]:.1f}",
            "cold_s": cold, "warm_ms": 1e3 * w,
            "state_ms": 1e3 * statistics.median(state_t),
            "clarabel_ms": 1e3 * c, "solve_time_ms": 1e3 * statistics.median(stime),
            "x_clarabel": w / c, "plan_ms": 1e3 * statistics.median(plan_t),
            "iters": statistics.median(iters),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "base_mb": base_mb, "objs": objs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000, 5000, 10000,
                                                             20000])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--large-reps", type=int, default=5, help="reps above 2,000 assets")
    ap.add_argument("--backends", nargs="+", default=["direct", "cvxpy"])
    ap.add_argument("--spread", nargs="+", default=["scalar", "per-asset"],
                    choices=["scalar", "per-asset"])
    ap.add_argument("--cvxpy-max", type=int, default=2000)
    ap.add_argument("--child", nargs=4, metavar=("N", "REPS", "BACKEND", "SPREAD"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        n, reps, backend, spread = args.child
        print(json.dumps(child(int(n), int(reps), backend, spread)))
        return
    rows = []
    for n in args.sizes:
        reps = args.reps if n <= 2000 else args.large_reps
        for spread in args.spread:
            got: dict[str, dict[str, Any]] = {}
            for b in args.backends:
                if b == "cvxpy" and n > args.cvxpy_max:
                    continue
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), str(reps), b, spread],
                    capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(f"n={n} {b} {spread}: failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                got[b] = r
                print(f"n={n} {b} {spread}: warm {r['warm_ms']:.1f} ms, "
                      f"x_clarabel {r['x_clarabel']:.3f}, cold {r['cold_s']:.2f} s, "
                      f"peak {r['peak_mb']:.0f} MB, load {r['load']}", flush=True)
            for b, r in got.items():
                if b != "cvxpy" and "cvxpy" in got:
                    ref = np.array(got["cvxpy"]["objs"])
                    r["obj_vs_cvxpy"] = float(np.max(np.abs(np.array(r["objs"]) / ref - 1)))
                rows.append(r)
    if not rows:
        print("no size ran")
        return
    for r in rows:
        r.pop("objs")
    df = pd.DataFrame(rows).set_index(["n", "backend", "spread"])
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(df.round(3).to_string())


if __name__ == "__main__":
    main()
