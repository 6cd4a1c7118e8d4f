"""TaxAwareRebalancer: a rebalancer with a tax term, made wash-sale safe, with the lots named.

The tax term (:class:`~rebalopt.costs.tax.TaxCost`) is declared once in the wrapped
rebalancer's costs. A convex program may still choose to sell a loss lot of an
asset and buy the asset in the same rebalance (the harvest is worth more than the
round trip): that is a wash sale, and a net-trade plan cannot execute it anyway.
This wrapper solves, finds such assets (:meth:`TaxCost.wash_sale_conflicts`),
forbids buying them (``TaxCost.no_buy``) and solves again, until no conflict is
left (each round adds at least one asset, so it ends). Assets that cannot be
bought (the rule's restrictions and the conflicts) hand the weight they cannot buy
to their user-given substitute (:func:`~rebalopt.costs.tax.substitute_targets`).

The plan then carries ``info["tax_lots"]`` (asset, lot_id, shares, gain, term,
tax: the lots each sell comes from and the tax it triggers, currency) and
``info["tax"]`` (net realized gain, tax, rounds, restricted and substituted assets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.costs.tax import TaxCost, substitute_targets
from rebalopt.errors import InputError, SolverError
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.state import PortfolioState

__all__ = ["TaxAwareRebalancer"]


@dataclass
class TaxAwareRebalancer:
    """Plan with a tax term so that no plan creates a wash sale (module docstring).

    Parameters
    ----------
    rebalancer
        Anything with ``plan(state, targets)`` whose costs include ``tax``.
    tax
        The :class:`~rebalopt.costs.tax.TaxCost` in ``rebalancer``'s costs.
    substitutes
        Ticker -> substitute ticker (in the universe) that takes the weight the ticker
        cannot buy while restricted.
    max_rounds
        Most solves per plan.
    """

    rebalancer: Any
    tax: TaxCost
    substitutes: Mapping[str, str] = field(default_factory=dict)
    max_rounds: int = 8

    @property
    def inner(self) -> Any:
        """The wrapped rebalancer."""
        return self.rebalancer

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """A plan without wash sales, with the lots it sells (module docstring).

        Raises
        ------
        SolverError
            Conflicts still left after ``max_rounds`` solves.
        """
        if not isinstance(self.tax, TaxCost):
            raise InputError("tax must be a TaxCost", field="tax")
        w_t = pd.Series(state.target_weights(targets), index=state.assets)
        base = self.tax.table(state)
        restricted = {str(state.assets[i]) for i in np.flatnonzero(base.no_buy)}
        extra: set[str] = set()
        try:
            for rounds in range(1, self.max_rounds + 1):
                self.tax.no_buy = frozenset(extra)
                goal = substitute_targets(w_t, state, sorted(restricted | extra),
                                          self.substitutes)
                plan = self.rebalancer.plan(state, goal.reindex(state.assets).fillna(0.0))
                z = plan.trade_values / state.equity
                s = self.tax.allocate(z, state)
                conflicts = set(self.tax.wash_sale_conflicts(z, state, s)) - extra
                if not conflicts:
                    break
                extra |= conflicts
            else:
                raise SolverError(f"wash-sale conflicts left after {self.max_rounds} solves: "
                                  f"{sorted(conflicts)}")
        finally:
            self.tax.no_buy = frozenset()
        sales = self.tax.sales(z, state, s)
        plan.info["tax_lots"] = sales
        plan.info["tax"] = {
            "realized_gain": float(sales["gain"].sum()), "tax": float(sales["tax"].sum()),
            "rounds": rounds, "restricted": sorted(restricted), "conflicts": sorted(extra),
            "substituted": sorted(a for a in restricted | extra if a in self.substitutes)}
        return plan
