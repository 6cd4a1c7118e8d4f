"""OptimalRebalancer's infeasibility diagnosis (which constraints conflict, by how much)."""

from __future__ import annotations

from typing import Any

from rebalopt._naming import unique_names
from rebalopt._typing import FloatArray
from rebalopt.errors import Conflict, RebalanceError, solver_failure
from rebalopt.program.builder import ELASTIC_TIE
from rebalopt.rebalance._problem import CompiledProblem
from rebalopt.rebalance._solution import _ACCEPTED, RETRY_OPTIONS
from rebalopt.state import PortfolioState

__all__: list[str] = []

PULL_CHECK = 1e-3
"""Largest elastic slack (constraint units) still checked for being the tie-break's
pull (:data:`~rebalopt.program.builder.ELASTIC_TIE`) rather than a conflict."""


class Diagnosis:
    """Infeasibility diagnosis: the elastic program names the conflicting constraints
    (mixed into OptimalRebalancer)."""

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
            # the solver's retry settings too, as in the chain (measured: Clarabel stalls
            # on an elastic program its own equilibration scales badly and solves it
            # without; SCS, next in the chain, took 10-100x longer)
            tries = [self._options(solver)]
            if solver in RETRY_OPTIONS:
                tries.append({**self._options(solver), **RETRY_OPTIONS[solver]})
            for opts in tries:
                try:
                    conflicts = self._diagnose(prob, state, w_t, solver, opts)
                except RebalanceError:
                    raise
                except BaseException as exc:  # a failing solver: no answer
                    if not solver_failure(exc):
                        raise
                    conflicts = None
                if conflicts is not None:
                    return conflicts
        return None

    @staticmethod
    def _pulled(prob: CompiledProblem, solver: str, opts: dict[str, Any] | None,
                top: float) -> bool:
        """Whether the elastic program's small slacks are its tie-break's pull, not a
        conflict: solved again with a tie-break 100 times lighter, a pull shrinks with
        it (below a tenth), a conflict stays. ``False`` when that solve has no answer."""
        prob.tie = ELASTIC_TIE / 100.0
        try:
            again = prob.solve(solver, opts, elastic=True)
        finally:
            prob.tie = ELASTIC_TIE
        if again.status not in _ACCEPTED or again.z is None:
            return False
        return max(again.slacks.values(), default=0.0) < 0.1 * top

    def _diagnose(self, prob: CompiledProblem, state: PortfolioState, w_t: FloatArray,
                  solver: str, opts: dict[str, Any] | None = None) -> list[Conflict] | None:
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
        opts = self._options(solver) if opts is None else opts
        prob.set_elastic_caps(None)
        raw = prob.solve(solver, opts, elastic=True)
        if raw.status not in _ACCEPTED or raw.z is None:
            return None
        frozen = prob.frozen_mask  # held at 0 up to solver noise
        raw.z[frozen] = 0.0
        top = max(raw.slacks.values(), default=0.0)
        tol = max(self.feasibility_tol, 1e-6, 1e-3 * top)  # above the solver's noise
        involved = [i for i, v in sorted(raw.slacks.items(), key=lambda kv: -kv[1]) if v > tol]
        if not involved:
            return []
        if top < PULL_CHECK and self._pulled(prob, solver, opts, top):
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

