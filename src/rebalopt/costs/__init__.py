"""Cost models: each declares its terms once (``terms``) and evaluates itself in currency."""

from rebalopt.costs._base import CostModel, untradable_assets
from rebalopt.costs.borrow import BorrowCost
from rebalopt.costs.commission import Commission
from rebalopt.costs.impact import MarketImpact
from rebalopt.costs.spread import Spread

__all__ = ["BorrowCost", "Commission", "CostModel", "MarketImpact", "Spread", "untradable_assets"]
