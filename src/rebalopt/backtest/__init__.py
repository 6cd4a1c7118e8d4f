"""Event-driven backtest: Engine, DataFeed, SimulatedBroker, Strategy, PortfolioStrategy."""

from rebalopt.backtest.bar import AssetBar, BarData
from rebalopt.backtest.broker import AccountType, SimulatedBroker
from rebalopt.backtest.engine import Engine, ExecutionMode, PositionRule
from rebalopt.backtest.feed import DataFeed
from rebalopt.backtest.records import BrokerOrder, Fill, OrderStatus, Position
from rebalopt.backtest.result import BacktestResult
from rebalopt.backtest.strategy import PortfolioStrategy, Strategy

__all__ = [
    "AccountType",
    "AssetBar",
    "BacktestResult",
    "BarData",
    "BrokerOrder",
    "DataFeed",
    "Engine",
    "ExecutionMode",
    "Fill",
    "OrderStatus",
    "PortfolioStrategy",
    "Position",
    "PositionRule",
    "SimulatedBroker",
    "Strategy",
]
