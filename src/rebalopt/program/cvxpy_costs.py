"""The cvxpy face of declared cost terms: Parameters made once, values written per state.

:class:`CvxpyCost` turns the :class:`~rebalopt.program.terms.CostTerms` of one or
more cost models into cvxpy expressions over trade weights ``z`` (and their
epigraph ``t >= |z|``), on Parameters whose values :meth:`CvxpyCost.update` rewrites
for a new state without changing the expression (DPP: a re-solve never recompiles).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import cvxpy as cp
import numpy as np

from rebalopt.program.terms import CostTerms, combine_terms

__all__ = ["CvxpyCost", "cost_expression"]


class CvxpyCost:
    """Cost terms of several models as cvxpy expressions on shared Parameters.

    Parameters
    ----------
    terms
        The models' terms at the first state (fixes the structure).
    n
        Number of assets.
    """

    def __init__(self, terms: Sequence[CostTerms], n: int) -> None:
        self.n = n
        self.key = self.structure(terms)
        c = combine_terms(terms, n)
        if c.aux:
            raise TypeError("cost terms with auxiliary blocks have no cvxpy form here")
        self.linear = cp.Parameter(n, nonneg=True, name="cost_linear") \
            if c.linear is not None else None
        self.power = [(cp.Parameter(n, nonneg=True, name=f"cost_power_{k}"), p.exponent)
                      for k, p in enumerate(c.power)]
        self.quadratic = cp.Parameter(n, nonneg=True, name="cost_quadratic") \
            if c.quadratic is not None else None
        self.holding = cp.Parameter(n, nonneg=True, name="cost_short_holding") \
            if c.short_holding is not None else None
        self.update(terms)

    @staticmethod
    def structure(terms: Sequence[CostTerms]) -> Hashable:
        """What fixes the expressions' shape (a change needs a new object)."""
        return tuple(t.structure() for t in terms)

    def update(self, terms: Sequence[CostTerms], horizon: float = 1.0) -> None:
        """Write the values of ``terms`` (same structure) into the Parameters;
        ``horizon`` (years) multiplies the annual short-holding rates."""
        if self.structure(terms) != self.key:
            raise ValueError("cost terms changed structure: rebuild the program")
        c = combine_terms(terms, self.n)
        if self.linear is not None:
            self.linear.value = np.asarray(c.linear, dtype=float)
        for (par, _), p in zip(self.power, c.power):
            par.value = np.asarray(p.coef, dtype=float)
        if self.quadratic is not None:
            self.quadratic.value = np.asarray(c.quadratic, dtype=float)
        if self.holding is not None:
            self.holding.value = horizon * np.asarray(c.short_holding, dtype=float)

    def trading(self, z: cp.Expression, t: cp.Expression | None = None,
                epigraph: bool = False) -> tuple[cp.Expression, list[cp.Constraint]]:
        """The convex trading cost (fraction of equity) and the rows it needs.

        ``t`` is an epigraph of ``|z|`` shared with other terms (``cp.abs(z)`` when
        omitted). ``epigraph=True`` writes each power term through a variable
        ``u >= t ** p`` held by an exact 3-d power cone (faster and more reliable than
        ``cp.power`` in the solvers, DESIGN.md section 3)."""
        a = cp.abs(z) if t is None else t
        parts: list[cp.Expression] = []
        cons: list[cp.Constraint] = []
        if self.linear is not None:
            parts.append(self.linear @ a)
        for k, (par, p) in enumerate(self.power):
            if epigraph:
                u = cp.Variable(self.n, name=f"power_epigraph_{k}")
                cons.append(cp.PowCone3D(u, np.ones(self.n), a, 1.0 / p))
                parts.append(par @ u)
            else:
                parts.append(par @ cp.power(a, p))
        if self.quadratic is not None:
            parts.append(self.quadratic @ cp.square(z))
        expr = cp.sum(cp.hstack(parts)) if parts else cp.Constant(0.0)
        return expr, cons

    def holding_cost(self, w: cp.Expression) -> tuple[cp.Expression, list[cp.Constraint]]:
        """The short-holding cost over the horizon: ``rate * T @ h``, ``h >= max(-w, 0)``."""
        if self.holding is None:
            return cp.Constant(0.0), []
        h = cp.Variable(self.n, nonneg=True, name="short_position")
        return self.holding @ h, [h >= -w]


def cost_expression(terms: CostTerms | Sequence[CostTerms], z: cp.Expression,
                    abs_z: cp.Expression | None = None) -> cp.Expression:
    """The convex trading cost of ``terms`` at ``z`` as one cvxpy expression (a reader's
    view: Parameters made here, valued at these terms)."""
    seq = [terms] if isinstance(terms, CostTerms) else list(terms)
    n = int(z.shape[0]) if z.shape else 1
    expr, _ = CvxpyCost(seq, n).trading(z, abs_z)
    return expr
