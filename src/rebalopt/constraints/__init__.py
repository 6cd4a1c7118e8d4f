"""Rebalancing constraints: each a cvxpy form on Parameters and a numeric ``check``."""

from rebalopt.constraints._base import FEAS_TOL, Constraint, Point, ProblemContext, Slack
from rebalopt.constraints.factors import FactorBounds
from rebalopt.constraints.groups import GroupBounds
from rebalopt.constraints.integer import IntegerConstraint, LotSize, MaxTrades, MinTradeValue
from rebalopt.constraints.portfolio import CashFloor, Leverage
from rebalopt.constraints.positions import LongOnly, ShortLimit, WeightBounds
from rebalopt.constraints.trading import ParticipationLimit, Restricted, TurnoverLimit

__all__ = [
    "FEAS_TOL",
    "CashFloor",
    "Constraint",
    "FactorBounds",
    "GroupBounds",
    "IntegerConstraint",
    "Leverage",
    "LongOnly",
    "LotSize",
    "MaxTrades",
    "MinTradeValue",
    "ParticipationLimit",
    "Point",
    "ProblemContext",
    "Restricted",
    "ShortLimit",
    "Slack",
    "TurnoverLimit",
    "WeightBounds",
]
