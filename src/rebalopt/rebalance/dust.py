"""Dust: trades too small to be worth an order, snapped to zero by every rebalancer.

A fractional optimizer stops at a tolerance, so assets it should leave alone
come back with trades of $0.0003; a broker would charge such an order its full
commission minimum. A trade is *dust* when its notional is below
:data:`DUST_VALUE` (currency) or its size below :data:`DUST_SHARES` (shares).
Dust is snapped to zero, except a trade that closes a position: a trade whose
post-trade position would itself be dust is made an exact close (sell or cover
the whole holding), so a position is never left with a crumb either.

The naive and band rebalancers snap dust after their own thresholds
(``RebalanceConfig.dust_value`` / ``dust_shares``); the optimal rebalancer snaps
it and re-verifies every hard constraint on the snapped trades, and when
snapping would break one (a cash floor funded by a dust sell, say), solves
again with the dust assets held still (``OptimalRebalancer.dust_value`` /
``dust_shares``; ``plan.info["dust"]`` lists the tickers snapped).
"""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.state import PortfolioState

__all__ = ["DUST_SHARES", "DUST_VALUE", "snap_dust"]

DUST_VALUE = 1.0
"""Smallest order notional worth sending, currency (one unit: a dollar, a euro)."""

DUST_SHARES = 1e-6
"""Smallest order size worth sending, shares (below every broker's fractional step)."""


def snap_dust(trades: FloatArray, state: PortfolioState, value: float = DUST_VALUE,
              shares: float = DUST_SHARES) -> tuple[FloatArray, np.ndarray, np.ndarray]:
    """Trades (shares) with dust snapped, and the mask of assets that were changed.

    Parameters
    ----------
    trades
        Signed trades in shares, in ``state.assets`` order.
    state
        The pre-trade state (prices, multipliers, holdings).
    value
        Dust notional threshold, currency (``>= 0``).
    shares
        Dust size threshold, shares (``>= 0``).

    Returns
    -------
    snapped
        The trades with every dust trade at 0 and every trade that leaves a dust
        position made an exact close (``-holdings``).
    dust
        Boolean mask of the dust trades set to 0.
    closed
        Boolean mask of the trades made exact closes.
    """
    q = np.asarray(trades, dtype=float)
    unit = state.prices * state.multipliers
    h = state.holdings
    post = h + q

    def small(x: FloatArray) -> np.ndarray:
        return (np.abs(x) < shares) | (np.abs(x) * unit < value)

    close = (h != 0) & (q != 0) & (post != 0) & small(post)  # leaves a crumb: close it
    dust = (q != 0) & small(q) & ~close & ~((h != 0) & (post == 0))  # exact closes stay
    out = np.where(close, -h, np.where(dust, 0.0, q))
    out[out == 0] = 0.0  # no negative zeros
    return out, dust, close
