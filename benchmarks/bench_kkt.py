"""Benchmark: Clarabel's KKT method and the risk form of the direct program, per size.

The program is bench_optimal.py's (factor risk k = 10, spread + 3/2 impact, long-only,
cash floor, sector caps, turnover and position caps). For each size the matrices
Clarabel receives are captured once per risk form (``aux``: ``e = s (z + d0)`` with
``P = 2I``; ``diag``: ``P = diag(2 s^2)`` on ``z``, no ``e``), then solved by a fresh
``DefaultSolver`` (construction + ``solve()``, wall time) with
``direct_solve_method`` in ``auto`` / ``qdldl`` (and ``faer`` when built in). The
configurations are interleaved repeat by repeat, so a change in the machine's load
hits them alike; medians, each configuration's ratio to ``aux``/``auto`` of the same
run, and the load before and after each size are printed, with the objective's
largest relative difference to ``aux``/``auto`` (the configurations solve the same
program).

Also reports, per size, whether a solver kept between solves and given the next
book's data with ``DefaultSolver.update`` answers bit for bit what a fresh solver
answers (it re-uses the first data's equilibration, so by default it does not).

Run: ``.venv/bin/python benchmarks/bench_kkt.py [--sizes 100 500 2000 5000] [--reps 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import clarabel
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_optimal as bo

from rebalopt import MarketImpact, PortfolioState, Spread
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    LongOnly,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance.optimal import OptimalRebalancer


def captured_programs(n: int, forms: list[str], books: int = 2) -> dict[str, list[tuple]]:
    """Clarabel's inputs for ``books`` drifted books, per risk form."""
    from rebalopt.rebalance import _clarabel

    assets, prices, extras, targets, risk = bo.universe(n)
    index = pd.Index(assets, dtype=object, name="asset")
    tg = targets.to_numpy()  # DirectProblem takes the aligned weights
    out: dict[str, list[tuple]] = {}
    real = clarabel.DefaultSolver
    for form in forms:
        rng = np.random.default_rng(1)
        reb = OptimalRebalancer(
            risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
            constraints=[LongOnly(), CashFloor(), GroupBounds(upper=0.15),
                         TurnoverLimit(0.05), WeightBounds(upper=max(0.02, 3.0 / n))],
            risk_aversion=100.0, backend="direct")
        got: list[tuple] = []

        def capture(P, q, A, b, cones, settings, got=got):
            got.append((P.copy(), q.copy(), A.copy(), b.copy(), cones))
            return real(P, q, A, b, cones, settings)

        clarabel.DefaultSolver = capture
        try:
            for _ in range(books):
                hold, cash, px = bo.drifted_book(prices.to_numpy(), targets.to_numpy(), rng)
                state = PortfolioState.from_arrays(
                    index, hold, cash, px, adv=extras["adv"].to_numpy(),
                    volatility=extras["volatility"].to_numpy(),
                    groups=extras["groups"].to_numpy(dtype=object))
                root = reb.root(state)
                prog = _clarabel.DirectProblem(state, tg, root.G.shape[1], reb.costs,
                                               reb.constraints, False, risk_form=form)
                prog.solve(state, tg, root.G, root.s, reb.risk_aversion, reb.horizon, None)
        finally:
            clarabel.DefaultSolver = real
        out[form] = got
    return out


def settings(method: str, **extra: Any) -> Any:
    from rebalopt.rebalance._clarabel import DIRECT_SETTINGS

    st = clarabel.DefaultSettings()
    for k, v in {**DIRECT_SETTINGS, **extra}.items():
        setattr(st, k, v)
    st.direct_solve_method = method
    return st


def update_is_bit_identical(prog: list[tuple], method: str, **extra: Any) -> bool:
    """Solve book 0, update to book 1, compare with a fresh solver on book 1."""
    st = settings(method, **extra)
    P0, q0, A0, b0, cones = prog[0]
    P1, q1, A1, b1, _ = prog[1]
    kept = clarabel.DefaultSolver(P0, q0, A0, b0, cones, st)
    kept.solve()
    kept.update(P=P1, q=q1, A=A1, b=b1)
    a = np.asarray(kept.solve().x)
    b = np.asarray(clarabel.DefaultSolver(P1, q1, A1, b1, cones, st).solve().x)
    return bool(np.array_equal(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000, 5000])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--methods", nargs="+", default=["auto", "qdldl"])
    args = ap.parse_args()
    forms = ["aux", "diag"]
    for n in args.sizes:
        load0 = os.getloadavg()[0]
        progs = captured_programs(n, forms)
        configs = [(f, m) for f in forms for m in args.methods]
        times: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
        objs: dict[tuple[str, str], float] = {}
        iters: dict[tuple[str, str], int] = {}
        for _ in range(args.reps):
            for form, method in configs:
                P, q, A, b, cones = progs[form][1]
                st = settings(method)
                t0 = time.perf_counter()
                sol = clarabel.DefaultSolver(P, q, A, b, cones, st).solve()
                times[(form, method)].append(time.perf_counter() - t0)
                objs[(form, method)] = float(sol.obj_val)
                iters[(form, method)] = int(sol.iterations)
        base = statistics.median(times[configs[0]])
        print(f"n={n} (load {load0:.1f} -> {os.getloadavg()[0]:.1f}, {args.reps} reps)")
        for c in configs:
            med = statistics.median(times[c])
            # aux and diag differ by the constant s'd0 term folded into e: compare within form
            ref = objs[(c[0], args.methods[0])]
            print(f"  risk={c[0]:<4} kkt={c[1]:<6} {1e3 * med:9.1f} ms  x{med / base:5.2f}  "
                  f"iters {iters[c]:3d}  obj diff {abs(objs[c] - ref) / max(abs(ref), 1e-12):.1e}")
        for extra in ({}, {"equilibrate_enable": False}):
            same = update_is_bit_identical(progs["aux"], args.methods[0], **extra)
            print(f"  update() bit-identical to a fresh solve ({extra or 'default settings'}): "
                  f"{same}")


if __name__ == "__main__":
    main()
