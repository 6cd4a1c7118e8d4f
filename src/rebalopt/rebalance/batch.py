"""Rebalance many accounts at once, serially or on any ``concurrent.futures`` executor.

Separately managed accounts and model portfolios often share a universe: the
same assets, in the same order, with different holdings, cash and targets. A
rebalancer that compiles its convex program per universe (cvxpy Parameters,
DPP) then only re-solves for each account. :func:`rebalance_many` keeps that
property across processes:

* the rebalancer is pickled **once per call** (bytes + digest);
* accounts are grouped by universe (and by their extra constraints) and sent in
  chunks, one task per chunk;
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
  makes every solve depend on its inputs only.

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
import hashlib
import os
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import (
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    as_completed,
)
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from rebalopt._threads import limited_blas
from rebalopt.errors import InputError
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.state import PortfolioState

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
"""Accounts per task. Independent of the executor, so chunking is reproducible."""

_LONE_ATTEMPTS = 2
"""Runs of an account alone after its task failed, before it is named the culprit (a
second run covers a task that a scheduler placed on a worker that was already dying)."""

_CACHE_SIZE = 32
"""Rebalancer copies (one compiled problem each) kept per process."""


class Rebalancer(Protocol):
    """Anything with ``plan(state, targets) -> RebalancePlan`` (naive, band, optimal)."""

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan: ...


@dataclass(frozen=True)
class Account:
    """One account to rebalance.

    Parameters
    ----------
    name
        Unique identifier of the account (used to key the results).
    state
        Holdings (shares), cash (currency) and prices of the account.
    targets
        Target weights (fractions of the account's equity): a Series or mapping
        keyed by ticker, or an optimizer's object (skfolio, riskfolio-lib,
        PyPortfolioOpt); names are matched, a bare array is an error.
    constraints
        Constraints added to the rebalancer's own for this account only (for
        example a restricted list or a cash floor). Accounts with equal extra
        constraints and the same universe share one compiled problem; the
        rebalancer must be a dataclass with a ``constraints`` field.
    """

    name: str
    state: PortfolioState
    targets: Any
    constraints: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"account name must be a non-empty string, got {self.name!r}",
                             field="account")
        if not isinstance(self.state, PortfolioState):
            raise InputError(
                f"account {self.name!r}: state must be a PortfolioState, "
                f"got {type(self.state).__name__}", field="state",
            )
        object.__setattr__(self, "constraints", tuple(self.constraints))


@dataclass(frozen=True)
class AccountError:
    """Why one account has no plan: the exception's type name and message."""

    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass
class BatchResult:
    """Plans of the accounts that succeeded, errors of those that failed, one frame.

    ``frame`` has one row per account in input order, with columns ``account``,
    ``status`` (``"ok"`` / ``"error"``), ``n_trades``, ``turnover`` (one-way,
    fraction of equity), ``cost`` (currency), one ``cost_<model>`` column per cost
    model (currency), ``equity`` (currency), ``error_type``, ``error``,
    ``seconds`` (wall time of the account's ``plan`` call), ``worker`` (process id)
    ``reused`` (whether the account re-used a rebalancer copy, i.e. a compiled
    problem, already built in that process) and ``compilations`` (the copy's own
    count of compiled programs after this account, for rebalancers that keep one,
    such as :class:`~rebalopt.rebalance.optimal.OptimalRebalancer`).
    """

    plans: dict[str, RebalancePlan]
    errors: dict[str, AccountError]
    frame: pd.DataFrame = field(repr=False)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every account got a plan."""
        return not self.errors

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (f"BatchResult(accounts={len(self.frame)}, ok={len(self.plans)}, "
                f"errors={len(self.errors)}, wall_seconds={self.wall_seconds:.3f})")


# ---------------------------------------------------------------------- helpers
def with_constraints(rebalancer: Any, constraints: Sequence[Any]) -> Any:
    """A copy of ``rebalancer`` with ``constraints`` appended to its own.

    Returns ``rebalancer`` itself when ``constraints`` is empty. Raises
    :class:`InputError` when the rebalancer has no ``constraints`` field.
    """
    if not constraints:
        return rebalancer
    if not (dataclasses.is_dataclass(rebalancer)
            and "constraints" in {f.name for f in dataclasses.fields(rebalancer)}):
        raise InputError(
            f"{type(rebalancer).__name__} takes no constraints; per-account constraints "
            "need a rebalancer with a 'constraints' field (OptimalRebalancer)",
            field="constraints",
        )
    own = list(rebalancer.constraints or [])
    return dataclasses.replace(rebalancer, constraints=[*own, *constraints])


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _constraints_key(constraints: tuple[Any, ...]) -> str:
    """Value-based key of extra constraints (pickle bytes: no truncated array reprs)."""
    if not constraints:
        return ""
    return _digest(pickle.dumps(constraints, protocol=pickle.HIGHEST_PROTOCOL))


@dataclass(frozen=True)
class _Task:
    """One chunk: accounts sharing a universe and extra constraints."""

    rebalancer_bytes: bytes
    rebalancer_digest: str
    universe: tuple[str, ...]
    constraints_key: str
    anchor_key: str
    positions: tuple[int, ...]
    accounts: tuple[Account, ...]
    anchor: Account
    #: which run of the same work this is (a new run is a new task for a scheduler that
    #: keys tasks by their arguments, as Dask does: it would hand back the failed one)
    attempt: int = 0


@dataclass(frozen=True)
class _Outcome:
    """What a task returns per account (picklable)."""

    position: int
    plan: RebalancePlan | None
    error: AccountError | None
    seconds: float
    worker: int
    reused: bool
    compilations: int | None = None


# Per-process, per-thread cache: (thread, digest, universe, constraints key, anchor) ->
# rebalancer copy. The thread is part of the key because a compiled problem holds
# mutable cvxpy Parameters: two threads must never solve through the same copy.
_WORKER_CACHE: OrderedDict[tuple[int, str, tuple[str, ...], str, str], Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_worker_cache() -> None:
    """Forget the rebalancer copies (compiled problems) cached in this process."""
    _WORKER_CACHE.clear()


def _rebalancer_for(task: _Task, constraints: tuple[Any, ...]) -> tuple[Any, bool]:
    """The cached copy for this task's key, building it on a miss. Returns (copy, reused)."""
    key = (threading.get_ident(), task.rebalancer_digest, task.universe, task.constraints_key,
           task.anchor_key)
    with _CACHE_LOCK:
        hit = _WORKER_CACHE.get(key)
        if hit is not None:
            _WORKER_CACHE.move_to_end(key)
            return hit, True
    base = pickle.loads(task.rebalancer_bytes)
    reb = with_constraints(base, constraints)
    try:  # prime: the first solve of a copy is the same in every process
        reb.plan(task.anchor.state, task.anchor.targets)
    except Exception:  # noqa: BLE001, S110 - the anchor's own failure is reported with it
        pass
    with _CACHE_LOCK:
        _WORKER_CACHE[key] = reb
        while len(_WORKER_CACHE) > _CACHE_SIZE:
            _WORKER_CACHE.popitem(last=False)
    return reb, False


def _error_of(exc: BaseException) -> AccountError:
    return AccountError(type=type(exc).__name__, message=str(exc))


def _compilations(reb: Any) -> int | None:
    """The rebalancer's own count of compiled programs, if it keeps one."""
    n = getattr(reb, "compilations", None)
    return int(n) if isinstance(n, (int, np.integer)) else None


def _run_task(task: _Task) -> list[_Outcome]:
    """Plan every account of one chunk; each account's failure is kept to itself."""
    with limited_blas():  # many small problems: one BLAS thread per worker
        return _run_chunk(task)


def _run_chunk(task: _Task) -> list[_Outcome]:
    pid = os.getpid()
    out: list[_Outcome] = []
    try:
        reb, reused = _rebalancer_for(task, task.accounts[0].constraints)
    except Exception as exc:  # noqa: BLE001 - reported per account
        err = _error_of(exc)
        return [_Outcome(p, None, err, 0.0, pid, False) for p in task.positions]
    for pos, acc in zip(task.positions, task.accounts):
        t0 = time.perf_counter()
        try:
            plan = reb.plan(acc.state, acc.targets)
            if not isinstance(plan, RebalancePlan):
                raise TypeError(f"{type(reb).__name__}.plan returned {type(plan).__name__}, "
                                "not a RebalancePlan")
            out.append(_Outcome(pos, plan, None, time.perf_counter() - t0, pid, reused,
                                _compilations(reb)))
        except Exception as exc:  # noqa: BLE001 - reported per account
            out.append(_Outcome(pos, None, _error_of(exc), time.perf_counter() - t0, pid,
                                reused, _compilations(reb)))
        reused = True
    return out


class _Isolation:
    """Runs single-account tasks one at a time, so a worker that dies names its culprit.

    Uses the caller's executor while it accepts work; once it is broken (a process
    pool whose worker died) or shut down, a private one-process pool with the same
    start method, replaced after each crash and shut down by :meth:`close`.
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.private: ProcessPoolExecutor | None = None
        self.own = False  # the caller's executor is unusable: use a private pool

    def _current(self) -> Executor:
        if not self.own:
            return self.executor
        if self.private is None:
            ctx = getattr(self.executor, "_mp_context", None)
            self.private = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        return self.private

    def _broken(self, ex: Executor) -> None:
        if ex is self.executor:
            self.own = True
        elif self.private is not None:
            self.private.shutdown(wait=True, cancel_futures=True)
            self.private = None

    def run(self, task: _Task) -> list[_Outcome] | BaseException:
        ex = self._current()
        try:
            fut = ex.submit(_run_task, task)
        except (BrokenExecutor, RuntimeError):  # broken or shut down: go private
            self._broken(ex)
            ex = self._current()
            fut = ex.submit(_run_task, task)
        try:
            exc = fut.exception()
        except CancelledError as cancelled:
            exc = cancelled
        if exc is None:
            return fut.result()
        if isinstance(exc, BrokenExecutor):
            self._broken(ex)
        return exc

    def close(self) -> None:
        if self.private is not None:
            self.private.shutdown(wait=True, cancel_futures=True)
            self.private = None


def _alone(task: _Task, pos: int, bad_anchors: set[str]) -> _Task:
    """The task of one account of ``task``, primed on the same anchor (so it plans as
    it would have in its chunk) unless that anchor is known to kill its worker."""
    i = task.positions.index(pos)
    acc = task.accounts[i]
    anchor, akey = task.anchor, task.anchor_key
    if anchor.name in bad_anchors and acc.name != anchor.name:
        anchor = acc
        akey = _digest(pickle.dumps((acc.name, acc.state, acc.targets),
                                    protocol=pickle.HIGHEST_PROTOCOL))
    return _Task(task.rebalancer_bytes, task.rebalancer_digest, task.universe,
                 task.constraints_key, akey, (pos,), (acc,), anchor)


def _worker_lost(exc: BaseException, alone: bool) -> AccountError:
    what = ("planned alone, its worker failed again: this account is the cause"
            if alone else "its worker failed")
    return AccountError(type=type(exc).__name__, message=f"{what} ({exc!r})")


def _retry_alone(failed: list[tuple[_Task, BaseException]], executor: Executor,
                 outcomes: list[_Outcome | None]) -> None:
    """Plan every account of the failed tasks alone, in input order (see the module)."""
    todo = sorted((pos, task) for task, _ in failed for pos in task.positions)
    iso = _Isolation(executor)
    bad_anchors: set[str] = set()
    try:
        for pos, task in todo:
            one = _alone(task, pos, bad_anchors)
            for attempt in range(1, _LONE_ATTEMPTS + 1):
                got = iso.run(dataclasses.replace(one, attempt=attempt))
                if not isinstance(got, BaseException):
                    break
            if isinstance(got, BaseException):
                if one.accounts[0].name == one.anchor.name:
                    bad_anchors.add(one.anchor.name)
                outcomes[pos] = _Outcome(pos, None, _worker_lost(got, True), 0.0, -1, False)
            else:
                outcomes[pos] = got[0]
    finally:
        iso.close()


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


def _make_tasks(accounts: list[Account], rebalancer_bytes: bytes,
                chunk_size: int) -> list[_Task]:
    """Group by (universe, extra constraints) in order of first appearance, then chunk."""
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
    for (universe, ckey), idx in groups.items():
        anchor = accounts[idx[0]]
        akey = _digest(pickle.dumps((anchor.name, anchor.state, anchor.targets),
                                    protocol=pickle.HIGHEST_PROTOCOL))
        for start in range(0, len(idx), chunk_size):
            part = tuple(idx[start:start + chunk_size])
            tasks.append(_Task(rebalancer_bytes, digest, universe, ckey, akey, part,
                               tuple(accounts[p] for p in part), accounts[idx[0]]))
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


def rebalance_many(
    accounts: Iterable[Account | tuple[Any, ...]],
    rebalancer: Rebalancer,
    executor: Executor | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
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
        Accounts per task (>= 1). Accounts are first grouped by universe and extra
        constraints, so a chunk never mixes universes.
    progress
        Show a tqdm progress bar counting accounts (needs ``tqdm``).

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
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise InputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}",
                         field="chunk_size")
    if not callable(getattr(rebalancer, "plan", None)):
        raise InputError(f"{type(rebalancer).__name__} has no plan(state, targets) method",
                         field="rebalancer")
    reb_bytes = _pickle_rebalancer(rebalancer)
    tasks = _make_tasks(accs, reb_bytes, chunk_size)

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
            for fut in as_completed(futures):
                try:
                    exc = fut.exception()
                except CancelledError as cancelled:  # e.g. a Dask future lost with its worker
                    exc = cancelled
                collect(futures[fut], exc if exc is not None else fut.result())
            if failed:
                _retry_alone(failed, executor, outcomes)
    finally:
        if bar is not None:
            bar.close()

    done = [o for o in outcomes if o is not None]
    if len(done) != len(accs):  # every position is filled by exactly one task
        raise RuntimeError(f"internal error: {len(accs) - len(done)} accounts lost")
    plans = {a.name: o.plan for a, o in zip(accs, done) if o.plan is not None}
    errors = {a.name: o.error for a, o in zip(accs, done) if o.error is not None}
    return BatchResult(plans=plans, errors=errors, frame=_frame(accs, done),
                       wall_seconds=time.perf_counter() - t0)
