"""The rebalancing program as a compiled cvxpy Problem (DPP), and its NumPy twin.

.. math::

    \\min_z\\ \\text{cost}(z) + \\tfrac{\\gamma}{2} T (w - w^*)^\\top \\Sigma (w - w^*)
           - \\alpha^\\top w + \\sum_{c\\ \\text{soft}} \\rho_c v_c

with ``w = w0 + z`` and ``Sigma = G G' + diag(s^2)`` (a :class:`~rebalopt.risk.RiskRoot`).
All terms are fractions of pre-trade equity ``V``; ``gamma`` is dimensionless, ``T``
in years, ``Sigma`` annualized, ``alpha`` an expected return over the horizon.

The program is the one builder's (:class:`~rebalopt.program.builder.ProgramBuilder`:
the cost models' declared terms, the constraints' declared rows, objective in basis
points), the same the direct Clarabel path solves; :class:`CompiledProblem` writes it
once per structure, on first use, as a DPP cvxpy Problem
(:class:`~rebalopt.program.cvxpy_backend.ParametricProgram`) for the solvers reached
through cvxpy (OSQP, ECOS, ``backend="cvxpy"``), and re-solves only rewrite values.
On the direct backend (``CompiledProblem.native``) Clarabel and SCS take the builder's
matrices through their own APIs (:mod:`rebalopt.rebalance._native`) for the fallback
chain and for the elastic program of the diagnosis: no cvxpy compile (seconds at
500 assets) on that path.

Assets a cost model cannot price (:func:`~rebalopt.costs.untradable_assets`) are
*frozen*: ``f_i z_i = 0`` with ``f`` the 0/1 mask (1: frozen), a value, never a
recompile. (A tradable asset's row is ``0 = 0``, redundant; measured: Clarabel and SCS
solve the program as accurately as without it.) The rows hold in the elastic program
too (freezing is not a constraint that gives way).

Two flavours come from the same builder: the *normal* program (hard constraints,
soft ones penalized) and the *elastic* program, where every constraint may give way
by ``v_c <= cap_c`` at a quadratic price; the elastic one diagnoses infeasibility
(which constraints conflict, by how much).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import Constraint, Point
from rebalopt.costs import CostModel
from rebalopt.program.builder import ELASTIC_CAP, ELASTIC_TIE, SCALE, ConicProgram, ProgramBuilder
from rebalopt.program.cvxpy_backend import ParametricProgram
from rebalopt.rebalance._native import NATIVE, KeptClarabel, solve_native
from rebalopt.state import PortfolioState

__all__ = [
    "SCALE",
    "CompiledProblem",
    "RawSolution",
    "convex_costs",
    "holding_costs",
    "objective_terms",
]

def convex_costs(costs: Sequence[CostModel], z: FloatArray,
                 state: PortfolioState) -> dict[str, float]:
    """The convex trading part of each cost model at trade weights ``z``, fraction of equity.

    Equal to the model's full cost (``evaluate``, the independent NumPy face) when
    ``exact_in_optimizer``; else (a commission with a minimum or a per-order fee,
    say) the declared convex terms (:meth:`CostTerms.trading_cost
    <rebalopt.program.CostTerms.trading_cost>`), which is what the optimizer minimizes.
    """
    out: dict[str, float] = {}
    V = state.equity
    unit = state.prices * state.multipliers
    for model in costs:
        name, k = model.name, 2
        while name in out:
            name, k = f"{model.name}#{k}", k + 1
        if model.exact_in_optimizer:
            val = float(model.evaluate(z * V / unit, state).sum()) / V
        else:
            val = model.terms(state).trading_cost(z)
        out[name] = val
    return out


def holding_costs(costs: Sequence[CostModel], z: FloatArray, state: PortfolioState,
                  horizon: float) -> float:
    """Every model's holding charge (borrow) on the post-trade book over ``horizon``
    years, fraction of equity, from the models' NumPy face (:meth:`CostModel.holding`)."""
    V = state.equity
    unit = state.prices * state.multipliers
    shares = state.holdings + np.asarray(z, dtype=float) * V / unit
    return float(sum(m.holding(shares, state, horizon).sum() for m in costs)) / V


def objective_terms(
    z: FloatArray,
    state: PortfolioState,
    targets: FloatArray,
    *,
    G: np.ndarray,
    s: FloatArray,
    risk_aversion: float,
    horizon: float,
    costs: Sequence[CostModel],
    constraints: Sequence[Constraint] = (),
    alpha: FloatArray | None = None,
    convex: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The program's objective at ``z`` in NumPy, term by term (fractions of equity).

    Keys: ``cost`` (convex trading cost), ``holding`` (short holding over the
    horizon), ``risk`` (``gamma/2 * T * d' Sigma d``), ``alpha`` (``-alpha' w``),
    ``penalty`` (soft constraints), ``total``. ``convex``: :func:`convex_costs` of
    ``costs`` at this ``z``, when the caller has it already.
    """
    z = np.asarray(z, dtype=float)
    cc = convex_costs(costs, z, state) if convex is None else convex
    cost = float(sum(cc.values()))
    hold = holding_costs(costs, z, state, horizon)
    d = state.weights + z - targets
    f = G.T @ d
    e = s * d
    risk = 0.5 * risk_aversion * horizon * float(f @ f + e @ e)
    a = -float(alpha @ (state.weights + z)) if alpha is not None else 0.0
    pen = 0.0
    soft = [c for c in constraints if c.soft]
    if soft:
        point = Point.from_trades(state, targets, z, cost)
        pen = float(sum(c.penalty * c.check(point).violation for c in soft))
    return {"cost": cost, "holding": hold, "risk": risk, "alpha": a, "penalty": pen,
            "total": cost + hold + risk + a + pen}


@dataclass
class RawSolution:
    """What one solver call returned, before verification.

    ``z`` is ``None`` when the solver produced no point. Times in seconds;
    ``objective`` is the solver's objective converted back to a fraction of equity.
    """

    solver: str
    status: str
    z: FloatArray | None
    objective: float | None
    solve_time: float | None
    iterations: int | None
    wall_time: float
    slacks: dict[int, float] = field(default_factory=dict)
    setup_time: float | None = None


def native_raw(prog: ConicProgram, builder: ProgramBuilder, solver: str,
               options: Mapping[str, Any] | None, label: str,
               start: float | None = None, kept: KeptClarabel | None = None
               ) -> tuple[RawSolution, str]:
    """Solve ``prog`` (built by ``builder``) with ``solver``'s own API; never raises on
    solver failure (the status says it). Also returns the solver's own status name
    (empty when the solver raised). ``wall_time`` counts from ``start`` (a
    ``perf_counter`` time; default: now). ``kept``: the structure's kept Clarabel solver
    (:class:`~rebalopt.rebalance._native.KeptClarabel`), if any."""
    start = time.perf_counter() if start is None else start
    status, zval, obj = "error", None, None
    slacks: dict[int, float] = {}
    ans = None
    try:
        ans = solve_native(prog, solver, options, kept)
        status = ans.status
        if (status in ("optimal", "optimal_inaccurate") and ans.x is not None
                and np.isfinite(ans.x).all()):
            zval = ans.x[: builder.n].copy()
            obj = (float(ans.objective) + prog.const) / SCALE  # type: ignore[arg-type]
            slacks = builder.slack_values(ans.x)
    except (ValueError, TypeError, ArithmeticError, RuntimeError) as exc:
        status = f"error: {type(exc).__name__}: {exc}"[:200]
    raw = RawSolution(
        solver=label, status=status, z=zval, objective=obj,
        solve_time=None if ans is None else ans.solve_time,
        iterations=None if ans is None else ans.iterations,
        wall_time=time.perf_counter() - start, slacks=slacks,
        setup_time=None if ans is None else ans.setup_time,
    )
    return raw, "" if ans is None else ans.solver_status


class CompiledProblem:
    """The rebalancing program for one universe and one set of terms, compiled once.

    Parameters
    ----------
    state
        Fixes the universe (shapes) and the constraints' structure.
    targets
        Target weights (only for constraint structure, e.g. group labels).
    k
        Number of risk factor columns (``RiskRoot.G.shape[1]``).
    costs, constraints
        The terms: the cost models' declared terms and the constraints' rows.
    has_alpha
        Whether the objective has an alpha term.

    Use :meth:`update` to write a state's values and :meth:`solve` to solve with one
    solver; the rebalancer does the fallback and the verification. The elastic
    program is built on first use (:meth:`elastic_problem`).
    """

    def __init__(self, state: PortfolioState, targets: FloatArray, k: int,
                 costs: Sequence[CostModel], constraints: Sequence[Constraint],
                 has_alpha: bool) -> None:
        n = state.n
        self.n, self.k = n, k
        self.costs = list(costs)
        self.constraints = list(constraints)
        self.has_alpha = has_alpha
        self.solves = 0
        self._state, self._targets = state, np.asarray(targets, dtype=float)
        self.builder = ProgramBuilder(state, targets, k, costs, constraints, has_alpha,
                                      risk_form="diag")
        self.frozen_mask = np.zeros(n, dtype=bool)
        self._args: tuple[Any, ...] = (state, self._targets, np.zeros((n, k)), np.zeros(n),
                                       0.0, 0.0, np.zeros(n) if has_alpha else None, None, 0.0)
        self._program: ParametricProgram | None = None  # written as cvxpy on first use
        self._elastic: ProgramBuilder | None = None
        self._elastic_program: ParametricProgram | None = None
        self._stale = False
        self.caps = np.full(len(self.constraints), ELASTIC_CAP)
        self.tie = ELASTIC_TIE
        """Weight of the normal objective in the elastic program (its tie-break)."""
        self.native = False
        """Solve with Clarabel and SCS through their own APIs (:mod:`._native`) instead
        of the cvxpy Problem (same program; no cvxpy compile). Set by a rebalancer on
        the direct backend for its fallbacks and diagnosis."""

    # ------------------------------------------------------------ programs
    def _parametric(self) -> ParametricProgram:
        """The normal program as cvxpy (written on first use), with the current values."""
        if self._program is None:
            self._program = ParametricProgram(self._values(self.builder), self.n)
        elif self._stale:
            self._program.update(self._values(self.builder))
        self._stale = False
        return self._program

    @property
    def problem(self) -> cp.Problem:
        """The normal program (cvxpy Problem, objective in basis points of equity)."""
        return self._parametric().problem

    @property
    def z(self) -> cp.Variable:
        """Trade weights of the normal program."""
        return self._parametric().z

    def _values(self, builder: ProgramBuilder) -> ConicProgram:
        state, targets, G, s, gamma, T, alpha, frozen, reserve = self._args
        caps = self.caps if builder.elastic else None
        return builder.program(state, targets, G, s, gamma, T, alpha, frozen, reserve,
                               all_frozen_rows=True, caps=caps, varying=True, tie=self.tie)

    def elastic_problem(self) -> cp.Problem:
        """The elastic program (built on first use, same rows and cones).

        Every constraint ``c`` may give way by ``0 <= v_c <= cap_c`` (``v_c`` the worst
        row's violation, in the constraint's units); the objective is
        ``SCALE * sum(v**2)`` plus :attr:`tie` times the normal objective, which
        spreads the violation over every constraint that takes part in a conflict.
        """
        builder = self._elastic_builder()
        if self._elastic_program is None:
            self._elastic_program = ParametricProgram(self._values(builder), self.n)
        return self._elastic_program.problem

    def _elastic_builder(self) -> ProgramBuilder:
        if self._elastic is None:
            self._elastic = ProgramBuilder(self._state, self._targets, self.k, self.costs,
                                           self.constraints, self.has_alpha,
                                           risk_form="diag", elastic=True)
        return self._elastic

    # ------------------------------------------------------------------ update
    def params_intact(self) -> bool:
        """Always true: constraints and cost models hold no solver objects (their rows
        and terms are data, read on every update)."""
        return True

    def update(self, state: PortfolioState, targets: FloatArray, G: np.ndarray, s: FloatArray,
               risk_aversion: float, horizon: float, alpha: FloatArray | None,
               frozen: np.ndarray | None = None, cash_reserve: float = 0.0) -> None:
        """Write the values of ``state``/``targets`` and the knobs into the program.

        ``frozen`` (boolean mask, default none) marks the assets held at ``z = 0``.
        """
        self.frozen_mask = (np.zeros(self.n, dtype=bool) if frozen is None
                            else np.asarray(frozen, dtype=bool).copy())
        self._args = (state, np.asarray(targets, dtype=float), G, s, risk_aversion, horizon,
                      alpha, self.frozen_mask, cash_reserve)
        self._stale = True  # the cvxpy Problem (if written) takes the values when used

    def set_elastic_caps(self, free: Sequence[int] | None) -> None:
        """Let constraints ``free`` (indices) give way in the elastic program; ``None``: all."""
        self.caps = np.array([ELASTIC_CAP if free is None or i in free else 0.0
                              for i in range(len(self.constraints))])

    # ------------------------------------------------------------------- solve
    def solve(self, solver: str, options: dict[str, Any] | None = None,
              elastic: bool = False) -> RawSolution:
        """One solver call on the normal (or elastic) program; never raises on solver
        failure (the status says it). ``slacks`` holds each soft (or, elastic: every)
        constraint's violation by index."""
        if self.native and solver in NATIVE:
            return self._solve_native(solver, options, elastic)
        start = time.perf_counter()
        status, zval, obj = "error", None, None
        if elastic:
            self.elastic_problem()
            builder, program = self._elastic, self._elastic_program
            program.update(self._values(builder))  # type: ignore[union-attr, arg-type]
        else:
            builder, program = self.builder, self._parametric()
        prob = program.problem  # type: ignore[union-attr]
        try:
            with warnings.catch_warnings():
                # the status says so, and every answer is verified numerically
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                prob.solve(solver=solver, ignore_dpp=False, **(options or {}))
            status = str(prob.status)
            z = program.z.value  # type: ignore[union-attr]
            if z is not None and np.isfinite(z).all():
                zval = np.array(z, dtype=float)
                obj = float(prob.value) / SCALE
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            status = f"error: {type(exc).__name__}: {exc}"[:200]
        wall = time.perf_counter() - start
        self.solves += 1
        stats = prob.solver_stats if not status.startswith("error") else None
        slacks: dict[int, float] = {}
        x = program.x_value() if zval is not None else None  # type: ignore[union-attr]
        if x is not None:
            slacks = builder.slack_values(x)  # type: ignore[union-attr]
        return RawSolution(
            solver=solver, status=status, z=zval, objective=obj,
            solve_time=getattr(stats, "solve_time", None),
            iterations=getattr(stats, "num_iters", None),
            wall_time=wall, slacks=slacks,
        )

    def _solve_native(self, solver: str, options: dict[str, Any] | None,
                      elastic: bool = False) -> RawSolution:
        """:meth:`solve` through the solver's own API (:mod:`rebalopt.rebalance._native`),
        the normal or the elastic program (no cvxpy compile)."""
        start = time.perf_counter()
        builder = self._elastic_builder() if elastic else self.builder
        raw, _ = native_raw(self._values(builder), builder, solver, options, solver, start)
        self.solves += 1
        return raw

    def is_dpp(self) -> bool:
        """Whether the program is DPP (re-solves only rewrite parameter values)."""
        return self.problem.is_dpp()
