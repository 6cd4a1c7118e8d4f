"""Research harness: naive vs tolerance-band vs optimal rebalancing on real data.

Precompute targets once (:func:`target_schedule`, :func:`risk_schedule`), run every
policy through the same backtest (:func:`compare`, :func:`frontier`), compare at
equal tracking error (:func:`equal_te_table`), plot and write a self-contained
HTML report (:func:`write_report`). :func:`run_demo` does all of it on real
prices shipped in skfolio's wheel.
"""

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
from rebalopt.research.demo import run_demo
from rebalopt.research.paper import paper_returns, paper_weights, tracking_error, whole_share_floor
from rebalopt.research.plots import (
    plot_drift,
    plot_equity,
    plot_frontier,
    plot_turnover,
)
from rebalopt.research.quality import cost_at_tracking_error, efficient_points, equal_te_table
from rebalopt.research.report import write_report
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

__all__ = [
    "Comparison",
    "FundingRebalancer",
    "RiskSchedule",
    "RoundedRebalancer",
    "Run",
    "ScheduledTargets",
    "band_runs",
    "compare",
    "cost_at_tracking_error",
    "default_runs",
    "efficient_points",
    "equal_te_table",
    "frontier",
    "inverse_volatility",
    "liquidity_spreads",
    "min_variance",
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
    "whole_share_floor",
    "write_report",
]
