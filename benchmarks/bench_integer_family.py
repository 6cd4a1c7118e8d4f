"""Benchmark: the integer stage against the brute-force family (not a test).

Runs ``tests/rebalance/integer_family.py`` over a range of seeds (the test uses the
first 240): round's gap to the true optimum (enumerated by hand), the certified gap
it reports, how often it says proven, and its time beyond the relaxation. ``--work
0`` turns the neighbourhood search and the enumeration off (the local search alone).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_integer_family.py [--seeds 1000]
[--start 0] [--work N] [--exact-assets 12]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rebalance"))

from integer_family import case, oracle

import rebalopt.rebalance.integer as integer_mod
from rebalopt import InfeasibleError


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--work", type=int, default=None)
    ap.add_argument("--exact-assets", type=int, default=None)
    args = ap.parse_args()
    if args.exact_assets is not None:
        integer_mod.EXACT_ASSETS = args.exact_assets
    gaps, cgaps, times, proven, infeasible, skipped, under, wrong = [], [], [], 0, 0, 0, 0, 0
    for seed in range(args.start, args.start + args.seeds):
        c = case(seed)
        kw = {} if args.work is None else {"work": args.work}
        try:
            plan = c.rebalancer(**kw).plan(c.state, c.targets)
        except InfeasibleError:
            infeasible += 1
            continue
        f = plan.info["integer_objective"]
        try:
            best, _, _ = oracle(c, f)
        except ValueError:
            skipped += 1
            continue
        gaps.append((f - best) / abs(best) if best else 0.0)
        cgaps.append(plan.info["certified_gap_rel"])
        times.append(plan.info["integer_time"])
        under += plan.info["certified_gap"] < f - best - 1e-12
        if plan.info["proven_optimal"]:
            proven += 1
            wrong += f - best > 1e-9 * abs(best) + 1e-13
    g = 100 * np.array(gaps)
    print(f"seeds {args.start}..{args.start + args.seeds - 1}: compared {len(g)}, "
          f"infeasible (agreed) {infeasible}, box too large {skipped}; load {os.getloadavg()}")
    print(f"round at the optimum: {(g <= 1e-7).sum()} of {len(g)}")
    print("gap to optimum, %: p50 {:.4f} p95 {:.4f} p99 {:.4f} worst {:.4f}".format(
        *np.percentile(g, [50, 95, 99, 100])))
    print("certified gap, % of objective: p50 {:.4f} p95 {:.4f} worst {:.4f}".format(
        *np.percentile(100 * np.array(cgaps), [50, 95, 100])))
    print(f"proven optimal {proven}, of which wrong {wrong}; certified gap below true {under}")
    print(f"integer time s: median {statistics.median(times):.4f} max {max(times):.4f}")


if __name__ == "__main__":
    main()
