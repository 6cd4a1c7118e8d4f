"""The order file of ``rebalopt rebalance`` in a broker's format.

``--format csv|ibkr|alpaca|fix`` (or ``[orders] format``) picks the writer of
:mod:`rebalopt.orders`; the desk's :class:`~rebalopt.orders.OrderSettings` come from
the config's ``[orders]`` table, with the command-line flags winning key by key.
A setting the chosen format does not write (an account in rebalopt's own CSV, a
security type in an Alpaca request) is an error naming the flag or the config key:
it would be dropped silently otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebalopt.errors import InputError
from rebalopt.orders import FORMATS, OrderSettings, render, write
from rebalopt.orders.formats import READ_BY

__all__ = ["FLAGS", "READ_BY", "OrderOutput", "add_arguments", "order_output"]

FLAGS = {"format": "--format", "account": "--account", "order_type": "--order-type",
         "time_in_force": "--time-in-force", "limit_band_bps": "--limit-band-bps",
         "basket": "--basket", "sender_comp_id": "--sender-comp-id",
         "target_comp_id": "--target-comp-id"}
"""``[orders]`` keys that have a command-line flag (the flag wins)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The order-format flags of ``rebalopt rebalance``."""
    parser.add_argument(
        "--format", choices=FORMATS, default=None,
        help="order file format: csv (ticker,side,quantity,reference_price,expected_cost; "
             "default), ibkr (IB basket CSV), alpaca (JSON lines, each a POST /v2/orders "
             "body with a client_order_id stable across retries), fix (FIX 4.4 "
             "NewOrderSingle messages, one a line); default: [orders] format, else csv")
    parser.add_argument("--account", metavar="ID",
                        help="broker account (ibkr, fix; alpaca: client ids only)")
    parser.add_argument("--order-type", choices=("market", "limit"),
                        help="market (default) or limit (needs --limit-band-bps)")
    parser.add_argument("--limit-band-bps", type=float, metavar="BPS",
                        help="limit price distance from the reference price, bps: buys at "
                             "price*(1+band) rounded down to the tick, sells at price*(1-band) "
                             "rounded up")
    parser.add_argument("--time-in-force", choices=("day", "gtc", "opg", "cls", "ioc", "fok"),
                        help="default day (ibkr has no cls)")
    parser.add_argument("--basket", metavar="TAG",
                        help="basket tag (IB OrderRef, FIX ClOrdLinkID 583; part of the "
                             "client order ids)")
    parser.add_argument("--sender-comp-id", metavar="ID",
                        help="fix: SenderCompID (49) of the session (default REBALOPT)")
    parser.add_argument("--target-comp-id", metavar="ID",
                        help="fix: TargetCompID (56) of the session (default BROKER)")


@dataclass(frozen=True)
class OrderOutput:
    """The order file's format and the desk's settings."""

    format: str
    settings: OrderSettings

    def write(self, plan: Any, path: str | Path) -> Path:
        """Write ``plan``'s orders (sells first) to ``path`` atomically."""
        return write(plan, path, self.format, self.settings)


def order_output(args: argparse.Namespace, settings: Any, as_of: dt.date) -> OrderOutput:
    """Merge the flags over ``[orders]``, check them against the format, build the settings.

    ``as_of`` is the date the plan is made for (client order ids, FIX Text).

    Raises
    ------
    InputError
        Naming the flag, or a :class:`~rebalopt.adapters.files.FileInputError` naming
        the config's line and key: a setting the format does not write, or a value
        :class:`~rebalopt.orders.OrderSettings` refuses.
    """
    given: dict[str, tuple[Any, str | None]] = {k: (v, None) for k, v in settings.orders.items()}
    for key, flag in FLAGS.items():
        value = getattr(args, key, None)
        if value is not None:
            given[key] = (value, flag)

    def error(key: str, message: str) -> InputError:
        flag = given.get(key, (None, None))[1]
        if flag is not None:
            return InputError(message, field=flag)
        if key in given:
            return settings.error(f"orders.{key}", message)
        return InputError(message, field=key)

    fmt = str(given.pop("format", ("csv", None))[0])
    for key in given:
        if key not in READ_BY[fmt]:
            raise error(key, f"the {fmt} order format does not write {key} (it would be "
                        f"dropped); formats that do: "
                        f"{', '.join(f for f, keys in READ_BY.items() if key in keys)}")
    values = {k: v for k, (v, _) in given.items()}
    try:
        order_settings = OrderSettings(as_of=as_of, **values)
        render([], fmt, order_settings)  # the format's own checks (IB has no "cls"), before planning
    except InputError as exc:
        key = next((k for k in (exc.field, "order_type") if k in given), exc.field or "orders")
        message = str(exc).split("] ", 1)[-1]
        if exc.field == "limit_band_bps" and "limit_band_bps" not in given:
            message += " (--limit-band-bps, or [orders] limit_band_bps)"
        raise error(key, message) from None
    return OrderOutput(fmt, order_settings)
