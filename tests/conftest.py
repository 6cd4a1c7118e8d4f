"""Shared fixtures: a fake broker that records every call (kept small on purpose)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rebalopt.orders import OrderSide, OrderType


@dataclass
class FakePosition:
    """What the fake broker reports for one holding (shares)."""

    quantity: float


@dataclass
class FakePendingOrder:
    """A pending order as a broker might report it (``remaining`` shares still open)."""

    asset: str
    side: Any
    quantity: float
    remaining: float | None = None

    def __post_init__(self) -> None:
        if self.remaining is None:
            self.remaining = self.quantity


@dataclass
class FakeBroker:
    """Records ``submit_order`` and ``cancel_all_orders`` calls in ``calls``, in order."""

    positions: dict[str, Any] = field(default_factory=dict)
    cash: float = 0.0
    pending: list[FakePendingOrder] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def submit_order(self, asset: str, quantity: float, side: OrderSide,
                     order_type: OrderType = OrderType.MARKET,
                     limit_price: float | None = None) -> tuple[str, float, OrderSide]:
        self.calls.append(("submit", asset, quantity, side))
        return (asset, quantity, side)

    def get_position(self, asset: str) -> Any:
        return self.positions.get(asset)

    def get_account_value(self) -> float:  # not used by rebalopt's planning
        raise AssertionError("equity must come from positions and bar prices")

    def get_cash(self) -> float:
        return self.cash

    def get_pending_orders(self) -> list[FakePendingOrder]:
        return list(self.pending)

    def cancel_all_orders(self) -> None:
        self.calls.append(("cancel",))
        self.pending = []

    @property
    def submitted(self) -> list[tuple[Any, ...]]:
        return [c[1:] for c in self.calls if c[0] == "submit"]


@pytest.fixture
def make_broker():
    """Factory: ``make_broker({"A": 10}, cash=1000.0, pending=[...])``."""

    def make(holdings: dict[str, float], cash: float,
             pending: list[FakePendingOrder] | None = None) -> FakeBroker:
        return FakeBroker(
            positions={a: FakePosition(q) for a, q in holdings.items()},
            cash=cash,
            pending=list(pending or []),
        )

    return make


@pytest.fixture
def pending_order():
    """The pending-order record class, for tests that build broker books."""
    return FakePendingOrder
