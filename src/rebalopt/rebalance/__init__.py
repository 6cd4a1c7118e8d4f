"""Rebalancers (naive, band, optimal, integer, batch) and the plan they all return."""

from rebalopt.rebalance._broker_state import state_from_broker
from rebalopt.rebalance.band import BandRebalancer
from rebalopt.rebalance.config import RebalanceConfig
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.naive import NaiveRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.rebalance.targets import TARGET_SUM_TOL

__all__ = [
    "TARGET_SUM_TOL",
    "BandRebalancer",
    "IntegerRebalancer",
    "NaiveRebalancer",
    "OptimalRebalancer",
    "RebalanceConfig",
    "RebalancePlan",
    "state_from_broker",
]
