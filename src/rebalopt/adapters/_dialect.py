"""How desk files spell things: column aliases, numbers, tickers.

Desk exports and optimizer outputs name the same column many ways (``Symbol``,
``Ticker``; ``Quantity``, ``Shares``; ``Close``, ``Price``), write numbers with
thousands separators (``"1,470"``) or percent signs (``2.00%``), and tickers in
lower case. This module maps them onto the canonical layout of
:mod:`rebalopt.adapters.files`, and refuses what it cannot read for certain (two
columns meaning the same thing, a decimal comma, a percent sign on a share count).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

__all__ = ["ALIASES", "PERCENT_ALIASES", "ambiguous_date", "canonical_column", "date_order",
           "fold_ticker", "month_first", "normalize_header", "parse_number"]

ALIASES: dict[str, tuple[str, ...]] = {
    "ticker": ("ticker", "tickers", "symbol", "symbols", "asset", "assets", "instrument",
               "security", "stock"),
    "shares": ("shares", "quantity", "qty", "position", "positions", "units", "shares_held",
               "quantity_held", "share_count"),
    "weight": ("weight", "weights", "target", "target_weight", "targets", "allocation",
               "alloc"),
    "price": ("price", "close", "last", "last_price", "close_price", "closing_price", "px_last",
              "market_price", "mark", "px"),
    "date": ("date", "as_of", "asof", "as_of_date", "timestamp", "datetime", "trade_date",
             "pricing_date"),
    "adv": ("adv", "average_daily_volume", "avg_daily_volume", "avg_volume", "adv_shares"),
    "volatility": ("volatility", "daily_volatility"),  # not "vol": often volume
    "sector": ("sector", "gics_sector", "group"),
    "lot_size": ("lot_size", "round_lot", "board_lot"),
    "multiplier": ("multiplier", "contract_multiplier", "point_value"),
}
"""Canonical column -> the header spellings read as it (after :func:`normalize_header`).

Only spellings with one meaning in desk files: ``Vol`` (volume or volatility?),
``Holding`` (shares or value?) and ``Lots`` (a size or a count?) are not read."""

PERCENT_ALIASES: dict[str, tuple[str, ...]] = {
    "weight": ("weight_pct", "weight_percent", "weights_pct", "target_pct", "target_weight_pct",
               "allocation_pct", "pct_weight", "percent_weight", "pct", "percent"),
}
"""Headers whose numbers are percent (``2.5`` means 0.025), for the canonical column."""

_SPELLING = {alias: canon for canon, names in ALIASES.items() for alias in names}
_PERCENT = {alias: canon for canon, names in PERCENT_ALIASES.items() for alias in names}
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")
_CURRENCY = "$€£¥"
_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})([/.-])(\d{1,2})[/.-](\d{2}|\d{4})((?:[\sT].*)?)")


def normalize_header(name: str) -> str:
    """``"Weight (%)"`` -> ``"weight_pct"``, ``"Last Price"`` -> ``"last_price"``."""
    text = name.strip().lower().replace("%", " pct ")
    text = re.sub(r"[^0-9a-z]+", " ", text)
    return "_".join(text.split())


def canonical_column(name: str) -> tuple[str | None, bool]:
    """The canonical column a header means and whether its numbers are percent."""
    key = normalize_header(name)
    if key in _PERCENT:
        return _PERCENT[key], True
    return _SPELLING.get(key), False


def fold_ticker(raw: str) -> str:
    """The canonical spelling of a ticker: stripped, upper case."""
    return raw.strip().upper()


def parse_number(raw: str, *, percent_ok: bool = False) -> tuple[float, bool]:
    """Read a desk cell as a number; returns ``(value, was_percent)``.

    Accepted: plain numbers, a leading currency sign (``$1,470.50``), thousands
    separators in groups of three (``"1,470"``), accounting negatives
    (``(1,470)``), and with ``percent_ok`` a trailing percent sign (``2.00%`` ->
    0.02). Raises ``ValueError`` with the reason otherwise, notably for a decimal
    comma (``"1,47"``) or a sign inside parentheses (``"(-5)"``), which are ambiguous.
    """
    text = raw.strip()
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1].strip()
    if text[:1] in _CURRENCY:
        text = text[1:].strip()
    elif text[:2] in ("-$", "+$"):
        text = text[0] + text[2:].strip()
    if negative and text[:1] in "+-":
        raise ValueError("a sign inside accounting parentheses (is '(-5)' -5 or 5?): write "
                         "-5 or (5)")
    pct = text.endswith("%")
    if pct:
        if not percent_ok:
            raise ValueError("a percent sign is not allowed in this column")
        text = text[:-1].strip()
    if "," in text:
        if not _THOUSANDS.fullmatch(text):
            raise ValueError("a comma that is not a thousands separator (decimal commas "
                             "are ambiguous: write 1.47)")
        text = text.replace(",", "")
    value = float(text)  # ValueError for anything else
    if negative:
        value = -value
    return (value / 100.0 if pct else value), pct


def ambiguous_date(text: str) -> str | None:
    """Why ``text`` is not certainly one date on its own, or ``None``.

    ``01/07/2024`` is 7 January to a US desk and 1 July to a European one; pandas
    reads it month first, yet reads ``27/06/2024`` day first, so a day-first file was
    read half right. A date of two numbers up to 12 (other than equal ones) before
    the year is ambiguous; ISO ``2024-07-01``, ``2024/07/01``, ``27/06/2024`` and
    ``1 July 2024`` are not. In a file, :func:`date_order` settles the order from the
    file's other dates.
    """
    m = _NUMERIC_DATE.fullmatch(text)
    if m is None:
        return None
    a, b = int(m.group(1)), int(m.group(3))
    if a <= 12 and b <= 12 and a != b:
        return (f"{text.strip()!r} is ambiguous (month {a} day {b}, or day {a} month {b}?): "
                "write ISO dates, YYYY-MM-DD")
    return None


def date_order(texts: Sequence[str], where: Callable[[int], str]
               ) -> tuple[bool | None, int | None, str | None]:
    """The order of a file's numeric dates (``dd/mm/yyyy`` or ``mm/dd/yyyy``), settled
    by the dates that can only be read one way.

    A date whose first number is above 12 (``27/06/2024``) is day first, one whose
    second is (``06/27/2024``) month first. The file's ambiguous dates
    (``01/07/2024``) are read in the order its certain ones show; a file with both
    orders, or with ambiguous dates and no certain one, is refused.

    Parameters
    ----------
    texts
        The file's date cells, in file order.
    where
        Describes the cell at an index for a message (e.g. ``"line 5"``).

    Returns
    -------
    ``(dayfirst, bad, why)``: ``dayfirst`` ``True`` (day first), ``False`` (month
    first) or ``None`` (no date needs an order); ``bad`` the index of the refused
    cell and ``why`` the reason (both ``None`` when the file is read).
    """
    first: dict[bool, int] = {}
    ambiguous: int | None = None
    for i, text in enumerate(texts):
        m = _NUMERIC_DATE.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            continue
        a, b = int(m.group(1)), int(m.group(3))
        if a > 12 >= b:
            first.setdefault(True, i)
        elif b > 12 >= a:
            first.setdefault(False, i)
        elif a <= 12 and b <= 12 and a != b and ambiguous is None:
            ambiguous = i
        if len(first) == 2:
            other = min(first.values())
            order = ("day", "month") if first[True] == i else ("month", "day")
            return None, i, (f"{text.strip()!r} is {order[0]} first but "
                             f"{texts[other].strip()!r} ({where(other)}) is {order[1]} "
                             "first: write ISO dates, YYYY-MM-DD")
    if first:
        return next(iter(first)), None, None
    if ambiguous is not None:
        why = ambiguous_date(texts[ambiguous])
        return None, ambiguous, f"{why} (no date in the file settles the order)"
    return None, None, None


def month_first(text: str, dayfirst: bool | None) -> str:
    """``text`` with a day-first numeric date (``dayfirst=True``) rewritten month first
    (``27/06/2024`` -> ``06/27/2024``), the order pandas reads; anything else as it is."""
    if not dayfirst or not isinstance(text, str):
        return text
    m = _NUMERIC_DATE.fullmatch(text)
    if m is None:
        return text
    return f"{m.group(3)}{m.group(2)}{m.group(1)}{m.group(2)}{m.group(4)}{m.group(5)}"
