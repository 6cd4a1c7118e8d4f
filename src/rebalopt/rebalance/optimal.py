"""OptimalRebalancer: the trades that minimize cost plus tracking error under constraints.

.. math::

    \\min_z\\ \\text{cost}(z) + \\frac{\\gamma}{2}\\,T\\,(w-w^*)^\\top\\Sigma\\,(w-w^*)
           \\;[-\\,\\alpha^\\top w]
    \\quad\\text{s.t.}\\quad w = w_0 + z,\\ \\ \\text{cash}' = c_0 - 1^\\top z - \\text{cost}(z),
    \\ \\ \\text{constraints}(w, z, \\text{cash}')

Units: ``z``, ``w``, ``w*`` and cash are fractions of pre-trade equity ``V``; cost is
the sum of the cost models' convex expressions, a fraction of ``V``; ``Sigma`` is an
annualized covariance (``risk.root(state)``, ``G G' + diag(s^2)``); ``T`` the horizon
in years the post-trade book is held (``1/12``: until next month's rebalance);
``gamma`` (``risk_aversion``) is dimensionless. Both terms are then fractions of
equity: cost paid now against the certainty-equivalent loss of tracking error over
the horizon. With the defaults (``gamma = 100``, ``T = 1/12``) a 1% annualized
tracking error kept for a month is worth ``100/2 * 1/12 * 0.01**2 = 4.2 bps`` of
equity, so a drift of a few percent is corrected and noise is left alone.
``alpha`` (optional) is an expected return over the horizon, a fraction.

Continuous (fractional) trades; the integer stage wraps :meth:`OptimalRebalancer.solve`.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cvxpy as cp
import numpy as np

from rebalopt._checks import require_nonneg
from rebalopt._naming import unique_names
from rebalopt._typing import AssetValues, FloatArray
from rebalopt.constraints import CashFloor, Constraint, LongOnly, Point, Slack
from rebalopt.costs import CostModel, untradable_assets
from rebalopt.errors import (
    Conflict,
    InfeasibleError,
    InputError,
    RebalanceError,
    SolverError,
    solver_failure,
)
from rebalopt.program import MatrixLayout
from rebalopt.program.cvxpy_backend import (
    CvxpyConstraintFn,
    CvxpyObjectiveFn,
    ModelVariables,
    constant_variables,
)
from rebalopt.rebalance._clarabel import DirectProblem, supported
from rebalopt.rebalance._problem import (
    CompiledProblem,
    RawSolution,
    convex_costs,
    objective_terms,
)
from rebalopt.rebalance.dust import DUST_SHARES, DUST_VALUE, snap_dust
from rebalopt.rebalance.plan import RebalancePlan, evaluate_costs
from rebalopt.rebalance.targets import check_exposure, target_exposure
from rebalopt.state import PortfolioState

__all__ = [
    "DEFAULT_SOLVER_OPTIONS",
    "FEE_RESERVE_ROUNDS",
    "OBJECTIVE_RTOL",
    "TIME_LIMIT_OPTION",
    "OptimalRebalancer",
    "OptimalSolution",
]

DEFAULT_SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    # measured: with the default step fraction 0.99 Clarabel stalls ("insufficient
    # progress") on ~1 in 6 warm re-solves with 3/2 power cones; 0.95 never did
    "CLARABEL": {"max_step_fraction": 0.95},
    "SCS": {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iters": 100_000},
    "ECOS": {"abstol": 1e-9, "reltol": 1e-9},
    "OSQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 200_000, "polish": True},
}
"""Per-solver options used unless ``solver_options`` overrides them."""

TIME_LIMIT_OPTION: dict[str, str] = {"CLARABEL": "time_limit", "SCS": "time_limit_secs",
                                     "OSQP": "time_limit"}
"""The option through which each solver takes ``OptimalRebalancer.time_limit`` (seconds)."""

RETRY_OPTIONS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"max_step_fraction": 0.9, "equilibrate_enable": False},
}
"""A second try with the same solver before moving down the chain (other numerics)."""

DUST_ROUNDS = 3
"""Re-solves allowed to hold dust trades still (:meth:`OptimalRebalancer.plan`)."""

OBJECTIVE_RTOL = 1e-6
"""Accuracy asked of a solver's objective relative to the objective's magnitude (the
largest term at the answer or at no trade); 100x the solvers' own gap tolerances."""

FEE_RESERVE_ROUNDS = 4
"""Re-solves allowed to reserve commission minimums / per-order fees under a CashFloor."""


_ACCEPTED = ("optimal", "optimal_inaccurate")
_INFEASIBLE = ("infeasible", "infeasible_inaccurate")


class _Root(Protocol):
    G: np.ndarray
    s: np.ndarray

    def variance(self, d: np.ndarray) -> float: ...


class _RiskLike(Protocol):
    def root(self, state: PortfolioState) -> _Root: ...


@dataclass(frozen=True)
class _IdentityRoot:
    """``Sigma = I``: plain squared weight distance (used when ``risk`` is ``None``)."""

    G: np.ndarray
    s: np.ndarray

    def variance(self, d: np.ndarray) -> float:
        d = np.asarray(d, dtype=float)
        return float(d @ d)


@dataclass
class OptimalSolution:
    """A verified solution of the continuous program.

    Attributes
    ----------
    z
        Trade weights (fractions of pre-trade equity), dust snapped to 0.
    w
        Post-trade weights ``w0 + z``.
    cash
        Post-trade cash weight after the convex cost.
    targets
        Target weights used.
    terms
        Objective terms at ``z`` (fractions of equity): cost, risk, alpha, penalty, total.
    solver, status
        Which solver produced it and its status.
    solve_time
        The solver's own solve time, seconds (``problem.solver_stats.solve_time``).
    wall_time
        Update + solve + verification, seconds.
    iterations
        Solver iterations.
    slacks
        :class:`~rebalopt.constraints.Slack` per constraint name.
    attempts
        ``(solver, status)`` of every solver tried, in order.
    compiled
        Whether this call (re)compiled the program.
    fee_reserve, fee_rounds
        Cash (fraction of equity) held back under every hard cash floor for the
        commission minimums / per-order fees the program cannot see, and how many
        re-solves that took (0: none needed).
    frozen, untradable
        Boolean mask of the assets held at ``z = 0`` because a cost model cannot price
        them, and ticker -> reason for each (:func:`~rebalopt.costs.untradable_assets`).
    """

    z: FloatArray
    w: FloatArray
    cash: float
    targets: FloatArray
    terms: dict[str, float]
    solver: str
    status: str
    solve_time: float | None
    wall_time: float
    iterations: int | None
    slacks: dict[str, Slack]
    attempts: list[tuple[str, str]]
    compiled: bool
    solver_objective: float | None = None
    fee_reserve: float = 0.0
    fee_rounds: int = 0
    frozen: np.ndarray | None = None
    untradable: dict[str, str] = field(default_factory=dict)

    @property
    def objective(self) -> float:
        """Objective value, fraction of equity (evaluated in NumPy at ``z``)."""
        return self.terms["total"]

    @property
    def binding(self) -> list[str]:
        """Names of the constraints active at the solution."""
        return [k for k, s in self.slacks.items() if s.binding]


def _frozen_message(exc: InfeasibleError, reasons: Mapping[str, str]) -> str:
    """``exc``'s message (without its conflicts) saying which assets were frozen."""
    text = str(exc)
    detail = "; ".join(str(c) for c in exc.conflicts)
    if detail and text.endswith(": " + detail):
        text = text[: -len(detail) - 2]
    shown = ", ".join(f"{a} ({r})" for a, r in list(reasons.items())[:5])
    more = f" and {len(reasons) - 5} more" if len(reasons) > 5 else ""
    return (f"{text}, with {len(reasons)} untradable asset(s) frozen at their holdings: "
            f"{shown}{more}")


@dataclass
class OptimalRebalancer:
    """Solve for the trades that minimize cost plus tracking error (module docstring).

    Parameters
    ----------
    risk
        Tracking-error risk model answering ``root(state)`` (``rebalopt.risk``:
        Identity, Diagonal, Covariance, FactorModel). ``None``: identity (squared
        weight distance, as if every asset had 100% annual volatility, uncorrelated).
    costs
        Cost models; their convex expressions are the cost term and are paid from cash.
        Commission minimums and per-order fees are not convex: left out of the
        program (documented by ``exact_in_optimizer``), charged on the plan.
    constraints
        Constraint objects (``rebalopt.constraints``). Default: long-only and no
        borrowing (``CashFloor(0)``), a cash account.
    risk_aversion
        ``gamma`` (dimensionless), the price of tracking variance. Default 100.
    horizon
        ``T`` in years the post-trade portfolio is expected to be held. Default 1/12.
    alpha
        Optional expected return per asset over the horizon (fraction), keyed by ticker.
    solver
        Solver name or fallback chain, tried in order. Default Clarabel, then SCS.
    solver_options
        Per-solver option overrides, e.g. ``{"CLARABEL": {"max_iter": 100}}``.
    min_trade_weight
        Trades smaller than this (fraction of equity; 1e-7 is $1 on $10M) are snapped
        to zero: an interior-point solution is only accurate to about 1e-8..1e-7, so
        an asset that should not trade comes back as dust. The snapped point must pass
        the same numeric check (else the unsnapped one is used).
    feasibility_tol
        A solution is accepted only if every hard constraint holds within this
        (constraint units), checked in NumPy independently of the solver.
    pending
        What :meth:`execute` does with the broker's pending orders (see
        :class:`~rebalopt.rebalance.config.RebalanceConfig`).
    integer
        Integer stage for :meth:`plan`: ``"off"`` (default, fractional shares),
        ``"round"`` or ``"exact"`` (see :class:`~rebalopt.rebalance.integer.IntegerRebalancer`;
        :meth:`solve` always returns the continuous relaxation).
    time_limit
        Seconds allowed per solve (default 20): every solver call of the chain
        (Clarabel's ``time_limit``, SCS's ``time_limit_secs``, OSQP's ``time_limit``;
        an explicit ``solver_options`` entry wins), the elastic solves that diagnose
        infeasibility, and the integer stage's MIP search. A solver stopped by it has
        no accepted answer and the chain moves on. Recorded as ``plan.info["time_limit"]``.
    lots, min_trade_value, max_trades
        Passed to the integer stage: lot size in shares (``None``: ``state.lot_sizes``),
        smallest trade in currency, largest number of orders.
    backend
        How Clarabel is called. ``"direct"``: the program's matrices are assembled in
        NumPy/SciPy and handed to Clarabel without cvxpy
        (:mod:`rebalopt.rebalance._clarabel`) whenever every term has a matrix form
        (built-in cost models and constraints), else cvxpy. Default: it builds 17-55x
        faster than the cvxpy program (0.04 s vs 0.73 s at 500 assets, 0.2 s vs 11.6 s
        at 2,000), re-solves as fast, and every solve sets up a fresh Clarabel solver,
        so a re-solve answers bit for bit what a first solve answers, whatever was
        solved before. ``"cvxpy"``: always the compiled cvxpy program (the
        reference). Other solvers of the chain, and the
        elastic program that diagnoses infeasibility, always go through cvxpy (built
        on first use). Holding the cvxpy program (:meth:`compiled`) also routes
        Clarabel through it, so the program one holds is the one solved.

    cvxpy_constraints, cvxpy_objective
        The cvxpy escape hatch: callables over the model's named variables
        (:class:`~rebalopt.program.cvxpy_backend.ModelVariables`: ``z``, ``t``, ``w``,
        ``cash``, ``cost``) returning cvxpy constraints, or a convex objective term
        (fraction of equity). With either, every solve goes through
        :meth:`to_cvxpy` (the declared program written in cvxpy, rebuilt per solve) and
        the chain's solvers by their cvxpy names; the user terms are evaluated at the
        answer (cvxpy on constants) for the numeric check (``objective_terms['user']``,
        slacks ``cvxpy constraint <i>``).

    Notes
    -----
    Targets are goals, constraints are hard. A negative target weight with
    :class:`~rebalopt.constraints.LongOnly` is not clipped or rejected: the program
    moves the asset as close to it as ``w >= 0`` allows, so the asset lands at 0
    (sold out, never short; with identity risk and no cost, exactly the projection
    of the targets onto ``w >= 0``). ``plan.targets`` keeps the negative weight as
    given, and the tracking error is measured against it. Under ``LongOnly`` with a
    hard ``CashFloor``, only the positive targets count towards the leverage a cash
    account allows (:meth:`allowed_leverage`). ``NaiveRebalancer`` and
    ``BandRebalancer`` instead clip negative targets to 0 when shorting is off.

    Assets some cost model cannot price (:meth:`CostModel.tradable
    <rebalopt.costs.CostModel.tradable>`: e.g. market impact without a volatility or
    an ADV, a fresh listing) are *frozen*: their trade is fixed at 0 (a held one
    stays held), they are listed with the reason in ``plan.info["untradable"]``,
    and their targets still count in the tracking error. Freezing is a parameter
    value, never a recompile (``compilations``); if the hard constraints cannot hold
    with them frozen, the :class:`~rebalopt.errors.InfeasibleError` says so.

    Commission minimums and per-order fees are charged on the plan but are not
    convex: a hard ``CashFloor`` is checked with the full charge and, when that
    breaks it, the program is solved again with the fees reserved from cash
    (``plan.info["fee_reserve"]``, ``["fee_reserve_rounds"]``).
    """

    risk: _RiskLike | None = None
    costs: list[CostModel] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=lambda: [LongOnly(), CashFloor()])
    risk_aversion: float = 100.0
    horizon: float = 1.0 / 12.0
    alpha: AssetValues | None = None
    solver: str | Sequence[str] = ("CLARABEL", "SCS")
    solver_options: Mapping[str, Mapping[str, Any]] | None = None
    min_trade_weight: float = 1e-7
    feasibility_tol: float = 1e-7
    pending: str = "cancel"
    integer: str = "off"
    lots: Any = None
    min_trade_value: float | None = None
    max_trades: int | None = None
    time_limit: float = 20.0
    backend: str = "direct"
    dust_value: float = DUST_VALUE
    dust_shares: float = DUST_SHARES
    cvxpy_constraints: Sequence[CvxpyConstraintFn] = ()
    cvxpy_objective: Sequence[CvxpyObjectiveFn] = ()

    method = "optimal"

    def __post_init__(self) -> None:
        self.costs = list(self.costs)
        self.constraints = list(self.constraints)
        self._compiled: CompiledProblem | None = None
        self._direct: DirectProblem | None = None
        self._pinned = False
        self._key: Hashable | None = None
        self.compilations = 0
        """How many times the program was (re)compiled; a sweep should leave it alone."""
        self.last_compile_time: float | None = None
        self._validate_knobs()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the compiled program (rebuilt on first use, e.g. in a worker)."""
        state = dict(self.__dict__)
        state["_compiled"], state["_direct"], state["_key"] = None, None, None
        state["_pinned"] = False
        state.pop("_integer_cache", None)
        return state

    def _validate_knobs(self) -> None:
        for name in ("risk_aversion", "horizon"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise InputError(f"must be a finite number >= 0, got {v!r}",
                                 field=f"OptimalRebalancer.{name}")
        tl = self.time_limit
        if not (isinstance(tl, (int, float)) and not isinstance(tl, bool)
                and np.isfinite(tl) and tl > 0):
            raise InputError(f"must be a number of seconds > 0, got {tl!r}",
                             field="OptimalRebalancer.time_limit")
        for name in ("min_trade_weight", "feasibility_tol", "dust_value", "dust_shares"):
            require_nonneg(getattr(self, name), f"OptimalRebalancer.{name}")
        for c in self.costs:
            if not isinstance(c, CostModel):
                raise InputError(f"not a CostModel: {c!r}", field="OptimalRebalancer.costs")
        for c in self.constraints:
            if not isinstance(c, Constraint):
                raise InputError(f"not a Constraint: {c!r}", field="OptimalRebalancer.constraints")
        if self.pending not in ("cancel", "account"):
            raise InputError("must be 'cancel' or 'account'", field="OptimalRebalancer.pending")
        if self.backend not in ("direct", "cvxpy"):
            raise InputError("must be 'direct' or 'cvxpy'", field="OptimalRebalancer.backend")
        if self.integer not in ("off", "round", "exact"):
            raise InputError("must be 'off', 'round' or 'exact'",
                             field="OptimalRebalancer.integer")

    # ----------------------------------------------------------------- pieces
    @property
    def solvers(self) -> list[str]:
        """The fallback chain, upper-case names."""
        chain = [self.solver] if isinstance(self.solver, str) else list(self.solver)
        return [s.upper() for s in chain]

    def _options(self, solver: str) -> dict[str, Any]:
        opts = dict(DEFAULT_SOLVER_OPTIONS.get(solver, {}))
        if solver in TIME_LIMIT_OPTION:
            opts[TIME_LIMIT_OPTION[solver]] = float(self.time_limit)
        if self.solver_options and solver in self.solver_options:
            opts.update(self.solver_options[solver])
        return opts

    def root(self, state: PortfolioState) -> _Root:
        """The risk root aligned to ``state.assets`` (identity when ``risk`` is None)."""
        if self.risk is None:
            return _IdentityRoot(np.zeros((state.n, 0)), np.ones(state.n))
        root = self.risk.root(state)
        if root.s.shape != (state.n,) or root.G.shape[0] != state.n:
            raise InputError(f"risk root has {root.s.shape[0]} rows for {state.n} assets",
                             field="risk")
        return root

    def allowed_leverage(self) -> float | None:
        """Largest target exposure :meth:`solve` accepts (fraction of equity), or ``None``.

        A cash account, i.e. hard :class:`~rebalopt.constraints.LongOnly` with a hard
        :class:`~rebalopt.constraints.CashFloor`, can hold at most
        ``1 - min(floor, 0)`` of its equity in assets (1 with no borrowing, 1.2 with
        ``CashFloor(-0.2)``): positive targets adding up to more than that ask for a
        leveraged book and are an input error (negative targets land at 0 under
        ``LongOnly`` and are not counted). A positive floor (a cash buffer) and ``Leverage(gross=...)`` are
        not used here: they are constraints the optimizer trades towards (targets
        summing to 1 with ``CashFloor(0.02)`` land 2% short of them).
        """
        hard = [c for c in self.constraints if not c.soft]
        floors = [c.floor for c in hard if isinstance(c, CashFloor)]
        if not floors or not any(isinstance(c, LongOnly) for c in hard):
            return None
        return 1.0 - min(max(floors), 0.0)  # the highest floor binds

    def _check_targets(self, w_t: FloatArray) -> None:
        cap = self.allowed_leverage()
        if cap is None:
            return
        # long-only: a negative target lands at 0, so the long side is what is asked for
        exposure, _ = target_exposure(w_t, long_only=True)
        check_exposure(exposure, cap, "positive ones; a cash account, LongOnly and CashFloor: "
                       "no borrowing beyond the floor")

    def _alpha(self, state: PortfolioState) -> FloatArray | None:
        if self.alpha is None:
            return None
        return state.align(self.alpha, "alpha")

    def _structure(self, state: PortfolioState, targets: FloatArray, k: int) -> Hashable:
        return (
            tuple(state.assets), k, self.alpha is not None,
            tuple((id(m), m.terms(state).structure()) for m in self.costs),
            tuple((id(c), c.soft, c.structure(state, targets)) for c in self.constraints),
        )

    def _reset_if_changed(self, state: PortfolioState, targets: FloatArray, k: int) -> None:
        """Forget the compiled programs when the universe or the terms changed.

        ``compilations`` counts these structure changes (one per universe and set of
        terms, whichever programs are then built for it)."""
        key = self._structure(state, targets, k)
        stale = self._compiled is not None and not self._compiled.params_intact()
        if key != self._key or stale:
            self.compilations += 1
            self._compiled, self._direct, self._key, self._pinned = None, None, key, False

    def _cvxpy_program(self, state: PortfolioState, targets: FloatArray,
                       k: int) -> CompiledProblem:
        """The cvxpy program for this structure (compiled on first use)."""
        self._reset_if_changed(state, targets, k)
        if self._compiled is None:
            t0 = time.perf_counter()
            self._compiled = CompiledProblem(state, targets, k, self.costs, self.constraints,
                                             self.alpha is not None)
            self.last_compile_time = time.perf_counter() - t0
        return self._compiled

    def _direct_program(self, state: PortfolioState, targets: FloatArray,
                        k: int) -> DirectProblem | None:
        """The direct Clarabel program, or ``None`` when it does not apply."""
        self._reset_if_changed(state, targets, k)
        if (self.backend != "direct" or self._pinned
                or not supported(self.costs, self.constraints)):
            return None
        if self._direct is None:
            t0 = time.perf_counter()
            self._direct = DirectProblem(state, targets, k, self.costs, self.constraints,
                                         self.alpha is not None)
            self.last_compile_time = time.perf_counter() - t0
        return self._direct

    def compiled(self, state: PortfolioState, targets: FloatArray, k: int) -> CompiledProblem:
        """The compiled cvxpy program for this universe and these terms (rebuilt only on
        change). Holding it routes this structure's solves through it (no direct path)."""
        prob = self._cvxpy_program(state, targets, k)
        self._pinned = True
        return prob

    def objective_terms(self, z: FloatArray, state: PortfolioState, targets: Any,
                        root: _Root | None = None) -> dict[str, float]:
        """The program's objective at trade weights ``z``, in NumPy (fractions of equity)."""
        w_t = targets if isinstance(targets, np.ndarray) else state.target_weights(targets)
        root = root if root is not None else self.root(state)
        z = np.asarray(z, dtype=float)
        terms = objective_terms(
            z, state, w_t, G=root.G, s=root.s,
            risk_aversion=self.risk_aversion, horizon=self.horizon, costs=self.costs,
            constraints=self.constraints, alpha=self._alpha(state),
        )
        return self._with_user_terms(terms, z, state)

    def objective(self, z: FloatArray, state: PortfolioState, targets: Any) -> float:
        """Total objective at ``z`` (fraction of equity); lower is better."""
        return self.objective_terms(z, state, targets)["total"]

    def point(self, z: FloatArray, state: PortfolioState, targets: FloatArray) -> Point:
        """The post-trade point of ``z`` with the convex cost paid from cash."""
        paid = [m for m in self.costs if m.paid_at_trade]
        cost = float(sum(convex_costs(paid, z, state).values()))
        return Point.from_trades(state, targets, z, cost)

    def check(self, z: FloatArray, state: PortfolioState, targets: Any) -> dict[str, Slack]:
        """Slack of every constraint at trade weights ``z`` (NumPy, solver-free)."""
        w_t = targets if isinstance(targets, np.ndarray) else state.target_weights(targets)
        point = self.point(z, state, w_t)
        names = unique_names(self.constraints)
        return {nm: c.check(point, self.feasibility_tol) for nm, c in zip(names, self.constraints)}

    # ------------------------------------------------------------------ solve
    def solve(self, state: PortfolioState, targets: Any, *,
              hold: np.ndarray | None = None) -> OptimalSolution:
        """Solve the continuous program, verify it, and return the solution.

        Raises
        ------
        InputError
            Target weights above the leverage a cash account allows
            (:meth:`allowed_leverage`).
        InfeasibleError
            The hard constraints cannot hold together (with the untradable assets
            frozen, which the message then names); ``conflicts`` names them.
        SolverError
            Every solver failed or returned a point that fails the numeric check.
        """
        self._validate_knobs()
        t0 = time.perf_counter()
        w_t = state.target_weights(targets)
        self._check_targets(w_t)
        root = self.root(state)
        alpha = self._alpha(state)
        before = self.compilations
        frozen, reasons = untradable_assets(self.costs, state)
        mask = frozen if reasons else None
        if hold is not None and hold.any():  # also held still (dust, see plan)
            mask = hold if mask is None else (mask | hold)
        try:
            sol = self._solve_chain(state, w_t, root, alpha, mask)
            sol = self._reserve_fees(sol, state, w_t, root, alpha, mask)
        except InfeasibleError as exc:
            if not reasons:
                raise
            raise InfeasibleError(_frozen_message(exc, reasons), exc.conflicts) from exc
        sol.frozen, sol.untradable = frozen, reasons
        sol.compiled = self.compilations != before
        sol.wall_time = time.perf_counter() - t0
        return sol

    def _solve_chain(self, state: PortfolioState, w_t: FloatArray, root: _Root,
                     alpha: FloatArray | None, frozen: np.ndarray | None = None
                     ) -> OptimalSolution:
        """Solve down the fallback chain; the first verified solution (see :meth:`solve`).

        ``frozen`` (boolean mask) holds those assets at ``z = 0``."""
        k = root.G.shape[1]
        hatch = self._direct_for_hatch(state, w_t, k) if self._hatch else None
        direct = self._direct_program(state, w_t, k) if hatch is None else None
        updated: list[CompiledProblem] = []

        def program() -> CompiledProblem:
            prob = self._cvxpy_program(state, w_t, k)
            if not updated:
                prob.update(state, w_t, root.G, root.s, self.risk_aversion, self.horizon, alpha,
                            frozen)
                updated.append(prob)
            return prob

        attempts: list[tuple[str, str]] = []
        diagnosis: list[Conflict] | None = None  # None: not (successfully) run yet
        diagnosed: set[str] = set()  # solvers that tried the diagnosis
        tries = []
        for solver in self.solvers:
            tries.append((solver, solver, self._options(solver)))
            if solver in RETRY_OPTIONS:
                tries.append((f"{solver} (retry)", solver,
                              {**self._options(solver), **RETRY_OPTIONS[solver]}))
        for label, solver, opts in tries:
            try:
                if hatch is not None:
                    raw = hatch.solve_cvxpy(state, w_t, root.G, root.s, self.risk_aversion,
                                            self.horizon, alpha, solver, opts, frozen,
                                            self.cvxpy_constraints, self.cvxpy_objective)
                elif direct is not None and solver == "CLARABEL":
                    raw = direct.solve(state, w_t, root.G, root.s, self.risk_aversion,
                                       self.horizon, alpha, opts, frozen=frozen)
                else:
                    raw = program().solve(solver, opts)
            except RebalanceError:  # our own verdict on the inputs: not a solver failure
                raise
            except BaseException as exc:  # any solver failure, even a panic
                if not solver_failure(exc):
                    raise
                attempts.append((label, f"raised {type(exc).__name__}: {exc}"))
                continue
            if raw.status in _INFEASIBLE:
                if diagnosis is None:
                    diagnosis = self._diagnose_with_chain(program(), state, w_t, solver,
                                                          diagnosed)
                if diagnosis:
                    attempts.append((label, raw.status))
                    raise InfeasibleError("no trade satisfies the hard constraints", diagnosis)
                # the elastic program says feasible (numerical trouble), or no solver
                # could run the diagnosis: the claim is unverified, fall back
                why = "elastic program feasible" if diagnosis == [] else "diagnosis failed"
                attempts.append((label, f"{raw.status} (unverified: {why})"))
                continue
            sol, why = self._verify(raw, state, w_t, root, alpha, attempts, frozen)
            attempts.append((label, raw.status if why is None else f"{raw.status} ({why})"))
            if sol is not None:
                sol.attempts = attempts
                return sol
        raise SolverError("no solver returned a verified solution", attempts)

    # --------------------------------------------------- non-convex fees and cash
    def _full_cost(self, z: FloatArray, state: PortfolioState) -> float:
        """Every cost model's full charge (``evaluate``: minimums and per-order fees
        included) on the trades ``z``, a fraction of equity, as the plan charges it."""
        if not self.costs:
            return 0.0
        unit = state.prices * state.multipliers
        shares = z * state.equity / unit
        paid = [m for m in self.costs if m.paid_at_trade]
        if not paid:
            return 0.0
        return float(sum(evaluate_costs(paid, shares, state).values()).sum()
                     ) / state.equity

    def _no_trade(self, state: PortfolioState, w_t: FloatArray, root: _Root,
                  alpha: FloatArray | None) -> OptimalSolution | None:
        """The no-trade solution when it satisfies every hard constraint, else ``None``."""
        raw = RawSolution(solver="none", status="optimal", z=np.zeros(state.n),
                          objective=None, solve_time=0.0, iterations=0, wall_time=0.0)
        sol, _ = self._verify(raw, state, w_t, root, alpha, [])
        if sol is not None:
            sol.slacks.update(self._floor_slacks(sol, state, w_t))
        return sol

    def _floor_slacks(self, sol: OptimalSolution, state: PortfolioState, w_t: FloatArray
                      ) -> dict[str, Slack]:
        """Slack of every cash floor with the full charged cost paid from cash."""
        point = Point.from_trades(state, w_t, sol.z, self._full_cost(sol.z, state))
        names = unique_names(self.constraints)
        return {nm: c.check(point, self.feasibility_tol)
                for nm, c in zip(names, self.constraints) if isinstance(c, CashFloor)}

    def _reserve_fees(self, sol: OptimalSolution, state: PortfolioState, w_t: FloatArray,
                      root: _Root, alpha: FloatArray | None,
                      frozen: np.ndarray | None = None) -> OptimalSolution:
        """Hold every hard :class:`~rebalopt.constraints.CashFloor` with the cost the
        plan is really charged.

        Commission minimums and per-order fees are not convex, so the program pays
        only their linear part from cash. When the full charge breaks a hard floor,
        the program is solved again with every floor raised by the non-convex part of
        the fees (full minus convex cost at the last solution, never lowered between
        rounds; a later round adds what is still missing, since the convex part moves
        with the trades), up to :data:`FEE_RESERVE_ROUNDS` times, until the floor holds
        within a tenth of ``feasibility_tol``. ``sol.fee_reserve`` and ``sol.fee_rounds``
        say what was done. When the constraints cannot hold with the fees reserved,
        not trading (no fee) is returned if it satisfies every hard constraint, else
        :class:`~rebalopt.errors.InfeasibleError`; :class:`~rebalopt.errors.SolverError`
        if the floor still does not hold after the rounds. The floors are raised on the
        constraint objects for the duration of the re-solve, then restored.
        """
        floors = [c for c in self.constraints if isinstance(c, CashFloor)]
        if not floors or all(m.exact_in_optimizer for m in self.costs):
            return sol
        sol.slacks.update(self._floor_slacks(sol, state, w_t))
        reserve = 0.0
        attempts = list(sol.attempts)
        for rounds in range(1, FEE_RESERVE_ROUNDS + 1):
            bad = [nm for nm, c in zip(unique_names(self.constraints), self.constraints)
                   if isinstance(c, CashFloor) and not c.soft
                   and sol.slacks[nm].violation > 0.1 * self.feasibility_tol]
            if not bad:
                return sol
            convex = float(sum(convex_costs(self.costs, sol.z, state).values()))
            short = max(sol.slacks[nm].violation for nm in bad)
            # the fees the program cannot see at this solution; or, when the reserve
            # already holds them, what is still missing (the convex part moved)
            reserve = max(reserve + short, self._full_cost(sol.z, state) - convex)
            reserve += 0.5 * self.feasibility_tol  # land inside the floor, not on it
            original = [c.floor for c in floors]
            try:
                for c in floors:
                    c.floor = c.floor + reserve
                sol = self._solve_chain(state, w_t, root, alpha, frozen)
            except InfeasibleError as exc:
                for c, f in zip(floors, original):
                    c.floor = f
                hold = self._no_trade(state, w_t, root, alpha)
                if hold is not None:  # no trade pays no fee: the non-convex way out
                    hold.attempts = [*attempts, ("no trade [fees cannot be reserved]",
                                                 hold.status)]
                    hold.fee_reserve, hold.fee_rounds = reserve, rounds
                    return hold
                raise InfeasibleError(
                    f"no trade satisfies the hard constraints once commission minimums "
                    f"and per-order fees ({reserve:.6g} of equity) are reserved from cash",
                    exc.conflicts) from exc
            finally:
                for c, f in zip(floors, original):
                    c.floor = f
            # the slacks against the floors as given (names too), with the full charge
            point = self.point(sol.z, state, w_t)
            sol.slacks = {nm: c.check(point, self.feasibility_tol)
                          for nm, c in zip(unique_names(self.constraints), self.constraints)}
            sol.slacks.update(self._floor_slacks(sol, state, w_t))
            attempts += [(f"{label} [fee reserve {reserve:.3g}]", st)
                         for label, st in sol.attempts]
            sol.attempts = attempts
            sol.fee_reserve, sol.fee_rounds = reserve, rounds
        bad = [nm for nm, c in zip(unique_names(self.constraints), self.constraints)
               if isinstance(c, CashFloor) and not c.soft and not sol.slacks[nm].satisfied]
        if bad:
            worst = sol.slacks[bad[0]]
            raise SolverError(
                f"{worst.constraint} violated by {worst.violation:.3g} with the commission "
                f"actually charged after {FEE_RESERVE_ROUNDS} rounds of fee reserve",
                attempts)
        return sol

    def _verify(self, raw: RawSolution, state: PortfolioState, w_t: FloatArray, root: _Root,
                alpha: FloatArray | None, attempts: list[tuple[str, str]],
                frozen: np.ndarray | None = None
                ) -> tuple[OptimalSolution | None, str | None]:
        if raw.status not in _ACCEPTED or raw.z is None:
            return None, "no solution"
        names = unique_names(self.constraints)
        unsnapped = raw.z.copy()
        if frozen is not None:  # the solver's ~1e-10 on a frozen asset is exactly no trade
            unsnapped[frozen] = 0.0
        snapped = np.where(np.abs(unsnapped) < self.min_trade_weight, 0.0, unsnapped)
        snapped[snapped == 0] = 0.0  # no negative zeros
        for z in (snapped, unsnapped):
            point = self.point(z, state, w_t)
            slacks = {nm: c.check(point, self.feasibility_tol)
                      for nm, c in zip(names, self.constraints)}
            bad = [s for c, s in zip(self.constraints, slacks.values())
                   if not c.soft and not s.satisfied]
            if not bad:
                break
        if bad:
            worst = max(bad, key=lambda s: s.violation)
            return None, f"{worst.constraint} violated by {worst.violation:.2e}"
        terms = objective_terms(z, state, w_t, G=root.G, s=root.s,
                                risk_aversion=self.risk_aversion, horizon=self.horizon,
                                costs=self.costs, constraints=self.constraints, alpha=alpha)
        terms = self._with_user_terms(terms, z, state)
        user = self._user_slacks(z, state)
        bad_user = [u for u in user.values() if not u.satisfied]
        if bad_user:
            worst = max(bad_user, key=lambda u: u.violation)
            return None, f"{worst.constraint} violated by {worst.violation:.2e}"
        slacks = {**slacks, **user}
        if raw.objective is not None:
            gap = abs(terms["total"] - raw.objective)
            allowed = self._objective_tolerance(terms, raw.objective, state, w_t, root, alpha)
            if not gap <= allowed:
                return None, (f"objective mismatch: solver {raw.objective!r} vs "
                              f"recomputed {terms['total']!r} (gap {gap:.3e} > allowed "
                              f"{allowed:.3e})")
        return OptimalSolution(
            z=z, w=point.w, cash=point.cash, targets=w_t, terms=terms, solver=raw.solver,
            status=raw.status, solve_time=raw.solve_time, wall_time=raw.wall_time,
            iterations=raw.iterations, slacks=slacks, attempts=[], compiled=False,
            solver_objective=raw.objective,
        ), None

    def _objective_tolerance(self, terms: dict[str, float], solver_objective: float,
                             state: PortfolioState, w_t: FloatArray, root: _Root,
                             alpha: FloatArray | None) -> float:
        """How far the solver's objective may be from the one recomputed in NumPy.

        ``1e-4`` of the objective itself, plus :data:`OBJECTIVE_RTOL` of the
        objective's *magnitude*: the largest of its terms at the answer and of the
        objective at no trade (the tracking term the trades remove). At high risk
        aversion (``gamma >= 3e5``) the optimum is a small difference of large
        quantities, and a solver is only accurate relative to those (fractions of
        equity).
        """
        zero = objective_terms(np.zeros(state.n), state, w_t, G=root.G, s=root.s,
                               risk_aversion=self.risk_aversion, horizon=self.horizon,
                               costs=self.costs, constraints=self.constraints, alpha=alpha)
        magnitude = max([abs(v) for v in terms.values()] + [abs(v) for v in zero.values()])
        small = max(abs(terms["total"]), abs(solver_objective))
        return 1e-4 * small + OBJECTIVE_RTOL * magnitude + 1e-9

    def _diagnose_with_chain(self, prob: CompiledProblem, state: PortfolioState,
                             w_t: FloatArray, first: str, tried: set[str]
                             ) -> list[Conflict] | None:
        """Run the diagnosis with ``first``, then the rest of the chain, until one answers.

        ``None`` when no solver could solve the elastic program (the infeasibility
        claim is then unverified); ``tried`` collects the solvers that failed at it.
        """
        order = [first] + [s for s in self.solvers if s != first]
        for solver in dict.fromkeys(order):
            if solver in tried:
                continue
            tried.add(solver)
            try:
                conflicts = self._diagnose(prob, state, w_t, solver)
            except RebalanceError:
                raise
            except BaseException as exc:  # a failing solver: no answer
                if not solver_failure(exc):
                    raise
                conflicts = None
            if conflicts is not None:
                return conflicts
        return None

    def _diagnose(self, prob: CompiledProblem, state: PortfolioState, w_t: FloatArray,
                  solver: str) -> list[Conflict] | None:
        """Name the constraints that conflict, each with the amount it must give way.

        The elastic program with every constraint soft (quadratic price) finds the
        constraints that take part in the conflict; then each is relaxed *alone* to
        find by how much it must give way for the others to hold. Empty when the
        elastic program finds the hard program feasible after all; ``None`` when
        ``solver`` could not solve the elastic program (no answer).

        An interior-point solution of the elastic program sits a little inside the
        boundary: the other constraints hold only to about 1e-7 there, so its slack
        is up to ~1e-6 *below* the amount that restores feasibility. The amount
        reported is the constraint's own violation at that point (checked in NumPy)
        plus the largest violation of every other constraint there, so relaxing
        the constraint by the reported amount leaves a feasible program.
        """
        opts = self._options(solver)
        prob.set_elastic_caps(None)
        raw = prob.solve(solver, opts, elastic=True)
        if raw.status not in _ACCEPTED or raw.z is None:
            return None
        frozen = np.asarray(prob.frozen.value) > 0  # held at 0 up to solver noise
        raw.z[frozen] = 0.0
        top = max(raw.slacks.values(), default=0.0)
        tol = max(self.feasibility_tol, 1e-6, 1e-3 * top)  # above the solver's noise
        involved = [i for i, v in sorted(raw.slacks.items(), key=lambda kv: -kv[1]) if v > tol]
        if not involved:
            return []
        names = unique_names(self.constraints)
        point = self.point(raw.z, state, w_t)
        conflicts = []
        for i in involved[:8]:
            c = self.constraints[i]
            prob.set_elastic_caps([i])
            alone = prob.solve(solver, opts, elastic=True)
            amount: float | None = None
            if alone.z is not None:
                alone.z[frozen] = 0.0
            if alone.status in _ACCEPTED and alone.z is not None and i in alone.slacks:
                at = self.point(alone.z, state, w_t)
                own = max(alone.slacks[i], c.check(at, 0.0).violation)
                others = max((o.check(at, 0.0).violation
                              for j, o in enumerate(self.constraints) if j != i), default=0.0)
                amount = own + others
            row = c.check(point).row
            label = f"{names[i]} [{row}]" if row else names[i]
            if amount is None:
                label += " (cannot be fixed alone)"
                amount = raw.slacks[i]
            conflicts.append(Conflict(label, float(amount), c.units))
        prob.set_elastic_caps(None)
        return conflicts

    # ------------------------------------------------------------------- plan
    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """Plan the trades (shares) from ``state`` towards ``targets`` (weights by ticker)."""
        if self.integer != "off":
            return self._integer_stage().plan(state, targets)
        sol = self.solve(state, targets)
        sol, dust = self._without_dust(sol, state, targets)
        unit = state.prices * state.multipliers
        shares = sol.z * state.equity / unit
        root = self.root(state)
        d0 = state.weights - sol.targets
        info: dict[str, Any] = {
            "solver": sol.solver,
            "status": sol.status,
            "solve_time": sol.solve_time,
            "wall_time": sol.wall_time,
            "iterations": sol.iterations,
            "attempts": sol.attempts,
            "compiled": sol.compiled,
            "objective": sol.objective,
            "objective_bps": 1e4 * sol.objective,
            "objective_terms": sol.terms,
            "solver_objective": sol.solver_objective,
            "tracking_error_before": float(np.sqrt(root.variance(d0))),
            "tracking_error_after": float(np.sqrt(root.variance(sol.w - sol.targets))),
            "slacks": {k: s.slack for k, s in sol.slacks.items()},
            "binding": sol.binding,
            "soft_violations": {k: s.violation for k, s, c in
                                zip(sol.slacks, sol.slacks.values(), self.constraints)
                                if c.soft and s.violation > 0},
            "exact_costs": all(m.exact_in_optimizer for m in self.costs),
            "fee_reserve": sol.fee_reserve,
            "fee_reserve_rounds": sol.fee_rounds,
            "untradable": dict(sol.untradable),
            "risk_aversion": self.risk_aversion,
            "horizon": self.horizon,
            "time_limit": self.time_limit,
            "dust": dust,
        }
        paid = [m for m in self.costs if m.paid_at_trade]  # a tax is reported apart
        return RebalancePlan.from_trades(state, sol.targets, shares, paid, self.method, info)

    def _without_dust(self, sol: OptimalSolution, state: PortfolioState, targets: Any
                      ) -> tuple[OptimalSolution, dict[str, str]]:
        """Snap dust (:mod:`rebalopt.rebalance.dust`) and re-verify; re-solve if needed.

        The snapped trades are checked against every hard constraint (and the
        objective recomputed); when that fails, the program is solved again with
        the dust assets held still, at most :data:`DUST_ROUNDS` times. Returns the
        solution and ticker -> what was done (``"snapped to 0"``, ``"closed"``,
        ``"held still (re-solved)"``, or ``"kept: ..."`` when no verified dust-free
        answer exists, a documented exception).
        """
        unit = state.prices * state.multipliers
        V = state.equity
        done: dict[str, str] = {}
        hold = np.zeros(state.n, dtype=bool)
        for _ in range(DUST_ROUNDS):
            q, dust, closed = snap_dust(sol.z * V / unit, state, self.dust_value,
                                        self.dust_shares)
            if not (dust.any() or closed.any()):
                return sol, done
            raw = RawSolution(solver=sol.solver, status=sol.status, z=q * unit / V,
                              objective=None, solve_time=sol.solve_time,
                              iterations=sol.iterations, wall_time=sol.wall_time)
            snapped, _ = self._verify(raw, state, sol.targets, self.root(state),
                                      self._alpha(state), [], sol.frozen)
            if snapped is not None:  # dust-free: _verify only zeroes more
                for i in np.flatnonzero(dust | closed):
                    done[str(state.assets[i])] = "closed" if closed[i] else "snapped to 0"
                for name in ("attempts", "compiled", "fee_reserve", "fee_rounds", "frozen",
                             "untradable", "solver_objective"):
                    setattr(snapped, name, getattr(sol, name))
                snapped.wall_time = sol.wall_time
                return snapped, done
            if not dust.any():
                break  # only closes failed: keep the solver's trades (verified)
            hold |= dust
            try:
                sol = self.solve(state, targets, hold=hold)
            except RebalanceError as exc:  # holding the dust still is not possible
                for i in np.flatnonzero(dust):
                    done[str(state.assets[i])] = f"kept: {type(exc).__name__}"
                return sol, done
            for i in np.flatnonzero(hold):
                done[str(state.assets[i])] = "held still (re-solved)"
        q, dust, closed = snap_dust(sol.z * V / unit, state, self.dust_value, self.dust_shares)
        for i in np.flatnonzero(dust | closed):
            done[str(state.assets[i])] = "kept: no verified answer without it"
        return sol, done

    def _integer_stage(self) -> Any:
        from rebalopt.rebalance.integer import IntegerRebalancer

        key = (self.integer, repr(self.lots), self.min_trade_value, self.max_trades,
               self.time_limit)
        cached = self.__dict__.get("_integer_cache")
        if cached is None or cached[0] != key:
            stage = IntegerRebalancer(self, mode=self.integer,  # type: ignore[arg-type]
                                      lots=self.lots, min_trade_value=self.min_trade_value,
                                      max_trades=self.max_trades, time_limit=self.time_limit)
            self.__dict__["_integer_cache"] = cached = (key, stage)
        return cached[1]

    def execute(self, target_weights: Mapping[str, float], data: Mapping[str, Any],
                broker: Any) -> list[Any]:
        """The seed's executor call: plan from the broker's book and submit the orders.

        The plan is built whole before any order is sent: an infeasible program
        raises :class:`~rebalopt.errors.InfeasibleError` and sends nothing.
        """
        from rebalopt.rebalance._execute import execute_plan

        return execute_plan(self, target_weights, data, broker, self.pending)

    # ----------------------------------------------------------- cvxpy hatch
    @property
    def _hatch(self) -> bool:
        return bool(self.cvxpy_constraints) or bool(self.cvxpy_objective)

    def _user_vars(self, z: FloatArray, state: PortfolioState) -> ModelVariables:
        cost = float(sum(convex_costs(self.costs, z, state).values()))
        return constant_variables(z, _layout_for(state), state.weights, state.cash_weight, cost)

    def _with_user_terms(self, terms: dict[str, float], z: FloatArray,
                         state: PortfolioState) -> dict[str, float]:
        """``terms`` plus the user's cvxpy objective terms evaluated at ``z``."""
        if not self.cvxpy_objective:
            return terms
        names = self._user_vars(z, state)
        user = float(sum(float(np.asarray(fn(names).value)) for fn in self.cvxpy_objective))
        return {**terms, "user": user, "total": terms["total"] + user}

    def _user_slacks(self, z: FloatArray, state: PortfolioState) -> dict[str, Slack]:
        """Slack of each user cvxpy constraint at ``z`` (minus its largest violation)."""
        if not self.cvxpy_constraints:
            return {}
        names = self._user_vars(z, state)
        out: dict[str, Slack] = {}
        for i, fn in enumerate(self.cvxpy_constraints):
            got = fn(names)
            cons = [got] if isinstance(got, cp.Constraint) else list(got)
            viol = max((float(np.max(np.atleast_1d(c.violation()))) for c in cons), default=0.0)
            out[f"cvxpy constraint {i}"] = Slack(f"cvxpy constraint {i}", -viol, "", "",
                                                 self.feasibility_tol)
        return out

    def to_cvxpy(self, state: PortfolioState, targets: Any
                 ) -> tuple[cp.Problem, ModelVariables]:
        """The program for ``state`` and ``targets`` as a cvxpy Problem, from the same
        declarations as the direct path, with its named variables (``z``, ``t``, ``w``,
        ``cash``, ``cost``) and the user's cvxpy terms. The objective is in basis points
        of equity; ``problem.solve()`` then ``variables.z.value`` gives the trades."""
        w_t = state.target_weights(targets)
        root = self.root(state)
        direct = self._direct_for_hatch(state, w_t, root.G.shape[1])
        frozen, reasons = untradable_assets(self.costs, state)
        prob, _, names = direct.to_cvxpy(state, w_t, root.G, root.s, self.risk_aversion,
                                         self.horizon, self._alpha(state),
                                         frozen if reasons else None,
                                         self.cvxpy_constraints, self.cvxpy_objective)
        return prob, names

    def _direct_for_hatch(self, state: PortfolioState, w_t: FloatArray, k: int
                          ) -> DirectProblem:
        self._reset_if_changed(state, w_t, k)
        if not supported(self.costs, self.constraints):
            raise InputError("every constraint must declare rows() to use the cvxpy "
                             "escape hatch or to_cvxpy()", field="OptimalRebalancer.constraints")
        if self._direct is None:
            t0 = time.perf_counter()
            self._direct = DirectProblem(state, w_t, k, self.costs, self.constraints,
                                         self.alpha is not None)
            self.last_compile_time = time.perf_counter() - t0
        return self._direct

    def is_dpp(self, state: PortfolioState, targets: Any) -> bool:
        """Whether the compiled program for ``state`` is DPP (for tests)."""
        w_t = state.target_weights(targets)
        return self._cvxpy_program(state, w_t, self.root(state).G.shape[1]).is_dpp()


def _layout_for(state: PortfolioState) -> MatrixLayout:
    """A bare layout of ``state``'s universe (the named blocks' positions only)."""
    n = state.n
    return MatrixLayout(n=n, z=np.arange(n), t=np.arange(n, 2 * n), ncols=2 * n)
