"""What a broker needs beyond the plan: account, order type, time in force, limits, ids.

:class:`OrderSettings` holds the desk's choices once; every format (IB basket,
Alpaca, FIX) reads them the same way: limit prices from the reference price and a
band, client order ids that are stable across retries, a basket tag and an as-of
date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from rebalopt._checks import flag
from rebalopt.errors import InputError
from rebalopt.orders.ticket import Order, OrderSide

__all__ = ["Leg", "OrderSettings", "legs", "number"]

ORDER_TYPES = ("market", "limit")
TIMES_IN_FORCE = ("day", "gtc", "opg", "cls", "ioc", "fok")


def number(x: float) -> str:
    """Whole numbers without a decimal point, others at full precision (shares)."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


@dataclass(frozen=True)
class OrderSettings:
    """The desk's order parameters, shared by every broker format.

    Parameters
    ----------
    account
        Broker account id (IB ``Account`` column, FIX tag 1); also part of every
        client order id.
    order_type
        ``"market"`` or ``"limit"``. A limit order needs ``limit_band_bps``.
    time_in_force
        ``"day"``, ``"gtc"``, ``"opg"`` (at the open), ``"cls"`` (at the close),
        ``"ioc"`` or ``"fok"``.
    limit_band_bps
        Limit price distance from the plan's reference price, in basis points: a buy
        is limited at ``price * (1 + band)`` rounded *down* to the tick, a sell at
        ``price * (1 - band)`` rounded *up*, so the limit never lies outside the band.
    basket
        Basket tag (IB ``OrderRef``, FIX ``ClOrdLinkID`` 583); part of the client ids.
    as_of
        The date the plan was made for (ISO ``YYYY-MM-DD``; a ``date`` is accepted);
        part of the client ids and written in FIX ``Text`` (58).
    currency, exchange, sec_type
        Instrument fields of the IB basket and FIX (``Currency`` 15, ``ExDestination``
        100); defaults ``USD``, ``SMART``, ``STK``.
    notional
        Alpaca only: send *buys* as notional (currency) market day orders,
        ``notional = shares * reference price`` rounded to the cent. Sells always go
        by quantity so a position can close exactly.
    tick
        Price increment (currency) for limit prices; ``None`` = 0.01 for a limit at
        or above $1, 0.0001 below (US equities).
    sender_comp_id, target_comp_id
        FIX only: SenderCompID (49) and TargetCompID (56) of the session the messages
        are for; defaults ``REBALOPT`` and ``BROKER``.
    """

    account: str | None = None
    order_type: str = "market"
    time_in_force: str = "day"
    limit_band_bps: float | None = None
    basket: str | None = None
    as_of: str | dt.date | None = None
    currency: str = "USD"
    exchange: str = "SMART"
    sec_type: str = "STK"
    notional: bool = False
    tick: float | None = None
    sender_comp_id: str = "REBALOPT"
    target_comp_id: str = "BROKER"

    def __post_init__(self) -> None:
        if self.order_type not in ORDER_TYPES:
            raise InputError(f"order_type {self.order_type!r}: expected one of {ORDER_TYPES}",
                             field="order_type")
        if self.time_in_force not in TIMES_IN_FORCE:
            raise InputError(f"time_in_force {self.time_in_force!r}: expected one of "
                             f"{TIMES_IN_FORCE}", field="time_in_force")
        band = self.limit_band_bps
        if band is not None and (isinstance(band, bool) or not isinstance(band, (int, float))
                                 or not math.isfinite(band) or not 0 <= band < 10_000):
            raise InputError(f"limit_band_bps {band!r}: expected a number in [0, 10000)",
                             field="limit_band_bps")
        if self.order_type == "limit" and band is None:
            raise InputError("a limit order needs limit_band_bps (the limit's distance from "
                             "the reference price, bps)", field="limit_band_bps")
        if self.order_type == "market" and band is not None:
            raise InputError("limit_band_bps is set but order_type is 'market'",
                             field="limit_band_bps")
        tick = self.tick
        if tick is not None and (isinstance(tick, bool) or not isinstance(tick, (int, float))
                                 or not (math.isfinite(tick) and tick > 0)):
            raise InputError(f"tick {tick!r} must be a number > 0", field="tick")
        flag(self.notional, "notional")  # "no" is truthy: it would send notional buys
        for name in ("account", "basket", "currency", "exchange", "sec_type"):
            v = getattr(self, name)
            if v is None and name in ("account", "basket"):
                continue
            if not isinstance(v, str):
                raise InputError(f"{name} {v!r}: expected text", field=name)
            if not v.isprintable() or (not v and name not in ("account", "basket")):
                # a control character (FIX's field separator SOH, a line break) would
                # split the FIX message or the basket row; an empty currency is '15='
                raise InputError(f"{name} {v!r}: expected non-empty printable text",
                                 field=name)
            if name in ("account", "basket") and "|" in v:
                # '|' separates the fields of the client order id's key: account 'a|b'
                # with basket 'c' would get the ids of account 'a' with basket 'b|c'
                raise InputError(f"{name} {v!r}: '|' is not allowed (it separates the "
                                 "fields of the client order ids)", field=name)
        for name in ("sender_comp_id", "target_comp_id"):
            v = getattr(self, name)
            if not (isinstance(v, str) and v and v.isprintable() and "=" not in v
                    and "|" not in v):
                raise InputError(f"{name} {v!r}: expected a non-empty printable id without "
                                 "'=' or '|'", field=name)
        if isinstance(self.as_of, dt.datetime):
            object.__setattr__(self, "as_of", self.as_of.date().isoformat())
        elif isinstance(self.as_of, dt.date):
            object.__setattr__(self, "as_of", self.as_of.isoformat())
        elif self.as_of is not None:
            try:
                dt.date.fromisoformat(str(self.as_of))
            except ValueError:
                raise InputError(f"as_of {self.as_of!r} is not an ISO date (YYYY-MM-DD)",
                                 field="as_of") from None
        if self.notional and (self.order_type != "market" or self.time_in_force != "day"):
            raise InputError("notional orders are market day orders only (Alpaca)",
                             field="notional")

    def limit_price(self, order: Order) -> Decimal | None:
        """The limit (currency/share) for ``order``, or ``None`` for a market order."""
        if self.order_type != "limit":
            return None
        ref = Decimal(repr(float(order.reference_price)))
        tick = Decimal(repr(self.tick)) if self.tick is not None else (
            Decimal("0.01") if ref >= 1 else Decimal("0.0001"))
        band = Decimal(repr(float(self.limit_band_bps))) / Decimal(10_000)  # type: ignore[arg-type]
        if order.side is OrderSide.BUY:
            raw, rounding = ref * (1 + band), ROUND_FLOOR
        else:
            raw, rounding = ref * (1 - band), ROUND_CEILING
        price = (raw / tick).to_integral_value(rounding=rounding) * tick
        if self.tick is None and price >= 1 and tick < Decimal("0.01"):
            # a buy band lifting a sub-dollar price to $1 or more: a sub-penny limit at
            # or above $1 is refused by US venues (Reg NMS rule 612): whole cents
            tick = Decimal("0.01")
            price = (raw / tick).to_integral_value(rounding=rounding) * tick
        if price <= 0:
            raise InputError(f"limit price {price} is not positive", asset=order.asset,
                             field="limit_band_bps")
        return price

    def client_order_id(self, leg: Leg) -> str:
        """Deterministic id of one order: the same plan sent twice gets the same ids, so
        a broker that already has an order refuses the duplicate (safe retries).

        A SHA-256 of account, basket, as-of date, ticker, side and quantity,
        ``"rb-"`` + 32 hex digits (35 characters; Alpaca allows 128).
        """
        key = "|".join([self.account or "", self.basket or "", str(self.as_of or ""),
                        leg.asset, leg.side, number(leg.quantity)])
        return "rb-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Leg:
    """One line of a broker order: ``side`` is ``"buy"``, ``"sell"`` or ``"short"``
    (a sale that opens or extends a short position)."""

    asset: str
    side: str
    quantity: float
    order: Order


def legs(source: Any, split_shorts: bool = False) -> list[Leg]:
    """The plan's order tickets (sells before buys) as broker legs.

    With ``split_shorts`` and a plan (which knows the holdings), a sale that crosses
    zero is split into a ``"sell"`` that closes the long and a ``"short"`` for the
    rest; a list of tickets carries no holdings, so its sells stay ``"sell"``.
    """
    orders, held = _orders_of(source)
    out: list[Leg] = []
    for o in orders:
        if o.side is OrderSide.BUY:
            out.append(Leg(o.asset, "buy", o.quantity, o))
            continue
        h = held.get(o.asset) if split_shorts else None
        if h is None:
            out.append(Leg(o.asset, "sell", o.quantity, o))
            continue
        close = min(max(h, 0.0), o.quantity)
        if close > 0:
            out.append(Leg(o.asset, "sell", close, o))
        if o.quantity - close > 0:
            out.append(Leg(o.asset, "short", o.quantity - close, o))
    return out


def _orders_of(source: Any) -> tuple[Sequence[Order], dict[str, float]]:
    if hasattr(source, "orders") and hasattr(source, "state"):
        state = source.state
        held = {str(a): float(q) for a, q in zip(state.assets, state.holdings, strict=True)}
        return source.orders(), held
    if isinstance(source, Sequence) and all(isinstance(o, Order) for o in source):
        return list(source), {}
    raise InputError(f"expected a RebalancePlan or a list of Order, got {type(source).__name__}",
                     field="orders")
