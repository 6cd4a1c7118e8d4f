"""The trade schedule of ``rebalopt rebalance --periods N --schedule CSV``.

:class:`~rebalopt.rebalance.multiperiod.MultiPeriodRebalancer` plans the trades of
the next ``N`` periods (the config's ``[optimal] horizon`` split into ``N`` equal
periods); the order file holds the first period's orders. The schedule file has one
row per period and one column per ticker: signed shares at today's prices (``+``
buy, ``-`` sell), then the period's expected cost (currency), the post-trade cash
(currency) and the annualized tracking error after the period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rebalopt.errors import InputError

__all__ = ["SUMMARY_COLUMNS", "schedule_frame", "schedule_lines", "write_schedule"]

SUMMARY_COLUMNS = ("expected_cost", "cash", "tracking_error")
"""The schedule's columns after the tickers'."""


def schedule_frame(plan: Any) -> pd.DataFrame:
    """Periods x (tickers in shares, ``expected_cost``, ``cash``, ``tracking_error``)."""
    info = plan.info
    equity = plan.state.equity
    frame = info["schedule_shares"].copy()
    frame.columns = [str(c) for c in frame.columns]
    clash = [c for c in frame.columns if c in SUMMARY_COLUMNS]
    if clash:  # the summary column would overwrite the ticker's shares
        raise InputError(f"a ticker named {clash[0]!r} clashes with the schedule's "
                         f"{clash[0]!r} column: rename the asset", asset=clash[0])
    frame["expected_cost"] = info["expected_cost"] * equity
    frame["cash"] = info["cash_path"] * equity
    frame["tracking_error"] = info["tracking_error"]
    return frame


def write_schedule(plan: Any, path: str | Path) -> Path:
    """Write :func:`schedule_frame` as CSV (index column ``period``)."""
    schedule_frame(plan).to_csv(path, index_label="period", float_format="%.10g")
    return Path(path)


def schedule_lines(plan: Any) -> list[str]:
    """One line per period: trades, traded value, expected cost, tracking error."""
    info = plan.info
    equity = plan.state.equity
    z = info["schedule"]
    out = [(f"  schedule: {info['periods']} periods of {info['period'] * 252:.4g} trading days "
           "(orders: period 1)")]
    for t in z.index:
        row = z.loc[t]
        n = int((row.abs() * equity > 0.005).sum())
        out.append(f"    period {t}: {n} trades, {row.abs().sum() * equity:,.2f} traded, "
                   f"expected cost {info['expected_cost'][t] * equity:,.2f}, tracking error "
                   f"{info['tracking_error'][t]:.4%}")
    return out
