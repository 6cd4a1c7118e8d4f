"""LotLedger: an account's tax lots through buys and sells, with the wash-sale rule.

The ledger keeps, per asset, its :class:`~rebalopt.taxes.lots.Lot` tuple, every
realized gain (:class:`~rebalopt.taxes.relief.Realized`, ``disallowed`` filled in
when a wash sale is found, before or after the sale), every wash-sale adjustment
and the losses still open to a replacement purchase. Amounts in currency, prices
in currency per share, dates as days.

Prices passed to :meth:`LotLedger.buy` / :meth:`LotLedger.sell` are what the tax
basis and proceeds use: for a buy, price + fees per share; for a sell, price -
fees per share (the simulated broker passes them so).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rebalopt.errors import InputError
from rebalopt.taxes.lots import Lot, TaxLots, _loss_sales, as_date, checked_lots
from rebalopt.taxes.rates import TaxRates
from rebalopt.taxes.relief import Method, Realized, realize, relieve, select_lots
from rebalopt.taxes.wash import (
    US_WASH_SALE,
    OpenLoss,
    WashSale,
    WashSaleRule,
    wash_on_buy,
    wash_on_sale,
)

__all__ = ["LotLedger"]


def _check_multiplier(multiplier: Any, asset: str) -> None:
    m = float(multiplier)
    if isinstance(multiplier, bool) or not (math.isfinite(m) and m > 0):
        raise InputError(f"multiplier {multiplier!r}: must be a finite number > 0",
                         asset=asset, field="multiplier")


class LotLedger:
    """Tax lots of one account through time.

    Parameters
    ----------
    lots
        Opening lots (:class:`TaxLots`, a DataFrame or a mapping), or ``None``.
    method
        Default relief method for sells: ``"fifo"``, ``"hifo"`` or ``"lifo"``.
    wash_sale
        The wash-sale rule, or ``None`` for no rule.
    """

    def __init__(self, lots: Any = None, *, method: str = "fifo",
                 wash_sale: WashSaleRule | None = US_WASH_SALE) -> None:
        if method not in ("fifo", "hifo", "lifo"):
            raise InputError(f"unknown lot relief method {method!r} (fifo, hifo, lifo)",
                             field="method")
        book = TaxLots() if lots is None else TaxLots.coerce(lots)
        self.method = method
        self.wash_sale = wash_sale
        self.lots: dict[str, tuple[Lot, ...]] = {a: book[a] for a in book}
        self.records: list[Realized] = []
        self.washes: list[WashSale] = []
        self.open_losses: dict[str, list[OpenLoss]] = {}
        self._next_id: dict[str, int] = {}
        self._checked: dict[str, tuple[tuple[Lot, ...], tuple[Lot, ...]]] = {}
        """Per asset: its lots tuple in ``self.lots`` and that tuple sorted and checked
        (:func:`~rebalopt.taxes.lots.checked_lots`), so a view of the lots on every bar
        only sorts an asset whose lots changed (tuples are replaced, never mutated)."""

    # ------------------------------------------------------------------ trades
    def _new_id(self, asset: str) -> str:
        n = self._next_id.get(asset)
        if n is None:
            n = len(self.lots.get(asset, ())) + 1
        taken = {lot.lot_id for lot in self.lots.get(asset, ())}
        while f"b{n}" in taken:
            n += 1
        self._next_id[asset] = n + 1
        return f"b{n}"

    def buy(self, asset: str, shares: float, price: float, date: Any,
            *, multiplier: float = 1.0) -> list[Lot]:
        """Open a lot of ``shares`` at ``price`` (basis per share) on ``date``.

        Returns the new lot, split into replacement pieces when the purchase
        completes wash sales of earlier loss sales (their ``disallowed`` amounts are
        added to those sales' records).
        """
        asset = str(asset)
        shares, price = float(shares), float(price)
        if not (math.isfinite(shares) and shares > 0):
            raise InputError(f"buy of {shares!r} shares", asset=asset, field="shares")
        if not (math.isfinite(price) and price >= 0):
            raise InputError(f"buy at price {price!r}", asset=asset, field="price")
        _check_multiplier(multiplier, asset)
        day = as_date(date, asset=asset, field="date")
        lot = Lot(self._new_id(asset), shares, price, day)
        pieces = [lot]
        if self.wash_sale is not None and self.open_losses.get(asset):
            pieces, washes, left = wash_on_buy(lot, self.open_losses[asset], self.wash_sale,
                                               asset=asset, multiplier=multiplier)
            self.open_losses[asset] = left
            for rec_i, w in washes:
                r = self.records[rec_i]
                self.records[rec_i] = Realized(**{**r.__dict__,
                                                  "disallowed": r.disallowed + w.disallowed})
                self.washes.append(w)
        self.lots[asset] = (*self.lots.get(asset, ()), *pieces)
        return pieces

    def sell(self, asset: str, shares: float, price: float, date: Any,
             *, method: Method | None = None, multiplier: float = 1.0) -> list[Realized]:
        """Sell ``shares`` at ``price`` (proceeds per share, net of fees: below 0 when the
        fees exceed the proceeds) on ``date``, relieving lots by ``method`` (default: the
        ledger's; or a mapping ``lot_id -> shares``).

        Returns the realized records (wash sales against lots bought in the window
        before the sale already applied; later purchases may still disallow more).

        Raises
        ------
        InputError
            Selling more than the lots hold (lots are long only), bad specific lots, a
            price that is not finite, or a multiplier that is not finite and > 0.
        """
        asset = str(asset)
        shares, price = float(shares), float(price)
        if not (math.isfinite(shares) and shares > 0):
            raise InputError(f"sell of {shares!r} shares", asset=asset, field="shares")
        if not math.isfinite(price):  # NaN proceeds made NaN gains and taxes
            raise InputError(f"sell at price {price!r}", asset=asset, field="price")
        _check_multiplier(multiplier, asset)
        day = as_date(date, asset=asset, field="date")
        lots = self.lots.get(asset, ())
        picks = select_lots(lots, shares, self.method if method is None else method,
                            asset=asset)
        recs = realize(lots, picks, price, day, asset=asset, multiplier=multiplier)
        left = relieve(lots, picks)
        first = len(self.records)
        if self.wash_sale is not None:
            left, washes, recs, open_l = wash_on_sale(left, recs, self.wash_sale,
                                                      first_record=first)
            self.washes.extend(washes)
            if open_l:
                self.open_losses.setdefault(asset, []).extend(open_l)
        self.records.extend(recs)
        if left:
            self.lots[asset] = left
        else:
            self.lots.pop(asset, None)
        return self.records[first:]

    # ----------------------------------------------------------------- views
    def shares(self, asset: str) -> float:
        """Shares held in ``asset`` by the lots."""
        return float(sum(lot.shares for lot in self.lots.get(str(asset), ())))

    def tax_lots(self, date: Any = None) -> TaxLots:
        """The open lots as :class:`TaxLots` (for a ``PortfolioState``), valued on
        ``date`` with the loss sales still open to a wash sale then."""
        book = {}
        for asset, raw in self.lots.items():
            hit = self._checked.get(asset)
            if hit is None or hit[0] is not raw:
                hit = (raw, checked_lots(asset, raw))
                self._checked[asset] = hit
            if hit[1]:
                book[asset] = hit[1]
        for asset in [a for a in self._checked if a not in self.lots]:
            del self._checked[asset]
        if date is None:
            return TaxLots._from_checked(book, None, {})
        day = as_date(date, field="date")
        rule = self.wash_sale
        sales: dict[str, list[pd.Timestamp]] = {}
        if rule is not None:
            for asset, losses in self.open_losses.items():
                ds = [ol.sold for ol in losses if ol.sold <= day and rule.within(ol.sold, day)]
                if ds:
                    sales[asset] = ds
        return TaxLots._from_checked(book, day, _loss_sales(sales))

    def restrictions(self, date: Any) -> dict[str, set[str]]:
        """Assets the wash-sale rule constrains on ``date`` (empty without a rule).

        Returns
        -------
        dict
            ``"no_buy"``: assets sold at a loss within the window before ``date``
            whose loss is still open (a purchase now would be a wash sale);
            ``"no_harvest"``: assets with a lot bought within the window before
            ``date`` that has not yet replaced a loss (a loss sale now would be a
            wash sale against it).
        """
        out: dict[str, set[str]] = {"no_buy": set(), "no_harvest": set()}
        rule = self.wash_sale
        if rule is None:
            return out
        day = as_date(date, field="date")
        for asset, losses in self.open_losses.items():
            if any(rule.within(ol.sold, day) and ol.sold <= day for ol in losses):
                out["no_buy"].add(asset)
        for asset, lots in self.lots.items():
            if any(not lot.replacement and lot.purchased <= day
                   and rule.within(lot.purchased, day) for lot in lots):
                out["no_harvest"].add(asset)
        return out

    def realized_frame(self) -> pd.DataFrame:
        """One row per lot sold: asset, lot_id, sold, acquired, term, shares, proceeds,
        cost, gain, disallowed, recognized (currency)."""
        cols = ["asset", "lot_id", "sold", "acquired", "term", "shares", "proceeds", "cost",
                "gain", "disallowed", "recognized"]
        return pd.DataFrame(
            [{"asset": r.asset, "lot_id": r.lot_id, "sold": r.sold, "acquired": r.acquired,
              "term": r.term, "shares": r.shares, "proceeds": r.proceeds, "cost": r.cost,
              "gain": r.gain, "disallowed": r.disallowed, "recognized": r.recognized}
             for r in self.records], columns=cols)

    def washes_frame(self) -> pd.DataFrame:
        """One row per wash-sale adjustment."""
        cols = ["asset", "sold", "sold_lot", "replacement_lot", "purchased", "shares",
                "disallowed"]
        return pd.DataFrame([w.__dict__ for w in self.washes], columns=cols)

    def gains_by_year(self) -> pd.DataFrame:
        """Recognized gains per calendar year of sale: ``short``, ``long`` (currency)."""
        rows: dict[int, dict[str, float]] = {}
        for r in self.records:
            d = rows.setdefault(r.sold.year, {"short": 0.0, "long": 0.0})
            d[r.term] += r.recognized
        return pd.DataFrame.from_dict(rows, orient="index", columns=["short", "long"]
                                      ).rename_axis("year").sort_index()

    def tax_by_year(self, rates: TaxRates) -> pd.Series:
        """Tax per calendar year, currency (negative = tax saved): ``rates.tax`` on the
        year's net short- and long-term recognized gains."""
        g = self.gains_by_year()
        return pd.Series([rates.tax(s, lg) for s, lg in zip(g["short"], g["long"],
                                                           strict=True)],
                         index=g.index, name="tax", dtype=float)

    def __repr__(self) -> str:
        n = sum(len(v) for v in self.lots.values())
        return (f"LotLedger(assets={len(self.lots)}, lots={n}, sales={len(self.records)}, "
                f"washes={len(self.washes)})")


