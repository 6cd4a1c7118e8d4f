"""A liquid S&P 500 universe from the shared panel, chosen without looking ahead.

The panel (``../shared/data/sp500``, read in place through
:func:`rebalopt.datasets.load_sp500`) holds April 2021 members only, so a universe
must be chosen by date: here, the ``n`` names with the largest median dollar
volume over the first ``select_bars`` bars among those that trade on every bar
of the period (the survivorship bias of the panel itself remains).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rebalopt.backtest import DataFeed
from rebalopt.datasets import load_sp500
from rebalopt.errors import InputError

__all__ = ["liquidity_spreads", "sp500_universe"]


def sp500_universe(n: int = 100, start: str = "2009-01-01", end: str = "2021-04-21", *,
                   select_bars: int = 252, path: str | Path | None = None) -> DataFeed:
    """The ``n`` most liquid names trading on every bar from ``start`` to ``end``.

    Parameters
    ----------
    n
        Number of names.
    start, end
        Inclusive period (the first year is typically the lookback of the targets).
    select_bars
        Liquidity is the median of ``close * volume`` (raw dollar volume) over the
        first ``select_bars`` bars: known before the later bars are traded.
    path
        The ``sp500`` folder; default ``$REBALOPT_DATA/sp500`` or ``../shared/data/sp500``
        (``FileNotFoundError`` when absent).

    Returns
    -------
    DataFeed
        Split- and dividend-adjusted OHLC, volume in adjusted shares, GICS sectors
        as groups, assets ordered by decreasing liquidity.
    """
    df = load_sp500(path, start=start, end=end)
    dates = pd.DatetimeIndex(sorted(df["date"].unique()))
    close = df.pivot(index="date", columns="ticker", values="close").reindex(dates)
    volume = df.pivot(index="date", columns="ticker", values="volume").reindex(dates)
    full = close.notna().all() & (close > 0).all()
    dollar = (close * volume).iloc[:select_bars].median()
    ranked = dollar[full[full].index].sort_values(ascending=False)
    if len(ranked) < n:
        raise InputError(f"only {len(ranked)} names trade on every bar of {start}..{end}, "
                         f"fewer than {n}", field="n")
    keep = list(ranked.index[:n])
    sub = df[df["ticker"].isin(keep)]
    feed = DataFeed.from_long(sub)
    order = [feed.assets.get_loc(t) for t in keep]
    groups = None if feed.groups is None else pd.Series(feed.groups[order], index=keep)
    return DataFeed.from_wide(
        pd.DataFrame(feed.close[:, order], index=feed.dates, columns=keep),
        open=pd.DataFrame(feed.open[:, order], index=feed.dates, columns=keep),
        high=pd.DataFrame(feed.high[:, order], index=feed.dates, columns=keep),
        low=pd.DataFrame(feed.low[:, order], index=feed.dates, columns=keep),
        volume=pd.DataFrame(feed.volume[:, order], index=feed.dates, columns=keep),
        groups=groups,
    )


def liquidity_spreads(feed: DataFeed, low_bps: float = 2.0, high_bps: float = 5.0,
                      select_bars: int = 252) -> pd.Series:
    """Half spread per asset (bps), from ``low_bps`` for the most liquid to ``high_bps``
    for the least, linear in the rank of median dollar volume over the first
    ``select_bars`` bars (the panel has no quotes: spreads are a model parameter)."""
    dollar = pd.Series(np.nanmedian((feed.close * feed.volume)[:select_bars], axis=0),
                       index=feed.assets)
    rank = dollar.rank(ascending=False, method="first").to_numpy() - 1.0
    frac = rank / max(len(rank) - 1, 1)
    return pd.Series(low_bps + (high_bps - low_bps) * frac, index=feed.assets, name="half_spread_bps")
