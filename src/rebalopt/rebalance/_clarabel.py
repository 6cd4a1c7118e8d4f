"""The rebalancing program handed to Clarabel directly (no cvxpy), matrices from NumPy.

The program is the builder's (:class:`~rebalopt.program.builder.ProgramBuilder`: the
cost models' declared terms and the constraints' declared rows, objective in basis
points of equity), in Clarabel's standard form

.. math::

    \\min_x\\ \\tfrac12 x^\\top P x + q^\\top x \\quad \\text{s.t.}\\quad Ax + s = b,\\ s \\in K

Frozen assets (those a cost model cannot price) get one equality row ``z_i = 0``
each, written per solve, so a change in the frozen set is never a recompile.

Each :meth:`DirectProblem.solve` recomputes the values from the state and hands them
to the Clarabel solver kept for this structure
(:class:`~rebalopt.rebalance._native.KeptClarabel`), which skips Clarabel's set-up and
answers bit for bit what a fresh solver answers (the equilibration is computed from
each program's own values, so no state is carried over between solves). The sparse
matrices' pattern (the order of ``A``'s entries in compressed columns) depends only on
the coordinates, which stay the same from one state of a structure to the next: it is
computed once (:class:`CscPattern`) and each solve only places its values.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import Constraint
from rebalopt.costs import CostModel
from rebalopt.program import CostTerms
from rebalopt.program.builder import ConicProgram, ProgramBuilder
from rebalopt.program.cvxpy_backend import (
    CvxpyConstraintFn,
    CvxpyObjectiveFn,
    ModelVariables,
    to_cvxpy,
)
from rebalopt.rebalance._native import CLARABEL_STATUS as STATUS
from rebalopt.rebalance._native import (
    CVXPY_ONLY,
    DIRECT_SETTINGS,
    KeptClarabel,
    clarabel_cones,
)
from rebalopt.rebalance._problem import SCALE, RawSolution, native_raw
from rebalopt.state import PortfolioState

__all__ = ["CVXPY_ONLY", "DIRECT_SETTINGS", "STATUS", "CscPattern", "DirectProblem",
           "clarabel_cones"]


class CscPattern:
    """Compressed-column matrices from coordinates, the sorting done once per pattern.

    :meth:`matrix` answers what ``scipy.sparse.csc_matrix((val, (row, col)), shape)``
    answers (canonical: sorted row indices, no duplicates), bit for bit: the first call
    with a set of coordinates sorts them through SciPy and keeps where each entry lands;
    a later call with the same coordinates (compared by value) only places its values.
    Coordinates with duplicate entries, whose values SciPy adds up, always go through
    SciPy.
    """

    def __init__(self) -> None:
        self._key: tuple[np.ndarray, np.ndarray, tuple[int, int]] | None = None
        self._order: np.ndarray | None = None
        self._indices: np.ndarray | None = None
        self._indptr: np.ndarray | None = None
        self._canonical = False
        self.hits = 0
        """Calls answered from the kept pattern (for tests)."""

    def matrix(self, row: np.ndarray, col: np.ndarray, val: np.ndarray,
               shape: tuple[int, int]) -> sp.csc_matrix:
        """The matrix with ``val`` at ``(row, col)`` (see the class). Coordinates that
        cannot change (read-only arrays, the builder's kept ones) are recognised by
        identity; the returned matrices share this pattern's read-only index arrays."""
        key = self._key
        if (key is not None and key[2] == shape and self._order is not None
                and ((row is key[0] and col is key[1])
                     or (np.array_equal(key[0], row) and np.array_equal(key[1], col)))):
            self.hits += 1
            data = np.asarray(val, dtype=float)[self._order]
            out = sp.csc_matrix((data, self._indices, self._indptr), shape=shape)
            # the kept pattern's format, found when it was made (SciPy would scan
            # the indices again on the first look at this matrix)
            out.has_canonical_format = self._canonical
            return out
        out = sp.csc_matrix((val, (row, col)), shape=shape)
        rows, cols = (a if isinstance(a, np.ndarray) and not a.flags.writeable
                      else np.array(a, copy=True) for a in (row, col))
        self._key, self._order = (rows, cols, shape), None
        if out.nnz == rows.size:  # no duplicates: each entry has its own place
            tag = sp.csc_matrix((np.arange(rows.size, dtype=float), (rows, cols)), shape=shape)
            if (np.array_equal(tag.indices, out.indices)
                    and np.array_equal(tag.indptr, out.indptr)):
                self._order = tag.data.astype(np.int64)
                self._indices, self._indptr = out.indices.copy(), out.indptr.copy()
                self._canonical = bool(out.has_canonical_format)
                self._indices.flags.writeable = False
                self._indptr.flags.writeable = False
        return out


@dataclass(frozen=True)
class _Assembled(ConicProgram):
    """A :class:`ConicProgram` with its sparse matrices already built."""

    csc_P: sp.csc_matrix | None = None
    csc_A: sp.csc_matrix | None = None

    @property
    def P(self) -> sp.csc_matrix:
        return self.csc_P if self.csc_P is not None else super().P

    @property
    def A(self) -> sp.csc_matrix:
        return self.csc_A if self.csc_A is not None else super().A

_FIELDS = tuple(f.name for f in fields(ConicProgram))


class DirectProblem(ProgramBuilder):
    """The program for one universe and one set of terms, handed to Clarabel directly
    (the builder: :class:`~rebalopt.program.builder.ProgramBuilder`).

    Parameters
    ----------
    state, targets
        Fix the universe and the constraints' structure (as for the cvxpy program).
    k
        Number of risk factor columns.
    costs, constraints
        The terms: the cost models' declared terms and the constraints' rows.
    has_alpha
        Whether the objective has an alpha term.
    impact
        ``"power"`` (3-d power cones) or ``"soc"`` (two rotated second-order cones
        per asset; only for exponent 3/2).
    """

    def __init__(self, state: PortfolioState, targets: FloatArray, k: int,
                 costs: Sequence[CostModel], constraints: Sequence[Constraint],
                 has_alpha: bool, impact: str = "power", risk_form: str = "aux") -> None:
        super().__init__(state, targets, k, costs, constraints, has_alpha, impact, risk_form)
        self.solves = 0
        self._patterns = (CscPattern(), CscPattern())  # P, A
        self.kept = KeptClarabel()
        """The Clarabel solver kept for this structure (answers bit for bit a fresh one)."""

    def assembled(self, prog: ConicProgram) -> ConicProgram:
        """``prog`` with ``P`` and ``A`` built through this structure's kept patterns."""
        pp, pa = self._patterns
        P = pp.matrix(prog.P_idx, prog.P_idx, prog.P_val, (prog.nvar, prog.nvar))
        A = pa.matrix(prog.R, prog.C, prog.V, (prog.b.size, prog.nvar))
        return _Assembled(**{name: getattr(prog, name) for name in _FIELDS},
                          csc_P=P, csc_A=A)

    def to_cvxpy(self, state: PortfolioState, targets: FloatArray, G: np.ndarray,
                 s: FloatArray, risk_aversion: float, horizon: float,
                 alpha: FloatArray | None, frozen: np.ndarray | None = None,
                 constraints: Sequence[CvxpyConstraintFn] = (),
                 objective: Sequence[CvxpyObjectiveFn] = (), cash_reserve: float = 0.0
                 ) -> tuple[cp.Problem, cp.Variable, ModelVariables]:
        """This state's program as a cvxpy Problem (objective in basis points of equity)
        with its named variables, plus user constraints and objective terms over them."""
        P, q, A, b, const = self.matrices(state, targets, G, s, risk_aversion, horizon, alpha,
                                          frozen, cash_reserve)
        nf = 0 if frozen is None else int(np.count_nonzero(frozen))
        return to_cvxpy(P, q, A, b, self.cone_spec(nf), self.layout, state.weights,
                        state.cash_weight - cash_reserve, constant=const, scale=SCALE,
                        constraints=constraints, objective=objective)

    def solve_cvxpy(self, state: PortfolioState, targets: FloatArray, G: np.ndarray,
                    s: FloatArray, risk_aversion: float, horizon: float,
                    alpha: FloatArray | None, solver: str,
                    options: Mapping[str, Any] | None = None,
                    frozen: np.ndarray | None = None,
                    constraints: Sequence[CvxpyConstraintFn] = (),
                    objective: Sequence[CvxpyObjectiveFn] = (),
                    cash_reserve: float = 0.0) -> RawSolution:
        """Solve :meth:`to_cvxpy`'s Problem with a cvxpy solver; never raises on solver
        failure (the status says it)."""
        start = time.perf_counter()
        status, zval, obj, stats = "error", None, None, None
        slacks: dict[int, float] = {}
        try:
            prob, x, _ = self.to_cvxpy(state, targets, G, s, risk_aversion, horizon, alpha,
                                       frozen, constraints, objective, cash_reserve)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                prob.solve(solver=solver, **(options or {}))
            status = str(prob.status)
            stats = prob.solver_stats
            if x.value is not None and np.isfinite(x.value).all():
                xv = np.asarray(x.value, dtype=float)
                zval = xv[: self.n].copy()
                obj = float(prob.value) / SCALE
                slacks = self.slack_values(xv)
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            status = f"error: {type(exc).__name__}: {exc}"[:200]
        self.solves += 1
        return RawSolution(solver=solver, status=status, z=zval, objective=obj,
                           solve_time=getattr(stats, "solve_time", None),
                           iterations=getattr(stats, "num_iters", None),
                           wall_time=time.perf_counter() - start, slacks=slacks)

    # ----------------------------------------------------------------- solve
    def solve(self, state: PortfolioState, targets: FloatArray, G: np.ndarray, s: FloatArray,
              risk_aversion: float, horizon: float, alpha: FloatArray | None,
              options: Mapping[str, Any] | None = None, label: str = "CLARABEL",
              frozen: np.ndarray | None = None, cash_reserve: float = 0.0,
              terms: Sequence[CostTerms] | None = None) -> RawSolution:
        """One Clarabel call; never raises on solver failure (the status says it).

        ``options`` are Clarabel settings by name (as for cvxpy's Clarabel interface).
        ``RawSolution.solve_time`` is the solver's own work (building the solver or
        updating the kept one, then ``solve()``; wall); ``setup_time`` (on the returned
        object) the time before ``solve()`` (equilibration, building or updating).
        ``frozen`` (boolean mask) holds those assets at ``z = 0``.
        """
        start = time.perf_counter()
        prog = self.assembled(self.program(state, targets, G, s, risk_aversion, horizon,
                                           alpha, frozen, cash_reserve, terms))
        raw, own_status = native_raw(prog, self, "CLARABEL", options, label, start, self.kept)
        if own_status and raw.status not in ("optimal", "infeasible", "unbounded"):
            warnings.warn(f"Clarabel (direct) status {own_status}: solution may be "
                          "inaccurate or missing", UserWarning, stacklevel=3)
        self.solves += 1
        return raw
