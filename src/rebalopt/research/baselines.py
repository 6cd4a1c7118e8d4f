"""Baselines that trade *between* target dates, and the multi-period policy's runs.

A policy that spreads a trade over days must be compared with baselines that may
do the same. Every run here decides on every bar between the monthly decision
dates (``Run.replan = 1``; see :class:`~rebalopt.research.ScheduledTargets`), with
the paper portfolio's drifted weights as its target on those bars, the same cost
models charged by the same broker, and the same funding trade:

* :func:`twap_runs`: naive, with the trade to each new target split evenly over
  ``k`` bars (TWAP-k): on the ``j``-th bar after the decision date it trades
  ``1 / (k - j)`` of the remaining gap to the (drifted) target, so a fully filled
  schedule trades ``1/k`` of the gap per bar; fully invested after ``k`` bars;
* :func:`daily_band_runs`: tolerance bands checked on every bar;
* :func:`daily_optimal_runs`: the single-period optimal plan re-made on every bar
  (horizon one bar, ``1/252`` year), a risk-aversion sweep on one compiled program;
* :func:`multiperiod_runs`: :class:`~rebalopt.rebalance.multiperiod.MultiPeriodRebalancer`
  re-planned on every bar (receding horizon), the first period traded.

Whole shares: naive and band plan whole shares; the two optimal policies round their
continuous trades to whole shares (:class:`~rebalopt.research.RoundedRebalancer`,
the same for both). Constraints: the optimal policies keep long-only and no
borrowing (``CashFloor(0)``); naive, TWAP and bands trade in a margin account
(as in :func:`~rebalopt.research.compare`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.costs import CostModel
from rebalopt.errors import InputError
from rebalopt.rebalance import RebalanceConfig
from rebalopt.rebalance.band import BandRebalancer
from rebalopt.rebalance.multiperiod import MultiPeriodRebalancer
from rebalopt.rebalance.naive import round_to_lots
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.research.compare import Run
from rebalopt.research.quality import cost_at_tracking_error
from rebalopt.research.strategy import RoundedRebalancer
from rebalopt.state import PortfolioState

__all__ = [
    "TWAPRebalancer",
    "daily_band_runs",
    "daily_optimal_runs",
    "equal_te_against",
    "multiperiod_runs",
    "twap_runs",
]

DAILY = 1.0 / 252.0
"""One trading day in years."""


def _config(fractional: bool) -> RebalanceConfig:
    return RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0, fractional=fractional)


@dataclass
class TWAPRebalancer:
    """Naive trades split evenly over ``days`` bars.

    The strategy sets ``step`` (bars since the decision date, 0 on it) before each
    plan. With ``left = days - step`` bars left, the plan trades naively to
    ``w + (w* - w) / left`` (``w`` the current weights, ``w*`` the targets): a
    ``1/days`` slice of the gap per bar when everything fills, all of what is left on
    the last bar (fully invested: naive monthly's trade, split), nothing after it.

    Parameters
    ----------
    days
        Bars the trade is spread over (>= 1; 1 is naive).
    costs
        Cost models the plans are priced with.
    fractional
        Fractional shares (else whole shares, rounded by the naive rebalancer).
    """

    days: int = 5
    costs: list[CostModel] = field(default_factory=list)
    fractional: bool = False
    step: int = 0
    method = "twap"

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or int(self.days) != self.days or self.days < 1:
            raise InputError(f"must be an int >= 1, got {self.days!r}", field="TWAPRebalancer.days")

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """This bar's slice of the trade to ``targets`` (see the class docstring).

        Shares are ``(w* - w) / left * equity / price``, rounded to lots unless
        ``fractional``; a long position is never sold past zero.
        """
        w_t = state.target_weights(targets)
        left = int(self.days) - int(self.step)
        shares = np.zeros(state.n)
        if left > 0:
            unit = state.prices * state.multipliers
            shares = (w_t - state.weights) / left * state.equity / unit
            if not self.fractional:
                shares = round_to_lots(shares, state.lot_sizes)
            longs = state.holdings > 0
            shares = np.where(longs, np.maximum(shares, -state.holdings), shares)
            shares[shares == 0] = 0.0
        return RebalancePlan.from_trades(state, w_t, shares, self.costs, self.method,
                                         {"step": self.step, "left": left})


def twap_runs(costs: Sequence[CostModel], days: Sequence[int] = (5,),
              fractional: bool = False) -> list[Run]:
    """TWAP-k naive runs, one per ``k`` (deciding every bar)."""
    return [Run(f"naive TWAP-{k}", TWAPRebalancer(int(k), list(costs), fractional),
                kind="twap", knob=float(k), replan=1) for k in days]


def daily_band_runs(costs: Sequence[CostModel],
                    absolute: Sequence[float] = (0.0025, 0.005, 0.01, 0.02),
                    relative: Sequence[float] = (0.1, 0.25, 0.5),
                    to: Sequence[str] = ("target", "edge"),
                    fractional: bool = False) -> list[Run]:
    """Tolerance bands checked on every bar against the drifted targets."""
    out = []
    for rel, widths in ((False, absolute), (True, relative)):
        for wdt in widths:
            for dest in to:
                reb = BandRebalancer(width=float(wdt), relative=rel, to=dest,  # type: ignore[arg-type]
                                     config=_config(fractional), costs=list(costs))
                label = f"{wdt:.0%}" if rel else f"{wdt:.2%}"
                out.append(Run(f"daily band {'rel' if rel else 'abs'} {label} to {dest}", reb,
                               kind="band daily", knob=float(wdt), replan=1))
    return out


def daily_optimal_runs(costs: Sequence[CostModel], risk: Any, risk_aversions: Sequence[float],
                       horizon: float = DAILY, cost_in_tracking: bool = False) -> list[Run]:
    """The single-period optimal plan re-made every bar (one shared, compiled rebalancer).

    ``cost_in_tracking=True``: the same plan with the day's cost also priced as
    tracking (``gamma/2 * cost**2``, the term of
    :class:`~rebalopt.rebalance.multiperiod.MultiPeriodRebalancer`), planned by the
    multi-period planner over one period (which is the single-period program plus
    that term): the fair baseline for a multi-period policy that has the term. Run
    names read ``daily optimal +cost γ=...``.
    """
    if cost_in_tracking:
        inner: Any = MultiPeriodRebalancer(periods=1, period=horizon, risk=risk,
                                           costs=copy.deepcopy(list(costs)),
                                           cost_in_tracking=True)
    else:
        inner = OptimalRebalancer(risk=risk, costs=copy.deepcopy(list(costs)), horizon=horizon)
    reb = RoundedRebalancer(inner)
    tag = " +cost" if cost_in_tracking else ""
    return [Run(f"daily optimal{tag} γ={g:g}", reb, kind="optimal daily", knob=float(g),
                risk_aversion=float(g), replan=1) for g in risk_aversions]


def multiperiod_runs(costs: Sequence[CostModel], risk: Any, risk_aversions: Sequence[float],
                     periods: int = 5, period: float = DAILY, replan: int = 1,
                     **kwargs: Any) -> list[Run]:
    """The multi-period policy re-planned every ``replan`` bars (first period traded),
    a risk-aversion sweep on one rebalancer (the stacked program built once).

    ``kwargs`` go to :class:`~rebalopt.rebalance.multiperiod.MultiPeriodRebalancer`;
    with ``cost_in_tracking=True`` the run names read ``multi-period H=5 +cost γ=...``.
    """
    reb = RoundedRebalancer(MultiPeriodRebalancer(
        periods=periods, period=period, risk=risk, costs=copy.deepcopy(list(costs)), **kwargs))
    tag = " +cost" if kwargs.get("cost_in_tracking") else ""
    return [Run(f"multi-period H={periods}{tag} γ={g:g}", reb, kind="multiperiod",
                knob=float(g), risk_aversion=float(g), replan=replan) for g in risk_aversions]


def equal_te_against(table: pd.DataFrame, frontier: str, cost_col: str = "cost_bps"
                     ) -> pd.DataFrame:
    """Every run not of kind ``frontier`` judged against that kind's frontier at its own TE.

    Same columns as :func:`~rebalopt.research.equal_te_table` (``ratio`` = frontier cost
    / run cost; ``how`` says whether the frontier was interpolated, a conservative
    bound, or below range). Runs of kind ``frontier`` are left out.
    """
    fr = table[table["kind"] == frontier]
    if fr.empty:
        raise InputError(f"no run of kind {frontier!r} in the table", field="table")
    rows = []
    for name, r in table[table["kind"] != frontier].iterrows():
        c, how = cost_at_tracking_error(fr["tracking_error"].to_numpy(),
                                        fr[cost_col].to_numpy(), float(r["tracking_error"]))
        base = float(r[cost_col])
        rows.append({"run": name, "kind": r["kind"], "tracking_error": r["tracking_error"],
                     "cost_bps": base, "frontier_cost_bps": c,
                     "ratio": c / base if base > 0 else float("nan"), "how": how})
    return pd.DataFrame(rows).set_index("run")
