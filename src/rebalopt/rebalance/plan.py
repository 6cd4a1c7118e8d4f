"""RebalancePlan: the trades a rebalancer proposes, with their costs and effects.

Every rebalancer returns one; all the accounting lives here, so the naive, band
and optimal rebalancers report the same quantities in the same units.

Units: trades and holdings in shares; cash, costs and notional in currency;
weights as fractions of the *pre-trade* equity (so pre- and post-trade weights
are comparable and ``post_weights.sum() + post_cash_weight == 1 - total_cost/equity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._naming import unique_names
from rebalopt._typing import FloatArray
from rebalopt.costs import CostModel
from rebalopt.errors import InputError
from rebalopt.orders import Order, OrderSide
from rebalopt.state import PortfolioState

__all__ = ["RebalancePlan", "evaluate_costs"]


def evaluate_costs(
    costs: list[CostModel] | tuple[CostModel, ...], trades: FloatArray, state: PortfolioState
) -> dict[str, FloatArray]:
    """Currency cost per asset of ``trades`` (shares) for each model, keyed by a unique name."""
    return {name: np.asarray(model.evaluate(trades, state), dtype=float)
            for name, model in zip(unique_names(costs), costs)}


@dataclass
class RebalancePlan:
    """Trades (shares) from ``state`` towards ``targets``, with costs and diagnostics.

    Build with :meth:`from_trades`; fields are derived there and never edited.
    """

    state: PortfolioState
    targets: FloatArray
    trades: FloatArray
    costs: dict[str, FloatArray]
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    # derived
    post_holdings: FloatArray = field(init=False, repr=False)
    post_cash: float = field(init=False)
    post_weights: FloatArray = field(init=False, repr=False)
    trade_values: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.state
        bad = ~np.isfinite(self.trades)
        if bad.any():
            raise InputError("trade is not finite", asset=str(s.assets[np.flatnonzero(bad)[0]]),
                             field="trade")
        for name, c in self.costs.items():
            if not np.isfinite(c).all():
                i = int(np.flatnonzero(~np.isfinite(c))[0])
                raise InputError(f"cost model {name} returned {c[i]}", asset=str(s.assets[i]),
                                 field="cost")
        self.trade_values = self.trades * s.prices * s.multipliers
        self.post_holdings = s.holdings + self.trades
        self.post_cash = float(s.cash - self.trade_values.sum() - self.total_cost)
        self.post_weights = self.post_holdings * s.prices * s.multipliers / s.equity

    @classmethod
    def from_trades(
        cls,
        state: PortfolioState,
        targets: FloatArray,
        trades: FloatArray,
        costs: list[CostModel] | tuple[CostModel, ...],
        method: str,
        info: dict[str, Any] | None = None,
    ) -> RebalancePlan:
        """Evaluate ``costs`` on ``trades`` and assemble the plan."""
        trades = np.asarray(trades, dtype=float)
        return cls(
            state=state,
            targets=np.asarray(targets, dtype=float),
            trades=trades,
            costs=evaluate_costs(costs, trades, state),
            method=method,
            info=dict(info or {}),
        )

    # ------------------------------------------------------------- quantities
    @property
    def assets(self) -> pd.Index:
        return self.state.assets

    @property
    def cost_per_asset(self) -> FloatArray:
        """Total expected cost per asset, currency."""
        if not self.costs:
            return np.zeros(self.state.n)
        return np.sum(list(self.costs.values()), axis=0)

    @property
    def total_cost(self) -> float:
        """Total expected cost, currency."""
        return float(sum(c.sum() for c in self.costs.values()))

    @property
    def cost_by_model(self) -> dict[str, float]:
        """Total expected cost per model, currency."""
        return {k: float(v.sum()) for k, v in self.costs.items()}

    @property
    def z(self) -> FloatArray:
        """Trades as fractions of pre-trade equity."""
        return self.trade_values / self.state.equity

    @property
    def turnover(self) -> float:
        """One-way turnover: half the traded notional over pre-trade equity."""
        return float(0.5 * np.abs(self.trade_values).sum() / self.state.equity)

    @property
    def post_cash_weight(self) -> float:
        """Post-trade cash as a fraction of pre-trade equity."""
        return self.post_cash / self.state.equity

    @property
    def post_equity(self) -> float:
        """Equity after trading at the reference prices and paying the costs, currency."""
        return self.state.equity - self.total_cost

    @property
    def n_trades(self) -> int:
        return int(np.count_nonzero(self.trades))

    @property
    def tracking_error_before(self) -> float | None:
        """Annualized tracking error of the current weights to the targets, if a risk model was used."""
        return self.info.get("tracking_error_before")

    @property
    def tracking_error_after(self) -> float | None:
        """Annualized tracking error of the post-trade weights to the targets, if known."""
        return self.info.get("tracking_error_after")

    # ------------------------------------------------------------------ views
    def orders(self) -> list[Order]:
        """Order tickets, sells (and short sales) before buys, each side in universe order."""
        s = self.state
        idx = np.flatnonzero(self.trades)
        # one gather per field (not an Index look-up and numpy scalars per order);
        # tolist gives the same Python floats as float() of each element
        assets = [str(a) for a in s.assets[idx]]
        trades = np.asarray(self.trades, dtype=float)[idx].tolist()
        prices = np.asarray(s.prices, dtype=float)[idx].tolist()
        cost = np.asarray(self.cost_per_asset, dtype=float)[idx].tolist()
        sells, buys = [], []
        for a, q, p, c in zip(assets, trades, prices, cost):
            order = Order(
                asset=a,
                side=OrderSide.BUY if q > 0 else OrderSide.SELL,
                quantity=abs(q),
                reference_price=p,
                expected_cost=c,
            )
            (buys if q > 0 else sells).append(order)
        return sells + buys

    def submit(self, broker: Any) -> list[Any]:
        """Send :meth:`orders` to ``broker.submit_order``; returns what the broker returns."""
        submitted = []
        for o in self.orders():
            submitted.append(broker.submit_order(o.asset, o.quantity, o.side))
        return submitted

    @property
    def by_ticker(self) -> pd.DataFrame:
        """Every asset of the universe, one row per ticker (the plan's arrays labelled).

        Columns: ``price`` (currency/share), ``current_shares``, ``trade_shares``,
        ``post_shares`` (shares), ``current_weight``, ``target_weight``,
        ``post_weight`` (fractions of pre-trade equity), ``trade_value`` (currency),
        ``cost_<model>`` and ``cost`` (currency). ``plan.by_ticker["trade_shares"]``
        is :attr:`trades` as a Series keyed by ticker.
        """
        df = self._frame()
        df.index.name = "asset"
        return df

    def preview(self) -> pd.DataFrame:
        """One row per asset that is held, targeted or traded: weights side by side."""
        s = self.state
        df = self._frame()
        keep = (s.holdings != 0) | (self.targets != 0) | (self.trades != 0)
        return df[keep]

    def _frame(self) -> pd.DataFrame:
        s = self.state
        return pd.DataFrame(
            {
                "price": s.prices,
                "current_shares": s.holdings,
                "trade_shares": self.trades,
                "post_shares": self.post_holdings,
                "current_weight": s.weights,
                "target_weight": self.targets,
                "post_weight": self.post_weights,
                "trade_value": self.trade_values,
                **{f"cost_{k}": v for k, v in self.costs.items()},
                "cost": self.cost_per_asset,
            },
            index=s.assets,
        )

    def summary(self) -> str:
        """A few readable lines: what trades, what it costs, where it lands."""
        s = self.state
        eq = s.equity
        lines = [
            f"RebalancePlan ({self.method}): {self.n_trades} trades on {s.n} assets",
            f"  equity {eq:,.2f}  cash {s.cash:,.2f} -> {self.post_cash:,.2f}",
            f"  turnover (one-way) {self.turnover:.4%}",
            f"  expected cost {self.total_cost:,.2f} ({1e4 * self.total_cost / eq:.2f} bps of equity)",
        ]
        for k, v in self.cost_by_model.items():
            lines.append(f"    {k:<16} {v:,.2f}")
        if self.tracking_error_before is not None and self.tracking_error_after is not None:
            lines.append(
                f"  tracking error {self.tracking_error_before:.4%} -> "
                f"{self.tracking_error_after:.4%} (annualized)"
            )
        untradable = self.info.get("untradable") or {}
        if untradable:
            lines.append("  not traded (the cost models cannot price them): "
                         + ", ".join(f"{a} ({why})" for a, why in untradable.items()))
        for key in ("solver", "status", "solve_time", "integer_gap"):
            if key in self.info:
                lines.append(f"  {key}: {self.info[key]}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"RebalancePlan(method={self.method!r}, trades={self.n_trades}, "
            f"turnover={self.turnover:.4f}, cost={self.total_cost:,.2f})"
        )

    def _repr_html_(self) -> str:
        summary = "<pre>" + self.summary() + "</pre>"
        return summary + self.preview().to_html(float_format=lambda x: f"{x:,.6g}")
