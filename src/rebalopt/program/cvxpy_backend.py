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
from rebalopt.program.builder import ConeSpec, ConicProgram
from rebalopt.program.layout import MatrixLayout, MatrixRows

__all__ = ["ConeSpec", "CvxpyConstraintFn", "CvxpyObjectiveFn", "ModelVariables",
           "ParametricProgram", "cone_rows", "rows_to_cvxpy", "to_cvxpy"]


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


def cone_constraints(slack: cp.Expression | Callable[[int, int], cp.Expression],
                     spec: Sequence[ConeSpec], nrows: int | None = None
                     ) -> list[cp.Constraint]:
    """``slack in K`` for the cones ``spec`` describes, in row order.

    ``slack`` is the whole vector ``b - A x`` or a function of a row range
    ``(start, stop)`` returning that block's slack (``nrows``: the row count)."""
    if callable(slack):
        part = slack
        total = nrows
    else:
        vec = slack

        def part(a: int, b: int) -> cp.Expression:
            return vec[a:b]

        total = int(vec.shape[0])
    cons: list[cp.Constraint] = []
    r = 0
    for kind, count, alpha in spec:
        m = count if kind in ("zero", "nonneg") else 3 * count
        if m == 0:
            continue
        sl = part(r, r + m)
        if kind == "zero":
            cons.append(sl == 0)
        elif kind == "nonneg":
            cons.append(sl >= 0)
        elif kind == "soc3":
            cons.append(cp.SOC(sl[0::3], cp.vstack([sl[1::3], sl[2::3]]), axis=0))
        elif kind == "power":
            cons.append(cp.PowCone3D(sl[0::3], sl[1::3], sl[2::3], alpha))
        else:
            raise ValueError(f"unknown cone kind {kind!r}")
        r += m
    if r != total:
        raise ValueError(f"cones describe {r} rows, the program has {total}")
    return cons


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
    cons = cone_constraints(b - A @ x, spec)
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


_CHUNK = 1000
"""Entries per elementwise product in :class:`ParametricProgram` (cvxpy's DPP
compile of ``multiply(parameter, x)`` grows with the square of its size)."""


class ParametricProgram:
    """A builder's program as a DPP cvxpy Problem: compiled once, values rewritten.

    The structure of a :class:`~rebalopt.program.builder.ConicProgram` (the positions
    of ``A``'s entries, the diagonal of ``P``, the cones) is written once. Numbers that
    may change between states of one structure (the program's ``varying`` masks: risk,
    frozen mask, cost rates, right-hand sides) are cvxpy Parameters, grouped so the
    DPP compile stays linear in their number (rows of ``A`` sharing one column set as
    a dense Parameter block, single entries in chunks of elementwise products). The
    other numbers are constants, checked on every :meth:`update`: one that changes
    makes the program rebuild itself with it as a Parameter (``rebuilds`` counts
    that). A re-solve with any cvxpy solver then only rewrites values.

    Attributes
    ----------
    z
        Trade weights (Variable, ``n``): the first ``n`` entries of ``x``.
    rest
        The other columns of ``x`` (Variable).
    problem
        The cvxpy Problem (objective in the program's units, basis points of equity).
    """

    def __init__(self, prog: ConicProgram, n: int) -> None:
        self.n = n
        self.rebuilds = 0

        def mask(m: np.ndarray | None, size: int) -> np.ndarray:
            return np.ones(size, dtype=bool) if m is None else np.asarray(m, dtype=bool).copy()

        self._build(prog, mask(prog.varying, prog.R.size), mask(prog.b_varying, prog.b.size),
                    mask(prog.q_varying, prog.nvar), bool(prog.P_varying))

    # ------------------------------------------------------------------ build
    def _build(self, prog: ConicProgram, a_var: np.ndarray, b_var: np.ndarray,
               q_var: np.ndarray, p_var: bool) -> None:
        n = self.n
        self.nvar = prog.nvar
        self.R = np.asarray(prog.R, dtype=np.int64).copy()
        self.C = np.asarray(prog.C, dtype=np.int64).copy()
        self.P_idx = np.asarray(prog.P_idx, dtype=np.int64).copy()
        self.cones = list(prog.cones)
        self._var = (a_var, b_var, q_var, p_var)
        V, b, q = (np.asarray(v, dtype=float) for v in (prog.V, prog.b, prog.q))
        # the constants, as compiled in (checked on update)
        self._fixed = (V[~a_var].copy(), b[~b_var].copy(), q[~q_var].copy(),
                       None if p_var else np.asarray(prog.P_val, dtype=float).copy())
        m = b.size
        self.z = cp.Variable(n, name="z")
        self.rest = cp.Variable(prog.nvar - n, name="x")
        x = cp.hstack([self.z, self.rest])
        fixed = np.flatnonzero(~a_var)
        A0 = sp.csr_matrix((V[fixed], (self.R[fixed], self.C[fixed])), shape=(m, prog.nvar))
        self._params: list[tuple[cp.Parameter, str, np.ndarray]] = []  # (par, vector, ids)
        vary = np.flatnonzero(a_var)
        vary = vary[np.argsort(self.R[vary], kind="stable")]
        bvary = np.flatnonzero(b_var)

        def block(r0: int, r1: int) -> cp.Expression:
            """``b - A x`` on rows ``r0 .. r1 - 1``; each cone block has its own
            Parameters, so cvxpy's cone formatting of one never sees the others'."""
            Ax = A0[r0:r1] @ x
            lo, hi = np.searchsorted(self.R[vary], [r0, r1])
            if hi > lo:
                Ax = Ax + self._varying_rows(vary[lo:hi], x, r0, r1 - r0)
            bb = np.where(b_var[r0:r1], 0.0, b[r0:r1])
            lo, hi = np.searchsorted(bvary, [r0, r1])
            if hi > lo:
                ids = bvary[lo:hi]
                par = cp.Parameter(ids.size, name="b")
                self._params.append((par, "b", ids))
                S = sp.csr_matrix((np.ones(ids.size), (ids - r0, np.arange(ids.size))),
                                  shape=(r1 - r0, ids.size))
                return bb + S @ par - Ax
            return bb - Ax

        cons = cone_constraints(block, self.cones, m)
        qv = np.flatnonzero(q_var)
        obj: cp.Expression = np.where(q_var, 0.0, q) @ x
        if qv.size:
            par = cp.Parameter(qv.size, name="q")
            self._params.append((par, "q", qv))
            obj = obj + par @ x[qv]
        self.const = cp.Parameter(name="objective_constant")
        obj = obj + self.const
        if self.P_idx.size:
            if p_var:
                par = cp.Parameter(self.P_idx.size, nonneg=True, name="P_diagonal")
                self._params.append((par, "P", np.arange(self.P_idx.size)))
                obj = obj + 0.5 * (par @ cp.square(x[self.P_idx]))
            else:
                obj = obj + 0.5 * (np.asarray(prog.P_val, dtype=float)
                                   @ cp.square(x[self.P_idx]))
        self.problem = cp.Problem(cp.Minimize(obj), cons)
        self._write(prog)

    def _varying_rows(self, ent_all: np.ndarray, x: cp.Expression, r0: int,
                      m: int) -> cp.Expression:
        """The varying entries ``ent_all`` of ``A`` (sorted by row, rows ``r0 .. r0 + m
        - 1``) as Parameter products: rows sharing one column set as a dense block,
        single entries in chunks of elementwise products."""
        rows, starts = np.unique(self.R[ent_all], return_index=True)
        ends = np.r_[starts[1:], ent_all.size]
        single: list[int] = []
        blocks: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for r, a, e in zip(rows, starts, ends):
            ent = ent_all[a:e]
            if ent.size == 1:
                single.append(int(ent[0]))
            else:
                blocks.setdefault(tuple(self.C[ent]), []).append((int(r), ent))
        parts: list[cp.Expression] = []
        for cols, members in blocks.items():
            rr = np.array([r for r, _ in members], dtype=np.int64) - r0
            ent = np.stack([e for _, e in members])  # (rows, len(cols)) entry ids
            par = cp.Parameter(ent.shape, name="A_block")
            self._params.append((par, "A", ent))
            S = sp.csr_matrix((np.ones(rr.size), (rr, np.arange(rr.size))), shape=(m, rr.size))
            parts.append(S @ (par @ x[np.asarray(cols, dtype=np.int64)]))
        ids = np.asarray(single, dtype=np.int64)
        for k in range(0, ids.size, _CHUNK):
            ent = ids[k:k + _CHUNK]
            par = cp.Parameter(ent.size, name="A_entries")
            self._params.append((par, "A", ent))
            S = sp.csr_matrix((np.ones(ent.size), (self.R[ent] - r0, np.arange(ent.size))),
                              shape=(m, ent.size))
            parts.append(S @ cp.multiply(par, x[self.C[ent]]))
        return cp.sum(parts) if len(parts) > 1 else parts[0]

    # ----------------------------------------------------------------- values
    def matches(self, prog: ConicProgram) -> bool:
        """Whether ``prog`` has this program's structure (same entries, same cones)."""
        return (prog.nvar == self.nvar and prog.cones == self.cones
                and np.array_equal(prog.R, self.R) and np.array_equal(prog.C, self.C)
                and np.array_equal(prog.P_idx, self.P_idx))

    def update(self, prog: ConicProgram) -> bool:
        """Write ``prog``'s values (same structure, :meth:`matches`). Returns whether
        the cvxpy program had to be rebuilt (a number compiled in as a constant changed)."""
        if not self.matches(prog):
            raise ValueError("the program changed structure: build a new ParametricProgram")
        a_var, b_var, q_var, p_var = (v.copy() if isinstance(v, np.ndarray) else v
                                      for v in self._var)
        V, b, q = (np.asarray(v, dtype=float) for v in (prog.V, prog.b, prog.q))
        fa, fb, fq, fp = self._fixed
        moved = False
        for vec, var, old in ((V, a_var, fa), (b, b_var, fb), (q, q_var, fq)):
            idx = np.flatnonzero(~var)
            changed = vec[idx] != old
            if changed.any():
                var[idx[changed]] = True
                moved = True
        if fp is not None and not np.array_equal(np.asarray(prog.P_val, dtype=float), fp):
            p_var, moved = True, True
        if moved:
            self.rebuilds += 1
            self._build(prog, a_var, b_var, q_var, p_var)
            return True
        self._write(prog)
        return False

    def _write(self, prog: ConicProgram) -> None:
        src = {"A": np.asarray(prog.V, dtype=float), "b": np.asarray(prog.b, dtype=float),
               "q": np.asarray(prog.q, dtype=float), "P": np.asarray(prog.P_val, dtype=float)}
        for par, which, ids in self._params:
            par.value = src[which][ids]
        self.const.value = float(prog.const)

    def x_value(self) -> FloatArray | None:
        """The solution vector ``x`` (``None`` when the solver left none)."""
        if self.z.value is None or (self.rest.size and self.rest.value is None):
            return None
        rest = self.rest.value if self.rest.size else np.zeros(0)
        return np.concatenate([np.asarray(self.z.value, dtype=float),
                               np.asarray(rest, dtype=float)])


def rows_to_cvxpy(blocks: Sequence[MatrixRows], columns: cp.Expression,
                  index: Callable[[np.ndarray], np.ndarray]
                  ) -> list[tuple[cp.Expression, FloatArray, bool]]:
    """Declared rows written over cvxpy expressions: ``(lhs, rhs, main)`` per block.

    ``columns`` is a vector expression holding every block a row may name, and
    ``index`` maps a layout column (real or virtual, see
    :class:`~rebalopt.program.MatrixLayout`) to its position in ``columns``. The
    caller decides what ``w``, ``cash`` and ``cost`` are (for example ``w0 + z`` and
    the integer program's full cost)."""
    out = []
    size = int(columns.shape[0])
    for b in blocks:
        if b.m == 0:
            continue
        cols = index(np.asarray(b.col, dtype=np.int64))
        M = sp.csr_matrix((np.asarray(b.val, dtype=float),
                           (np.asarray(b.row, dtype=np.int64), cols)), shape=(b.m, size))
        out.append((M @ columns, np.asarray(b.b, dtype=float), bool(b.main)))
    return out
