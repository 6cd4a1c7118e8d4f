"""What OptimalRebalancer returns and the constants of its solver chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints import Slack
from rebalopt.errors import InfeasibleError
from rebalopt.state import PortfolioState

__all__ = ["DEFAULT_SOLVER_OPTIONS", "DUST_ROUNDS", "FEE_RESERVE_ROUNDS", "OBJECTIVE_RTOL",
           "RETRY_OPTIONS", "TIME_LIMIT_OPTION", "OptimalSolution"]

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

FEE_RESERVE_ROUNDS = 4
"""Re-solves allowed to reserve commission minimums / per-order fees under a CashFloor."""

DUST_ROUNDS = 3
"""Re-solves allowed to hold dust trades still (:meth:`OptimalRebalancer.plan`)."""

OBJECTIVE_RTOL = 1e-6
"""Accuracy asked of a solver's objective relative to the objective's magnitude (the
largest term at the answer or at no trade); 100x the solvers' own gap tolerances."""

_ACCEPTED = ("optimal", "optimal_inaccurate")
_INFEASIBLE = ("infeasible", "infeasible_inaccurate")


class _Root(Protocol):
    G: np.ndarray
    s: np.ndarray

    def variance(self, d: np.ndarray) -> float: ...


class _RiskLike(Protocol):  # noqa: PYI046 (used by optimal.py)
    def root(self, state: PortfolioState) -> _Root: ...


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
