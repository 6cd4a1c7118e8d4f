"""rebalopt: from an optimizer's target weights to the trades worth making."""

from rebalopt.backtest import DataFeed, Engine, ExecutionMode, PortfolioStrategy, SimulatedBroker
from rebalopt.costs import Commission, CostModel, MarketImpact, Spread
from rebalopt.errors import InfeasibleError, InputError, RebalanceError, SolverError
from rebalopt.orders import Broker, Order, OrderSide, OrderType
from rebalopt.rebalance.band import BandRebalancer
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig, RebalancePlan, state_from_broker
from rebalopt.risk import Covariance, Diagonal, FactorModel, Identity, RiskModel, RiskRoot
from rebalopt.state import PortfolioState

__version__ = "0.1.0"

__all__ = [
    "DataFeed",
    "Engine",
    "ExecutionMode",
    "PortfolioStrategy",
    "SimulatedBroker",
    "BandRebalancer",
    "Covariance",
    "Diagonal",
    "FactorModel",
    "Identity",
    "RiskModel",
    "RiskRoot",
    "Broker",
    "Commission",
    "CostModel",
    "InfeasibleError",
    "InputError",
    "MarketImpact",
    "NaiveRebalancer",
    "Order",
    "OrderSide",
    "OrderType",
    "PortfolioState",
    "RebalanceConfig",
    "RebalanceError",
    "RebalancePlan",
    "SolverError",
    "Spread",
    "state_from_broker",
]
