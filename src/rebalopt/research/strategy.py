"""ScheduledTargets: a backtest strategy that reads precomputed targets.

Every run of a comparison uses this strategy with the same target frame, so
every run sees the same targets on the same dates; runs differ only in the
rebalancer and in how often it is allowed to trade (``every``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.backtest import Strategy
from rebalopt.backtest.strategy import HOLDABLE, check_whole_lots, record_outcomes
from rebalopt.errors import InputError
from rebalopt.rebalance.naive import round_to_lots
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.research.paper import paper_weights
from rebalopt.research.targets import RiskSchedule

__all__ = ["RoundedRebalancer", "ScheduledTargets"]

log = logging.getLogger(__name__)


class RoundedRebalancer:
    """Round another rebalancer's trades to whole lots (for a whole-share broker).

    The optimal rebalancer's continuous program returns fractional shares; this
    wrapper rounds each trade to the nearest multiple of the state's lot size
    (whole shares by default) and never sells a long position past zero. It is
    the plain ``round`` step without repair: at the sizes of a research backtest
    (positions of thousands of shares) the rounding moves weights by well under
    a basis point. Attributes of the wrapped rebalancer (``risk_aversion``,
    ``risk``, ``compilations``...) are read and written through.

    Parameters
    ----------
    rebalancer
        Anything with ``plan(state, targets) -> RebalancePlan``.
    """

    def __init__(self, rebalancer: Any) -> None:
        object.__setattr__(self, "inner", rebalancer)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "inner"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)

    def plan(self, state: Any, targets: Any) -> RebalancePlan:
        """The wrapped plan with trades rounded to lots (costs re-evaluated on them)."""
        p = self.inner.plan(state, targets)
        shares = round_to_lots(p.trades, state.lot_sizes)
        longs = state.holdings > 0
        shares = np.where(longs, np.maximum(shares, -state.holdings), shares)
        shares[shares == 0] = 0.0
        costs = getattr(self.inner, "costs", [])
        info = dict(p.info, rounded=True)
        return RebalancePlan.from_trades(state, p.targets, shares, costs, p.method, info)


class ScheduledTargets(Strategy):
    """Hand precomputed targets to a rebalancer on their decision dates.

    On decision date ``k`` (0, 1, 2, ... in the target frame's order) the strategy
    sets ``targets`` (so the engine's own tracking figures use them) and:

    * ``k == 0``: funds the book with ``initial`` (every run of a comparison makes
      this same first trade, from cash into the first targets; its cost is
      reported apart, see :func:`rebalopt.research.compare`);
    * ``k % every == 0``: asks ``rebalancer.plan(state, targets)`` and submits the
      plan's orders (sells first), tagged ``k``;
    * otherwise: nothing (a lower-frequency rebalancer sits this date out).

    With ``replan`` (an int ``k``), the rebalancer also decides every ``k`` bars
    between decision dates (a policy that trades *between* target dates: TWAP
    slices, daily bands, a daily or multi-period re-plan). There its target is the
    paper portfolio's weights at that bar (:func:`~rebalopt.research.paper_weights`:
    the targets drifted with prices, the very book the tracking error is measured
    against), open orders are cancelled first (the next plan carries what was not
    filled), and its orders are tagged ``k + j / 10_000`` on the ``j``-th bar after
    decision date ``k``. A rebalancer with a ``step`` attribute is told ``j`` before
    each plan (0 on the decision date).

    Parameters
    ----------
    targets
        ``decision dates x tickers`` target weights (fractions of equity); every
        date must be a bar of the feed.
    rebalancer
        Anything answering ``plan(state, targets) -> RebalancePlan``.
    every
        Trade on every ``every``-th decision date (1: all of them).
    initial
        Rebalancer used for the first (funding) trade; default ``rebalancer``.
    risk
        A :class:`RiskSchedule` shared with the rebalancer; set to each decision
        date before planning.
    on_error
        ``"raise"`` or ``"hold"`` (hold the book, log a warning, record the error).
        A plan of fractional trades for a whole-share broker is such an error
        (:func:`~rebalopt.backtest.strategy.check_whole_lots`): wrap the
        rebalancer in :class:`RoundedRebalancer` or plan whole shares.
    replan
        Decide again every ``replan`` bars between decision dates (see above);
        ``None`` (default): decision dates only.

    Notes
    -----
    After the run each record of ``rebalances`` also counts what became of its
    orders: ``n_filled``, ``n_partial``, ``n_rejected``, ``n_cancelled``, ``n_open``.
    """

    def __init__(self, targets: pd.DataFrame, rebalancer: Any, *, every: int = 1,
                 initial: Any | None = None, risk: RiskSchedule | None = None,
                 on_error: str = "raise", replan: int | None = None) -> None:
        if int(every) < 1:
            raise InputError(f"must be >= 1, got {every}", field="every")
        if on_error not in ("raise", "hold"):
            raise InputError(f"must be 'raise' or 'hold', got {on_error!r}", field="on_error")
        if replan is not None and (isinstance(replan, bool) or int(replan) != replan
                                   or int(replan) < 1):
            raise InputError(f"must be None or an int >= 1, got {replan!r}", field="replan")
        self.replan = None if replan is None else int(replan)
        self.frame = targets
        self.rebalancer = rebalancer
        self.every = int(every)
        self.initial = initial if initial is not None else rebalancer
        self.risk = risk
        self.on_error = on_error
        self.rebalances: list[dict[str, Any]] = []
        self.seen: list[tuple[Any, np.ndarray]] = []
        """(date, targets in feed order) of every decision date, as the strategy saw them."""
        self.targets = None

    def on_start(self, broker: Any) -> None:
        feed = broker.feed
        cols = [str(c) for c in self.frame.columns]
        unknown = [c for c in cols if c not in set(feed.assets)]
        if unknown:
            raise InputError("target ticker is not in the feed", asset=unknown[0],
                             field="targets")
        pos = feed.dates.get_indexer(pd.DatetimeIndex(self.frame.index))
        if (pos < 0).any():
            bad = self.frame.index[pos < 0][0]
            raise InputError(f"target date {pd.Timestamp(bad).date()} is not a bar of the feed",
                             field="targets")
        w = self.frame.copy()
        w.columns = cols
        self._W = w.reindex(columns=feed.assets).fillna(0.0).to_numpy(float)
        self._k_of_bar = {int(t): k for k, t in enumerate(pos)}
        self._pos = np.asarray(pos, dtype=int)
        self._paper = (paper_weights(feed, self.frame).to_numpy(float)
                       if self.replan is not None else None)
        self.rebalances = []
        self.seen = []
        self.targets = None

    def on_data(self, timestamp: Any, data: Any, context: dict[str, Any], broker: Any) -> None:
        t = int(data.t)
        k = self._k_of_bar.get(t)
        if k is None:
            if self._paper is None:
                return
            k = int(np.searchsorted(self._pos, t, side="right")) - 1
            j = t - int(self._pos[k]) if k >= 0 else 0
            if k < 0 or j % self.replan != 0 or (k % self.every != 0 and k != 0):
                return
            w = np.nan_to_num(self._paper[t])
            self._decide(k + j / 10_000, j, w, timestamp, t, broker, self.rebalancer)
            return
        w = self._W[k]
        self.targets = w.copy()
        self.seen.append((timestamp, w.copy()))
        if k != 0 and k % self.every != 0:
            return
        self._decide(k, 0, w, timestamp, t, broker,
                     self.initial if k == 0 else self.rebalancer)

    def _decide(self, tag: float, step: int, w: np.ndarray, timestamp: Any, t: int,
                broker: Any, rebalancer: Any) -> None:
        k = tag
        rec: dict[str, Any] = {"rebalance": k, "bar": t, "date": timestamp,
                               "status": "ok", "n_orders": 0, "planned_turnover": 0.0,
                               "planned_cost": 0.0, "equity": broker.get_account_value(),
                               "error": ""}
        self.rebalances.append(rec)
        if hasattr(rebalancer, "step"):
            rebalancer.step = step
        nz = w != 0
        series = pd.Series(w[nz], index=broker.feed.assets[nz])
        try:
            if self.risk is not None and step == 0 and tag == int(tag):
                self.risk.set_date(timestamp)
            broker.cancel_all_orders()
            state = broker.portfolio_state()
            plan = rebalancer.plan(state, series)
            check_whole_lots(plan, broker)
        except HOLDABLE as exc:
            if self.on_error == "raise":
                raise
            rec["status"] = "held"
            rec["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("rebalance %s on %s held: %s", k, timestamp, rec["error"])
            return
        rec["planned_turnover"] = plan.turnover
        rec["planned_cost"] = plan.total_cost
        taxes = getattr(broker, "taxes", None)
        if taxes is not None:  # sell the lots the plan chose (a tax-aware plan names them)
            taxes.follow(plan)
        n = 0
        for o in plan.orders():
            order = broker.submit_order(o.asset, o.quantity, o.side)
            order.tag = k
            n += 1
        rec["n_orders"] = n

    def on_end(self, broker: Any) -> None:
        """Record what became of each rebalance's orders (filled, rejected...)."""
        record_outcomes(self.rebalances, getattr(broker, "orders", []))
