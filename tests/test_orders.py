"""Order tickets and the Broker protocol."""

from __future__ import annotations

import math

import pytest

from rebalopt.orders import Broker, Order, OrderSide, OrderType, Position


def test_order_fields_and_signed_quantity():
    buy = Order("AAA", OrderSide.BUY, 200.0, 50.0, expected_cost=14.0)
    sell = Order("BBB", OrderSide.SELL, 150.0, 25.0)
    assert buy.signed_quantity == 200.0
    assert sell.signed_quantity == -150.0
    assert buy.order_type is OrderType.MARKET and buy.limit_price is None
    assert sell.expected_cost == 0.0
    with pytest.raises(AttributeError):
        buy.quantity = 1.0  # type: ignore[misc]  (frozen ticket)


def test_sides_compare_as_seed_strings():
    # the seed and ml4t brokers compare sides to plain strings
    assert OrderSide.BUY == "buy" and OrderSide.SELL == "sell"
    assert OrderType.MARKET == "market" and OrderType.LIMIT == "limit"


@pytest.mark.parametrize("quantity", [0.0, -1.0, math.nan, math.inf])
def test_order_rejects_bad_quantity(quantity):
    with pytest.raises(ValueError, match="'AAA'"):
        Order("AAA", OrderSide.BUY, quantity, 10.0)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf])
def test_order_rejects_bad_reference_price(price):
    with pytest.raises(ValueError, match="'AAA'.*reference price"):
        Order("AAA", OrderSide.SELL, 1.0, price)


def test_fake_broker_satisfies_protocol(make_broker):
    broker = make_broker({"AAA": 10}, cash=100.0)
    assert isinstance(broker, Broker)
    assert isinstance(broker.get_position("AAA"), Position)
    assert not isinstance(object(), Broker)
