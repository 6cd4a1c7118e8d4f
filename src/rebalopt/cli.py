"""Command line: ``rebalopt demo``, ``rebalopt rebalance`` and ``rebalopt backtest``.

``rebalopt rebalance`` reads a desk's holdings, model targets and prices (CSV), an
optional TOML config (:mod:`rebalopt.config`), and writes an order file atomically:
rebalopt's CSV (:data:`rebalopt.adapters.files.ORDER_COLUMNS`) or a broker's format
(``--format ibkr|alpaca|fix``, :mod:`rebalopt.cli_orders`). ``--lots`` adds tax lots
for a tax-aware plan (:mod:`rebalopt.cli_taxes`); ``--periods N`` plans a trade
schedule over N periods (:mod:`rebalopt.cli_schedule`). Exit codes: 0 success,
2 bad input (file, line and column named on stderr), 3 infeasible constraints,
4 solver failure, 1 any other rebalopt error. Nothing is written on failure.

``rebalopt backtest`` reads a long OHLCV panel (CSV or parquet) and target weights
(a wide CSV of decision dates x tickers, or a built-in optimizer run on the panel),
backtests the config's rebalancer through :func:`rebalopt.research.compare` and
prints the figures; with ``--compare`` it runs naive, band and optimal rebalancing
and writes :func:`rebalopt.research.write_report`'s HTML report. Same exit codes;
every output is written atomically, all or none.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.adapters._dialect import ambiguous_date, date_order, month_first
from rebalopt.adapters.files import FileInputError, check_output, read_text_file
from rebalopt.cli_orders import add_arguments as add_order_arguments
from rebalopt.errors import InfeasibleError, InputError, RebalanceError, SolverError

__all__ = ["main"]

EXIT_INPUT = 2
EXIT_INFEASIBLE = 3
EXIT_SOLVER = 4
EXIT_OTHER = 1


def _demo(args: argparse.Namespace) -> int:
    """Naive vs band vs optimal rebalancing on real prices; writes the HTML report."""
    from rebalopt.research.demo import run_demo

    path = run_demo(out_dir=args.out_dir, quick=args.quick)
    print(f"report written to {path.resolve()}")
    return 0


def _tracking_error_lines(plan: object, risk: object) -> list[str]:
    """Annualized tracking error before/after under the config's risk model, if the plan
    does not already report it."""
    if risk is None or getattr(plan, "tracking_error_after", None) is not None:
        return []
    state = plan.state  # type: ignore[attr-defined]
    before = risk.tracking_error(state.weights - plan.targets, state)  # type: ignore[attr-defined]
    after = risk.tracking_error(plan.post_weights - plan.targets, state)  # type: ignore[attr-defined]
    return [f"  tracking error {before:.4%} -> {after:.4%} (annualized, config risk model)"]


_CASH_TOLERANCE = 0.005
"""Post-trade cash below ``-_CASH_TOLERANCE`` (currency, half a cent) is borrowing."""


def _fund(plan: Any, rebalancer: Any, settings: Any) -> Any:
    """A naive or band plan a cash account can pay (``[account] margin = false``).

    Naive trades every difference without looking at cash, so round lots and costs
    can take cash below 0: its buys are scaled down by one factor and rounded down
    to their lots (:func:`rebalopt.rebalance._funding.fund_buys`, as the band
    rebalancer does), then lots are given back one at a time, to the asset furthest
    below its target first, while cash stays >= 0 (:func:`_refill`); the change is
    printed. A band plan with ``fund = false`` that borrows is refused
    (:class:`InfeasibleError`, exit 3).
    """
    from rebalopt.errors import Conflict
    from rebalopt.rebalance._funding import fund_buys
    from rebalopt.rebalance.plan import RebalancePlan

    if settings.margin or settings.method == "optimal" or plan.post_cash >= -_CASH_TOLERANCE:
        return plan
    state = plan.state
    if settings.method != "naive":
        raise InfeasibleError(
            f"the {settings.method} plan takes cash from {state.cash:,.2f} to "
            f"{plan.post_cash:,.2f} (costs included) and [band] fund = false; a cash account "
            "cannot pay it (set [account] margin = true for a margin account)",
            [Conflict("cash", -plan.post_cash, "currency")])
    lots = rebalancer.lots(state)
    shares = fund_buys(state, plan.trades, list(rebalancer.costs), lots)
    if lots is not None:
        shares = _refill(state, shares, plan.trades, plan.targets, list(rebalancer.costs), lots)
    funded = RebalancePlan.from_trades(state, plan.targets, shares, list(rebalancer.costs),
                                       plan.method, {**plan.info, "funded_from": plan.post_cash})
    buys = plan.trades > 0
    scale = (float(shares[buys].sum() / plan.trades[buys].sum()) if buys.any() else 1.0)
    print(f"note: the naive plan would take cash from {state.cash:,.2f} to "
          f"{plan.post_cash:,.2f} (costs included); buys cut to {scale:.2%} of the plan's "
          f"shares in whole lots: cash after {funded.post_cash:,.2f} (set [account] "
          "margin = true to keep the unfunded plan)")
    return funded


def _refill(state: Any, shares: np.ndarray, planned: np.ndarray, targets: np.ndarray,
            costs: list[Any], lots: np.ndarray) -> np.ndarray:
    """Give back the lots that scaling and rounding down took from the buys.

    From a fundable ``shares``, add one lot at a time to the buy whose post-trade
    weight is furthest below its target (never beyond the ``planned`` buy), as long
    as post-trade cash after costs stays >= 0. At most one pass per lot taken, so the
    work is bounded by the number of buys times the lots each lost (< 1 lot after
    :func:`fund_buys` rounds down, plus the scale-down).
    """
    shares = np.asarray(shares, dtype=float).copy()
    unit = state.prices * state.multipliers

    def cash_after(q: np.ndarray) -> float:
        return float(state.cash - (q * unit).sum() - sum(m.evaluate(q, state).sum()
                                                        for m in costs))

    open_ = (planned > 0) & (shares + lots <= planned + 1e-9)
    while open_.any():
        gap = np.where(open_, targets - (state.holdings + shares) * unit / state.equity, -np.inf)
        i = int(np.argmax(gap))
        trial = shares.copy()
        trial[i] += lots[i]
        if cash_after(trial) >= 0.0:
            shares = trial
            open_[i] = shares[i] + lots[i] <= planned[i] + 1e-9
        else:
            open_[i] = False
    return shares


def _plan_date(args: argparse.Namespace, book: Any) -> tuple[pd.Timestamp, str]:
    """The date the plan is made for (tax lots' terms, client order ids): ``--as-of``,
    else the prices file's date, else today; and where it came from."""
    given = _date(args.as_of, "--as-of")
    if given is not None:
        return given.normalize(), "--as-of"
    if book.prices.date is not None:  # read in the file's date order (read_prices)
        return book.prices.date.normalize(), book.prices.path.name
    return pd.Timestamp.today().normalize(), "today: no --as-of, no date in the prices file"


def _rebalance(args: argparse.Namespace) -> int:
    from rebalopt.adapters.files import read_book
    from rebalopt.cli_orders import order_output
    from rebalopt.config import Settings, load_config

    if args.out is None and args.schedule is None and not args.preview:
        raise InputError("give --out FILE (or --preview to print the plan without writing)",
                         field="--out")
    if args.periods is not None and args.periods < 1:
        raise InputError(f"must be >= 1, got {args.periods}", field="--periods")
    if args.schedule is not None and args.periods is None:
        raise InputError("the schedule is a multi-period plan's: give --periods N",
                         field="--schedule")
    settings = load_config(args.config) if args.config else Settings()
    inputs = [args.holdings, args.targets, args.prices, args.config, args.lots, *settings.inputs]
    for path, flag in ((args.out, "--out"), (args.schedule, "--schedule")):
        _Outputs.check(path, inputs, flag)
    if args.out is not None and args.schedule is not None and \
            Path(args.out).resolve() == Path(args.schedule).resolve():
        raise InputError("--out and --schedule name the same file", field="--schedule")
    tax = settings.tax
    if tax is not None and args.lots is None:
        raise InputError("the config's [costs.tax] needs the tax lots: give --lots CSV",
                         field="--lots")
    if args.lots is not None and tax is None:
        raise InputError("the lots would be read and not used: add a [costs.tax] table with "
                         "your rates to the config (method = \"optimal\")", field="--lots")
    if args.cash is not None and not math.isfinite(args.cash):
        raise InputError(f"must be a finite number, got {args.cash}", field="--cash")
    cash = args.cash if args.cash is not None else (settings.cash or 0.0)
    book = read_book(args.holdings, args.targets, args.prices, cash,
                     allow_empty_targets=args.allow_empty_targets,
                     as_of=_date(args.as_of, "--as-of"))
    day, source = _plan_date(args, book)
    output = order_output(args, settings, day.date())
    if args.lots is not None:
        from rebalopt.cli_taxes import attach_lots

        book.notes.extend(attach_lots(book, args.lots, day))
    if output.format != "csv" or args.lots is not None:
        book.notes.append(f"plan dated {day.date()} ({source})")
    for note in book.notes:
        print(f"note: {note}")
    rebalancer = settings.build(args.periods)
    try:
        plan = rebalancer.plan(book.state, book.targets)
        te_lines = _tracking_error_lines(plan, settings.risk)
    except InputError as exc:
        located = book.locate(exc)
        raise (settings.locate(exc) if located is exc else located) from None
    untradable = plan.info.get("untradable") or {}
    missing = [c for c in ("volatility", "adv") if c not in book.prices.columns]
    if untradable and missing:  # a cost model needs a column the prices file lacks
        first = next(iter(untradable))
        raise book.locate(InputError(untradable[first], asset=first, field=missing[0])) from None
    plan = _fund(plan, rebalancer, settings)
    orders = plan.orders()
    print(plan.summary())
    for line in te_lines:
        print(line)
    if tax is not None:
        from rebalopt.cli_taxes import tax_lines

        for line in tax_lines(plan, tax, args.preview):
            print(line)
    if args.periods is not None:
        from rebalopt.cli_schedule import schedule_lines

        for line in schedule_lines(plan):
            print(line)
    if args.preview:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(plan.preview().to_string(float_format=lambda x: f"{x:,.6g}"))
    staged = _Outputs()
    try:
        if args.schedule is not None:
            from rebalopt.cli_schedule import write_schedule

            write_schedule(plan, staged.stage(args.schedule))
        if args.out is not None:  # atomic by itself; the schedule follows only if it is written
            path = output.write(plan, args.out)
            print(f"wrote {len(orders)} orders to {path} ({output.format})"
                  if output.format != "csv" else f"wrote {len(orders)} orders to {path}")
        for path in staged.commit():
            print(f"wrote the schedule to {path}")
    except BaseException:
        staged.discard()
        raise
    return 0


# ------------------------------------------------------------------ backtest
_PANEL_NUMBERS = ("open", "high", "low", "close", "volume")
_OPTIMIZERS = ("min_variance", "inverse_volatility")
_RISK_AVERSIONS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
"""Risk aversions of the optimal runs of ``--compare`` by default (dimensionless)."""
_MIN_RISK_BARS = 20
"""Fewest daily returns before the first decision date from which the optimal
rebalancer's risk model is estimated when the config has no ``[risk]`` section."""
_LOOKBACK = 252
"""Daily returns behind ``backtest --optimizer`` targets and its default risk model."""


@dataclass
class _Panel:
    """A checked long OHLCV panel and where each of its rows came from."""

    path: Path
    frame: pd.DataFrame
    """Columns date, ticker, the OHLCV fields present, sector/group; one row per (date, ticker)."""
    csv: bool
    """Rows are CSV lines (line = position + 2) or parquet rows (row = position + 1)."""

    def error(self, message: str, pos: int | None = None, column: str | None = None,
              ticker: str | None = None) -> FileInputError:
        """An error at row ``pos`` (0-based position in the file's data rows)."""
        line = None
        if pos is not None:
            if self.csv:
                line = pos + 2
            else:
                message = f"row {pos + 1}: {message}"
        return FileInputError(message, path=self.path, line=line, column=column, asset=ticker,
                              field=column)

    def place(self, pos: int) -> str:
        return f"line {pos + 2}" if self.csv else f"row {pos + 1}"


def _blank(s: pd.Series) -> np.ndarray:
    out = s.isna().to_numpy().copy()
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        out |= (s.astype(str).str.strip() == "").to_numpy()
    return out


def _panel_column(name: object) -> str:
    """A panel header in canonical form: the desk aliases of ticker, date and sector
    (``Symbol``, ``As Of``, ``GICS Sector``) and of the price (``Close``, ``Last``,
    ``PX_LAST`` -> ``close``); any other header lower-cased."""
    from rebalopt.adapters._dialect import canonical_column

    canon, pct = canonical_column(str(name))
    if canon in ("ticker", "date", "sector") and not pct:
        return canon
    if canon == "price":
        return "close"
    return str(name).strip().lower()


def _panel_dates(column: pd.Series, panel: _Panel
                 ) -> tuple[pd.Series, tuple[int, str, str] | None]:
    """A panel's dates, its numeric ones read in the file's one order.

    The order (day or month first) is settled by the dates that can only be read one
    way (:func:`~rebalopt.adapters._dialect.date_order`), so a panel of month starts
    (``01/07/2024``, ``01/08/2024``, ...) is not read month first because pandas
    would. Returns the dates (``NaT`` where a cell is not a date) and the refused
    cell as ``(position, "date", message)``, or ``None``.
    """
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return pd.to_datetime(column, errors="coerce"), None
    text = column.astype(str).str.strip()
    pos = np.flatnonzero(~text.duplicated().to_numpy())  # each distinct cell, first place
    distinct = text.to_numpy()[pos]
    dayfirst, bad, why = date_order(list(distinct), lambda i: panel.place(int(pos[i])))
    refused = None if bad is None else (int(pos[bad]), "date", str(why))
    if dayfirst:
        text = text.map(dict(zip(distinct, (month_first(t, True) for t in distinct))))
    return pd.to_datetime(text, errors="coerce"), refused


def _read_panel(path: str | Path) -> _Panel:
    """Read and check a long OHLCV panel (CSV or parquet); errors name file, line, column.

    Rejected: a missing file or required column (``date``, ``ticker``, ``close``), a
    duplicate column, an empty ticker, a cell that is not a date or a number, a close
    that is missing, not finite or not > 0 (leave the row out for a day the asset did
    not trade), an open/high/low that is not finite and > 0, a negative or non-finite
    volume, two rows for the same date and ticker, numeric dates in no settled order
    (both orders in the file, or only ambiguous ones: :func:`_panel_dates`). Other
    columns are ignored. Headers are read through the desk aliases
    (:func:`_panel_column`): ``Date,Symbol,Close`` is ``date,ticker,close``; two
    headers meaning one column are a duplicate.
    """
    p = Path(path)
    if not p.is_file():
        raise FileInputError("file not found", path=p)
    suffixes = "".join(p.suffixes).lower()
    is_csv = ".csv" in suffixes
    if not is_csv and ".parquet" not in suffixes and not suffixes.endswith(".pq"):
        raise FileInputError("unknown file type: use .csv or .parquet", path=p)
    try:
        if is_csv:
            df = pd.read_csv(p, dtype=str, keep_default_na=False, skip_blank_lines=False,
                             encoding="utf-8-sig")
        else:
            df = pd.read_parquet(p)
    except (ValueError, OSError, ImportError, UnicodeDecodeError) as exc:
        raise FileInputError(f"cannot read: {' '.join(str(exc).split())}", path=p) from None
    header = 1 if is_csv else None
    names = [_panel_column(c) for c in df.columns]
    dup = [c for c in names if names.count(c) > 1]
    if dup:
        raise FileInputError("duplicate column in header", path=p, line=header, column=dup[0])
    df.columns = names
    for col in ("date", "ticker", "close"):
        if col not in names:
            raise FileInputError(f"missing required column (found: {', '.join(names)})", path=p,
                                 line=header, column=col)
    df = df.reset_index(drop=True)
    blanks = {c: _blank(df[c]) for c in df.columns}
    rows = np.flatnonzero(~np.logical_and.reduce(list(blanks.values())))  # skip blank lines
    panel = _Panel(p, df, is_csv)

    def raw(pos: int, col: str) -> str:
        return str(df[col].iat[pos]).strip()

    ticker = df["ticker"].astype(str).str.strip()
    problems: list[tuple[int, str, str]] = []  # (position, column, message)

    def flag(mask: np.ndarray, col: str, message: str) -> None:
        hit = np.flatnonzero(mask[rows])
        if len(hit):
            pos = int(rows[hit[0]])
            problems.append((pos, col, message.format(raw=raw(pos, col))))

    flag(blanks["ticker"], "ticker", "empty ticker")
    dates, bad = _panel_dates(df["date"], panel)
    if bad is not None:  # cells read in no settled order: the refusal says why
        problems.append(bad)
    else:
        flag(dates.isna().to_numpy(), "date", "{raw!r} is not a date")
    numbers: dict[str, np.ndarray] = {}
    for col in _PANEL_NUMBERS:
        if col not in df.columns:
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        empty = blanks[col]
        if pd.api.types.is_numeric_dtype(df[col]):
            notnum = np.zeros(len(v), dtype=bool)
        else:
            text = df[col].astype(str).str.strip().str.lower().to_numpy()
            notnum = ~empty & np.isnan(v) & (text != "nan")
        if col == "close":
            flag(empty, col, "missing close (leave the row out for a day the asset did not "
                 "trade)")
        flag(notnum, col, "{raw!r} is not a number")
        flag(~empty & ~notnum & ~np.isfinite(v), col, "{raw!r} is not a finite number")
        with np.errstate(invalid="ignore"):
            if col == "volume":
                flag(~empty & (v < 0), col, "must be >= 0, got {raw!r}")
            else:
                flag(~empty & (v <= 0), col, "must be > 0, got {raw!r}")
        numbers[col] = v
    if problems:
        pos, col, message = min(problems)
        where = f"ticker {ticker.iat[pos]!r}" if col != "ticker" else ""
        if col not in ("ticker", "date"):
            where += f", {dates.iat[pos].date()}"
        raise panel.error(f"{message} ({where})" if where else message, pos, col,
                          ticker.iat[pos] or None)
    out = pd.DataFrame({"date": dates.to_numpy()[rows], "ticker": ticker.to_numpy()[rows],
                        **{c: v[rows] for c, v in numbers.items()}}, index=rows)
    for col in ("sector", "group"):
        if col in df.columns:
            labels = df[col].astype(str).str.strip().to_numpy()[rows]
            out[col] = np.where(blanks[col][rows], None, labels)
    ids = out.groupby(["date", "ticker"], sort=False).ngroup().to_numpy()
    second = pd.Series(ids).duplicated().to_numpy()
    if second.any():
        j = int(np.argmax(second))
        i = int(np.flatnonzero(ids == ids[j])[0])
        pi, pj = int(out.index[i]), int(out.index[j])
        raise panel.error(f"duplicate row for ticker {ticker.iat[pj]!r} on "
                          f"{dates.iat[pj].date()} (first on {panel.place(pi)})", pj, "ticker",
                          ticker.iat[pj])
    panel.frame = out.sort_values(["date", "ticker"], kind="stable")
    return panel


def _read_targets(path: str | Path, feed: Any, panel: Path) -> pd.DataFrame:
    """Read a wide targets CSV and check it against the panel's ``feed``.

    Format: a ``date`` column and one column per ticker, weights as fractions of
    equity (a blank cell is 0), one row per decision date. Rejected, naming the file,
    line and column: a missing file or ``date`` column, a duplicate or empty column
    name, a ticker that is not in the panel, a cell that is not a finite number, a bad
    or repeated date, a date that is not a bar of the panel, a non-zero weight on a
    ticker with no price in the panel on that date. Rows outside the panel's dates
    (after ``--start``/``--end``) are dropped.
    """
    p = Path(path)
    text = read_text_file(p)
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    dates: list[pd.Timestamp] = []
    weights: list[list[float]] = []
    lines: list[int] = []
    line_of: dict[pd.Timestamp, int] = {}
    col_date = 0
    known = set(feed.assets)
    rows = [(reader.line_num, [c.strip() for c in cells]) for cells in reader
            if cells and not all(not c.strip() for c in cells)]
    dayfirst: bool | None = None
    for at, (line, cells) in enumerate(rows):
        if header is None:
            header = cells
            lower = [c.lower() for c in cells]
            if "date" not in lower:
                raise FileInputError(f"missing required column (found: {', '.join(cells)})",
                                     path=p, line=line, column="date")
            col_date = lower.index("date")
            for k, name in enumerate(cells):
                if not name:
                    raise FileInputError("empty column name", path=p, line=line, column=k + 1)
                if cells.count(name) > 1:
                    raise FileInputError("duplicate column in header", path=p, line=line,
                                         column=name)
                if k != col_date and name not in known:
                    raise FileInputError(f"ticker {name!r} is not in the panel {panel.name}",
                                         path=p, line=line, column=name, asset=name,
                                         field="ticker")
            # one order for the file's numeric dates, settled by the certain ones
            body = [(n, c) for n, c in rows[at + 1:] if len(c) == len(cells)]
            dayfirst, bad, why = date_order([c[col_date] for _, c in body],
                                            lambda i, body=body: f"line {body[i][0]}")
            if why is not None:
                raise FileInputError(why, path=p, line=body[bad][0], column=cells[col_date])
            continue
        if len(cells) != len(header):
            raise FileInputError(f"{len(cells)} cells but the header has {len(header)}", path=p,
                                 line=line)
        try:
            d = pd.Timestamp(month_first(cells[col_date], dayfirst))
        except (ValueError, TypeError):
            d = pd.NaT
        if pd.isna(d):
            raise FileInputError(f"{cells[col_date]!r} is not a date", path=p, line=line,
                                 column=header[col_date])
        if d in line_of:
            raise FileInputError(f"duplicate row for {d.date()} (first on line {line_of[d]})",
                                 path=p, line=line, column=header[col_date])
        line_of[d] = line
        row: list[float] = []
        for k, raw in enumerate(cells):
            if k == col_date:
                continue
            if raw == "":
                row.append(0.0)
                continue
            try:
                v = float(raw)
            except ValueError:
                raise FileInputError(f"{raw!r} is not a number ({d.date()})", path=p, line=line,
                                     column=header[k], asset=header[k]) from None
            if not math.isfinite(v):
                raise FileInputError(f"{raw!r} is not a finite number ({d.date()})", path=p,
                                     line=line, column=header[k], asset=header[k])
            row.append(v)
        dates.append(d)
        weights.append(row)
        lines.append(line)
    if header is None:
        raise FileInputError("empty file (no header)", path=p, line=1)
    tickers = [c for k, c in enumerate(header) if k != col_date]
    frame = pd.DataFrame(weights, index=pd.DatetimeIndex(dates, name="date"), columns=tickers,
                         dtype=float)
    line_s = pd.Series(lines, index=frame.index)
    inside = (frame.index >= feed.dates[0]) & (frame.index <= feed.dates[-1])
    frame, line_s = frame[inside], line_s[inside]
    if frame.empty:
        raise FileInputError(f"no decision date between {feed.dates[0].date()} and "
                             f"{feed.dates[-1].date()} (the panel's dates, after --start/--end)",
                             path=p)
    pos = feed.dates.get_indexer(frame.index)
    for d, t, line in zip(frame.index, pos, line_s, strict=True):
        if t < 0:
            raise FileInputError(f"{d.date()} is not a date of the panel {panel.name} (decision "
                                 "dates must be trading days)", path=p, line=int(line),
                                 column=header[col_date])
    cols = [feed.index_of(c) for c in tickers]
    avail = feed.available[np.ix_(pos, cols)]
    bad = (frame.to_numpy() != 0) & ~avail
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise FileInputError(
            f"weight {frame.iat[r, c]:g} for {tickers[c]!r} on {frame.index[r].date()}, but "
            f"{panel.name} has no price for it that day", path=p, line=int(line_s.iat[r]),
            column=tickers[c], asset=tickers[c], field="target weight")
    return frame.sort_index()


class _Outputs:
    """Files written together or not at all: each goes to a temporary file in its
    folder, renamed over the real path by :meth:`commit` once every one is complete."""

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []

    @staticmethod
    def check(path: str | Path | None, inputs: list[Any], flag: str) -> None:
        """Fail before any work when ``path`` cannot be written or names an input."""
        if path is not None:
            check_output(path, inputs, flag)

    def stage(self, path: str | Path) -> Path:
        """A temporary path to write ``path``'s content to."""
        out = Path(path)
        folder = out.parent if str(out.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        self.staged.append((Path(tmp), out))
        return Path(tmp)

    def commit(self) -> list[Path]:
        for tmp, out in self.staged:
            os.replace(tmp, out)
        done = [out for _, out in self.staged]
        self.staged = []
        return done

    def discard(self) -> None:
        for tmp, _ in self.staged:
            if tmp.exists():
                tmp.unlink()
        self.staged = []


def _window_figures(result: Any, start: int, periods_per_year: float) -> dict[str, float]:
    """CAGR, volatility, Sharpe and max drawdown of equity after the funding trade
    (bars ``start..``), annualized with ``periods_per_year``."""
    eq = np.asarray(result.equity[start:], dtype=float)
    r = eq[1:] / eq[:-1] - 1.0
    years = len(r) / periods_per_year
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else float("nan")
    peak = np.maximum.accumulate(eq)
    return {
        "cagr": float((eq[-1] / eq[0]) ** (1.0 / years) - 1.0) if years > 0 else float("nan"),
        "volatility": sd * math.sqrt(periods_per_year),
        "sharpe": (float(np.mean(r)) / sd * math.sqrt(periods_per_year)
                   if sd > 0 else float("nan")),
        "max_drawdown": float(np.max(1.0 - eq / peak)),
    }


def _floats(text: str, flag: str) -> list[float]:
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"expected comma-separated numbers, got {text!r}", field=flag) from None
    if not out or not all(math.isfinite(x) and x > 0 for x in out):
        raise InputError(f"expected positive numbers, got {text!r}", field=flag)
    return out


def _date(text: str | None, flag: str) -> pd.Timestamp | None:
    if text is None:
        return None
    why = ambiguous_date(text)
    if why is not None:
        raise InputError(why, field=flag)
    try:
        out = pd.Timestamp(text)
    except (ValueError, TypeError):
        out = pd.NaT
    if pd.isna(out):
        raise InputError(f"{text!r} is not a date", field=flag)
    # the date as written, as the files' dates are read (a time zone made every
    # comparison with them raise TypeError)
    return out.tz_localize(None) if out.tzinfo is not None else out


def _default_compare_costs(has_volume: bool) -> tuple[list[Any], str]:
    """What ``backtest --compare`` charges when the config has no ``[costs]`` table.

    The demo's models (:func:`rebalopt.research.demo.demo_comparison`), a US large-cap
    desk's order of magnitude: commission 0.005/share with a 1.00 minimum, 3 bps
    half-spread, 3/2-power market impact (coef 1) when the panel has volume. A
    comparison at zero cost would print savings that mean nothing. Returns the
    models and the note printed with the results.
    """
    from rebalopt.costs import Commission, MarketImpact, Spread

    costs: list[Any] = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0)]
    what = "commission 0.005/share (minimum 1.00 per order), spread 3 bps half-spread"
    if has_volume:
        costs.append(MarketImpact(coef=1.0, exponent=1.5))
        what += ", market impact coef 1 exponent 1.5"
    else:
        what += " (no market impact: the panel has no volume column)"
    return costs, (f"note: no [costs] in the config: every run is charged the default costs: "
                   f"{what}; give a [costs] table to change them (an empty [costs] table "
                   "means no cost)")


class _ConfigTraced:
    """A rebalancer that remembers the planning errors its config caused.

    A backtest holds a rebalance on an error (``on_error="hold"``): right for a market
    that makes one date infeasible, wrong for a config that cannot be honoured at all
    (a group bound naming a sector no asset has), which would hold every rebalance and
    exit 0. Errors :meth:`Settings.locate <rebalopt.config.Settings.locate>` traces to
    a config key are kept in ``errors``; the command then fails with the first one.
    Every other attribute is the wrapped rebalancer's.
    """

    def __init__(self, inner: Any, settings: Any) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "errors", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def plan(self, state: Any, targets: Any) -> Any:
        try:
            return self._inner.plan(state, targets)
        except InputError as exc:
            located = self._settings.locate(exc)
            if located is not exc:
                self.errors.append(located)
            raise


_COMPARE_OPTIONS = {"min_trade_value": 0.0, "min_weight_change": 0.0}
"""``[rebalancer]`` options of the naive and band runs of ``--compare``
(:func:`~rebalopt.research.compare.naive_runs`, ``band_runs``); the others are
:class:`~rebalopt.rebalance.RebalanceConfig`'s defaults, ``fractional`` the config's."""


def _compare_reads(settings: Any) -> None:
    """``backtest --compare`` runs naive and band rebalancers of its own (every 1, 2, 3
    decision dates; 14 bands): a naive or band config's ``[band]`` table, or a
    ``[rebalancer]`` option set to another value than those runs use, would be ignored,
    so it is an error naming the key (an optimal config's rebalancer is the optimal
    runs')."""
    from rebalopt.rebalance import RebalanceConfig

    if settings.method == "optimal":
        return
    if settings.band:
        raise settings.error("band", "--compare runs its own 14 tolerance bands (abs and "
                             "rel widths, to target and to edge): [band] would be ignored")
    default = RebalanceConfig()
    for key in settings.rebalancer_keys:
        if key == "fractional":
            continue
        used = _COMPARE_OPTIONS.get(key, getattr(default, key))
        if getattr(settings.options, key) != used:
            raise settings.error(f"rebalancer.{key}", f"--compare runs naive and band "
                                 f"rebalancers of its own with {key} = {used!r}: the "
                                 f"config's {getattr(settings.options, key)!r} would be "
                                 "ignored (drop --compare to backtest this rebalancer)")


def _backtest(args: argparse.Namespace) -> int:
    from rebalopt.backtest import DataFeed
    from rebalopt.config import Settings, load_config
    from rebalopt.research.compare import Run, band_runs, compare, naive_runs, optimal_runs
    from rebalopt.research.quality import equal_te_table
    from rebalopt.research.report import summary_table, write_report
    from rebalopt.research.targets import risk_schedule, target_schedule

    if args.compare and args.out is None:
        raise InputError("--compare writes an HTML report: give --out FILE.html", field="--out")
    if args.risk_aversions and not args.compare:  # read only by the comparison's runs
        raise InputError("--risk-aversions sets the optimal runs of --compare; without it "
                         "the run uses the config's [optimal] risk_aversion and the list "
                         "would be ignored", field="--risk-aversions")
    if args.compare and (args.equity_csv or args.fills_csv):
        raise InputError("--equity-csv and --fills-csv describe one run: drop --compare",
                         field="--compare")
    gammas = (_floats(args.risk_aversions, "--risk-aversions") if args.risk_aversions
              else list(_RISK_AVERSIONS))
    outputs = [args.out, args.equity_csv, args.fills_csv]
    given = [str(Path(o).resolve()) for o in outputs if o is not None]
    if len(set(given)) != len(given):
        raise InputError("two outputs name the same file", field="--out")
    if args.cash is not None and not (math.isfinite(args.cash) and args.cash > 0):
        raise InputError(f"must be finite and > 0, got {args.cash}", field="--cash")
    lookback_given = args.lookback is not None
    if lookback_given and args.lookback < 2:
        raise InputError(f"must be >= 2, got {args.lookback}", field="--lookback")
    if not lookback_given:
        args.lookback = _LOOKBACK
    settings = load_config(args.config) if args.config else Settings()
    if settings.tax is not None:
        raise settings.error("costs.tax", "rebalopt backtest reads no tax lots: the tax term "
                             "would be ignored (use it with rebalopt rebalance --lots)")
    if settings.orders:
        raise settings.error("orders", "rebalopt backtest writes no order file: [orders] "
                             "would be ignored")
    if "margin" in settings.account_keys and not settings.margin:
        raise settings.error("account.margin", "the backtest's broker is a margin account "
                             "(cash may go below 0): margin = false would be ignored")
    if args.compare:
        _compare_reads(settings)
    inputs = [args.prices, args.targets, args.config, *settings.inputs]
    for o, flag in zip(outputs, ("--out", "--equity-csv", "--fills-csv"), strict=True):
        _Outputs.check(o, inputs, flag)
    cash = args.cash if args.cash is not None else (settings.cash or 1e6)

    panel = _read_panel(args.prices)
    cost_note = None
    if args.compare and not settings.costs_given:
        settings.costs, cost_note = _default_compare_costs("volume" in panel.frame.columns)
    frame = panel.frame
    start, end = (_date(args.start, "--start"), _date(args.end, "--end"))
    if start is not None:
        frame = frame[frame["date"] >= start]
    if end is not None:
        frame = frame[frame["date"] <= end]
    if frame.empty:
        raise InputError(f"no row of {panel.path.name} between --start and --end",
                         field="--start")
    try:
        feed = DataFeed.from_long(frame)
    except InputError as exc:  # checked above; kept for anything the feed adds
        raise panel.error(str(exc), None, exc.field, exc.asset) from None
    closes = pd.DataFrame(feed.close, index=feed.dates, columns=feed.assets)
    if args.targets:
        targets = _read_targets(args.targets, feed, panel.path)
    else:
        name = args.optimizer or "inverse_volatility"
        if feed.n_bars <= args.lookback + 1:
            raise InputError(f"{panel.path.name} has {feed.n_bars} bars in the window; "
                             f"--optimizer needs more than --lookback + 1 = {args.lookback + 1}",
                             field="--lookback")
        targets = target_schedule(closes, name, lookback=args.lookback, frequency="M")
        if targets.empty:
            raise InputError("no month ends after the lookback window", field="--lookback")
    first = int(feed.dates.get_loc(targets.index[0]))
    method = settings.method
    rebalancer = settings.build()
    needs_risk = args.compare or method == "optimal"
    if lookback_given and args.targets and not (needs_risk and settings.risk is None):
        raise InputError("read by nothing here: the targets come from --targets and "
                         + ("the config's [risk] section gives the risk model"
                            if needs_risk else "this rebalancer uses no risk model"),
                         field="--lookback")
    if needs_risk and settings.risk is None:
        history = min(args.lookback, first)
        if history < _MIN_RISK_BARS:
            raise InputError(
                f"the first decision date {targets.index[0].date()} has {first} bars before it; "
                f"the optimal rebalancer's risk model needs at least {_MIN_RISK_BARS} (start the "
                "targets later, or give a [risk] section in the config)", field="targets")
        risk: Any = risk_schedule(closes, targets.index, lookback=history)
    else:
        risk = settings.risk
    fractional = settings.options.fractional
    rebalancer = _ConfigTraced(rebalancer, settings)
    if args.compare:
        if method == "optimal":
            holder = getattr(rebalancer, "relaxation", rebalancer)
            if settings.risk is None:
                holder.risk = risk
            opt = [Run(f"optimal γ={g:g}", rebalancer, kind="optimal", knob=g, risk_aversion=g)
                   for g in gammas]
        else:
            opt = optimal_runs(settings.costs, risk, gammas, fractional=fractional,
                               whole_shares="integer")
        runs = (naive_runs(settings.costs, fractional=fractional)
                + band_runs(settings.costs, fractional=fractional) + opt)
    else:
        if method == "optimal" and settings.risk is None:
            getattr(rebalancer, "relaxation", rebalancer).risk = risk
        runs = [Run(method, rebalancer, kind=method)]
    with warnings.catch_warnings():
        # cvxpy warns on "optimal_inaccurate"; the rebalancer verifies such points itself
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        cmp = compare(feed, targets, settings.costs, runs, initial_cash=cash,
                      fractional=fractional, record_holdings=args.compare or args.out is not None)
    if rebalancer.errors:  # the config cannot be honoured: no figures, no file
        raise rebalancer.errors[0]
    staged = _Outputs()
    try:
        if args.out is not None:
            source = (f"from {Path(args.targets).name}" if args.targets
                      else f"by {args.optimizer or 'inverse_volatility'}")
            config = Path(args.config).name if args.config else "defaults"
            write_report(cmp, staged.stage(args.out), description=(
                f"{panel.path.name}: {feed.n_assets} assets; targets {source}; config {config}."))
        if not args.compare:
            res = cmp.results[method]
            if args.equity_csv:
                eq = res.to_frame("equity")
                eq["paper_equity"] = cmp.paper_equity().to_numpy()
                eq.to_csv(staged.stage(args.equity_csv), index_label="date")
            if args.fills_csv:
                res.fills_frame().to_csv(staged.stage(args.fills_csv), index=False)
        written = staged.commit()
    except BaseException:
        staged.discard()
        raise
    t = cmp.table
    if cost_note is not None:
        print(cost_note)
    elif args.compare and not settings.costs:
        print("note: the config's [costs] table is empty: every run trades for free, so no "
              "run can save any cost")
    print(f"rebalopt backtest: {feed.n_assets} assets, {feed.n_bars} bars "
          f"{feed.dates[0].date()}..{feed.dates[-1].date()}, {len(targets)} decision dates from "
          f"{targets.index[0].date()}, initial cash {cash:,.2f}")
    if args.compare:
        view = summary_table(cmp)[["kind", "TE (%/yr)", "cost (bps/yr)", "turnover (%/yr)",
                                   "held"]]
        print(view.to_string(float_format=lambda x: f"{x:,.2f}"))
        if (t["kind"] == "optimal").any():
            eq_te = equal_te_table(t)
            for name in [n for n in t.index if t.loc[n, "kind"] == "naive"]:
                r = eq_te.loc[name]
                print(f"  {name}: TE {100 * r['tracking_error']:.2f}%/yr, cost "
                      f"{r['cost_bps']:.2f} bps/yr; optimal at the same TE "
                      f"{r['optimal_cost_bps']:.2f} bps/yr")
    else:
        row = t.loc[method]
        res = cmp.results[method]
        fig = _window_figures(res, cmp.start, 252.0)
        names = list(res.cost_names)
        by_model = ", ".join(f"{k} {row[f'cost_{k}_bps']:.2f}" for k in names) or "no cost model"
        print(f"  rebalancer {method}: equity {res.equity[cmp.start]:,.2f} after funding -> "
              f"{res.equity[-1]:,.2f}")
        print(f"  CAGR {fig['cagr']:.2%}  vol {fig['volatility']:.2%}  Sharpe "
              f"{fig['sharpe']:.2f}  max drawdown {fig['max_drawdown']:.2%}")
        print(f"  cost {row['cost_bps']:.2f} bps/yr ({by_model}); funding trade "
              f"{row['initial_cost_bps']:.2f} bps of initial cash, excluded")
        print(f"  turnover {row['turnover']:.2%}/yr one-way, {int(row['n_orders'])} orders on "
              f"{int(row['n_rebalances'])} rebalances, {int(row['n_held'])} held")
        print(f"  realized tracking error {row['tracking_error']:.2%}/yr (to the cost-free "
              "paper portfolio)")
    for name, res in cmp.results.items():
        held = [r for r in res.rebalances if r["status"] == "held"]
        if held:
            print(f"rebalopt: warning: {name}: {len(held)} rebalances held; first on "
                  f"{pd.Timestamp(held[0]['date']).date()}: {held[0]['error']}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rebalopt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="naive vs optimal rebalancing on real prices")
    demo.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                      help="folder for the HTML report (default ./reports)")
    demo.add_argument("--quick", action="store_true", help="a short run (seconds)")
    demo.set_defaults(func=_demo)

    reb = sub.add_parser(
        "rebalance", help="holdings + targets + prices (CSV) -> order file",
        description="Plan the trades from holdings to targets and write an order file: "
                    "rebalopt's CSV (ticker, side, quantity, reference_price, expected_cost), "
                    "an IB basket, Alpaca order requests or FIX 4.4 messages (--format; "
                    "the desk's settings also in the config's [orders] table, flags win). "
                    "Exit codes: 0 written, 2 bad input (file, line, column or flag "
                    "named), 3 infeasible, 4 solver failure, 1 other error.")
    reb.add_argument("--holdings", required=True, metavar="CSV",
                     help="columns ticker, shares (or Symbol, Quantity, ...)")
    reb.add_argument("--targets", required=True, metavar="CSV",
                     help="columns ticker, weight (fraction of equity, or 2.5%%); also the "
                          "optimizers' exports (riskfolio, PyPortfolioOpt .csv/.json, a "
                          "pandas Series)")
    reb.add_argument("--prices", required=True, metavar="CSV",
                     help="columns ticker, price [, adv, volatility, sector, lot_size, "
                          "multiplier]; a date column (or one column per ticker) for a history")
    reb.add_argument("--config", metavar="TOML", help="rebalancer, costs, risk model, limits")
    reb.add_argument("--cash", type=float, metavar="X",
                     help="cash balance, currency (default: [account] cash in the config, else 0)")
    reb.add_argument("--out", metavar="FILE",
                     help="order file to write (atomically), in --format")
    reb.add_argument("--preview", action="store_true",
                     help="print the per-asset preview table; without --out nothing is written")
    reb.add_argument("--as-of", metavar="DATE",
                     help="for a prices file with a date column: use the latest date on or "
                          "before DATE (default: the latest date of the file); also the plan's "
                          "date (tax lots' terms, client order ids; default that file date, "
                          "else today)")
    reb.add_argument("--allow-empty-targets", action="store_true",
                     help="accept a targets file with no row: sell every holding (refused by "
                          "default, as a failed export looks the same)")
    add_order_arguments(reb)
    reb.add_argument("--lots", metavar="CSV",
                     help="tax lots: asset, shares, basis (per share), acquired [, lot_id, "
                          "purchased]; holdings must equal the sum of the lots. Needs "
                          "[costs.tax] in the config: the plan is tax-aware and prints the "
                          "realized gain and tax (--preview: per lot sold)")
    reb.add_argument("--periods", type=int, metavar="N",
                     help="plan the next N periods (the config's [optimal] horizon split in "
                          "N; method optimal, fractional = true) and write the first "
                          "period's orders; N = 1 is the single-period plan")
    reb.add_argument("--schedule", metavar="CSV",
                     help="with --periods: write the schedule (period x ticker, signed "
                          "shares; expected cost, cash, tracking error per period)")
    reb.set_defaults(func=_rebalance)

    bt = sub.add_parser(
        "backtest", help="a price panel + targets -> backtest figures or an HTML comparison",
        description="Backtest the config's rebalancer (default naive) on a price panel, or "
                    "with --compare naive vs band vs optimal rebalancing, written as an HTML "
                    "report.")
    bt.add_argument("--prices", required=True, metavar="PANEL",
                    help="long OHLCV panel, .csv or .parquet: date, ticker, close [, open, "
                         "high, low, volume, sector]")
    src = bt.add_mutually_exclusive_group()
    src.add_argument("--targets", metavar="CSV",
                     help="wide target weights: a date column (decision dates) and one column "
                          "per ticker (fractions of equity, blank = 0)")
    src.add_argument("--optimizer", choices=_OPTIMIZERS,
                     help="targets computed on the panel at each month end from --lookback "
                          "daily returns (default inverse_volatility)")
    bt.add_argument("--lookback", type=int, default=None, metavar="N",
                    help="daily returns behind --optimizer targets and the optimal "
                         f"rebalancer's risk model (default {_LOOKBACK}; an error where "
                         "neither reads it)")
    bt.add_argument("--config", metavar="TOML",
                    help="rebalancer, costs, risk model, limits (as for rebalance)")
    bt.add_argument("--cash", type=float, metavar="X",
                    help="initial cash, currency (default: [account] cash, else 1e6)")
    bt.add_argument("--start", metavar="DATE", help="first bar used (inclusive)")
    bt.add_argument("--end", metavar="DATE", help="last bar used (inclusive)")
    bt.add_argument("--compare", action="store_true",
                    help="naive every 1/2/3 decision dates, 14 bands and optimal per risk "
                         "aversion, same costs (the config's [costs], else the documented "
                         "defaults, printed); needs --out")
    bt.add_argument("--risk-aversions", metavar="G1,G2,...",
                    help="risk aversions of the optimal runs with --compare "
                         "(default 1,10,100,1000,10000)")
    bt.add_argument("--out", metavar="HTML", help="HTML report to write (atomically)")
    bt.add_argument("--equity-csv", metavar="CSV",
                    help="per-bar equity, cash, returns and paper equity of the run")
    bt.add_argument("--fills-csv", metavar="CSV", help="every fill with its cost per model")
    bt.set_defaults(func=_backtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RebalanceError as exc:
        code = (EXIT_INPUT if isinstance(exc, InputError)
                else EXIT_INFEASIBLE if isinstance(exc, InfeasibleError)
                else EXIT_SOLVER if isinstance(exc, SolverError) else EXIT_OTHER)
        message = " ".join(str(exc).split())
        print(f"rebalopt: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
