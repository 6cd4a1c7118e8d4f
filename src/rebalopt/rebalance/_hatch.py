"""OptimalRebalancer's cvxpy escape hatch: user cvxpy terms and to_cvxpy()."""

from __future__ import annotations

import time
from typing import Any

import cvxpy as cp
import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints import Slack
from rebalopt.costs import untradable_assets
from rebalopt.program import MatrixLayout
from rebalopt.program.cvxpy_backend import (
    ModelVariables,
    constant_variables,
)
from rebalopt.rebalance._clarabel import DirectProblem
from rebalopt.rebalance._problem import (
    convex_costs,
)
from rebalopt.state import PortfolioState

__all__: list[str] = []


class CvxpyHatch:
    """The cvxpy escape hatch and ``to_cvxpy`` (mixed into OptimalRebalancer)."""

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
        if self._direct is None:
            t0 = time.perf_counter()
            self._direct = DirectProblem(state, w_t, k, self.costs, self.constraints,
                                         self.alpha is not None)
            self.last_compile_time = time.perf_counter() - t0
        return self._direct


def _layout_for(state: PortfolioState) -> MatrixLayout:
    """A bare layout of ``state``'s universe (the named blocks' positions only)."""
    n = state.n
    return MatrixLayout(n=n, z=np.arange(n), t=np.arange(n, 2 * n), ncols=2 * n)
