"""Order tickets (what a plan emits) and the small Broker protocol rebalancers submit to."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

__all__ = ["Broker", "Order", "OrderSide", "OrderType", "Position"]


class OrderSide(str, Enum):
    """Direction of an order."""

    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"


@dataclass(frozen=True)
class Order:
    """An order ticket: ``quantity`` shares (always > 0) to buy or sell.

    ``reference_price`` is the price the plan was made at (currency/share) and
    ``expected_cost`` the cost the plan expects to pay on it (currency, all models).
    """

    asset: str
    side: OrderSide
    quantity: float
    reference_price: float
    expected_cost: float = 0.0
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"order for {self.asset!r}: quantity must be > 0, got {self.quantity}")
        if not (math.isfinite(self.reference_price) and self.reference_price > 0):
            raise ValueError(
                f"order for {self.asset!r}: reference price must be > 0, got {self.reference_price}"
            )

    @property
    def signed_quantity(self) -> float:
        """Shares, positive for buys and negative for sells."""
        return self.quantity if self.side is OrderSide.BUY else -self.quantity


@runtime_checkable
class Position(Protocol):
    """What a broker reports for one holding."""

    quantity: float


@runtime_checkable
class Broker(Protocol):
    """The broker interface of the seed proposal, as far as rebalancing needs it."""

    positions: dict[str, Any]

    def submit_order(
        self,
        asset: str,
        quantity: float,
        side: OrderSide,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
    ) -> Any: ...

    def get_position(self, asset: str) -> Any: ...

    def get_account_value(self) -> float: ...

    def get_cash(self) -> float: ...
