"""Tax lots: per asset, the lots the holding is made of.

A lot is a number of shares bought together: ``shares`` (> 0), ``basis`` (cost
basis per share, currency; fees included, wash-sale adjustments added) and
``acquired`` (the start of its holding period, a date; a wash sale carries the
sold lot's holding period over to the replacement lot, so ``acquired`` may be
earlier than ``purchased``, the trade date). Lots are long positions only.

:class:`TaxLots` holds the lots of an account, keyed by ticker, and checks them
against the holdings (shares held = sum of the lots' shares, asset and lot named
in every error). It reads a DataFrame or a lots CSV (:func:`read_lots_csv`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.errors import InputError

__all__ = ["LOT_COLUMNS", "Lot", "TaxLots", "as_date", "read_lots_csv"]

LOT_COLUMNS = ("asset", "lot_id", "shares", "basis", "acquired")
"""Columns of :meth:`TaxLots.to_frame` (and of a lots CSV; ``lot_id`` optional there)."""

_REL = 1e-9


def as_date(value: Any, *, asset: str | None = None, field: str = "acquired",
            dayfirst: bool | None = None) -> pd.Timestamp:
    """A date (``pd.Timestamp`` at midnight) from a date-like value, or InputError
    (also for text that is not certainly one date on its own, ``01/07/2024``: see
    :func:`~rebalopt.adapters._dialect.ambiguous_date`). ``dayfirst``: the order of
    numeric dates a file's other dates settled (:func:`~rebalopt.adapters._dialect.
    date_order`); ``None`` reads only dates that are certain on their own."""
    if isinstance(value, str):
        from rebalopt.adapters._dialect import ambiguous_date, month_first

        if dayfirst is None:
            why = ambiguous_date(value)
            if why is not None:
                raise InputError(why, asset=asset, field=field)
        value = month_first(value, dayfirst)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise InputError(f"{value!r} is not a date", asset=asset, field=field) from None
    if ts is pd.NaT or pd.isna(ts):
        raise InputError(f"{value!r} is not a date", asset=asset, field=field)
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


@dataclass(frozen=True)
class Lot:
    """One tax lot of a long position.

    Parameters
    ----------
    lot_id
        Identifier, unique within the asset.
    shares
        Shares in the lot (> 0).
    basis
        Cost basis per share, currency (>= 0), fees and wash-sale adjustments included.
    acquired
        Start of the holding period (date).
    purchased
        Trade date of the purchase (the wash-sale window is measured from it);
        defaults to ``acquired``.
    replacement
        ``True`` once the lot has absorbed a disallowed wash-sale loss (a share is a
        replacement for one loss sale only).
    """

    lot_id: str
    shares: float
    basis: float
    acquired: pd.Timestamp
    purchased: pd.Timestamp | None = None
    replacement: bool = False

    def __post_init__(self) -> None:
        # dates as the lots file gives them (as_date): a time zone or a time of day
        # would make comparisons with the naive as_of raise TypeError, or move a lot
        # across the one-year line by hours
        acquired = self.acquired
        if not (type(acquired) is pd.Timestamp and acquired.tzinfo is None
                and acquired == acquired.normalize()):
            acquired = as_date(acquired, field="acquired")
            object.__setattr__(self, "acquired", acquired)
        if self.purchased is None:
            object.__setattr__(self, "purchased", acquired)
        elif not (type(self.purchased) is pd.Timestamp and self.purchased.tzinfo is None
                  and self.purchased == self.purchased.normalize()):
            object.__setattr__(self, "purchased", as_date(self.purchased, field="purchased"))

    @property
    def cost(self) -> float:
        """Total cost basis, currency (per unit multiplier)."""
        return self.shares * self.basis

    def with_shares(self, shares: float, **changes: Any) -> Lot:
        """A copy holding ``shares`` (and any other field changed)."""
        return replace(self, shares=float(shares), **changes)


def _real(value: Any) -> bool:
    """A real number that is not a bool (``True`` would be read as 1 share or $1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_lot(asset: str, lot: Lot) -> None:
    for name, value in (("shares", lot.shares), ("basis", lot.basis)):
        if not _real(value):
            raise InputError(f"lot {lot.lot_id!r}: {name} {value!r} is not a number",
                             asset=asset, field=f"lot {name}")
    if not isinstance(lot.replacement, (bool, np.bool_)):  # "no" would be truthy
        raise InputError(f"lot {lot.lot_id!r}: replacement must be True or False, got "
                         f"{lot.replacement!r}", asset=asset, field="replacement")
    if not (math.isfinite(lot.shares) and lot.shares > 0):
        raise InputError(f"lot {lot.lot_id!r}: shares must be finite and > 0, got {lot.shares}",
                         asset=asset, field="lot shares")
    if not (math.isfinite(lot.basis) and lot.basis >= 0):
        raise InputError(f"lot {lot.lot_id!r}: basis must be finite and >= 0, got {lot.basis}",
                         asset=asset, field="lot basis")
    if lot.purchased is not None and lot.acquired > lot.purchased:
        # the holding period starts at the purchase, or earlier when a wash sale carried
        # a sold lot's period over; never later (swapped columns would tax a long-term
        # lot as short-term)
        raise InputError(f"lot {lot.lot_id!r}: acquired {lot.acquired.date()} is after its "
                         f"purchase on {lot.purchased.date()} (the holding period starts at "
                         "the purchase or earlier)", asset=asset, field="acquired")


def checked_lots(asset: str, items: Iterable[Lot]) -> tuple[Lot, ...]:
    """One asset's lots, oldest purchase first (ties by lot id), each checked.

    Raises
    ------
    InputError
        A lot with shares <= 0 or a negative basis, or two lots with the same id.
    """
    seq = tuple(sorted(items, key=lambda x: (x.purchased, x.lot_id)))
    seen: set[str] = set()
    for lot in seq:
        _check_lot(asset, lot)
        if lot.lot_id in seen:
            raise InputError(f"duplicate lot id {lot.lot_id!r}", asset=asset, field="lot_id")
        seen.add(lot.lot_id)
    return seq


def _loss_sales(loss_sales: Mapping[str, Iterable[Any]] | None
                ) -> dict[str, tuple[pd.Timestamp, ...]]:
    return {str(a): tuple(sorted(as_date(d, asset=str(a), field="loss_sales") for d in ds))
            for a, ds in (loss_sales or {}).items()}


class TaxLots(Mapping[str, tuple[Lot, ...]]):
    """The tax lots of an account: ticker -> lots (oldest purchase first).

    Parameters
    ----------
    lots
        Mapping ticker -> iterable of :class:`Lot`. Assets with no lots are dropped.
    as_of
        The date the lots are valued on (short / long term, the wash-sale window), or
        ``None``.
    loss_sales
        Ticker -> dates of recent loss sales whose loss is still open to a
        replacement purchase (a purchase within the wash-sale window would be a wash
        sale); what :meth:`~rebalopt.taxes.LotLedger.tax_lots` fills in.

    Raises
    ------
    InputError
        A lot with shares <= 0 or a negative basis, two lots of one asset with the
        same id, or a lot bought or a loss sale after ``as_of`` (asset and lot named).
    """

    def __init__(self, lots: Mapping[str, Iterable[Lot]] | None = None, *, as_of: Any = None,
                 loss_sales: Mapping[str, Iterable[Any]] | None = None) -> None:
        self.as_of: pd.Timestamp | None = None if as_of is None else as_date(as_of,
                                                                              field="as_of")
        self.loss_sales: dict[str, tuple[pd.Timestamp, ...]] = _loss_sales(loss_sales)
        book: dict[str, tuple[Lot, ...]] = {}
        for asset, items in (lots or {}).items():
            a = str(asset)
            seq = checked_lots(a, items)
            if seq:
                book[a] = seq
            late = [lot for lot in seq if self.as_of is not None and lot.purchased > self.as_of]
            if late:  # a book from the future: its term and wash window would be made up
                raise InputError(f"lot {late[0].lot_id!r} was bought on "
                                 f"{late[0].purchased.date()}, after as_of "
                                 f"{self.as_of.date()}", asset=a, field="acquired")
        for a, dates in self.loss_sales.items():
            if self.as_of is not None and dates and dates[-1] > self.as_of:
                # the plan would drop it (only sales on or before as_of restrict a buy)
                raise InputError(f"loss sale on {dates[-1].date()}, after as_of "
                                 f"{self.as_of.date()}", asset=a, field="loss_sales")
        self._book = book

    @classmethod
    def _from_checked(cls, book: dict[str, tuple[Lot, ...]], as_of: pd.Timestamp | None,
                      loss_sales: dict[str, tuple[pd.Timestamp, ...]]) -> TaxLots:
        """Lots already in the form ``__init__`` leaves them (per asset a non-empty
        tuple from :func:`checked_lots`, ``as_of`` a date or ``None``, loss sales as
        sorted date tuples), taken as they are: no copy, no check. The per-bar views of
        a backtest (:meth:`on`, :meth:`~rebalopt.taxes.LotLedger.tax_lots`) take this
        path; checking and sorting every lot on every bar was a tenth of a tax-aware
        run."""
        new = cls.__new__(cls)
        new.as_of = as_of
        new.loss_sales = loss_sales
        new._book = book
        return new

    # Mapping protocol
    def __getitem__(self, asset: str) -> tuple[Lot, ...]:
        return self._book.get(str(asset), ())

    def __contains__(self, asset: object) -> bool:
        return str(asset) in self._book

    def __iter__(self) -> Iterator[str]:
        return iter(self._book)

    def __len__(self) -> int:
        return len(self._book)

    def shares(self, asset: str) -> float:
        """Shares held in ``asset`` according to the lots."""
        return float(sum(lot.shares for lot in self[asset]))

    def with_asset(self, asset: str, lots: Iterable[Lot]) -> TaxLots:
        """A copy with the lots of ``asset`` replaced."""
        book: dict[str, Iterable[Lot]] = dict(self._book)
        book[str(asset)] = tuple(lots)
        return TaxLots(book, as_of=self.as_of, loss_sales=self.loss_sales)

    def on(self, as_of: Any, loss_sales: Mapping[str, Iterable[Any]] | None = None) -> TaxLots:
        """The same lots valued on ``as_of`` (and with these recent loss sales)."""
        return TaxLots._from_checked(
            self._book, None if as_of is None else as_date(as_of, field="as_of"),
            self.loss_sales if loss_sales is None else _loss_sales(loss_sales))

    def subset(self, assets: Iterable[Any]) -> TaxLots:
        """The lots (and recent loss sales) of ``assets`` only, valued on the same date."""
        keep = set(map(str, assets))
        return TaxLots._from_checked({a: v for a, v in self._book.items() if a in keep},
                                     self.as_of,
                                     {a: d for a, d in self.loss_sales.items() if a in keep})

    # ---------------------------------------------------------------- checks
    def check_holdings(self, assets: Iterable[str], holdings: Iterable[float]) -> None:
        """Raise unless every holding equals the sum of its lots' shares.

        Raises
        ------
        InputError
            Naming the asset (and the lots) whose shares differ, a short holding
            (lots are long only), or lots of an asset that is not held.
        """
        held = {str(a): float(h) for a, h in zip(assets, holdings, strict=True)}
        for asset, h in held.items():
            lots = self[asset]
            if h < 0 and lots:
                raise InputError(f"short holding {h:g} cannot have tax lots (lots are long only)",
                                 asset=asset, field="lots")
            if h <= 0 and not lots:
                continue
            total = self.shares(asset)
            if abs(total - h) > _REL * max(1.0, abs(h)):
                ids = ", ".join(f"{lot.lot_id}={lot.shares:g}" for lot in lots) or "none"
                raise InputError(f"holding {h:g} shares differs from the sum of its lots "
                                 f"{total:g} (lots: {ids})", asset=asset, field="lots")
        for asset in self:
            if asset not in held:
                raise InputError(f"lots for an asset that is not held "
                                 f"(lot {self[asset][0].lot_id!r})", asset=asset, field="lots")

    # --------------------------------------------------------------- frames
    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str = "lots") -> TaxLots:
        """Lots from a DataFrame with columns ``asset`` (or ``ticker``), ``shares``,
        ``basis`` (currency per share; or ``total_basis``, the lot's total, divided by
        its shares; ``cost_basis`` is refused: brokers use it for either), ``acquired``
        (or ``date``),
        and optionally ``lot_id`` (default: the row's position within its asset, 1-based)
        and ``purchased`` (trade date, default ``acquired``).

        Raises
        ------
        InputError
            A missing column, or a value that is not a number / a date, naming the asset
            and the row (``source`` row N, 1-based over the data rows).
        """

        def fail(row: int, message: str, asset: str | None, field: str) -> None:
            raise InputError(f"{source} row {row}: {message}", asset=asset, field=field)

        return cls(_parse(frame.columns, frame.to_dict("records"), fail))

    def to_frame(self) -> pd.DataFrame:
        """One row per lot: asset, lot_id, shares, basis (currency/share), acquired,
        purchased, replacement."""
        rows = [
            {"asset": a, "lot_id": lot.lot_id, "shares": lot.shares, "basis": lot.basis,
             "acquired": lot.acquired, "purchased": lot.purchased,
             "replacement": lot.replacement}
            for a, lots in self._book.items() for lot in lots
        ]
        return pd.DataFrame(rows, columns=[*LOT_COLUMNS, "purchased", "replacement"])

    @classmethod
    def coerce(cls, value: Any) -> TaxLots:
        """A :class:`TaxLots` from itself, a DataFrame, or a mapping ticker -> lots."""
        if isinstance(value, TaxLots):
            return value
        if isinstance(value, pd.DataFrame):
            return cls.from_frame(value)
        if isinstance(value, Mapping):
            return cls(value)
        raise InputError(f"expected TaxLots, a DataFrame or a mapping, got {type(value).__name__}",
                         field="lots")

    def weights(self, assets: Iterable[str], prices: np.ndarray, multipliers: np.ndarray,
                equity: float) -> list[np.ndarray]:
        """Per asset (in ``assets`` order), the lots' values as fractions of ``equity``."""
        out = []
        for a, p, m in zip(assets, prices, multipliers, strict=True):
            out.append(np.array([lot.shares * p * m / equity for lot in self[str(a)]]))
        return out

    def __repr__(self) -> str:
        n = sum(len(v) for v in self._book.values())
        return f"TaxLots(assets={len(self)}, lots={n})"


def _parse(columns: Iterable[Any], records: Iterable[Mapping[Any, Any]],
           fail: Any, fold: Any = None, where: Any = None) -> dict[str, list[Lot]]:
    """Lots keyed by asset from row records; ``fail(row, message, asset, field)`` raises;
    ``where(row)`` names a row in a message (default ``"row N"``)."""
    from rebalopt.adapters._dialect import normalize_header

    # headers compared as the desk files compare them ("Lot ID" is lot_id); two columns
    # read as one field are an error, not the first one taken and the other dropped
    cols: dict[str, Any] = {}
    for c in columns:
        key = normalize_header(str(c))
        if key in cols:
            fail(0, f"columns {str(cols[key])!r} and {str(c)!r} are the same column", None, key)
        cols[key] = c

    def pick(*names: str, required: bool = True) -> Any:
        found = [n for n in names if n in cols]
        if len(found) > 1:
            fail(0, f"columns {str(cols[found[0]])!r} and {str(cols[found[1]])!r} both mean "
                 f"{names[0]}: keep one", None, names[0])
        if found:
            return cols[found[0]]
        if required:
            fail(0, f"missing column {names[0]!r}", None, names[0])
        return None

    c_asset = pick("asset", "ticker")
    c_shares = pick("shares", "quantity")
    if "cost_basis" in cols:  # Schwab's and IBKR's "Cost Basis", Alpaca's cost_basis: totals
        fail(0, f"column {str(cols['cost_basis'])!r} is the lot's total cost at some "
             "brokers and the cost per share at others: name it basis (currency per "
             "share) or total_basis (currency, the lot's)", None, "basis")
    c_basis = pick("basis", "basis_per_share", "cost_basis_per_share", "cost_per_share",
                   required=False)
    c_total = pick("total_basis", "cost_basis_total", "total_cost", required=False)
    if c_basis is not None and c_total is not None:
        fail(0, f"columns {str(c_basis)!r} and {str(c_total)!r} both give the basis: keep "
             "one", None, "basis")
    if c_basis is None and c_total is None:
        fail(0, "missing column 'basis' (currency per share; or total_basis, the lot's)",
             None, "basis")
    c_date = pick("acquired", "date", "acquisition_date")
    c_id = pick("lot_id", "lot", required=False)
    c_buy = pick("purchased", required=False)

    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, str) and not v.strip()) or (
            not isinstance(v, str) and pd.isna(v))

    from rebalopt.adapters._dialect import date_order

    # one order for the file's numeric dates (acquired and purchased alike)
    recs = list(records)
    cells = [(row, col, rec[col]) for row, rec in enumerate(recs, start=1)
             for col in (c_date, c_buy) if col is not None]
    name = where or (lambda row: f"row {row}")
    dayfirst, bad, why = date_order([c[2] for c in cells], lambda i: name(cells[i][0]))
    if why is not None:
        rec = recs[cells[bad][0] - 1]
        fail(cells[bad][0], why, None if missing(rec[c_asset]) else str(rec[c_asset]).strip(),
             "acquired" if cells[bad][1] == c_date else "purchased")
    book: dict[str, list[Lot]] = {}
    for row, rec in enumerate(recs, start=1):
        raw = rec[c_asset]
        if missing(raw):
            fail(row, "missing asset", None, "asset")
        asset = str(raw).strip() if fold is None else fold(str(raw))
        lots = book.setdefault(asset, [])
        lot_id = (str(len(lots) + 1) if c_id is None or missing(rec[c_id])
                  else str(rec[c_id]).strip())
        vals = []
        for col, name in ((c_shares, "lot shares"), (c_basis or c_total, "lot basis")):
            try:
                vals.append(float(rec[col]))
            except (TypeError, ValueError):
                fail(row, f"lot {lot_id!r}: {rec[col]!r} is not a number", asset, name)
        if c_basis is None and vals[0] > 0:  # the lot's total -> per share
            vals[1] = vals[1] / vals[0]
        try:
            acquired = as_date(rec[c_date], asset=asset, dayfirst=dayfirst)
            purchased = (None if c_buy is None or missing(rec[c_buy])
                         else as_date(rec[c_buy], asset=asset, field="purchased",
                                      dayfirst=dayfirst))
            lot = Lot(lot_id, vals[0], vals[1], acquired, purchased)
            _check_lot(asset, lot)
        except InputError as exc:
            msg = str(exc).split("] ", 1)[-1]
            fail(row, f"lot {lot_id!r}: {msg}" if "lot " not in msg else msg, asset,
                 exc.field or "lots")
        lots.append(lot)
    return book


def read_lots_csv(path: str | Path, *, fold_tickers: bool = False) -> TaxLots:
    """Read a lots CSV: ``asset`` (or ``ticker``), ``shares``, ``basis`` (currency per
    share; or ``total_basis``, the lot's total: a ``Cost Basis`` column is refused, as
    brokers give either), ``acquired`` (date), optional ``lot_id`` and ``purchased``; a
    header row,
    column names compared as the desk files compare them (case, spaces and
    punctuation ignored: ``Lot ID`` is ``lot_id``), other columns ignored, blank lines
    skipped. Every row has as many cells as the header; two columns read as one
    field (``shares`` and ``quantity``) are an error. With ``fold_tickers`` tickers are
    compared in upper case, as in the desk files (``aaa`` and ``AAA`` are one asset,
    their lots numbered together).

    Raises
    ------
    InputError
        A :class:`~rebalopt.adapters.files.FileInputError` naming the file, the line
        (1 = the header), the column, and the asset.
    """
    import csv
    import io

    from rebalopt.adapters.files import FileInputError, read_text_file

    text = read_text_file(path)
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, r) for r in reader]
    rows = [(n, r) for n, r in rows if any(c.strip() for c in r)]
    if not rows:
        raise FileInputError("empty file: a header row is needed", path=path)
    header = [c.strip() for c in rows[0][1]]
    lines = [n for n, _ in rows[1:]]
    for n, r in rows[1:]:
        if len(r) != len(header):  # a shifted row (an unquoted "1,000") or a cut one
            raise FileInputError(f"{len(r)} cells but the header has {len(header)}",
                                 path=path, line=n, field="lots")
    records = [dict(zip(header, r, strict=True)) for _, r in rows[1:]]

    def fail(row: int, message: str, asset: str | None, field: str) -> None:
        line = lines[row - 1] if row >= 1 else rows[0][0]
        column = {"lot shares": "shares", "lot basis": "basis"}.get(field, field)
        raise FileInputError(message, path=path, line=line, column=column, asset=asset,
                             field=field)

    def where(row: int) -> str:
        return f"line {lines[row - 1]}"

    if fold_tickers:
        from rebalopt.adapters._dialect import fold_ticker

        return TaxLots(_parse(header, records, fail, fold_ticker, where))
    return TaxLots(_parse(header, records, fail, where=where))
