"""The builder's conic program solved by Clarabel or SCS through their own APIs.

A :class:`~rebalopt.program.builder.ConicProgram` is already in the standard form
both solvers take,

.. math::

    \\min_x\\ \\tfrac12 x^\\top P x + q^\\top x \\quad \\text{s.t.}\\quad Ax + s = b,\\ s \\in K,

with the same cone conventions (zero, nonnegative, second-order ``(t, x): |x| <= t``,
3-d power ``x^a y^(1-a) >= |z|``), so no modelling layer is needed between them: this
is the direct path's solve, and the SCS fallback and the infeasibility diagnosis of a
rebalancer on that path (a cvxpy compile of the same program took seconds at 500
assets). SCS wants its cone rows grouped by kind (zero, nonnegative, second-order,
power): the rows are permuted to that order, which leaves ``x`` as it is.

Clarabel's own equilibration is replaced by the same scaling computed here from each
program's values (:mod:`rebalopt.rebalance._equilibrate`), so a solver kept for a
structure (:class:`KeptClarabel`) answers bit for bit what a fresh one does.

Statuses are cvxpy's names (the rebalancer reads one vocabulary for every solver).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.program.builder import ConeSpec, ConicProgram

__all__ = ["CLARABEL_STATUS", "CVXPY_ONLY", "DIRECT_SETTINGS", "NATIVE", "SCS_STATUS",
           "KeptClarabel", "Matrices", "NativeAnswer", "clarabel_cones", "clarabel_settings",
           "cone_blocks", "solve_native"]

NATIVE: frozenset[str] = frozenset({"CLARABEL", "SCS"})
"""Solvers :func:`solve_native` calls directly."""

DIRECT_SETTINGS: dict[str, Any] = {
    "verbose": False,
    # measured with the cvxpy path (DESIGN.md section 3): 0.99 stalls on ~1 in 6 warm
    # re-solves with 3/2 power cones; 0.95 never did
    "max_step_fraction": 0.95,
    "presolve_enable": False,  # no infinite bounds to remove; keeps row order fixed
}
"""Clarabel settings of the direct path (``solver_options['CLARABEL']`` overrides)."""

CVXPY_ONLY: frozenset[str] = frozenset({"warm_start"})
"""Options of cvxpy's ``solve`` (not solver settings) ignored here: a solve never
starts from an earlier answer (a kept solver answers what a fresh one does), which is
what ``warm_start=False`` asks for."""

CLARABEL_STATUS: dict[str, str] = {
    "Solved": "optimal",
    "AlmostSolved": "optimal_inaccurate",
    "PrimalInfeasible": "infeasible",
    "AlmostPrimalInfeasible": "infeasible_inaccurate",
    "DualInfeasible": "unbounded",
    "AlmostDualInfeasible": "unbounded_inaccurate",
    "MaxIterations": "user_limit",
    "MaxTime": "user_limit",
    "NumericalError": "solver_error",
    "InsufficientProgress": "solver_error",
}
"""Clarabel status -> cvxpy status name (cvxpy's own map)."""

SCS_STATUS: dict[int, str] = {
    1: "optimal", 2: "optimal_inaccurate", -1: "unbounded", -6: "unbounded_inaccurate",
    -2: "infeasible", -7: "infeasible_inaccurate", -3: "solver_error", -4: "solver_error",
    -5: "solver_error",
}
"""SCS ``status_val`` -> cvxpy status name (cvxpy's own map)."""


@dataclass(frozen=True)
class NativeAnswer:
    """One native solve: cvxpy-style ``status``, the primal ``x`` (``None`` when the
    solver gave none), the objective ``1/2 x'Px + q'x`` (program units, without the
    program's constant), solve and set-up times (seconds) and iterations.

    Clarabel: ``solve_time`` is the solver's own work of this call, wall (building the
    solver or updating the kept one, then ``solve()``); ``setup_time`` the time before
    ``solve()`` (equilibration and building or updating the solver)."""

    status: str
    x: FloatArray | None
    objective: float | None
    solve_time: float | None
    setup_time: float | None
    iterations: int | None
    solver_status: str = ""
    """The solver's own status name."""


def clarabel_cones(spec: Sequence[ConeSpec]) -> list[Any]:
    """Clarabel cone objects for a cone spec (see :mod:`rebalopt.program.builder`)."""
    import clarabel

    cones: list[Any] = []
    for kind, count, alpha in spec:
        if kind == "zero":
            cones.append(clarabel.ZeroConeT(count))
        elif kind == "nonneg":
            cones.append(clarabel.NonnegativeConeT(count))
        elif kind == "power":
            cones += [clarabel.PowerConeT(alpha)] * count
        else:
            cones += [clarabel.SecondOrderConeT(3)] * count
    return cones


def clarabel_settings(options: Mapping[str, Any] | None) -> Any:
    """Clarabel settings: :data:`DIRECT_SETTINGS` overridden by ``options`` (by name);
    an unknown name is a ``ValueError``."""
    import clarabel

    settings = clarabel.DefaultSettings()
    for key, val in {**DIRECT_SETTINGS, **(options or {})}.items():
        if key in CVXPY_ONLY:
            continue
        if not hasattr(settings, key):
            raise ValueError(f"unknown Clarabel setting {key!r}")
        setattr(settings, key, val)
    return settings


def _scs_order(spec: Sequence[ConeSpec]) -> tuple[np.ndarray, dict[str, Any]]:
    """Row permutation putting the cones in SCS's order, and SCS's cone dict."""
    rows: dict[str, list[np.ndarray]] = {"zero": [], "nonneg": [], "soc3": [], "power": []}
    alphas: list[float] = []
    r = 0
    for kind, count, alpha in spec:
        size = count if kind in ("zero", "nonneg") else 3 * count
        rows[kind].append(np.arange(r, r + size))
        if kind == "power":
            alphas += [float(alpha)] * count
        r += size
    perm = np.concatenate([np.concatenate(rows[k]) if rows[k] else np.zeros(0, dtype=int)
                           for k in ("zero", "nonneg", "soc3", "power")])
    count = {k: sum(v.size for v in rows[k]) for k in rows}
    cone: dict[str, Any] = {"z": count["zero"], "l": count["nonneg"]}
    if count["soc3"]:
        cone["q"] = [3] * (count["soc3"] // 3)
    if alphas:
        cone["p"] = alphas
    return perm, cone


def _solve_scs(prog: ConicProgram, options: Mapping[str, Any] | None) -> NativeAnswer:
    import scs

    perm, cone = _scs_order(prog.cones)
    A = prog.A.tocsr()[perm].tocsc()
    P = prog.P
    opts = {"verbose": False, **{k: v for k, v in (options or {}).items()
                                 if k not in CVXPY_ONLY}}
    data = {"P": sp.csc_matrix(P), "A": A, "b": np.asarray(prog.b, dtype=float)[perm],
            "c": np.asarray(prog.q, dtype=float)}
    sol = scs.SCS(data, cone, **opts).solve()
    info = sol["info"]
    status = SCS_STATUS.get(int(info["status_val"]), "solver_error")
    x = np.asarray(sol["x"], dtype=float) if sol.get("x") is not None else None
    return NativeAnswer(status, x, float(info["pobj"]), float(info["solve_time"]) / 1e3,
                        float(info["setup_time"]) / 1e3, int(info["iter"]), str(info["status"]))


@dataclass(frozen=True)
class Matrices:
    """A conic program given as its matrices (``P`` upper triangle, CSC), for
    :func:`solve_native` when it was not built as a
    :class:`~rebalopt.program.builder.ConicProgram` (the stacked multi-period program)."""

    P: sp.csc_matrix
    q: FloatArray
    A: sp.csc_matrix
    b: FloatArray
    cones: list[ConeSpec]


def cone_blocks(spec: Sequence[ConeSpec]) -> np.ndarray:
    """Row indices of the 3-row cones (second-order, power), one row per cone: the
    blocks whose rows share one equilibration scale."""
    blocks: list[np.ndarray] = []
    r = 0
    for kind, count, _ in spec:
        if kind in ("zero", "nonneg"):
            r += count
            continue
        blocks.append(np.arange(r, r + 3 * count).reshape(count, 3))
        r += 3 * count
    return np.concatenate(blocks) if blocks else np.zeros((0, 3), dtype=np.int64)


class KeptClarabel:
    """One Clarabel solver kept for one program structure, its data updated between solves.

    A solve builds a Clarabel solver only when the structure (the sparsity patterns of
    ``P`` and ``A``, the cones, the settings) differs from the kept solver's; otherwise
    it hands the new values to the kept solver (``update``), which skips Clarabel's
    set-up (ordering, symbolic factorization, allocation: 13-18% of a warm solve at
    500-2,000 assets). The answer is bit for bit a fresh solver's: the equilibration is
    computed here from each program's own values (:mod:`rebalopt.rebalance._equilibrate`)
    and Clarabel's own, which it would keep from the first data, is off. A solve that
    finds the kept solver busy (another thread) builds its own, with the same answer.
    Never pickled (a process rebuilds it on first use).
    """

    def __init__(self) -> None:
        self._solver: Any = None
        self._key: tuple[Any, ...] | None = None
        self._pattern: Any = None  # the structure's equilibration Pattern and cone blocks
        self._blocks: np.ndarray | None = None
        self._lock = threading.Lock()
        self.updates = 0
        """Solves answered by the kept solver (for tests and benchmarks)."""

    def __getstate__(self) -> dict[str, Any]:
        return {"updates": 0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def solve(self, prog: ConicProgram | Matrices,
              options: Mapping[str, Any] | None) -> NativeAnswer:
        """Solve ``prog`` (see the class)."""
        if not self._lock.acquire(blocking=False):
            return _solve_clarabel(prog, options, None)
        try:
            return _solve_clarabel(prog, options, self)
        finally:
            self._lock.release()


def _same_structure(kept: KeptClarabel, P: sp.csc_matrix, A: sp.csc_matrix,
                    meta: tuple[Any, ...]) -> bool:
    """Whether ``kept`` holds a solver for this structure (patterns compared by value,
    identity first: the builder hands back the same index arrays per structure)."""
    if kept._solver is None or kept._key is None or kept._key[0] != meta:
        return False
    return all(x is y or np.array_equal(x, y)
               for x, y in zip(kept._key[1:], (P.indptr, P.indices, A.indptr, A.indices)))


def _buffer(values: np.ndarray) -> memoryview:
    """``values`` as a buffer Clarabel's Python binding reads fast.

    The binding converts its array arguments element by element through Python's
    sequence protocol; a NumPy array then makes one NumPy scalar per element, a
    ``memoryview`` hands out plain Python numbers: the same values, read ~3x faster
    (``update`` at 500 assets 1.6 -> ~0.5 ms)."""
    return memoryview(np.ascontiguousarray(values))


@dataclass(frozen=True)
class _Buffers:
    """A canonical CSC matrix (values ``data`` in ``pattern``'s order) as the
    attributes Clarabel's constructor reads, each a :func:`_buffer`."""

    values: np.ndarray
    pattern: sp.csc_matrix

    @property
    def data(self) -> memoryview:
        return _buffer(np.asarray(self.values, dtype=float))

    @property
    def indices(self) -> memoryview:
        return _buffer(self.pattern.indices)

    @property
    def indptr(self) -> memoryview:
        return _buffer(self.pattern.indptr)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pattern.shape

    has_canonical_format = True


def _solve_clarabel(prog: ConicProgram | Matrices, options: Mapping[str, Any] | None,
                    kept: KeptClarabel | None = None) -> NativeAnswer:
    import time

    import clarabel

    from rebalopt.rebalance._equilibrate import Pattern, equilibrate

    merged = {k: v for k, v in {**DIRECT_SETTINGS, **(options or {})}.items()
              if k not in CVXPY_ONLY}
    settings = clarabel_settings(options)
    t0 = time.perf_counter()
    P, A = prog.P, prog.A
    if not (P.has_canonical_format and A.has_canonical_format):
        P, A = P.copy(), A.copy()
        P.sum_duplicates()
        A.sum_duplicates()
    meta = (P.shape, A.shape, tuple(prog.cones),
            tuple(sorted((k, repr(v)) for k, v in merged.items())))
    same = kept is not None and _same_structure(kept, P, A, meta)
    scale = None
    if settings.equilibrate_enable:
        if kept is not None and not same:
            kept._pattern, kept._blocks = Pattern(P, A), cone_blocks(prog.cones)
        pattern, blocks = ((kept._pattern, kept._blocks) if kept is not None
                           else (None, cone_blocks(prog.cones)))
        Pd, q, Ad, b, scale = equilibrate(
            P, prog.q, A, prog.b, blocks, int(settings.equilibrate_max_iter),
            float(settings.equilibrate_min_scaling), float(settings.equilibrate_max_scaling),
            pattern)
        settings.equilibrate_enable = False
    else:
        Pd, q, Ad, b = (np.asarray(P.data, dtype=float), np.asarray(prog.q, dtype=float),
                        np.asarray(A.data, dtype=float), np.asarray(prog.b, dtype=float))
    try:
        t1 = time.perf_counter()
        if same:
            solver = kept._solver  # type: ignore[union-attr]
            solver.update(P=_buffer(Pd), q=_buffer(q), A=_buffer(Ad), b=_buffer(b))
            kept.updates += 1  # type: ignore[union-attr]
        else:
            if kept is not None:
                kept._solver = None
                kept._key = (meta, P.indptr.copy(), P.indices.copy(), A.indptr.copy(),
                             A.indices.copy())
            solver = clarabel.DefaultSolver(_Buffers(Pd, P), _buffer(q), _Buffers(Ad, A),
                                            _buffer(b), clarabel_cones(prog.cones), settings)
        t2 = time.perf_counter()
        sol = solver.solve()
        t3 = time.perf_counter()
    except BaseException:
        if kept is not None:  # a solver that raised mid-way is not kept
            kept._solver = None
        raise
    if kept is not None:  # kept only after a clean solve
        kept._solver = solver if str(sol.status) == "Solved" else None
    xs = sol.x  # a list of floats (the binding builds it on each access)
    x = np.fromiter(xs, dtype=float, count=len(xs))  # ~2x np.asarray on a list
    obj = float(sol.obj_val)
    if scale is not None:
        x = x * scale.d
        obj = obj / scale.c
    # Clarabel's own solve_time adds the set-up timed when the solver was built, which a
    # kept solver did not spend again: the solver's time is timed here instead (its set-up
    # or update, and solve(); wall)
    return NativeAnswer(CLARABEL_STATUS.get(str(sol.status), "solver_error"), x, obj,
                        (t2 - t1) + (t3 - t2), t2 - t0, int(sol.iterations), str(sol.status))


def solve_native(prog: ConicProgram | Matrices, solver: str,
                 options: Mapping[str, Any] | None = None,
                 kept: KeptClarabel | None = None) -> NativeAnswer:
    """Solve ``prog`` with ``solver`` (one of :data:`NATIVE`); solver errors raise.
    ``kept``: a Clarabel solver kept for this structure (see :class:`KeptClarabel`)."""
    if solver == "CLARABEL":
        return kept.solve(prog, options) if kept is not None else _solve_clarabel(prog, options)
    if solver == "SCS":
        return _solve_scs(prog, options)
    raise ValueError(f"{solver!r} has no native path (native: {sorted(NATIVE)})")
