"""Compare policies at equal realized tracking error, along the optimal frontier.

The optimal runs trace a curve of realized tracking error (TE) against cost. A
baseline run (naive, band) is judged by the optimal cost *at the baseline's own
TE*, read off the frontier by linear interpolation between its efficient points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rebalopt.errors import InputError

__all__ = ["cost_at_tracking_error", "efficient_points", "equal_te_table"]


def efficient_points(te: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto-efficient points (no other point has both lower TE and lower cost),
    sorted by increasing TE (so cost decreases along them)."""
    te = np.asarray(te, dtype=float)
    cost = np.asarray(cost, dtype=float)
    ok = np.isfinite(te) & np.isfinite(cost)
    te, cost = te[ok], cost[ok]
    order = np.lexsort((cost, te))
    te, cost = te[order], cost[order]
    keep_te, keep_cost = [], []
    best = np.inf
    for x, c in zip(te, cost):
        if c < best:
            keep_te.append(x)
            keep_cost.append(c)
            best = c
    return np.array(keep_te), np.array(keep_cost)


def cost_at_tracking_error(te: np.ndarray, cost: np.ndarray, at: float,
                           interpolation: str = "linear") -> tuple[float, str]:
    """Optimal cost at tracking error ``at``, interpolated on the efficient frontier.

    ``interpolation="linear"`` is linear in TE and cost between the two neighbouring
    efficient points; ``"loglog"`` is linear in ``log TE`` and ``log cost`` (a power
    law between them, which follows a cost-TE frontier's curvature more closely;
    it needs positive costs, else it falls back to linear for that pair).

    Returns ``(cost, how)``, ``how`` one of:

    * ``"interpolated"``: ``at`` lies within the frontier's TE range (linear in TE
      between the two neighbouring efficient points; exact on a point);
    * ``"bound"``: ``at`` is above the frontier's largest TE; the cost of that
      point (lower TE, hence a conservative upper bound on the frontier's cost at
      ``at``) is returned;
    * ``"below range"``: ``at`` is below the smallest TE the frontier reached;
      NaN is returned (no honest comparison is possible).
    """
    x, y = efficient_points(te, cost)
    if len(x) == 0:
        raise InputError("the frontier has no finite point", field="frontier")
    if at < x[0] - 1e-12:
        return float("nan"), "below range"
    if at > x[-1]:
        return float(y[-1]), "bound"
    if interpolation == "loglog" and at > 0 and (x > 0).all():
        i = int(np.searchsorted(x, at))
        lo, hi = max(i - 1, 0), min(i, len(x) - 1)
        if lo != hi and y[lo] > 0 and y[hi] > 0:
            t = (np.log(at) - np.log(x[lo])) / (np.log(x[hi]) - np.log(x[lo]))
            return float(np.exp(np.log(y[lo]) + t * (np.log(y[hi]) - np.log(y[lo])))), \
                "interpolated"
    return float(np.interp(at, x, y)), "interpolated"


def equal_te_table(table: pd.DataFrame, cost_col: str = "cost_bps",
                   interpolation: str = "linear") -> pd.DataFrame:
    """Cost of every non-optimal run against the optimal frontier at its own TE.

    Parameters
    ----------
    table
        :attr:`Comparison.table` (``kind``, ``tracking_error`` and ``cost_col``);
        rows of kind ``"optimal"`` form the frontier.
    cost_col
        Cost column (default ``cost_bps``, bps of average equity per year).
    interpolation
        ``"linear"`` (default) or ``"loglog"`` along the frontier
        (:func:`cost_at_tracking_error`).

    Returns
    -------
    DataFrame
        One row per baseline run: its ``tracking_error`` and ``cost_bps``, the
        frontier's ``optimal_cost_bps`` at that TE, ``ratio`` (optimal / baseline;
        below 1 means the optimal frontier pays less) and ``how`` (see
        :func:`cost_at_tracking_error`).
    """
    if interpolation not in ("linear", "loglog"):
        raise InputError(f"must be 'linear' or 'loglog', got {interpolation!r}",
                         field="interpolation")
    opt = table[table["kind"] == "optimal"]
    if opt.empty:
        raise InputError("no optimal run in the table", field="table")
    rows = []
    for name, r in table[table["kind"] != "optimal"].iterrows():
        c, how = cost_at_tracking_error(opt["tracking_error"].to_numpy(),
                                        opt[cost_col].to_numpy(), float(r["tracking_error"]),
                                        interpolation)
        base = float(r[cost_col])
        rows.append({"run": name, "kind": r["kind"], "tracking_error": r["tracking_error"],
                     "cost_bps": base, "optimal_cost_bps": c,
                     "ratio": c / base if base > 0 else float("nan"), "how": how})
    return pd.DataFrame(rows).set_index("run")
