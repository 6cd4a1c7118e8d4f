"""The stacked multi-period program as Clarabel matrices (see
:mod:`rebalopt.rebalance.multiperiod`): one copy of the single-period declarations per
period, written onto one layout.

Every block is appended by the builder's own functions (:mod:`rebalopt.program.blocks`)
on a *period view* of the layout (:class:`~rebalopt.program.MatrixLayout` with
``z_prev`` and ``spent``), so a constraint's rows, its slack and the cost columns are
resolved and assembled by the one code path of the single-period program; this module
only adds what couples the periods (the cash-spent links ``S_t``) and the terminal
condition."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.constraints import Constraint
from rebalopt.costs import CostModel
from rebalopt.errors import InputError
from rebalopt.program import CostTerms, MatrixLayout, combine_terms
from rebalopt.program.blocks import (
    append_abs_rows,
    append_constraint_rows,
    append_holding_rows,
    append_power_rows,
    append_risk_rows,
    append_slack_floor,
    cost_columns,
    cost_exponents,
)
from rebalopt.program.builder import ConeSpec
from rebalopt.rebalance._native import KeptClarabel
from rebalopt.rebalance._problem import SCALE
from rebalopt.state import PortfolioState

__all__: list[str] = []


class StackedProgram:
    """The stacked program for one universe, ``H`` and set of terms (Clarabel matrices).

    Columns per period ``t`` (in this order): ``y_t = w_t - w_0`` (``n``), ``t_t >=
    |z_t|`` (``n``), ``u_{m,t}`` per power-law cost model (``n`` each), ``f_t``
    factor risk (``k``), ``e_t`` specific risk (``n``), and from the second period on
    ``S_t``, the cash spent up to ``t`` (one column: ``S_t = S_{t-1} + 1'z_t +
    cost_t``, ``S_2 = 1'y_2 + cost_1 + cost_2``, and ``cash_t = c0 - S_t``) and, with
    ``cost_in_tracking``, ``K_t = sqrt(gamma / 2) cost_t`` (one column and one zero-cone
    row on the period's cost columns, squared in the objective); then each period's
    constraint auxiliaries, then soft slacks.

    Why ``S_t``: an asset's columns are chained over the periods (``z_t = y_t -
    y_{t-1}``), so eliminating them in the KKT factorization couples every dense row
    that any of them touches (the ``k`` factor rows, its group row, the cash, cost and
    turnover rows of every period): the factorization's work per asset grows with
    the square of that count (``~(14 H)^2`` here). With ``S_t`` the cash row of a
    period touches one column and one link row per period carries both the trades'
    cash and the cost, so an asset touches one such row per period instead of two
    (a cash row on ``y_t`` plus a cost link on ``t_t, u_t``): 18% fewer factorization
    flops at 500 assets, H = 5. At ``H = 1`` the layout, rows and scaling are those of
    :class:`~rebalopt.rebalance._clarabel.DirectProblem` (``y_1 = z``).
    """

    def __init__(self, H: int, n: int, k: int, costs: Sequence[CostModel],
                 constraints: Sequence[Constraint], state: PortfolioState,
                 targets: FloatArray, elastic: bool, cost_in_tracking: bool = False) -> None:
        self.H, self.n, self.k = H, n, k
        self.kept = KeptClarabel()
        """The Clarabel solver kept for this structure (answers bit for bit a fresh one)."""
        self.cost_in_tracking = bool(cost_in_tracking)
        self.costs, self.constraints = list(costs), list(constraints)
        terms = [m.terms(state) for m in self.costs]
        self.term_key = tuple(t.structure() for t in terms)
        ct = combine_terms(terms, n)
        if ct.aux:
            raise InputError("cost terms with auxiliary blocks are not supported by "
                             "multi-period planning yet", field="MultiPeriodRebalancer.costs")
        self.exps = cost_exponents(ct)
        self.holding = ct.short_holding is not None
        self.elastic = elastic
        col = 0
        self.Y, self.T, self.U, self.F, self.E, self.Hc = [], [], [], [], [], []
        self.S: list[int | None] = []  # S_t, the cash spent up to t (None: period 1)
        self.K: list[int | None] = []  # K_t, the period's scaled cost (cost_in_tracking)
        for t in range(H):
            self.Y.append(np.arange(col, col + n))
            self.T.append(np.arange(col + n, col + 2 * n))
            col += 2 * n
            us = []
            for _p in self.exps:
                us.append(np.arange(col, col + n))
                col += n
            self.U.append(us)
            self.Hc.append(np.arange(col, col + n) if self.holding else np.zeros(0, dtype=int))
            col += n if self.holding else 0
            self.F.append(np.arange(col, col + k))
            col += k
            self.E.append(np.arange(col, col + n))
            col += n
            self.S.append(col if t else None)
            col += 1 if t else 0
            self.K.append(col if self.cost_in_tracking else None)
            col += 1 if self.cost_in_tracking else 0
        self._own: list[tuple[np.ndarray, FloatArray]] = []
        self._rates: list[FloatArray | None] = []
        self.layouts: list[MatrixLayout] = []
        self._counts: list[list[list[int]]] = []
        for t in range(H):
            lay = MatrixLayout(n=n, z=self.Y[t], t=self.T[t], ncols=col,
                               z_prev=self.Y[t - 1] if t else None, spent=self.S[t])
            self._set_cost(lay, t, state)
            blocks = [c.rows(lay, state, targets) or [] for c in self.constraints]
            col = lay.ncols
            lay.frozen = True
            self.layouts.append(lay)
            self._counts.append([[b.m for b in bl] for bl in blocks])
        self.slack: list[list[int | None]] = []
        for _ in range(H):
            row = []
            for c in self.constraints:
                if c.soft or elastic:
                    row.append(col)
                    col += 1
                else:
                    row.append(None)
            self.slack.append(row)
        self.nvar = col

    def _set_cost(self, lay: MatrixLayout, t: int, state: PortfolioState) -> None:
        """Period ``t``'s own trading cost (``self._own[t]``) and short-holding rates
        (``self._rates[t]``, per year) from the models' declared terms at ``state``."""
        terms: list[CostTerms] = [m.terms(state) for m in self.costs]
        if tuple(x.structure() for x in terms) != self.term_key:
            raise RuntimeError("cost terms changed structure without a rebuild")
        ct = combine_terms(terms, self.n)
        cols, vals = cost_columns(ct, self.n, self.T[t], list(zip(self.exps, self.U[t])))
        own = (np.concatenate(cols), np.concatenate(vals).astype(float))
        rates = (None if ct.short_holding is None
                 else np.asarray(ct.short_holding, dtype=float))
        if t < len(self._own):
            self._own[t], self._rates[t] = own, rates
        else:
            self._own.append(own)
            self._rates.append(rates)
        lay.cost_cols, lay.cost_vals = own

    def matrices(self, states: Sequence[PortfolioState], path: FloatArray, G: np.ndarray,
                 s: FloatArray, risk_aversion: float, dt: float, alpha: FloatArray | None,
                 frozen: np.ndarray | None, terminal: str | float | None,
                 penalties: Sequence[float], cash_reserve: float = 0.0
                 ) -> tuple[sp.csc_matrix, FloatArray, sp.csc_matrix, FloatArray, float, list]:
        # cash_reserve: cash weight held back from every row on post-trade cash (the
        # non-convex fees the program cannot see; MultiPeriodRebalancer's fee reserve)
        H, n, k = self.H, self.n, self.k
        state = states[0]
        w0 = state.weights
        root = np.sqrt(SCALE * 0.5 * risk_aversion * dt)
        s_sc = root * np.asarray(s, dtype=float)
        G_sc = root * np.asarray(G, dtype=float)
        P_i, P_v = [], []
        q = np.zeros(self.nvar)
        const = 0.0
        for t in range(H):
            self._set_cost(self.layouts[t], t, states[t])
            P_i += [self.E[t], self.F[t]]
            P_v += [np.full(n, 2.0), np.full(k, 2.0)]
            if self.K[t] is not None:
                P_i.append(np.array([self.K[t]]))
                P_v.append(np.array([2.0]))
            cc, cv = self._own[t]
            np.add.at(q, cc, SCALE * cv)
            if self.holding:  # short holding over the period
                q[self.Hc[t]] += SCALE * dt * self._rates[t]
            if alpha is not None:
                a = SCALE * alpha[t]
                q[self.Y[t]] -= a
                const -= float(a @ w0)
            for j, c in enumerate(self.constraints):
                sc = self.slack[t][j]
                if sc is not None:
                    q[sc] = SCALE * float(penalties[j])
        pi = np.concatenate(P_i) if P_i else np.zeros(0, dtype=int)
        P = sp.csc_matrix((np.concatenate(P_v), (pi, pi)), shape=(self.nvar, self.nvar))
        R: list[np.ndarray] = []
        C: list[np.ndarray] = []
        V: list[np.ndarray] = []
        B: list[np.ndarray] = []
        r0 = 0
        ar = np.arange(n)
        # ---- zero cone: risk definitions, frozen assets, terminal target
        for t in range(H):  # f_t = G_sc'(y_t + d0_t), e_t = s_sc (y_t + d0_t)
            r0 = append_risk_rows(self.Y[t], self.F[t], self.E[t], G_sc, s_sc, w0 - path[t],
                                  r0, R, C, V, B)
        kc = np.sqrt(SCALE * 0.5 * risk_aversion)
        for t in range(H):  # K_t = sqrt(SCALE gamma / 2) cost_t: the cost's own tracking
            if self.K[t] is not None:
                oc, ov = self._own[t]
                R.append(np.full(oc.size + 1, r0))
                C.append(np.r_[self.K[t], oc])
                V.append(np.r_[1.0, -kc * ov])
                B.append(np.zeros(1))
                r0 += 1
        for t in range(1, H):  # S_t - S_{t-1} - 1'(y_t - y_{t-1}) - cost_t = 0
            if self.S[t - 1] is not None:
                pc, pv = np.r_[self.S[t - 1], self.Y[t - 1]], np.r_[1.0, -np.ones(n)]
            else:  # S_1 := 1'y_1 + cost_1
                pc, pv = self._own[t - 1]
            oc, ov = self._own[t]
            cols = np.r_[self.S[t], pc, self.Y[t], oc]
            R.append(np.full(cols.size, r0))
            C.append(cols)
            V.append(np.r_[1.0, -pv, -np.ones(n), -ov])
            B.append(np.zeros(1))
            r0 += 1
        fz = np.zeros(0, dtype=int) if frozen is None else np.flatnonzero(frozen)
        if fz.size:
            for t in range(H):
                R.append(r0 + np.arange(fz.size))
                C.append(self.Y[t][fz])
                V.append(np.ones(fz.size))
                B.append(np.zeros(fz.size))
                r0 += fz.size
        live = np.setdiff1d(ar, fz)
        if terminal == "target" and live.size:  # y_H = w*_H - w0 on tradable assets
            R.append(r0 + np.arange(live.size))
            C.append(self.Y[H - 1][live])
            V.append(np.ones(live.size))
            B.append((path[H - 1] - w0)[live])
            r0 += live.size
        nzero = r0
        # ---- nonnegative cone
        for t in range(H):  # t_t >= |y_t - y_{t-1}|; h_t >= max(-w_t, 0)
            r0 = append_abs_rows(self.Y[t], self.T[t], r0, R, C, V, B,
                                 self.Y[t - 1] if t else None)
            if self.holding:
                r0 = append_holding_rows(self.Y[t], self.Hc[t], w0, r0, R, C, V, B)
        if isinstance(terminal, float) and live.size:  # |y_H + w0 - w*_H| <= band
            g = (path[H - 1] - w0)[live]
            R += [r0 + np.arange(live.size), r0 + live.size + np.arange(live.size)]
            C += [self.Y[H - 1][live], self.Y[H - 1][live]]
            V += [np.ones(live.size), -np.ones(live.size)]
            B += [terminal + g, terminal - g]
            r0 += 2 * live.size
        slack_rows: list[int] = []
        for t in range(H):  # each constraint's rows on period t's view of the layout
            r0, used = append_constraint_rows(
                self.constraints, self.slack[t], self._counts[t], self.layouts[t], state,
                path[t], w0, state.cash_weight - cash_reserve, r0, R, C, V, B)
            slack_rows += used
        r0 = append_slack_floor(slack_rows, r0, R, C, V, B)
        spec: list[ConeSpec] = [("zero", nzero, 0.0)] if nzero else []
        spec.append(("nonneg", r0 - nzero, 0.0))
        for t in range(H):  # (u, 1, t) in the power cone of 1/p
            for p, u in zip(self.exps, self.U[t]):
                r0 = append_power_rows(u, self.T[t], r0, R, C, V, B)
                spec.append(("power", n, 1.0 / p))
        A = sp.csc_matrix((np.concatenate(V), (np.concatenate(R), np.concatenate(C))),
                          shape=(r0, self.nvar))
        return P, q, A, np.concatenate(B), const, spec
