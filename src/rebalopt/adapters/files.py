"""Desk files: holdings, targets and prices CSVs in, an order file out.

Every error names the file, the line (1 = the header) and the column, on one line,
as :class:`FileInputError` (an :class:`~rebalopt.errors.InputError`).

File formats (comma separated, a header row, column names case-insensitive, other
columns ignored, blank lines skipped):

* holdings: ``ticker``, ``shares`` (signed, negative = short).
* targets: ``ticker``, ``weight`` (fraction of equity; what does not sum to 1 is cash).
* prices: ``ticker``, ``price`` (currency per share, finite and > 0), and optionally
  ``adv`` (shares/day), ``volatility`` (daily, fraction), ``sector``, ``lot_size``
  (shares), ``multiplier`` (currency per point per contract).

Each ticker appears once per file; every held or targeted ticker needs a price row.
The order file has the columns of :data:`ORDER_COLUMNS`, sells before buys.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

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
    """A CSV read with its line numbers: ``rows[i]`` came from line ``lines[i]``."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]
    lines: list[int]
    line_of: dict[str, int] = field(default_factory=dict)
    """Line of each ticker."""

    def error(self, message: str, ticker: str | None = None, column: str | None = None,
              line: int | None = None, field: str | None = None) -> FileInputError:
        if line is None and ticker is not None:
            line = self.line_of.get(ticker)
        return FileInputError(message, path=self.path, line=line, column=column, asset=ticker,
                              field=field)

    def numbers(self, column: str, *, required: bool = True, positive: bool = False,
                nonneg: bool = False) -> pd.Series:
        """Column as floats keyed by ticker; a bad cell is an error naming line and column."""
        if column not in self.columns:
            return pd.Series(dtype=float)
        out: dict[str, float] = {}
        for row, line in zip(self.rows, self.lines, strict=True):
            raw = row[column]
            ticker = row["ticker"]
            if raw == "" and not required:
                continue
            try:
                v = float(raw)
            except ValueError:
                raise self.error(f"{raw!r} is not a number (ticker {ticker!r})", ticker, column,
                                 line) from None
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
        return pd.Series(out, dtype=float)


def read_table(path: str | Path, required: Sequence[str]) -> Table:
    """Read a CSV with a header, checking required columns and unique, non-empty tickers.

    Raises
    ------
    FileInputError
        Missing file or column, a row with too many or too few cells, an empty or
        duplicate ticker (naming the line of both occurrences).
    """
    p = Path(path)
    text = read_text_file(p)
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    line_of: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        cells = [c.strip() for c in cells]
        if header is None:
            header = [c.lower() for c in cells]
            dup = [c for c in header if header.count(c) > 1]
            if dup:
                raise FileInputError("duplicate column in header", path=p, line=line,
                                     column=dup[0])
            for col in required:
                if col not in header:
                    found = ", ".join(header)
                    raise FileInputError(f"missing required column (found: {found})", path=p,
                                         line=line, column=col)
            continue
        if len(cells) != len(header):
            raise FileInputError(f"{len(cells)} cells but the header has {len(header)}", path=p,
                                 line=line)
        row = dict(zip(header, cells, strict=True))
        ticker = row["ticker"]
        if not ticker:
            raise FileInputError("empty ticker", path=p, line=line, column="ticker")
        if ticker in line_of:
            raise FileInputError(
                f"duplicate row for ticker {ticker!r} (first on line {line_of[ticker]})",
                path=p, line=line, column="ticker", asset=ticker)
        line_of[ticker] = line
        rows.append(row)
        lines.append(line)
    if header is None:
        raise FileInputError("empty file (no header)", path=p, line=1)
    return Table(p, header, rows, lines, line_of)


@dataclass
class Book:
    """What the three desk files describe: the account state and the targets."""

    state: PortfolioState
    targets: pd.Series
    """Target weights keyed by ticker (fractions of equity)."""
    holdings: Table
    target_table: Table
    prices: Table

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
                           line=1, field=fld)
    return table.error(str(exc), exc.asset, column, field=fld)


def read_book(holdings: str | Path, targets: str | Path, prices: str | Path,
              cash: float, *, allow_empty_targets: bool = False) -> Book:
    """Read the three desk files into a validated :class:`Book`.

    Parameters
    ----------
    holdings, targets, prices
        CSV paths (formats in the module docstring).
    cash
        Cash balance, currency.
    allow_empty_targets
        Accept a targets file with a header and no row (a target of 0 for every
        holding: the whole book is sold). By default that is an error, because a
        failed export looks exactly like it.

    Raises
    ------
    FileInputError
        Naming file, line and column: see :func:`read_table`, plus a cell that is not
        a number, a price that is not finite and > 0, a held or targeted ticker with
        no row in the prices file, and a targets file with no row.
    """
    h = read_table(holdings, ("ticker", "shares"))
    t = read_table(targets, ("ticker", "weight"))
    if not t.rows and not allow_empty_targets:
        raise FileInputError(
            "no target row (header only): every holding would be sold; pass "
            "--allow-empty-targets to liquidate the book on purpose", path=t.path, line=1,
            field="target weight")
    p = read_table(prices, ("ticker", "price"))
    px = p.numbers("price", positive=True)
    for table, what in ((h, "held"), (t, "targeted")):
        for ticker, line in table.line_of.items():
            if ticker not in p.line_of:
                raise table.error(f"{what} ticker {ticker!r} has no row in {p.path.name}",
                                  ticker, "ticker", line)
    shares = h.numbers("shares")
    weights = t.numbers("weight")
    optional: dict[str, pd.Series] = {
        "adv": p.numbers("adv", required=False, nonneg=True),
        "volatility": p.numbers("volatility", required=False, nonneg=True),
        "lot_sizes": p.numbers("lot_size", required=False, positive=True),
        "multipliers": p.numbers("multiplier", required=False, positive=True),
    }
    groups = None
    if "sector" in p.columns:
        groups = pd.Series({r["ticker"]: r["sector"] for r in p.rows if r["sector"]},
                           dtype=object)
    kwargs = {k: v for k, v in optional.items() if len(v)}
    try:
        state = PortfolioState(shares, cash, px, groups=groups, **kwargs)
    except InputError as exc:
        raise locate(exc, h, t, p) from None
    return Book(state, weights, h, t, p)


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
