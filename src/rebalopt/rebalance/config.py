"""RebalanceConfig: the seed proposal's rebalancing options, validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rebalopt._checks import flag, require_nonneg, require_positive
from rebalopt.errors import InputError
from rebalopt.rebalance.dust import DUST_SHARES, DUST_VALUE

__all__ = ["RebalanceConfig"]


@dataclass(frozen=True)
class RebalanceConfig:
    """Options for turning target weights into orders (the seed's ``RebalanceConfig``).

    Parameters
    ----------
    min_trade_value
        Skip trades smaller than this, currency. Closing a position is never skipped.
    min_weight_change
        Skip trades that move the weight by less than this (fraction of equity).
    fractional
        Trade fractional shares; when ``False``, trades are whole multiples of the
        state's lot size (1 by default).
    round_lots
        Round trades to ``lot_size`` shares (overrides the state's lot sizes).
    lot_size
        Round-lot size in shares, used when ``round_lots`` is set.
    allow_short
        When ``False``, negative target weights are clipped to 0 (documented
        behaviour, as in the seed), so no short position is ever opened.
    max_single_weight
        Cap on the absolute target weight per asset; larger targets are clipped.
    max_gross_leverage
        Maximum sum of absolute target weights; a target above it is an error.
    cash_buffer
        Fraction of equity kept back in cash: targets are scaled by ``1 - cash_buffer``
        (leaves room for costs and price moves before the fill).
    dust_value, dust_shares
        Trades below this notional (currency) or size (shares) are dust, snapped
        to 0 (a trade leaving a dust position becomes an exact close); see
        :mod:`rebalopt.rebalance.dust`. Defaults ``DUST_VALUE`` (1.0) and
        ``DUST_SHARES`` (1e-6).
    pending
        What :meth:`execute` does with orders still pending at the broker:
        ``"cancel"`` cancels them before planning, ``"account"`` treats their
        remaining quantity as already traded (no double allocation either way).

    Notes
    -----
    Assets the cost models cannot price (``CostModel.tradable``: for example market
    impact without volatility or ADV) are never traded by the naive and band
    rebalancers, whatever these thresholds; ``plan.info["untradable"]`` lists them.
    """

    min_trade_value: float = 100.0
    min_weight_change: float = 0.01
    fractional: bool = False
    round_lots: bool = False
    lot_size: int = 100
    allow_short: bool = False
    max_single_weight: float = 1.0
    max_gross_leverage: float = 1.0
    cash_buffer: float = 0.0
    pending: Literal["cancel", "account"] = "cancel"
    dust_value: float = DUST_VALUE
    dust_shares: float = DUST_SHARES

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, why: str) -> None:
            if not ok:
                raise InputError(f"{why}, got {getattr(self, name)!r}",
                                 field=f"RebalanceConfig.{name}")

        for name in ("min_trade_value", "min_weight_change", "max_single_weight",
                     "max_gross_leverage", "cash_buffer", "dust_value", "dust_shares"):
            require_nonneg(getattr(self, name), f"RebalanceConfig.{name}")
        require_positive(self.lot_size, "RebalanceConfig.lot_size")
        for name in ("fractional", "round_lots", "allow_short"):
            flag(getattr(self, name), f"RebalanceConfig.{name}")
        check("cash_buffer", self.cash_buffer < 1, "must be < 1")
        check("max_single_weight", self.max_single_weight > 0, "must be > 0")
        check("max_gross_leverage", self.max_gross_leverage > 0, "must be > 0")
        check("max_single_weight", self.min_weight_change <= self.max_single_weight,
              "min_weight_change above max_single_weight: contradictory")
        check("pending", self.pending in ("cancel", "account"), "must be 'cancel' or 'account'")
