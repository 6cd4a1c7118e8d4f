"""BacktestResult: equity, fills, orders, costs by model, turnover, tracking error, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.backtest.records import BrokerOrder, Fill, OrderStatus, orders_frame
from rebalopt.errors import InputError

__all__ = ["OUTCOMES", "BacktestResult", "order_outcomes"]

OUTCOMES = ("n_filled", "n_partial", "n_rejected", "n_cancelled", "n_open")
"""Outcome counts of a rebalance's orders; they partition its orders (see :func:`order_outcomes`)."""


def order_outcomes(orders: list[BrokerOrder]) -> dict[Any, dict[str, int]]:
    """Count the outcomes of orders per ``tag`` (the rebalance number for the strategies).

    Each order lands in exactly one class, so the counts of a tag add up to its
    number of orders:

    * ``n_rejected``: status rejected (the reason is in ``orders_frame``; a
      rejection may come after part of the order filled);
    * ``n_filled``: filled in full;
    * ``n_partial``: some but not all shares filled and not rejected (still
      open, or cancelled with the rest unfilled);
    * ``n_cancelled``: cancelled with nothing filled;
    * ``n_open``: still pending with nothing filled (at the end of the run).

    One pass over the order records: call it once, after the run.
    """
    out: dict[Any, dict[str, int]] = {}
    for o in orders:
        st = o.status
        if st is OrderStatus.REJECTED:
            key = "n_rejected"
        elif st is OrderStatus.FILLED:
            key = "n_filled"
        elif o.filled > 0:
            key = "n_partial"
        elif st is OrderStatus.CANCELLED:
            key = "n_cancelled"
        else:
            key = "n_open"
        try:
            counts = out.get(o.tag)
        except TypeError:  # an unhashable tag set by a custom strategy: not a rebalance
            continue
        if counts is None:
            counts = out[o.tag] = dict.fromkeys(OUTCOMES, 0)
        counts[key] += 1
    return out


@dataclass
class BacktestResult:
    """What a backtest produced.

    Units: equity and cash in currency per bar (after the bar's fills, marked at
    the bar's last known closes); costs in currency; weights as fractions of
    equity; returns per bar; annualized figures use ``periods_per_year``.

    ``active_returns`` are the portfolio's bar returns minus those of the latest
    target weights held at constant weights (NaN before the first targets);
    their annualized standard deviation is the realized tracking error.
    ``weight_gap`` is half the L1 distance between held and target weights.
    """

    dates: pd.DatetimeIndex
    assets: pd.Index
    equity: FloatArray
    cash: FloatArray
    fills: list[Fill]
    orders: list[BrokerOrder]
    cost_names: list[str]
    initial_cash: float
    execution_mode: str
    active_returns: FloatArray
    weight_gap: FloatArray
    holdings: np.ndarray | None = None
    rebalances: list[dict[str, Any]] = field(default_factory=list)
    periods_per_year: float = 252.0
    run_seconds: float = 0.0
    taxes: Any = None
    """The :class:`~rebalopt.backtest.lots.TaxReport` when the broker kept tax lots."""

    # ------------------------------------------------------------------ series
    @property
    def equity_curve(self) -> pd.Series:
        """Equity per bar, currency."""
        return pd.Series(self.equity, index=self.dates, name="equity")

    @property
    def returns(self) -> pd.Series:
        """Bar returns of equity (the first relative to the initial cash)."""
        prev = np.concatenate([[self.initial_cash], self.equity[:-1]])
        return pd.Series(self.equity / prev - 1.0, index=self.dates, name="return")

    # ----------------------------------------------------------------- metrics
    @property
    def total_return(self) -> float:
        return float(self.equity[-1] / self.initial_cash - 1.0)

    @property
    def cagr(self) -> float:
        """Compound annual growth rate over the run (bars / ``periods_per_year`` years)."""
        years = len(self.equity) / self.periods_per_year
        return float((self.equity[-1] / self.initial_cash) ** (1.0 / years) - 1.0)

    @property
    def volatility(self) -> float:
        """Annualized standard deviation of bar returns."""
        return float(self.returns.std(ddof=1) * np.sqrt(self.periods_per_year))

    @property
    def sharpe(self) -> float:
        """Annualized mean / standard deviation of bar returns (risk-free rate 0)."""
        r = self.returns
        sd = r.std(ddof=1)
        return float(r.mean() / sd * np.sqrt(self.periods_per_year)) if sd > 0 else float("nan")

    @property
    def max_drawdown(self) -> float:
        """Largest peak-to-trough fall of equity, as a positive fraction."""
        eq = np.concatenate([[self.initial_cash], self.equity])
        peak = np.maximum.accumulate(eq)
        return float(np.max(1.0 - eq / peak))

    @property
    def tracking_error(self) -> float:
        """Realized tracking error to the latest targets, annualized (NaN without targets)."""
        a = self.active_returns[np.isfinite(self.active_returns)]
        if len(a) < 2:
            return float("nan")
        return float(a.std(ddof=1) * np.sqrt(self.periods_per_year))

    @property
    def costs_by_model(self) -> dict[str, float]:
        """Total cost per model over the run, currency."""
        out = dict.fromkeys(self.cost_names, 0.0)
        for f in self.fills:
            for k, v in f.costs.items():
                out[k] += v
        return out

    @property
    def total_cost(self) -> float:
        return float(sum(self.costs_by_model.values()))

    @property
    def n_held(self) -> int:
        """Rebalances held (no trade) after an error."""
        return sum(r.get("status") == "held" for r in self.rebalances)

    @property
    def n_rejected(self) -> int:
        """Orders the broker rejected over the run (reasons in :attr:`rejected_orders`)."""
        return sum(o.status is OrderStatus.REJECTED for o in self.orders)

    @property
    def rejected_orders(self) -> pd.DataFrame:
        """The rejected orders, one row each (columns of :meth:`orders_frame`, with ``reason``).

        ``tag`` is the rebalance number for orders of ``PortfolioStrategy`` and
        ``ScheduledTargets``. Empty (same columns) when nothing was rejected.
        """
        rejected = [o for o in self.orders if o.status is OrderStatus.REJECTED]
        return orders_frame(rejected)

    def metrics(self) -> dict[str, float]:
        """The standard figures in one dict."""
        return {
            "total_return": self.total_return,
            "cagr": self.cagr,
            "volatility": self.volatility,
            "sharpe": self.sharpe,
            "max_drawdown": self.max_drawdown,
            "tracking_error": self.tracking_error,
            "total_cost": self.total_cost,
            "cost_bps_of_initial": 1e4 * self.total_cost / self.initial_cash,
            "n_fills": float(len(self.fills)),
            "n_rebalances": float(len(self.rebalances)),
            "n_held": float(self.n_held),
            "n_rejected": float(self.n_rejected),
        }

    # ------------------------------------------------------------------ frames
    def fills_frame(self) -> pd.DataFrame:
        """One row per fill, with the cost of every model (``cost_<name>``)."""
        cols = ["timestamp", "bar", "order_id", "asset", "quantity", "reference_price", "price",
                "multiplier", "notional", "fee", "slippage", "cash_flow", "tag"]
        rows = [{
            "timestamp": f.timestamp, "bar": f.bar, "order_id": f.order_id, "asset": f.asset,
            "quantity": f.quantity, "reference_price": f.reference_price, "price": f.price,
            "multiplier": f.multiplier, "notional": f.quantity * f.price * f.multiplier,
            "fee": f.fee, "slippage": f.slippage, "cash_flow": f.cash_flow, "tag": f.tag,
            **{f"cost_{k}": v for k, v in f.costs.items()},
        } for f in self.fills]
        return pd.DataFrame(rows, columns=cols + [f"cost_{k}" for k in self.cost_names])

    def orders_frame(self) -> pd.DataFrame:
        """One row per order with its status, filled quantity and reason."""
        return orders_frame(self.orders)

    def rebalances_frame(self) -> pd.DataFrame:
        """One row per scheduled rebalance: status, orders, planned and realized turnover.

        ``realized_turnover`` is half the notional filled for that rebalance's
        orders over the equity at the rebalance (one-way, as ``RebalancePlan.turnover``).
        ``n_filled``, ``n_partial``, ``n_rejected``, ``n_cancelled`` and ``n_open``
        count what became of its orders (see :func:`order_outcomes`); they add up
        to ``n_orders``.
        """
        df = pd.DataFrame(self.rebalances, columns=[
            "rebalance", "bar", "date", "status", "n_orders", "planned_turnover",
            "planned_cost", "equity", "error"])
        outcomes = order_outcomes(self.orders)
        zero = dict.fromkeys(OUTCOMES, 0)
        for name in OUTCOMES:
            df[name] = [outcomes.get(k, zero)[name] for k in df["rebalance"]]
        traded: dict[Any, float] = {}
        cost: dict[Any, float] = {}
        for f in self.fills:
            traded[f.tag] = traded.get(f.tag, 0.0) + abs(f.quantity * f.price * f.multiplier)
            cost[f.tag] = cost.get(f.tag, 0.0) + sum(f.costs.values())
        df["realized_turnover"] = [0.5 * traded.get(k, 0.0) / e if e else np.nan
                                   for k, e in zip(df["rebalance"], df["equity"])]
        df["realized_cost"] = [cost.get(k, 0.0) for k in df["rebalance"]]
        return df

    def costs_frame(self) -> pd.DataFrame:
        """Cost per model and bar (rows: dates with fills), currency."""
        f = self.fills_frame()
        cols = [f"cost_{k}" for k in self.cost_names]
        if f.empty:
            return pd.DataFrame(columns=self.cost_names)
        out = f.groupby("timestamp")[cols].sum()
        out.columns = self.cost_names
        return out

    def to_frame(self, kind: Literal["equity", "fills", "orders", "rebalances", "costs"]
                 = "equity") -> pd.DataFrame:
        """A DataFrame view: ``"equity"`` (per bar: equity, cash, return, active return,
        weight gap), ``"fills"``, ``"orders"``, ``"rebalances"`` or ``"costs"``."""
        if kind == "equity":
            return pd.DataFrame({
                "equity": self.equity, "cash": self.cash, "return": self.returns.to_numpy(),
                "active_return": self.active_returns, "weight_gap": self.weight_gap,
            }, index=self.dates)
        views = {"fills": self.fills_frame, "orders": self.orders_frame,
                 "rebalances": self.rebalances_frame, "costs": self.costs_frame}
        if kind not in views:
            raise InputError(f"unknown view {kind!r}; one of equity, {', '.join(views)}",
                             field="kind")
        return views[kind]()

    def summary(self) -> str:
        m = self.metrics()
        lines = [
            (f"Backtest {self.dates[0].date()}..{self.dates[-1].date()} ({len(self.dates)} bars, "
            f"{len(self.assets)} assets, {self.execution_mode})"),
            (f"  equity {self.initial_cash:,.2f} -> {self.equity[-1]:,.2f}  "
            f"CAGR {m['cagr']:.2%}  vol {m['volatility']:.2%}  Sharpe {m['sharpe']:.2f}  "
            f"max DD {m['max_drawdown']:.2%}"),
            (f"  fills {len(self.fills)}  rejected orders {self.n_rejected}  rebalances "
            f"{len(self.rebalances)} (held {self.n_held})  tracking error "
            f"{m['tracking_error']:.2%}"),
            f"  costs {m['total_cost']:,.2f}: "
            + ", ".join(f"{k} {v:,.2f}" for k, v in self.costs_by_model.items()),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"BacktestResult(bars={len(self.dates)}, fills={len(self.fills)}, "
                f"final_equity={self.equity[-1]:,.2f})")
