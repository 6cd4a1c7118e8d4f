"""The compiled convex rebalancing program (DPP) and its NumPy twin.

.. math::

    \\min_z\\ \\text{cost}(z) + \\tfrac{\\gamma}{2} T (w - w^*)^\\top \\Sigma (w - w^*)
           - \\alpha^\\top w + \\sum_{c\\ \\text{soft}} \\rho_c v_c

with ``w = w0 + z`` and ``Sigma = G G' + diag(s^2)`` (a :class:`~rebalopt.risk.RiskRoot`).
All terms are fractions of pre-trade equity ``V``; ``gamma`` is dimensionless, ``T``
in years, ``Sigma`` annualized, ``alpha`` an expected return over the horizon.

Formulation (DESIGN.md section 3, measured): explicit epigraph variables ``t >= |z|``
shared by every cost term, the cash floor, turnover and participation; ``u >= t^p``
through exact 3-d power cones for power-law impact; the factor part of the risk
through ``y = G' z + G'(w0 - w*)`` (``k`` variables, never an ``n x n`` matrix). The
objective is scaled to basis points and ``sqrt(SCALE * gamma * T / 2)`` is folded
into ``G`` and ``s`` in NumPy, so ``gamma`` and ``T`` are plain parameter values and
a sweep over them never recompiles.

Assets a cost model cannot price (:func:`~rebalopt.costs.untradable_assets`) are
*frozen*: ``f_i z_i = 0`` with ``f`` a 0/1 Parameter (1: frozen), so ``z_i = 0``
there and a change in the frozen set is a new parameter value, never a recompile.
(A tradable asset's row is ``0 = 0``, redundant; measured: Clarabel and SCS solve
the program as accurately as without it, where a bound ``|z_i| <= 1000`` cost SCS
its 1e-7 accuracy.) The rows hold in the elastic program too (freezing is not a
constraint that gives way).

Two flavours are compiled from the same builder: the *normal* program (hard
constraints, soft ones penalized) and the *elastic* program, where every
constraint may give way by ``v_c <= cap_c`` at a quadratic price; the elastic one
diagnoses infeasibility (which constraints conflict, by how much).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import Constraint, Point, ProblemContext
from rebalopt.costs import CostModel
from rebalopt.program import CvxpyCost
from rebalopt.state import PortfolioState

__all__ = [
    "SCALE",
    "CompiledProblem",
    "RawSolution",
    "convex_costs",
    "holding_costs",
    "model_parameter_ids",
    "objective_terms",
]

SCALE = 1e4
"""The program's objective is in basis points of equity (fractions x 1e4)."""

_ELASTIC_CAP = 1e3
"""Upper bound on an elastic slack that is allowed to move (constraint units)."""


def model_parameter_ids(model: CostModel | Constraint) -> tuple[int, ...]:
    """Identity of the cvxpy Parameters a model currently holds (a change forces a rebuild)."""
    return tuple(id(v) for v in vars(model).values() if isinstance(v, cp.Parameter))


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
) -> dict[str, float]:
    """The program's objective at ``z`` in NumPy, term by term (fractions of equity).

    Keys: ``cost`` (convex trading cost), ``holding`` (short holding over the
    horizon), ``risk`` (``gamma/2 * T * d' Sigma d``), ``alpha`` (``-alpha' w``),
    ``penalty`` (soft constraints), ``total``.
    """
    z = np.asarray(z, dtype=float)
    cc = convex_costs(costs, z, state)
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
        The terms. The Parameters of the cost terms and the constraints' rows are
        created here.
    has_alpha
        Whether the objective has an alpha term.

    Use :meth:`update` to write a state's values into the Parameters and
    :meth:`solve` to solve with one solver; the rebalancer does the fallback and
    the verification.
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

        # ---- parameters shared by the terms
        self.w0 = cp.Parameter(n, name="w0")
        self.c0 = cp.Parameter(name="c0")
        self.s_sc = cp.Parameter(n, nonneg=True, name="s_scaled")
        self.sd0 = cp.Parameter(n, name="s_scaled_x_drift")
        self.z = cp.Variable(n, name="z")
        self.t = cp.Variable(n, name="t")
        z, t = self.z, self.t
        self.frozen = cp.Parameter(n, nonneg=True, name="frozen")
        self.frozen.value = np.zeros(n)
        cons: list[cp.Constraint] = [t >= z, t >= -z, cp.multiply(self.frozen, z) == 0]

        # ---- costs (fraction of equity), from the models' declared terms
        self.cost_params = CvxpyCost([m.terms(state) for m in self.costs], n)
        cost, cost_cons = self.cost_params.trading(z, t, epigraph=True)
        cons += cost_cons
        hold, hold_cons = self.cost_params.holding_cost(self.w0 + z)
        cons += hold_cons
        self.cost_expr = cost
        # the declared trading terms are paid from cash at the trade (as on the direct
        # path); a cost paid later (a tax) is an aux block with paid_from_cash=False
        paid = cost

        # ---- risk: sum_squares(y) + sum_squares(s z + s d0), pre-scaled
        obj_terms: list[cp.Expression] = [SCALE * (cost + hold)]
        if k > 0:
            self.G_sc = cp.Parameter((n, k), name="G_scaled")
            self.gd0 = cp.Parameter(k, name="G_scaled_x_drift")
            self.y = cp.Variable(k, name="factor_drift")
            cons.append(self.y == self.G_sc.T @ z + self.gd0)
            obj_terms.append(cp.sum_squares(self.y))
        obj_terms.append(cp.sum_squares(cp.multiply(self.s_sc, z) + self.sd0))
        if has_alpha:
            self.alpha = cp.Parameter(n, name="alpha_scaled")
            self.alpha_w0 = cp.Parameter(name="alpha_scaled_x_w0")
            obj_terms.append(-(self.alpha @ z) - self.alpha_w0)

        # ---- constraints (rows shared by the normal and the elastic program)
        ctx = ProblemContext(state=state, z=z, t=t, w=self.w0 + z, cost=paid, c0=self.c0,
                             w0=self.w0)
        self._base_cons = list(cons)
        self.rows = [c.build(ctx) for c in self.constraints]
        self._constraint_param_ids = [model_parameter_ids(c) for c in self.constraints]
        self.slack_vars: list[cp.Variable | None] = []
        self.penalties: list[cp.Parameter | None] = []
        for c, rows in zip(self.constraints, self.rows):
            if c.soft:
                v = cp.Variable(nonneg=True)
                pen = cp.Parameter(nonneg=True)
                cons += [lhs <= rhs + v for lhs, rhs in rows]
                obj_terms.append(SCALE * pen * v)
                self.slack_vars.append(v)
                self.penalties.append(pen)
            else:
                cons += [lhs <= rhs for lhs, rhs in rows]
                self.slack_vars.append(None)
                self.penalties.append(None)
        objective = cp.Minimize(cp.sum(cp.hstack(obj_terms)) if obj_terms else cp.Constant(0))
        self.problem = cp.Problem(objective, cons)
        self._elastic: cp.Problem | None = None
        self.elastic_vars: list[cp.Variable] = []
        self.caps: list[cp.Parameter] = []

    def elastic_problem(self) -> cp.Problem:
        """The elastic program (built on first use, sharing rows and Parameters).

        Every constraint ``c`` may give way by ``0 <= v_c <= cap_c`` (``v_c`` the worst
        row's violation, in the constraint's units); the objective is
        ``SCALE * sum(v**2)``, which spreads the violation over every constraint that
        takes part in a conflict.
        """
        if self._elastic is None:
            cons = list(self._base_cons)
            for rows in self.rows:
                v = cp.Variable(nonneg=True)
                cap = cp.Parameter(nonneg=True, value=_ELASTIC_CAP)
                cons += [lhs <= rhs + v for lhs, rhs in rows]
                cons.append(v <= cap)
                self.elastic_vars.append(v)
                self.caps.append(cap)
            obj = [1e-6 * cp.sum(self.t)]  # keeps t = |z| bounded; negligible
            if self.elastic_vars:
                obj.append(SCALE * cp.sum_squares(cp.hstack(self.elastic_vars)))
            self._elastic = cp.Problem(cp.Minimize(cp.sum(cp.hstack(obj))), cons)
        return self._elastic

    # ------------------------------------------------------------------ update
    def params_intact(self) -> bool:
        """Whether the constraints still hold the Parameters compiled in."""
        return [model_parameter_ids(c) for c in self.constraints] == self._constraint_param_ids

    def update(self, state: PortfolioState, targets: FloatArray, G: np.ndarray, s: FloatArray,
               risk_aversion: float, horizon: float, alpha: FloatArray | None,
               frozen: np.ndarray | None = None, cash_reserve: float = 0.0) -> None:
        """Write the values of ``state``/``targets`` and the knobs into the Parameters.

        ``frozen`` (boolean mask, default none) marks the assets held at ``z = 0``.
        """
        w0 = state.weights
        d0 = w0 - targets
        self.w0.value = w0
        self.frozen.value = (np.zeros(self.n) if frozen is None
                             else np.asarray(frozen, dtype=bool).astype(float))
        self.c0.value = state.cash_weight - cash_reserve  # held back for fees
        self.cost_params.update([m.terms(state) for m in self.costs], horizon)
        for c in self.constraints:
            c.update(state, targets)
        root = np.sqrt(SCALE * 0.5 * risk_aversion * horizon)
        s_sc = root * np.asarray(s, dtype=float)
        self.s_sc.value = s_sc
        self.sd0.value = s_sc * d0
        if self.k > 0:
            G_sc = root * np.asarray(G, dtype=float)
            self.G_sc.value = G_sc
            self.gd0.value = G_sc.T @ d0
        if self.has_alpha:
            a = SCALE * np.asarray(alpha, dtype=float)
            self.alpha.value = a
            self.alpha_w0.value = float(a @ w0)
        for c, pen in zip(self.constraints, self.penalties):
            if pen is not None:
                pen.value = float(c.penalty)

    def set_elastic_caps(self, free: Sequence[int] | None) -> None:
        """Let constraints ``free`` (indices) give way in the elastic program; ``None``: all."""
        self.elastic_problem()
        for i, cap in enumerate(self.caps):
            cap.value = _ELASTIC_CAP if free is None or i in free else 0.0

    # ------------------------------------------------------------------- solve
    def solve(self, solver: str, options: dict[str, Any] | None = None,
              elastic: bool = False) -> RawSolution:
        """One solver call on the normal (or elastic) program; never raises on solver
        failure (the status says it). ``slacks`` holds each soft (or, elastic: every)
        constraint's violation by index."""
        start = time.perf_counter()
        status, zval, obj = "error", None, None
        prob = self.elastic_problem() if elastic else self.problem
        try:
            with warnings.catch_warnings():
                # the status says so, and every answer is verified numerically
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                prob.solve(solver=solver, ignore_dpp=False, **(options or {}))
            status = str(prob.status)
            if self.z.value is not None and np.isfinite(self.z.value).all():
                zval = np.array(self.z.value, dtype=float)
                obj = float(prob.value) / SCALE
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            status = f"error: {type(exc).__name__}: {exc}"[:200]
        wall = time.perf_counter() - start
        self.solves += 1
        stats = prob.solver_stats if not status.startswith("error") else None
        slacks: dict[int, float] = {}
        if zval is not None:
            for i, v in enumerate(self.elastic_vars if elastic else self.slack_vars):
                if v is not None and v.value is not None:
                    slacks[i] = float(v.value)
        return RawSolution(
            solver=solver, status=status, z=zval, objective=obj,
            solve_time=getattr(stats, "solve_time", None),
            iterations=getattr(stats, "num_iters", None),
            wall_time=wall, slacks=slacks,
        )

    def is_dpp(self) -> bool:
        """Whether the program is DPP (re-solves only rewrite parameter values)."""
        return self.problem.is_dpp()
