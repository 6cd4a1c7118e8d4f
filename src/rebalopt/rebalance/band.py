"""BandRebalancer: trade an asset only when its weight leaves a tolerance band."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rebalopt._checks import flag, require_nonneg
from rebalopt.costs import CostModel, untradable_assets
from rebalopt.errors import InputError
from rebalopt.rebalance._funding import fund_buys
from rebalopt.rebalance.config import RebalanceConfig
from rebalopt.rebalance.dust import snap_dust
from rebalopt.rebalance.naive import _prepare, round_to_lots
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.state import PortfolioState

__all__ = ["BandRebalancer"]


@dataclass
class BandRebalancer:
    r"""Tolerance-band rebalancing, the standard practitioner baseline.

    Each asset has a band around its target weight :math:`w^*_i`:

    * absolute: :math:`[w^*_i - \text{width},\ w^*_i + \text{width}]`
    * relative: :math:`[w^*_i (1 - \text{width}),\ w^*_i (1 + \text{width})]` (for
      :math:`w^*_i \ge 0`; mirrored for shorts)

    An asset whose current weight lies inside its band is not traded. One outside
    is traded back to its target (``to="target"``) or to the nearest band edge
    (``to="edge"``). Targets of zero (including held assets absent from the
    targets) get the same band, so with an absolute width a small stray position
    is tolerated. Buys are then scaled down, if needed, so post-trade cash after
    costs stays >= 0 (``fund=True``): a cash account can always pay the plan.

    Assets a cost model cannot price (:meth:`CostModel.tradable
    <rebalopt.costs.CostModel.tradable>`, e.g. market impact without a volatility or
    an ADV: a fresh listing) are not traded even outside their band (a held one stays
    held); they are listed with the reason in ``plan.info["untradable"]`` (ticker ->
    reason) and ``outside_band`` still counts them.

    Parameters
    ----------
    width
        Band half-width: weight units (absolute) or a fraction of the target (relative).
    relative
        Relative instead of absolute band.
    to
        ``"target"`` or ``"edge"``.
    config
        Whole shares / lots, shorting and leverage limits (thresholds are not used).
    costs
        Cost models for the plan's expected costs and for funding.
    fund
        Scale buys so post-trade cash after costs is not negative.
    """

    width: float = 0.05
    relative: bool = False
    to: Literal["target", "edge"] = "target"
    config: RebalanceConfig = field(
        default_factory=lambda: RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0)
    )
    costs: list[CostModel] = field(default_factory=list)
    fund: bool = True

    def __post_init__(self) -> None:
        require_nonneg(self.width, "BandRebalancer.width")
        flag(self.relative, "BandRebalancer.relative")
        flag(self.fund, "BandRebalancer.fund")
        if not isinstance(self.config, RebalanceConfig):
            raise InputError(f"not a RebalanceConfig: {self.config!r}",
                             field="BandRebalancer.config")
        self.costs = list(self.costs)
        for c in self.costs:
            if not isinstance(c, CostModel):
                raise InputError(f"not a CostModel: {c!r}", field="BandRebalancer.costs")
        if self.to not in ("target", "edge"):
            raise InputError(f"must be 'target' or 'edge', got {self.to!r}",
                             field="BandRebalancer.to")

    @property
    def method(self) -> str:
        kind = "rel" if self.relative else "abs"
        return f"band({kind} {self.width:g}, to {self.to})"

    def bands(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper band edges per asset (weights)."""
        if self.relative:
            half = np.abs(targets) * self.width
        else:
            half = np.full_like(targets, self.width)
        return targets - half, targets + half

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """Trades (shares) for the assets outside their bands."""
        w, scale = _prepare(state, targets, self.config)
        lo, hi = self.bands(w)
        cur = state.weights
        outside = (cur < lo - 1e-12) | (cur > hi + 1e-12)
        if self.to == "target":
            goal = w
        else:
            goal = np.clip(cur, lo, hi)
        delta_value = np.where(outside, (goal - cur) * state.equity, 0.0)
        shares = delta_value / (state.prices * state.multipliers)
        closing = outside & (goal == 0) & (state.holdings != 0)
        lots = None if self.config.fractional else (
            np.full(state.n, float(self.config.lot_size)) if self.config.round_lots
            else state.lot_sizes
        )
        if lots is not None:
            shares = round_to_lots(shares, lots)
        if not self.config.allow_short:
            # a sell rounded up to a whole lot must not take a long (or flat) book short
            shares = np.maximum(shares, -np.clip(state.holdings, 0.0, None))
        shares = np.where(closing, -state.holdings, shares)
        frozen, reasons = untradable_assets(self.costs, state)
        shares = np.where(frozen, 0.0, shares)  # the cost models cannot price them
        shares, _, _ = snap_dust(shares, state, self.config.dust_value, self.config.dust_shares)
        if self.fund:
            shares = fund_buys(state, shares, self.costs, lots)
            # a buy scaled down may be dust now (snapping a buy only keeps more cash)
            shares, _, _ = snap_dust(shares, state, self.config.dust_value,
                                     self.config.dust_shares)
        shares[shares == 0] = 0.0
        info = {"outside_band": int(outside.sum()), "untradable": reasons,
                "target_scale": scale}
        return RebalancePlan.from_trades(state, w, shares, self.costs, self.method, info)

    def execute(self, target_weights: Mapping[str, float], data: Mapping[str, Any],
                broker: Any) -> list[Any]:
        """The seed's executor call: plan from the broker's book and submit the orders."""
        from rebalopt.rebalance._execute import execute_plan

        return execute_plan(self, target_weights, data, broker, self.config.pending)
