"""Benchmark: one multi-period re-plan against H single-period solves (not a test).

The universe of ``bench_optimal.py`` (synthetic, factor risk k = 10, half spread + 3/2
impact, long-only, cash floor, 11 sector caps, one-way turnover cap, position caps),
500 assets by default, plus a participation cap of 5% of ADV per period. For each H:

* single: median wall time of ``OptimalRebalancer.solve`` (direct Clarabel path,
  warm: the program is built) on drifted books;
* multi: median wall time of ``MultiPeriodRebalancer.solve`` with ``periods=H`` on
  the same books (matrix assembly + Clarabel + per-period NumPy verification),
  and its Clarabel solve time alone;
* ratio = multi / single (goal for H = 5: at most 5, i.e. no worse than H
  single-period solves), and multi / (H x single).

Medians of ``--reps`` books, measured in one run; the machine load (``uptime``) is
printed beside the figures. Wall times swing with the load of a shared machine, so the
CPU time of the solving thread (``time.thread_time``: Clarabel's factorization runs
there) is reported beside them (``cpu`` columns); its ratio moves far less with the
load.

``--kkt`` prints, instead of the timings, the size of each program's KKT system and
its factor: Clarabel's KKT matrix ``[P + eps I, A'; A, -(H + I)]`` (``H`` one 3x3 block
per power cone, diagonal elsewhere) factored by ``qdldl`` (the Python package: the
AMD ordering and LDL' of which Clarabel's qdldl solver is a port), with ``nnz(L)``
and ``flops`` = sum of squared column counts of ``L`` (the work of one numeric
factorization, done once per interior-point iteration). A deterministic proxy: it does
not move with the machine's load.

``--cost-in-tracking`` plans with ``MultiPeriodRebalancer(cost_in_tracking=True)``
(one more column and one more dense row per period: each period's cost, squared in the
tracking term).

Run: ``.venv/bin/python benchmarks/bench_multiperiod.py [--n 500] [--horizons 5 10]
[--reps 7] [--kkt] [--cost-in-tracking]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_optimal import drifted_state, universe

from rebalopt import MarketImpact, Spread
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    LongOnly,
    ParticipationLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance.multiperiod import MultiPeriodRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def kkt_report(solve_single: Any, solves: dict[int, Any]) -> None:
    """Capture each program's Clarabel inputs and print its KKT factor (module docstring)."""
    import clarabel
    import qdldl
    import scipy.sparse as sp

    got: dict[str, tuple] = {}
    real = clarabel.DefaultSolver

    def capture(label: str, run: Any) -> None:
        def fake(P: Any, q: Any, A: Any, b: Any, cones: Any, settings: Any) -> Any:
            got[label] = (P, A, cones)
            return real(P, q, A, b, cones, settings)
        clarabel.DefaultSolver = fake  # both paths look it up on the module when solving
        try:
            run()
        finally:
            clarabel.DefaultSolver = real

    capture("single", solve_single)
    for H, run in solves.items():
        capture(f"H={H}", run)
    print(f"{'program':>8} {'nnz(A)':>8} {'KKT dim':>8} {'nnz(L)':>9} {'flops':>10} "
          f"{'flops/single':>12}")
    base = None
    for label, (P, A, cones) in got.items():
        blocks = []
        for c in cones:
            kind, arg = repr(c).rstrip(")").split("(")
            size = 3 if kind == "PowerConeT" else int(arg)
            blocks.append(np.ones((3, 3)) if kind == "PowerConeT" else sp.identity(size))
        Hs = sp.block_diag(blocks)
        nv, m = A.shape[1], A.shape[0]
        K = sp.bmat([[P + P.T - sp.diags(P.diagonal()) + 1e-8 * sp.identity(nv), A.T],
                     [A, -(Hs + sp.identity(m))]]).tocsc()
        L = qdldl.Solver(K).factors()[0].tocsc()
        flops = float((np.diff(L.indptr).astype(float) ** 2).sum())
        base = base or flops
        print(f"{label:>8} {A.nnz:8d} {K.shape[0]:8d} {L.nnz:9d} {flops:10.3e} "
              f"{flops / base:12.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--horizons", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--kkt", action="store_true",
                    help="print the KKT factor's size per program (no timings)")
    ap.add_argument("--cost-in-tracking", action="store_true",
                    help="MultiPeriodRebalancer(cost_in_tracking=True)")
    args = ap.parse_args()
    assets, prices, extras, targets, risk = universe(args.n)

    def cons() -> list:
        return [LongOnly(), CashFloor(), GroupBounds(upper=0.15), TurnoverLimit(0.05),
                WeightBounds(upper=max(0.02, 3.0 / args.n)), ParticipationLimit(0.05)]

    costs = [Spread(5.0), MarketImpact(coef=1.0)]
    single = OptimalRebalancer(risk=risk, costs=costs, constraints=cons(), horizon=1 / 252,
                               risk_aversion=100.0, time_limit=600.0)
    multis = {H: MultiPeriodRebalancer(periods=H, risk=risk, costs=costs, constraints=cons(),
                                       risk_aversion=100.0, time_limit=600.0,
                                       cost_in_tracking=args.cost_in_tracking)
              for H in args.horizons}
    rng = np.random.default_rng(1)
    books = [drifted_state(assets, prices, extras, targets, rng) for _ in range(args.reps + 1)]
    if args.kkt:
        kkt_report(lambda: single.solve(books[0], targets),
                   {H: (lambda m=m: m.solve(books[0], targets)) for H, m in multis.items()})
        return 0
    single.solve(books[0], targets)  # build
    for m in multis.values():
        m.solve(books[0], targets)
    t_single, t_multi, t_clar = [], {H: [] for H in multis}, {H: [] for H in multis}
    c_single, c_multi = [], {H: [] for H in multis}
    loads = [load()]
    for st in books[1:]:  # interleaved, so load changes hit every variant alike
        c0, t0 = time.thread_time(), time.perf_counter()
        single.solve(st, targets)
        t_single.append(time.perf_counter() - t0)
        c_single.append(time.thread_time() - c0)
        for H, m in multis.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            sol = m.solve(st, targets)
            t_multi[H].append(time.perf_counter() - t0)
            c_multi[H].append(time.thread_time() - c0)
            t_clar[H].append(sol.solve_time or float("nan"))
    loads.append(load())
    s = statistics.median(t_single)
    sc = statistics.median(c_single)
    print(f"{args.n} assets, {args.reps} books; load (1/5/15 min) before {loads[0]}, "
          f"after {loads[1]}; {os.cpu_count()} cores")
    print(f"single-period solve (warm, direct): median {1e3 * s:.1f} ms wall, "
          f"{1e3 * sc:.1f} ms cpu")
    print(f"{'H':>3} {'multi ms':>9} {'clarabel ms':>11} {'multi/single':>12} "
          f"{'multi/(H x single)':>18} {'cpu ms':>8} {'cpu ratio':>9}")
    for H in multis:
        m = statistics.median(t_multi[H])
        c = statistics.median(t_clar[H])
        mc = statistics.median(c_multi[H])
        print(f"{H:>3} {1e3 * m:9.1f} {1e3 * c:11.1f} {m / s:12.2f} {m / (H * s):18.2f} "
              f"{1e3 * mc:8.1f} {mc / sc:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
