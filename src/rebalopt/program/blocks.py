"""Row blocks of the conic program, written once for every program that uses them.

The single-period builder (:class:`~rebalopt.program.builder.ProgramBuilder`) and the
stacked multi-period program (:mod:`rebalopt.rebalance._multiperiod_program`, one
period view of the layout per period) append the same blocks: the cost's columns, the
risk's definition rows, ``t >= |z|``, the short-holding epigraph, the power cones, and
every constraint's declared rows resolved through a :class:`MatrixLayout` with their
soft-constraint slacks. Each function appends coordinates (``R`` rows, ``C`` columns,
``V`` values; duplicates add up) and right-hand sides ``B`` from row ``r0`` and returns
the next free row; ``F`` / ``BF`` (optional) collect which entries of ``A`` / ``b`` may
change between states of the same structure (a parametric backend's masks).

Units: weights and cash are fractions of pre-trade equity; the cost coefficients are
those the cost models declare (fraction of equity per unit of the variable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.program.layout import MatrixLayout, MatrixRows
from rebalopt.program.terms import CostTerms

if TYPE_CHECKING:  # pragma: no cover
    from rebalopt.constraints._base import Constraint
    from rebalopt.state import PortfolioState

__all__ = [
    "append_abs_rows",
    "append_constraint_rows",
    "append_holding_rows",
    "append_power_rows",
    "append_resolved",
    "append_risk_rows",
    "append_slack_floor",
    "cost_columns",
    "cost_exponents",
]


def append_resolved(L: MatrixLayout, rows: MatrixRows, w0: FloatArray, c0: float, r0: int,
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
            r0 = append_resolved(L, b, w0, c0, r0, R, C, V, B, F)
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
