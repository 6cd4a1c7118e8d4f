"""``to_cvxpy``: the program's matrices as a readable cvxpy Problem, with named variables.

The builder produces the conic program in Clarabel's standard form

.. math:: \\min_x\\ \\tfrac12 x^\\top P x + q^\\top x + c \\quad
          \\text{s.t.}\\quad b - A x \\in K

(``K`` a product of zero, nonnegative, second-order and 3-d power cones, described
by a list of :data:`ConeSpec`). :func:`to_cvxpy` writes exactly that program in cvxpy
and exposes the model's named variables (:class:`ModelVariables`: trades ``z``,
their epigraph ``t``, post-trade weights ``w``, post-trade cash ``cash``, the convex
trading ``cost``), so a user can read the model, add constraints and objective
terms over those names, and solve it with any cvxpy solver (SCS, a MIP solver...).
The objective is in the program's units (basis points of equity, ``scale``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.program.layout import MatrixLayout

__all__ = ["ConeSpec", "CvxpyConstraintFn", "CvxpyObjectiveFn", "ModelVariables",
           "cone_rows", "to_cvxpy"]

ConeSpec = tuple[str, int, float]
"""``(kind, count, alpha)``: ``count`` cones of ``kind`` (``"zero"`` / ``"nonneg"``: one
row each; ``"soc3"``: 3 rows each; ``"power"``: 3 rows each, exponent ``alpha``)."""


@dataclass(frozen=True)
class ModelVariables:
    """The named variables of the rebalancing model (cvxpy expressions).

    Attributes
    ----------
    z
        Trade weights (trade value / pre-trade equity), ``n``.
    t
        Epigraph of ``|z|``, ``n``.
    w
        Post-trade weights ``w0 + z``, ``n``.
    cash
        Post-trade cash weight after the convex trading cost (scalar).
    cost
        The convex trading cost, fraction of equity (scalar).
    """

    z: cp.Expression
    t: cp.Expression
    w: cp.Expression
    cash: cp.Expression
    cost: cp.Expression


CvxpyConstraintFn = Callable[[ModelVariables], "Sequence[cp.Constraint] | cp.Constraint"]
"""A user constraint over the named variables: returns cvxpy constraints."""

CvxpyObjectiveFn = Callable[[ModelVariables], cp.Expression]
"""A user objective term over the named variables: a convex expression, fraction of equity."""


def cone_rows(spec: Sequence[ConeSpec]) -> int:
    """Number of rows ``spec`` describes."""
    return sum(c * (1 if k in ("zero", "nonneg") else 3) for k, c, _ in spec)


def named_variables(x: cp.Expression, layout: MatrixLayout, w0: FloatArray,
                    c0: float) -> ModelVariables:
    """The named variables as expressions of the program's vector ``x``."""
    z = x[layout.z]
    cost = (layout.cost_vals @ x[layout.cost_cols] if layout.cost_cols.size
            else cp.Constant(0.0))
    return ModelVariables(z=z, t=x[layout.t], w=w0 + z, cash=c0 - cp.sum(z) - cost, cost=cost)


def constant_variables(z: FloatArray, layout: MatrixLayout, w0: FloatArray, c0: float,
                       cost: float) -> ModelVariables:
    """The named variables at a numeric point (to evaluate user terms in NumPy)."""
    z = np.asarray(z, dtype=float)
    return ModelVariables(z=cp.Constant(z), t=cp.Constant(np.abs(z)), w=cp.Constant(w0 + z),
                          cash=cp.Constant(c0 - float(z.sum()) - cost), cost=cp.Constant(cost))


def to_cvxpy(P: sp.spmatrix, q: FloatArray, A: sp.spmatrix, b: FloatArray,
             spec: Sequence[ConeSpec], layout: MatrixLayout, w0: FloatArray, c0: float,
             constant: float = 0.0, scale: float = 1.0,
             constraints: Sequence[CvxpyConstraintFn] = (),
             objective: Sequence[CvxpyObjectiveFn] = ()
             ) -> tuple[cp.Problem, cp.Variable, ModelVariables]:
    """The program as a cvxpy Problem over one vector ``x`` and its named variables.

    ``P`` holds the upper triangle (Clarabel's convention). ``constraints`` and
    ``objective`` are user callables over :class:`ModelVariables`; an objective term
    is a fraction of equity and enters multiplied by ``scale``.
    """
    A = sp.csr_matrix(A)
    x = cp.Variable(A.shape[1], name="x")
    cons: list[cp.Constraint] = []
    r = 0
    for kind, count, alpha in spec:
        m = count if kind in ("zero", "nonneg") else 3 * count
        if m == 0:
            continue
        blk, bb = A[r:r + m], b[r:r + m]
        slack = bb - blk @ x
        if kind == "zero":
            cons.append(slack == 0)
        elif kind == "nonneg":
            cons.append(slack >= 0)
        elif kind == "soc3":
            cons.append(cp.SOC(slack[0::3], cp.vstack([slack[1::3], slack[2::3]]), axis=0))
        elif kind == "power":
            cons.append(cp.PowCone3D(slack[0::3], slack[1::3], slack[2::3], alpha))
        else:
            raise ValueError(f"unknown cone kind {kind!r}")
        r += m
    if r != A.shape[0]:
        raise ValueError(f"cones describe {r} rows, A has {A.shape[0]}")
    P = sp.csc_matrix(P)
    full = P + P.T - sp.diags(P.diagonal())
    obj: list[cp.Expression] = [q @ x + constant]
    if full.nnz:
        off = full - sp.diags(full.diagonal())
        if off.nnz == 0:  # diagonal (the rebalancing program): a sum of squares
            d = full.diagonal()
            idx = np.flatnonzero(d)
            obj.append(0.5 * (d[idx] @ cp.square(x[idx])))
        else:
            obj.append(0.5 * cp.quad_form(x, cp.psd_wrap(full)))
    names = named_variables(x, layout, w0, c0)
    for fn in constraints:
        got = fn(names)
        cons += [got] if isinstance(got, cp.Constraint) else list(got)
    for fn in objective:
        obj.append(scale * fn(names))
    return cp.Problem(cp.Minimize(cp.sum(cp.hstack(obj))), cons), x, names
