"""Naive vs tolerance-band vs optimal rebalancing through the same backtest.

:func:`compare` runs every rebalancer on the same feed, with the same
precomputed targets on the same dates and the same cost models charged by the
same simulated broker, and returns one tidy row per run. :func:`frontier`
sweeps the optimal rebalancer's risk aversion, re-solving a program compiled
once.

Fair set-up (the same for every run):

* The book starts in cash. On the first decision date every run makes the same
  funding trade (naive, whole shares, a cash buffer for its own cost) into the
  first targets; its cost is reported apart (``initial_cost_bps``) and left out
  of the rebalancing costs, and the evaluation window starts after it.
* Every policy decides on the decision dates only (bands are checked there,
  monthly for monthly targets, not daily); orders fill at the decision date's
  close (``SAME_BAR``), charged by the broker with exactly the cost models given.
* A margin account, so a naive rebalancer that trades to targets summing to
  one can pay its costs by borrowing a few basis points of equity instead of
  having buys rejected (which would be a failure of the test bench, not of the
  rebalancer). The optimal rebalancer keeps its default cash floor (no borrowing).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rebalopt.backtest import BacktestResult, DataFeed, Engine, SimulatedBroker
from rebalopt.costs import CostModel
from rebalopt.errors import InputError
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig
from rebalopt.rebalance.band import BandRebalancer
from rebalopt.rebalance.integer import IntegerRebalancer
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.research.cash import InvestCash
from rebalopt.research.disclose import describe, run_constraints, run_costs
from rebalopt.research.paper import paper_returns, paper_weights, tracking_error
from rebalopt.research.strategy import RoundedRebalancer, ScheduledTargets
from rebalopt.research.targets import RiskSchedule

__all__ = [
    "Comparison",
    "FundingRebalancer",
    "Run",
    "band_runs",
    "compare",
    "default_runs",
    "frontier",
    "naive_runs",
    "optimal_runs",
]

Kind = Literal["naive", "band", "optimal", "custom", "twap", "band daily", "optimal daily",
               "multiperiod"]

DEFAULT_RISK_AVERSIONS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
"""Risk aversions swept by default (dimensionless ``gamma``; horizon one month)."""

DEFAULT_ABS_WIDTHS = (0.0025, 0.005, 0.01, 0.02)
"""Absolute band half-widths swept by default (weight units)."""

DEFAULT_REL_WIDTHS = (0.1, 0.25, 0.5)
"""Relative band half-widths swept by default (fractions of the target weight)."""


@dataclass
class Run:
    """One rebalancing policy to run.

    Parameters
    ----------
    name
        Unique label (row of the result frame).
    rebalancer
        Anything with ``plan(state, targets)``.
    every
        Trade on every ``every``-th decision date.
    kind
        ``"naive"``, ``"band"``, ``"optimal"`` or ``"custom"`` (groups the plots).
    knob
        The run's setting for the plots: band width, risk aversion, or NaN.
    risk_aversion
        Set on the rebalancer (or on an ``IntegerRebalancer``'s ``relaxation``)
        before the run, so optimal runs share one compiled program; ``None``
        leaves it alone.
    replan
        Also decide every ``replan`` bars between decision dates (policies that
        trade between target dates, :mod:`rebalopt.research.baselines`); ``None``:
        decision dates only.
    """

    name: str
    rebalancer: Any
    every: int = 1
    kind: Kind = "custom"
    knob: float = float("nan")
    risk_aversion: float | None = None
    replan: int | None = None


def _exact(costs: Sequence[CostModel], fractional: bool) -> RebalanceConfig:
    return RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0, fractional=fractional)


@dataclass
class FundingRebalancer:
    """Naive trade from cash into the targets, keeping back its own cost in cash.

    Plans naively once to learn the cost ``c`` of buying the targets, then again
    with targets scaled by ``1 - c / equity`` so the book ends close to fully
    invested with cash near zero after costs.
    """

    costs: list[CostModel] = field(default_factory=list)
    fractional: bool = False
    method = "funding"

    def plan(self, state: Any, targets: Any) -> Any:
        first = NaiveRebalancer(config=_exact(self.costs, self.fractional), costs=self.costs)
        p = first.plan(state, targets)
        buffer = min(max(p.total_cost / state.equity, 0.0), 0.5)
        cfg = RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0,
                              fractional=self.fractional, cash_buffer=buffer)
        return NaiveRebalancer(config=cfg, costs=self.costs).plan(state, targets)


def naive_runs(costs: Sequence[CostModel], every: Sequence[int] = (1, 2, 3),
               fractional: bool = False) -> list[Run]:
    """Naive periodic rebalancing, trading every difference every ``k`` decision dates."""
    out = []
    for k in every:
        reb = NaiveRebalancer(config=_exact(costs, fractional), costs=list(costs))
        label = "monthly" if k == 1 else f"every {k}"
        out.append(Run(f"naive {label}", reb, every=int(k), kind="naive", knob=float(k)))
    return out


def band_runs(costs: Sequence[CostModel], absolute: Sequence[float] = DEFAULT_ABS_WIDTHS,
              relative: Sequence[float] = DEFAULT_REL_WIDTHS,
              to: Sequence[str] = ("target", "edge"), fractional: bool = False,
              invest_cash: bool = True) -> list[Run]:
    """Tolerance bands of each width, absolute and relative, trading to target and to edge.

    With ``invest_cash`` (the default) each band re-invests the cash it leaves idle
    into the assets below their targets (:class:`~rebalopt.research.cash.InvestCash`),
    so the baseline stays fully invested; the report shows the cash either way.
    """
    out = []
    cfg = RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0, fractional=fractional)
    for rel, widths in ((False, absolute), (True, relative)):
        for wdt in widths:
            for dest in to:
                reb: Any = BandRebalancer(width=float(wdt), relative=rel,
                                          to=dest,  # type: ignore[arg-type]
                                          config=cfg, costs=list(costs))
                if invest_cash:
                    reb = InvestCash(reb)
                label = f"{wdt:.0%}" if rel else f"{wdt:.2%}"
                out.append(Run(f"band {'rel' if rel else 'abs'} {label} to {dest}", reb,
                               kind="band", knob=float(wdt)))
    return out


def optimal_runs(costs: Sequence[CostModel], risk: Any,
                 risk_aversions: Sequence[float] = DEFAULT_RISK_AVERSIONS,
                 rebalancer: OptimalRebalancer | None = None,
                 horizon: float = 1.0 / 12.0, fractional: bool = False,
                 whole_shares: Literal["integer", "round"] = "integer") -> list[Run]:
    """One optimal run per risk aversion, all sharing ONE rebalancer (compiled once).

    ``risk`` is the tracking-error model (a :class:`RiskSchedule` re-estimated on
    each decision date, or any fixed risk model); ``rebalancer`` overrides the
    default ``OptimalRebalancer(risk=risk, costs=copies of costs, horizon=horizon)``.
    Unless ``fractional``, whole shares come from the product's integer stage
    (``whole_shares="integer"``, the default: :class:`IntegerRebalancer` in
    ``round`` mode, which rounds, repairs every hard constraint and improves, with
    the full cost, commission minimum included, charged to cash), or, as a
    baseline, from plain rounding of the continuous trades (``"round"``:
    :class:`~rebalopt.research.strategy.RoundedRebalancer`, no repair; it can
    borrow a few dollars of cash).
    """
    reb: Any = rebalancer if rebalancer is not None else OptimalRebalancer(
        risk=risk, costs=copy.deepcopy(list(costs)), horizon=horizon)
    if not fractional:
        if whole_shares == "integer":
            reb = IntegerRebalancer(reb)
        elif whole_shares == "round":
            reb = RoundedRebalancer(reb)
        else:
            raise InputError(f"must be 'integer' or 'round', got {whole_shares!r}",
                             field="whole_shares")
    return [Run(f"optimal γ={g:g}", reb, kind="optimal", knob=float(g), risk_aversion=float(g))
            for g in risk_aversions]


def default_runs(costs: Sequence[CostModel], risk: Any = None,
                 risk_aversions: Sequence[float] = DEFAULT_RISK_AVERSIONS,
                 fractional: bool = False) -> list[Run]:
    """Naive monthly / every 2 / every 3, every default band, and optimal (when ``risk`` is given)."""
    runs = naive_runs(costs, fractional=fractional) + band_runs(costs, fractional=fractional)
    if risk is not None:
        runs += optimal_runs(costs, risk, risk_aversions, fractional=fractional)
    return runs


@dataclass
class Comparison:
    """What :func:`compare` produced.

    Attributes
    ----------
    table
        One row per run (see :func:`compare` for the columns and units).
    results
        Backtest result per run name.
    runs
        The runs, in order.
    paper
        Paper-portfolio bar returns (NaN up to the first decision date).
    targets
        The target frame every run saw.
    feed
        The data.
    start
        Bar index of the first decision date (the funding trade).
    seen
        Per run, the ``(date, targets)`` pairs its strategy was handed.
    settings
        Initial cash, account type, cost model names.
    """

    table: pd.DataFrame
    results: dict[str, BacktestResult]
    runs: list[Run]
    paper: pd.Series
    targets: pd.DataFrame
    feed: DataFeed
    start: int
    seen: dict[str, list[tuple[Any, np.ndarray]]]
    settings: dict[str, Any]

    def paper_equity(self) -> pd.Series:
        """Paper-portfolio equity, starting from the first run's equity after funding."""
        r = self.paper.fillna(0.0).to_numpy()
        first = next(iter(self.results.values()))
        base = first.equity[self.start]
        eq = base * np.cumprod(1.0 + r)
        eq[: self.start] = np.nan
        return pd.Series(eq, index=self.feed.dates, name="paper")

    def paper_weights(self) -> pd.DataFrame:
        """Paper weights after each bar (``dates x assets``)."""
        return paper_weights(self.feed, self.targets)

    def held_weights(self, name: str) -> pd.DataFrame:
        """Weights a run held after each bar's close (``dates x assets``)."""
        res = self.results[name]
        if res.holdings is None:
            raise InputError("the run was not recorded with holdings", field="record_holdings")
        marks = pd.DataFrame(self.feed.close).ffill().fillna(0.0).to_numpy()
        w = res.holdings * marks / res.equity[:, None]
        return pd.DataFrame(w, index=self.feed.dates, columns=self.feed.assets)

    def rebalance_turnover(self) -> pd.DataFrame:
        """Realized one-way turnover per decision date (rows) and run (columns), fraction."""
        cols = {}
        for name, res in self.results.items():
            df = res.rebalances_frame()
            df = df[df["rebalance"] > 0]
            cols[name] = pd.Series(df["realized_turnover"].to_numpy(),
                                   index=pd.DatetimeIndex(df["date"]))
        out = pd.DataFrame(cols).reindex(self.targets.index[1:]).fillna(0.0)
        out.index.name = "date"
        return out


def _metrics(run: Run, res: BacktestResult, paper: pd.Series, start: int,
             ppy: float, seconds: float) -> dict[str, Any]:
    eq = res.equity
    T = len(eq)
    years = (T - 1 - start) / ppy
    avg_eq = float(eq[start:].mean())
    per_model = dict.fromkeys(res.cost_names, 0.0)
    initial = 0.0
    traded = 0.0
    fills = 0
    hits = np.zeros(T)  # rebalancing costs charged per bar, currency
    for f in res.fills:
        c = sum(f.costs.values())
        if f.tag == 0:
            initial += c
            continue
        hits[f.bar] += c
        fills += 1
        traded += abs(f.quantity * f.price * f.multiplier)
        for k, v in f.costs.items():
            per_model[k] += v
    total = float(sum(per_model.values()))
    orders = sum(1 for o in res.orders if o.tag is not None and o.tag != 0)
    rets = res.returns.to_numpy()
    te = tracking_error(rets[start + 1:], paper.to_numpy()[start + 1:], ppy)
    # the same with each bar's rebalancing costs added back (the book's positions alone)
    gross = rets.copy()
    gross[1:] += hits[1:] / eq[:-1]
    te_gross = tracking_error(gross[start + 1:], paper.to_numpy()[start + 1:], ppy)
    net = (eq[-1] / eq[start]) ** (1.0 / years) - 1.0 if years > 0 else float("nan")
    recs = [r for r in res.rebalances if r["rebalance"] != 0]
    cash_w = res.cash[start:] / eq[start:]
    row: dict[str, Any] = {
        "run": run.name, "kind": run.kind, "knob": run.knob, "every": run.every,
        "tracking_error": te,
        "tracking_error_gross": te_gross,
        "cost_bps": 1e4 * total / avg_eq / years,
        **{f"cost_{k}_bps": 1e4 * v / avg_eq / years for k, v in per_model.items()},
        "cost": total,
        **{f"cost_{k}": v for k, v in per_model.items()},
        "initial_cost_bps": 1e4 * initial / res.initial_cash,
        "turnover": 0.5 * traded / avg_eq / years,
        "n_orders": orders,
        "n_fills": fills,
        "n_rebalances": sum(1 for r in recs if r["n_orders"] > 0),
        "n_held": sum(1 for r in recs if r["status"] == "held"),
        "net_return": net,
        "final_equity": float(eq[-1]),
        "max_drawdown": res.max_drawdown,
        "cash_avg": float(cash_w.mean()),
        "cash_max": float(cash_w.max()),
        "constraints": run_constraints(run.rebalancer),
        "planning_costs": run_costs(run.rebalancer),
        "seconds": seconds,
    }
    comp = getattr(_knob_holder(run.rebalancer), "compilations", None)
    if isinstance(comp, int):
        row["compilations"] = comp
    return row


def _knob_holder(rebalancer: Any) -> Any:
    """The object holding ``risk_aversion`` / ``risk``: the rebalancer itself, or the
    continuous relaxation of an ``IntegerRebalancer``."""
    return getattr(rebalancer, "relaxation", rebalancer)


def _as_feed(prices: DataFeed | pd.DataFrame) -> DataFeed:
    if isinstance(prices, DataFeed):
        return prices
    if isinstance(prices, pd.DataFrame):
        return DataFeed.from_wide(prices)
    raise InputError(f"expected a DataFeed or a wide price frame, got {type(prices).__name__}",
                     field="prices")


def compare(
    prices: DataFeed | pd.DataFrame,
    targets: pd.DataFrame,
    costs: Sequence[CostModel],
    runs: Sequence[Run] | None = None,
    *,
    initial_cash: float = 1e8,
    risk: Any = None,
    account: Literal["cash", "margin"] = "margin",
    fractional: bool = False,
    on_error: Literal["raise", "hold"] = "hold",
    record_holdings: bool = True,
    periods_per_year: float = 252.0,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
    participation: float | None = None,
    adv_window: int = 20,
    vol_window: int = 20,
    min_history: int = 5,
    max_leverage: float = 2.0,
) -> Comparison:
    """Run every policy through the same backtest and tabulate cost against tracking error.

    Parameters
    ----------
    prices
        A :class:`DataFeed` (volume needed for market impact), or a wide frame of
        closes.
    targets
        ``decision dates x tickers`` target weights (see
        :func:`~rebalopt.research.target_schedule`); every run sees these rows on
        these dates.
    costs
        Cost models the broker charges on every fill (and the rebalancers plan with).
    runs
        The policies; default :func:`default_runs` (``risk`` enables the optimal ones).
    initial_cash
        Starting book, currency.
    risk
        Tracking-error model for the default optimal runs (a :class:`RiskSchedule`
        or a fixed risk model).
    account
        Broker account type (module docstring explains the margin default).
    fractional
        Fractional shares at the broker and in the naive / band rebalancers.
    on_error
        ``"hold"`` keeps the book on a failed rebalance and counts it (``n_held``).
    record_holdings
        Keep per-bar holdings (needed by the drift heatmap).
    periods_per_year
        Bars per year for annualization.
    progress
        Called as ``progress(run_name, row)`` after each run. A tqdm bar over the
        runs is shown on stderr when it is a terminal (quiet otherwise).
    participation
        Broker participation cap, fraction of each bar's volume (``None``: no cap);
        the unfilled rest stays pending.
    adv_window, vol_window, min_history
        Bars in the broker's trailing ADV (shares/day) and daily-volatility windows,
        and the fewest observations before they are defined.
    max_leverage
        Margin accounts: gross exposure / equity allowed after a fill.

    Returns
    -------
    Comparison
        ``table`` has one row per run with, over the evaluation window (the bars
        after the first decision date, ``years`` long):

        * ``tracking_error``: realized tracking error to the target portfolio,
          annualized: the sample standard deviation of the daily differences
          between the run's equity return and the cost-free paper portfolio's
          return (the paper book holds exactly the targets after each decision
          date's close and drifts in between; see
          :mod:`rebalopt.research.paper`), times ``sqrt(periods_per_year)``.
        * ``tracking_error_gross``: the same with each bar's rebalancing costs added
          back to that bar's return: the part of the tracking error due to the
          positions alone (a cost paid on a bar is a return difference to the
          cost-free paper book on that bar, and at a large book it can be most of
          ``tracking_error``).
        * ``cost_bps`` and ``cost_<model>_bps``: costs the broker charged on the
          rebalancing fills (the funding trade excluded), in basis points of the
          average equity per year: ``1e4 * cost / mean(equity) / years``;
          ``cost`` and ``cost_<model>`` the same in currency.
        * ``initial_cost_bps``: the funding trade's cost, bps of the initial cash
          (the same for every run).
        * ``turnover``: one-way turnover per year, ``0.5 * sum|traded notional| /
          mean(equity) / years``.
        * ``n_orders``, ``n_fills``, ``n_rebalances`` (decision dates with orders),
          ``n_held`` (rebalances held after an error).
        * ``net_return``: annualized growth of equity after costs over the window.
        * ``max_drawdown``, ``final_equity``, ``seconds``, and ``compilations``
          (optimal runs: how often the shared program was compiled so far).
        * ``cash_avg``, ``cash_max``: cash as a fraction of equity over the window.
        * ``constraints``, ``planning_costs``: the run's constraints and the cost
          models it plans with, in words (:mod:`rebalopt.research.disclose`).
    """
    feed = _as_feed(prices)
    if not isinstance(targets, pd.DataFrame) or targets.empty:
        raise InputError("expected a non-empty frame decision dates x tickers", field="targets")
    costs = list(costs)
    if runs is None:
        runs = default_runs(costs, risk, fractional=fractional)
    names = [r.name for r in runs]
    dup = [n for n in names if names.count(n) > 1]
    if dup:
        raise InputError(f"duplicate run name {dup[0]!r}", field="runs")
    pos = feed.dates.get_indexer(pd.DatetimeIndex(targets.index))
    if (pos < 0).any():
        raise InputError(f"target date {pd.Timestamp(targets.index[pos < 0][0]).date()} is not "
                         "a bar of the feed", field="targets")
    start = int(pos[0])
    paper = paper_returns(feed, targets)
    funding = FundingRebalancer(costs=costs, fractional=fractional)
    rows, results, seen = [], {}, {}
    bar = None
    if sys.stderr.isatty() and len(runs) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(runs), desc="compare", unit="run")
    for run in runs:
        inner = _knob_holder(run.rebalancer)
        if run.risk_aversion is not None:
            inner.risk_aversion = float(run.risk_aversion)
        rk = getattr(inner, "risk", None)
        strat = ScheduledTargets(targets, run.rebalancer, every=run.every, initial=funding,
                                 risk=rk if isinstance(rk, RiskSchedule) else None,
                                 on_error=on_error, replan=run.replan)
        broker = SimulatedBroker(initial_cash, costs=costs, account=account,
                                 fractional=fractional, participation=participation,
                                 adv_window=adv_window, vol_window=vol_window,
                                 min_history=min_history, max_leverage=max_leverage)
        t0 = time.perf_counter()
        res = Engine(feed, strat, broker, "same_bar", record_holdings=record_holdings,
                     progress=False, periods_per_year=periods_per_year).run()
        row = _metrics(run, res, paper, start, periods_per_year, time.perf_counter() - t0)
        rows.append(row)
        results[run.name] = res
        seen[run.name] = strat.seen
        if progress is not None:
            progress(run.name, row)
        if bar is not None:
            bar.set_postfix_str(run.name)
            bar.update()
    if bar is not None:
        bar.close()
    table = pd.DataFrame(rows).set_index("run")
    settings = {"initial_cash": float(initial_cash), "account": account,
                "fractional": fractional, "costs": [describe(c) for c in costs],
                "participation": participation, "adv_window": adv_window,
                "vol_window": vol_window, "min_history": min_history,
                "max_leverage": max_leverage,
                "cost_names": list(results[runs[0].name].cost_names) if runs else [],
                "periods_per_year": periods_per_year}
    return Comparison(table=table, results=results, runs=list(runs), paper=paper,
                      targets=targets, feed=feed, start=start, seen=seen, settings=settings)


def frontier(
    prices: DataFeed | pd.DataFrame,
    targets: pd.DataFrame,
    costs: Sequence[CostModel],
    risk: Any,
    risk_aversions: Sequence[float] = DEFAULT_RISK_AVERSIONS,
    *,
    rebalancer: OptimalRebalancer | None = None,
    initial_cash: float = 1e8,
    account: Literal["cash", "margin"] = "margin",
    fractional: bool = False,
    on_error: Literal["raise", "hold"] = "hold",
    record_holdings: bool = False,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
    participation: float | None = None,
    adv_window: int = 20,
    vol_window: int = 20,
    min_history: int = 5,
    max_leverage: float = 2.0,
) -> Comparison:
    """The optimal rebalancer's cost / tracking-error frontier.

    One :class:`OptimalRebalancer` runs once per risk aversion; only the
    ``risk_aversion`` parameter value changes between runs, so its program is
    compiled once for the universe and re-solved (``table["compilations"]``
    stays at 1 while the universe does not change). Columns and the broker
    settings (``participation`` ... ``max_leverage``) as in :func:`compare`; pass
    the result with a comparison on the same data to
    :func:`~rebalopt.research.write_report` (``frontier=``) for one report.
    """
    runs = optimal_runs(costs, risk, risk_aversions, rebalancer=rebalancer, fractional=fractional)
    return compare(prices, targets, costs, runs, initial_cash=initial_cash, account=account,
                   fractional=fractional, on_error=on_error, record_holdings=record_holdings,
                   progress=progress, participation=participation, adv_window=adv_window,
                   vol_window=vol_window, min_history=min_history, max_leverage=max_leverage)
