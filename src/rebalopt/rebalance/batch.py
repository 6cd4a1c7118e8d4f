"""Rebalance many accounts at once, serially or on any ``concurrent.futures`` executor.

Separately managed accounts and model portfolios often share a universe: the
same assets, in the same order, with different holdings, cash and targets. A
rebalancer that compiles its convex program per universe (cvxpy Parameters,
DPP) then only re-solves for each account. :func:`rebalance_many` keeps that
property across processes:

* the rebalancer is pickled **once per call** (bytes + digest);
* accounts are grouped by universe (and by their extra constraints) and sent in
  chunks, one task per chunk; on an executor the chunks shrink towards the end of
  the batch (guided scheduling: at most a ``2 * workers``-th of the accounts left),
  so no worker waits idle while another plans a last full chunk;
* each worker process keeps a small cache of rebalancer copies keyed by
  ``(digest, universe, extra constraints, anchor)``, so a process compiles one
  problem per universe and re-solves it for every later account of that
  universe (and in later calls with the same configuration and anchor);
* every new copy is *primed* by planning the first account of its group once
  (result discarded). Solvers that keep state from their first solve (cvxpy
  re-uses Clarabel's setup, e.g. its equilibration, and only updates the data)
  then answer each account identically in whichever process and chunk it lands:
  measured, without priming the optimal rebalancer's trades differ by ~1e-7
  between executors; with it they are bit-for-bit identical on the tests' problems.
  Caveat: when Clarabel *fails* on an account (cvxpy keeps the failed solver), later
  answers in that process depend on that history again (differences at solver
  tolerance). ``OptimalRebalancer(solver_options={"CLARABEL": {"warm_start": False}})``
  makes every solve depend on its inputs only. The direct backend (the default)
  keeps one Clarabel solver per program structure too, but its answers depend on
  the inputs only (the equilibration is computed per program; a failed solver is
  dropped): priming changes nothing there.

``executor=None`` runs in the calling process through the same code path, so
the results do not depend on the executor (nor on ``chunk_size``) as long as a
rebalancer's answer depends only on its inputs and its first solve. With Dask, pass
``distributed.Client(...).get_executor()`` and the same call runs on a cluster.

A failure in one account (bad input, infeasible program, solver failure) is
recorded for that account and does not affect the others. So is a worker that
dies while planning (``os._exit``, SIGKILL, a segfault in a native library): on a
process pool every pending task then fails (``BrokenProcessPool``), on Dask the
tasks of the dead worker may fail (``KilledWorker``). Every account of a task that
failed this way is planned again *alone*, one task at a time, in input order: on
the caller's executor while it still accepts work, else on a private one-process
pool (same start method) that is replaced after each crash. An account whose lone
task fails twice is the culprit and gets an :class:`AccountError` naming the
failure (``frame["worker"]`` is -1); the others get the plans a serial run gives.
Each account is run alone at most twice (``_LONE_ATTEMPTS``), so the batch ends:
bounded, and the same accounts fail on every run.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from collections.abc import Iterable
from concurrent.futures import (
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    as_completed,
)
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._checks import flag
from rebalopt.errors import InputError
from rebalopt.rebalance._batch_worker import (
    _constraints_key,
    _digest,
    _Outcome,
    _packed,
    _reattach,
    _retry_alone,
    _run_task,
    _Task,
    _worker_lost,
    clear_worker_cache,
    with_constraints,
)
from rebalopt.rebalance.accounts import Account, AccountError, BatchResult, Rebalancer

__all__ = [
    "Account",
    "AccountError",
    "BatchResult",
    "Rebalancer",
    "clear_worker_cache",
    "rebalance_many",
    "with_constraints",
]

DEFAULT_CHUNK_SIZE = 50
"""Accounts per task, at most (the last tasks on an executor are smaller:
:func:`_chunk_size`)."""


def _pickle_rebalancer(rebalancer: Any) -> bytes:
    """Pickle ``rebalancer``; a dataclass holding unpicklable solver state (a compiled
    cvxpy problem after a first ``plan``) is re-created from its fields first."""
    try:
        return pickle.dumps(rebalancer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - any pickling failure
        first = exc
    if dataclasses.is_dataclass(rebalancer) and not isinstance(rebalancer, type):
        try:
            return pickle.dumps(dataclasses.replace(rebalancer),
                                protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001, S110 - report the original failure below
            pass
    raise InputError(f"rebalancer cannot be pickled: {first}", field="rebalancer") from first


def _as_account(item: Any, i: int) -> Account:
    if isinstance(item, Account):
        return item
    if isinstance(item, tuple) and len(item) in (3, 4):
        return Account(*item)
    raise InputError(
        f"account #{i}: expected an Account or a (name, state, targets[, constraints]) tuple, "
        f"got {type(item).__name__}", field="accounts",
    )


def _executor_workers(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once: a ``concurrent.futures`` pool's
    ``max_workers``, a Dask executor's threads over its workers; else the CPU count."""
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        return n
    client = getattr(executor, "_client", None)  # distributed's ClientExecutor
    if client is not None:
        try:
            n = int(sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - any client failure: fall back below
            n = 0
        if n >= 1:
            return n
    return max(1, os.cpu_count() or 1)


def _chunk_size(left: int, chunk_size: int, workers: int | None) -> int:
    """Accounts in the next chunk when ``left`` accounts of the batch are not in a task.

    ``workers=None`` (a serial run): ``chunk_size``. Else guided: at most a
    ``2 * workers``-th of the accounts left (at least 1, at most ``chunk_size``), so the
    last tasks are small and the workers finish together, rather than one idle while
    another plans a whole chunk (chunks of 50 accounts at ~20 ms each: up to ~1 s of a
    ~10 s batch). A chunk also ends with its group (it never mixes universes)."""
    if workers is None:
        return chunk_size
    return min(chunk_size, max(1, -(-left // (2 * workers))))


def _make_tasks(accounts: list[Account], rebalancer_bytes: bytes, chunk_size: int,
                shipped: bool = False, workers: int | None = None) -> list[_Task]:
    """Group by (universe, extra constraints) in order of first appearance, then chunk
    (:func:`_chunk_size`). ``shipped``: the tasks go to other processes (accounts packed
    for the trip). All tasks are made before the first is submitted: packing them while
    the first ones run (measured) delayed the first by ~0.3 s, the parent's packing and
    the executor's threads taking turns on the GIL."""
    digest = _digest(rebalancer_bytes)
    groups: dict[tuple[tuple[str, ...], str], list[int]] = {}
    universes: dict[int, tuple[str, ...]] = {}  # states built on one Index share it
    for i, acc in enumerate(accounts):
        assets = acc.state.assets
        universe = universes.get(id(assets))
        if universe is None:
            universe = universes[id(assets)] = tuple(assets)
        key = (universe, _constraints_key(acc.constraints))
        groups.setdefault(key, []).append(i)
    tasks = []
    left = len(accounts)
    pack = _packed if shipped else (lambda a: a)
    for (universe, ckey), idx in groups.items():
        anchor = accounts[idx[0]]
        akey = _digest(pickle.dumps((anchor.name, anchor.state, anchor.targets),
                                    protocol=pickle.HIGHEST_PROTOCOL))
        packed_anchor = pack(anchor)
        start = 0
        while start < len(idx):
            part = tuple(idx[start:start + _chunk_size(left, chunk_size, workers)])
            start += len(part)
            left -= len(part)
            tasks.append(_Task(rebalancer_bytes, digest, universe, ckey, akey, part,
                               tuple(packed_anchor if p == idx[0] else pack(accounts[p])
                                     for p in part), packed_anchor, shipped=shipped))
    return tasks


def _frame(accounts: list[Account], outcomes: list[_Outcome]) -> pd.DataFrame:
    models: list[str] = []
    for o in outcomes:
        if o.plan is not None:
            for k in o.plan.costs:
                if k not in models:
                    models.append(k)
    rows = []
    for acc, o in zip(accounts, outcomes):
        p = o.plan
        row: dict[str, Any] = {
            "account": acc.name,
            "status": "ok" if p is not None else "error",
            "n_trades": p.n_trades if p is not None else pd.NA,
            "turnover": p.turnover if p is not None else np.nan,
            "cost": p.total_cost if p is not None else np.nan,
        }
        by_model = p.cost_by_model if p is not None else {}
        for m in models:
            row[f"cost_{m}"] = by_model.get(m, 0.0) if p is not None else np.nan
        row.update(
            equity=acc.state.equity,
            error_type=o.error.type if o.error is not None else None,
            error=o.error.message if o.error is not None else None,
            seconds=o.seconds,
            worker=o.worker,
            reused=o.reused,
            compilations=o.compilations if o.compilations is not None else pd.NA,
        )
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df["n_trades"] = df["n_trades"].astype("Int64")
        df["compilations"] = df["compilations"].astype("Int64")
    return df


def _timed_out(task: _Task, timeout: float, outcomes: list[_Outcome | None]) -> None:
    err = AccountError(type="TimeoutError",
                       message=f"not planned within the call's timeout of {timeout:g} s "
                               "(its task was still queued or running)")
    for p in task.positions:
        outcomes[p] = _Outcome(p, None, err, 0.0, -1, False)


def rebalance_many(
    accounts: Iterable[Account | tuple[Any, ...]],
    rebalancer: Rebalancer,
    executor: Executor | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
    timeout: float | None = None,
) -> BatchResult:
    """Plan trades for many accounts with one rebalancer.

    Parameters
    ----------
    accounts
        :class:`Account` objects, or ``(name, state, targets[, constraints])`` tuples.
        Names must be unique.
    rebalancer
        Any object with ``plan(state, targets) -> RebalancePlan``; it must be picklable.
        It is copied (pickled once), never mutated. A dataclass rebalancer whose solver
        state cannot be pickled (a compiled problem) is re-created from its fields.
    executor
        Any :class:`concurrent.futures.Executor` (``ProcessPoolExecutor``, a Dask
        ``Client.get_executor()``...). ``None`` runs serially in this process
        through the same code path.
    chunk_size
        Accounts per task, at most (>= 1). Accounts are first grouped by universe and
        extra constraints, so a chunk never mixes universes. On an executor the last
        tasks are smaller (each at most a ``2 * workers``-th of the accounts left), so
        the workers finish together.
    progress
        Show a tqdm progress bar counting accounts (needs ``tqdm``).
    timeout
        Wall-clock budget of the whole call, seconds (``None``: none). Accounts not
        planned when it runs out (their task still queued or running, e.g. on a hung
        worker) get an :class:`AccountError` of type ``"TimeoutError"``; their futures
        are cancelled where the executor can (a running task on a process pool keeps
        its process busy until it ends: the executor is the caller's). Needs an
        ``executor``: a serial run cannot be interrupted (an ``InputError``). Which
        accounts time out depends on the machine, so a result with timeouts is not
        reproducible; the plans that are returned are.

    Returns
    -------
    BatchResult
        ``plans`` and ``errors`` keyed by account name, and ``frame`` with one row per
        account, all in input order.
    """
    t0 = time.perf_counter()
    accs = [_as_account(a, i) for i, a in enumerate(accounts)]
    names = pd.Index([a.name for a in accs])
    dup = names[names.duplicated()]
    if len(dup):
        raise InputError(f"duplicate account name {dup[0]!r}", field="account")
    flag(progress, "progress")  # "no" is truthy: it would show the bar
    if isinstance(chunk_size, bool) or not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise InputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}",
                         field="chunk_size")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not np.isfinite(timeout) or timeout <= 0:
            raise InputError(f"timeout must be a number of seconds > 0, got {timeout!r}",
                             field="timeout")
        if executor is None:
            raise InputError("a timeout needs an executor: a serial run in this process "
                             "cannot be interrupted", field="timeout")
    deadline = None if timeout is None else t0 + float(timeout)
    if not callable(getattr(rebalancer, "plan", None)):
        raise InputError(f"{type(rebalancer).__name__} has no plan(state, targets) method",
                         field="rebalancer")
    reb_bytes = _pickle_rebalancer(rebalancer)
    tasks = _make_tasks(accs, reb_bytes, chunk_size, shipped=executor is not None,
                        workers=None if executor is None else _executor_workers(executor))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(accs), desc="rebalance", unit="account")
    outcomes: list[_Outcome | None] = [None] * len(accs)
    failed: list[tuple[_Task, BaseException]] = []

    def collect(task: _Task, got: list[_Outcome] | BaseException) -> None:
        if isinstance(got, BaseException):  # the task itself failed: a worker died...
            failed.append((task, got))
            err = _worker_lost(got, False)
            got = [_Outcome(p, None, err, 0.0, -1, False) for p in task.positions]
        for o in got:
            outcomes[o.position] = o
        if bar is not None:
            bar.update(len(task.positions))

    try:
        if executor is None:
            for task in tasks:
                collect(task, _run_task(task))
        else:
            futures: dict[Future[list[_Outcome]], _Task] = {}
            for task in tasks:
                try:
                    futures[executor.submit(_run_task, task)] = task
                except (BrokenExecutor, RuntimeError) as exc:  # broken/shut down already
                    collect(task, exc)
            pending = set(futures)
            try:
                left = None if deadline is None else max(0.0, deadline - time.perf_counter())
                for fut in as_completed(futures, timeout=left):
                    pending.discard(fut)
                    try:
                        exc = fut.exception()
                    except CancelledError as cancelled:  # e.g. a Dask future lost with its worker
                        exc = cancelled
                    collect(futures[fut], exc if exc is not None else fut.result())
            except FuturesTimeout:
                for fut in pending:
                    fut.cancel()
                    _timed_out(futures[fut], float(timeout), outcomes)  # type: ignore[arg-type]
                    if bar is not None:
                        bar.update(len(futures[fut].positions))
            if failed:
                _retry_alone(failed, executor, outcomes, deadline)
    finally:
        if bar is not None:
            bar.close()

    done = [o for o in outcomes if o is not None]
    if len(done) != len(accs):  # every position is filled by exactly one task
        raise RuntimeError(f"internal error: {len(accs) - len(done)} accounts lost")
    for a, o in zip(accs, done):
        _reattach(o, a.state)
    plans = {a.name: o.plan for a, o in zip(accs, done) if o.plan is not None}
    errors = {a.name: o.error for a, o in zip(accs, done) if o.error is not None}
    return BatchResult(plans=plans, errors=errors, frame=_frame(accs, done),
                       wall_seconds=time.perf_counter() - t0)
