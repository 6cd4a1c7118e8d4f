"""NaiveRebalancer: trade every difference between current and target weights (the baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.costs import CostModel, untradable_assets
from rebalopt.errors import InputError
from rebalopt.rebalance.config import RebalanceConfig
from rebalopt.rebalance.dust import snap_dust
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.rebalance.targets import check_exposure, target_exposure
from rebalopt.state import PortfolioState

__all__ = ["NaiveRebalancer", "prepare_targets", "round_to_lots"]


def round_to_lots(shares: FloatArray, lots: FloatArray) -> FloatArray:
    """Round ``shares`` to the nearest multiple of ``lots`` (half away from zero)."""
    return np.sign(shares) * np.floor(np.abs(shares) / lots + 0.5) * lots


def prepare_targets(state: PortfolioState, targets: Any, config: RebalanceConfig) -> FloatArray:
    """Validated target weights after the config's leverage check and clipping."""
    return _prepare(state, targets, config)[0]


def _prepare(state: PortfolioState, targets: Any,
             config: RebalanceConfig) -> tuple[FloatArray, float]:
    """Target weights and the scale applied to them (1 unless rounding put them just
    above ``max_gross_leverage``; :data:`~rebalopt.rebalance.targets.TARGET_SUM_TOL`).

    The exposure is checked on the targets as given, before any clipping (a target
    of 1e12 is an error, not a weight clipped to ``max_single_weight``)."""
    w = state.target_weights(targets)
    exposure, what = target_exposure(w, long_only=not config.allow_short)
    scale = check_exposure(exposure, config.max_gross_leverage, what)
    if scale != 1.0:
        w = w * scale
    if not config.allow_short:
        w = np.clip(w, 0.0, None)
    w = np.clip(w, -config.max_single_weight, config.max_single_weight)
    return w * (1.0 - config.cash_buffer), scale


@dataclass
class NaiveRebalancer:
    """Trade each asset straight to its target weight, skipping small trades.

    Assets held but absent from the targets are closed. With whole shares the
    trade is rounded to the nearest lot; a closing trade sells the whole holding.
    The broker may reject buys a cash account cannot fund: naive does not look.

    Assets a cost model cannot price (:meth:`CostModel.tradable
    <rebalopt.costs.CostModel.tradable>`, e.g. market impact without a volatility or
    an ADV: a fresh listing) are not traded, whatever their target (a held one stays
    held, a closing trade is skipped); they are listed with the reason in
    ``plan.info["untradable"]`` (ticker -> reason) and their targets stay on the plan.

    Parameters
    ----------
    config
        Thresholds, rounding and limits (:class:`RebalanceConfig`).
    costs
        Cost models used to report the expected cost of the plan (currency).
    """

    config: RebalanceConfig = field(default_factory=RebalanceConfig)
    costs: list[CostModel] = field(default_factory=list)

    method = "naive"

    def __post_init__(self) -> None:
        if not isinstance(self.config, RebalanceConfig):
            raise InputError(f"not a RebalanceConfig: {self.config!r}",
                             field="NaiveRebalancer.config")
        self.costs = list(self.costs)
        for c in self.costs:
            if not isinstance(c, CostModel):
                raise InputError(f"not a CostModel: {c!r}", field="NaiveRebalancer.costs")

    def lots(self, state: PortfolioState) -> FloatArray | None:
        """Lot size per asset in shares, or ``None`` for fractional trading."""
        if self.config.round_lots:
            return np.full(state.n, float(self.config.lot_size))
        if self.config.fractional:
            return None
        return state.lot_sizes

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """Plan the trades (shares) from ``state`` to ``targets`` (weights keyed by ticker)."""
        cfg = self.config
        w, scale = _prepare(state, targets, cfg)
        unit = state.prices * state.multipliers
        delta_value = w * state.equity - state.values
        closing = (w == 0) & (state.holdings != 0)
        skip = (np.abs(delta_value) < cfg.min_weight_change * state.equity) | (
            np.abs(delta_value) < cfg.min_trade_value
        )
        shares = np.where(skip & ~closing, 0.0, delta_value / unit)
        lots = self.lots(state)
        if lots is not None:
            shares = round_to_lots(shares, lots)
        if not cfg.allow_short:
            # a sell rounded up to a whole lot must not take a long (or flat) book short
            shares = np.maximum(shares, -np.clip(state.holdings, 0.0, None))
        shares = np.where(closing, -state.holdings, shares)
        shares, _, _ = snap_dust(shares, state, cfg.dust_value, cfg.dust_shares)
        frozen, reasons = untradable_assets(self.costs, state)
        shares = np.where(frozen, 0.0, shares)  # the cost models cannot price them
        shares[shares == 0] = 0.0  # no negative zeros
        return RebalancePlan.from_trades(state, w, shares, self.costs, self.method,
                                         {"untradable": reasons, "target_scale": scale})

    def execute(self, target_weights: Mapping[str, float], data: Mapping[str, Any],
                broker: Any) -> list[Any]:
        """The seed's executor call: plan from the broker's book and submit the orders."""
        from rebalopt.rebalance._execute import execute_plan

        return execute_plan(self, target_weights, data, broker, self.config.pending)
