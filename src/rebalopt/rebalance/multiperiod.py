"""MultiPeriodRebalancer: plan *when* to trade, not only what (a trade schedule).

.. math::

    \\min_{z_1..z_H}\\ \\sum_{t=1}^{H} \\Big[\\text{cost}_t(z_t)
        + \\frac{\\gamma}{2}\\,\\Delta t\\,(w_t - w^*_t)^\\top \\Sigma\\,(w_t - w^*_t)
        - \\alpha_t^\\top w_t\\Big]
    \\quad\\text{s.t.}\\quad w_t = w_{t-1} + z_t,\\ \\
    \\text{cash}_t = \\text{cash}_{t-1} - 1^\\top z_t - \\text{cost}_t(z_t),\\ \\
    \\text{constraints}(w_t, z_t, \\text{cash}_t)\\ \\forall t

Units as in :mod:`rebalopt.rebalance.optimal`: trades, weights and cash are fractions
of the pre-trade equity ``V``; ``Sigma`` annualized; ``Delta t`` (``period``) the
length of one period in years (one trading day, ``1/252``, by default); ``gamma``
dimensionless; ``alpha_t`` an expected return over period ``t`` (fraction).

One model, stacked: every period holds one copy of the single-period declarations.

* Costs: per period ``t`` the cost models' convex terms with the coefficients of
  period ``t``'s state (``states``; by default the same state every period):
  ``lin_i |z_i|`` through ``t_t >= |z_t|`` and ``a_i |z_i|^p`` through a power cone
  per asset, read from the same declarations the single-period direct program reads
  (:mod:`rebalopt.rebalance._clarabel`).
* Constraints: each constraint's own :meth:`~rebalopt.constraints.Constraint.rows`,
  called once per period on a *period view* of the layout: its ``z`` columns are the
  cumulative trades ``w_t - w_0 = z_1 + .. + z_t`` (position rows that fold ``w_0``
  into their right-hand side then hold on ``w_t``), its ``t`` columns the period's own
  ``|z_t|`` (participation caps and turnover hold per period), its cost the cumulative
  cost (a cash floor holds on ``cash_t``). Auxiliary variables are per period.
  Restricted lists: ``no_trade`` holds per period; ``no_buy`` / ``no_sell`` (rows on
  ``z``) hold on the cumulative trade, and the per-period numeric check enforces
  them on each ``z_t`` (a violation there is a :class:`~rebalopt.errors.SolverError`).
* Optional terminal condition on ``w_H``: reach the target (``terminal="target"``),
  or stay within a band (``terminal=0.01``: ``|w_H - w*_H| <= 0.01`` per asset).
* Optional ``cost_in_tracking``: each period's trading cost is also a tracking
  difference (the book falls short of the cost-free target by the cost on the day it
  is paid), so the tracking term gains ``gamma/2 * cost_t(z_t)**2`` (both are squared
  one-period return differences, fractions of equity). Realized tracking error
  measured on net returns contains these hits; without the term, a high ``gamma``
  front-loads the trade and its cost into one day (``docs/howto/backtest.md``).

``periods=1`` with ``period`` equal to the single-period ``horizon`` is exactly the
single-period program (same columns, rows and scaling), so
:class:`~rebalopt.rebalance.optimal.OptimalRebalancer` and this class agree there.

Every solution is verified in NumPy, period by period, with each constraint's own
``check`` on the point ``(z_t, w_t, cash_t)``; the plan carries the whole schedule
(``plan.info["schedule"]``, periods x tickers) and its orders are the first period's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import clarabel
import numpy as np
import pandas as pd

from rebalopt._checks import flag, require_nonneg
from rebalopt._naming import unique_names
from rebalopt._typing import AssetValues, FloatArray
from rebalopt.constraints import CashFloor, Constraint, LongOnly, Point, Slack
from rebalopt.costs import CostModel, untradable_assets
from rebalopt.errors import Conflict, InfeasibleError, InputError, SolverError
from rebalopt.rebalance._clarabel import CVXPY_ONLY
from rebalopt.rebalance._fees import no_trade_or_raise
from rebalopt.rebalance._multiperiod_program import StackedProgram
from rebalopt.rebalance._native import Matrices, solve_native
from rebalopt.rebalance._problem import SCALE, convex_costs, holding_costs
from rebalopt.rebalance._solution import FEE_RESERVE_ROUNDS, RETRY_OPTIONS, _RiskLike, _Root
from rebalopt.rebalance.plan import RebalancePlan, evaluate_costs
from rebalopt.risk.identity import Identity
from rebalopt.state import PortfolioState

__all__ = ["MultiPeriodRebalancer", "MultiPeriodSolution", "ac_schedule"]

_ACCEPTED = ("optimal", "optimal_inaccurate")
_ELASTIC_PENALTY = 1e3
"""Price (fraction of equity per unit) of a constraint giving way in the diagnosis."""


def ac_schedule(x0: float, periods: int, kappa_tilde: float) -> FloatArray:
    """The discrete Almgren-Chriss holdings path ``x_0 .. x_H`` (closed form).

    For one asset, cost ``eta * z_t**2`` and risk ``lam * x_t**2`` per period with
    ``x_t`` the distance to the target and ``x_H = 0``, the first-order conditions
    are ``x_{t+1} - 2 x_t + x_{t-1} = kappa_tilde * x_t`` with
    ``kappa_tilde = lam / eta``; the solution is
    ``x_t = x_0 sinh(kappa (H - t)) / sinh(kappa H)`` with
    ``cosh(kappa) = 1 + kappa_tilde / 2`` (linear, ``x_0 (1 - t/H)``, at
    ``kappa_tilde = 0``).

    Parameters
    ----------
    x0
        Starting distance to the target (weight).
    periods
        ``H``.
    kappa_tilde
        Risk over impact per period, ``>= 0`` (dimensionless).

    Returns
    -------
    ndarray
        ``H + 1`` distances, ``x_0`` first and ``0`` last.
    """
    t = np.arange(periods + 1, dtype=float)
    if kappa_tilde <= 0:
        return x0 * (1.0 - t / periods)
    kappa = np.arccosh(1.0 + 0.5 * kappa_tilde)
    return x0 * np.sinh(kappa * (periods - t)) / np.sinh(kappa * periods)


@dataclass
class MultiPeriodSolution:
    """A verified schedule.

    Attributes
    ----------
    z
        Trade weights per period, ``(H, n)`` (fractions of pre-trade equity).
    w
        Post-trade weights per period, ``(H, n)``.
    cash
        Cash weight after each period's trades and costs, ``(H,)``.
    targets
        Target path, ``(H, n)``.
    cost
        Convex cost per period (fraction of equity), ``(H,)``.
    risk
        Tracking term per period, ``gamma/2 * dt * d' Sigma d`` (fraction), ``(H,)``,
        plus ``gamma/2 * cost_t**2`` with ``cost_in_tracking``.
    tracking_error
        Annualized tracking error of ``w_t`` to ``w*_t`` per period, ``(H,)``.
    objective
        Total objective (fraction of equity), evaluated in NumPy.
    solver_objective
        The solver's objective (same units).
    status, solve_time, wall_time, setup_time, iterations
        Solver status and times (seconds).
    slacks
        Per period, :class:`~rebalopt.constraints.Slack` per constraint name.
    frozen, untradable
        Assets held at ``z = 0`` because a cost model cannot price them, and why.
    fees
        Per period, what the cost models charge beyond their convex terms (commission
        minimums, per-order fees; fraction of equity), ``(H,)``; paid from ``cash``.
    fee_short
        Largest violation of a hard cash floor once ``fees`` are paid (0: none).
    fee_reserve, fee_rounds
        Cash weight held back from the program for those fees, and the re-solves
        that took (class Notes).
    """

    z: FloatArray
    w: FloatArray
    cash: FloatArray
    targets: FloatArray
    cost: FloatArray
    risk: FloatArray
    tracking_error: FloatArray
    objective: float
    solver_objective: float | None
    status: str
    solve_time: float | None
    wall_time: float
    setup_time: float | None
    iterations: int | None
    slacks: list[dict[str, Slack]]
    frozen: np.ndarray | None = None
    untradable: dict[str, str] = field(default_factory=dict)
    fees: FloatArray | None = None
    fee_short: float = 0.0
    fee_reserve: float = 0.0
    fee_rounds: int = 0


@dataclass
class MultiPeriodRebalancer:
    """Plan trades over the next ``periods`` periods and trade the first (module docstring).

    Parameters
    ----------
    periods
        ``H``, the number of periods planned (>= 1).
    period
        ``Delta t``, the length of one period in years (default one trading day,
        ``1/252``); the tracking term of each period is held for this long.
    risk
        Tracking-error risk model answering ``root(state)`` (annualized); ``None``:
        identity (squared weight distance).
    costs
        Cost models; their convex terms are charged per period with that period's
        coefficients and paid from cash.
    constraints
        Constraint objects, every one enforced in every period (default long-only and
        no borrowing).
    risk_aversion
        ``gamma`` (dimensionless).
    alpha
        Optional expected return per asset and period (fraction per period), keyed by
        ticker; the same every period.
    terminal
        ``None`` (default: no terminal condition), ``"target"`` (``w_H = w*_H`` on
        every tradable asset) or a band half-width in weight units
        (``|w_H - w*_H| <= band`` per asset).
    cost_in_tracking
        Add ``gamma/2 * cost_t**2`` to each period's tracking term (``cost_t`` the
        period's convex trading cost, fraction of equity): the cost paid on a day is
        a return difference to the cost-free target on that day. Default ``False``
        (the objective above, and ``periods=1`` equal to the single-period plan).
    solver_options
        Clarabel settings overriding :data:`~rebalopt.rebalance._clarabel.DIRECT_SETTINGS`,
        flat (``{"max_iter": 100}``) or keyed as the single-period rebalancer takes them
        (``{"CLARABEL": {"max_iter": 100}}``); names are checked at construction.
    min_trade_weight
        First-period trades smaller than this (fraction of equity) snap to zero when the
        snapped point passes the same checks.
    feasibility_tol
        Hard constraints must hold within this in every period (NumPy check).
    time_limit
        Seconds per solve.

    Notes
    -----
    :meth:`plan` accepts a target path as a DataFrame (periods x tickers, one row per
    period, shorter paths repeat their last row, longer ones are an error) or constant targets (a Series,
    mapping or array). Its plan's trades and orders are the first period's; the
    schedule is in ``plan.info``: ``schedule`` (trade weights, periods x tickers),
    ``schedule_shares`` (shares at today's prices), ``expected_cost`` (fraction of
    equity per period), ``tracking_error`` (annualized, per period), ``cash_path``
    (after each period's trades and full charges), ``expected_fees`` (commission
    minimums and per-order fees per period, fraction of equity: not convex, so not
    in the program), ``fee_reserve`` and ``fee_reserve_rounds``: when those fees
    would break a hard :class:`~rebalopt.constraints.CashFloor` in some period, the
    schedule is solved again with them held back from cash, as the single-period
    plan does (``periods=1`` stays equal to it).
    Re-planning every period and trading the first (a receding horizon) is what
    :class:`~rebalopt.backtest.PortfolioStrategy` does with ``replan=1``.
    """

    periods: int = 5
    period: float = 1.0 / 252.0
    risk: _RiskLike | None = None
    costs: list[CostModel] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=lambda: [LongOnly(), CashFloor()])
    risk_aversion: float = 100.0
    alpha: AssetValues | None = None
    terminal: str | float | None = None
    cost_in_tracking: bool = False
    solver_options: Mapping[str, Any] | None = None
    min_trade_weight: float = 1e-7
    feasibility_tol: float = 1e-7
    time_limit: float = 20.0

    method = "multiperiod"

    def __post_init__(self) -> None:
        if self.risk is None:
            self.risk = Identity()
        self.costs = list(self.costs)
        self.constraints = list(self.constraints)
        self._programs: dict[Any, StackedProgram] = {}
        self._lock = threading.RLock()  # one solve at a time (the kept programs' buffers)
        self.compilations = 0
        """How often a stacked program was (re)built; a sweep leaves it alone."""
        self._validate()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_programs"] = {}
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _validate(self) -> None:
        if isinstance(self.periods, bool) or not isinstance(self.periods, (int, np.integer)) \
                or self.periods < 1:
            raise InputError(f"must be an int >= 1, got {self.periods!r}",
                             field="MultiPeriodRebalancer.periods")
        for name in ("risk_aversion", "period", "time_limit"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and np.isfinite(v)
                                           and v >= 0):
                raise InputError(f"must be a finite number >= 0, got {v!r}",
                                 field=f"MultiPeriodRebalancer.{name}")
        if self.time_limit <= 0:
            raise InputError("must be > 0", field="MultiPeriodRebalancer.time_limit")
        t = self.terminal
        if not (t is None or t == "target" or (isinstance(t, (int, float))
                                                and not isinstance(t, bool)
                                                and np.isfinite(t) and t >= 0)):
            raise InputError(f"must be None, 'target' or a band >= 0, got {t!r}",
                             field="MultiPeriodRebalancer.terminal")
        for name in ("min_trade_weight", "feasibility_tol"):
            require_nonneg(getattr(self, name), f"MultiPeriodRebalancer.{name}")
        flag(self.cost_in_tracking, "MultiPeriodRebalancer.cost_in_tracking")
        for c in self.costs:
            if not isinstance(c, CostModel):
                raise InputError(f"not a CostModel: {c!r}", field="MultiPeriodRebalancer.costs")
        for c in self.constraints:
            if not isinstance(c, Constraint):
                raise InputError(f"not a Constraint: {c!r}",
                                 field="MultiPeriodRebalancer.constraints")
        self._options()  # names checked now, not at the first solve

    # ----------------------------------------------------------------- pieces
    def root(self, state: PortfolioState) -> _Root:
        """The risk root aligned to ``state.assets``."""
        root = self.risk.root(state)  # type: ignore[union-attr]
        if root.s.shape != (state.n,) or root.G.shape[0] != state.n:
            raise InputError(f"risk root has {root.s.shape[0]} rows for {state.n} assets",
                             field="risk")
        return root

    def target_path(self, state: PortfolioState, targets: Any) -> FloatArray:
        """Targets per period, ``(H, n)``: a DataFrame gives one row per period (the last
        row repeats), anything else is the same target every period."""
        H = int(self.periods)
        if isinstance(targets, pd.DataFrame):
            if targets.empty:
                raise InputError("empty target path", field="targets")
            if len(targets) > H:  # rows past the horizon would be dropped unseen
                raise InputError(f"a target path of {len(targets)} rows for {H} periods: "
                                 f"give at most {H} rows (fewer: the last row repeats)",
                                 field="targets")
            rows = [state.target_weights(targets.iloc[min(t, len(targets) - 1)])
                    for t in range(H)]
            return np.vstack(rows)
        return np.tile(state.target_weights(targets), (H, 1))

    def _program(self, state: PortfolioState, path: FloatArray, k: int,
                 elastic: bool) -> StackedProgram:
        key = (tuple(state.assets), int(self.periods), k, elastic, self.alpha is not None,
               bool(self.cost_in_tracking),
               tuple((id(m), getattr(m, "exponent", None)) for m in self.costs),
               tuple((id(c), c.soft, c.structure(state, path[0])) for c in self.constraints))
        prog = self._programs.get(key)
        if prog is None:
            if not elastic:
                self.compilations += 1
                self._programs = {kk: v for kk, v in self._programs.items() if kk[3]}
            prog = StackedProgram(int(self.periods), state.n, k, self.costs, self.constraints,
                                  state, path[0], elastic, bool(self.cost_in_tracking))
            self._programs[key] = prog
        return prog

    def _given_options(self) -> dict[str, Any]:
        """``solver_options`` as Clarabel settings: flat (``{"max_iter": 100}``) or, as
        :class:`~rebalopt.rebalance.optimal.OptimalRebalancer` takes them, keyed by
        solver (``{"CLARABEL": {...}}``, any case); another solver's key is an
        :class:`InputError` (the schedule is solved by Clarabel only)."""
        field_ = "MultiPeriodRebalancer.solver_options"
        given = self.solver_options
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            raise InputError(f"must map Clarabel setting names to values, got "
                             f"{type(given).__name__}", field=field_)
        keyed = [k for k, v in given.items() if isinstance(v, Mapping)]
        if keyed:
            if len(given) != 1 or not isinstance(keyed[0], str) \
                    or keyed[0].upper() != "CLARABEL":
                raise InputError(f"{keyed[0]!r}: the multi-period schedule is solved by "
                                 "Clarabel only; give Clarabel's settings flat or as "
                                 "{'CLARABEL': {...}}", field=field_)
            return dict(given[keyed[0]])
        return dict(given)

    def _options(self, retry: bool = False) -> dict[str, Any]:
        """Clarabel settings by name (checked: an unknown name is an InputError)."""
        settings = clarabel.DefaultSettings()
        opts = {"time_limit": float(self.time_limit),
                **(RETRY_OPTIONS["CLARABEL"] if retry else {}),
                **self._given_options()}
        for key in opts:
            if key not in CVXPY_ONLY and not (isinstance(key, str) and hasattr(settings, key)):
                raise InputError(f"unknown Clarabel setting {key!r}",
                                 field="MultiPeriodRebalancer.solver_options")
        return opts

    def _run(self, prog: StackedProgram, states: Sequence[PortfolioState], path: FloatArray,
             root: _Root, alpha: FloatArray | None, frozen: np.ndarray | None,
             retry: bool = False, reserve: float = 0.0
             ) -> tuple[str, np.ndarray | None, float | None, dict[str, Any]]:
        penalties = [(_ELASTIC_PENALTY if prog.elastic else c.penalty)
                     for c in self.constraints]
        terminal = self.terminal
        if isinstance(terminal, (int, float)) and terminal != "target":
            terminal = float(terminal)
        P, q, A, b, const, spec = prog.matrices(
            states, path, root.G, root.s, self.risk_aversion, self.period, alpha, frozen,
            terminal, penalties, cash_reserve=reserve)
        # the single-period path's solve (own equilibration, a solver kept per structure)
        ans = solve_native(Matrices(P, q, A, b, spec), "CLARABEL", self._options(retry),
                           prog.kept)
        status = ans.status
        x = ans.x
        info = {"solve_time": ans.solve_time, "iterations": ans.iterations,
                "setup_time": ans.setup_time}
        if status in _ACCEPTED and x is not None and np.isfinite(x).all():
            return status, x, (float(ans.objective) + const) / SCALE, info  # type: ignore[arg-type]
        return status, None, None, info

    # ------------------------------------------------------------------ solve
    def solve(self, state: PortfolioState, targets: Any,
              states: Sequence[PortfolioState] | None = None) -> MultiPeriodSolution:
        """Solve the stacked program, verify every period, and return the schedule.

        Parameters
        ----------
        state
            The book now.
        targets
            Constant targets, or a path (DataFrame, periods x tickers).
        states
            Optional per-period states (same assets) whose cost coefficients
            (volatility, ADV, prices) price each period's trades; default ``state``
            every period.

        Raises
        ------
        InputError
            Bad knobs, a path or states that do not match the universe.
        InfeasibleError
            The hard constraints cannot hold in every period; ``conflicts`` names
            each constraint and period that must give way.
        SolverError
            Clarabel failed or its point fails the numeric check.

        Notes
        -----
        Threads sharing one rebalancer take turns (a lock): the kept stacked programs
        are written in place by each call.
        """
        with self._lock:
            return self._solve(state, targets, states)

    def _solve(self, state: PortfolioState, targets: Any,
               states: Sequence[PortfolioState] | None) -> MultiPeriodSolution:
        self._validate()
        t0 = time.perf_counter()
        H = int(self.periods)
        path = self.target_path(state, targets)
        if states is None:
            states = [state] * H
        states = list(states)
        if len(states) != H or any(list(s.assets) != list(state.assets) for s in states):
            raise InputError(f"need {H} states over the same assets", field="states")
        root = self.root(state)
        alpha = None
        if self.alpha is not None:
            alpha = np.tile(state.align(self.alpha, "alpha"), (H, 1))
        frozen, reasons = untradable_assets(self.costs, state)
        for s_ in states[1:]:
            f2, r2 = untradable_assets(self.costs, s_)
            frozen |= f2
            reasons.update(r2)
        mask = frozen if reasons else None
        prog = self._program(state, path, root.G.shape[1], elastic=False)
        best = self._attempt(prog, state, states, path, root, alpha, mask, 0.0)
        best = self._reserve_fees(best, prog, state, states, path, root, alpha, mask)
        best.frozen, best.untradable = frozen, reasons
        best.wall_time = time.perf_counter() - t0
        return best

    def _attempt(self, prog: StackedProgram, state: PortfolioState,
                 states: Sequence[PortfolioState], path: FloatArray, root: _Root,
                 alpha: FloatArray | None, mask: np.ndarray | None,
                 reserve: float) -> MultiPeriodSolution:
        """One solve of the stacked program (``reserve``: cash weight held back), its
        dust snapped, verified in NumPy and its objective checked against Clarabel's."""
        H = int(self.periods)
        status, x, obj, info = self._run(prog, states, path, root, alpha, mask,
                                         reserve=reserve)
        attempts = [("CLARABEL", status)]
        if x is None and status not in ("infeasible", "infeasible_inaccurate"):
            # numerical trouble (insufficient progress...): once more with other numerics,
            # as the single-period chain does (RETRY_OPTIONS)
            status, x, obj, info = self._run(prog, states, path, root, alpha, mask,
                                             retry=True, reserve=reserve)
            attempts.append(("CLARABEL (retry)", status))
        if status in ("infeasible", "infeasible_inaccurate"):
            raise InfeasibleError("no schedule satisfies the hard constraints in every period",
                                  self._diagnose(state, states, path, root, alpha, mask,
                                                 reserve))
        if x is None:
            # no answer (iteration limit, stall): an infeasible program Clarabel could not
            # certify looks like this; the elastic program names the conflicts if so
            conflicts = self._diagnose(state, states, path, root, alpha, mask, reserve)
            if conflicts:
                raise InfeasibleError("no schedule satisfies the hard constraints in every "
                                      f"period (Clarabel: {status})", conflicts)
            raise SolverError(f"Clarabel returned {status} on the multi-period program",
                              attempts)
        Y = np.vstack([x[prog.Y[t]] for t in range(H)])
        if mask is not None:
            Y[:, mask] = 0.0
        Z = np.diff(np.vstack([np.zeros(state.n), Y]), axis=0)
        snapped = Z.copy()
        snapped[np.abs(snapped) < self.min_trade_weight] = 0.0
        snapped[snapped == 0] = 0.0
        best, why = None, ""
        for cand in (snapped, Z):
            sol, why = self._verify(cand, states, path, root, alpha)
            if sol is not None:
                best = sol
                break
        if best is None:
            raise SolverError(f"the multi-period point fails the numeric check: {why}",
                              [("CLARABEL", f"{status} ({why})")])
        gap = abs(best.objective - obj)  # type: ignore[operator]
        # 1e-8 absolute: one millionth of a basis point per program (H periods of terms)
        if gap > 1e-4 * max(abs(best.objective), abs(obj)) + 1e-8:  # type: ignore[arg-type]
            raise SolverError(f"objective mismatch {obj:.3e} vs {best.objective:.3e}",
                              [("CLARABEL", status)])
        best.solver_objective = obj
        best.status = status
        best.solve_time = info["solve_time"]
        best.setup_time = info["setup_time"]
        best.iterations = info["iterations"]
        return best

    def _reserve_fees(self, best: MultiPeriodSolution, prog: StackedProgram,
                      state: PortfolioState, states: Sequence[PortfolioState],
                      path: FloatArray, root: _Root, alpha: FloatArray | None,
                      mask: np.ndarray | None) -> MultiPeriodSolution:
        """Hold every hard cash floor with the fees the schedule is really charged.

        Commission minimums and per-order fees are not convex: the program pays only
        their linear part. When the full charge breaks a hard floor in some period,
        the program is solved again with the fees of the whole schedule held back
        from cash (never lowered; a later round adds what is still missing), up to
        :data:`~rebalopt.rebalance._solution.FEE_RESERVE_ROUNDS` times, as
        :class:`~rebalopt.rebalance.optimal.OptimalRebalancer` does. If no schedule
        holds with the fees reserved, not trading is returned when it satisfies every
        hard constraint, else :class:`InfeasibleError`; :class:`SolverError` if the
        floor still breaks after the rounds.
        """
        tol = 0.1 * self.feasibility_tol
        reserve = 0.0
        for rounds in range(1, FEE_RESERVE_ROUNDS + 1):
            if best.fee_short <= tol:
                return best
            fees = float(best.fees.sum()) if best.fees is not None else 0.0
            reserve = max(reserve + best.fee_short, fees) + 0.5 * self.feasibility_tol
            try:
                best = self._attempt(prog, state, states, path, root, alpha, mask, reserve)
            except InfeasibleError as exc:
                hold, _ = self._verify(np.zeros((int(self.periods), state.n)), states, path,
                                       root, alpha)
                hold = no_trade_or_raise(hold, exc, reserve, rounds, "schedule")
                hold.status, hold.solver_objective = "no trade [fees cannot be reserved]", None
                return hold
            best.fee_reserve, best.fee_rounds = reserve, rounds
        if best.fee_short > tol:
            raise SolverError(f"a hard cash floor breaks by {best.fee_short:.2e} once "
                              "commission minimums and per-order fees are paid, after "
                              f"{FEE_RESERVE_ROUNDS} re-solves reserving them",
                              [("CLARABEL", best.status)])
        return best

    def _verify(self, Z: FloatArray, states: Sequence[PortfolioState], path: FloatArray,
                root: _Root, alpha: FloatArray | None
                ) -> tuple[MultiPeriodSolution | None, str]:
        state = states[0]
        H, n = Z.shape
        names = unique_names(self.constraints)
        w = state.weights.copy()
        cash = state.cash_weight
        W, C, cost, risk, te, slacks, fees = [], [], [], [], [], [], []
        total = 0.0
        paid = [m for m in self.costs if m.paid_at_trade and not m.exact_in_optimizer]
        floors = [c for c in self.constraints if c.cash_floor() is not None and not c.soft]
        fee_cum, fee_short = 0.0, 0.0
        for t in range(H):
            c_t = float(sum(convex_costs(self.costs, Z[t], states[t]).values()))
            fee_t = 0.0
            if paid:  # what the broker charges beyond the convex terms (minimums, fees)
                s_t = states[t]
                shares = Z[t] * s_t.equity / (s_t.prices * s_t.multipliers)
                full = float(sum(evaluate_costs(paid, shares, s_t).values()).sum()
                             ) / s_t.equity
                part = float(sum(convex_costs(paid, Z[t], s_t).values()))
                fee_t = max(full - part, 0.0)
            fee_cum += fee_t
            fees.append(fee_t)
            k_t = 0.5 * self.risk_aversion * c_t**2 if self.cost_in_tracking else 0.0
            w = w + Z[t]
            cash = cash - float(Z[t].sum()) - c_t
            point = Point(z=Z[t], w=w.copy(), cash=cash, state=state, targets=path[t])
            sl = {nm: c.check(point, self.feasibility_tol)
                  for nm, c in zip(names, self.constraints)}
            bad = [s for c, s in zip(self.constraints, sl.values())
                   if not c.soft and not s.satisfied]
            if bad:
                worst = max(bad, key=lambda s: s.violation)
                return None, (f"period {t + 1}: {worst.constraint} [{worst.row}] violated by "
                              f"{worst.violation:.2e}")
            c_t += holding_costs(self.costs, w - state.weights, states[t], self.period)
            d = w - path[t]
            var = root.variance(d)
            r_t = 0.5 * self.risk_aversion * self.period * var + k_t
            if fee_cum > 0 and floors:  # the hard cash floors with the fees paid
                paid_point = Point(z=Z[t], w=w.copy(), cash=cash - fee_cum, state=state,
                                   targets=path[t])
                for c in floors:
                    fee_short = max(fee_short,
                                    c.check(paid_point, self.feasibility_tol).violation)
            pen = sum(c.penalty * s.violation for c, s in zip(self.constraints, sl.values())
                      if c.soft)
            a_t = -float(alpha[t] @ w) if alpha is not None else 0.0
            total += c_t + r_t + pen + a_t
            W.append(w.copy())
            C.append(cash - fee_cum)
            cost.append(c_t)
            risk.append(r_t)
            te.append(float(np.sqrt(max(var, 0.0))))
            slacks.append(sl)
        if self.terminal == "target":
            live = np.ones(n, dtype=bool)
            gap = np.abs(W[-1] - path[-1])
            frozen, _ = untradable_assets(self.costs, state)
            live &= ~frozen
            if live.any() and gap[live].max() > self.feasibility_tol:
                return None, f"terminal target missed by {gap[live].max():.2e}"
        elif self.terminal is not None:
            frozen, _ = untradable_assets(self.costs, state)
            gap = np.abs(W[-1] - path[-1])[~frozen]
            if gap.size and gap.max() > float(self.terminal) + self.feasibility_tol:
                return None, f"terminal band missed by {gap.max() - float(self.terminal):.2e}"
        sol = MultiPeriodSolution(
            z=Z, w=np.vstack(W), cash=np.array(C), targets=path, cost=np.array(cost),
            risk=np.array(risk), tracking_error=np.array(te), objective=total,
            solver_objective=None, status="", solve_time=None, wall_time=0.0,
            setup_time=None, iterations=None, slacks=slacks, fees=np.array(fees),
            fee_short=fee_short)
        return sol, ""

    def _diagnose(self, state: PortfolioState, states: Sequence[PortfolioState],
                  path: FloatArray, root: _Root, alpha: FloatArray | None,
                  mask: np.ndarray | None, reserve: float = 0.0) -> list[Conflict]:
        """Every constraint made elastic at a high price: the (constraint, period) pairs
        that must give way, with by how much (their slack at the elastic optimum)."""
        prog = self._program(state, path, root.G.shape[1], elastic=True)
        _, x, _, _ = self._run(prog, states, path, root, alpha, mask, reserve=reserve)
        if x is None:
            return []
        names = unique_names(self.constraints)
        out = []
        for t in range(prog.H):
            for j, c in enumerate(self.constraints):
                sc = prog.slack[t][j]
                if sc is not None and x[sc] > max(self.feasibility_tol, 1e-6):
                    out.append(Conflict(f"{names[j]} (period {t + 1})", float(x[sc]), c.units))
        return out

    # ------------------------------------------------------------------- plan
    def plan(self, state: PortfolioState, targets: Any,
             states: Sequence[PortfolioState] | None = None) -> RebalancePlan:
        """Plan the schedule; the plan's trades (shares) are the first period's.

        The schedule and its expected cost and tracking per period are in ``plan.info``
        (class Notes).
        """
        with self._lock:
            return self._plan(state, targets, states)

    def _plan(self, state: PortfolioState, targets: Any,
              states: Sequence[PortfolioState] | None) -> RebalancePlan:
        sol = self.solve(state, targets, states)
        unit = state.prices * state.multipliers
        shares = sol.z * state.equity / unit
        idx = pd.RangeIndex(1, sol.z.shape[0] + 1, name="period")
        cols = pd.Index(state.assets, name="ticker")
        d0 = state.weights - sol.targets[0]
        root = self.root(state)
        info: dict[str, Any] = {
            "solver": "CLARABEL",
            "status": sol.status,
            "solve_time": sol.solve_time,
            "setup_time": sol.setup_time,
            "wall_time": sol.wall_time,
            "iterations": sol.iterations,
            "objective": sol.objective,
            "objective_bps": 1e4 * sol.objective,
            "solver_objective": sol.solver_objective,
            "periods": int(self.periods),
            "period": self.period,
            "risk_aversion": self.risk_aversion,
            "terminal": self.terminal,
            "schedule": pd.DataFrame(sol.z, index=idx, columns=cols),
            "schedule_shares": pd.DataFrame(shares, index=idx, columns=cols),
            "weights_path": pd.DataFrame(sol.w, index=idx, columns=cols),
            "cash_path": pd.Series(sol.cash, index=idx, name="cash"),
            "expected_cost": pd.Series(sol.cost, index=idx, name="cost"),
            "expected_fees": pd.Series(sol.fees if sol.fees is not None else 0.0,
                                       index=idx, name="fees"),
            "fee_reserve": sol.fee_reserve,
            "fee_reserve_rounds": sol.fee_rounds,
            "expected_tracking": pd.Series(sol.risk, index=idx, name="tracking"),
            "tracking_error": pd.Series(sol.tracking_error, index=idx, name="tracking_error"),
            "tracking_error_before": float(np.sqrt(max(root.variance(d0), 0.0))),
            "tracking_error_after": float(sol.tracking_error[0]),
            "slacks": {k: s.slack for k, s in sol.slacks[0].items()},
            "binding": [k for k, s in sol.slacks[0].items() if s.binding],
            "untradable": dict(sol.untradable),
        }
        return RebalancePlan.from_trades(state, sol.targets[0], shares[0], self.costs,
                                         self.method, info)

    def execute(self, target_weights: Mapping[str, float], data: Mapping[str, Any],
                broker: Any) -> list[Any]:
        """The seed's executor call: plan from the broker's book, submit the first period."""
        from rebalopt.rebalance._execute import execute_plan

        return execute_plan(self, target_weights, data, broker, "cancel")

