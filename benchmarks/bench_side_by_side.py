"""Benchmark two source trees side by side on bench_optimal's problems (not a test).

Runs :func:`bench_optimal.bench` (direct backend) in fresh subprocesses, alternating
the baseline tree and the candidate tree round by round, on the same books (same
seeds). Reports per size: median cold solve and warm re-solve of each, the warm
ratio candidate / baseline, and the largest relative objective difference.

Run: ``python benchmarks/bench_side_by_side.py --base /work/main/src --new src
[--sizes 100 500 2000] [--reps 15] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import json, sys
sys.path.insert(0, {bench!r})
from bench_optimal import child
r = child({n}, {reps}, "direct", "scalar")
print("JSON" + json.dumps({{"cold": r["cold_s"], "warm": r["warm_ms"], "objs": r["objs"]}}))
"""


def run(src: str, n: int, reps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", CHILD.format(bench=str(HERE), n=n, reps=reps)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("JSON"))[4:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"load: {os.getloadavg()}")
    for n in args.sizes:
        got: dict[str, list[dict]] = {"base": [], "new": []}
        for _ in range(args.rounds):
            for name, src in (("base", args.base), ("new", args.new)):
                got[name].append(run(src, n, args.reps))
        cold = {k: statistics.median(r["cold"] for r in v) for k, v in got.items()}
        warm = {k: statistics.median(r["warm"] for r in v) for k, v in got.items()}
        ob, on = got["base"][0]["objs"], got["new"][0]["objs"]
        diff = max(abs(a / b - 1) for a, b in zip(on, ob))
        print(f"n={n}: cold base {cold['base']:.3f}s new {cold['new']:.3f}s | warm base "
              f"{warm['base']:.1f}ms new {warm['new']:.1f}ms ratio "
              f"{warm['new'] / warm['base']:.3f} | max rel obj diff {diff:.2e}")
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
