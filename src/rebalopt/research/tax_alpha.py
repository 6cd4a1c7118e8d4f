"""Direct indexing with tax lots: tax alpha of tax-aware rebalancing on the S&P panel.

The experiment (DESIGN section 10, issue 18): an equal-weighted index of ``n``
liquid S&P names, held as single stocks in a taxable cash account, rebalanced
monthly by the same optimal rebalancer (same risk model, spread costs, long-only, no
borrowing) with and without the tax term, the broker keeping the lots (FIFO for the
tax-unaware run, the optimizer's lots for the tax-aware run), the wash-sale rule on
or off. Tax alpha is the difference of the annualized after-tax returns
(:func:`~rebalopt.backtest.lots.tax_alpha`), reported beside the realized tracking
error of each run to the index.

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
from rebalopt.research.strategy import ScheduledTargets
from rebalopt.research.targets import risk_schedule
from rebalopt.taxes import TaxRates, WashSaleRule

__all__ = [
    "ANCHORS",
    "TaxRun",
    "direct_index_feeds",
    "run_tax_backtest",
    "spread_cost",
    "tax_alpha_table",
]

ANCHORS = {"Chaudhuri-Burnham-Lo 2020, no wash-sale rule": 0.0108,
           "Chaudhuri-Burnham-Lo 2020, wash-sale rule": 0.0082}
"""Published tax alpha per year (fractions)."""


def direct_index_feeds(daily: DataFeed, start: str | None = None) -> tuple[DataFeed,
                                                                            pd.DataFrame]:
    """Month-end bars of ``daily`` (from ``start``) and the daily closes (for risk).

    Returns
    -------
    monthly
        A :class:`DataFeed` of the last bar of each month (closes only).
    closes
        Daily closes ``dates x tickers`` (for :func:`~rebalopt.research.risk_schedule`).
    """
    closes = pd.DataFrame(daily.close, index=daily.dates, columns=daily.assets)
    sel = closes.loc[start:] if start is not None else closes
    me = sel.groupby(sel.index.to_period("M")).tail(1)
    groups = None if daily.groups is None else pd.Series(daily.groups, index=daily.assets)
    return DataFeed.from_wide(me, groups=groups), closes


@dataclass
class TaxRun:
    """One backtest of the experiment and its figures."""

    name: str
    result: Any
    tracking_error: float
    after_tax_return: float
    pre_tax_return: float
    tax: float
    n_wash_sales: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def run_tax_backtest(monthly: DataFeed, closes: pd.DataFrame, rebalancer: Any, *,
                     broker_costs: Sequence[CostModel], rates: TaxRates, wash_sale: WashSaleRule | None, method: str = "fifo",
                     initial_cash: float = 10_000_000.0, name: str = "run",
                     lookback: int = 252, estimator: Any = None) -> TaxRun:
    """Backtest ``rebalancer`` on the monthly equal-weight index with a lot-keeping broker.

    ``rebalancer.risk`` is replaced by trailing covariances (``lookback`` days);
    ``broker_costs`` are the trading costs the broker charges (the rebalancer's
    without the tax term: the broker's tracker books the tax from the lots sold).
    """
    dates = monthly.dates[monthly.dates >= closes.index[lookback]]
    n = monthly.n_assets
    targets = pd.DataFrame(1.0 / n, index=dates, columns=monthly.assets)
    risk = risk_schedule(closes, dates, lookback=lookback, estimator=estimator)
    inner = getattr(rebalancer, "inner", rebalancer)
    inner.risk = risk
    strat = ScheduledTargets(targets, rebalancer, risk=risk)
    broker = SimulatedBroker(initial_cash, costs=list(broker_costs),
                             fractional=True,
                             taxes=TaxLotTracker(method=method, wash_sale=wash_sale, rates=rates))
    t0 = time.perf_counter()
    res = Engine(monthly, strat, broker, "same_bar", progress=False, periods_per_year=12).run()
    secs = time.perf_counter() - t0
    start = int(np.searchsorted(monthly.dates, dates[0])) + 1
    act = res.active_returns[start:]
    te = float(np.nanstd(act, ddof=1) * np.sqrt(12))
    return TaxRun(name, res, te, res.taxes.after_tax_return(), res.cagr, res.taxes.total_tax,
                  len(res.taxes.washes), secs)


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
