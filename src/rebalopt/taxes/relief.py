"""Lot relief and realized gains, as pure functions.

Which lots a sale of ``shares`` of one asset takes (:func:`select_lots`):

* ``"fifo"``: oldest purchase first;
* ``"hifo"``: highest basis per share first (the smallest gain, or the largest loss);
* ``"lifo"``: newest purchase first;
* specific lots: a mapping ``lot_id -> shares`` (what the optimizer chose).

:func:`realize` turns the picks into :class:`Realized` records at a sale price and
date: gain = shares x (price - basis) x multiplier (currency), short-term when the
lot was held one year or less (``sale date <= acquired + 1 year``: a sale on the
anniversary is short-term, the day after is long-term, as the IRS counts "more than
one year"), long-term otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from rebalopt.errors import InputError
from rebalopt.taxes.lots import Lot

__all__ = ["Method", "Realized", "is_long_term", "one_year_after", "realize", "relieve",
           "select_lots"]

Method = Literal["fifo", "hifo", "lifo"] | Mapping[str, float]
"""A relief method name, or specific lots: ``lot_id -> shares``."""

_TOL = 1e-9
_CLOSE = 1e-7
"""Relative excess over the lots' shares still read as selling all of them (floats
accumulated over many fills)."""


@functools.lru_cache(maxsize=1 << 16)
def one_year_after(acquired: pd.Timestamp) -> pd.Timestamp:
    """The one-year anniversary of ``acquired`` (a sale after it is long-term)."""
    return acquired + pd.DateOffset(years=1)


def is_long_term(acquired: pd.Timestamp, sold: pd.Timestamp) -> bool:
    """Whether a lot whose holding period started on ``acquired`` and sold on ``sold``
    was held more than one year (long-term)."""
    if not isinstance(sold, pd.Timestamp):
        sold = pd.Timestamp(sold)
    if not isinstance(acquired, pd.Timestamp):
        acquired = pd.Timestamp(acquired)
    return bool(sold > one_year_after(acquired))


@dataclass(frozen=True)
class Realized:
    """The gain realized on the part of one lot sold.

    Attributes
    ----------
    asset, lot_id
        The asset and lot sold from.
    shares
        Shares sold from the lot.
    price
        Sale price per share, currency (net of fees when the seller passes them in).
    basis
        The lot's basis per share, currency.
    acquired, sold
        Holding-period start and sale date.
    long_term
        Held more than one year.
    multiplier
        Currency per point per share.
    disallowed
        Part of a loss disallowed by the wash-sale rule (currency, >= 0; the ledger sets it).
    """

    asset: str
    lot_id: str
    shares: float
    price: float
    basis: float
    acquired: pd.Timestamp
    sold: pd.Timestamp
    long_term: bool
    multiplier: float = 1.0
    disallowed: float = 0.0

    @property
    def proceeds(self) -> float:
        """Sale proceeds, currency."""
        return self.shares * self.price * self.multiplier

    @property
    def cost(self) -> float:
        """Cost basis of the shares sold, currency."""
        return self.shares * self.basis * self.multiplier

    @property
    def gain(self) -> float:
        """Realized gain before the wash-sale rule, currency (negative = loss)."""
        return self.proceeds - self.cost

    @property
    def recognized(self) -> float:
        """Gain recognized for tax: ``gain + disallowed`` (a disallowed loss is not
        recognized now; it moves to the replacement lot's basis)."""
        return self.gain + self.disallowed

    @property
    def term(self) -> str:
        """``"long"`` or ``"short"``."""
        return "long" if self.long_term else "short"


def select_lots(lots: Sequence[Lot], shares: float, method: Method = "fifo",
                *, asset: str | None = None) -> list[tuple[int, float]]:
    """Which lots a sale of ``shares`` takes: ``[(index into lots, shares), ...]``.

    Raises
    ------
    InputError
        Selling more than the lots hold, an unknown method, or specific lots that do
        not exist, exceed their lot, or do not add up to ``shares``.
    """
    shares = float(shares)
    total = sum(lot.shares for lot in lots)
    if total < shares <= total * (1 + _CLOSE) + _TOL:  # float dust of a full sale
        shares = total
    if shares < 0 or shares > total * (1 + _TOL) + _TOL:
        raise InputError(f"cannot sell {shares:g} shares from lots holding {total:g}",
                         asset=asset, field="lots")
    if isinstance(method, Mapping):
        pos = {lot.lot_id: k for k, lot in enumerate(lots)}
        picks = []
        named: dict[int, Any] = {}
        for lot_id, q in method.items():
            if str(lot_id) not in pos:
                raise InputError(f"no lot {lot_id!r}", asset=asset, field="lot_id")
            k = pos[str(lot_id)]
            if k in named:  # 1 and "1" are one lot: each within it, both beyond it
                raise InputError(f"lot {lots[k].lot_id!r} is named twice ({named[k]!r} and "
                                 f"{lot_id!r})", asset=asset, field="lot_id")
            named[k] = lot_id
            q = float(q)
            if q < -_TOL or q > lots[k].shares * (1 + _TOL) + _TOL:
                raise InputError(f"lot {lot_id!r}: cannot sell {q:g} of {lots[k].shares:g} "
                                 "shares", asset=asset, field="lot shares")
            if q > _TOL:
                picks.append((k, min(q, lots[k].shares)))
        got = sum(q for _, q in picks)
        if abs(got - shares) > _TOL * max(1.0, shares):
            raise InputError(f"specific lots sell {got:g} shares, the sale is {shares:g}",
                             asset=asset, field="lots")
        return sorted(picks)
    keys = {
        "fifo": lambda k: (lots[k].purchased, lots[k].lot_id),
        "lifo": lambda k: (-lots[k].purchased.value, lots[k].lot_id),
        "hifo": lambda k: (-lots[k].basis, lots[k].purchased, lots[k].lot_id),
    }
    if method not in keys:
        raise InputError(f"unknown lot relief method {method!r} (fifo, hifo, lifo or a "
                         "mapping lot_id -> shares)", asset=asset, field="method")
    picks = []
    left = shares
    for k in sorted(range(len(lots)), key=keys[method]):
        if left <= _TOL * max(1.0, shares):
            break
        q = min(left, lots[k].shares)
        picks.append((k, q))
        left -= q
    return picks


def realize(lots: Sequence[Lot], picks: Sequence[tuple[int, float]], price: float,
            sold: pd.Timestamp, *, asset: str = "", multiplier: float = 1.0) -> list[Realized]:
    """The gains of selling ``picks`` (from :func:`select_lots`) at ``price`` on ``sold``."""
    sold = pd.Timestamp(sold)
    for k, _ in picks:
        if lots[k].acquired > sold:  # a sale before the purchase: no holding period
            raise InputError(f"lot {lots[k].lot_id!r} acquired on {lots[k].acquired.date()} "
                             f"is sold on {sold.date()}, before it was bought",
                             asset=asset or None, field="acquired")
    return [
        Realized(asset, lots[k].lot_id, float(q), float(price), lots[k].basis, lots[k].acquired,
                 sold, is_long_term(lots[k].acquired, sold), float(multiplier))
        for k, q in picks
    ]


def relieve(lots: Sequence[Lot], picks: Sequence[tuple[int, float]]) -> tuple[Lot, ...]:
    """The lots left after the sale of ``picks`` (emptied lots removed, order kept)."""
    sold = dict.fromkeys(range(len(lots)), 0.0)
    for k, q in picks:
        sold[k] += q
    out = []
    for k, lot in enumerate(lots):
        left = lot.shares - sold[k]
        if left > _TOL * max(1.0, lot.shares):  # an untouched lot is kept, not copied
            out.append(lot if sold[k] == 0.0 else lot.with_shares(left))
    return tuple(out)
