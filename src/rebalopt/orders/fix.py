"""FIX 4.4 ``NewOrderSingle`` (35=D) messages, built and checksummed by simplefix.

One message per order, sells first; a sale that opens a short is its own message
with ``Side=5`` (sell short). Tags: header ``8=FIX.4.4``, ``9``, ``35=D``,
``49`` SenderCompID, ``56`` TargetCompID, ``34`` MsgSeqNum, ``52`` SendingTime;
body ``11`` ClOrdID (stable across retries), ``1`` Account, ``21=1`` HandlInst
(automated), ``55`` Symbol, ``54`` Side (1 buy, 2 sell, 5 sell short), ``60``
TransactTime, ``38`` OrderQty, ``40`` OrdType (1 market, 2 limit), ``44`` Price,
``59`` TimeInForce (0 day, 1 GTC, 2 OPG, 3 IOC, 4 FOK, 7 at the close), ``15``
Currency, ``100`` ExDestination, ``583`` ClOrdLinkID (basket), ``58`` Text
(basket and as-of date); trailer ``10`` CheckSum. Needs ``pip install
'rebalopt[fix]'``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rebalopt.errors import InputError
from rebalopt.orders.settings import OrderSettings, legs, number

__all__ = ["FIX_SIDE", "FIX_TIF", "fix_bytes", "fix_messages"]

FIX_SIDE = {"buy": "1", "sell": "2", "short": "5"}
FIX_TIF = {"day": "0", "gtc": "1", "opg": "2", "ioc": "3", "fok": "4", "cls": "7"}
FIX_ORDTYPE = {"market": "1", "limit": "2"}


def fix_messages(source: Any, settings: OrderSettings | None = None, *,
                 sender: str | None = None, target: str | None = None, first_seq: int = 1,
                 sending_time: dt.datetime | None = None) -> list[Any]:
    """One ``simplefix.FixMessage`` per order leg (sells and shorts first).

    Parameters
    ----------
    source
        A ``RebalancePlan`` (short sales marked ``Side=5``) or a list of ``Order``.
    settings
        Account, order type, time in force, limit band, basket, as-of date.
    sender, target
        SenderCompID (49) and TargetCompID (56); default the settings'
        ``sender_comp_id`` / ``target_comp_id``.
    first_seq
        MsgSeqNum (34) of the first message; a FIX engine renumbers them in session.
    sending_time
        SendingTime (52) and TransactTime (60), UTC; default now.

    Raises
    ------
    InputError
        A fractional quantity (the asset is named): FIX equity orders are whole shares;
        a ticker that is not printable ASCII (a SOH would end tag 55 early), or a
        non-ASCII account, basket, currency or exchange.
    """
    try:
        import simplefix
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError("the FIX format needs simplefix: pip install 'rebalopt[fix]'"
                          ) from exc
    s = settings or OrderSettings()
    sender = s.sender_comp_id if sender is None else sender
    target = s.target_comp_id if target is None else target
    when = sending_time or dt.datetime.now(dt.UTC)
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    for name in ("account", "basket", "currency", "exchange"):
        value = getattr(s, name)
        if value and not value.isascii():
            raise InputError(f"{name} {value!r}: FIX text fields here are ASCII",
                             field=name)
    out = []
    for k, leg in enumerate(legs(source, split_shorts=True)):
        if not (leg.asset.isascii() and leg.asset.isprintable() and leg.asset):
            # SOH (the field separator) would cut tag 55 short; other bytes would be
            # read by the engine in another code page
            raise InputError(f"ticker {leg.asset!r} cannot be a FIX Symbol (55): printable "
                             "ASCII only", asset=leg.asset, field="ticker")
        if not float(leg.quantity).is_integer():
            raise InputError(f"{leg.quantity} shares is not a whole number: FIX orders here "
                             "are whole shares (plan with whole shares)", asset=leg.asset,
                             field="quantity")
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, "D", header=True)
        m.append_pair(49, sender, header=True)
        m.append_pair(56, target, header=True)
        m.append_pair(34, str(first_seq + k), header=True)
        m.append_pair(52, stamp, header=True)
        m.append_pair(11, s.client_order_id(leg))
        if s.account:
            m.append_pair(1, s.account)
        m.append_pair(21, "1")
        m.append_pair(55, leg.asset)
        m.append_pair(54, FIX_SIDE[leg.side])
        m.append_pair(60, stamp)
        m.append_pair(38, number(leg.quantity))
        m.append_pair(40, FIX_ORDTYPE[s.order_type])
        limit = s.limit_price(leg.order)
        if limit is not None:
            m.append_pair(44, str(limit))
        m.append_pair(59, FIX_TIF[s.time_in_force])
        m.append_pair(15, s.currency)
        m.append_pair(100, s.exchange)
        if s.basket:
            m.append_pair(583, s.basket)
        text = " ".join(f"{name}={val}" for name, val in (("basket", s.basket), ("asof", s.as_of))
                        if val)
        if text:
            m.append_pair(58, text)
        out.append(m)
    return out


def fix_bytes(source: Any, settings: OrderSettings | None = None, **kwargs: Any) -> bytes:
    """The encoded messages (SOH-delimited, checksummed), one per line."""
    return b"".join(m.encode() + b"\n" for m in fix_messages(source, settings, **kwargs))
