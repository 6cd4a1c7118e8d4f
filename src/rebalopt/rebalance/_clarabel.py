"""The rebalancing program handed to Clarabel directly (no cvxpy), matrices from NumPy.

Same program, same scaling (objective in basis points, ``sqrt(SCALE*gamma*T/2)``
folded into ``G`` and ``s``) as :class:`~rebalopt.rebalance._problem.CompiledProblem`,
written in Clarabel's standard form

.. math::

    \\min_x\\ \\tfrac12 x^\\top P x + q^\\top x \\quad \\text{s.t.}\\quad Ax + s = b,\\ s \\in K

with ``x = [z, t, u_1.., (v_1..), y, aux.., slack..]``:

* ``z`` trade weights (``n``), ``t >= |z|`` (``n``, two nonnegative rows per asset);
* ``u_m >= t^p`` per power-law impact model: ``n`` 3-d power cones
  ``(u_i, 1, t_i) in PowerConeT(1/p)`` (``impact="power"``, default) or, for
  ``p = 3/2``, two rotated second-order cones per asset through ``v_i``:
  ``t^2 <= u v`` and ``v^2 <= t`` (``impact="soc"``);
* ``y = G_sc' (z + d0)`` (``k`` equality rows), the factor part of the risk;
  ``P = diag(2 s_sc^2)`` on ``z`` and ``2 I`` on ``y``;
* ``z_i = 0`` (equality rows) for each *frozen* asset, one a cost model cannot
  price: the rows are written per solve, so a change in the frozen set is never a
  recompile (the cvxpy program bounds ``t`` by a Parameter instead);
* constraint rows from each constraint's :meth:`~rebalopt.constraints.Constraint.rows`
  (their auxiliary columns are allocated once), a slack column per soft constraint.

The structure (column layout, row blocks, cones) is fixed when the object is made;
each :meth:`DirectProblem.solve` recomputes the values from the state and builds a
fresh Clarabel solver (cheap at these sizes, and a re-solve then answers exactly
what a first solve answers: no state is carried over between solves).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import Constraint
from rebalopt.costs import CostModel
from rebalopt.program import CostTerms, MatrixLayout, MatrixRows, combine_terms
from rebalopt.program.cvxpy_backend import (
    ConeSpec,
    CvxpyConstraintFn,
    CvxpyObjectiveFn,
    ModelVariables,
    to_cvxpy,
)
from rebalopt.rebalance._problem import SCALE, RawSolution
from rebalopt.state import PortfolioState

__all__ = ["CVXPY_ONLY", "DIRECT_SETTINGS", "STATUS", "DirectProblem", "supported"]

DIRECT_SETTINGS: dict[str, Any] = {
    "verbose": False,
    # measured with the cvxpy path (DESIGN.md section 3): 0.99 stalls on ~1 in 6 warm
    # re-solves with 3/2 power cones; 0.95 never did
    "max_step_fraction": 0.95,
    "presolve_enable": False,  # no infinite bounds to remove; keeps row order fixed
}
"""Clarabel settings of the direct path (``solver_options['CLARABEL']`` overrides)."""

CVXPY_ONLY: frozenset[str] = frozenset({"warm_start"})
"""Options of cvxpy's ``solve`` (not Clarabel settings) ignored by the direct path: a
fresh solver is built on every solve, which is what ``warm_start=False`` asks for."""

STATUS: dict[str, str] = {
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
"""Clarabel status -> the cvxpy status names the rebalancer reads (same map as cvxpy)."""

def _linear_rates(model: CostModel, state: PortfolioState) -> FloatArray | None:
    """Cost per unit of ``|z|`` (fraction of equity) declared by ``model`` (its linear
    terms and exponent-1 power terms), or ``None`` when it declares none."""
    t = model.terms(state)
    parts = [np.asarray(t.linear, dtype=float)] if t.linear is not None else []
    parts += [np.asarray(p.coef, dtype=float) for p in t.power if p.exponent == 1.0]
    return np.sum(parts, axis=0) if parts else None


def supported(costs: Sequence[CostModel], constraints: Sequence[Constraint]) -> bool:
    """Whether every term has a matrix form: every constraint declares
    :meth:`~rebalopt.constraints.Constraint.rows` (every cost model declares its
    terms); otherwise use the cvxpy program."""
    return all(type(c).rows is not Constraint.rows for c in constraints)


class DirectProblem:
    """The program for one universe and one set of terms, as Clarabel matrices.

    Parameters
    ----------
    state, targets
        Fix the universe and the constraints' structure (as for the cvxpy program).
    k
        Number of risk factor columns.
    costs, constraints
        The terms; :func:`supported` must hold.
    has_alpha
        Whether the objective has an alpha term.
    impact
        ``"power"`` (3-d power cones) or ``"soc"`` (two rotated second-order cones
        per asset; only for exponent 3/2).
    """

    def __init__(self, state: PortfolioState, targets: FloatArray, k: int,
                 costs: Sequence[CostModel], constraints: Sequence[Constraint],
                 has_alpha: bool, impact: str = "power", risk_form: str = "aux") -> None:
        if not supported(costs, constraints):
            raise TypeError("a term has no matrix form")
        if impact not in ("power", "soc"):
            raise ValueError(f"impact must be 'power' or 'soc', got {impact!r}")
        if risk_form not in ("aux", "diag"):
            raise ValueError(f"risk_form must be 'aux' or 'diag', got {risk_form!r}")
        n = state.n
        self.n, self.k = n, k
        self.costs, self.constraints = list(costs), list(constraints)
        self.has_alpha = has_alpha
        self.solves = 0
        col = 2 * n
        # the cost models' declared terms fix the cost's structure: one epigraph
        # u_k >= t ** p_k per power exponent (a quadratic term is exponent 2), a
        # short-position block h >= max(-w, 0) when a model holds shorts at a rate
        terms = self._terms(state)
        self.term_key = tuple(t.structure() for t in terms)
        c = combine_terms(terms, n)
        exps = [p.exponent for p in c.power]
        if c.quadratic is not None and 2.0 not in exps:
            exps.append(2.0)
        self.impact: list[tuple[float, np.ndarray, np.ndarray | None]] = []
        for p in exps:
            u = np.arange(col, col + n)
            col += n
            v = None
            if impact == "soc" and p == 1.5:
                v = np.arange(col, col + n)
                col += n
            self.impact.append((p, u, v))
        self.h = np.zeros(0, dtype=int)
        if c.short_holding is not None:
            self.h = np.arange(col, col + n)
            col += n
        self.y = np.arange(col, col + k)
        col += k
        # specific risk: e = s_sc * (z + d0) with P = 2I ("aux"), or P = diag(2 s_sc^2) on z
        self.e = np.arange(col, col + n) if risk_form == "aux" else np.zeros(0, dtype=int)
        col += self.e.size
        self.nzero = k + self.e.size
        self.layout = MatrixLayout(n=n, z=np.arange(n), t=np.arange(n, 2 * n), ncols=col)
        # cost models' own variables (tax lots...): a block, its rows, a linear cost
        self.aux_cols = [self.layout.aux(a.key, a.size) for tm in terms for a in tm.aux]
        self._set_cost(state, terms)
        self._aux_row_counts = [[r.m for r in a.rows(self.layout)] for a in self._aux_terms]
        # constraint rows once: allocates the auxiliary columns, fixes the row counts
        blocks = [c.rows(self.layout, state, targets) for c in self.constraints]
        self.slack_cols: list[int | None] = []
        for c in self.constraints:
            if c.soft:
                self.slack_cols.append(self.layout.ncols)
                self.layout.ncols += 1
            else:
                self.slack_cols.append(None)
        self.layout.frozen = True
        self.nvar = self.layout.ncols
        self._row_counts = [[b.m for b in bl or []] for bl in blocks]
        self._blocks_shape = blocks
        self.cones = self._cones(blocks)

    # ---------------------------------------------------------------- pieces
    def _terms(self, state: PortfolioState) -> list[CostTerms]:
        return [m.terms(state) for m in self.costs]

    def _set_cost(self, state: PortfolioState, terms: Sequence[CostTerms] | None = None
                  ) -> CostTerms:
        """The convex trading cost as ``cost_vals @ x[cost_cols]`` for this state;
        returns the models' terms combined."""
        terms = self._terms(state) if terms is None else terms
        if tuple(t.structure() for t in terms) != self.term_key:
            raise RuntimeError("cost terms changed structure without a recompile")
        c = combine_terms(terms, self.n)
        coef = {p.exponent: p.coef for p in c.power}
        if c.quadratic is not None:
            coef[2.0] = coef.get(2.0, 0.0) + c.quadratic
        cols = [self.layout.t]
        vals = [c.linear if c.linear is not None else np.zeros(self.n)]
        for p, u, _ in self.impact:
            cols.append(u)
            vals.append(np.asarray(coef[p], dtype=float))
        self._aux_terms = list(c.aux)
        for a, ac in zip(self._aux_terms, self.aux_cols):
            if a.paid_from_cash:
                cols.append(ac)
                vals.append(np.broadcast_to(np.asarray(a.cost, dtype=float), ac.shape))
        self.layout.cost_cols = np.concatenate(cols)
        self.layout.cost_vals = np.concatenate(vals)
        return c

    def _n_nonneg(self, blocks: Sequence[Sequence[MatrixRows] | None]) -> int:
        rows = 2 * self.n + 2 * self.h.size + sum(b.m for bl in blocks for b in bl or [])
        rows += sum(sum(c) for c in self._aux_row_counts)
        return rows + sum(1 for c in self.slack_cols if c is not None)

    def cone_spec(self, nfrozen: int = 0) -> list[ConeSpec]:
        """The cones, in row order, as ``(kind, count, alpha)`` (see :mod:`rebalopt.program`)."""
        spec: list[ConeSpec] = []
        if self.nzero + nfrozen:
            spec.append(("zero", self.nzero + nfrozen, 0.0))
        spec.append(("nonneg", self._n_nonneg(self._blocks_shape), 0.0))
        for p, _, v in self.impact:
            if v is None:
                spec.append(("power", self.n, 1.0 / p))
            else:
                spec.append(("soc3", 2 * self.n, 0.0))
        return spec

    def _cones(self, blocks: Sequence[Sequence[MatrixRows] | None],
               nfrozen: int = 0) -> list[Any]:
        cones: list[Any] = []
        for kind, count, alpha in self.cone_spec(nfrozen):
            if kind == "zero":
                cones.append(clarabel.ZeroConeT(count))
            elif kind == "nonneg":
                cones.append(clarabel.NonnegativeConeT(count))
            elif kind == "power":
                cones += [clarabel.PowerConeT(alpha)] * count
            else:
                cones += [clarabel.SecondOrderConeT(3)] * count
        return cones

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
                for i, sc in enumerate(self.slack_cols):
                    if sc is not None:
                        slacks[i] = float(xv[sc])
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            status = f"error: {type(exc).__name__}: {exc}"[:200]
        self.solves += 1
        return RawSolution(solver=solver, status=status, z=zval, objective=obj,
                           solve_time=getattr(stats, "solve_time", None),
                           iterations=getattr(stats, "num_iters", None),
                           wall_time=time.perf_counter() - start, slacks=slacks)

    def matrices(self, state: PortfolioState, targets: FloatArray, G: np.ndarray,
                 s: FloatArray, risk_aversion: float, horizon: float,
                 alpha: FloatArray | None, frozen: np.ndarray | None = None,
                 cash_reserve: float = 0.0, terms: Sequence[CostTerms] | None = None
                 ) -> tuple[sp.csc_matrix, FloatArray, sp.csc_matrix, FloatArray, float]:
        """``P`` (upper triangle), ``q``, ``A``, ``b`` and the objective constant (bps).

        ``frozen`` (boolean mask) adds a row ``z_i = 0`` per frozen asset after the
        other equality rows (the zero cone grows by as many rows)."""
        n, k, L = self.n, self.k, self.layout
        w0 = state.weights
        d0 = w0 - targets
        root = np.sqrt(SCALE * 0.5 * risk_aversion * horizon)
        s_sc = root * np.asarray(s, dtype=float)
        sd0 = s_sc * d0
        ct = self._set_cost(state, terms)
        # ---- objective
        aux = self.e.size > 0
        pd_ = np.concatenate([np.full(n, 2.0) if aux else 2.0 * s_sc ** 2, np.full(k, 2.0)])
        pi = np.concatenate([self.e if aux else L.z, self.y])
        P = sp.csc_matrix((pd_, (pi, pi)), shape=(self.nvar, self.nvar))
        q = np.zeros(self.nvar)
        if not aux:
            q[L.z] = 2.0 * s_sc * sd0
        np.add.at(q, L.cost_cols, SCALE * L.cost_vals)
        if self.h.size:  # short holding over the horizon
            q[self.h] += SCALE * horizon * np.asarray(ct.short_holding, dtype=float)
        for a, ac in zip(self._aux_terms, self.aux_cols):  # paid from cash: in cost_vals
            if not a.paid_from_cash:
                q[ac] += SCALE * np.asarray(a.cost, dtype=float)
        const = 0.0 if aux else float(sd0 @ sd0)
        if self.has_alpha:
            a = SCALE * np.asarray(alpha, dtype=float)
            q[L.z] -= a
            const -= float(a @ w0)
        for c, sc in zip(self.constraints, self.slack_cols):
            if sc is not None:
                q[sc] = SCALE * float(c.penalty)
        # ---- rows
        R: list[np.ndarray] = []
        C: list[np.ndarray] = []
        V: list[np.ndarray] = []
        B: list[np.ndarray] = []
        r0 = 0
        if k:  # y - G_sc' z = G_sc' d0
            G_sc = root * np.asarray(G, dtype=float)
            R += [np.repeat(np.arange(k), n), np.arange(k)]
            C += [np.tile(L.z, k), self.y]
            V += [-G_sc.T.ravel(), np.ones(k)]
            B.append(G_sc.T @ d0)
            r0 = k
        if aux:  # e - s_sc z = s_sc d0
            R += [r0 + np.arange(n), r0 + np.arange(n)]
            C += [self.e, L.z]
            V += [np.ones(n), -s_sc]
            B.append(sd0)
            r0 += n
        fz = np.zeros(0, dtype=int) if frozen is None else np.flatnonzero(frozen)
        if fz.size:  # z_i = 0 for a frozen asset
            R.append(r0 + np.arange(fz.size))
            C.append(L.z[fz])
            V.append(np.ones(fz.size))
            B.append(np.zeros(fz.size))
            r0 += fz.size
        ar = np.arange(n)  # z - t <= 0, -z - t <= 0
        R += [r0 + ar, r0 + ar, r0 + n + ar, r0 + n + ar]
        C += [L.z, L.t, L.z, L.t]
        V += [np.ones(n), -np.ones(n), -np.ones(n), -np.ones(n)]
        B.append(np.zeros(2 * n))
        r0 += 2 * n
        if self.h.size:  # -z - h <= w0, -h <= 0: h >= max(-w, 0)
            R += [r0 + ar, r0 + ar, r0 + n + ar]
            C += [L.z, self.h, self.h]
            V += [-np.ones(n), -np.ones(n), -np.ones(n)]
            B += [w0, np.zeros(n)]
            r0 += 2 * n
        slack_rows: list[int] = []
        c0 = state.cash_weight - cash_reserve  # cash held back (fees) is not spendable
        for a, counts in zip(self._aux_terms, self._aux_row_counts):  # always hard
            blocks = list(a.rows(L))
            if [b.m for b in blocks] != counts:
                raise RuntimeError(f"cost block {a.key!r}: rows changed shape without a "
                                   "recompile")
            for b in blocks:
                b = L.resolve(b, w0, c0)
                R.append(r0 + np.asarray(b.row, dtype=int))
                C.append(np.asarray(b.col, dtype=int))
                V.append(np.asarray(b.val, dtype=float))
                B.append(np.asarray(b.b, dtype=float))
                r0 += b.m
        for c, sc, counts in zip(self.constraints, self.slack_cols, self._row_counts):
            blocks = c.rows(L, state, targets) or []
            if [b.m for b in blocks] != counts:
                raise RuntimeError(f"{c.name}: rows changed shape without a recompile")
            for b in blocks:
                b = L.resolve(b, w0, c0)
                R.append(r0 + np.asarray(b.row, dtype=int))
                C.append(np.asarray(b.col, dtype=int))
                V.append(np.asarray(b.val, dtype=float))
                B.append(np.asarray(b.b, dtype=float))
                if sc is not None and b.main:  # lhs - v <= rhs
                    R.append(r0 + np.arange(b.m))
                    C.append(np.full(b.m, sc))
                    V.append(-np.ones(b.m))
                r0 += b.m
            if sc is not None:
                slack_rows.append(sc)
        for sc in slack_rows:  # v >= 0
            R.append(np.array([r0]))
            C.append(np.array([sc]))
            V.append(np.array([-1.0]))
            B.append(np.zeros(1))
            r0 += 1
        for _, u, v in self.impact:
            if v is None:  # (u_i, 1, t_i) in the power cone
                base = r0 + 3 * ar
                R += [base, base + 2]
                C += [u, L.t]
                V += [-np.ones(n), -np.ones(n)]
                b = np.zeros(3 * n)
                b[1::3] = 1.0
                B.append(b)
                r0 += 3 * n
            else:  # (u+v, 2t, u-v) in SOC(3); (t+1, 2v, t-1) in SOC(3)
                base = r0 + 6 * ar
                R += [base, base, base + 1, base + 2, base + 2,
                      base + 3, base + 4, base + 5]
                C += [u, v, L.t, u, v, L.t, v, L.t]
                V += [-np.ones(n), -np.ones(n), -2.0 * np.ones(n), -np.ones(n), np.ones(n),
                      -np.ones(n), -2.0 * np.ones(n), -np.ones(n)]
                b = np.zeros(6 * n)
                b[3::6] = 1.0
                b[5::6] = -1.0
                B.append(b)
                r0 += 6 * n
        A = sp.csc_matrix((np.concatenate(V), (np.concatenate(R), np.concatenate(C))),
                          shape=(r0, self.nvar))
        return P, q, A, np.concatenate(B), const

    # ----------------------------------------------------------------- solve
    def solve(self, state: PortfolioState, targets: FloatArray, G: np.ndarray, s: FloatArray,
              risk_aversion: float, horizon: float, alpha: FloatArray | None,
              options: Mapping[str, Any] | None = None, label: str = "CLARABEL",
              frozen: np.ndarray | None = None, cash_reserve: float = 0.0,
              terms: Sequence[CostTerms] | None = None) -> RawSolution:
        """One Clarabel call; never raises on solver failure (the status says it).

        ``options`` are Clarabel settings by name (as for cvxpy's Clarabel interface).
        ``RawSolution.solve_time`` is Clarabel's own solve time; ``setup_time`` (on the
        returned object) the solver construction (equilibration, symbolic factorization).
        ``frozen`` (boolean mask) holds those assets at ``z = 0``.
        """
        start = time.perf_counter()
        P, q, A, b, const = self.matrices(state, targets, G, s, risk_aversion, horizon, alpha,
                                          frozen, cash_reserve, terms)
        nf = 0 if frozen is None else int(np.count_nonzero(frozen))
        cones = self.cones if nf == 0 else self._cones(self._blocks_shape, nf)
        status, zval, obj, stime, iters, setup = "error", None, None, None, None, None
        slacks: dict[int, float] = {}
        try:
            settings = clarabel.DefaultSettings()
            for key, val in {**DIRECT_SETTINGS, **(options or {})}.items():
                if key in CVXPY_ONLY:
                    continue
                if not hasattr(settings, key):
                    raise ValueError(f"unknown Clarabel setting {key!r}")
                setattr(settings, key, val)
            t0 = time.perf_counter()
            solver = clarabel.DefaultSolver(P, q, A, b, cones, settings)
            setup = time.perf_counter() - t0
            sol = solver.solve()
            status = STATUS.get(str(sol.status), "solver_error")
            stime, iters = float(sol.solve_time), int(sol.iterations)
            x = np.asarray(sol.x, dtype=float)
            if status in ("optimal", "optimal_inaccurate") and np.isfinite(x).all():
                zval = x[: self.n].copy()
                obj = (float(sol.obj_val) + const) / SCALE
                for i, sc in enumerate(self.slack_cols):
                    if sc is not None:
                        slacks[i] = float(x[sc])
            if status not in ("optimal", "infeasible", "unbounded"):
                warnings.warn(f"Clarabel (direct) status {sol.status}: solution may be "
                              "inaccurate or missing", UserWarning, stacklevel=3)
        except (ValueError, TypeError, ArithmeticError, RuntimeError) as exc:
            status = f"error: {type(exc).__name__}: {exc}"[:200]
        self.solves += 1
        return RawSolution(solver=label, status=status, z=zval, objective=obj, solve_time=stime,
                           iterations=iters, wall_time=time.perf_counter() - start,
                           slacks=slacks, setup_time=setup)
