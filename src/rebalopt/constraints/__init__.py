"""Rebalancing constraints: each declares its rows once and checks itself in NumPy."""

from rebalopt.constraints._base import FEAS_TOL, Constraint, Point, Slack
from rebalopt.constraints.factors import FactorBounds
from rebalopt.constraints.groups import GroupBounds
from rebalopt.constraints.integer import (
    IntegerBlocks,
    IntegerConstraint,
    LotSize,
    MaxTrades,
    MinTradeValue,
)
from rebalopt.constraints.portfolio import CashFloor, Leverage
from rebalopt.constraints.positions import LongOnly, ShortLimit, WeightBounds
from rebalopt.constraints.trading import ParticipationLimit, Restricted, TurnoverLimit

__all__ = [
    "FEAS_TOL",
    "CashFloor",
    "Constraint",
    "FactorBounds",
    "GroupBounds",
    "IntegerBlocks",
    "IntegerConstraint",
    "Leverage",
    "LongOnly",
    "LotSize",
    "MaxTrades",
    "MinTradeValue",
    "ParticipationLimit",
    "Point",
    "Restricted",
    "ShortLimit",
    "Slack",
    "TurnoverLimit",
    "WeightBounds",
]
