"""Same inputs, same plan: the integer stage's budgets are counts, not seconds.

Consecutive calls and fresh Python processes give bit-identical trades, including
runs where a budget is exhausted: the round mode's neighbourhood work budget, and
the MIP's node budget (``mip_nodes``), which stops SCIP at the same node on any
machine, where a wall-clock limit would stop it wherever the clock says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def run(mode: str, work: int, nodes: int) -> dict:
    """Plan the 40-asset sector-cap book (``test_integer.forty(0)``) and report it."""
    from test_integer import forty

    from rebalopt.rebalance.integer import IntegerRebalancer

    state, targets, relax = forty(0)
    reb = IntegerRebalancer(relax, mode=mode, work=work, mip_nodes=nodes, time_limit=120.0)
    info = reb.plan(state, targets)
    plan = reb.plan(state, targets)
    return {"trades": [float(v).hex() for v in plan.trades],
            "again": [float(v).hex() for v in info.trades],
            "mip_status": plan.info.get("mip_status"),
            "budget_exhausted": plan.info["work"].get("budget_exhausted", 0),
            "notes": plan.info["notes"]}


def fresh(mode: str, work: int, nodes: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]),
               PYTHONHASHSEED="random")
    code = ("import json, test_integer_determinism as t; "
            f"print(json.dumps(t.run({mode!r}, {work}, {nodes})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=str(HERE), timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_round_with_its_work_budget_exhausted_is_the_same_everywhere():
    a = run("round", 3_000, 0)
    assert a["budget_exhausted"] == 1          # the budget did bind
    assert a["trades"] == a["again"]           # consecutive calls
    b, c = fresh("round", 3_000, 0), fresh("round", 3_000, 0)
    assert a["trades"] == b["trades"] == c["trades"]  # fresh processes


@pytest.mark.skipif("SCIP" not in cp.installed_solvers(), reason="SCIP not installed")
def test_exact_stopped_by_its_node_budget_is_the_same_everywhere():
    a = run("exact", 200_000, 5)
    assert a["mip_status"] != "optimal", a   # stopped by the node budget, not solved
    assert a["trades"] == a["again"]
    b = fresh("exact", 200_000, 5)
    assert a["trades"] == b["trades"]
    assert a["mip_status"] == b["mip_status"]
    assert np.isfinite([float.fromhex(v) for v in a["trades"]]).all()


def test_time_limit_is_a_ceiling_on_the_whole_stage():
    """A ceiling already passed when the relaxation returns: the neighbourhood search
    and the MIP are skipped (the notes say so) and the verified round plan is returned."""
    from test_integer import forty, hand_check

    from rebalopt.rebalance.integer import IntegerRebalancer

    state, targets, relax = forty(1)
    plan = IntegerRebalancer(relax, mode="exact", time_limit=1e-9).plan(state, targets)
    notes = " ".join(plan.info["notes"])
    assert "time_limit reached before the neighbourhood search" in notes
    assert "time_limit reached before the MIP" in notes
    assert "mip_status" not in plan.info
    hand_check(plan, state, targets, cap=0.30)
