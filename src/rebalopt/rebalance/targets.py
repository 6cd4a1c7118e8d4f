"""The one rule on how much a set of target weights may add up to, for every rebalancer.

Target weights come from optimizers that round (PyPortfolioOpt's ``clean_weights``
rounds each weight to 5 decimals, and its sum can land at ``1.0000099999999998``).
Every rebalancer (naive, band, optimal) and every entry point built on them
(``plan``, ``execute``, ``rebalance_many``, the backtest strategies, the CLI)
checks the exposure the targets ask for against the leverage the rebalancer
allows with the same tolerance, :data:`TARGET_SUM_TOL`, on the targets *as given*
(before any clipping): a target of ``1e12`` is an error everywhere, never clipped
into a plausible plan.
"""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.errors import InputError

__all__ = ["TARGET_SUM_TOL", "check_exposure"]

TARGET_SUM_TOL = 1e-4
"""Rounding allowed on the exposure of target weights (fraction of equity, 1 bp).

Targets whose exposure is above the allowed leverage by at most this much are
rounding, not a request for leverage: they are accepted (the naive and band
rebalancers scale them down to the cap exactly, ``plan.info["target_scale"]``;
the optimal rebalancer's hard constraints keep the book within it). Above it,
an :class:`~rebalopt.errors.InputError` (field ``"target weight"``)."""


def check_exposure(exposure: float, cap: float, what: str) -> float:
    """Check an exposure asked for by targets against ``cap``; the scale that fits it.

    Parameters
    ----------
    exposure
        What the targets ask for (fraction of equity), e.g. the sum of positive
        targets or of absolute targets.
    cap
        The largest exposure the rebalancer allows (fraction of equity).
    what
        How ``exposure`` and ``cap`` are measured, for the message.

    Returns
    -------
    float
        1.0 when ``exposure <= cap``, else ``cap / exposure`` (within the
        tolerance, a factor in ``[1 - 1e-4, 1)``).

    Raises
    ------
    InputError
        ``exposure > cap + TARGET_SUM_TOL`` (or not finite), field ``"target weight"``.
    """
    if not np.isfinite(exposure) or exposure > cap + TARGET_SUM_TOL:
        raise InputError(
            f"target weights add up to {exposure!r} ({what}), above the leverage {cap:g} "
            f"allowed (rounding tolerance {TARGET_SUM_TOL:g}); scale the targets or allow "
            "leverage", field="target weight")
    return 1.0 if exposure <= cap else cap / exposure


def target_exposure(w: FloatArray, long_only: bool) -> tuple[float, str]:
    """The exposure targets ask for: positive ones only when shorts are not allowed."""
    if long_only:
        return float(np.maximum(w, 0.0).sum()), "positive ones"
    return float(np.abs(w).sum()), "gross"
