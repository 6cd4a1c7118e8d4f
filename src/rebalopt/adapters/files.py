"""Desk files: holdings, targets and prices CSVs in, an order file out.

Every error names the file, the line (1 = the header) and the column, on one line,
as :class:`FileInputError` (an :class:`~rebalopt.errors.InputError`).

File formats (comma separated, a header row, column names case-insensitive, other
columns ignored, blank lines skipped):

* holdings: ``ticker``, ``shares`` (signed, negative = short).
* targets: ``ticker``, ``weight`` (fraction of equity; what does not sum to 1 is cash).
* prices: ``ticker``, ``price`` (currency per share, finite and > 0), and optionally
  ``adv`` (shares/day), ``volatility`` (daily, fraction), ``sector``, ``lot_size``
  (shares), ``multiplier`` (currency per point per contract). A blank optional cell
  means no value for that ticker: no adv / volatility / sector, a lot of 1 share, a
  multiplier of 1 (the last two listed in :attr:`Book.notes`).

Each ticker appears once per file; every held or targeted ticker needs a price row.
The order file has the columns of :data:`ORDER_COLUMNS`, sells before buys.

Desk dialects (:mod:`rebalopt.adapters._dialect`): column aliases (``Symbol``,
``Quantity``, ``Close``...), tickers folded to upper case, thousands separators,
percent weights, a byte-order mark and CRLF, the optimizers' weight exports, and a
price history (:func:`read_prices`). What was read differently is listed in
:attr:`Book.notes`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from rebalopt.adapters._dialect import (
    ALIASES,
    canonical_column,
    date_order,
    fold_ticker,
    month_first,
    normalize_header,
    parse_number,
)
from rebalopt.errors import InputError
from rebalopt.orders import Order
from rebalopt.state import PortfolioState

__all__ = [
    "ORDER_COLUMNS",
    "Book",
    "FileInputError",
    "Table",
    "check_output",
    "locate",
    "read_book",
    "read_prices",
    "read_table",
    "read_text_file",
    "write_orders",
]

ORDER_COLUMNS = ("ticker", "side", "quantity", "reference_price", "expected_cost")
"""Columns of the order file: side is ``buy``/``sell``, quantity in shares (> 0),
reference price in currency per share, expected cost in currency (all cost models)."""


class FileInputError(InputError):
    """An input file is malformed; the message starts with ``file, line N, column 'c':``.

    Parameters
    ----------
    message
        What is wrong.
    path
        The file.
    line
        1-based line number (the header is line 1), when known.
    column
        The column name (for a TOML file, the dotted key), or a 1-based character
        position, when known.
    asset, field
        As in :class:`~rebalopt.errors.InputError`.
    """

    def __init__(self, message: str, *, path: str | Path, line: int | None = None,
                 column: str | int | None = None, asset: str | None = None,
                 field: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        where = [self.path]
        if line is not None:
            where.append(f"line {line}")
        if isinstance(column, int):
            where.append(f"column {column}")
        elif column is not None:
            where.append(f"column {column!r}")
        InputError.__init__(self, f"{', '.join(where)}: {message}")
        self.asset = asset
        self.field = field


def read_text_file(path: str | Path, encoding: str = "utf-8-sig") -> str:
    """The whole text of ``path``; a missing or unreadable file is a :class:`FileInputError`."""
    p = Path(path)
    try:
        return p.read_text(encoding=encoding)
    except FileNotFoundError:
        raise FileInputError("file not found", path=p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileInputError(f"cannot read: {exc}", path=p) from None


@dataclass
class Table:
    """A CSV read with its line numbers: ``rows[i]`` came from line ``lines[i]``.

    ``rows`` are keyed by canonical column names (``ticker``, ``shares``, ...; see
    :data:`rebalopt.adapters._dialect.ALIASES`), tickers folded to upper case;
    errors name the column as the file spells it.
    """

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]
    lines: list[int]
    line_of: dict[str, int] = field(default_factory=dict)
    """Line of each ticker."""
    names: dict[str, str] = field(default_factory=dict)
    """Canonical column -> the header as written in the file."""
    percent: set[str] = field(default_factory=set)
    """Canonical columns whose header says percent (``Weight (%)``)."""
    notes: list[str] = field(default_factory=list)
    """What was read differently from the canonical layout (printed by the CLI)."""
    wide: dict[str, str] = field(default_factory=dict)
    """For a wide price history: ticker -> its column header."""
    header_line: int = 1
    date: pd.Timestamp | None = None
    """The date of the rows, when a history was read down to one date
    (:func:`read_prices`): its cells read in the file's order, not pandas' guess."""

    def column_name(self, column: str | None, ticker: str | None = None) -> str | None:
        """The column as the file spells it."""
        if column is None:
            return None
        if ticker is not None and column == "price" and ticker in self.wide:
            return self.wide[ticker]
        return self.names.get(column, column)

    def error(self, message: str, ticker: str | None = None, column: str | None = None,
              line: int | None = None, field: str | None = None) -> FileInputError:
        if line is None and ticker is not None:
            line = self.line_of.get(ticker)
        return FileInputError(message, path=self.path, line=line,
                              column=self.column_name(column, ticker), asset=ticker,
                              field=field)

    def numbers(self, column: str, *, required: bool = True, positive: bool = False,
                nonneg: bool = False, percent_ok: bool = False) -> pd.Series:
        """Column as floats keyed by ticker; a bad cell is an error naming line and column.

        Thousands separators and currency signs are read (``"$1,470"``); with
        ``percent_ok`` a trailing ``%`` divides by 100, and so does a percent header.
        """
        if column not in self.columns:
            return pd.Series(dtype=float)
        out: dict[str, float] = {}
        signed = 0
        plain: tuple[int, str] | None = None  # first cell without a percent sign
        marked: tuple[int, str] | None = None  # first cell with one
        for row, line in zip(self.rows, self.lines, strict=True):
            raw = row[column]
            ticker = row["ticker"]
            if raw == "" and not required:
                continue
            try:
                v, pct = parse_number(raw, percent_ok=percent_ok)
            except ValueError as exc:
                why = "" if raw == "" or "could not convert" in str(exc) else f": {exc}"
                raise self.error(f"{raw!r} is not a number (ticker {ticker!r}){why}", ticker,
                                 column, line) from None
            if column in self.percent and not pct:
                v /= 100.0
            signed += pct
            if pct and marked is None:
                marked = (line, raw)
            if not pct and plain is None:
                plain = (line, raw)
            if percent_ok and column not in self.percent and marked and plain:
                raise self.error(f"mixes percent (line {marked[0]}: {marked[1]!r}) and plain "
                                 f"numbers (line {plain[0]}: {plain[1]!r}): write every "
                                 f"{column} one way", ticker, column, line)
            if not math.isfinite(v):
                raise self.error(f"{raw!r} is not a finite number (ticker {ticker!r})", ticker,
                                 column, line)
            if positive and v <= 0:
                raise self.error(f"must be > 0, got {raw!r} (ticker {ticker!r})", ticker, column,
                                 line)
            if nonneg and v < 0:
                raise self.error(f"must be >= 0, got {raw!r} (ticker {ticker!r})", ticker, column,
                                 line)
            out[ticker] = v
        name = self.column_name(column)
        if column in self.percent:
            self.notes.append(f"{self.path.name}: column {name!r} read as percent (2.5 -> 0.025)")
        elif signed:
            self.notes.append(f"{self.path.name}: {signed} {name!r} cells with a percent sign "
                              "read as percent (2.00% -> 0.02)")
        return pd.Series(out, dtype=float)

    def subset(self, keep: Sequence[int]) -> Table:
        """The rows at positions ``keep``, with their tickers' lines."""
        rows = [self.rows[i] for i in keep]
        lines = [self.lines[i] for i in keep]
        return replace(self, rows=rows, lines=lines,
                       line_of={r["ticker"]: ln for r, ln in zip(rows, lines, strict=True)})


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on, cells stripped."""
    reader = csv.reader(text.splitlines())
    out: list[tuple[int, list[str]]] = []
    start = 1
    for cells in reader:
        if cells and any(c.strip() for c in cells):
            out.append((start, [c.strip() for c in cells]))
        start = reader.line_num + 1
    return out


def _is_number(cell: str) -> bool:
    try:
        parse_number(cell, percent_ok=True)
    except ValueError:
        return False
    return True


def _header(p: Path, cells: list[str], line: int, value_column: str | None,
            notes: list[str]) -> tuple[list[str], dict[str, str], set[str]]:
    """Canonical column names of a header row; the file's spelling; percent columns."""
    names: dict[str, str] = {}
    percent: set[str] = set()
    canon: list[str] = []
    for k, raw in enumerate(cells):
        if k == 0 and raw == "":  # a pandas index: the tickers
            name, pct = "ticker", False
        else:
            name, pct = canonical_column(raw)
            if (name is None and value_column is not None and len(cells) == 2 and k == 1
                    and cells[0] == ""):
                name = value_column  # Series.to_csv(): ",0" or ",<series name>"
                notes.append(f"{p.name}: column {raw!r} read as {value_column}")
        if name is None:
            canon.append(f"?{k}:{raw}")  # not read
            continue
        if name in names:
            first = names[name]
            if normalize_header(first) == normalize_header(raw):
                raise FileInputError("duplicate column in header", path=p, line=line,
                                     column=raw)
            raise FileInputError(f"columns {first!r} and {raw!r} both mean {name}: keep one",
                                 path=p, line=line, column=raw)
        names[name] = raw or "(index)"
        if pct:
            percent.add(name)
        canon.append(name)
    return canon, names, percent


def read_table(path: str | Path, required: Sequence[str], *, value_column: str | None = None,
               unique: bool = True) -> Table:
    """Read a desk CSV with a header, checking required columns and non-empty tickers.

    Columns are matched through :data:`~rebalopt.adapters._dialect.ALIASES`
    (``Symbol`` is ``ticker``, ``Quantity`` is ``shares``...); tickers are folded to
    upper case (listed in :attr:`Table.notes`). With ``value_column``, a file of two
    columns and no header (PyPortfolioOpt's ``save_weights_to_file``) or with an
    empty first header cell (pandas ``to_csv()``) is read as ticker and that column.

    Raises
    ------
    FileInputError
        Missing file or column, two columns meaning the same, a row with too many or
        too few cells, an empty or (with ``unique``) duplicate ticker (naming the line
        of both occurrences).
    """
    p = Path(path)
    records = _csv_rows(read_text_file(p))
    if not records:
        raise FileInputError("empty file (no header)", path=p, line=1)
    notes: list[str] = []
    hline, first = records[0]
    body = records[1:]
    if (value_column is not None and len(first) == 2 and first[0] and _is_number(first[1])
            and canonical_column(first[0])[0] is None):
        columns, names, percent = ["ticker", value_column], {}, set()
        body = records
        hline = 0
        notes.append(f"{p.name}: no header; read as ticker, {value_column}")
    else:
        columns, names, percent = _header(p, first, hline, value_column, notes)
    for col in required:
        if col not in columns:
            found = ", ".join(first)
            also = [a for a in ALIASES.get(col, ()) if a != col][:6]
            hint = f"; also read as {col}: {', '.join(also)}" if also else ""
            raise FileInputError(f"missing required column (found: {found}{hint})", path=p,
                                 line=hline, column=col)
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    line_of: dict[str, int] = {}
    folded: list[str] = []
    for line, cells in body:
        if len(cells) != len(columns):
            raise FileInputError(f"{len(cells)} cells but the header has {len(columns)}", path=p,
                                 line=line)
        row = dict(zip(columns, cells, strict=True))
        if "ticker" in row:
            raw = row["ticker"]
            if not raw:
                raise FileInputError("empty ticker", path=p, line=line,
                                     column=names.get("ticker", "ticker"))
            ticker = fold_ticker(raw)
            if ticker != raw:
                folded.append(f"{raw} -> {ticker} (line {line})")
            row["ticker"] = ticker
            if unique and ticker in line_of:
                same = "" if ticker == raw else "; tickers compared in upper case"
                raise FileInputError(
                    f"duplicate row for ticker {ticker!r} (first on line {line_of[ticker]}{same})",
                    path=p, line=line, column=names.get("ticker", "ticker"), asset=ticker)
            line_of.setdefault(ticker, line)
        rows.append(row)
        lines.append(line)
    if folded:
        shown = ", ".join(folded[:20]) + (f", and {len(folded) - 20} more" if len(folded) > 20
                                          else "")
        notes.append(f"{p.name}: tickers upper-cased: {shown}")
    return Table(p, columns, rows, lines, line_of, names, percent, notes,
                 header_line=max(hline, 1))


def _read_wide_prices(p: Path) -> Table:
    """A price history with one column per ticker (``closes.to_csv()``) as long rows."""
    records = _csv_rows(read_text_file(p))
    hline, header = records[0]
    canon = [canonical_column(c)[0] for c in header]
    d = canon.index("date")
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    wide: dict[str, str] = {}
    for k, raw in enumerate(header):
        if k == d:
            continue
        if not raw:
            raise FileInputError("empty column name", path=p, line=hline, column=k + 1)
        t = fold_ticker(raw)
        if t in wide:
            raise FileInputError(f"two columns for ticker {t!r}", path=p, line=hline, column=raw)
        wide[t] = raw
    for line, cells in records[1:]:
        if len(cells) != len(header):
            raise FileInputError(f"{len(cells)} cells but the header has {len(header)}", path=p,
                                 line=line)
        for k, raw in enumerate(header):
            if k != d and cells[k] != "":
                rows.append({"ticker": fold_ticker(raw), "price": cells[k], "date": cells[d]})
                lines.append(line)
    notes = [(f"{p.name}: one column per ticker ({len(wide)} tickers, dates in column "
              f"{header[d]!r})")]
    return Table(p, ["ticker", "price", "date"], rows, lines, {}, {"date": header[d]}, set(),
                 notes, wide, hline)


def read_prices(path: str | Path, needed: Sequence[str] = (),
                as_of: str | pd.Timestamp | None = None) -> Table:
    """The prices file, one row per ticker: of a history (a ``date`` column, long or one
    column per ticker), the rows of the latest date, or of the latest date on or before
    ``as_of``.

    Raises
    ------
    FileInputError
        As :func:`read_table`; a date that is not a date, numeric dates in both
        orders, or ambiguous ones (``01/07/2024``) that no date of the file settles
        (:func:`~rebalopt.adapters._dialect.date_order`: write ISO dates), two rows for one ticker on
        the chosen date, a ticker of ``needed`` with no price on that date (naming the
        last date it has), ``as_of`` before every date of the file, or ``as_of`` for a
        file without dates.
    """
    p = Path(path)
    records = _csv_rows(read_text_file(p))
    canon = [canonical_column(c)[0] for c in records[0][1]] if records else []
    if "date" in canon and "ticker" not in canon and "price" not in canon and canon[0] != "":
        table = _read_wide_prices(p)
    else:
        table = read_table(p, ("ticker", "price"), unique="date" not in canon)
    if "date" not in table.columns:
        if as_of is not None:
            raise InputError(f"{p.name} has no date column; --as-of needs a price history",
                             field="--as-of")
        return table
    dates: list[pd.Timestamp] = []
    dayfirst, bad, why = date_order([row["date"] for row in table.rows],
                                    lambda i: f"line {table.lines[i]}")
    if why is not None:
        raise table.error(why, table.rows[bad].get("ticker"), "date", table.lines[bad])
    for row, line in zip(table.rows, table.lines, strict=True):
        try:
            d = pd.Timestamp(month_first(row["date"], dayfirst))
        except (ValueError, TypeError):
            d = pd.NaT
        if pd.isna(d):
            raise table.error(f"{row['date']!r} is not a date", row.get("ticker"), "date", line)
        dates.append(d.tz_localize(None) if d.tzinfo is not None else d)
    if not dates:
        return table
    limit = pd.Timestamp(as_of) if as_of is not None else max(dates)
    eligible = [d for d in dates if d <= limit]
    if not eligible:
        raise InputError(f"{p.name} has no date on or before {limit.date()} (first: "
                         f"{min(dates).date()})", field="--as-of")
    day = max(eligible)
    keep = [i for i, d in enumerate(dates) if d == day]
    chosen = replace(table.subset(keep), date=day)
    seen: dict[str, int] = {}
    for row, line in zip(chosen.rows, chosen.lines, strict=True):
        if row["ticker"] in seen:
            raise table.error(f"duplicate row for ticker {row['ticker']!r} on {day.date()} "
                              f"(first on line {seen[row['ticker']]})", row["ticker"], "ticker",
                              line)
        seen[row["ticker"]] = line
    for ticker in needed:
        if ticker not in seen:
            last = [(d, ln) for d, r, ln in zip(dates, table.rows, table.lines, strict=True)
                    if r["ticker"] == ticker]
            if last:
                d, ln = max(last)
                raise table.error(f"no price for {ticker!r} on {day.date()} (its last: "
                                  f"{d.date()}, line {ln})", ticker, "price", ln)
    how = f"on or before --as-of {limit.date()}" if as_of is not None else "the latest"
    n_dates = len(set(dates))
    chosen.notes.append(f"{p.name}: {n_dates} dates; prices of {day.date()} ({how})")
    return chosen


@dataclass
class Book:
    """What the three desk files describe: the account state and the targets."""

    state: PortfolioState
    targets: pd.Series
    """Target weights keyed by ticker (fractions of equity)."""
    holdings: Table
    target_table: Table
    prices: Table
    notes: list[str] = field(default_factory=list)
    """What was read differently from the canonical layout, one line each."""

    def locate(self, exc: InputError) -> InputError:
        """Turn an error raised downstream (naming an asset and a state field) into one
        naming the file, line and column the value came from (unchanged if unknown)."""
        return locate(exc, self.holdings, self.target_table, self.prices)


def locate(exc: InputError, holdings: Table, targets: Table, prices: Table) -> InputError:
    """The file, line and column behind an :class:`InputError` naming an asset and field."""
    if isinstance(exc, FileInputError):
        return exc
    by_field = {
        "holdings": (holdings, "shares"),
        "target weight": (targets, "weight"),
        "price": (prices, "price"),
        "adv": (prices, "adv"),
        "volatility": (prices, "volatility"),
        "lot_size": (prices, "lot_size"),
        "multiplier": (prices, "multiplier"),
        "group": (prices, "sector"),
    }
    fld = exc.field or ""
    if fld not in by_field:
        return exc
    table, column = by_field[fld]
    if column not in table.columns:
        return table.error(f"the column is missing but needed: {exc}", exc.asset, column,
                           line=table.header_line, field=fld)
    return table.error(str(exc), exc.asset, column, field=fld)


def _drop_unpriced_zeros(table: Table, values: pd.Series, prices: Table, what: str,
                         notes: list[str]) -> tuple[Table, pd.Series]:
    """Rows for tickers with no price whose value is 0 (a closed position, a zero
    weight in an optimizer's export) are dropped and listed; others are errors."""
    drop = []
    for i, row in enumerate(table.rows):
        ticker = row["ticker"]
        if ticker in prices.line_of:
            continue
        if values.get(ticker, 0.0) == 0.0:
            drop.append(i)
            continue
        raise table.error(f"{what} ticker {ticker!r} has no row in {prices.path.name}", ticker,
                          "ticker", table.lines[i])
    if not drop:
        return table, values
    names = [table.rows[i]["ticker"] for i in drop]
    shown = ", ".join(names[:20]) + (f", and {len(names) - 20} more" if len(names) > 20 else "")
    notes.append(f"{table.path.name}: {len(names)} rows at 0 with no price in "
                 f"{prices.path.name} left out: {shown}")
    keep = [i for i in range(len(table.rows)) if i not in set(drop)]
    return table.subset(keep), values.drop(names)


def read_book(holdings: str | Path, targets: str | Path, prices: str | Path,
              cash: float, *, allow_empty_targets: bool = False,
              as_of: str | pd.Timestamp | None = None) -> Book:
    """Read the three desk files into a validated :class:`Book`.

    Parameters
    ----------
    holdings, targets, prices
        CSV paths (formats in the module docstring); targets may also be a JSON
        object ``{ticker: weight}`` (PyPortfolioOpt's ``save_weights_to_file``).
    cash
        Cash balance, currency.
    allow_empty_targets
        Accept a targets file with a header and no row (a target of 0 for every
        holding: the whole book is sold). By default that is an error, because a
        failed export looks exactly like it.
    as_of
        For a prices file with a date column: use the latest date on or before this
        one (default: the latest date of the file).

    Raises
    ------
    FileInputError
        Naming file, line and column: see :func:`read_table` and :func:`read_prices`,
        plus a cell that is not a number, a price that is not finite and > 0, two
        sector labels that differ only in case or spacing, a held
        or targeted ticker (non-zero) with no row in the prices file, and a targets
        file with no row; in a JSON targets file, a ticker given twice (also as two
        keys equal but for case).
    """
    h = read_table(holdings, ("ticker", "shares"), value_column="shares")
    t = _read_targets(targets)
    if not t.rows and not allow_empty_targets:
        raise FileInputError(
            "no target row (header only): every holding would be sold; pass "
            "--allow-empty-targets to liquidate the book on purpose", path=t.path,
            line=t.header_line, field="target weight")
    shares = h.numbers("shares")
    weights = t.numbers("weight", percent_ok=True)
    needed = [k for k, v in shares.items() if v != 0] + [k for k, v in weights.items() if v != 0]
    p = read_prices(prices, needed, as_of)
    notes = h.notes + t.notes
    h, shares = _drop_unpriced_zeros(h, shares, p, "held", notes)
    t, weights = _drop_unpriced_zeros(t, weights, p, "targeted", notes)
    px = p.numbers("price", positive=True)
    optional: dict[str, pd.Series] = {
        "adv": p.numbers("adv", required=False, nonneg=True),
        "volatility": p.numbers("volatility", required=False, nonneg=True, percent_ok=True),
        "lot_sizes": p.numbers("lot_size", required=False, positive=True),
        "multipliers": p.numbers("multiplier", required=False, positive=True),
    }
    notes += p.notes
    for column, default in (("lot_size", "1 share"), ("multiplier", "1 (a share)")):
        # a blank cell is the default, as in a file mixing futures and shares; said so,
        # since a futures row left blank is then valued per point instead of per contract
        blank = [f"{r['ticker']} (line {ln})" for r, ln in zip(p.rows, p.lines, strict=True)
                 if column in p.columns and r[column] == ""]
        if blank:
            shown = ", ".join(blank[:20]) + (f", and {len(blank) - 20} more"
                                             if len(blank) > 20 else "")
            notes.append(f"{p.path.name}: blank {p.column_name(column)!r} read as {default}: "
                         f"{shown}")
    groups = None
    if "sector" in p.columns:
        groups = pd.Series({r["ticker"]: r["sector"] for r in p.rows if r["sector"]},
                           dtype=object)
        _check_group_spellings(p)
    kwargs = {k: v for k, v in optional.items() if len(v)}
    try:
        state = PortfolioState(shares, cash, px, groups=groups, **kwargs)
    except InputError as exc:
        raise locate(exc, h, t, p) from None
    return Book(state, weights, h, t, p, list(dict.fromkeys(notes)))


def _check_group_spellings(prices: Table) -> None:
    """Two sector labels that differ only in case or spacing (``Tech``, ``tech``,
    ``Information  Technology``) are two groups to a group bound, which would bound
    one and leave the other free: an error naming the second one's line."""
    first: dict[str, tuple[str, int]] = {}
    for row, line in zip(prices.rows, prices.lines, strict=True):
        label = row["sector"]
        if not label:
            continue
        key = " ".join(label.split()).casefold()
        seen = first.setdefault(key, (label, line))
        if seen[0] != label:
            raise prices.error(f"sector {label!r} differs from {seen[0]!r} (line {seen[1]}) "
                               "only in case or spacing: a group bound would treat them as "
                               "two groups; write one spelling", row["ticker"], "sector", line,
                               field="group")


def _read_targets(path: str | Path) -> Table:
    """The targets CSV, or a JSON object of ticker -> weight."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        return read_table(p, ("ticker", "weight"), value_column="weight")
    text = read_text_file(p)
    try:
        # keys in order with repeats: json.loads would keep only the last of two equal keys
        data = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise FileInputError(f"invalid JSON: {exc.msg}", path=p, line=exc.lineno,
                             column=exc.colno) from None
    if not isinstance(data, dict):
        raise FileInputError(f"expected a JSON object of ticker: weight, got "
                             f"{type(data).__name__}", path=p, line=1)
    rows, lines, line_of, folded = [], [], {}, []
    seen: dict[str, int] = {}
    text_lines = text.splitlines()
    for raw, w in data.pairs:
        ticker = fold_ticker(str(raw))
        seen[raw] = seen.get(raw, 0) + 1  # the n-th occurrence of this key is on its n-th line
        quoted = json.dumps(raw)
        found = [i for i, ln in enumerate(text_lines, 1) if quoted in ln or f'"{raw}"' in ln]
        line = found[seen[raw] - 1] if len(found) >= seen[raw] else (found[0] if found else None)
        if not ticker:
            raise FileInputError("empty ticker", path=p, line=line)
        if ticker in line_of:
            first = "" if line_of[ticker] is None else f"first on line {line_of[ticker]}; "
            raise FileInputError(f"duplicate ticker {ticker!r} ({first}tickers compared in "
                                 "upper case)", path=p, line=line, asset=ticker,
                                 field="target weight")
        if ticker != raw:
            folded.append(f"{raw} -> {ticker}")
        value = "" if w is None else str(w)
        if isinstance(w, bool) or not isinstance(w, (int, float, str)):
            raise FileInputError(f"weight of {raw!r} is not a number: {w!r}", path=p, line=line,
                                 column=str(raw), asset=ticker)
        rows.append({"ticker": ticker, "weight": value})
        lines.append(line)
        line_of[ticker] = line
    notes = [f"{p.name}: tickers upper-cased: {', '.join(folded)}"] if folded else []
    return Table(p, ["ticker", "weight"], rows, lines, line_of, {}, set(), notes)


class _Pairs(dict):  # type: ignore[type-arg]
    """A JSON object that also keeps its key/value pairs in order, repeats included."""

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def check_output(path: str | Path, inputs: Sequence[str | Path | None] = (),
                 flag: str = "--out") -> Path:
    """Check before any work that ``path`` can be written and is none of ``inputs``.

    Raises
    ------
    FileInputError
        ``path`` is a folder, its folder does not exist or is not writable, or it
        names one of the ``inputs`` (which writing would overwrite).
    """
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise FileInputError(f"{flag} names a folder, not a file", path=out, field=flag)
    if not folder.is_dir():
        raise FileInputError("output folder does not exist", path=out, field=flag)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FileInputError("output folder is not writable", path=out, field=flag)
    if out.exists() and not os.access(out, os.W_OK):
        raise FileInputError("output file is not writable", path=out, field=flag)
    target = out.resolve()
    for other in inputs:
        if other is None:
            continue
        q = Path(other)
        same = (out.exists() and q.exists() and os.path.samefile(out, q)) or q.resolve() == target
        if same:
            raise FileInputError(f"{flag} names an input file ({q}); writing it would overwrite "
                                 "the input", path=out, field=flag)
    return out


def _number(x: float) -> str:
    """Whole numbers without a decimal point, others at full precision."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def write_orders(orders: Sequence[Order], path: str | Path) -> Path:
    """Write ``orders`` as CSV (:data:`ORDER_COLUMNS`) atomically.

    The file is written to a temporary file in the same folder and renamed over
    ``path`` only when complete, so a failure leaves no file (or the previous one).
    """
    out = check_output(path)
    folder = out.parent if str(out.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(ORDER_COLUMNS)
            for o in orders:
                w.writerow([o.asset, o.side.value, _number(o.quantity),
                            _number(o.reference_price), f"{o.expected_cost:.6f}"])
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise FileInputError(f"cannot write: {exc.strerror or exc}", path=out) from None
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out
