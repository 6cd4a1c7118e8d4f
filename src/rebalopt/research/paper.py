"""The cost-free "paper" portfolio and the realized tracking error to it.

The paper portfolio is what the targets promise: it holds exactly the target
weights after the close of every decision date (fractional shares, no cost),
lets them drift with prices in between, and keeps ``1 - sum(w*)`` in cash at a
zero rate. A run that trades to every target at no cost reproduces it (up to
whole shares), so it is the floor every rebalancer is measured against.

Units: returns are simple per-bar returns (fractions); tracking error is
annualized (fraction per sqrt(year)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.backtest import DataFeed
from rebalopt.errors import InputError

__all__ = ["paper_returns", "paper_weights", "tracking_error", "whole_share_floor"]


def _price_returns(feed: DataFeed) -> FloatArray:
    """Close-to-close returns with marks carried over missing bars (0 on a missing bar)."""
    marks = pd.DataFrame(feed.close).ffill().to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = marks[1:] / marks[:-1] - 1.0
    r = np.vstack([np.zeros((1, feed.n_assets)), r])
    return np.where(np.isfinite(r), r, 0.0)


def _aligned(feed: DataFeed, targets: pd.DataFrame) -> tuple[np.ndarray, FloatArray]:
    pos = feed.dates.get_indexer(pd.DatetimeIndex(targets.index))
    if (pos < 0).any():
        bad = targets.index[pos < 0][0]
        raise InputError(f"target date {pd.Timestamp(bad).date()} is not a bar of the feed",
                         field="targets")
    cols = [str(c) for c in targets.columns]
    extra = [c for c in cols if c not in set(feed.assets)]
    if extra:
        raise InputError("target ticker is not in the feed", asset=extra[0], field="targets")
    W = targets.copy()
    W.columns = cols
    return pos, W.reindex(columns=feed.assets).fillna(0.0).to_numpy(float)


def _simulate(feed: DataFeed, targets: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    pos, W = _aligned(feed, targets)
    R = _price_returns(feed)
    T, N = R.shape
    ret = np.full(T, np.nan)
    weights = np.full((T, N), np.nan)
    w = None
    k = 0
    for t in range(T):
        if w is not None:
            gross = w * (1.0 + R[t])
            port = 1.0 + float(R[t] @ w)  # cash weight 1 - sum(w) earns nothing
            ret[t] = port - 1.0
            w = gross / port
        if k < len(pos) and pos[k] == t:
            w = W[k].copy()
            k += 1
        if w is not None:
            weights[t] = w
    return ret, weights


def paper_returns(feed: DataFeed, targets: pd.DataFrame) -> pd.Series:
    """Bar returns of the paper portfolio (NaN up to and including the first decision date).

    Parameters
    ----------
    feed
        The data the backtests run on; returns use its closes (a missing bar
        keeps the last close, as the broker's marks do).
    targets
        ``decision dates x tickers`` target weights (every date a bar of ``feed``).
    """
    ret, _ = _simulate(feed, targets)
    return pd.Series(ret, index=feed.dates, name="paper")


def paper_weights(feed: DataFeed, targets: pd.DataFrame) -> pd.DataFrame:
    """The paper portfolio's weights after each bar's close (``dates x assets``)."""
    _, w = _simulate(feed, targets)
    return pd.DataFrame(w, index=feed.dates, columns=feed.assets)


def tracking_error(returns: pd.Series | FloatArray, paper: pd.Series | FloatArray,
                   periods_per_year: float = 252.0) -> float:
    r"""Realized tracking error to the paper portfolio, annualized.

    .. math:: \text{TE} = \operatorname{std}_{t}(r_t - r^{\text{paper}}_t)\,\sqrt{P}

    with the sample standard deviation (``ddof=1``) over the bars where the paper
    return is defined (after the first decision date) and ``P`` bars per year.
    """
    a = np.asarray(returns, dtype=float) - np.asarray(paper, dtype=float)
    a = a[np.isfinite(a)]
    if len(a) < 2:
        return float("nan")
    return float(a.std(ddof=1) * np.sqrt(periods_per_year))


def whole_share_floor(feed: DataFeed, equity: pd.Series | FloatArray,
                      start: int, periods_per_year: float = 252.0) -> float:
    r"""Upper bound on the tracking error caused by whole shares alone.

    A run that trades to every target at zero cost, rounding each trade to the
    nearest share, is off the paper book by at most half a share per asset. Its
    daily return then differs from the paper's by at most

    .. math:: b_t = \sum_i \tfrac12\,|p_{i,t} - p_{i,t-1}| \,/\, E_{t-1}

    (plus second-order terms from the slightly different equity). This returns
    :math:`\sqrt{P \cdot \text{mean}_t\, b_t^2}` over bars after ``start`` (the first
    decision bar), which bounds the annualized standard deviation of the
    differences; tests allow a small relative slack for the second-order terms.
    """
    marks = pd.DataFrame(feed.close).ffill().to_numpy(float)
    dp = np.abs(np.diff(marks, axis=0))
    dp = np.where(np.isfinite(dp), dp, 0.0)
    eq = np.asarray(equity, dtype=float)
    b = 0.5 * dp.sum(axis=1) / eq[:-1]
    b = b[start:]
    return float(np.sqrt(periods_per_year * np.mean(b**2)))
