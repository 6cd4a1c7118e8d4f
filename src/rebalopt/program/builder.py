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
constraint's units), the objective is ``SCALE * sum(v**2)`` plus :data:`ELASTIC_TIE`
times the normal objective (its tie-break), which spreads the violation over every
constraint taking part in a conflict.

The structure (column layout, row blocks, cones) is fixed when the builder is made;
:meth:`ProgramBuilder.program` recomputes the values from a state. The coordinates,
cones and constant values of the first state of a structure are kept
(:class:`~rebalopt.program.assembly.ProgramTemplate`): a later state asks every cost
and constraint for its declared rows as always, and while their coordinates are the
same it only computes its numbers and writes them in place (the same values, bit for
bit, as assembling the blocks from scratch; ``tests/program/test_assembly.py``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.program.assembly import ProgramTemplate, _readonly, declared_values
from rebalopt.program.blocks import (
    append_abs_rows,
    append_holding_rows,
    append_power_rows,
    append_risk_rows,
    append_slack_floor,
    cost_columns,
    cost_exponents,
)
from rebalopt.program.layout import MatrixLayout, MatrixRows, Resolution
from rebalopt.program.terms import CostTerms, combine_terms

if TYPE_CHECKING:  # pragma: no cover
    from rebalopt.constraints._base import Constraint
    from rebalopt.costs import CostModel
    from rebalopt.state import PortfolioState

__all__ = ["ELASTIC_CAP", "ELASTIC_TIE", "SCALE", "ConeSpec", "ConicProgram", "ProgramBuilder"]

SCALE = 1e4
"""The program's objective is in basis points of equity (fractions x 1e4)."""

ELASTIC_CAP = 1e3
"""Upper bound on an elastic slack that is allowed to move (constraint units)."""

ELASTIC_TIE = 1e-4
"""Weight of the normal objective (risk, costs, alpha; bps) in the elastic program's
``SCALE * sum(v**2)``: its tie-break.

Without it the elastic program has ties (many trades give the same violations) and
its trade and cost columns are free along a whole face. Measured on 60 infeasible
books (12 and 40 assets, two conflicts, three cost sets) against the hard program
itself (relaxing a constraint by the reported amount must make it feasible, by 0.99
of it must not): without a tie-break 18-19 of 100 statements were wrong (amounts too
small or too big by over 1%, constraints called "cannot be fixed alone" that can);
with weights 1e-6 / 1e-5 / 1e-4: 9 / 1 / 0 wrong, on Clarabel through cvxpy and
natively. The price: it pulls on the slacks (by ``tie`` times a constraint's shadow
price over ``2 * SCALE``), so a feasible program can show slacks of ~1e-5; the
diagnosis tells that pull from a conflict by solving again at a weight 100 times
smaller (a pull shrinks with it, a conflict does not)."""


ConeSpec = tuple[str, int, float]
"""``(kind, count, alpha)``: ``count`` cones of ``kind`` (``"zero"`` / ``"nonneg"``: one
row each; ``"soc3"``: 3 rows each; ``"power"``: 3 rows each, exponent ``alpha``)."""


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
        self._template: ProgramTemplate | None = None
        self._q_var: np.ndarray | None = None
        self._cost_cols_unique = bool(np.unique(self.layout.cost_cols).size
                                      == self.layout.cost_cols.size)
        self._p_const = _readonly(np.full(self.e.size + k, 2.0))
        # P's diagonal: e (or z, "diag"), y, and the slacks of the elastic program
        sl = [sc for sc in self.slack_cols if sc is not None] if elastic else []
        self._p_index = _readonly(np.concatenate(
            [self.e if self.e.size else self.layout.z, self.y, np.asarray(sl, dtype=int)]
        ).astype(np.int64))

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
                varying: bool = False, tie: float = ELASTIC_TIE) -> ConicProgram:
        """This state's values of the program.

        ``frozen`` (boolean mask) holds those assets at ``z = 0``: one equality row per
        frozen asset after the other equality rows, or, with ``all_frozen_rows``, a row
        ``f_i z_i = 0`` for every asset (the shape then never depends on the mask).
        ``cash_reserve`` is held back from the spendable cash (fees). ``caps`` (elastic
        only) is each constraint's largest slack (default :data:`ELASTIC_CAP`) and ``tie``
        (elastic only) the weight of the normal objective in it (:data:`ELASTIC_TIE`).
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
        if aux and not self.elastic:  # P = 2 I on (e, y): the same every state
            pd_ = self._p_const
        else:
            pd_ = np.concatenate([np.full(n, 2.0) if aux else 2.0 * s_sc ** 2,
                                  np.full(k, 2.0)])
        pi = self._p_index
        if not aux:
            q[L.z] = 2.0 * s_sc * sd0
        if self._cost_cols_unique:  # q is 0 there: the same sums as np.add.at
            q[L.cost_cols] += SCALE * L.cost_vals
        else:
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
        if self.elastic:  # SCALE * sum(v^2) + tie * (the normal objective)
            pd_ *= tie
            q *= tie
            const *= tie
            pd_ = np.concatenate([pd_, np.full(self.n_slack, 2.0 * SCALE)])
        else:
            for c, sc in zip(self.constraints, self.slack_cols):
                if sc is not None:
                    q[sc] = SCALE * float(c.penalty)
        # ---- rows: coordinates kept per structure (ProgramTemplate), values per state
        G_sc = root * np.asarray(G, dtype=float)
        mask = np.zeros(n, dtype=bool) if frozen is None else np.asarray(frozen, dtype=bool)
        c0 = state.cash_weight - cash_reserve  # cash held back (fees) is not spendable
        declared = self._declared(state, targets)
        fz = None if all_frozen_rows else np.flatnonzero(mask)
        key = (all_frozen_rows, varying, None if fz is None else fz.tobytes())
        tpl = self._template
        if tpl is None or not tpl.fits(key, declared):
            tpl = self._template = self._assemble(key, declared, fz, all_frozen_rows, varying)
        else:
            tpl.hits += 1
        V = tpl.V0.copy()
        B = tpl.B0.copy()
        if tpl.v_G is not None:  # y - G_sc' z = G_sc' d0
            V[tpl.v_G] = -G_sc.T.ravel()
            B[tpl.b_G] = G_sc.T @ d0
        if tpl.v_s is not None:  # e - s_sc z = s_sc d0
            V[tpl.v_s] = -s_sc
            B[tpl.b_s] = s_sc * d0
        if tpl.v_mask is not None:  # f_i z_i = 0
            V[tpl.v_mask] = mask.astype(float)
        if tpl.b_hold is not None:  # -z - h <= w0
            B[tpl.b_hold] = w0
        dv, db = tpl.declared.values(*declared_values(declared), np.asarray(w0, dtype=float),
                                     c0, Resolution.factors(L.cost_vals))
        V[tpl.v_declared] = dv
        B[tpl.b_declared] = db
        if tpl.b_caps is not None:  # v <= cap
            B[tpl.b_caps] = (np.full(self.n_slack, ELASTIC_CAP) if caps is None
                             else np.asarray(caps, dtype=float))
        return ConicProgram(self.nvar, pi, pd_, q, tpl.R, tpl.C, V, B, const, tpl.cones,
                            tpl.F, tpl.BF, self._q_varying() if varying else None, not aux)

    def _q_varying(self) -> np.ndarray:
        """Entries of ``q`` that may change between states (read-only, kept)."""
        if self._q_var is None:
            L = self.layout
            q_var = np.zeros(self.nvar, dtype=bool)
            q_var[L.z] = self.e.size == 0 or self.has_alpha
            q_var[L.cost_cols] = True
            q_var[self.h] = True
            for ac in self.aux_cols:
                q_var[ac] = True
            q_var[[sc for sc in self.slack_cols if sc is not None]] = True
            self._q_var = _readonly(q_var)
        return self._q_var

    def _declared(self, state: PortfolioState, targets: FloatArray) -> list[MatrixRows]:
        """Every declared block of this state, in row order: the cost models' auxiliary
        rows, then each constraint's rows (their counts checked against the sizes fixed
        when the program was made)."""
        L = self.layout
        out: list[MatrixRows] = []
        for a, counts in zip(self._aux_terms, self._aux_row_counts):
            blocks = list(a.rows(L))
            if [b.m for b in blocks] != counts:
                raise RuntimeError(f"cost block {a.key!r}: rows changed shape without a "
                                   "recompile")
            out += blocks
        for c, counts in zip(self.constraints, self._row_counts):
            blocks = c.rows(L, state, targets) or []
            if [b.m for b in blocks] != list(counts):
                raise RuntimeError(f"{c.name}: rows changed shape without a recompile")
            out += blocks
        return out

    def _assemble(self, key: Hashable, declared: Sequence[MatrixRows], fz: np.ndarray | None,
                  all_frozen_rows: bool, varying: bool) -> ProgramTemplate:
        """The program's coordinates, cones and constant values for this structure, with
        where each varying number goes (:class:`ProgramTemplate`); the varying numbers
        are left at zero (:meth:`program` writes them)."""
        n, k, L = self.n, self.k, self.layout
        R: list[np.ndarray] = []
        C: list[np.ndarray] = []
        V: list[np.ndarray] = []
        B: list[np.ndarray] = []
        F: list[np.ndarray] = []  # entries whose value may change with the state
        BF: list[np.ndarray] = []  # right-hand sides that may change
        Fo = F if varying else None
        BFo = BF if varying else None
        vpos: dict[str, tuple[int, int]] = {}  # piece ranges in V / B (list indices)
        bpos: dict[str, tuple[int, int]] = {}

        def flag(count: int, varies: bool) -> None:
            if varying:
                F.append(np.full(count, varies))

        def bflag(count: int, varies: bool) -> None:
            if varying:
                BF.append(np.full(count, varies))

        v0, b0 = len(V), len(B)
        r0 = append_risk_rows(L.z, self.y, self.e, np.zeros((n, k)), np.zeros(n), np.zeros(n),
                              0, R, C, V, B, Fo, BFo)
        if k:  # pieces: -G' (n k), ones (k); B: G' d0 (k)
            vpos["G"], bpos["G"] = (v0, v0 + 1), (b0, b0 + 1)
            v0, b0 = v0 + 2, b0 + 1
        if self.e.size:  # pieces: ones (n), -s (n); B: s d0 (n)
            vpos["s"], bpos["s"] = (v0 + 1, v0 + 2), (b0, b0 + 1)
        if all_frozen_rows:  # f_i z_i = 0 for every asset
            R.append(r0 + np.arange(n))
            C.append(L.z)
            vpos["mask"] = (len(V), len(V) + 1)
            V.append(np.zeros(n))
            flag(n, True)
            B.append(np.zeros(n))
            bflag(n, False)
            r0 += n
        elif fz is not None and fz.size:  # z_i = 0 for a frozen asset
            R.append(r0 + np.arange(fz.size))
            C.append(L.z[fz])
            V.append(np.ones(fz.size))
            flag(fz.size, True)
            B.append(np.zeros(fz.size))
            bflag(fz.size, False)
            r0 += fz.size
        r0 = append_abs_rows(L.z, L.t, r0, R, C, V, B, None, Fo, BFo)
        if self.h.size:
            b0 = len(B)
            r0 = append_holding_rows(L.z, self.h, np.zeros(n), r0, R, C, V, B, Fo, BFo)
            bpos["hold"] = (b0, b0 + 1)
        # the declared blocks: a cost model's auxiliary rows (always hard), then every
        # constraint's rows with -v on the main rows of one that has a slack column
        res = [L.resolution(b) for b in declared]
        vdecl: list[int] = []
        bstart = len(B)
        blocks = iter(zip(declared, res))
        for counts in self._aux_row_counts:
            for _ in counts:
                b, rs = next(blocks)
                vdecl.append(len(V))
                r0 = self._append_declared(L, b, rs, r0, R, C, V, B, Fo)
                bflag(b.m, True)
        slack_rows: list[int] = []
        for sc, counts in zip(self.slack_cols, self._row_counts):
            for _ in counts:
                b, rs = next(blocks)
                start = r0
                vdecl.append(len(V))
                r0 = self._append_declared(L, b, rs, r0, R, C, V, B, Fo)
                bflag(b.m, True)
                if sc is not None and b.main:  # lhs - v <= rhs
                    R.append(start + np.arange(b.m))
                    C.append(np.full(b.m, sc))
                    V.append(-np.ones(b.m))
                    flag(b.m, False)
            if sc is not None:
                slack_rows.append(sc)
        bend = len(B)
        r0 = append_slack_floor(slack_rows, r0, R, C, V, B, Fo, BFo)
        if self.elastic:  # v <= cap
            R.append(r0 + np.arange(len(slack_rows)))
            C.append(np.asarray(slack_rows, dtype=int))
            V.append(np.ones(len(slack_rows)))
            flag(len(slack_rows), False)
            bpos["caps"] = (len(B), len(B) + 1)
            B.append(np.zeros(len(slack_rows)))
            bflag(len(slack_rows), True)
            r0 += len(slack_rows)
        for _, u, v in self.impact:
            if v is None:  # (u_i, 1, t_i) in the power cone
                r0 = append_power_rows(u, L.t, r0, R, C, V, B, Fo, BFo)
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
        voff = np.concatenate([[0], np.cumsum([v.size for v in V])])
        boff = np.concatenate([[0], np.cumsum([b.size for b in B])])

        def vs(name: str) -> slice | None:
            if name not in vpos:
                return None
            i, j = vpos[name]
            return slice(int(voff[i]), int(voff[j]))

        def bs(name: str) -> slice | None:
            if name not in bpos:
                return None
            i, j = bpos[name]
            return slice(int(boff[i]), int(boff[j]))

        v_decl = (np.concatenate([np.arange(voff[i], voff[i] + r.row.size)
                                  for i, r in zip(vdecl, res)]) if vdecl
                  else np.zeros(0, dtype=np.int64))
        nf = n if all_frozen_rows else (0 if fz is None else int(fz.size))
        return ProgramTemplate(
            key=key, rows=ProgramTemplate.block_key(declared),
            R=_readonly(np.concatenate(R)), C=_readonly(np.concatenate(C)),
            V0=np.concatenate(V), B0=np.concatenate(B),
            F=_readonly(np.concatenate(F)) if varying else None,
            BF=_readonly(np.concatenate(BF)) if varying else None,
            cones=self.cone_spec(nf), declared=Resolution.stacked(
                res, [np.asarray(b.val).size for b in declared]),
            v_declared=_readonly(v_decl.astype(np.int64)),
            b_declared=slice(int(boff[bstart]), int(boff[bend])),
            v_G=vs("G"), b_G=bs("G"), v_s=vs("s"), b_s=bs("s"), v_mask=vs("mask"),
            b_hold=bs("hold"), b_caps=bs("caps"))

    @staticmethod
    def _append_declared(L: MatrixLayout, rows: MatrixRows, res: Resolution, r0: int,
                         R: list[np.ndarray], C: list[np.ndarray], V: list[np.ndarray],
                         B: list[np.ndarray], F: list[np.ndarray] | None) -> int:
        """One declared block's coordinates from row ``r0`` (values left at zero; the
        right-hand side is written per state); returns the next row. An entry that
        ``cash`` or ``cost`` resolves to (a cost rate) may vary with the state."""
        R.append(r0 + res.row)
        C.append(res.col)
        V.append(np.zeros(res.row.size))
        B.append(np.zeros(res.m))
        if F is not None:
            virtual_cost = bool(np.any(np.asarray(rows.col) < -L.n))
            F.append(np.isin(res.col, L.cost_cols) if virtual_cost
                     else np.zeros(res.col.size, dtype=bool))
        return r0 + res.m

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

