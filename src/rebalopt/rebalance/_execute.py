"""The executor call shared by every rebalancer: broker + bar -> plan -> orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rebalopt.adapters.weights import labelled_targets
from rebalopt.rebalance._broker_state import state_from_broker

__all__ = ["execute_plan"]


def execute_plan(rebalancer: Any, target_weights: Mapping[str, float], data: Mapping[str, Any],
                 broker: Any, pending: str = "cancel") -> list[Any]:
    """Plan with ``rebalancer`` from the broker's book and submit the orders.

    ``pending="cancel"`` cancels the broker's pending orders (when it can) once the
    plan is built and before its orders are sent;
    ``"account"`` counts them as already traded. The plan is built whole before
    any order is sent: an error leaves the broker untouched.
    """
    include_pending = pending == "account"
    # An optimizer's object (skfolio, riskfolio, PyPortfolioOpt) -> weights keyed by ticker;
    # a bare array is rejected here, before the broker is read.
    target_weights = labelled_targets(target_weights)
    # Plan first (pending orders are simply not counted when they are to be cancelled),
    # so that an invalid input leaves the broker untouched: no cancel, no order.
    state = state_from_broker(broker, data, target_weights, include_pending=include_pending)
    plan = rebalancer.plan(state, target_weights)
    if pending == "cancel":
        cancel = getattr(broker, "cancel_all_orders", None) or getattr(broker, "cancel_all", None)
        if cancel is not None:
            cancel()
    return plan.submit(broker)
