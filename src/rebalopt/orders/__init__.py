"""Order tickets, the Broker protocol, and broker-ready order formats.

A plan's :meth:`~rebalopt.RebalancePlan.orders` are :class:`Order` tickets (sells
first). :func:`write` / :func:`render` turn them into what a broker takes: an
Interactive Brokers basket (``"ibkr"``), alpaca-py order requests (``"alpaca"``),
FIX 4.4 NewOrderSingle messages (``"fix"``) or rebalopt's CSV (``"csv"``), with
the desk's :class:`OrderSettings` (account, order type, time in force, limit band,
basket tag, as-of date, client order ids stable across retries).
"""

from rebalopt.orders.formats import FORMATS, render, write
from rebalopt.orders.settings import OrderSettings
from rebalopt.orders.ticket import Broker, Order, OrderSide, OrderType, Position

__all__ = ["FORMATS", "Broker", "Order", "OrderSettings", "OrderSide", "OrderType", "Position",
           "render", "write"]
