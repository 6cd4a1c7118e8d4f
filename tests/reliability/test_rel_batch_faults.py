"""rebalance_many when a worker process dies (issue 13, item 6).

A worker killed while planning one account (``os._exit``, SIGKILL) must fail that
account only: every other account gets the plan a serial run gives (bit for bit),
on a process pool and on a local Dask cluster, and the batch ends (the retries are
bounded: each account of a failed task is planned alone once).
"""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rel_dying import DyingRebalancer
from rel_helpers import count

from rebalopt import NaiveRebalancer, PortfolioState, RebalanceConfig, Spread
from rebalopt.rebalance import batch as batch_mod
from rebalopt.rebalance.batch import Account, rebalance_many

INNER = NaiveRebalancer(RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0),
                        costs=[Spread(5.0)])


def make_accounts(n: int) -> list[Account]:
    rng = np.random.default_rng(7)
    out = []
    for k in range(n):
        names = [f"U{i:02d}" for i in range(8)] if k % 2 == 0 else [f"V{i:02d}" for i in range(5)]
        prices = pd.Series(rng.uniform(10, 100, len(names)), index=names)
        holdings = pd.Series(rng.integers(0, 300, len(names)).astype(float), index=names)
        cash = 1000.0 + k  # unique per account: the dying rebalancer keys on it
        w = pd.Series(rng.dirichlet(np.ones(len(names))) * 0.95, index=names)
        out.append(Account(f"acct{k:02d}", PortfolioState(holdings, cash, prices), w))
    return out


ACCOUNTS = make_accounts(16)


def serial_plans() -> dict[str, np.ndarray]:
    batch_mod.clear_worker_cache()
    res = rebalance_many(ACCOUNTS, INNER, chunk_size=4)
    assert res.ok
    return {k: p.trades for k, p in res.plans.items()}


SERIAL = None


def check_only_culprits_fail(res, culprits: list[str], accounts=ACCOUNTS) -> None:
    global SERIAL
    SERIAL = SERIAL or serial_plans()
    assert sorted(res.errors) == sorted(culprits)
    for name in culprits:
        err = res.errors[name]
        assert "this account is the cause" in err.message, err
        row = res.frame.set_index("account").loc[name]
        assert row["status"] == "error" and row["worker"] == -1
    assert list(res.plans) == [a.name for a in accounts if a.name not in culprits]
    for name, plan in res.plans.items():
        assert plan.trades.tobytes() == SERIAL[name].tobytes(), name


@pytest.mark.parametrize(("how", "culprits"), [
    ("exit", ["acct05"]),             # inside a chunk (chunk-mates on the same worker)
    ("kill", ["acct00"]),             # SIGKILL of the anchor that primes its universe
    ("exit", ["acct03", "acct10"]),   # two culprits, two universes
])
def test_dead_worker_on_a_process_pool_fails_its_account_only(how, culprits):
    count("batch_fault")
    cash = frozenset(1000.0 + int(c[4:]) for c in culprits)
    reb = DyingRebalancer(INNER, cash, how)
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = rebalance_many(ACCOUNTS, reb, ex, chunk_size=4)
    check_only_culprits_fail(res, culprits)


def test_pool_broken_before_the_call_still_plans_every_account():
    """A pool broken by an earlier crash: every account is planned on a private pool."""
    count("batch_fault")
    ex = ProcessPoolExecutor(max_workers=1)
    fut = ex.submit(os.kill, 0, 0)  # start the worker
    fut.result()
    pid = next(iter(ex._processes))
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(Exception):  # noqa: B017 - the pool is broken now
        ex.submit(int, 1).result()
    res = rebalance_many(ACCOUNTS[:6], INNER, ex, chunk_size=3)
    ex.shutdown()
    assert res.ok and list(res.plans) == [a.name for a in ACCOUNTS[:6]]


def test_hung_worker_times_out_its_account_only():
    """A worker that hangs (it never returns, never dies) would hold the batch forever;
    with a timeout its account gets a TimeoutError and the others their serial plans."""
    import time

    global SERIAL
    SERIAL = SERIAL or serial_plans()
    count("batch_fault")
    reb = DyingRebalancer(INNER, frozenset({1005.0}), "hang", hang_seconds=120.0)
    ex = ProcessPoolExecutor(max_workers=2)
    try:
        t0 = time.perf_counter()
        res = rebalance_many(ACCOUNTS, reb, ex, chunk_size=1, timeout=15.0)
        elapsed = time.perf_counter() - t0
    finally:
        for proc in list(ex._processes.values()):  # the hung one sleeps for 120 s
            proc.kill()
        ex.shutdown(wait=False, cancel_futures=True)
    assert 14.0 < elapsed < 60.0
    assert list(res.errors) == ["acct05"]
    assert res.errors["acct05"].type == "TimeoutError"
    assert list(res.plans) == [a.name for a in ACCOUNTS if a.name != "acct05"]
    for name, plan in res.plans.items():
        assert plan.trades.tobytes() == SERIAL[name].tobytes(), name


def test_timeout_without_an_executor_or_not_positive_is_an_input_error():
    from rebalopt.errors import InputError

    with pytest.raises(InputError, match="needs an executor"):
        rebalance_many(ACCOUNTS[:2], INNER, timeout=5.0)
    for bad in (0, -1.0, float("nan"), True, "5"):
        with ProcessPoolExecutor(max_workers=1) as ex, pytest.raises(InputError):
            rebalance_many(ACCOUNTS[:2], INNER, ex, timeout=bad)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")
    import dask

    # allowed-failures 0: a task on a worker that dies fails at once (KilledWorker), the
    # harshest case (chunk-mates fail with the culprit) and the quickest to test; two
    # workers, so the cluster is never left without one while a nanny restarts the other
    # (with one worker, a slow restart under load once left the retries waiting)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.upload_file(str(Path(__file__).with_name("rel_dying.py")))
        yield client


def test_dead_worker_on_a_dask_cluster_fails_its_account_only(dask_client):
    count("batch_fault")
    # upload_file re-imports rel_dying here too: take the class it pickles by name now
    reb = sys.modules["rel_dying"].DyingRebalancer(INNER, frozenset({1006.0}), "exit")
    res = rebalance_many(ACCOUNTS[:8], reb, dask_client.get_executor(), chunk_size=4)
    check_only_culprits_fail(res, ["acct06"], ACCOUNTS[:8])
