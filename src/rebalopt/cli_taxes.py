"""Tax lots on the command line: ``rebalopt rebalance --lots CSV``.

The lots file (:func:`rebalopt.taxes.read_lots_csv`: ``asset`` or ``ticker``,
``shares``, ``basis`` per share, ``acquired``, optional ``lot_id`` and
``purchased``) is read into the book's state, valued on the plan's date. Tickers are
compared in upper case, as in the other desk files. Each holding must equal the sum
of its lots: a mismatch names the asset, the lots file's line and the holdings
file's line. With a ``[costs.tax]`` model the plan is tax-aware
(:class:`~rebalopt.rebalance.tax_aware.TaxAwareRebalancer`) and
:func:`tax_lines` reports the lots each sell relieves, its realized gain and tax.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

from rebalopt.adapters._dialect import fold_ticker
from rebalopt.adapters.files import FileInputError, read_text_file
from rebalopt.errors import InputError
from rebalopt.taxes import TaxLots, read_lots_csv

__all__ = ["attach_lots", "tax_lines"]


def _asset_lines(path: Path, spellings: list[tuple[str, int]] | None = None
                 ) -> dict[str, int]:
    """First line of each (upper-cased) asset in the lots file; ``spellings`` collects
    ``(ticker as written, line)`` for those that upper-casing changed."""
    reader = csv.reader(io.StringIO(read_text_file(path)))
    rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    if not rows:
        return {}
    header = [c.strip().lower() for c in rows[0][1]]
    col = next((header.index(n) for n in ("asset", "ticker") if n in header), None)
    out: dict[str, int] = {}
    if col is None:
        return out
    for line, r in rows[1:]:
        if col < len(r) and r[col].strip():
            out.setdefault(fold_ticker(r[col]), line)
            written = r[col].strip()
            if (spellings is not None and fold_ticker(written) != written
                    and all(w != written for w, _ in spellings)):
                spellings.append((written, line))
    return out


def attach_lots(book: Any, path: str | Path, day: pd.Timestamp) -> list[str]:
    """Read the lots file into ``book.state`` (valued on ``day``); returns notes.

    Raises
    ------
    FileInputError
        A malformed lots file (file, line, column), or a holding that differs from
        the sum of its lots, a short holding with lots, lots of an asset not held:
        naming the asset and the lots file's line (and the holdings file's line).
    """
    p = Path(path)
    try:
        # one asset per upper-cased ticker, its lots numbered together ('aaa' and 'AAA'
        # read apart both had a lot '1': a false duplicate when merged)
        folded = dict(read_lots_csv(p, fold_tickers=True).items())
    except FileInputError as exc:
        if exc.asset is None:
            raise
        message = str(exc).split(": ", 1)[-1] if exc.line is not None or exc.column else str(exc)
        raise FileInputError(f"{message} (ticker {exc.asset!r})", path=p, line=exc.line,
                             column=exc.column, asset=exc.asset, field=exc.field) from None
    changed: list[tuple[str, int]] = []
    lines = _asset_lines(p, changed)
    try:
        lots = TaxLots(folded, as_of=day)
        lots.check_holdings(book.state.assets, book.state.holdings)
    except InputError as exc:
        raise _locate(exc, p, lines, book) from None
    book.state.lots = lots
    notes = []
    if changed:
        notes.append(f"{p.name}: tickers upper-cased: "
                     + ", ".join(f"{a} (line {line})" for a, line in changed))
    n = sum(len(v) for v in lots.values())
    notes.append(f"{p.name}: {n} lots of {len(lots)} assets, valued on {day.date()}")
    return notes


def _locate(exc: InputError, path: Path, lines: dict[str, int], book: Any) -> FileInputError:
    asset = exc.asset
    message = str(exc).split("] ", 1)[-1] + (f" (ticker {asset!r})" if asset else "")
    held_line = book.holdings.line_of.get(asset) if asset is not None else None
    if asset is not None and asset in lines:
        if held_line is not None:
            message += f" ({book.holdings.path.name} line {held_line})"
        return FileInputError(message, path=path, line=lines[asset], column="shares",
                              asset=asset, field="lots")
    if held_line is not None:
        return FileInputError(f"{message}; {path.name} has no lot for it",
                              path=book.holdings.path, line=held_line,
                              column=book.holdings.column_name("shares", asset), asset=asset,
                              field="lots")
    return FileInputError(message, path=path, asset=asset, field="lots")


def tax_lines(plan: Any, tax: Any, preview: bool) -> list[str]:
    """The tax summary of a tax-aware plan; with ``preview`` the lots each sell relieves
    (asset, lot, shares, basis, acquired, term, realized gain, tax; currency)."""
    info = plan.info.get("tax")
    sales = plan.info.get("tax_lots")
    if info is None or sales is None:
        return []
    r = tax.rates
    short = float(sales.loc[sales["term"] == "short", "gain"].sum())
    long_ = float(sales.loc[sales["term"] == "long", "gain"].sum())
    loss = "its term's rate" if r.loss is None else f"{r.loss:.2%}"
    out = [(f"  tax: realized gain {info['realized_gain']:,.2f} (short-term {short:,.2f}, "
           f"long-term {long_:,.2f}), tax {info['tax']:,.2f} at {r.short_term:.2%} short / "
           f"{r.long_term:.2%} long, losses at {loss} (not paid from cash)")]
    if info.get("harvest_candidates"):
        out.append(f"  tax: losses harvested (not bought): {', '.join(info['harvest_candidates'])}")
    if info.get("restricted"):
        out.append("  tax: wash-sale restricted (not bought): " + ", ".join(info["restricted"]))
    if preview and len(sales):
        lots = plan.state.lots
        detail = {(a, lot.lot_id): lot for a in lots for lot in lots[a]}
        table = sales.assign(
            basis=[detail[(a, i)].basis for a, i in zip(sales["asset"], sales["lot_id"],
                                                         strict=True)],
            acquired=[detail[(a, i)].acquired.date() for a, i in
                      zip(sales["asset"], sales["lot_id"], strict=True)],
        )[["asset", "lot_id", "shares", "basis", "acquired", "term", "gain", "tax"]]
        out.append("lots sold:")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            out.append(table.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    return out
