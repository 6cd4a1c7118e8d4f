"""The named blocks of the program's variable vector, and rows declared over them.

A constraint (or a cost with its own variables) declares rows ``A x <= b`` as
:class:`MatrixRows` over the blocks of a :class:`MatrixLayout`:

* ``layout.z``: trade weights (``n`` columns);
* ``layout.t``: their epigraph ``t >= |z|`` (``n``);
* ``layout.w``: post-trade weights (``n``);
* ``layout.cash``: post-trade cash weight after the trading cost (1);
* ``layout.cost``: the convex trading cost, fraction of equity (1);
* ``layout.aux(key, size)``: auxiliary columns owned by the declarer.

``w``, ``cash`` and ``cost`` may be *virtual* (negative column indices): the builder
resolves them with :meth:`MatrixLayout.resolve`. In the single-period program
``w = w0 + z``, ``cash = c0 - 1'z - cost`` and ``cost = cost_vals @ x[cost_cols]``
are substituted, so a constraint never folds ``w0`` or ``c0`` into its right-hand
side itself. A *period view* (``z_prev``, ``spent``; the multi-period program) uses
the same resolution: its ``z`` columns are the cumulative trades ``y_t = w_t - w_0``,
a declared trade is ``y_t - y_{t-1}``, and ``cash = c0 - spent``.

Units: weights and cash are fractions of pre-trade equity.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from rebalopt._typing import FloatArray

__all__ = ["MatrixLayout", "MatrixRows", "Resolution"]


@lru_cache(maxsize=512)
def _index(kind: str, n: int) -> np.ndarray:
    """Read-only index arrays that declarations use on every state (the same object each
    time, so a kept program structure recognises them by identity): ``"arange"``
    ``0..n-1``, ``"zeros"`` ``n`` zeros, ``"virtual"`` ``-1..-n``, ``"one"`` ``[n]``."""
    if kind == "arange":
        a = np.arange(n)
    elif kind == "zeros":
        a = np.zeros(n, dtype=np.int64)
    elif kind == "virtual":
        a = -1 - np.arange(n)
    else:
        a = np.array([n])
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class MatrixRows:
    """Rows ``A x <= b`` of a constraint over the columns of a :class:`MatrixLayout`.

    ``A`` is given in coordinates: ``row`` (local, ``0 .. m-1``), ``col`` (a column
    of the layout, possibly a virtual one of ``w``, ``cash`` or ``cost``), ``val``;
    ``b`` has ``m`` entries. ``main`` rows are the constraint's own rows (a soft
    constraint adds ``-v`` to each of them); ``main=False`` rows define auxiliary
    variables (always hard).
    """

    row: np.ndarray
    col: np.ndarray
    val: FloatArray
    b: FloatArray
    main: bool = True

    @property
    def m(self) -> int:
        """Number of rows."""
        return int(np.asarray(self.b).size)

    @classmethod
    def dense_rows(cls, cols: np.ndarray, coef: FloatArray, b: FloatArray,
                   main: bool = True) -> MatrixRows:
        """Rows ``coef @ x[cols] <= b`` for a dense ``(m, len(cols))`` ``coef``."""
        coef = np.atleast_2d(np.asarray(coef, dtype=float))
        m, c = coef.shape
        cols = np.asarray(cols)
        if m == 1 and cols.ndim == 1:  # one row: the columns as they are
            return cls(_index("zeros", c), cols, coef.ravel(),
                       np.atleast_1d(np.asarray(b, dtype=float)), main)
        return cls(np.repeat(np.arange(m), c), np.tile(cols, m), coef.ravel(),
                   np.atleast_1d(np.asarray(b, dtype=float)), main)

    @classmethod
    def diagonal(cls, cols: np.ndarray, coef: float | FloatArray, b: FloatArray,
                 main: bool = True) -> MatrixRows:
        """One row per column: ``coef_i * x[cols_i] <= b_i``."""
        cols = np.asarray(cols)

        def full(x: float | FloatArray) -> FloatArray:
            x = np.asarray(x, dtype=float)
            if x.ndim == 0:
                return np.full(cols.shape, float(x))
            if x.shape == cols.shape:
                return x.copy()
            return np.broadcast_to(x, cols.shape).astype(float)

        return cls(_index("arange", cols.size), cols, full(coef), full(b), main)


@dataclass
class MatrixLayout:
    """The columns of the solver's variable vector that declarations write rows against.

    Attributes
    ----------
    n
        Number of assets.
    z, t
        Column indices of the trade weights and of their epigraph ``t >= |z|``.
    ncols
        Columns allocated so far (grows with :meth:`aux`).
    cost_cols, cost_vals
        The convex trading cost (fraction of equity) as ``cost_vals @ x[cost_cols]``
        for the current state (set by the builder before rows are asked for).
    w_cols
        Real columns of the post-trade weights, or ``None`` (default): ``w`` is
        virtual and resolved as ``w0 + z``.
    z_prev
        A period view of a multi-period program: the previous period's cumulative
        trade columns (``z`` are then this period's, ascending), so a row declared on
        ``z`` holds on the period's own trade ``z - z_prev``; ``None`` (default):
        ``z`` is the trade.
    spent
        A period view: the column of the cash spent up to this period (trades and
        costs, fraction of equity), so ``cash = c0 - spent``; ``None`` (default):
        ``cash = c0 - 1'z - cost``.
    """

    n: int
    z: np.ndarray
    t: np.ndarray
    ncols: int
    cost_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    cost_vals: FloatArray = field(default_factory=lambda: np.zeros(0))
    w_cols: np.ndarray | None = None
    z_prev: np.ndarray | None = None
    spent: int | None = None
    _aux: dict[Hashable, np.ndarray] = field(default_factory=dict)
    frozen: bool = False

    # ----------------------------------------------------------- named blocks
    @property
    def w(self) -> np.ndarray:
        """Columns of the post-trade weights (virtual: ``-1 .. -n``, unless ``w_cols``)."""
        return self.w_cols if self.w_cols is not None else _index("virtual", self.n)

    @property
    def cash(self) -> np.ndarray:
        """The post-trade cash weight after the trading cost (one virtual column)."""
        return _index("one", -1 - self.n)

    @property
    def cost(self) -> np.ndarray:
        """The convex trading cost, fraction of equity (one virtual column)."""
        return _index("one", -2 - self.n)

    def aux(self, key: Hashable, size: int) -> np.ndarray:
        """Columns of an auxiliary variable (the same ones on every call with ``key``)."""
        cols = self._aux.get(key)
        if cols is None:
            if self.frozen:
                raise RuntimeError(f"auxiliary variable {key!r} asked after the layout froze")
            cols = np.arange(self.ncols, self.ncols + size)
            self.ncols += size
            self._aux[key] = cols
        return cols

    def aux_blocks(self) -> list[tuple[Hashable, np.ndarray]]:
        """Every auxiliary block ``(key, columns)``, in column order."""
        return sorted(self._aux.items(), key=lambda kv: int(kv[1][0]) if kv[1].size else -1)

    # ------------------------------------------------------------- resolution
    def resolve(self, rows: MatrixRows, w0: FloatArray, c0: float) -> MatrixRows:
        """``rows`` with the virtual blocks substituted.

        ``w = w0 + z``; ``cash = c0 - sum(z) - cost`` (a period view: ``c0 -
        spent``); ``cost = cost_vals @ x[cost_cols]``; in a period view an entry on
        ``z`` also gets its negative on ``z_prev`` (the trade ``z - z_prev``). Other
        entries on real columns are kept as they are; the sparsity of the result
        depends only on the sparsity of ``rows`` and of the cost. In a single-period
        view this is :meth:`resolution` applied to the values.
        """
        col = np.asarray(rows.col, dtype=np.int64)
        if col.size == 0 or (self.z_prev is None and col.min() >= 0):
            return rows
        if self.z_prev is None and self.spent is None:
            res = self.resolution(rows)
            val, b = res.values(rows.val, rows.b, w0, c0, res.factors(self.cost_vals))
            return MatrixRows(res.row, res.col, val, b, rows.main)
        n = self.n
        row = np.asarray(rows.row, dtype=np.int64)
        val = np.asarray(rows.val, dtype=float)
        b = np.array(rows.b, dtype=float, copy=True).reshape(-1)
        w0 = np.asarray(w0, dtype=float)
        real = col >= 0
        R, C, V = [row[real]], [col[real]], [val[real]]
        if self.z_prev is not None:  # a trade declared on z is z - z_prev
            pos = np.searchsorted(self.z, col)
            isz = real & (pos < n)
            isz[isz] = self.z[pos[isz]] == col[isz]
            R.append(row[isz])
            C.append(self.z_prev[pos[isz]])
            V.append(-val[isz])
        wm = (col < 0) & (col >= -n)
        if wm.any():
            i = -col[wm] - 1
            R.append(row[wm])
            C.append(self.z[i])
            V.append(val[wm])
            b -= np.bincount(row[wm], weights=val[wm] * w0[i], minlength=b.size)
        nc = self.cost_cols.size
        for r, a in zip(row[col == self.cash[0]], val[col == self.cash[0]]):
            if self.spent is None:
                R += [np.full(n, r), np.full(nc, r)]
                C += [self.z, self.cost_cols]
                V += [np.full(n, -a), -a * self.cost_vals]
            else:
                R.append(np.array([r]))
                C.append(np.array([self.spent]))
                V.append(np.array([-a]))
            b[r] -= a * float(c0)
        for r, a in zip(row[col == self.cost[0]], val[col == self.cost[0]]):
            R.append(np.full(nc, r))
            C.append(self.cost_cols)
            V.append(a * self.cost_vals)
        bad = col < -2 - n
        if bad.any():
            raise ValueError(f"column {int(col[bad][0])} is not a block of this layout")
        return MatrixRows(np.concatenate(R), np.concatenate(C), np.concatenate(V), b, rows.main)

    def resolution(self, rows: MatrixRows) -> Resolution:
        """How ``rows`` resolve in a single-period view (no ``z_prev``, no ``spent``):
        the resolved coordinates, and where each resolved value and right-hand side
        comes from (:class:`Resolution`). It depends only on the coordinates of
        ``rows`` and on ``cost_cols``, so a program of one structure computes it once
        and resolves each state's values with :meth:`Resolution.values`."""
        if self.z_prev is not None or self.spent is not None:
            raise ValueError("resolution is for a single-period view")
        n, nc = self.n, self.cost_cols.size
        col = np.asarray(rows.col, dtype=np.int64).reshape(-1)
        row = np.asarray(rows.row, dtype=np.int64).reshape(-1)
        m = int(np.asarray(rows.b).size)
        bad = col < -2 - n
        if bad.any():
            raise ValueError(f"column {int(col[bad][0])} is not a block of this layout")
        idx = np.arange(col.size)
        real = col >= 0
        wm = (col < 0) & (col >= -n)
        i = -col[wm] - 1
        R, C, S, E = [row[real], row[wm]], [col[real], self.z[i]], [idx[real], idx[wm]], \
            [np.zeros(int(real.sum()) + i.size, dtype=np.int64)]
        cash = np.flatnonzero(col == self.cash[0])
        for j in cash:  # cash = c0 - sum(z) - cost: -a on z, -a * cost_vals on the cost
            R += [np.full(n, row[j]), np.full(nc, row[j])]
            C += [self.z, self.cost_cols]
            S.append(np.full(n + nc, j))
            E += [np.ones(n, dtype=np.int64), 2 + nc + np.arange(nc)]
        for j in np.flatnonzero(col == self.cost[0]):  # cost = cost_vals @ x[cost_cols]
            R.append(np.full(nc, row[j]))
            C.append(self.cost_cols)
            S.append(np.full(nc, j))
            E.append(2 + np.arange(nc))
        return Resolution(np.concatenate(R), np.concatenate(C), np.concatenate(S),
                          np.concatenate(E), m, row[wm], i, idx[wm], row[cash], cash,
                          bool(col.size == 0 or col.min() >= 0))


@dataclass(frozen=True)
class Resolution:
    """The structure of a block of :class:`MatrixRows` resolved through a single-period
    :class:`MatrixLayout` (:meth:`MatrixLayout.resolution`).

    Resolved entry ``j`` sits at (``row[j]``, ``col[j]``) with the value
    ``val[src[j]] * f[ext[j]]``, ``f = [1, -1, cost_vals, -cost_vals]``
    (:meth:`factors`); the right-hand side is the declared one less
    ``val * w0[asset]`` for each entry on ``w`` (``w = w0 + z``) and less
    ``val * c0`` for each entry on ``cash``, in this order. The values are those
    :meth:`MatrixLayout.resolve` computes, bit for bit.
    """

    row: np.ndarray
    col: np.ndarray
    src: np.ndarray
    ext: np.ndarray
    m: int
    w_row: np.ndarray
    w_asset: np.ndarray
    w_src: np.ndarray
    cash_row: np.ndarray
    cash_src: np.ndarray
    identity: bool
    """No virtual column: the declared rows as they are."""

    @classmethod
    def stacked(cls, parts: Sequence[Resolution], sizes: Sequence[int]) -> Resolution:
        """The resolutions of consecutive blocks as one, over their values concatenated
        (``sizes``: each block's number of declared values) and their rows stacked in
        order; :meth:`values` on the concatenated values gives each block's own values
        one after the other."""
        fields: dict[str, list[np.ndarray]] = {k: [] for k in (
            "row", "col", "src", "ext", "w_row", "w_asset", "w_src", "cash_row", "cash_src")}
        voff = roff = 0
        for r, size in zip(parts, sizes):
            for name, shift in (("row", roff), ("col", 0), ("src", voff), ("ext", 0),
                                ("w_row", roff), ("w_asset", 0), ("w_src", voff),
                                ("cash_row", roff), ("cash_src", voff)):
                fields[name].append(np.asarray(getattr(r, name), dtype=np.int64) + shift)
            voff += int(size)
            roff += r.m
        cat = {k: _frozen(np.concatenate(v) if v else np.zeros(0, dtype=np.int64))
               for k, v in fields.items()}
        return cls(cat["row"], cat["col"], cat["src"], cat["ext"], roff, cat["w_row"],
                   cat["w_asset"], cat["w_src"], cat["cash_row"], cat["cash_src"], False)

    @staticmethod
    def factors(cost_vals: FloatArray) -> FloatArray:
        """``[1, -1, cost_vals, -cost_vals]``, what :attr:`ext` indexes."""
        cv = np.asarray(cost_vals, dtype=float)
        return np.concatenate([[1.0, -1.0], cv, -cv])

    def values(self, val: FloatArray, b: FloatArray, w0: FloatArray, c0: float,
               factors: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The resolved values and right-hand side of declared values ``val``, ``b``."""
        val = np.asarray(val, dtype=float).reshape(-1)
        b = np.array(b, dtype=float, copy=True).reshape(-1)
        if self.identity:
            return val, b
        out = val[self.src] * factors[self.ext]
        if self.w_row.size:
            w0 = np.asarray(w0, dtype=float)
            b -= np.bincount(self.w_row, weights=val[self.w_src] * w0[self.w_asset],
                             minlength=b.size)
        if self.cash_row.size:  # in order: subtract.at is unbuffered
            np.subtract.at(b, self.cash_row, val[self.cash_src] * float(c0))
        return out, b


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a
