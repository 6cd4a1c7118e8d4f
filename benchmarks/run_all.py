"""Run every benchmark script in benchmarks/ (``bench_*.py``), one after the other.

Each script is run in its own process with this interpreter, from the repository
root; its output is streamed, and a summary (exit code, wall time) is printed at the
end. ``--quick`` is passed on to every script that offers it (its source mentions
``--quick``: smaller sizes, fewer repeats); the others run in full, and say so.
Exit code: 0 if every script succeeded, 1 otherwise.

Usage: ``python benchmarks/run_all.py [--quick] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(only: list[str] | None) -> list[Path]:
    """The benchmark scripts present, in name order (optionally filtered by name)."""
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        found = [p for p in found if any(o in p.stem for o in only)]
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every script")
    ap.add_argument("--only", nargs="+", default=None,
                    help="run only scripts whose name contains one of these")
    args = ap.parse_args(argv)
    todo = scripts(args.only)
    if not todo:
        print("no benchmark scripts found")
        return 1
    results = []
    for path in todo:
        quick = args.quick and "--quick" in path.read_text()
        cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
        mode = "(quick)" if quick else ("(full: no quick mode)" if args.quick else "")
        print(f"\n===== {path.name} {mode} =====", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        results.append((path.name, rc, time.perf_counter() - t0))
    print("\n===== summary =====")
    for name, rc, secs in results:
        print(f"{name:<28} {'ok' if rc == 0 else f'FAILED (exit {rc})':<18} {secs:8.1f} s")
    return 0 if all(rc == 0 for _, rc, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
