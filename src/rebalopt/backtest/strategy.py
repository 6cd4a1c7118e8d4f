"""Strategies: the seed's ``Strategy`` base class and ``PortfolioStrategy`` (option C).

A strategy decides; the broker owns the accounting; the engine owns the clock.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.backtest.result import order_outcomes
from rebalopt.errors import InputError, RebalanceError

if TYPE_CHECKING:
    from rebalopt.backtest.bar import BarData
    from rebalopt.rebalance.plan import RebalancePlan

__all__ = ["Optimizer", "PortfolioStrategy", "Strategy", "Weights", "check_whole_lots",
           "record_outcomes"]

log = logging.getLogger(__name__)

Weights = Mapping[str, float] | pd.Series | np.ndarray
"""Target weights (fractions of equity): keyed by ticker, or an array in feed order."""

Optimizer = Callable[[pd.DataFrame, "BarData", dict[str, Any], Any], "Weights | None"]
"""``optimize(returns, data, context, broker) -> target weights or None``."""

#: errors a rebalance may hit that ``on_error="hold"`` absorbs (bad targets,
#: infeasible programs, solver failures, numerical trouble)
HOLDABLE = (RebalanceError, ValueError, ArithmeticError)


#: shares: a trade within this of a whole number of lots counts as whole (the
#: broker's own tolerance for whole shares)
_LOT_TOL = 1e-9


def check_whole_lots(plan: RebalancePlan, broker: Any) -> None:
    """Refuse a plan a whole-share broker would reject order by order.

    When the broker trades whole shares (``broker.fractional`` is ``False``),
    every planned trade must be a whole multiple of its lot
    (``plan.state.lot_sizes``, shares), except a trade that exactly closes a
    fractional holding. A broker without a ``fractional`` attribute is not checked.

    Raises
    ------
    InputError
        Field ``"trade"``, naming the first offending asset and saying how to plan
        whole shares.
    """
    if getattr(broker, "fractional", True):
        return
    s = plan.state
    q = np.asarray(plan.trades, dtype=float)
    lots = s.lot_sizes
    off = np.abs(q - np.round(q / lots) * lots) > _LOT_TOL
    if not off.any():
        return
    off &= ~(np.abs(q + s.holdings) <= _LOT_TOL)  # an exact close of a fractional holding
    if not off.any():
        return
    i = int(np.flatnonzero(off)[0])
    n = int(off.sum())
    raise InputError(
        f"the plan trades {q[i]:.6g} shares (lot {lots[i]:g}), not a whole number of lots"
        f"{f' ({n} such trades)' if n > 1 else ''}, but the broker trades whole shares "
        "(fractional=False) and would reject every such order. Plan whole shares with "
        "OptimalRebalancer(integer='round') or IntegerRebalancer (or "
        "RebalanceConfig(fractional=False) for naive/band), or use a fractional broker "
        "(SimulatedBroker(fractional=True))",
        asset=str(s.assets[i]), field="trade")


def record_outcomes(rebalances: list[dict[str, Any]], orders: list[Any]) -> None:
    """Add the outcome counts of each rebalance's orders (matched by tag) to its record.

    Keys ``n_filled``, ``n_partial``, ``n_rejected``, ``n_cancelled``, ``n_open``
    (see :func:`rebalopt.backtest.result.order_outcomes`); called once at the end
    of a run, so the bar loop pays nothing for it.
    """
    outcomes = order_outcomes(orders)
    for rec in rebalances:
        counts = outcomes.get(rec["rebalance"])
        rec.update(counts if counts is not None else
                   {"n_filled": 0, "n_partial": 0, "n_rejected": 0, "n_cancelled": 0,
                    "n_open": 0})


class Strategy(ABC):
    """Base strategy (the seed's interface).

    ``targets`` may hold the latest target weights in feed asset order; the
    engine then reports the realized tracking error of the held weights to them.
    """

    targets: FloatArray | None = None

    def on_start(self, broker: Any) -> None:
        """Called once before the first bar."""

    @abstractmethod
    def on_data(self, timestamp: Any, data: BarData, context: dict[str, Any],
                broker: Any) -> None:
        """Called on every bar with the data known at its close."""

    def on_end(self, broker: Any) -> None:
        """Called once after the last bar."""


class PortfolioStrategy(Strategy):
    """Collect returns, call ``optimize`` on a schedule, hand targets to a rebalancer.

    Parameters
    ----------
    rebalancer
        Any object with ``plan(state, targets) -> RebalancePlan`` (naive, band,
        optimal), or, failing that, the seed's ``execute(target_weights, data, broker)``.
    optimizer
        ``optimize(returns, data, context, broker) -> weights`` (or ``None`` to
        skip); when omitted, subclasses override :meth:`optimize`.
    lookback
        Number of returns (bars) passed to ``optimize``.
    schedule
        ``"month_end"`` (the last bar of each month in the feed's calendar: the
        calendar is known in advance, prices are not), ``"month_start"``, or an
        int ``N`` for every ``N`` bars after the warm-up.
    warmup
        First bar index that may rebalance (default ``lookback``).
    price_field
        Field whose returns are computed (``"close"``, or a signal such as ``"adj_close"``).
    on_error
        ``"raise"`` or ``"hold"``: on a failed rebalance (bad targets,
        infeasible, solver failure, fractional trades for a whole-share broker,
        see :func:`check_whole_lots`) hold the book, log a warning and count it.
    pending
        ``"cancel"`` cancels open orders before submitting the new plan (the
        plan is made from true holdings); ``"account"`` counts open orders as
        traded. Default: the rebalancer's ``config.pending`` when it has one, else
        ``"cancel"``.
    replan
        Receding horizon: between scheduled dates, plan again every ``replan`` bars
        towards the latest targets (``optimize`` is not called) and submit the plan's
        orders; ``None`` (default) trades on scheduled dates only. The decision
        frequency is then separate from the target frequency: with a
        :class:`~rebalopt.rebalance.multiperiod.MultiPeriodRebalancer` and
        ``replan=1`` the schedule is re-planned every bar and its first period traded.
        With ``pending="cancel"`` what the broker left unfilled (a participation cap)
        is cancelled and the next plan, made from the true holdings, carries it.

    Notes
    -----
    ``rebalances`` holds one record per scheduled rebalance; after the run each
    also counts what became of its orders (``n_filled``, ``n_partial``,
    ``n_rejected``, ``n_cancelled``, ``n_open``, matched by the order tag).
    Re-plans between scheduled dates are recorded there too, with ``"kind":
    "replan"`` (scheduled ones: ``"target"``).
    """

    def __init__(
        self,
        rebalancer: Any,
        *,
        optimizer: Optimizer | None = None,
        lookback: int = 60,
        schedule: int | Literal["month_end", "month_start"] = "month_end",
        warmup: int | None = None,
        price_field: str = "close",
        on_error: Literal["raise", "hold"] = "raise",
        pending: Literal["cancel", "account"] | None = None,
        replan: int | None = None,
    ) -> None:
        if lookback < 1:
            raise InputError(f"must be >= 1, got {lookback}", field="lookback")
        if isinstance(schedule, str):
            if schedule not in ("month_end", "month_start"):
                raise InputError(f"must be 'month_end', 'month_start' or an int, got {schedule!r}",
                                 field="schedule")
        elif int(schedule) < 1:
            raise InputError(f"must be >= 1, got {schedule}", field="schedule")
        if on_error not in ("raise", "hold"):
            raise InputError(f"must be 'raise' or 'hold', got {on_error!r}", field="on_error")
        if replan is not None and (isinstance(replan, bool) or int(replan) != replan
                                   or int(replan) < 1):
            raise InputError(f"must be None or an int >= 1, got {replan!r}", field="replan")
        if pending is None:
            pending = getattr(getattr(rebalancer, "config", None), "pending", "cancel")
        if pending not in ("cancel", "account"):
            raise InputError(f"must be 'cancel' or 'account', got {pending!r}", field="pending")
        self.rebalancer = rebalancer
        self.optimizer = optimizer
        self.lookback = int(lookback)
        self.schedule = schedule
        self.warmup = self.lookback if warmup is None else int(warmup)
        self.price_field = price_field
        self.on_error = on_error
        self.pending = pending
        self.replan = None if replan is None else int(replan)
        self.rebalances: list[dict[str, Any]] = []
        self.targets = None
        self._last_bar: int | None = None
        self._last_weights: pd.Series | None = None

    # ------------------------------------------------------------------ hooks
    def optimize(self, returns: pd.DataFrame, data: BarData, context: dict[str, Any],
                 broker: Any) -> Weights | None:
        """Target weights from ``returns`` (bars x assets priced now); override or pass ``optimizer``."""
        if self.optimizer is None:
            raise NotImplementedError("pass optimizer= or override optimize()")
        return self.optimizer(returns, data, context, broker)

    def on_start(self, broker: Any) -> None:
        feed = broker.feed
        self._feed = feed
        self._prices = feed.field(self.price_field)
        self._due = self._schedule(feed.dates)
        self.rebalances = []
        self.targets = None
        self._last_bar = None
        self._last_weights = None

    def _schedule(self, dates: pd.DatetimeIndex) -> np.ndarray:
        n = len(dates)
        due = np.zeros(n, dtype=bool)
        if isinstance(self.schedule, str):
            month = dates.year.to_numpy() * 12 + dates.month.to_numpy()
            if self.schedule == "month_end":
                due[:-1] = month[1:] != month[:-1]
            else:
                due[0] = True
                due[1:] = month[1:] != month[:-1]
        else:
            start = max(self.warmup, 0)
            due[start::int(self.schedule)] = True
        due[: self.warmup] = False
        return due

    def returns(self, t: int) -> pd.DataFrame:
        """Returns of the last ``lookback`` bars up to and including bar ``t`` (no later),
        for the assets priced at ``t``; NaN across missing bars."""
        lo = max(t - self.lookback, 0)
        p = self._prices[lo: t + 1]
        cols = np.flatnonzero(self._feed.available[t] & np.isfinite(self._prices[t]))
        p = p[:, cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = p[1:] / p[:-1] - 1.0
        return pd.DataFrame(r, index=self._feed.dates[lo + 1: t + 1],
                            columns=self._feed.assets[cols])

    def _to_series(self, weights: Weights) -> pd.Series:
        if isinstance(weights, np.ndarray):
            if weights.shape != (self._feed.n_assets,):
                raise InputError(f"weight array of shape {weights.shape} does not match the "
                                 f"feed's {self._feed.n_assets} assets", field="target weight")
            return pd.Series(weights, index=self._feed.assets, dtype=float)
        if isinstance(weights, pd.Series):
            return weights.astype(float)
        if isinstance(weights, Mapping):
            return pd.Series(dict(weights), dtype=float)
        # an optimizer's own object (skfolio estimator or portfolio, riskfolio frame,
        # PyPortfolioOpt optimizer): weights matched by the names it carries
        from rebalopt.adapters.weights import to_target_weights

        return to_target_weights(weights)

    def _hold(self, rec: dict[str, Any], exc: Exception, k: int, timestamp: Any) -> None:
        """Record a held rebalance (``on_error="hold"``), or re-raise under ``"raise"``."""
        if self.on_error == "raise":
            raise exc
        rec["status"] = "held"
        rec["error"] = f"{type(exc).__name__}: {exc}"
        log.warning("rebalance %d on %s held: %s", k, timestamp, rec["error"])

    def on_data(self, timestamp: Any, data: BarData, context: dict[str, Any],
                broker: Any) -> None:
        t = data.t
        if not self._due[t]:
            if (self.replan is not None and self._last_weights is not None
                    and self._last_bar is not None and (t - self._last_bar) % self.replan == 0):
                self._decide(t, timestamp, data, context, broker, "replan")
            return
        self._decide(t, timestamp, data, context, broker, "target")

    def _decide(self, t: int, timestamp: Any, data: BarData, context: dict[str, Any],
                broker: Any, kind: str) -> None:
        """One decision: new targets from ``optimize`` (``"target"``) or the latest ones
        again (``"replan"``), planned from the broker's book and submitted."""
        k = len(self.rebalances)
        rec: dict[str, Any] = {"rebalance": k, "bar": t, "date": timestamp, "status": "ok",
                               "kind": kind, "n_orders": 0, "planned_turnover": 0.0,
                               "planned_cost": 0.0, "equity": broker.get_account_value(),
                               "error": ""}
        self.rebalances.append(rec)
        w = self._last_weights
        try:
            if kind == "target":
                weights = self.optimize(self.returns(t), data, context, broker)
                if weights is None:
                    rec["status"] = "skipped"
                    return
                w = self._to_series(weights)
                self.targets = w.reindex(self._feed.assets).fillna(0.0).to_numpy(float)
                self._last_weights, self._last_bar = w, t
            if w is None:
                return
            if hasattr(self.rebalancer, "plan") and hasattr(broker, "portfolio_state"):
                if self.pending == "cancel" and kind == "replan":
                    broker.cancel_all_orders()  # the unfilled remainder is carried by this plan
                state = broker.portfolio_state(include_pending=self.pending == "account")
                plan = self.rebalancer.plan(state, w)
                check_whole_lots(plan, broker)
                rec["planned_turnover"] = plan.turnover
                rec["planned_cost"] = plan.total_cost
                tickets = plan.orders()
            else:
                plan, tickets = None, None
        except HOLDABLE as exc:
            self._hold(rec, exc, k, timestamp)
            return
        if tickets is None:  # a rebalancer with only the seed's execute()
            try:  # it plans before it sends anything: an error sent nothing
                submitted = self.rebalancer.execute(w.to_dict(), data, broker)
            except HOLDABLE as exc:
                self._hold(rec, exc, k, timestamp)
                return
        else:
            if self.pending == "cancel":
                broker.cancel_all_orders()
            submitted = [broker.submit_order(o.asset, o.quantity, o.side) for o in tickets]
        for o in submitted or []:
            if hasattr(o, "tag"):
                o.tag = k
        rec["n_orders"] = len(submitted or [])

    def on_end(self, broker: Any) -> None:
        """Record what became of each rebalance's orders (filled, rejected...)."""
        record_outcomes(self.rebalances, getattr(broker, "orders", []))

    @property
    def n_held(self) -> int:
        """Rebalances held because of an error (``on_error="hold"``)."""
        return sum(r["status"] == "held" for r in self.rebalances)
