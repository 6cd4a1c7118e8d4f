"""Transaction-cost models, each with a NumPy face (currency) and a cvxpy face (weights)."""

from rebalopt.costs._base import CostModel, untradable_assets
from rebalopt.costs.commission import Commission
from rebalopt.costs.impact import MarketImpact
from rebalopt.costs.spread import Spread

__all__ = ["Commission", "CostModel", "MarketImpact", "Spread", "untradable_assets"]
