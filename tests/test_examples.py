"""The scripts in examples/ run (real data from skfolio's wheel) and say what they should."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("skfolio", reason="examples use skfolio's dataset (extra: demo)")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "examples" / script), *args],
                          check=False, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_targets_from_skfolio() -> None:
    proc = _run("targets_from_skfolio.py")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tracking error before:")
    table = {ln.split()[0]: ln.split()[1:] for ln in lines[3:]}
    assert set(table) == {"naive", "band", "optimal"}
    before = float(lines[0].split(":")[1].split("%")[0]) / 100
    # the optimal rebalancer removes most of the tracking error and pays less than naive
    opt_cost, naive_cost = float(table["optimal"][2]), float(table["naive"][2])
    assert float(table["optimal"][3]) < 0.25 * before
    assert opt_cost <= naive_cost


def test_order_file_from_csv(tmp_path: Path) -> None:
    proc = _run("order_file_from_csv.py", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RebalancePlan (optimal-integer)" in proc.stdout
    with (tmp_path / "orders.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(float(r["quantity"]).is_integer() for r in rows)
    sides = [r["side"] for r in rows]
    assert sides == sorted(sides, key=lambda s: s != "sell")
