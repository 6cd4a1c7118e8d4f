"""TaxAwareRebalancer: tax-loss harvesting in two convex solves, without wash sales.

The tax term (:class:`~rebalopt.costs.tax.TaxCost`) is declared once in the wrapped
rebalancer's costs. Harvesting a loss and buying the same asset in one rebalance
would be a wash sale (and is not a net trade), and a convex program cannot exclude
"sell a loss lot and buy" by itself. So the wrapper solves twice:

1. with no asset in ``TaxCost.harvest`` (losses valued at 0, gains taxed): the plan
   says which assets it wants to buy;
2. with ``harvest`` = the assets holding a loss lot the rule would allow that plan 1
   does not buy: their losses are valued at the loss rate and they are not bought.

Plan 1's trades are feasible in solve 2 and cost no more there, so solve 2 is at
least as good. No plan buys an asset it sells at a loss, nor one the wash-sale rule
restricts (sold at a loss within the window). A restricted asset hands the weight
it cannot buy to its user-given substitute
(:func:`~rebalopt.costs.tax.substitute_targets`).

The plan carries ``info["tax_lots"]`` (asset, lot_id, shares, gain, term, tax: the
lots each sell comes from and the tax it triggers, currency) and ``info["tax"]``
(net realized gain and tax, currency; harvested, restricted and substituted assets,
and ``not_substituted``: restricted asset -> why its weight stayed in cash, when its
substitute is restricted too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._checks import flag
from rebalopt.costs.tax import TaxCost, substitute_targets
from rebalopt.errors import InputError
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.state import PortfolioState

__all__ = ["TaxAwareRebalancer"]


@dataclass
class TaxAwareRebalancer:
    """Plan with a tax term, harvesting losses without wash sales (module docstring).

    Parameters
    ----------
    rebalancer
        Anything with ``plan(state, targets)`` whose costs include ``tax``.
    tax
        The :class:`~rebalopt.costs.tax.TaxCost` in ``rebalancer``'s costs.
    substitutes
        Ticker -> substitute ticker (in the universe) that takes the weight the ticker
        cannot buy while the wash-sale rule restricts it.
    harvest
        Whether to run the second (harvesting) solve.
    """

    rebalancer: Any
    tax: TaxCost
    substitutes: Mapping[str, str] = field(default_factory=dict)
    harvest: bool = True

    @property
    def inner(self) -> Any:
        """The wrapped rebalancer."""
        return self.rebalancer

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """A plan without wash sales, with the lots it sells (module docstring)."""
        if not isinstance(self.tax, TaxCost):
            raise InputError("tax must be a TaxCost", field="tax")
        _check_tax_is_priced(self.rebalancer, self.tax)
        flag(self.harvest, "TaxAwareRebalancer.harvest")  # "no" would be truthy
        w_t = pd.Series(state.target_weights(targets), index=state.assets)
        self.tax.harvest = frozenset()
        try:
            base = self.tax.table(state)
            restricted = sorted(str(state.assets[i]) for i in np.flatnonzero(base.no_buy))
            skipped: dict[str, str] = {}
            goal = substitute_targets(w_t, state, restricted, self.substitutes, skipped)
            goal = goal.reindex(state.assets).fillna(0.0)
            plan = self.rebalancer.plan(state, goal)
            losers = np.zeros(state.n, dtype=bool)
            losers[base.owner[(base.gain < 0)]] = True
            losers &= ~base.no_harvest & ~base.no_buy
            cands = losers & ~(plan.trades > 0)
            harvested: list[str] = []
            if self.harvest and cands.any():
                self.tax.harvest = frozenset(str(a) for a in state.assets[cands])
                plan = self.rebalancer.plan(state, goal)
                harvested = sorted(self.tax.harvest)
            z = plan.trade_values / state.equity
            s = self.tax.allocate(z, state)
            sales = self.tax.sales(z, state, s)
            conflicts = self.tax.wash_sale_conflicts(z, state, s)
        finally:
            self.tax.harvest = frozenset()
        if conflicts:  # by construction impossible; never hand out such a plan silently
            raise InputError(f"plan would buy assets it sells at a loss or that are "
                             f"restricted: {conflicts}", asset=conflicts[0], field="wash sale")
        plan.info["tax_lots"] = sales
        plan.info["tax"] = {
            "realized_gain": float(sales["gain"].sum()), "tax": float(sales["tax"].sum()),
            "harvest_candidates": harvested, "restricted": restricted,
            "substituted": [a for a in restricted if a in self.substitutes
                            and a not in skipped],
            "not_substituted": skipped}
        return plan


def _check_tax_is_priced(rebalancer: Any, tax: TaxCost) -> None:
    """``tax`` must be the very model in the wrapped rebalancer's costs (those of its
    ``relaxation`` for a whole-share stage): the wrapper sets ``tax.harvest`` between
    the solves, so a plan made without it (or with another TaxCost) would ignore the tax
    term or the harvest while ``info["tax"]`` reported them. A rebalancer whose costs
    cannot be seen is taken as it is."""
    costs = getattr(rebalancer, "costs", None)
    if costs is None:
        costs = getattr(getattr(rebalancer, "relaxation", None), "costs", None)
    if costs is None:
        return
    if any(c is tax for c in costs):
        return
    other = any(isinstance(c, TaxCost) for c in costs)
    raise InputError(
        "the wrapped rebalancer's costs hold another TaxCost: pass that one as tax (the "
        "harvest is set on it)" if other else "the wrapped rebalancer's costs do not include "
        "tax: its plans would ignore the tax term (costs=[..., tax])", field="tax")

