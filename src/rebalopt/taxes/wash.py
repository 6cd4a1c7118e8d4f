"""The wash-sale rule, as pure functions on one asset's lots.

A loss sale is a *wash sale* when shares of the same security are bought within
``window_days`` (30 under the US rule, IRC section 1091) before or after the sale.
The loss on as many shares as were bought back is disallowed: it is added to the
basis of the replacement shares, whose holding period then includes that of the
shares sold. Replacement shares are matched in purchase order, each share replaces
at most one loss share (a lot is split when only part of it is matched), and the
shares sold are never their own replacement.

* :func:`wash_on_sale`: after a sale, match its loss pieces with lots bought in the
  window *before* the sale (still held); what is not matched stays open as
  :class:`OpenLoss` for purchases in the window *after* it.
* :func:`wash_on_buy`: match a purchase with the open losses of the last window days.

Dates are calendar days; ``purchase - sale <= window_days`` is inside the window
(a repurchase 30 days after the sale is a wash sale, 31 days after is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rebalopt.errors import InputError
from rebalopt.taxes.lots import Lot
from rebalopt.taxes.relief import Realized

__all__ = [
    "US_WASH_SALE",
    "OpenLoss",
    "WashSale",
    "WashSaleRule",
    "wash_on_buy",
    "wash_on_sale",
]

_TOL = 1e-9
_DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class WashSaleRule:
    """The wash-sale rule the user selects.

    Parameters
    ----------
    window_days
        Calendar days before and after a loss sale in which a purchase of the same
        security makes it a wash sale (30 under the US rule).
    """

    window_days: int = 30

    def __post_init__(self) -> None:
        if int(self.window_days) != self.window_days or self.window_days < 0:
            raise InputError(f"window_days must be a whole number >= 0, got {self.window_days}",
                             field="window_days")

    def within(self, a: pd.Timestamp, b: pd.Timestamp) -> bool:
        """Whether dates ``a`` and ``b`` are at most ``window_days`` apart."""
        if isinstance(a, pd.Timestamp) and isinstance(b, pd.Timestamp):
            # whole days of b - a, floored as Timedelta.days is (a backtest calls this
            # per lot and bar: the Timedelta was most of its cost)
            return abs((b.value - a.value) // _DAY_NS) <= self.window_days
        return abs((pd.Timestamp(b) - pd.Timestamp(a)).days) <= self.window_days


US_WASH_SALE = WashSaleRule(30)
"""The US rule (IRC section 1091): 30 calendar days before or after a loss sale."""


@dataclass(frozen=True)
class OpenLoss:
    """Loss shares of a sale not yet matched with a replacement purchase.

    Attributes
    ----------
    record
        Index of the sale's :class:`Realized` record in the ledger.
    sold
        Sale date.
    lot_id
        Lot the loss shares were sold from.
    shares
        Loss shares still unmatched.
    loss_per_share
        Basis minus sale price, currency per share (> 0).
    held_days
        Holding period of the shares sold, days (carried over to a replacement).
    """

    record: int
    sold: pd.Timestamp
    lot_id: str
    shares: float
    loss_per_share: float
    held_days: int


@dataclass(frozen=True)
class WashSale:
    """One disallowed loss moved onto a replacement lot.

    Attributes
    ----------
    asset
        Ticker.
    sold
        Date of the loss sale.
    sold_lot
        Lot the loss shares came from.
    replacement_lot
        Lot (id after the split) that absorbed the loss.
    purchased
        Purchase date of the replacement shares.
    shares
        Shares matched.
    disallowed
        Loss disallowed, currency (> 0) = shares x loss per share x multiplier.
    """

    asset: str
    sold: pd.Timestamp
    sold_lot: str
    replacement_lot: str
    purchased: pd.Timestamp
    shares: float
    disallowed: float


def _absorb(lot: Lot, shares: float, loss_per_share: float, held_days: int,
            new_id: str) -> tuple[Lot, Lot | None]:
    """Split ``lot``: ``shares`` of it absorb the loss (basis up, holding period
    carried); the rest (or ``None``) keeps its terms."""
    adjusted = lot.with_shares(
        shares, lot_id=new_id if shares < lot.shares - _TOL else lot.lot_id,
        basis=lot.basis + loss_per_share,
        acquired=lot.acquired - pd.Timedelta(days=held_days), replacement=True)
    rest = lot.with_shares(lot.shares - shares) if shares < lot.shares - _TOL else None
    return adjusted, rest


def wash_on_sale(lots: Sequence[Lot], sales: Sequence[Realized], rule: WashSaleRule,
                 *, first_record: int = 0) -> tuple[tuple[Lot, ...], list[WashSale],
                                                    list[Realized], list[OpenLoss]]:
    """Apply the rule to a sale against the lots bought in the window before it.

    Parameters
    ----------
    lots
        The asset's lots *after* the sale (the shares sold already removed).
    sales
        The sale's records (:func:`~rebalopt.taxes.relief.realize`), one per lot sold from.
    rule
        The wash-sale rule.
    first_record
        Ledger index of ``sales[0]`` (stored in the open losses).

    Returns
    -------
    lots
        The lots with replacement shares split off and adjusted.
    washes
        The disallowed losses.
    sales
        The records with ``disallowed`` set.
    open_losses
        Loss shares left unmatched (they can still be matched by a later purchase).
    """
    out = list(lots)
    washes: list[WashSale] = []
    records = list(sales)
    open_losses: list[OpenLoss] = []
    for r_i, rec in enumerate(records):
        loss_ps = rec.basis - rec.price
        if loss_ps <= 0 or rec.shares <= 0:
            continue
        left = rec.shares
        held = (rec.sold - rec.acquired).days
        k = 0
        while k < len(out) and left > _TOL:
            lot = out[k]
            if (lot.replacement or lot.purchased > rec.sold
                    or not rule.within(lot.purchased, rec.sold)):
                k += 1
                continue
            q = min(left, lot.shares)
            new_id = _fresh_id(f"{lot.lot_id}w{rec.sold:%Y%m%d}", out)
            adjusted, rest = _absorb(lot, q, loss_ps, held, new_id)
            out[k:k + 1] = [adjusted] + ([rest] if rest is not None else [])
            amount = q * loss_ps * rec.multiplier
            washes.append(WashSale(rec.asset, rec.sold, rec.lot_id, adjusted.lot_id,
                                   lot.purchased, q, amount))
            records[r_i] = _disallow(records[r_i], amount)
            left -= q
            k += 1
        if left > _TOL:
            open_losses.append(OpenLoss(first_record + r_i, rec.sold, rec.lot_id, left, loss_ps,
                                        held))
    return tuple(out), washes, records, open_losses


def _fresh_id(base: str, lots: Sequence[Lot]) -> str:
    taken = {lot.lot_id for lot in lots}
    new, n = base, 1
    while new in taken:
        n += 1
        new = f"{base}.{n}"
    return new


def _disallow(rec: Realized, amount: float) -> Realized:
    from dataclasses import replace

    return replace(rec, disallowed=rec.disallowed + amount)


def wash_on_buy(lot: Lot, open_losses: Sequence[OpenLoss], rule: WashSaleRule,
                *, asset: str = "", multiplier: float = 1.0
                ) -> tuple[list[Lot], list[tuple[int, WashSale]], list[OpenLoss]]:
    """Match a new purchase ``lot`` with the open losses of sales in the window before it.

    Returns
    -------
    lots
        The purchase, split into adjusted replacement pieces and an unadjusted rest.
    washes
        ``(record index of the loss sale, WashSale)`` per match.
    open_losses
        The open losses still unmatched and still inside the window of a later purchase.
    """
    pieces: list[Lot] = []
    washes: list[tuple[int, WashSale]] = []
    left_losses: list[OpenLoss] = []
    current: Lot | None = lot
    for ol in sorted(open_losses, key=lambda o: (o.sold, o.record)):
        if lot.purchased < ol.sold:  # a sale after this purchase: not this purchase's
            left_losses.append(ol)
            continue
        if not rule.within(ol.sold, lot.purchased):
            continue  # expired: no later purchase can match it either
        if current is None:
            left_losses.append(ol)
            continue
        q = min(ol.shares, current.shares)
        whole = q >= current.shares - _TOL
        new_id = current.lot_id if whole else f"{lot.lot_id}.{len(pieces) + 1}"
        adjusted, rest = _absorb(current, q, ol.loss_per_share, ol.held_days, new_id)
        pieces.append(adjusted)
        washes.append((ol.record, WashSale(asset, ol.sold, ol.lot_id, adjusted.lot_id,
                                           lot.purchased, q, q * ol.loss_per_share * multiplier)))
        current = rest
        if ol.shares - q > _TOL:
            left_losses.append(OpenLoss(ol.record, ol.sold, ol.lot_id, ol.shares - q,
                                        ol.loss_per_share, ol.held_days))
    if current is not None:
        pieces.append(current)
    return pieces, washes, left_losses
