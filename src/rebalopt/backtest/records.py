"""What the simulated broker hands back: orders with status, fills, position views."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rebalopt.orders import OrderSide, OrderType

if TYPE_CHECKING:
    from rebalopt.backtest.broker import SimulatedBroker

__all__ = ["BrokerOrder", "Fill", "OrderStatus", "Position", "orders_frame"]


class OrderStatus(str, Enum):
    """Life cycle of a broker order."""

    PENDING = "pending"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


@dataclass(eq=False)
class BrokerOrder:
    """An order at the simulated broker (``quantity`` shares > 0, ``side`` gives the sign).

    ``filled`` counts shares filled so far, ``remaining`` what is left; ``reason``
    says why an order was rejected or cancelled; ``tag`` is free for the
    strategy (``PortfolioStrategy`` stores the rebalance number).
    """

    order_id: int
    asset: str
    index: int
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    created_at: Any = None
    created_bar: int = -1
    status: OrderStatus = OrderStatus.PENDING
    filled: float = 0.0
    avg_fill_price: float = 0.0
    reason: str = ""
    tag: Any = None
    closed_at: Any = None

    @property
    def remaining(self) -> float:
        """Shares still to fill."""
        return self.quantity - self.filled

    @property
    def sign(self) -> float:
        return 1.0 if self.side is OrderSide.BUY else -1.0

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.PENDING, OrderStatus.PARTIALLY_FILLED)

    @property
    def filled_quantity(self) -> float:
        """Alias of ``filled`` (the seed's name)."""
        return self.filled


@dataclass(frozen=True)
class Fill:
    """One execution.

    Parameters
    ----------
    quantity
        Signed shares (positive buys).
    reference_price
        The bar's price before costs (close in SAME_BAR, open in NEXT_BAR), currency/share.
    price
        Fill price after slippage models, currency/share:
        ``reference_price + sign * slippage / (|quantity| * multiplier)``.
    fee
        Cash debited by fee models (commission), currency.
    costs
        Cost per model, currency, exactly as each model's ``evaluate`` returned it.
    cash_flow
        Change of cash: ``-(quantity * price * multiplier) - fee``.
    """

    bar: int
    timestamp: Any
    order_id: int
    asset: str
    quantity: float
    reference_price: float
    price: float
    multiplier: float
    fee: float
    slippage: float
    costs: dict[str, float] = field(default_factory=dict)
    cash_flow: float = 0.0
    tag: Any = None


_new = object.__new__


def _fill(bar: int, timestamp: Any, order_id: int, asset: str, quantity: float,
          reference_price: float, price: float, multiplier: float, fee: float,
          slippage: float, costs: dict[str, float], cash_flow: float, tag: Any) -> Fill:
    """``Fill(...)`` of every field, without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field, ~8 us of the broker's ~30 us per order at load
    5): the instance dictionary filled in field order, so the same object (equal,
    the same ``repr`` and pickle; still frozen to assignment)."""
    f = _new(Fill)
    f.__dict__.update(bar=bar, timestamp=timestamp, order_id=order_id, asset=asset,
                      quantity=quantity, reference_price=reference_price, price=price,
                      multiplier=multiplier, fee=fee, slippage=slippage, costs=costs,
                      cash_flow=cash_flow, tag=tag)
    return f


class Position:
    """Live view of one holding in the broker's arrays (nothing copied).

    ``quantity`` shares (negative short), ``avg_cost`` the average fill price of
    the open quantity (currency/share, slippage included, commission excluded),
    ``current_price`` the last known close.
    """

    __slots__ = ("_broker", "_i", "asset")

    def __init__(self, broker: SimulatedBroker, i: int, asset: str) -> None:
        self._broker = broker
        self._i = i
        self.asset = asset

    @property
    def quantity(self) -> float:
        return float(self._broker.holdings[self._i])

    @property
    def avg_cost(self) -> float:
        return float(self._broker.avg_cost[self._i])

    @property
    def entry_price(self) -> float:
        """Alias of ``avg_cost`` (the seed's name)."""
        return self.avg_cost

    @property
    def current_price(self) -> float:
        return float(self._broker.marks[self._i])

    @property
    def multiplier(self) -> float:
        return float(self._broker.multipliers[self._i])

    @property
    def market_value(self) -> float:
        """quantity x current price x multiplier, currency."""
        return self.quantity * self.current_price * self.multiplier

    def unrealized_pnl(self, price: float | None = None) -> float:
        """(price - avg cost) x quantity x multiplier, currency."""
        p = self.current_price if price is None else price
        return (p - self.avg_cost) * self.quantity * self.multiplier

    def __repr__(self) -> str:
        return (f"Position({self.asset!r}, quantity={self.quantity:g}, "
                f"avg_cost={self.avg_cost:.4f}, price={self.current_price:.4f})")


ORDER_COLUMNS = ["order_id", "created_at", "asset", "side", "type", "quantity", "limit_price",
                 "filled", "avg_fill_price", "status", "reason", "closed_at", "tag"]


def orders_frame(orders: list[BrokerOrder]) -> pd.DataFrame:
    """One row per order with its status, filled quantity (shares) and reason."""
    return pd.DataFrame([{
        "order_id": o.order_id, "created_at": o.created_at, "asset": o.asset,
        "side": o.side.value, "type": o.order_type.value, "quantity": o.quantity,
        "limit_price": o.limit_price, "filled": o.filled,
        "avg_fill_price": o.avg_fill_price if o.filled else np.nan,
        "status": o.status.value, "reason": o.reason, "closed_at": o.closed_at,
        "tag": o.tag,
    } for o in orders], columns=ORDER_COLUMNS)
