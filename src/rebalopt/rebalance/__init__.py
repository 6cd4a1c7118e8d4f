"""Rebalancers (naive, band, optimal) and the plan they all return."""

from rebalopt.rebalance._broker_state import state_from_broker
from rebalopt.rebalance.config import RebalanceConfig
from rebalopt.rebalance.naive import NaiveRebalancer
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.rebalance.targets import TARGET_SUM_TOL

__all__ = ["TARGET_SUM_TOL", "NaiveRebalancer", "RebalanceConfig", "RebalancePlan",
           "state_from_broker"]
