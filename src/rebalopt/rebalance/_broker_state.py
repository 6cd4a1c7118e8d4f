"""Build a PortfolioState from a broker and a bar of data (the seed's executor inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rebalopt.errors import InputError
from rebalopt.orders import OrderSide
from rebalopt.state import PortfolioState

__all__ = ["state_from_broker"]

_OPTIONAL_FIELDS = {
    "adv": "adv",
    "volatility": "volatility",
    "sector": "groups",
    "group": "groups",
    "lot_size": "lot_sizes",
    "multiplier": "multipliers",
}


def _get(bar: Any, key: str) -> Any:
    if isinstance(bar, Mapping):
        return bar.get(key)
    return getattr(bar, key, None)


def pending_quantities(broker: Any) -> dict[str, float]:
    """Signed remaining quantity of the broker's pending orders, per asset (shares)."""
    out: dict[str, float] = {}
    getter = getattr(broker, "get_pending_orders", None) or getattr(broker, "pending_orders", None)
    if getter is None:
        return out
    pending = getter() if callable(getter) else getter
    for o in pending:
        side = getattr(o, "side", None)
        qty = float(getattr(o, "remaining", getattr(o, "quantity", 0.0)))
        if side is None:  # the seed's signed-quantity convention: + buys, - sells
            sign, qty = (1.0 if qty >= 0 else -1.0), abs(qty)
        elif side in (OrderSide.BUY, "buy", "BUY") or str(side).lower().endswith("buy"):
            sign = 1.0
        else:
            sign = -1.0
        out[o.asset] = out.get(o.asset, 0.0) + sign * qty
    return out


def state_from_broker(
    broker: Any,
    data: Mapping[str, Any],
    targets: Mapping[str, float] | None = None,
    *,
    price_field: str = "close",
    include_pending: bool = False,
) -> PortfolioState:
    """Holdings and cash from ``broker``, prices (and optional ADV, volatility,
    sector, lot size, multiplier) from ``data[asset]``.

    With ``include_pending``, the remaining quantity of pending orders counts as
    held, and their estimated cash as spent, so a rebalance does not allocate twice.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"expected a mapping asset -> bar (the seed's data[asset][field]), "
                         f"got {type(data).__name__}", field="data")
    if targets is not None and not isinstance(targets, Mapping) and not hasattr(targets, "keys"):
        raise InputError(f"expected target weights keyed by ticker, got "
                         f"{type(targets).__name__}", field="target weight")
    holdings = {
        str(a): float(getattr(p, "quantity", p))
        for a, p in broker.positions.items()
        if float(getattr(p, "quantity", p)) != 0
    }
    cash = float(broker.get_cash())
    target_assets = list(targets.keys()) if targets is not None else []
    assets = list(dict.fromkeys([*holdings, *target_assets, *data]))
    prices: dict[str, float] = {}
    extras: dict[str, dict[str, Any]] = {v: {} for v in _OPTIONAL_FIELDS.values()}
    for a in assets:
        bar = data.get(a)
        price = _get(bar, price_field) if bar is not None else None
        if price is None:
            if a in holdings:
                raise InputError(f"held asset has no {price_field!r} in this bar", asset=a,
                                 field="price")
            price = np.nan
        prices[a] = price
        if bar is not None:
            for key, target in _OPTIONAL_FIELDS.items():
                v = _get(bar, key)
                if v is not None:
                    extras[target][a] = v
    if include_pending:
        for a, q in pending_quantities(broker).items():
            holdings[a] = holdings.get(a, 0.0) + q
            px = prices.get(a, np.nan)
            if q != 0 and not (np.isfinite(float(px)) and float(px) > 0):
                raise InputError(f"pending order on an asset with no valid {price_field!r}",
                                 asset=a, field="price")
            mult = float(extras["multipliers"].get(a, 1.0))
            cash -= q * float(px) * mult
    kwargs = {k: v for k, v in extras.items() if v}
    return PortfolioState(holdings, cash, prices, **kwargs)
