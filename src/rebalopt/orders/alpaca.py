"""Alpaca order requests, built with alpaca-py's own request models.

Each order becomes a ``MarketOrderRequest`` or ``LimitOrderRequest``
(``alpaca.trading.requests``) with ``symbol``, ``qty`` (or ``notional`` for buys
when :attr:`OrderSettings.notional`), ``side``, ``time_in_force``, ``limit_price``
and a ``client_order_id`` that is the same on every retry of the same plan, so
Alpaca refuses a duplicate instead of trading twice. Needs ``pip install
'rebalopt[alpaca]'``.

Alpaca takes ``qty`` and ``notional`` with up to 9 decimals: a fractional quantity
is written rounded to 9 decimals (half to even; at most 5e-10 share from the plan),
a notional to the cent. An order that rounds to zero there is an
:class:`~rebalopt.errors.InputError` naming the asset, not a zero order.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rebalopt.errors import InputError
from rebalopt.orders.settings import OrderSettings, legs

__all__ = ["alpaca_jsonl", "alpaca_requests"]

_QTY_STEP = Decimal("1e-9")
"""Smallest quantity step Alpaca takes (shares): 9 decimals."""


def _alpaca() -> Any:
    try:
        from alpaca.trading import enums, requests
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError("the Alpaca format needs alpaca-py: pip install 'rebalopt[alpaca]'"
                          ) from exc
    return enums, requests


def alpaca_requests(source: Any, settings: OrderSettings | None = None) -> list[Any]:
    """One alpaca-py order request per order, sells first.

    Raises
    ------
    InputError
        A fractional quantity with a time in force other than ``"day"`` (Alpaca
        takes fractional orders as day orders only; the asset is named); a quantity
        that is 0 at 9 decimals or a notional that is 0 at the cent.
    """
    s = settings or OrderSettings()
    enums, requests = _alpaca()
    tif = enums.TimeInForce(s.time_in_force)
    out = []
    for leg in legs(source):
        side = enums.OrderSide.BUY if leg.side == "buy" else enums.OrderSide.SELL
        fractional = not float(leg.quantity).is_integer()
        if fractional and s.time_in_force != "day":
            raise InputError(f"{leg.quantity} shares: Alpaca takes fractional orders with "
                             "time_in_force 'day' only", asset=leg.asset, field="quantity")
        common: dict[str, Any] = {"symbol": leg.asset, "side": side, "time_in_force": tif,
                                  "client_order_id": s.client_order_id(leg)}
        if s.notional and leg.side == "buy":
            notional = round(leg.quantity * leg.order.reference_price, 2)
            if notional <= 0:
                raise InputError(f"{leg.quantity} shares at {leg.order.reference_price} is "
                                 f"a notional of {notional} after rounding to the cent: "
                                 "not an order Alpaca takes", asset=leg.asset,
                                 field="notional")
            common["notional"] = notional
        else:
            qty = float(Decimal(repr(float(leg.quantity))).quantize(_QTY_STEP, ROUND_HALF_EVEN))
            if qty <= 0:
                raise InputError(f"{leg.quantity} shares is 0 at Alpaca's 9 decimals",
                                 asset=leg.asset, field="quantity")
            common["qty"] = qty
        limit = s.limit_price(leg.order)
        if limit is None:
            out.append(requests.MarketOrderRequest(**common))
        else:
            out.append(requests.LimitOrderRequest(limit_price=float(limit), **common))
    return out


def alpaca_jsonl(source: Any, settings: OrderSettings | None = None) -> str:
    """The requests as JSON lines: each line the body of ``POST /v2/orders``."""
    lines = []
    for req in alpaca_requests(source, settings):
        fields = req.to_request_fields()
        lines.append(json.dumps({k: getattr(v, "value", v) for k, v in fields.items()}))
    return "\n".join(lines) + ("\n" if lines else "")
