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

import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rebalopt._checks import require_nonneg
from rebalopt._naming import unique_names
from rebalopt._typing import AssetValues, FloatArray
from rebalopt.constraints import CashFloor, Constraint, LongOnly, Point, Slack
from rebalopt.costs import CostModel, untradable_assets
from rebalopt.errors import InfeasibleError, InputError, RebalanceError
from rebalopt.program import CostTerms
from rebalopt.program.cvxpy_backend import (
    CvxpyConstraintFn,
    CvxpyObjectiveFn,
)
from rebalopt.rebalance._chain import SolverChain
from rebalopt.rebalance._clarabel import DirectProblem
from rebalopt.rebalance._diagnosis import Diagnosis
from rebalopt.rebalance._fees import FeeReserve
from rebalopt.rebalance._hatch import CvxpyHatch
from rebalopt.rebalance._problem import (
    CompiledProblem,
    RawSolution,
    convex_costs,
    objective_terms,
)
from rebalopt.rebalance._solution import (
    DEFAULT_SOLVER_OPTIONS,
    DUST_ROUNDS,
    FEE_RESERVE_ROUNDS,
    OBJECTIVE_RTOL,
    TIME_LIMIT_OPTION,
    OptimalSolution,
    _frozen_message,
    _RiskLike,
    _Root,
)
from rebalopt.rebalance.dust import DUST_SHARES, DUST_VALUE, snap_dust
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.rebalance.targets import check_exposure, target_exposure
from rebalopt.risk.identity import Identity
from rebalopt.state import PortfolioState

__all__ = [
    "DEFAULT_SOLVER_OPTIONS",
    "FEE_RESERVE_ROUNDS",
    "OBJECTIVE_RTOL",
    "TIME_LIMIT_OPTION",
    "OptimalRebalancer",
    "OptimalSolution",
]



@dataclass
class OptimalRebalancer(SolverChain, FeeReserve, Diagnosis, CvxpyHatch):
    """Solve for the trades that minimize cost plus tracking error (module docstring).

    Parameters
    ----------
    risk
        Tracking-error risk model answering ``root(state)`` (``rebalopt.risk``:
        Identity, Diagonal, Covariance, FactorModel). ``None`` is replaced by
        :class:`~rebalopt.risk.Identity` (squared weight distance, as if every asset
        had 100% annual volatility, uncorrelated).
    costs
        Cost models; their declared convex terms (``terms``) are the cost term; the
        trading part is paid from cash, a holding part (borrow) accrues over the horizon.
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
        smallest trade in currency, largest number of orders. With ``integer="off"``
        nothing reads them, so :meth:`plan` refuses them (an ``InputError``);
        an :class:`~rebalopt.rebalance.integer.IntegerRebalancer` built on this
        rebalancer adopts them.
    backend
        How Clarabel is called. ``"direct"``: the program's matrices are assembled in
        NumPy/SciPy and handed to Clarabel without cvxpy
        (:mod:`rebalopt.rebalance._clarabel`) whenever every term has a matrix form
        (built-in cost models and constraints), else cvxpy. Default: it builds 17-55x
        faster than the cvxpy program (0.04 s vs 0.73 s at 500 assets, 0.2 s vs 11.6 s
        at 2,000), re-solves faster (one Clarabel solver kept per program structure,
        its data updated, without Clarabel's set-up), and a re-solve answers bit for
        bit what a first solve answers, whatever was solved before (the equilibration
        is computed from each program's values, not kept). ``"cvxpy"``: always the compiled cvxpy program (the
        reference). On the direct backend SCS (a fallback) and the elastic program
        that diagnoses infeasibility are solved through Clarabel's and SCS's own
        APIs too; OSQP and ECOS go through cvxpy (compiled on first use). Holding the
        cvxpy program (:meth:`compiled`) routes every solver through it, so the
        program one holds is the one solved.

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
        if self.risk is None:
            self.risk = Identity()
        self.costs = list(self.costs)
        self.constraints = list(self.constraints)
        self.cvxpy_constraints = list(self.cvxpy_constraints)
        self.cvxpy_objective = list(self.cvxpy_objective)
        self._compiled: CompiledProblem | None = None
        self._direct: DirectProblem | None = None
        self._lock = threading.RLock()  # one solve or plan at a time (kept per-call memos)
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
        state.pop("_terms_memo", None)
        state.pop("_assets_key", None)
        state.pop("_lock", None)
        state.pop("_knobs_ok", None)
        state.pop("_knobs_alive", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _validate_knobs(self) -> None:
        # the knobs as last validated (values, and the cost and constraint objects by
        # identity): a solve with none changed skips the checks
        sig = (self.risk_aversion, self.horizon, self.time_limit, self.min_trade_weight,
               self.feasibility_tol, self.dust_value, self.dust_shares, self.pending,
               self.backend, self.integer, tuple(map(id, self.costs)),
               tuple(map(id, self.constraints)), repr(self.solver),
               repr(self.solver_options))
        try:
            if self.__dict__.get("_knobs_ok") == sig:
                return
        except (TypeError, ValueError):  # an array among the knobs: checked below
            pass
        self.__dict__.pop("_knobs_ok", None)
        self._check_knobs()
        # the tuples keep the objects alive: an id in ``sig`` cannot be reused meanwhile
        self.__dict__["_knobs_ok"] = sig
        self.__dict__["_knobs_alive"] = (tuple(self.costs), tuple(self.constraints))

    def _check_knobs(self) -> None:
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
        self._check_options("OptimalRebalancer.solver_options")

    def root(self, state: PortfolioState) -> _Root:
        """The risk root aligned to ``state.assets``."""
        root = self.risk.root(state)  # type: ignore[union-attr]
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
        floors = [f for f in (c.cash_floor() for c in hard) if f is not None]
        if not floors or not any(c.forbids_shorts() for c in hard):
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
            self._universe_key(state), k, self.alpha is not None,
            tuple((id(m), t.structure()) for m, t in zip(self.costs, self._cost_terms(state))),
            tuple((id(c), c.soft, c.structure(state, targets)) for c in self.constraints),
        )

    def _universe_key(self, state: PortfolioState) -> tuple[str, ...]:
        """``tuple(state.assets)``, the same tuple object while the states share one
        ``assets`` Index (the structure key then compares by identity)."""
        kept = self.__dict__.get("_assets_key")
        if kept is not None and kept[0] is state.assets:
            return kept[1]  # type: ignore[no-any-return]
        key = tuple(state.assets)
        if kept is not None and kept[1] == key:
            key = kept[1]
        self.__dict__["_assets_key"] = (state.assets, key)
        return key

    def _cost_terms(self, state: PortfolioState) -> list[CostTerms]:
        """Every cost model's declared terms at ``state``, computed once per solve."""
        memo = self.__dict__.get("_terms_memo")
        if memo is not None and memo[0] is state:
            return memo[1]
        return [m.terms(state) for m in self.costs]

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
        # on the direct backend, fallbacks and the diagnosis skip cvxpy where they can
        self._compiled.native = self.backend == "direct" and not self._pinned
        return self._compiled

    def _direct_program(self, state: PortfolioState, targets: FloatArray,
                        k: int) -> DirectProblem | None:
        """The direct Clarabel program, or ``None`` when it does not apply."""
        self._reset_if_changed(state, targets, k)
        if self.backend != "direct" or self._pinned:
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
        prob.native = False
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

        Notes
        -----
        Threads sharing one rebalancer take turns (a lock): a call keeps per-call
        values on the rebalancer, so calls in parallel need a rebalancer each (or
        processes, as :mod:`rebalopt.rebalance.batch` uses).
        """
        with self._lock:
            return self._solve(state, targets, hold)

    def _solve(self, state: PortfolioState, targets: Any,
               hold: np.ndarray | None) -> OptimalSolution:
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
        self.__dict__["_terms_memo"] = (state, [m.terms(state) for m in self.costs])
        try:
            sol = self._solve_chain(state, w_t, root, alpha, mask)
            sol = self._reserve_fees(sol, state, w_t, root, alpha, mask)
        except InfeasibleError as exc:
            if not reasons:
                raise
            raise InfeasibleError(_frozen_message(exc, reasons), exc.conflicts) from exc
        finally:
            self.__dict__.pop("_terms_memo", None)
        sol.frozen, sol.untradable = frozen, reasons
        sol.compiled = self.compilations != before
        sol.wall_time = time.perf_counter() - t0
        return sol

    # ------------------------------------------------------------------- plan
    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """Plan the trades (shares) from ``state`` towards ``targets`` (weights by ticker).

        Threads sharing one rebalancer take turns (see :meth:`solve`)."""
        with self._lock:
            return self._plan(state, targets)

    def _plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        if self.integer != "off":
            return self._integer_stage().plan(state, targets)
        for name, unset in (("lots", None), ("min_trade_value", None), ("max_trades", None)):
            if getattr(self, name) is not unset:  # read by the integer stage only
                raise InputError(f"{name} is read by the integer stage, and integer='off' "
                                 "plans fractional shares without it: set integer='round' "
                                 "or 'exact', or leave it unset",
                                 field=f"OptimalRebalancer.{name}")
        sol = self.solve(state, targets)
        sol, dust = self._without_dust(sol, state, targets)
        unit = state.prices * state.multipliers
        shares = sol.z * state.equity / unit
        # a close is exact in shares: weights -> shares can miss the holding by an ulp
        closed = [state.index_of(a) for a, what in dust.items() if what == "closed"]
        shares[closed] = -state.holdings[closed]
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

    def is_dpp(self, state: PortfolioState, targets: Any) -> bool:
        """Whether the compiled program for ``state`` is DPP (for tests)."""
        w_t = state.target_weights(targets)
        return self._cvxpy_program(state, w_t, self.root(state).G.shape[1]).is_dpp()


