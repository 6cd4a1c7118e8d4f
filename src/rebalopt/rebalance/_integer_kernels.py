"""The integer search's kernels: each constraint's declared one, or a generic one.

The kernel parts (per-asset rows, aggregates, sparse linear rows, the cash row) and
what a kernel answers are in :mod:`rebalopt.program.search`; each constraint declares
its own with :meth:`~rebalopt.constraints.Constraint.search_kernel`. A constraint that
declares none gets :class:`_Generic`, which evaluates it point by point through its own
``evaluate`` (correct but slow). Tests compare every kernel with ``evaluate``.
"""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints import Constraint, Point
from rebalopt.program.search import Composite, Kernel, PointArrays, pos
from rebalopt.state import PortfolioState

__all__ = ["Kernel", "PointArrays", "kernel_for"]


class _Generic(Kernel):
    """Any constraint, through its own ``evaluate`` at each candidate point (slow)."""

    exact = False

    def __init__(self, constraint: Constraint, state: PortfolioState, targets: FloatArray) -> None:
        self.constraint, self.state, self.targets = constraint, state, targets

    def _at(self, z: FloatArray, w: FloatArray, cash: float) -> float:
        lhs, rhs = self.constraint.evaluate(Point(z, w, cash, self.state, self.targets))
        return float(pos(np.atleast_1d(lhs) - np.atleast_1d(rhs)).sum())

    def total(self, P: PointArrays) -> float:
        return self._at(P.z, P.w, P.cash)

    def candidates(self, P, Z, W, CASH):  # type: ignore[no-untyped-def]
        out = np.empty(Z.shape)
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                z, w = P.z.copy(), P.w.copy()
                z[i], w[i] = Z[i, j], W[i, j]
                out[i, j] = self._at(z, w, float(CASH[i, j]))
        return out


def kernel_for(c: Constraint, state: PortfolioState, targets: FloatArray) -> Kernel:
    """The kernel constraint ``c`` declares, else the generic one."""
    parts = c.search_kernel(state, targets)
    if parts is None:
        return _Generic(c, state, targets)
    return Composite(c, list(parts))
