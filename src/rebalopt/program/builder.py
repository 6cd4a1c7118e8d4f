"""The one program builder: declared cost terms and constraint rows -> a conic program.

.. math::

    \\min_x\\ \\tfrac12 x^\\top P x + q^\\top x + c \\quad \\text{s.t.}\\quad Ax + s = b,
    \\ s \\in K

(Clarabel's standard form; ``K`` a product of zero, nonnegative, 3-d power and
second-order cones, :meth:`ProgramBuilder.cone_spec`), objective in basis points of
equity (:data:`SCALE`), ``sqrt(SCALE*gamma*T/2)`` folded into the risk root, with
``x = [z, t, u_1.., (v_1..), h, y, e, aux.., slack..]``:

* ``z`` trade weights (``n``), ``t >= |z|`` (``n``, two nonnegative rows per asset);
* ``u_m >= t^p`` per declared power exponent: ``n`` 3-d power cones
  ``(u_i, 1, t_i) in PowerConeT(1/p)`` (``impact="power"``, default) or, for
  ``p = 3/2``, two rotated second-order cones per asset through ``v_i``
  (``impact="soc"``);
* ``h >= max(-w, 0)`` when a cost declares a short-holding rate;
* ``y = G_sc' (z + d0)`` (``k`` equality rows), the factor part of the risk, and
  ``e = s_sc (z + d0)`` (``risk_form="aux"``) or ``P = diag(2 s_sc^2)`` on ``z``;
* ``z_i = 0`` (equality rows) for each *frozen* asset, one a cost model cannot
  price: one row per frozen asset, or (``all_frozen_rows``) ``f_i z_i = 0`` for every
  asset with ``f`` the 0/1 mask, so a parametric backend keeps one shape;
* the cost models' auxiliary blocks (:class:`~rebalopt.program.AuxTerm`) and their rows;
* every constraint's rows (:meth:`~rebalopt.constraints.Constraint.rows`, the one
  declaration of a constraint) resolved through the :class:`MatrixLayout`, and a slack
  column per soft constraint (``lhs - v <= rhs``, ``v >= 0``, ``penalty * v`` in the
  objective).

The *elastic* program (``elastic=True``) diagnoses infeasibility: every constraint
may give way by ``0 <= v_c <= cap_c`` (``v_c`` the worst main row's violation, in the
constraint's units), the objective is ``SCALE * sum(v**2) + 1e-6 * sum(t)`` (no cost,
no risk), which spreads the violation over every constraint taking part in a conflict.

The structure (column layout, row blocks, cones) is fixed when the builder is made;
:meth:`ProgramBuilder.program` recomputes the values from a state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.program.layout import MatrixLayout, MatrixRows
from rebalopt.program.terms import CostTerms, combine_terms

if TYPE_CHECKING:  # pragma: no cover
    from rebalopt.constraints._base import Constraint
    from rebalopt.costs import CostModel
    from rebalopt.state import PortfolioState

__all__ = ["ELASTIC_CAP", "SCALE", "ConeSpec", "ConicProgram", "ProgramBuilder",
           "append_abs_rows", "append_constraint_rows", "append_holding_rows",
           "append_power_rows", "append_risk_rows", "append_slack_floor", "cost_columns",
           "cost_exponents"]

SCALE = 1e4
"""The program's objective is in basis points of equity (fractions x 1e4)."""

ELASTIC_CAP = 1e3
"""Upper bound on an elastic slack that is allowed to move (constraint units)."""

ConeSpec = tuple[str, int, float]
"""``(kind, count, alpha)``: ``count`` cones of ``kind`` (``"zero"`` / ``"nonneg"``: one
row each; ``"soc3"``: 3 rows each; ``"power"``: 3 rows each, exponent ``alpha``)."""


def cost_exponents(c: CostTerms) -> list[float]:
    """The power exponents of the combined terms ``c``, one epigraph ``u >= t ** p``
    each (a quadratic term is exponent 2)."""
    exps = [p.exponent for p in c.power]
    if c.quadratic is not None and 2.0 not in exps:
        exps.append(2.0)
    return exps


def cost_columns(c: CostTerms, n: int, t: np.ndarray,
                 impact: Sequence[tuple[float, np.ndarray]]
                 ) -> tuple[list[np.ndarray], list[FloatArray]]:
    """The convex trading cost of ``c`` (fraction of equity) as ``vals @ x[cols]``: the
    linear rate on ``t >= |z|`` and each power coefficient on its epigraph columns
    (``impact``: ``(exponent, u)`` pairs, :func:`cost_exponents` order)."""
    coef = {p.exponent: p.coef for p in c.power}
    if c.quadratic is not None:
        coef[2.0] = coef.get(2.0, 0.0) + c.quadratic
    cols = [t]
    vals = [c.linear if c.linear is not None else np.zeros(n)]
    for p, u in impact:
        cols.append(u)
        vals.append(np.asarray(coef[p], dtype=float))
    return cols, vals


def _flags(F: list[np.ndarray] | None, count: int, varies: bool) -> None:
    if F is not None:
        F.append(np.full(count, varies))


def append_risk_rows(z: np.ndarray, y: np.ndarray, e: np.ndarray, G_sc: FloatArray,
                     s_sc: FloatArray, d0: FloatArray, r0: int, R: list[np.ndarray],
                     C: list[np.ndarray], V: list[np.ndarray], B: list[np.ndarray],
                     F: list[np.ndarray] | None = None,
                     BF: list[np.ndarray] | None = None) -> int:
    """The risk's definition rows (zero cone) from row ``r0``: ``y - G_sc' z = G_sc' d0``
    (``k`` rows, when ``y`` has columns) and ``e - s_sc z = s_sc d0`` (``n`` rows, when
    ``e`` has columns), with ``z + d0`` the distance to the target; returns the next
    row. ``F`` / ``BF`` as in :func:`append_constraint_rows`."""
    n, k = z.size, y.size
    if k:
        R += [r0 + np.repeat(np.arange(k), n), r0 + np.arange(k)]
        C += [np.tile(z, k), y]
        V += [-G_sc.T.ravel(), np.ones(k)]
        _flags(F, n * k, True)
        _flags(F, k, False)
        B.append(G_sc.T @ d0)
        _flags(BF, k, True)
        r0 += k
    if e.size:
        R += [r0 + np.arange(n), r0 + np.arange(n)]
        C += [e, z]
        V += [np.ones(n), -s_sc]
        _flags(F, n, False)
        _flags(F, n, True)
        B.append(s_sc * d0)
        _flags(BF, n, True)
        r0 += n
    return r0


def append_abs_rows(z: np.ndarray, t: np.ndarray, r0: int, R: list[np.ndarray],
                    C: list[np.ndarray], V: list[np.ndarray], B: list[np.ndarray],
                    z_prev: np.ndarray | None = None, F: list[np.ndarray] | None = None,
                    BF: list[np.ndarray] | None = None) -> int:
    """``t >= |z - z_prev|`` (``z_prev``: a period view's previous cumulative trades;
    ``None``: ``t >= |z|``) as ``2 n`` nonnegative rows from ``r0``; returns the next
    row."""
    n = z.size
    ar = np.arange(n)
    R += [r0 + ar, r0 + ar, r0 + n + ar, r0 + n + ar]
    C += [z, t, z, t]
    V += [np.ones(n), -np.ones(n), -np.ones(n), -np.ones(n)]
    _flags(F, 4 * n, False)
    if z_prev is not None:
        R += [r0 + ar, r0 + n + ar]
        C += [z_prev, z_prev]
        V += [-np.ones(n), np.ones(n)]
        _flags(F, 2 * n, False)
    B.append(np.zeros(2 * n))
    _flags(BF, 2 * n, False)
    return r0 + 2 * n


def append_holding_rows(z: np.ndarray, h: np.ndarray, w0: FloatArray, r0: int,
                        R: list[np.ndarray], C: list[np.ndarray], V: list[np.ndarray],
                        B: list[np.ndarray], F: list[np.ndarray] | None = None,
                        BF: list[np.ndarray] | None = None) -> int:
    """``h >= max(-w, 0)`` with ``w = w0 + z``: ``-z - h <= w0``, ``-h <= 0`` (``2 n``
    nonnegative rows from ``r0``); returns the next row."""
    n = z.size
    ar = np.arange(n)
    R += [r0 + ar, r0 + ar, r0 + n + ar]
    C += [z, h, h]
    V += [-np.ones(n), -np.ones(n), -np.ones(n)]
    _flags(F, 3 * n, False)
    B += [np.asarray(w0, dtype=float), np.zeros(n)]
    _flags(BF, n, True)
    _flags(BF, n, False)
    return r0 + 2 * n


def append_power_rows(u: np.ndarray, t: np.ndarray, r0: int, R: list[np.ndarray],
                      C: list[np.ndarray], V: list[np.ndarray], B: list[np.ndarray],
                      F: list[np.ndarray] | None = None,
                      BF: list[np.ndarray] | None = None) -> int:
    """``(u_i, 1, t_i)`` in a 3-d power cone per asset (``u >= t ** p`` for the cone's
    ``alpha = 1/p``), ``3 n`` rows from ``r0``; returns the next row."""
    n = u.size
    base = r0 + 3 * np.arange(n)
    R += [base, base + 2]
    C += [u, t]
    V += [-np.ones(n), -np.ones(n)]
    _flags(F, 2 * n, False)
    b = np.zeros(3 * n)
    b[1::3] = 1.0
    B.append(b)
    _flags(BF, b.size, False)
    return r0 + 3 * n


def append_constraint_rows(constraints: Sequence[Constraint],
                           slack_cols: Sequence[int | None],
                           row_counts: Sequence[Sequence[int]], L: MatrixLayout,
                           state: PortfolioState, targets: FloatArray, w0: FloatArray,
                           c0: float, r0: int, R: list[np.ndarray], C: list[np.ndarray],
                           V: list[np.ndarray], B: list[np.ndarray],
                           F: list[np.ndarray] | None = None,
                           BF: list[np.ndarray] | None = None) -> tuple[int, list[int]]:
    """Every constraint's rows resolved through ``L`` (:meth:`MatrixLayout.resolve`),
    appended from row ``r0``, with ``-v`` on the main rows of a constraint that has a
    slack column (``lhs - v <= rhs``); returns the next row and the slack columns used.

    ``row_counts`` are the block sizes fixed when the program was sized (a change is a
    ``RuntimeError``: the structure changed without a recompile). ``F`` / ``BF``
    (optional) collect which entries of ``A`` / ``b`` may vary between states."""
    slack_rows: list[int] = []
    for c, sc, counts in zip(constraints, slack_cols, row_counts):
        blocks = c.rows(L, state, targets) or []
        if [b.m for b in blocks] != list(counts):
            raise RuntimeError(f"{c.name}: rows changed shape without a recompile")
        for b in blocks:
            start = r0
            r0 = ProgramBuilder._append(L, b, w0, c0, r0, R, C, V, B, F)
            if BF is not None:
                BF.append(np.ones(b.m, dtype=bool))
            if sc is not None and b.main:  # lhs - v <= rhs
                R.append(start + np.arange(b.m))
                C.append(np.full(b.m, sc))
                V.append(-np.ones(b.m))
                if F is not None:
                    F.append(np.zeros(b.m, dtype=bool))
        if sc is not None:
            slack_rows.append(sc)
    return r0, slack_rows


def append_slack_floor(slack_rows: Sequence[int], r0: int, R: list[np.ndarray],
                       C: list[np.ndarray], V: list[np.ndarray], B: list[np.ndarray],
                       F: list[np.ndarray] | None = None,
                       BF: list[np.ndarray] | None = None) -> int:
    """The rows ``v >= 0`` (``-v <= 0``) of the slack columns, from row ``r0``; returns
    the next row."""
    m = len(slack_rows)
    R.append(r0 + np.arange(m))
    C.append(np.asarray(slack_rows, dtype=int))
    V.append(-np.ones(m))
    B.append(np.zeros(m))
    if F is not None:
        F.append(np.zeros(m, dtype=bool))
    if BF is not None:
        BF.append(np.zeros(m, dtype=bool))
    return r0 + m


@dataclass(frozen=True)
class ConicProgram:
    """One state's program: ``P`` diagonal (``P_idx``, ``P_val``), ``q``, ``A`` in
    coordinates (``R``, ``C``, ``V``; duplicates add up), ``b``, the objective constant
    (basis points) and the cones (:data:`ConeSpec`, in row order)."""

    nvar: int
    P_idx: np.ndarray
    P_val: FloatArray
    q: FloatArray
    R: np.ndarray
    C: np.ndarray
    V: FloatArray
    b: FloatArray
    const: float
    cones: list[ConeSpec]
    varying: np.ndarray | None = None
    """Per entry of ``A``: whether its value may change between states of the same
    structure (risk, frozen mask, cost rates); ``None``: all may."""
    b_varying: np.ndarray | None = None
    """Per entry of ``b``: whether it may change (``None``: all may)."""
    q_varying: np.ndarray | None = None
    """Per entry of ``q``: whether it may change (``None``: all may)."""
    P_varying: bool = True
    """Whether ``P``'s values may change."""

    @property
    def P(self) -> sp.csc_matrix:
        """``P`` as a sparse matrix (upper triangle: it is diagonal)."""
        return sp.csc_matrix((self.P_val, (self.P_idx, self.P_idx)),
                             shape=(self.nvar, self.nvar))

    @property
    def A(self) -> sp.csc_matrix:
        """``A`` as a sparse matrix."""
        return sp.csc_matrix((self.V, (self.R, self.C)), shape=(self.b.size, self.nvar))


class ProgramBuilder:
    """The program for one universe and one set of terms (module docstring).

    Parameters
    ----------
    state, targets
        Fix the universe and the constraints' structure.
    k
        Number of risk factor columns.
    costs, constraints
        The cost models (their :meth:`terms`) and constraints (their :meth:`rows`).
    has_alpha
        Whether the objective has an alpha term.
    impact
        ``"power"`` (3-d power cones) or ``"soc"`` (two rotated second-order cones
        per asset; only for exponent 3/2).
    risk_form
        ``"aux"`` (specific risk through ``e``) or ``"diag"`` (on ``P``).
    elastic
        Build the elastic program (module docstring) instead of the normal one.
    """

    def __init__(self, state: PortfolioState, targets: FloatArray, k: int,
                 costs: Sequence[CostModel], constraints: Sequence[Constraint],
                 has_alpha: bool, impact: str = "power", risk_form: str = "aux",
                 elastic: bool = False) -> None:
        if impact not in ("power", "soc"):
            raise ValueError(f"impact must be 'power' or 'soc', got {impact!r}")
        if risk_form not in ("aux", "diag"):
            raise ValueError(f"risk_form must be 'aux' or 'diag', got {risk_form!r}")
        n = state.n
        self.n, self.k = n, k
        self.costs, self.constraints = list(costs), list(constraints)
        self.has_alpha = has_alpha
        self.elastic = elastic
        col = 2 * n
        # the cost models' declared terms fix the cost's structure: one epigraph
        # u_k >= t ** p_k per power exponent (a quadratic term is exponent 2), a
        # short-position block h >= max(-w, 0) when a model holds shorts at a rate
        terms = self._terms(state)
        self.term_key = tuple(t.structure() for t in terms)
        c = combine_terms(terms, n)
        exps = cost_exponents(c)
        self.impact: list[tuple[float, np.ndarray, np.ndarray | None]] = []
        for p in exps:
            u = np.arange(col, col + n)
            col += n
            v = None
            if impact == "soc" and p == 1.5:
                v = np.arange(col, col + n)
                col += n
            self.impact.append((p, u, v))
        self.h = np.zeros(0, dtype=int)
        if c.short_holding is not None:
            self.h = np.arange(col, col + n)
            col += n
        self.y = np.arange(col, col + k)
        col += k
        # specific risk: e = s_sc * (z + d0) with P = 2I ("aux"), or P = diag(2 s_sc^2) on z
        self.e = np.arange(col, col + n) if risk_form == "aux" else np.zeros(0, dtype=int)
        col += self.e.size
        self.nzero = k + self.e.size
        self.layout = MatrixLayout(n=n, z=np.arange(n), t=np.arange(n, 2 * n), ncols=col)
        # cost models' own variables (tax lots...): a block, its rows, a linear cost
        self.aux_cols = [self.layout.aux(a.key, a.size) for tm in terms for a in tm.aux]
        self._set_cost(state, terms)
        self._aux_row_counts = [[r.m for r in a.rows(self.layout)] for a in self._aux_terms]
        # constraint rows once: allocates the auxiliary columns, fixes the row counts
        blocks = [c.rows(self.layout, state, targets) for c in self.constraints]
        self.slack_cols: list[int | None] = []
        for c in self.constraints:
            if c.soft or elastic:
                self.slack_cols.append(self.layout.ncols)
                self.layout.ncols += 1
            else:
                self.slack_cols.append(None)
        self.layout.frozen = True
        self.nvar = self.layout.ncols
        self._row_counts = [[b.m for b in bl or []] for bl in blocks]

    # ---------------------------------------------------------------- pieces
    def _terms(self, state: PortfolioState) -> list[CostTerms]:
        return [m.terms(state) for m in self.costs]

    def _set_cost(self, state: PortfolioState, terms: Sequence[CostTerms] | None = None
                  ) -> CostTerms:
        """The convex trading cost as ``cost_vals @ x[cost_cols]`` for this state;
        returns the models' terms combined."""
        terms = self._terms(state) if terms is None else terms
        if tuple(t.structure() for t in terms) != self.term_key:
            raise RuntimeError("cost terms changed structure without a recompile")
        c = combine_terms(terms, self.n)
        cols, vals = cost_columns(c, self.n, self.layout.t,
                                  [(p, u) for p, u, _ in self.impact])
        self._aux_terms = list(c.aux)
        for a, ac in zip(self._aux_terms, self.aux_cols):
            if a.paid_from_cash:
                cols.append(ac)
                vals.append(np.broadcast_to(np.asarray(a.cost, dtype=float), ac.shape))
        self.layout.cost_cols = np.concatenate(cols)
        self.layout.cost_vals = np.concatenate(vals)
        return c

    @property
    def n_slack(self) -> int:
        """Number of slack columns (soft constraints; every constraint when elastic)."""
        return sum(1 for c in self.slack_cols if c is not None)

    def _n_nonneg(self) -> int:
        rows = 2 * self.n + 2 * self.h.size + sum(sum(c) for c in self._row_counts)
        rows += sum(sum(c) for c in self._aux_row_counts)
        return rows + self.n_slack * (2 if self.elastic else 1)

    def cone_spec(self, nfrozen: int = 0) -> list[ConeSpec]:
        """The cones, in row order, as ``(kind, count, alpha)``; ``nfrozen`` frozen rows."""
        spec: list[ConeSpec] = []
        if self.nzero + nfrozen:
            spec.append(("zero", self.nzero + nfrozen, 0.0))
        spec.append(("nonneg", self._n_nonneg(), 0.0))
        for p, _, v in self.impact:
            if v is None:
                spec.append(("power", self.n, 1.0 / p))
            else:
                spec.append(("soc3", 2 * self.n, 0.0))
        return spec

    # --------------------------------------------------------------- program
    def program(self, state: PortfolioState, targets: FloatArray, G: np.ndarray,
                s: FloatArray, risk_aversion: float, horizon: float,
                alpha: FloatArray | None, frozen: np.ndarray | None = None,
                cash_reserve: float = 0.0, terms: Sequence[CostTerms] | None = None,
                all_frozen_rows: bool = False, caps: FloatArray | None = None,
                varying: bool = False) -> ConicProgram:
        """This state's values of the program.

        ``frozen`` (boolean mask) holds those assets at ``z = 0``: one equality row per
        frozen asset after the other equality rows, or, with ``all_frozen_rows``, a row
        ``f_i z_i = 0`` for every asset (the shape then never depends on the mask).
        ``cash_reserve`` is held back from the spendable cash (fees). ``caps`` (elastic
        only) is each constraint's largest slack (default :data:`ELASTIC_CAP`).
        ``varying`` also marks the numbers that may change between states (the
        program's ``varying`` masks, for a parametric backend; else ``None``)."""
        n, k, L = self.n, self.k, self.layout
        w0 = state.weights
        d0 = w0 - targets
        root = np.sqrt(SCALE * 0.5 * risk_aversion * horizon)
        s_sc = root * np.asarray(s, dtype=float)
        sd0 = s_sc * d0
        ct = self._set_cost(state, terms)
        # ---- objective
        aux = self.e.size > 0
        q = np.zeros(self.nvar)
        q_var = np.zeros(self.nvar, dtype=bool)  # entries of q that may change
        if self.elastic:  # SCALE * sum(v^2) + 1e-6 * sum(t): no cost, no risk
            pi = np.array([sc for sc in self.slack_cols if sc is not None], dtype=int)
            pd_ = np.full(pi.size, 2.0 * SCALE)
            q[L.t] = 1e-6
            const = 0.0
        else:
            pd_ = np.concatenate([np.full(n, 2.0) if aux else 2.0 * s_sc ** 2,
                                  np.full(k, 2.0)])
            pi = np.concatenate([self.e if aux else L.z, self.y])
            q_var[L.z] = not aux or self.has_alpha
            q_var[L.cost_cols] = True
            q_var[self.h] = True
            for ac in self.aux_cols:
                q_var[ac] = True
            q_var[[sc for sc in self.slack_cols if sc is not None]] = True
            if not aux:
                q[L.z] = 2.0 * s_sc * sd0
            np.add.at(q, L.cost_cols, SCALE * L.cost_vals)
            if self.h.size:  # short holding over the horizon
                q[self.h] += SCALE * horizon * np.asarray(ct.short_holding, dtype=float)
            for a, ac in zip(self._aux_terms, self.aux_cols):  # paid from cash: in cost_vals
                if not a.paid_from_cash:
                    q[ac] += SCALE * np.asarray(a.cost, dtype=float)
            const = 0.0 if aux else float(sd0 @ sd0)
            if self.has_alpha:
                a = SCALE * np.asarray(alpha, dtype=float)
                q[L.z] -= a
                const -= float(a @ w0)
            for c, sc in zip(self.constraints, self.slack_cols):
                if sc is not None:
                    q[sc] = SCALE * float(c.penalty)
        # ---- rows
        R: list[np.ndarray] = []
        C: list[np.ndarray] = []
        V: list[np.ndarray] = []
        B: list[np.ndarray] = []
        F: list[np.ndarray] = []  # entries whose value may change with the state
        BF: list[np.ndarray] = []  # right-hand sides that may change

        def flag(count: int, varies: bool) -> None:
            if varying:
                F.append(np.full(count, varies))

        def bflag(count: int, varies: bool) -> None:
            if varying:
                BF.append(np.full(count, varies))

        G_sc = root * np.asarray(G, dtype=float)
        r0 = append_risk_rows(L.z, self.y, self.e, G_sc, s_sc, d0, 0, R, C, V, B,
                              F if varying else None, BF if varying else None)
        mask = np.zeros(n, dtype=bool) if frozen is None else np.asarray(frozen, dtype=bool)
        if all_frozen_rows:  # f_i z_i = 0 for every asset
            R.append(r0 + np.arange(n))
            C.append(L.z)
            V.append(mask.astype(float))
            flag(n, True)
            B.append(np.zeros(n))
            bflag(n, False)
            r0 += n
        else:
            fz = np.flatnonzero(mask)
            if fz.size:  # z_i = 0 for a frozen asset
                R.append(r0 + np.arange(fz.size))
                C.append(L.z[fz])
                V.append(np.ones(fz.size))
                flag(fz.size, True)
                B.append(np.zeros(fz.size))
                bflag(fz.size, False)
                r0 += fz.size
        r0 = append_abs_rows(L.z, L.t, r0, R, C, V, B, None, F if varying else None,
                             BF if varying else None)
        if self.h.size:
            r0 = append_holding_rows(L.z, self.h, w0, r0, R, C, V, B,
                                     F if varying else None, BF if varying else None)
        c0 = state.cash_weight - cash_reserve  # cash held back (fees) is not spendable
        for a, counts in zip(self._aux_terms, self._aux_row_counts):  # always hard
            blocks = list(a.rows(L))
            if [b.m for b in blocks] != counts:
                raise RuntimeError(f"cost block {a.key!r}: rows changed shape without a "
                                   "recompile")
            for b in blocks:
                r0 = self._append(L, b, w0, c0, r0, R, C, V, B, F if varying else None)
                bflag(b.m, True)
        r0, slack_rows = append_constraint_rows(
            self.constraints, self.slack_cols, self._row_counts, L, state, targets, w0, c0,
            r0, R, C, V, B, F if varying else None, BF if varying else None)
        r0 = append_slack_floor(slack_rows, r0, R, C, V, B, F if varying else None,
                                BF if varying else None)
        if self.elastic:  # v <= cap
            cap = (np.full(len(slack_rows), ELASTIC_CAP) if caps is None
                   else np.asarray(caps, dtype=float))
            R.append(r0 + np.arange(len(slack_rows)))
            C.append(np.asarray(slack_rows, dtype=int))
            V.append(np.ones(len(slack_rows)))
            flag(len(slack_rows), False)
            B.append(cap)
            bflag(cap.size, True)
            r0 += len(slack_rows)
        for _, u, v in self.impact:
            if v is None:  # (u_i, 1, t_i) in the power cone
                r0 = append_power_rows(u, L.t, r0, R, C, V, B, F if varying else None,
                                       BF if varying else None)
            else:  # (u+v, 2t, u-v) in SOC(3); (t+1, 2v, t-1) in SOC(3)
                base = r0 + 6 * np.arange(n)
                R += [base, base, base + 1, base + 2, base + 2,
                      base + 3, base + 4, base + 5]
                C += [u, v, L.t, u, v, L.t, v, L.t]
                V += [-np.ones(n), -np.ones(n), -2.0 * np.ones(n), -np.ones(n), np.ones(n),
                      -np.ones(n), -2.0 * np.ones(n), -np.ones(n)]
                flag(8 * n, False)
                b = np.zeros(6 * n)
                b[3::6] = 1.0
                b[5::6] = -1.0
                B.append(b)
                bflag(b.size, False)
                r0 += 6 * n
        nf = n if all_frozen_rows else int(np.count_nonzero(mask))
        return ConicProgram(self.nvar, pi, pd_, q, np.concatenate(R), np.concatenate(C),
                            np.concatenate(V), np.concatenate(B), const, self.cone_spec(nf),
                            np.concatenate(F) if varying else None,
                            np.concatenate(BF) if varying else None,
                            q_var if varying else None, not self.elastic and not aux)

    @staticmethod
    def _append(L: MatrixLayout, rows: MatrixRows, w0: FloatArray, c0: float, r0: int,
                R: list[np.ndarray], C: list[np.ndarray], V: list[np.ndarray],
                B: list[np.ndarray], F: list[np.ndarray] | None) -> int:
        """Append ``rows`` resolved through ``L`` at row ``r0``; returns the next row.

        Entries that ``cash`` or ``cost`` resolve to (the cost rates) may vary with the
        state; a declaration's own coefficients are taken as fixed (a parametric
        backend checks that and rebuilds when one changes)."""
        virtual_cost = bool(np.any(np.asarray(rows.col) < -L.n))
        b = L.resolve(rows, w0, c0)
        col = np.asarray(b.col, dtype=int)
        R.append(r0 + np.asarray(b.row, dtype=int))
        C.append(col)
        V.append(np.asarray(b.val, dtype=float))
        B.append(np.asarray(b.b, dtype=float))
        if F is not None:
            F.append(np.isin(col, L.cost_cols) if virtual_cost
                     else np.zeros(col.size, dtype=bool))
        return r0 + b.m

    def matrices(self, state: PortfolioState, targets: FloatArray, G: np.ndarray,
                 s: FloatArray, risk_aversion: float, horizon: float,
                 alpha: FloatArray | None, frozen: np.ndarray | None = None,
                 cash_reserve: float = 0.0, terms: Sequence[CostTerms] | None = None
                 ) -> tuple[sp.csc_matrix, FloatArray, sp.csc_matrix, FloatArray, float]:
        """``P`` (upper triangle), ``q``, ``A``, ``b`` and the objective constant (bps)
        of :meth:`program` (one equality row per frozen asset)."""
        p = self.program(state, targets, G, s, risk_aversion, horizon, alpha, frozen,
                         cash_reserve, terms)
        return p.P, p.q, p.A, p.b, p.const

    def slack_values(self, x: FloatArray) -> dict[int, float]:
        """Each slack's value in the solution vector ``x``, by constraint index."""
        return {i: float(x[sc]) for i, sc in enumerate(self.slack_cols) if sc is not None}

