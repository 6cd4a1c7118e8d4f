"""Target weights and risk estimates computed once, from data known at each date.

Every run of a comparison must see the same targets on the same dates (fairness)
and the optimizer behind them should run once, not once per run (speed). So the
targets are a precomputed ``dates x tickers`` frame: row ``d`` holds the weights an
optimizer produced from the ``lookback`` returns ending at ``d``'s close, and
nothing later.

Units: prices in currency per share; returns are simple daily returns
(fractions); weights are fractions of equity (rows sum to 1, long only, for the
built-in optimizers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rebalopt.errors import InputError
from rebalopt.risk import RiskModel, sample_covariance
from rebalopt.state import PortfolioState

__all__ = [
    "Optimize",
    "RiskSchedule",
    "inverse_volatility",
    "min_variance",
    "rebalance_dates",
    "risk_schedule",
    "target_schedule",
]

Optimize = Callable[[pd.DataFrame], "pd.Series | Mapping[str, float]"]
"""``optimize(returns) -> weights``: returns is ``lookback x tickers`` (no NaN)."""

_DUST = 1e-5


def inverse_volatility(returns: pd.DataFrame) -> pd.Series:
    r"""Inverse-volatility weights, :math:`w_i \propto 1/\hat\sigma_i` (long only, sum 1).

    ``returns``: daily simple returns, ``dates x tickers``. An asset with zero
    sample volatility raises :class:`InputError` naming it.
    """
    vol = returns.std(ddof=1)
    bad = ~(vol > 0)
    if bad.any():
        raise InputError("zero or undefined volatility in the lookback window",
                         asset=str(vol.index[bad][0]), field="returns")
    inv = 1.0 / vol
    return inv / inv.sum()


def min_variance(returns: pd.DataFrame, max_weight: float = 1.0,
                 shrinkage: bool = True) -> pd.Series:
    """Long-only minimum-variance weights from skfolio's ``MeanRisk`` (sum 1).

    Weights below ``1e-5`` (solver dust) are set to zero and the rest rescaled to
    sum to one, so no rebalancer is asked to trade a few dollars.

    Parameters
    ----------
    returns
        Daily simple returns, ``dates x tickers``.
    max_weight
        Upper bound per asset (fraction of equity).
    shrinkage
        Estimate the covariance with Ledoit-Wolf shrinkage (steadier targets).
    """
    from skfolio import RiskMeasure
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.prior import EmpiricalPrior

    prior = EmpiricalPrior(covariance_estimator=LedoitWolf()) if shrinkage else EmpiricalPrior()
    model = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK,
                     risk_measure=RiskMeasure.VARIANCE, max_weights=max_weight,
                     prior_estimator=prior)
    model.fit(returns.to_numpy(dtype=float))
    w = pd.Series(np.asarray(model.weights_, dtype=float), index=returns.columns)
    w[w < _DUST] = 0.0
    return w / w.sum()


def rebalance_dates(index: pd.DatetimeIndex, frequency: Literal["M"] | int = "M",
                    start: int = 0) -> pd.DatetimeIndex:
    """The decision dates of a schedule on a bar calendar.

    ``"M"``: the last bar of each month (the calendar is known in advance, prices
    are not; the last month of ``index`` counts only if it is complete, i.e. not
    the final bar). An int ``N``: every ``N`` bars from bar ``start``. Bars before
    ``start`` are never decision dates.
    """
    index = pd.DatetimeIndex(index)
    n = len(index)
    due = np.zeros(n, dtype=bool)
    if frequency == "M":
        month = index.year.to_numpy() * 12 + index.month.to_numpy()
        due[:-1] = month[1:] != month[:-1]
    elif isinstance(frequency, (int, np.integer)) and frequency >= 1:
        due[start::int(frequency)] = True
    else:
        raise InputError(f"must be 'M' or an int >= 1, got {frequency!r}", field="frequency")
    due[:start] = False
    return index[due]


def _window(prices: pd.DataFrame, t: int, lookback: int) -> pd.DataFrame:
    """Returns of the ``lookback`` bars ending at bar ``t`` for assets priced on all of them."""
    return _Windows(prices)(t, lookback)


class _Windows:
    """:func:`_window` over one frame's array, converted once (not once per date).

    The same numbers, bit for bit, as the frame arithmetic ``(p / p.shift(1) - 1)``
    on the window (one IEEE division and subtraction per cell), held in the same
    memory layout as that frame's block (dates contiguous per asset), so reductions
    over it run in the same order. ``tests/research/test_windows.py`` checks the
    frames and the estimators' answers against the pandas expression.
    """

    def __init__(self, prices: pd.DataFrame) -> None:
        self.index = prices.index
        self.columns = prices.columns
        # assets x dates, each asset's dates contiguous
        self.values = np.ascontiguousarray(prices.to_numpy(dtype=float).T)

    def __call__(self, t: int, lookback: int) -> pd.DataFrame:
        if not 0 <= t - lookback:
            raise InputError(f"bar {t} has fewer than {lookback} returns before it",
                             field="lookback")
        p = self.values[:, t - lookback: t + 1]
        ok = (p > 0).all(axis=1)  # NaN > 0 is False: priced on every bar of the window
        p = p[ok]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            r = p[:, 1:] / p[:, :-1] - 1.0
        return pd.DataFrame(r.T, index=self.index[t - lookback + 1: t + 1],
                            columns=self.columns[ok], copy=False)


def target_schedule(prices: pd.DataFrame, optimize: Optimize | Literal["min_variance",
                    "inverse_volatility"] = "inverse_volatility", lookback: int = 252,
                    frequency: Literal["M"] | int = "M") -> pd.DataFrame:
    """Target weights on each decision date, from data known at that date only.

    Parameters
    ----------
    prices
        Wide frame ``dates x tickers`` of (adjusted) closes, currency per share; NaN
        where an asset has no bar.
    optimize
        ``optimize(returns) -> weights`` (a Series or mapping keyed by ticker), or
        the name of a built-in: ``"min_variance"`` (skfolio ``MeanRisk``) or
        ``"inverse_volatility"``.
    lookback
        Number of daily returns given to ``optimize`` (the window ends at the
        decision date's close). Only assets priced on every bar of the window are
        passed; the others get weight 0.
    frequency
        ``"M"`` (last bar of each month) or an int ``N`` (every ``N`` bars).

    Returns
    -------
    DataFrame
        ``decision dates x tickers`` (all of ``prices``' columns), weights as
        fractions of equity; the first decision date is the first with a full
        lookback window.
    """
    if not isinstance(prices, pd.DataFrame) or prices.empty:
        raise InputError("expected a non-empty wide frame dates x tickers", field="prices")
    if int(lookback) < 2:
        raise InputError(f"must be >= 2, got {lookback}", field="lookback")
    if isinstance(optimize, str):
        builtins: dict[str, Optimize] = {"min_variance": min_variance,
                                         "inverse_volatility": inverse_volatility}
        if optimize not in builtins:
            raise InputError(f"unknown optimizer {optimize!r}; one of {sorted(builtins)}",
                             field="optimize")
        optimize = builtins[optimize]
    prices = prices.sort_index()
    dates = rebalance_dates(pd.DatetimeIndex(prices.index), frequency, start=int(lookback))
    pos = prices.index.get_indexer(dates)
    windows = _Windows(prices)
    out_rows = np.zeros((len(pos), prices.shape[1]))
    unique_cols = prices.columns.is_unique
    for k, t in enumerate(pos):
        rets = windows(int(t), int(lookback))
        if rets.shape[1] == 0:
            raise InputError(f"no asset has a full {lookback}-bar window on "
                             f"{prices.index[t].date()}", field="prices")
        w = pd.Series(optimize(rets), dtype=float)
        vals = w.to_numpy()
        bad = ~np.isfinite(vals)
        if bad.any():
            raise InputError(f"optimizer returned {w[bad].iloc[0]} on {prices.index[t].date()}",
                             asset=str(w.index[bad][0]), field="target weight")
        # the row as w.reindex(prices.columns).fillna(0.0): each weight at its ticker's
        # column (tickers not in prices dropped), 0 elsewhere; without pandas' reindex
        # per date (the same numbers; duplicate tickers still raise through reindex)
        if w.index.is_unique and unique_cols:
            at = prices.columns.get_indexer(w.index)
            hit = at >= 0
            out_rows[k, at[hit]] = vals[hit]
        else:
            out_rows[k] = w.reindex(prices.columns).fillna(0.0).to_numpy(dtype=float)
    out = pd.DataFrame(out_rows, index=dates, columns=prices.columns)
    out.index.name = "date"
    return out


@dataclass
class RiskSchedule:
    """A tracking-error risk model per decision date, switched as the backtest moves.

    It answers ``root(state)`` like any :class:`~rebalopt.risk.RiskModel`, with the
    model estimated for the date last passed to :meth:`set_date`, so an
    ``OptimalRebalancer`` built once sees each date's estimate without being
    rebuilt (and without recompiling: only parameter values change).

    Parameters
    ----------
    models
        Annualized risk model per decision date.
    """

    models: dict[pd.Timestamp, RiskModel]
    _current: RiskModel | None = field(default=None, init=False, repr=False)

    def set_date(self, date: Any) -> None:
        """Use the model estimated for ``date`` (a decision date)."""
        key = pd.Timestamp(date)
        if key not in self.models:
            raise InputError(f"no risk model for {key.date()}", field="risk schedule")
        self._current = self.models[key]

    def root(self, state: PortfolioState) -> Any:
        """The current model's root for ``state.assets`` (see :meth:`set_date`)."""
        if self._current is None:
            raise InputError("set_date() must be called before root()", field="risk schedule")
        return self._current.root(state)

    def __len__(self) -> int:
        return len(self.models)


def risk_schedule(prices: pd.DataFrame, dates: pd.DatetimeIndex, lookback: int = 252,
                  estimator: Callable[[pd.DataFrame], RiskModel] | None = None) -> RiskSchedule:
    """Annualized risk models estimated on each decision date from trailing returns.

    Parameters
    ----------
    prices
        Wide closes ``dates x tickers`` (as for :func:`target_schedule`).
    dates
        Decision dates (for example ``target_schedule(...).index``).
    lookback
        Daily returns per estimate, the window ending at the decision date's close.
    estimator
        ``estimator(returns) -> RiskModel``; default Ledoit-Wolf shrunk sample
        covariance (``rebalopt.risk.sample_covariance``) with ``missing="average"``:
        an asset missing from a window is served the average variance.
    """
    prices = prices.sort_index()
    def default(returns: pd.DataFrame) -> RiskModel:
        return sample_covariance(returns, missing="average")

    est = estimator if estimator is not None else default
    models: dict[pd.Timestamp, RiskModel] = {}
    pos = prices.index.get_indexer(pd.DatetimeIndex(dates))
    if (pos < 0).any():
        raise InputError("decision date not in the price index", field="dates")
    windows = _Windows(prices)
    for t in pos:
        if t < lookback:
            raise InputError(f"decision date {prices.index[t].date()} has fewer than "
                             f"{lookback} returns before it", field="dates")
        model = est(windows(int(t), int(lookback)))
        models[pd.Timestamp(prices.index[t])] = model
    return RiskSchedule(models)
