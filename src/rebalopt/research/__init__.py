"""Research harness: naive vs tolerance-band vs optimal rebalancing on real data.

Precompute targets once (:func:`target_schedule`, :func:`risk_schedule`), run every
policy through the same backtest (:func:`compare`, :func:`frontier`), compare at
equal tracking error (:func:`equal_te_table`), plot and write a self-contained
HTML report (:func:`write_report`). :func:`run_demo` does all of it on real
prices shipped in skfolio's wheel.
"""

from rebalopt.research.baselines import (
    TWAPRebalancer,
    daily_band_runs,
    daily_optimal_runs,
    equal_te_against,
    multiperiod_runs,
    twap_runs,
)
from rebalopt.research.compare import (
    Comparison,
    FundingRebalancer,
    Run,
    band_runs,
    compare,
    default_runs,
    frontier,
    naive_runs,
    optimal_runs,
)
from rebalopt.research.paper import paper_returns, paper_weights, tracking_error, whole_share_floor
from rebalopt.research.quality import cost_at_tracking_error, efficient_points, equal_te_table
from rebalopt.research.strategy import RoundedRebalancer, ScheduledTargets
from rebalopt.research.targets import (
    RiskSchedule,
    inverse_volatility,
    min_variance,
    rebalance_dates,
    risk_schedule,
    target_schedule,
)
from rebalopt.research.universe import liquidity_spreads, sp500_universe

# Plots, the HTML report and the demo need matplotlib (the ``demo`` extra): they are
# imported on first use, so the rest of the harness works on a core install.
_LAZY = {
    "plot_drift": "rebalopt.research.plots",
    "plot_equity": "rebalopt.research.plots",
    "plot_frontier": "rebalopt.research.plots",
    "plot_turnover": "rebalopt.research.plots",
    "write_report": "rebalopt.research.report",
    "run_demo": "rebalopt.research.demo",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rebalopt.research' has no attribute {name!r}")

__all__ = [
    "Comparison",
    "FundingRebalancer",
    "RiskSchedule",
    "RoundedRebalancer",
    "Run",
    "ScheduledTargets",
    "TWAPRebalancer",
    "band_runs",
    "compare",
    "cost_at_tracking_error",
    "daily_band_runs",
    "daily_optimal_runs",
    "default_runs",
    "efficient_points",
    "equal_te_against",
    "equal_te_table",
    "frontier",
    "inverse_volatility",
    "liquidity_spreads",
    "min_variance",
    "multiperiod_runs",
    "naive_runs",
    "optimal_runs",
    "paper_returns",
    "paper_weights",
    "plot_drift",
    "plot_equity",
    "plot_frontier",
    "plot_turnover",
    "rebalance_dates",
    "risk_schedule",
    "run_demo",
    "sp500_universe",
    "target_schedule",
    "tracking_error",
    "twap_runs",
    "whole_share_floor",
    "write_report",
]
