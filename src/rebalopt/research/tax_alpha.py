r"""Direct indexing with tax lots: tax alpha of tax-aware rebalancing on the S&P panel.

The experiment (DESIGN section 10, issue 18): an equal-weighted index of ``n``
liquid S&P names, held as single stocks in a taxable cash account, rebalanced
monthly by the same optimal rebalancer (same risk model, spread costs, long-only, no
borrowing) with and without the tax term, the broker keeping the lots (FIFO for the
tax-unaware run, the optimizer's lots for the tax-aware run), the wash-sale rule on
or off. Tax alpha is the difference of the annualized after-tax returns
(:func:`~rebalopt.backtest.lots.tax_alpha`), reported beside the realized tracking
error of each run to the index.

At equal tracking error: a tax-aware run that simply trades less also tracks worse,
so one tax-aware run against one tax-unaware run mixes tax with tracking. Both
policies are swept over the risk aversion (:func:`tax_frontier`, one compiled
rebalancer per policy), each sweep giving a frontier of after-tax return against
realized tracking error (TE), and :func:`equal_te_tax_alpha` reads both frontiers at
the same TE over their common range (:func:`~rebalopt.research.cost_at_tracking_error`
on the efficient points, the package's equal-TE rule; or along the raw sweep):

.. math:: \alpha(\mathrm{TE}) = R^{\mathrm{aware}}_{\mathrm{after}}(\mathrm{TE})
          - R^{\mathrm{unaware}}_{\mathrm{after}}(\mathrm{TE}).

:func:`tax_alpha_at_own_te` judges each run against the other policy's frontier at
the run's own TE (:func:`~rebalopt.research.equal_te_against`).

Simplifications, stated: prices are split- and dividend-adjusted closes (dividends
reinvested, not taxed); the tax of each year is accrued at the year's sales and paid
from a side account (not from the portfolio), net losses valued at the loss rate
(offsetting gains taxed elsewhere, no carry-forward); the panel holds April-2021
members only (survivorship bias: fewer losers than a real index, which understates
harvesting). Published anchors: Chaudhuri, Burnham and Lo (FAJ 2020, CRSP top 500,
1926-2018): 1.08%/yr before the wash-sale rule, 0.82%/yr with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.backtest import DataFeed, Engine, SimulatedBroker
from rebalopt.backtest.lots import TaxLotTracker, tax_alpha
from rebalopt.costs import CostModel, Spread
from rebalopt.errors import InputError
from rebalopt.research.baselines import equal_te_against
from rebalopt.research.disclose import run_constraints, run_costs
from rebalopt.research.quality import cost_at_tracking_error
from rebalopt.research.strategy import ScheduledTargets
from rebalopt.research.targets import RiskSchedule, risk_schedule
from rebalopt.taxes import TaxRates, WashSaleRule

__all__ = [
    "ANCHORS",
    "PERIODS_PER_YEAR",
    "TaxRun",
    "direct_index_feeds",
    "equal_te_tax_alpha",
    "frontier_table",
    "mean_tax_alpha",
    "run_tax_backtest",
    "spread_cost",
    "tax_alpha_at_own_te",
    "tax_alpha_table",
    "tax_frontier",
]

PERIODS_PER_YEAR = {"M": 12.0, "W": 52.0}
"""Bars per year of each decision frequency of :func:`direct_index_feeds`."""

ANCHORS = {"Chaudhuri-Burnham-Lo 2020, no wash-sale rule": 0.0108,
           "Chaudhuri-Burnham-Lo 2020, wash-sale rule": 0.0082}
"""Published tax alpha per year (fractions)."""


def direct_index_feeds(daily: DataFeed, start: str | None = None,
                       frequency: str = "M") -> tuple[DataFeed, pd.DataFrame]:
    """Month-end (or week-end) bars of ``daily`` (from ``start``) and the daily closes.

    Parameters
    ----------
    frequency
        ``"M"``: the last bar of each month; ``"W"``: the last bar of each week
        (a higher harvest frequency; :data:`PERIODS_PER_YEAR` gives the bars per year).

    Returns
    -------
    monthly
        A :class:`DataFeed` of the last bar of each period (closes only).
    closes
        Daily closes ``dates x tickers`` (for :func:`~rebalopt.research.risk_schedule`).
    """
    closes = pd.DataFrame(daily.close, index=daily.dates, columns=daily.assets)
    if frequency not in PERIODS_PER_YEAR:
        raise InputError(f"must be one of {sorted(PERIODS_PER_YEAR)}, got {frequency!r}",
                         field="frequency")
    sel = closes.loc[start:] if start is not None else closes
    me = sel.groupby(sel.index.to_period(frequency)).tail(1)
    groups = None if daily.groups is None else pd.Series(daily.groups, index=daily.assets)
    return DataFeed.from_wide(me, groups=groups), closes


@dataclass
class TaxRun:
    """One backtest of the experiment and its figures.

    Attributes
    ----------
    tracking_error
        Realized TE to the index, annualized standard deviation of bar active returns.
    after_tax_return, pre_tax_return
        Annualized, fractions (after tax: equity minus the tax accrued in the side
        account, no liquidation at the end).
    tax
        Tax accrued over the run, currency (negative = saved).
    kind, risk_aversion
        ``"aware"`` / ``"unaware"`` (or a user label) and the run's ``gamma``.
    constraints, planning_costs
        What the rebalancer planned under, in words (:mod:`rebalopt.research.disclose`).
    """

    name: str
    result: Any
    tracking_error: float
    after_tax_return: float
    pre_tax_return: float
    tax: float
    n_wash_sales: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "custom"
    risk_aversion: float = float("nan")
    constraints: str = ""
    planning_costs: str = ""


def run_tax_backtest(monthly: DataFeed, closes: pd.DataFrame, rebalancer: Any, *,
                     broker_costs: Sequence[CostModel], rates: TaxRates, wash_sale: WashSaleRule | None, method: str = "fifo",
                     initial_cash: float = 10_000_000.0, name: str = "run",
                     lookback: int = 252, estimator: Any = None,
                     risk: RiskSchedule | None = None, periods_per_year: float = 12.0,
                     kind: str = "custom") -> TaxRun:
    """Backtest ``rebalancer`` on the equal-weight index with a lot-keeping broker.

    ``rebalancer.risk`` is replaced by ``risk`` or by trailing covariances
    (``lookback`` days, estimated on every decision date); ``broker_costs`` are the
    trading costs the broker charges (the rebalancer's without the tax term: the
    broker's tracker books the tax from the lots sold). ``periods_per_year``: bars of
    ``monthly`` per year (12 for month-end bars, 52 for week-end bars).
    """
    dates = monthly.dates[monthly.dates >= closes.index[lookback]]
    n = monthly.n_assets
    targets = pd.DataFrame(1.0 / n, index=dates, columns=monthly.assets)
    if risk is None:
        risk = risk_schedule(closes, dates, lookback=lookback, estimator=estimator)
    inner = getattr(rebalancer, "inner", rebalancer)
    inner.risk = risk
    strat = ScheduledTargets(targets, rebalancer, risk=risk)
    broker = SimulatedBroker(initial_cash, costs=list(broker_costs),
                             fractional=True,
                             taxes=TaxLotTracker(method=method, wash_sale=wash_sale, rates=rates))
    t0 = time.perf_counter()
    res = Engine(monthly, strat, broker, "same_bar", progress=False,
                 periods_per_year=periods_per_year).run()
    secs = time.perf_counter() - t0
    start = int(np.searchsorted(monthly.dates, dates[0])) + 1
    act = res.active_returns[start:]
    te = float(np.nanstd(act, ddof=1) * np.sqrt(periods_per_year))
    gamma = getattr(inner, "risk_aversion", float("nan"))
    return TaxRun(name, res, te, res.taxes.after_tax_return(), res.cagr, res.taxes.total_tax,
                  len(res.taxes.washes), secs, kind=kind, risk_aversion=float(gamma),
                  constraints=run_constraints(rebalancer), planning_costs=run_costs(rebalancer))


def tax_frontier(monthly: DataFeed, closes: pd.DataFrame, rebalancer: Any,
                 risk_aversions: Sequence[float], *, kind: str,
                 risk: RiskSchedule, **kwargs: Any) -> list[TaxRun]:
    """One run per risk aversion, all on ONE rebalancer (compiled once, ``gamma`` set
    on it, or on the rebalancer it wraps, before each run) and one risk schedule.

    ``kwargs`` go to :func:`run_tax_backtest` (costs, rates, wash-sale rule, lot
    method, bars per year: the same for every run of a comparison).
    """
    inner = getattr(rebalancer, "inner", rebalancer)
    out = []
    for g in risk_aversions:
        inner.risk_aversion = float(g)
        out.append(run_tax_backtest(monthly, closes, rebalancer, risk=risk, kind=kind,
                                    name=f"{kind} γ={g:g}", **kwargs))
    return out


def frontier_table(runs: Sequence[TaxRun]) -> pd.DataFrame:
    """One row per run: ``kind``, ``risk_aversion``, ``tracking_error``, pre- and
    after-tax annualized return (fractions; ``after_tax_liquidated`` also pays the tax
    of selling every open lot at the end), ``tax_drag`` (pre minus after tax),
    ``tax`` (currency), wash sales, and the run's constraints and planning costs."""
    rows = []
    for r in runs:
        rep = r.result.taxes
        rows.append({"run": r.name, "kind": r.kind, "risk_aversion": r.risk_aversion,
                     "tracking_error": r.tracking_error, "pre_tax_return": r.pre_tax_return,
                     "after_tax_return": r.after_tax_return,
                     "after_tax_liquidated": rep.after_tax_return(liquidate=True),
                     "tax_drag": r.pre_tax_return - r.after_tax_return, "tax": r.tax,
                     "n_wash_sales": r.n_wash_sales, "constraints": r.constraints,
                     "planning_costs": r.planning_costs, "seconds": r.seconds})
    return pd.DataFrame(rows).set_index("run")


def _curve(table: pd.DataFrame, kind: str, value: str) -> tuple[np.ndarray, np.ndarray]:
    fr = table[table["kind"] == kind]
    if fr.empty:
        raise InputError(f"no run of kind {kind!r} in the table", field="table")
    te = fr["tracking_error"].to_numpy(dtype=float)
    v = fr[value].to_numpy(dtype=float)
    ok = np.isfinite(te) & np.isfinite(v)
    if not ok.any():
        raise InputError(f"the {kind!r} frontier has no finite point", field="table")
    order = np.argsort(te[ok], kind="stable")
    return te[ok][order], v[ok][order]


def _value_at(te: np.ndarray, v: np.ndarray, at: float, frontier: str) -> tuple[float, str]:
    if frontier == "efficient":  # higher is better: the package's rule on -value
        c, how = cost_at_tracking_error(te, -v, at)
        return -c, how
    if at < te[0] - 1e-12 or at > te[-1] + 1e-12:
        return float("nan"), "out of range"
    return float(np.interp(at, te, v)), "interpolated"


def equal_te_tax_alpha(table: pd.DataFrame, *, aware: str = "aware",
                       unaware: str = "unaware", value: str = "after_tax_return",
                       points: int = 5, frontier: str = "efficient",
                       at: Sequence[float] | None = None) -> pd.DataFrame:
    """Tax alpha at equal realized tracking error over the two frontiers' common range.

    Parameters
    ----------
    table
        :func:`frontier_table` (columns ``kind``, ``tracking_error`` and ``value``).
    aware, unaware
        The ``kind`` of the runs forming each frontier.
    value
        The column compared, higher is better (annualized after-tax return by default).
    points
        Evenly spaced TEs from the common range's low end to its high end.
    frontier
        ``"efficient"``: each frontier is its efficient points (no run has both lower
        TE and higher ``value``), linear in TE between them, flat beyond the last
        (:func:`~rebalopt.research.cost_at_tracking_error`); ``"sweep"``: every run,
        linear in TE between neighbours sorted by TE (no selection of lucky runs).
    at
        TEs to read the frontiers at instead of the even grid (annualized fractions;
        those outside the common range are left out: no extrapolation).

    Returns
    -------
    DataFrame
        One row per TE (annualized fraction) of the common range
        ``[max of the two smallest TEs, min of the two largest]``: ``aware``,
        ``unaware`` (the frontiers' ``value`` there), ``tax_alpha`` = aware - unaware,
        ``how_aware`` / ``how_unaware``. Empty when the ranges do not overlap.
    """
    if frontier not in ("efficient", "sweep"):
        raise InputError(f"must be 'efficient' or 'sweep', got {frontier!r}", field="frontier")
    if int(points) < 1:
        raise InputError(f"must be >= 1, got {points}", field="points")
    ta, va = _curve(table, aware, value)
    tu, vu = _curve(table, unaware, value)
    lo, hi = max(ta[0], tu[0]), min(ta[-1], tu[-1])
    cols = ["tracking_error", "aware", "unaware", "tax_alpha", "how_aware", "how_unaware"]
    if lo > hi:
        return pd.DataFrame(columns=cols)
    if at is not None:
        grid = np.array([x for x in map(float, at) if lo - 1e-12 <= x <= hi + 1e-12])
    else:
        grid = np.linspace(lo, hi, int(points)) if points > 1 else np.array([lo])
    rows = []
    for x in grid:
        a, how_a = _value_at(ta, va, float(x), frontier)
        u, how_u = _value_at(tu, vu, float(x), frontier)
        rows.append([float(x), a, u, a - u, how_a, how_u])
    return pd.DataFrame(rows, columns=cols)


def mean_tax_alpha(grid: pd.DataFrame) -> float:
    """Average of ``tax_alpha`` over the TE range of :func:`equal_te_tax_alpha`'s grid
    (trapezoids in TE; the single value for a one-point range; NaN when empty)."""
    g = grid.dropna(subset=["tax_alpha"])
    if g.empty:
        return float("nan")
    x = g["tracking_error"].to_numpy(dtype=float)
    y = g["tax_alpha"].to_numpy(dtype=float)
    if len(x) == 1 or x[-1] <= x[0]:
        return float(y.mean())
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) / (x[-1] - x[0]))


def tax_alpha_at_own_te(table: pd.DataFrame, *, frontier: str = "unaware",
                        value: str = "after_tax_return") -> pd.DataFrame:
    """Every run not of kind ``frontier`` against that frontier at the run's own TE.

    :func:`~rebalopt.research.equal_te_against` on ``-value``: ``tax_alpha`` is the
    run's ``value`` minus the frontier's at its TE (NaN below the frontier's range;
    ``how`` = ``"bound"`` above it, read at the frontier's largest-TE efficient point).
    """
    t = table.assign(_cost=-table[value].astype(float))
    out = equal_te_against(t, frontier, cost_col="_cost")
    return pd.DataFrame({"kind": out["kind"], "tracking_error": out["tracking_error"],
                         value: -out["cost_bps"], f"frontier_{value}": -out["frontier_cost_bps"],
                         "tax_alpha": out["frontier_cost_bps"] - out["cost_bps"],
                         "how": out["how"]}, index=out.index)


def tax_alpha_table(runs: dict[str, TaxRun], baseline: str) -> pd.DataFrame:
    """One row per run: TE, pre/after-tax return, tax, wash sales, tax alpha vs baseline."""
    base = runs[baseline]
    rows = []
    for name, r in runs.items():
        rows.append({"run": name, "tracking_error": r.tracking_error,
                     "pre_tax_return": r.pre_tax_return,
                     "after_tax_return": r.after_tax_return, "tax": r.tax,
                     "n_wash_sales": r.n_wash_sales,
                     "tax_alpha": tax_alpha(r.result, base.result),
                     "seconds": r.seconds})
    return pd.DataFrame(rows).set_index("run")


def spread_cost(half_spread_bps: float = 5.0) -> Spread:
    """The experiment's trading cost: a half spread in bps on every trade."""
    return Spread(half_spread_bps=half_spread_bps)
