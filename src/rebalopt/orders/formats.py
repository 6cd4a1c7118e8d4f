"""Order output in a broker's format: ``csv`` (rebalopt's own), ``ibkr``, ``alpaca``, ``fix``.

:func:`render` gives the format's objects (text, alpaca-py requests, FIX messages);
:func:`write` writes the file atomically (a temporary file renamed over ``path``
only when complete, so a failure leaves no file or the previous one).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

from rebalopt.errors import InputError
from rebalopt.orders.settings import OrderSettings, legs

__all__ = ["FORMATS", "READ_BY", "render", "write"]

FORMATS = ("csv", "ibkr", "alpaca", "fix")

READ_BY: dict[str, tuple[str, ...]] = {
    "csv": (),
    "ibkr": ("account", "order_type", "time_in_force", "limit_band_bps", "basket", "currency",
             "exchange", "sec_type", "tick"),
    "alpaca": ("account", "order_type", "time_in_force", "limit_band_bps", "basket",
               "notional", "tick"),
    "fix": ("account", "order_type", "time_in_force", "limit_band_bps", "basket", "currency",
            "exchange", "tick", "sender_comp_id", "target_comp_id"),
}
"""The :class:`~rebalopt.orders.OrderSettings` keys each format writes (for Alpaca,
account and basket enter the client order ids only). ``as_of`` is the plan's date,
read where the format has a place for it."""


def _check(fmt: str, settings: OrderSettings | None = None) -> str:
    if fmt not in FORMATS:
        raise InputError(f"order format {fmt!r}: expected one of {', '.join(FORMATS)}",
                         field="format")
    if settings is not None:
        # a setting the format does not write would be dropped: a limit order written
        # as rebalopt's CSV (no limit column) would go out as a market order
        default = OrderSettings()
        for f in fields(OrderSettings):
            if f.name == "as_of" or f.name in READ_BY[fmt]:
                continue
            if getattr(settings, f.name) != getattr(default, f.name):
                writers = [k for k, keys in READ_BY.items() if f.name in keys]
                raise InputError(
                    f"the {fmt} order format does not write {f.name} = "
                    f"{getattr(settings, f.name)!r} (it would be dropped); formats that do: "
                    f"{', '.join(writers) or 'none'}", field=f.name)
    return fmt


def render(source: Any, format: str = "csv", settings: OrderSettings | None = None) -> Any:
    """The orders of ``source`` (a plan or a list of ``Order``) in ``format``.

    Returns
    -------
    list
        ``"csv"``: the ``Order`` tickets (sells first); ``"ibkr"``: basket rows
        (``{column: text}``); ``"alpaca"``: alpaca-py ``MarketOrderRequest`` /
        ``LimitOrderRequest`` objects; ``"fix"``: ``simplefix.FixMessage`` objects.
    """
    fmt = _check(format, settings)
    if fmt == "csv":
        return [leg.order for leg in legs(source)]
    if fmt == "ibkr":
        from rebalopt.orders.ibkr import ibkr_rows
        return ibkr_rows(source, settings)
    if fmt == "alpaca":
        from rebalopt.orders.alpaca import alpaca_requests
        return alpaca_requests(source, settings)
    from rebalopt.orders.fix import fix_messages
    return fix_messages(source, settings)


def _payload(source: Any, fmt: str, settings: OrderSettings | None) -> bytes:
    if fmt == "ibkr":
        from rebalopt.orders.ibkr import ibkr_csv
        return ibkr_csv(source, settings).encode("utf-8")
    if fmt == "alpaca":
        from rebalopt.orders.alpaca import alpaca_jsonl
        return alpaca_jsonl(source, settings).encode("utf-8")
    from rebalopt.orders.fix import fix_bytes
    return fix_bytes(source, settings)


def write(source: Any, path: str | Path, format: str = "csv",
          settings: OrderSettings | None = None) -> Path:
    """Write the orders of ``source`` to ``path`` in ``format``, atomically.

    ``"csv"`` is rebalopt's own order file (``ticker,side,quantity,reference_price,
    expected_cost``); ``"ibkr"`` an IB basket CSV; ``"alpaca"`` JSON lines, each the
    body of ``POST /v2/orders``; ``"fix"`` FIX 4.4 NewOrderSingle messages, one per
    line. Everything is built (and every error raised) before the file is opened.
    """
    fmt = _check(format, settings)
    if fmt == "csv":
        from rebalopt.adapters.files import write_orders
        return write_orders(render(source, "csv"), path)
    data = _payload(source, fmt, settings)
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist", field="path")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out
