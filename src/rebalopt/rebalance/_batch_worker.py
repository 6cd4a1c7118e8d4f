"""The worker side of :func:`~rebalopt.rebalance.batch.rebalance_many`: tasks, the
per-process rebalancer cache, and the isolation that re-runs a dead worker's accounts
alone."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, CancelledError, Executor, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._threads import limited_blas
from rebalopt.errors import InputError
from rebalopt.rebalance.accounts import Account, AccountError
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.state import same_assets

__all__ = ["clear_worker_cache", "with_constraints"]

_LONE_ATTEMPTS = 2
"""Runs of an account alone after its task failed, before it is named the culprit (a
second run covers a task that a scheduler placed on a worker that was already dying)."""

_CACHE_SIZE = 32
"""Rebalancer copies (one compiled problem each) kept per process."""


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
class _AlignedTargets:
    """Target weights that were a Series on the account's universe (its tickers, in its
    order, finite floats), shipped to a worker as their values: pickling a Series with a
    string index cost about 2 ms per account; an array, microseconds. The worker hands
    the rebalancer a Series of the same values on the state's own tickers again."""

    values: np.ndarray
    name: Any = None

    def series(self, state: Any) -> pd.Series:
        return pd.Series(self.values, index=state.assets, name=self.name, copy=False)


def _packed(acc: Account) -> Account:
    """``acc`` as shipped in a task: Series targets on its universe become
    :class:`_AlignedTargets` (anything else travels as it is)."""
    t = acc.targets
    if (isinstance(t, pd.Series) and t.dtype.kind == "f"
            and same_assets(t.index, acc.state.assets)):
        values = t.to_numpy(dtype=float, copy=True)
        if np.isfinite(values).all():
            return Account(acc.name, acc.state, _AlignedTargets(values, t.name),
                           acc.constraints)
    return acc


def _targets(acc: Account) -> Any:
    """The targets to plan ``acc`` with (a shipped Series is rebuilt)."""
    t = acc.targets
    return t.series(acc.state) if isinstance(t, _AlignedTargets) else t


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
    #: the task travels to another process: targets packed, plans sent without states
    #: (a serial run hands the rebalancer the caller's own objects and keeps its plans)
    shipped: bool = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled: this copy's states belong to this task alone (see :func:`_interned`)."""
        self.__dict__.update(state)
        self.__dict__["_own_states"] = True


@dataclass(frozen=True)
class _Outcome:
    """What a task returns per account (picklable).

    In a shipped task, a plan made from the account's own state comes back without it
    (``plan.state`` is ``None`` on the way: the caller has that state and puts it back,
    see :func:`_reattach`), so a worker does not pickle every state a second time.
    """

    position: int
    plan: RebalancePlan | None
    error: AccountError | None
    seconds: float
    worker: int
    reused: bool
    compilations: int | None = None


def _detached(plan: RebalancePlan, state: Any) -> RebalancePlan:
    """``plan`` without ``state`` when it is the account's own (see :class:`_Outcome`)."""
    if plan.state is state:
        plan.state = None  # type: ignore[assignment]
    return plan


def _reattach(outcome: _Outcome, state: Any) -> None:
    """Give a plan that came back without its state the account's state again."""
    if outcome.plan is not None and outcome.plan.state is None:
        outcome.plan.state = state


# Per-process, per-thread cache: (thread, digest, universe, constraints key, anchor) ->
# rebalancer copy. The thread is part of the key because a compiled problem holds
# mutable cvxpy Parameters: two threads must never solve through the same copy.
_WORKER_CACHE: OrderedDict[tuple[int, str, tuple[str, ...], str, str], Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()


# Per-process universe -> (its tickers' Index, its group labels) as first received: the
# states of later tasks of that universe are given these same objects (_interned).
_UNIVERSES: OrderedDict[tuple[str, ...], tuple[pd.Index, np.ndarray]] = OrderedDict()


def clear_worker_cache() -> None:
    """Forget the rebalancer copies (compiled problems) cached in this process."""
    _WORKER_CACHE.clear()
    _UNIVERSES.clear()


def _interned(task: _Task) -> None:
    """Give the states of an unpickled task the universe's ``assets`` Index and group
    labels this process received first, where they are equal (they always are for the
    tickers: a task holds one universe).

    Each task arrives with its own copy of the Index and each state with its own
    labels, so the values that costs and constraints keep per universe
    (:func:`~rebalopt._memo.universe_memo`) were checked by value (the tickers, ~10
    microseconds, on every call after a new task's first) and not by identity. The
    values are unchanged, so every plan is too. A task that was not unpickled (serial,
    thread pool) holds the caller's states, which are never modified.
    """
    if not task.__dict__.get("_own_states") or not task.accounts:
        return
    first = task.anchor.state
    with _CACHE_LOCK:
        kept = _UNIVERSES.get(task.universe)
        if kept is None:
            kept = _UNIVERSES[task.universe] = (first.assets, first.groups)
            while len(_UNIVERSES) > _CACHE_SIZE:
                _UNIVERSES.popitem(last=False)
    assets, groups = kept
    for st in {id(a.state): a.state for a in (task.anchor, *task.accounts)}.values():
        # the tickers are the task's universe (its accounts were grouped by them)
        if (st.assets is not assets and st.assets.dtype == assets.dtype
                and st.assets.name == assets.name and len(st.assets) == len(assets)):
            st.assets = assets
        if (st.groups is not groups and st.groups.shape == groups.shape
                and st.groups.dtype == groups.dtype and np.array_equal(st.groups, groups)):
            st.groups = groups


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
        reb.plan(task.anchor.state, _targets(task.anchor))
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
    _interned(task)
    try:
        reb, reused = _rebalancer_for(task, task.accounts[0].constraints)
    except Exception as exc:  # noqa: BLE001 - reported per account
        err = _error_of(exc)
        return [_Outcome(p, None, err, 0.0, pid, False) for p in task.positions]
    for pos, acc in zip(task.positions, task.accounts):
        t0 = time.perf_counter()
        try:
            plan = reb.plan(acc.state, _targets(acc))
            if not isinstance(plan, RebalancePlan):
                raise TypeError(f"{type(reb).__name__}.plan returned {type(plan).__name__}, "
                                "not a RebalancePlan")
            if task.shipped:
                plan = _detached(plan, acc.state)
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

    def run(self, task: _Task, deadline: float | None = None
            ) -> list[_Outcome] | BaseException:
        """Run ``task`` alone; its outcomes, or the exception that ended it (a
        ``TimeoutError`` when ``deadline``, a ``perf_counter`` time, passes first)."""
        ex = self._current()
        try:
            fut = ex.submit(_run_task, task)
        except (BrokenExecutor, RuntimeError):  # broken or shut down: go private
            self._broken(ex)
            ex = self._current()
            fut = ex.submit(_run_task, task)
        left = None if deadline is None else max(0.0, deadline - time.perf_counter())
        try:
            exc = fut.exception(timeout=left)
        except CancelledError as cancelled:
            exc = cancelled
        except FuturesTimeout:
            fut.cancel()
            if ex is self.private:  # our own pool: free it of the task that hangs
                for proc in list(getattr(ex, "_processes", {}).values()):
                    proc.kill()
                self._broken(ex)
            return TimeoutError("the call's timeout ran out while this account was "
                                "planned alone")
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
        akey = _digest(pickle.dumps((acc.name, acc.state, _targets(acc)),
                                    protocol=pickle.HIGHEST_PROTOCOL))
    return _Task(task.rebalancer_bytes, task.rebalancer_digest, task.universe,
                 task.constraints_key, akey, (pos,), (acc,), anchor, shipped=task.shipped)


def _worker_lost(exc: BaseException, alone: bool) -> AccountError:
    what = ("planned alone, its worker failed again: this account is the cause"
            if alone else "its worker failed")
    return AccountError(type=type(exc).__name__, message=f"{what} ({exc!r})")


def _retry_alone(failed: list[tuple[_Task, BaseException]], executor: Executor,
                 outcomes: list[_Outcome | None], deadline: float | None = None) -> None:
    """Plan every account of the failed tasks alone, in input order (see the module);
    accounts left when ``deadline`` (a ``perf_counter`` time) passes time out."""
    todo = sorted((pos, task) for task, _ in failed for pos in task.positions)
    iso = _Isolation(executor)
    bad_anchors: set[str] = set()
    try:
        for pos, task in todo:
            one = _alone(task, pos, bad_anchors)
            for attempt in range(1, _LONE_ATTEMPTS + 1):
                got = iso.run(dataclasses.replace(one, attempt=attempt), deadline)
                if not isinstance(got, BaseException) or isinstance(got, TimeoutError):
                    break
            if isinstance(got, TimeoutError):
                outcomes[pos] = _Outcome(pos, None, AccountError(type="TimeoutError",
                                                                 message=str(got)),
                                         0.0, -1, False)
            elif isinstance(got, BaseException):
                if one.accounts[0].name == one.anchor.name:
                    bad_anchors.add(one.anchor.name)
                outcomes[pos] = _Outcome(pos, None, _worker_lost(got, True), 0.0, -1, False)
            else:
                outcomes[pos] = got[0]
    finally:
        iso.close()
