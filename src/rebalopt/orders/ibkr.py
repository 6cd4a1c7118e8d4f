"""Interactive Brokers basket file (TWS *BasketTrader* CSV import).

Columns, in this order: ``Action,Quantity,Symbol,SecType,Exchange,Currency,
TimeInForce,OrderType`` then ``LmtPrice`` for limit orders, ``Account`` when an
account is set and ``OrderRef`` (the basket tag) when a basket is set. Actions
``BUY``/``SELL``; order types ``MKT``/``LMT``; times in force ``DAY``, ``GTC``,
``OPG``, ``IOC``, ``FOK`` (IB has no at-the-close time in force: send an MOC
order type instead, not supported here).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rebalopt.errors import InputError
from rebalopt.orders.settings import OrderSettings, legs, number

__all__ = ["IBKR_COLUMNS", "ibkr_csv", "ibkr_rows"]

IBKR_COLUMNS = ("Action", "Quantity", "Symbol", "SecType", "Exchange", "Currency",
                "TimeInForce", "OrderType")
_TIF = {"day": "DAY", "gtc": "GTC", "opg": "OPG", "ioc": "IOC", "fok": "FOK"}
_TYPE = {"market": "MKT", "limit": "LMT"}


def ibkr_rows(source: Any, settings: OrderSettings | None = None) -> list[dict[str, str]]:
    """One basket row per order (sells first), as ``{column: text}``.

    Raises
    ------
    InputError
        A fractional share quantity (IB baskets take whole shares; the asset is
        named), a ticker with a control character, or ``time_in_force='cls'``.
    """
    s = settings or OrderSettings()
    if s.time_in_force not in _TIF:
        raise InputError(f"time_in_force {s.time_in_force!r} has no IB basket equivalent "
                         f"(use one of {sorted(_TIF)})", field="time_in_force")
    rows = []
    for leg in legs(source):
        if not (leg.asset.isprintable() and leg.asset):
            raise InputError(f"ticker {leg.asset!r} cannot be an IB basket Symbol (a "
                             "control character or line break)", asset=leg.asset,
                             field="ticker")
        if not float(leg.quantity).is_integer():
            raise InputError(f"{leg.quantity} shares is not a whole number: IB baskets take "
                             "whole shares (plan with whole shares)", asset=leg.asset,
                             field="quantity")
        row = {"Action": leg.side.upper(), "Quantity": number(leg.quantity),
               "Symbol": leg.asset, "SecType": s.sec_type, "Exchange": s.exchange,
               "Currency": s.currency, "TimeInForce": _TIF[s.time_in_force],
               "OrderType": _TYPE[s.order_type]}
        limit = s.limit_price(leg.order)
        if limit is not None:
            row["LmtPrice"] = str(limit)
        if s.account:
            row["Account"] = s.account
        if s.basket:
            row["OrderRef"] = s.basket
        rows.append(row)
    return rows


def ibkr_csv(source: Any, settings: OrderSettings | None = None) -> str:
    """The basket file's text (header + one line per order, CRLF as TWS writes it)."""
    s = settings or OrderSettings()
    columns = list(IBKR_COLUMNS)
    if s.order_type == "limit":
        columns.append("LmtPrice")
    if s.account:
        columns.append("Account")
    if s.basket:
        columns.append("OrderRef")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n")
    w.writeheader()
    w.writerows(ibkr_rows(source, s))
    return buf.getvalue()
