"""OptimalRebalancer's solver chain and the NumPy verification of every answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rebalopt._naming import unique_names
from rebalopt._typing import FloatArray
from rebalopt.constraints._base import Point
from rebalopt.errors import (
    Conflict,
    InfeasibleError,
    InputError,
    RebalanceError,
    SolverError,
    solver_failure,
)
from rebalopt.rebalance._native import CVXPY_ONLY
from rebalopt.rebalance._problem import (
    CompiledProblem,
    RawSolution,
    convex_costs,
    objective_terms,
)
from rebalopt.rebalance._solution import (
    _ACCEPTED,
    _INFEASIBLE,
    DEFAULT_SOLVER_OPTIONS,
    OBJECTIVE_RTOL,
    RETRY_OPTIONS,
    TIME_LIMIT_OPTION,
    OptimalSolution,
    _Root,
)
from rebalopt.state import PortfolioState

__all__: list[str] = []


class SolverChain:
    """The solver chain: options per solver, solve down the chain, verify each answer
    in NumPy (mixed into :class:`~rebalopt.rebalance.optimal.OptimalRebalancer`)."""

    @property
    def solvers(self) -> list[str]:
        """The fallback chain, upper-case names."""
        chain = [self.solver] if isinstance(self.solver, str) else list(self.solver)
        return [s.upper() for s in chain]

    def _options(self, solver: str) -> dict[str, Any]:
        opts = dict(DEFAULT_SOLVER_OPTIONS.get(solver, {}))
        if solver in TIME_LIMIT_OPTION:
            opts[TIME_LIMIT_OPTION[solver]] = float(self.time_limit)
        for key, given in (self.solver_options or {}).items():  # checked: _check_options
            if key.upper() == solver:
                opts.update(given)
        return opts

    def _check_options(self, field: str) -> None:
        """``solver_options`` must map solvers of the chain (any case) to mappings of
        options: an option given for a solver the chain never runs, or not keyed by
        solver, would be ignored, so it is an :class:`InputError` naming ``field``."""
        given = self.solver_options
        if given is None:
            return
        chain = self.solvers
        if not isinstance(given, Mapping):
            raise InputError("must map a solver name to its options, e.g. "
                             "{'CLARABEL': {'max_iter': 100}}", field=field)
        for key, opts in given.items():
            if not isinstance(key, str) or key.upper() not in chain:
                hint = (f"options are given per solver, e.g. {{'CLARABEL': {{{key!r}: ...}}}}"
                        if not isinstance(opts, Mapping) else
                        "it is not in the solver chain, so they would never be used")
                raise InputError(f"{key!r}: {hint} (chain: {', '.join(chain)})", field=field)
            if not isinstance(opts, Mapping):
                raise InputError(f"options of {key} must be a mapping of option names, got "
                                 f"{type(opts).__name__}", field=f"{field}[{key!r}]")
            if key.upper() == "CLARABEL":  # names checked now, not at the first solve
                import clarabel

                settings = clarabel.DefaultSettings()
                for name in opts:
                    if name not in CVXPY_ONLY and not (isinstance(name, str)
                                                       and hasattr(settings, name)):
                        raise InputError(f"Clarabel has no setting {name!r}",
                                         field=f"{field}[{key!r}]")

    def _solve_chain(self, state: PortfolioState, w_t: FloatArray, root: _Root,
                     alpha: FloatArray | None, frozen: np.ndarray | None = None,
                     reserve: float = 0.0) -> OptimalSolution:
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
                            frozen, reserve)
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
                                            self.cvxpy_constraints, self.cvxpy_objective,
                                            reserve)
                elif direct is not None and solver == "CLARABEL":
                    raw = direct.solve(state, w_t, root.G, root.s, self.risk_aversion,
                                       self.horizon, alpha, opts, frozen=frozen,
                                       cash_reserve=reserve,
                                       terms=self._cost_terms(state))
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
            convex = convex_costs(self.costs, z, state)  # each model once: point, objective
            paid = {k: v for (k, v), m in zip(convex.items(), self.costs) if m.paid_at_trade}
            point = Point.from_trades(state, w_t, z, float(sum(paid.values())))
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
                                costs=self.costs, constraints=self.constraints, alpha=alpha,
                                convex=convex)
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

        The objective at no trade only raises the tolerance, so it is computed only when
        the gap is above the tolerance without it (the same verdict, one evaluation
        fewer for almost every answer).
        """
        small = max(abs(terms["total"]), abs(solver_objective))
        at_answer = max(abs(v) for v in terms.values())
        if abs(terms["total"] - solver_objective) <= (1e-4 * small + OBJECTIVE_RTOL * at_answer
                                                      + 1e-9):
            return 1e-4 * small + OBJECTIVE_RTOL * at_answer + 1e-9
        zero = objective_terms(np.zeros(state.n), state, w_t, G=root.G, s=root.s,
                               risk_aversion=self.risk_aversion, horizon=self.horizon,
                               costs=self.costs, constraints=self.constraints, alpha=alpha)
        zero = self._with_user_terms(zero, np.zeros(state.n), state)
        magnitude = max([at_answer] + [abs(v) for v in zero.values()])
        return 1e-4 * small + OBJECTIVE_RTOL * magnitude + 1e-9
