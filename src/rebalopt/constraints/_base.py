"""The constraint protocol: one declaration of rows, and an independent numeric check.

Every constraint is a set of rows ``lhs <= rhs``:

* :meth:`Constraint.rows` declares them, once, as sparse matrix data over the named
  blocks of a :class:`~rebalopt.program.MatrixLayout` (trades ``z``, their epigraph
  ``t >= |z|``, post-trade weights ``w``, post-trade cash, the convex cost, auxiliary
  columns of its own), with right-hand sides computed from the state. Every program
  reads this one declaration: the direct Clarabel program, the cvxpy program behind
  the other solvers, the elastic program that diagnoses infeasibility, the
  multi-period program and the integer stage's MIP.
* :meth:`Constraint.evaluate` computes the same rows in NumPy on a
  :class:`Point` (trades, post-trade weights, post-trade cash), independent of the
  solver and of the declaration; :meth:`Constraint.check` turns them into a
  :class:`Slack`. It is the oracle every answer is checked against.

Splitting a left-hand side from a right-hand side makes a soft version free
(``lhs <= rhs + v``, ``v >= 0``, ``penalty * v`` in the objective), which is also
how an infeasible program is diagnosed.

Units: weights and cash are fractions of the *pre-trade* equity.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rebalopt._checks import flag, number, numbers_by_asset, require_nonneg, require_positive
from rebalopt._memo import UNIVERSE_MEMO as _UNIVERSE_MEMO
from rebalopt._memo import universe_memo
from rebalopt._typing import FloatArray
from rebalopt.errors import InputError
from rebalopt.program.layout import MatrixLayout, MatrixRows
from rebalopt.state import PortfolioState

if TYPE_CHECKING:  # pragma: no cover
    from rebalopt.rebalance.plan import RebalancePlan

__all__ = [
    "FEAS_TOL",
    "Constraint",
    "MatrixLayout",
    "MatrixRows",
    "Point",
    "Slack",
    "require_nonneg",
    "universe_memo",
]

FEAS_TOL = 1e-7
"""Default tolerance (constraint units) for a hard constraint to count as satisfied."""


@dataclass(frozen=True)
class Point:
    """A candidate rebalance, in weights (fractions of pre-trade equity).

    Parameters
    ----------
    z
        Trade weights, ``trade value / equity`` per asset.
    w
        Post-trade weights ``w0 + z``.
    cash
        Post-trade cash weight after costs: ``c0 - sum(z) - cost / equity``.
    state
        The pre-trade state.
    targets
        Target weights in universe order.
    """

    z: FloatArray
    w: FloatArray
    cash: float
    state: PortfolioState
    targets: FloatArray

    @classmethod
    def from_plan(cls, plan: RebalancePlan) -> Point:
        """The point a :class:`~rebalopt.rebalance.plan.RebalancePlan` lands on."""
        return cls(z=plan.z, w=plan.post_weights, cash=plan.post_cash_weight,
                   state=plan.state, targets=plan.targets)

    @classmethod
    def from_trades(cls, state: PortfolioState, targets: FloatArray, z: FloatArray,
                    cost: float) -> Point:
        """From trade weights ``z`` and the total cost as a fraction of equity."""
        z = np.asarray(z, dtype=float)
        return cls(z=z, w=state.weights + z, cash=state.cash_weight - float(z.sum()) - cost,
                   state=state, targets=np.asarray(targets, dtype=float))


@dataclass(frozen=True)
class Slack:
    """How far a point is inside one constraint.

    ``slack = min(rhs - lhs)`` over its rows, in ``units``: positive means slack,
    zero binding, negative violated. ``row`` names the tightest row.
    """

    constraint: str
    slack: float
    row: str
    units: str
    tol: float = FEAS_TOL

    @property
    def satisfied(self) -> bool:
        """``slack >= -tol``."""
        return self.slack >= -self.tol

    @property
    def binding(self) -> bool:
        """Active at the point: ``|slack| <= 1e-6`` (looser than ``tol``, solver accuracy)."""
        return abs(self.slack) <= max(1e-6, self.tol)

    @property
    def violation(self) -> float:
        """``max(0, -slack)``."""
        return max(0.0, -self.slack)


class Constraint(ABC):
    """Base class of rebalancing constraints.

    Subclasses are dataclasses that declare ``soft``, ``penalty`` and ``label``
    fields. ``soft=False`` (default) makes the constraint hard; ``soft=True`` lets
    the optimizer violate it at ``penalty`` (fraction of equity per unit of the
    worst row's violation, in ``units``) added to the objective.
    """

    soft: bool
    penalty: float
    label: str | None
    units: str = "weight"

    @property
    def name(self) -> str:
        """Name used in plans, slacks and infeasibility reports."""
        return self.label or self.describe()

    def describe(self) -> str:
        """A short readable default name."""
        return type(self).__name__

    def _validate_soft(self) -> None:
        cls = type(self).__name__
        # soft="no" is truthy: a hard limit would silently become a priced one
        flag(self.soft, f"{cls}.soft")
        require_positive(self.penalty, f"{cls}.penalty")
        if not self.soft and self.penalty != 1.0:
            raise InputError(f"penalty {self.penalty:g} is read only with soft=True: a hard "
                             "constraint holds exactly and its penalty is never used",
                             field=f"{cls}.penalty")

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the values cached per universe (:func:`universe_memo`)."""
        state = dict(self.__dict__)
        state.pop(_UNIVERSE_MEMO, None)
        return state

    # ---------------------------------------------------- declared properties
    def cash_floor(self) -> float | None:
        """The smallest post-trade cash weight this constraint enforces, when it is a
        floor on cash (read by the fee reserve and the leverage check); else ``None``."""
        return None

    def forbids_shorts(self) -> bool:
        """Whether every post-trade weight must be ``>= 0`` under this constraint."""
        return False

    # ------------------------------------------------------------- structure
    def structure(self, state: PortfolioState, targets: FloatArray) -> Hashable:
        """What fixes the shape of :meth:`rows` (row counts, sparsity); a change forces
        a recompile. Default: nothing beyond the universe (handled by the caller)."""
        return ()

    @abstractmethod
    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        """This constraint's rows ``A x <= b`` over the named blocks of ``layout``.

        Write on ``layout.z``, ``layout.t``, ``layout.w``, ``layout.cash``,
        ``layout.cost`` (the builder substitutes ``w = w0 + z`` and ``cash = c0 -
        sum(z) - cost``: never fold ``w0`` or ``c0`` into ``b``); auxiliary columns
        come from ``layout.aux((id(self), name), size)`` and their defining rows are
        ``main=False`` (hard even when the constraint is soft). Called again on every
        solve with the state's values: the same row counts and sparsity for the same
        :meth:`structure`, the right-hand sides (and coefficients) may change.
        """

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Any] | None:
        """This constraint's face in the integer search: kernels from
        :mod:`rebalopt.program.search` that give its violation after lot moves in
        closed form, or ``None`` (the default) for the generic kernel, which calls
        :meth:`evaluate` at every candidate (correct, slower)."""
        return None

    @abstractmethod
    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        """Numeric ``(lhs, rhs)`` of the constraint's rows at ``point``, computed in NumPy
        independently of :meth:`rows` (the oracle every answer is checked against)."""

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        """One label per row (same order as :meth:`evaluate`); default ``row i``."""
        lhs, _ = self.evaluate(Point.from_trades(state, targets, np.zeros(state.n), 0.0))
        return [f"row {i}" for i in range(len(lhs))]

    # ----------------------------------------------------------------- check
    def check(self, point: Point | Any, tol: float = FEAS_TOL) -> Slack:
        """Slack of this constraint at ``point`` (a :class:`Point` or a plan)."""
        if not isinstance(point, Point):
            point = Point.from_plan(point)
        lhs, rhs = self.evaluate(point)
        lhs, rhs = np.atleast_1d(lhs), np.atleast_1d(rhs)
        if lhs.size == 0:
            return Slack(self.name, float("inf"), "", self.units, tol)
        gap = rhs - lhs
        i = int(np.argmin(gap))
        labels = self.row_labels(point.state, point.targets)
        return Slack(self.name, float(gap[i]), labels[i] if i < len(labels) else f"row {i}",
                     self.units, tol)


def asset_labels(state: PortfolioState, idx: np.ndarray, what: str) -> list[str]:
    """``"<what> <asset>"`` for each index."""
    names = np.asarray(state.assets, dtype=object)[np.asarray(idx, dtype=int)]
    return [f"{what} {a}" for a in names]


def check_per_asset(values: Any, field: str) -> None:
    """Construction-time check of a scalar or per-asset bound (see :func:`per_asset`)."""
    if values is None:
        return
    if np.isscalar(values):
        number(values, field)
    else:
        numbers_by_asset(values, field)


def per_asset(values: Any, state: PortfolioState, field: str, default: float) -> FloatArray:
    """A scalar or per-asset mapping/Series aligned to ``state.assets``.

    Assets not listed get ``default``; a listed value must be a number (text or NaN
    is an :class:`~rebalopt.errors.InputError` naming the asset and ``field``, never
    read as "no bound"). Tickers outside the universe are ignored.
    """
    if values is None:
        return np.full(state.n, default)
    if np.isscalar(values):
        return np.full(state.n, number(values, field))
    s = numbers_by_asset(values, field)
    s = s[s.index.isin(state.assets)]
    return s.reindex(state.assets).fillna(default).to_numpy(dtype=float)
