"""Engine: the clock of the backtest (the seed's per-bar event loop).

Per bar ``t``:

1. the broker moves to ``t`` (marks = last known closes);
2. pending orders are processed: at ``open[t]`` in NEXT_BAR mode, at
   ``close[t]`` in SAME_BAR mode (orders carried over from earlier bars);
3. position rules, if any, are evaluated;
4. ``strategy.on_data(timestamp, data, context, broker)`` sees bar ``t``
   (closes of ``t``, ADV and volatility known before ``t``);
5. SAME_BAR: the new orders fill at ``close[t]``, the price the strategy saw;
   NEXT_BAR: they wait for step 2 of bar ``t+1`` (its open), so an order
   decided on bar ``t`` can never fill at a bar-``t`` price;
6. equity and cash are recorded, with the realized tracking error to the
   strategy's latest targets.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from enum import Enum
from typing import Any, Protocol

import numpy as np

from rebalopt._threads import limited_blas
from rebalopt.backtest.bar import BarData
from rebalopt.backtest.broker import SimulatedBroker
from rebalopt.backtest.feed import DataFeed
from rebalopt.backtest.result import BacktestResult
from rebalopt.backtest.strategy import Strategy

__all__ = ["Engine", "ExecutionMode", "PositionRule"]


class ExecutionMode(str, Enum):
    """When orders decided on a bar fill."""

    SAME_BAR = "same_bar"
    NEXT_BAR = "next_bar"


class PositionRule(Protocol):
    """Risk rule run each bar before the strategy (stops, trailing exits...)."""

    def evaluate(self, timestamp: Any, data: BarData, broker: SimulatedBroker) -> None: ...


class Engine:
    """Run ``strategy`` over ``feed`` with ``broker``.

    Parameters
    ----------
    feed
        The :class:`DataFeed`.
    strategy
        A :class:`Strategy` (or anything with ``on_start``/``on_data``/``on_end``).
    broker
        The :class:`SimulatedBroker`; :meth:`run` resets it.
    execution_mode
        ``SAME_BAR`` (fill at the close the strategy saw) or ``NEXT_BAR`` (fill
        at the next bar's open).
    rules
        Position rules evaluated each bar after pending orders, before the strategy.
    record_holdings
        Keep the ``T x N`` holdings (shares after each bar) in the result.
    progress
        Show a tqdm progress bar; ``None`` shows it on long runs (over 250,000
        asset-bars) when stderr is a terminal.
    periods_per_year
        Bars per year for annualized metrics.
    """

    def __init__(
        self,
        feed: DataFeed,
        strategy: Strategy,
        broker: SimulatedBroker,
        execution_mode: ExecutionMode | str = ExecutionMode.SAME_BAR,
        *,
        rules: Sequence[PositionRule] = (),
        record_holdings: bool = True,
        progress: bool | None = None,
        periods_per_year: float = 252.0,
    ) -> None:
        self.feed = feed
        self.strategy = strategy
        self.broker = broker
        self.execution_mode = ExecutionMode(execution_mode)
        self.rules = list(rules)
        self.record_holdings = record_holdings
        self.progress = progress
        self.periods_per_year = periods_per_year

    def _bars(self) -> Any:
        T = self.feed.n_bars
        show = self.progress
        if show is None:
            show = T * self.feed.n_assets > 250_000 and sys.stderr.isatty()
        if show:
            from tqdm.auto import tqdm

            return tqdm(range(T), desc="backtest", unit="bar")
        return range(T)

    def run(self) -> BacktestResult:
        """Run the whole feed and return a :class:`BacktestResult`.

        The loop runs with one BLAS thread (``REBALOPT_BLAS_THREADS``; see
        ``rebalopt._threads``): its many small linear-algebra calls are faster so.
        """
        with limited_blas():
            return self._run()

    def _run(self) -> BacktestResult:
        feed, broker, strategy = self.feed, self.broker, self.strategy
        t0 = time.perf_counter()
        broker.bind(feed)
        T, N = feed.n_bars, feed.n_assets
        dates = feed.dates
        stamps = list(dates)  # the bars' Timestamps, made once
        same_bar = self.execution_mode is ExecutionMode.SAME_BAR
        fill_rows = feed.close if same_bar else feed.open
        adv, vol = broker.adv_table, broker.vol_table
        equity = np.empty(T)
        cash = np.empty(T)
        active = np.full(T, np.nan)
        gap = np.full(T, np.nan)
        holdings = np.empty((T, N)) if self.record_holdings else None
        mv = np.empty(N)
        prev_marks = np.zeros(N)
        prev_equity = broker.initial_cash
        context: dict[str, Any] = {"bar_index": 0, "execution_mode": self.execution_mode,
                                   "feed": feed}
        strategy.on_start(broker)
        rules = self.rules
        for t in self._bars():
            broker._advance(t)
            row = fill_rows[t]
            broker.process_orders(row)
            data = BarData(feed, t, adv[t], vol[t])
            ts = stamps[t]
            for rule in rules:
                rule.evaluate(ts, data, broker)
            context["bar_index"] = t
            targets = strategy.targets  # targets in force during this bar's move
            strategy.on_data(ts, data, context, broker)
            if same_bar:
                broker.process_orders(row)
            marks = broker.marks
            np.multiply(broker.holdings, marks, out=mv)
            if not broker._unit_mult:
                mv *= broker.multipliers
            pv = float(mv.sum())
            eq = broker.cash + pv
            equity[t] = eq
            cash[t] = broker.cash
            if holdings is not None:
                holdings[t] = broker.holdings
            if targets is not None:
                with np.errstate(invalid="ignore", divide="ignore"):
                    r = np.where(prev_marks > 0, marks / prev_marks - 1.0, 0.0)
                active[t] = (eq / prev_equity - 1.0) - float(targets @ r)
                new_targets = strategy.targets
                gap[t] = 0.5 * float(np.abs(mv / eq - new_targets).sum())
            elif strategy.targets is not None:
                gap[t] = 0.5 * float(np.abs(mv / eq - strategy.targets).sum())
            prev_marks[:] = marks
            prev_equity = eq
        strategy.on_end(broker)
        taxes = None if broker.taxes is None else broker.taxes.report(
            dates, equity, broker.marks, feed.assets, broker.multipliers,
            self.periods_per_year, broker.initial_cash)
        return BacktestResult(
            dates=dates, assets=feed.assets, equity=equity, cash=cash, fills=list(broker.fills),
            orders=list(broker.orders), cost_names=list(broker.cost_names),
            initial_cash=broker.initial_cash, execution_mode=self.execution_mode.value,
            active_returns=active, weight_gap=gap, holdings=holdings,
            rebalances=list(getattr(strategy, "rebalances", [])),
            periods_per_year=self.periods_per_year, run_seconds=time.perf_counter() - t0,
            taxes=taxes,
        )
