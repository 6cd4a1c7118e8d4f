"""rebalopt: from an optimizer's target weights to the trades worth making."""

from rebalopt.backtest import (
    BacktestResult,
    DataFeed,
    Engine,
    ExecutionMode,
    PortfolioStrategy,
    SimulatedBroker,
    Strategy,
)
from rebalopt.constraints import (
    CashFloor,
    FactorBounds,
    GroupBounds,
    Leverage,
    LongOnly,
    LotSize,
    MaxTrades,
    MinTradeValue,
    ParticipationLimit,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.costs import BorrowCost, Commission, CostModel, MarketImpact, Spread
from rebalopt.errors import InfeasibleError, InputError, RebalanceError, SolverError
from rebalopt.orders import Broker, Order, OrderSide, OrderType
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig, RebalancePlan, state_from_broker
from rebalopt.rebalance.band import BandRebalancer
from rebalopt.rebalance.batch import Account, BatchResult, rebalance_many
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.multiperiod import MultiPeriodRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import Covariance, Diagonal, FactorModel, Identity, RiskModel, RiskRoot
from rebalopt.state import PortfolioState

__version__ = "0.1.0"

__all__ = [
    # state, orders, errors
    "PortfolioState",
    "Order",
    "OrderSide",
    "OrderType",
    "Broker",
    "RebalanceError",
    "InputError",
    "InfeasibleError",
    "SolverError",
    # costs
    "CostModel",
    "BorrowCost",
    "Commission",
    "Spread",
    "MarketImpact",
    # risk
    "RiskModel",
    "RiskRoot",
    "Identity",
    "Diagonal",
    "Covariance",
    "FactorModel",
    # constraints
    "LongOnly",
    "ShortLimit",
    "WeightBounds",
    "GroupBounds",
    "FactorBounds",
    "TurnoverLimit",
    "Leverage",
    "CashFloor",
    "ParticipationLimit",
    "Restricted",
    "LotSize",
    "MinTradeValue",
    "MaxTrades",
    # rebalancers
    "RebalanceConfig",
    "RebalancePlan",
    "NaiveRebalancer",
    "BandRebalancer",
    "OptimalRebalancer",
    "IntegerRebalancer",
    "MultiPeriodRebalancer",
    "state_from_broker",
    # many accounts
    "Account",
    "BatchResult",
    "rebalance_many",
    # backtest
    "DataFeed",
    "Engine",
    "ExecutionMode",
    "SimulatedBroker",
    "Strategy",
    "PortfolioStrategy",
    "BacktestResult",
]
