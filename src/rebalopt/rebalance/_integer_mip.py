"""The integer stage's ``exact`` mode: a mixed-integer program through cvxpy.

Variables: integer lot counts (split into bought and sold lots with one binary per
side when a minimum trade value, a trade count or a commission minimum / per-order
fee needs to know whether an asset trades), trade weights ``z = lot_weight * q``.
Objective (basis points of equity, like the continuous program): the full cost,
the tracking-error quadratic ``gamma/2 T (w - w*)' Sigma (w - w*)`` (factor root,
never an ``n x n`` matrix), alpha and soft-constraint penalties. Every constraint's
rows are its one declaration (:meth:`~rebalopt.constraints.Constraint.rows`),
written over the integer program's variables (``w = w0 + z``, ``cash = c0 - sum(z) -
cost`` with the MIP's full cost); integer constraints add their declared
:meth:`~rebalopt.constraints.IntegerConstraint.integer_rows` over the lot counts and
the buy/sell binaries.

Costs:

* spread and linear commission: linear in ``|z|``;
* commission minimum and per-order fee: ``c_i >= rate_i |z_i|``,
  ``c_i >= minimum * traded_i``, plus ``per_order * traded_i`` (exact);
* market impact ``a |z|^p``: ``p = 1`` linear, ``p = 2`` a quadratic (exact). SCIP takes
  no power cone, so ``1 < p < 2`` uses lines in the lot count ``k = |q|``: when an
  asset's lot range is at most ``SECANT_MAX`` lots, the secants through consecutive
  integers (exact at every integer ``k``, as ``k^p`` is convex); otherwise tangents
  at a geometric grid (an outer approximation: the program's cost is a lower bound,
  so its proven bound stays valid, and its answer is re-priced exactly).

SCIP (quadratic objective) runs with ``numerics/feastol = 1e-9`` (DESIGN section 3:
default numerics gave invalid bounds and wrong "optimal" answers on lot problems),
HiGHS when the objective is linear. Lot counts are boxed by bounds every optimal
plan satisfies: each constraint's per-asset limits and, with no alpha, the
tracking-error radius ``gamma/2 T s_i^2 d_i^2 <= f_incumbent``. The caller verifies
every answer numerically and re-prices it; the bound is checked against it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints import Constraint
from rebalopt.constraints.integer import IntegerBlocks, IntegerConstraint
from rebalopt.costs import CostModel
from rebalopt.program import MatrixLayout, MatrixRows
from rebalopt.program.cvxpy_backend import rows_to_cvxpy
from rebalopt.state import PortfolioState

__all__ = ["SCALE", "SECANT_MAX", "MipResult", "implied_box", "solve_mip"]

SCALE = 1e4
"""Objective in basis points of equity."""

SECANT_MAX = 80
"""Largest lot range per asset for the exact secant form of a power-law impact."""

_TANGENTS = 24


@dataclass
class MipResult:
    """What the MIP returned (``q`` lot counts, rounded; ``bound`` a fraction of equity)."""

    q: FloatArray | None
    status: str
    solver: str
    bound: float | None
    objective: float | None
    solve_time: float | None
    wall_time: float
    proven: bool
    note: str = ""


class Unsupported(Exception):
    """The MIP cannot represent this problem (the caller falls back to ``round``)."""


def implied_box(constraints: Sequence[Constraint], state: PortfolioState, w_t: FloatArray,
                costs: Sequence[CostModel] = ()) -> tuple[FloatArray, FloatArray]:
    """Per-asset trade-weight bounds ``lo <= z <= hi`` implied by the hard constraints
    and the cost models' own rows (:meth:`~rebalopt.costs.CostModel.trade_bounds`).

    Read from the constraints' declared rows: a row with one entry on ``z_i`` or
    ``w_i`` (``w = w0 + z``) bounds ``z_i``; a row whose entries are all on ``t``
    (``t >= |z|``) with positive coefficients bounds each ``|z_i|`` by ``b / a_i``.
    Other rows (on cash, cost or auxiliary columns, several assets) are not read:
    the box is implied, never tighter than the constraints."""
    n = state.n
    w0 = state.weights
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    layout = _layout(n)
    for c in constraints:
        if c.soft:
            continue
        for rows in c.rows(layout, state, w_t) or []:
            _box_from_rows(rows, n, w0, lo, hi)
    for m in costs:
        bounds = m.trade_bounds(state)
        if bounds is not None:
            lo, hi = np.maximum(lo, bounds[0]), np.minimum(hi, bounds[1])
    return lo, hi


def _layout(n: int) -> MatrixLayout:
    return MatrixLayout(n=n, z=np.arange(n), t=np.arange(n, 2 * n), ncols=2 * n)


def _box_from_rows(rows: MatrixRows, n: int, w0: FloatArray, lo: FloatArray,
                   hi: FloatArray) -> None:
    """Tighten ``lo``/``hi`` in place with the bounds ``rows`` imply (see implied_box)."""
    if rows.m == 0:
        return
    r = np.asarray(rows.row, dtype=np.int64)
    col = np.asarray(rows.col, dtype=np.int64)
    val = np.asarray(rows.val, dtype=float)
    b = np.asarray(rows.b, dtype=float)
    on_z = (col >= 0) & (col < n)
    on_t = (col >= n) & (col < 2 * n)
    on_w = (col < 0) & (col >= -n)
    count = np.bincount(r, minlength=rows.m)
    other = np.bincount(r, weights=~(on_z | on_t | on_w), minlength=rows.m) > 0
    # one entry on z_i or w_i: a * z_i <= b (- a * w0_i)
    for mask, shift in ((on_z, False), (on_w, True)):
        e = np.flatnonzero(mask & (count[r] == 1) & ~other[r] & (val != 0))
        if e.size == 0:
            continue
        i = -col[e] - 1 if shift else col[e]
        rhs = b[r[e]] - (val[e] * w0[i] if shift else 0.0)
        bound = rhs / val[e]
        up = val[e] > 0
        np.minimum.at(hi, i[up], bound[up])
        np.maximum.at(lo, i[~up], bound[~up])
    # every entry on t, all positive: t_i <= b / a_i, so |z_i| <= b / a_i
    neg_t = np.bincount(r, weights=on_t & (val <= 0), minlength=rows.m) > 0
    all_t = np.bincount(r, weights=on_t, minlength=rows.m) == count
    ok = all_t & ~neg_t & (b >= 0)
    e = np.flatnonzero(on_t & ok[r])
    if e.size:
        i = col[e] - n
        bound = b[r[e]] / val[e]
        np.minimum.at(hi, i, bound)
        np.maximum.at(lo, i, -bound)


def _power_lines(k_max: FloatArray, p: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Lines ``slope * k + icpt`` below (or, for secants, through) ``k**p`` on ``[0, k_max]``."""
    K = int(np.max(k_max)) if k_max.size else 0
    if K <= SECANT_MAX:
        k = np.arange(K, dtype=float)
        slope = (k + 1) ** p - k ** p
        icpt = k ** p - slope * k
        return slope, icpt, True
    grid = np.unique(np.concatenate([[0.5, 1.0], np.geomspace(1.0, K, _TANGENTS)]))
    slope = p * grid ** (p - 1)
    icpt = grid ** p - slope * grid
    return np.concatenate([[1.0], slope]), np.concatenate([[0.0], icpt]), False


def solve_mip(*, state: PortfolioState, w_t: FloatArray, G: np.ndarray, s: FloatArray,
              gT: float, alpha: FloatArray | None, costs: Sequence[CostModel],
              constraints: Sequence[Constraint], int_constraints: Sequence[IntegerConstraint],
              ell: FloatArray, q_box: tuple[FloatArray, FloatArray], solver: str,
              time_limit: float, need_binaries: bool,
              node_limit: int | None = None, horizon: float = 0.0) -> MipResult:
    """Build and solve the MIP once (module docstring). Raises :class:`Unsupported`.

    ``horizon`` (years) prices the declared short-holding terms (borrow)."""
    t0 = time.perf_counter()
    n = state.n
    V = state.equity
    q_lo, q_hi = q_box
    w0 = state.weights
    z_scale = ell
    if need_binaries:
        if not (np.isfinite(q_lo).all() and np.isfinite(q_hi).all()):
            raise Unsupported("no finite lot bound for the binaries' big-M "
                              "(add position or turnover limits)")
        ub, us = np.maximum(q_hi, 0.0), np.maximum(-q_lo, 0.0)
        bl = cp.Variable(n, integer=True, name="buy_lots")
        sl = cp.Variable(n, integer=True, name="sell_lots")
        yb = cp.Variable(n, boolean=True, name="buy")
        ys = cp.Variable(n, boolean=True, name="sell")
        cons: list[cp.Constraint] = [bl >= 0, sl >= 0, bl <= cp.multiply(ub, yb),
                                     sl <= cp.multiply(us, ys), yb + ys <= 1]
        q = bl - sl
        k = bl + sl
        z = cp.multiply(z_scale, q)
        t = cp.multiply(z_scale, k)
        traded = yb + ys
    else:
        qv = cp.Variable(n, integer=True, name="lots")
        q, z = qv, cp.multiply(z_scale, qv)
        t = cp.Variable(n, name="abs_trade")
        kv = cp.Variable(n, name="abs_lots")
        cons = [t >= z, t >= -z, kv >= qv, kv >= -qv, t == cp.multiply(z_scale, kv)]
        fin_lo, fin_hi = np.isfinite(q_lo), np.isfinite(q_hi)
        if fin_lo.any():
            cons.append(qv[np.flatnonzero(fin_lo)] >= q_lo[fin_lo])
        if fin_hi.any():
            cons.append(qv[np.flatnonzero(fin_hi)] <= q_hi[fin_hi])
        k, traded = kv, None

    # ---- costs (fraction of equity)
    cost_terms: list[cp.Expression] = []
    linear = True
    holding: list[cp.Expression] = []
    for m in costs:  # from each model's declared terms
        tm = m.terms(state)
        if tm.short_holding is not None and horizon > 0:  # r T max(-w, 0), not paid now
            h = cp.Variable(n, nonneg=True, name="short_position")
            cons.append(h >= -(w0 + z))
            holding.append((horizon * np.asarray(tm.short_holding, dtype=float)) @ h)
        if tm.aux:
            raise Unsupported(f"cost model {m.name} has auxiliary blocks (no MIP form yet)")
        lin = np.zeros(n) if tm.linear is None else np.asarray(tm.linear, dtype=float)
        po = tm.per_order
        if po is not None and po.active:
            if traded is None:
                raise Unsupported("per-order minimum or fee without binaries")
            lin = lin - po.rate  # the rate is charged as max(rate |z|, minimum) below
            c = cp.Variable(n, name="per_order_charge")
            cons += [c >= cp.multiply(po.rate, t), c >= cp.multiply(po.minimum / V, traded)]
            cost_terms.append(cp.sum(c) + (po.fixed / V) @ traded)
        if np.any(lin != 0):
            cost_terms.append(lin @ t)
        powers = [(np.asarray(p.coef, float), float(p.exponent)) for p in tm.power]
        if tm.quadratic is not None:
            powers.append((np.asarray(tm.quadratic, float), 2.0))
        for a, p in powers:
            if not np.any(a != 0):
                continue
            if p == 1.0:
                cost_terms.append(a @ t)
            elif p == 2.0:
                cost_terms.append(cp.sum(cp.multiply(a, cp.square(t))))
                linear = False
            else:
                kmax = np.maximum(np.abs(q_lo), np.abs(q_hi))
                if not np.isfinite(kmax).all():
                    raise Unsupported(f"power {p:g} cost needs finite lot bounds")
                slope, icpt, _ = _power_lines(kmax, p)
                u = cp.Variable(n, nonneg=True, name="power_cost")
                coef = a * ell ** p  # cost_i = coef_i * k_i ** p
                for sl_, ic in zip(slope, icpt):
                    cons.append(u >= cp.multiply(coef * sl_, k) + coef * ic)
                cost_terms.append(cp.sum(u))
    cost = cp.sum(cp.hstack(cost_terms)) if cost_terms else cp.Constant(0.0)

    obj: list[cp.Expression] = [SCALE * cost] + [SCALE * h for h in holding]
    root = np.sqrt(SCALE * 0.5 * gT)
    d0 = w0 - w_t
    if gT > 0:
        linear = False
        if G.shape[1] > 0:
            obj.append(cp.sum_squares(root * (G.T @ d0) + (root * G.T) @ z))
        obj.append(cp.sum_squares(root * s * d0 + cp.multiply(root * s, z)))
    if alpha is not None:
        obj.append(-SCALE * (alpha @ z) - SCALE * float(alpha @ w0))

    # ---- constraints: the declared rows over the MIP's variables
    zv = cp.Variable(n, name="z")
    tv = cp.Variable(n, name="t")
    cons += [zv == z, tv == t]
    layout = _layout(n)
    blocks = None
    integer_vars: dict[Any, cp.Expression] = {}
    if need_binaries:
        cols = {}
        for name, var in (("buy_lots", bl), ("sell_lots", sl), ("buy", yb), ("sell", ys)):
            cols[name] = layout.aux(("integer", name), n)
            integer_vars[("integer", name)] = var
        blocks = IntegerBlocks(lot_weight=ell, **cols)
    declared: list[tuple[Constraint, list[MatrixRows]]] = []
    for c in list(constraints) + list(int_constraints):
        rows = list(c.rows(layout, state, w_t) or [])
        if isinstance(c, IntegerConstraint) and blocks is not None:
            rows += c.integer_rows(layout, blocks, state, w_t)
        declared.append((c, rows))
    # cash and cost enter the rows through an epigraph c >= cost (the MIP's cost is
    # convex, not affine; a row prices cost with a positive sign, as a cash floor does)
    uses_cost = any(np.any(np.asarray(r.col) < -n) for _, rows in declared for r in rows)
    cost_col: cp.Expression = cp.Constant(0.0)
    if uses_cost:
        cost_col = cp.Variable(name="cost_epigraph")
        cons.append(cost_col >= cost)
    columns = _columns(layout, zv, tv, integer_vars, w0, state.cash_weight, cost_col)

    def index(col: np.ndarray) -> np.ndarray:
        # real columns as they are; virtual w, cash, cost after them
        return np.where(col >= 0, col, layout.ncols - 1 - col)

    for c, rows in declared:
        written = rows_to_cvxpy(rows, columns, index)
        v = cp.Variable(nonneg=True) if c.soft and written else None
        for lhs, rhs, main in written:
            cons.append(lhs <= rhs + v if v is not None and main else lhs <= rhs)
        if v is not None:
            obj.append(SCALE * float(c.penalty) * v)
    problem = cp.Problem(cp.Minimize(cp.sum(cp.hstack(obj))), cons)

    opts: dict[str, Any]
    if solver == "HIGHS":
        if not linear:
            raise Unsupported("HiGHS takes a linear objective only (use SCIP)")
        opts = {"time_limit": float(time_limit), "mip_rel_gap": 1e-9}
        if node_limit is not None:
            opts["mip_max_nodes"] = int(node_limit)
    else:
        opts = {"scip_params": {"numerics/feastol": 1e-9, "limits/time": float(time_limit)}}
        if node_limit is not None:  # a count: the same plan on every run when it binds
            opts["scip_params"]["limits/totalnodes"] = int(node_limit)
    if solver == "SCIP":
        return _solve_scip(problem, q, opts, t0)
    try:
        problem.solve(solver=solver, **opts)
    except (cp.error.SolverError, ValueError, ArithmeticError, KeyError) as exc:
        return MipResult(None, f"error: {type(exc).__name__}: {exc}"[:200], solver, None, None,
                         None, time.perf_counter() - t0, False)
    wall = time.perf_counter() - t0
    status = str(problem.status)
    stats = problem.solver_stats
    extra = getattr(stats, "extra_stats", None)
    bound, proven, raw_status = None, status == "optimal", status
    qv_val = q.value if status not in ("infeasible", "unbounded") else None
    value = problem.value if qv_val is not None else None
    try:
        bound = float(extra.mip_dual_bound) / SCALE  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        bound = None
    if status == "infeasible":
        proven = True
    qr = None if qv_val is None else np.round(np.asarray(qv_val, dtype=float))
    if qv_val is not None and np.max(np.abs(qr - qv_val)) > 1e-5:
        return MipResult(None, f"{raw_status} (non-integral answer)", solver, bound, None,
                         stats.solve_time, wall, False)
    return MipResult(qr, raw_status, solver, bound,
                     None if value is None else float(value) / SCALE,
                     getattr(stats, "solve_time", None), wall, proven)


def _columns(layout: MatrixLayout, z: cp.Expression, t: cp.Expression,
             integer_vars: dict[Any, cp.Expression], w0: FloatArray, c0: float,
             cost: cp.Expression) -> cp.Expression:
    """Every column of ``layout`` as one cvxpy vector (affine), then the virtual blocks
    ``w`` (``n``), ``cash`` and ``cost`` (``cost`` affine: the caller's epigraph): the
    integer program's own variables for its integer blocks, a fresh continuous
    variable for each constraint's auxiliary block."""
    parts: list[cp.Expression] = [z, t]
    for key, cols in layout.aux_blocks():
        parts.append(integer_vars.get(key, cp.Variable(cols.size, name="aux")))
    cash = cp.reshape(c0 - cp.sum(z) - cost, (1,), order="C")
    return cp.hstack(parts + [w0 + z, cash, cp.reshape(cost, (1,), order="C")])


def _solve_scip(problem: cp.Problem, q: cp.Expression, opts: dict[str, Any],
                t0: float) -> MipResult:
    """SCIP through cvxpy's own reduction chain, keeping the model for its dual bound
    (``Problem.solve`` raises and loses it when the time limit hits before a plan)."""
    try:
        data, chain, inv = problem.get_problem_data("SCIP")
        raw = chain.solver.solve_via_data(data, False, False,
                                          {"scip_params": dict(opts["scip_params"])})
    except (cp.error.SolverError, ValueError, ArithmeticError, KeyError) as exc:
        return MipResult(None, f"error: {type(exc).__name__}: {exc}"[:200], "SCIP", None, None,
                         None, time.perf_counter() - t0, False)
    model = raw.get("model")
    scip_status = str(raw.get("scip_status", "unknown"))
    offset = float(data.get("offset", 0.0))
    bound = None
    if model is not None:
        try:
            dual = float(model.getDualbound())
            if np.isfinite(dual) and abs(dual) < 1e19:
                bound = (dual + offset) / SCALE
        except Exception:  # noqa: BLE001 - a bound is optional
            bound = None
    qr, value = None, None
    if "primal" in raw:
        try:
            problem.unpack_results(raw, chain, inv)
            if q.value is not None:
                qv = np.asarray(q.value, dtype=float)
                qr = np.round(qv)
                if np.max(np.abs(qr - qv)) > 1e-5:
                    return MipResult(None, f"{scip_status} (non-integral answer)", "SCIP",
                                     bound, None, raw.get("solve_time"),
                                     time.perf_counter() - t0, False)
                value = float(problem.value) / SCALE
        except (cp.error.SolverError, ValueError) as exc:
            scip_status += f" (unpack failed: {exc})"[:120]
            qr = None
    proven = scip_status in ("optimal", "infeasible")
    status = "infeasible" if scip_status == "infeasible" else scip_status
    return MipResult(qr, status, "SCIP", bound, value, raw.get("solve_time"),
                     time.perf_counter() - t0, proven)
