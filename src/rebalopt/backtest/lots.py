"""Tax lots in the simulated broker: a :class:`~rebalopt.taxes.LotLedger` fed by fills.

Give ``SimulatedBroker(taxes=TaxLotTracker(...))``: every fill then buys or sells
lots (basis = fill price + fee per share on a buy; proceeds = fill price - fee per
share on a sell), relieved by the tracker's method or by the specific lots a
strategy asked for (:meth:`TaxLotTracker.instruct`), with the wash-sale rule. The
run's :class:`TaxReport` (``BacktestResult.taxes``) holds the realized gains short
and long, the wash sales, the tax per year, and the after-tax equity.

Tax accounting (a visible choice, the one of the tax-loss-harvesting literature):
the tax of a calendar year is ``rates.tax(net short, net long)`` on the gains
recognized in that year, accrued as the sales happen and paid from a separate
account (the portfolio's cash is not touched, so a tax-aware and a tax-unaware run
trade the same book under the same prices); net losses are valued at the loss rate
(they offset gains taxed elsewhere). A loss disallowed by a later repurchase is
removed from the year of its sale, as the tax return does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.errors import InputError
from rebalopt.taxes.ledger import LotLedger
from rebalopt.taxes.lots import TaxLots
from rebalopt.taxes.rates import TaxRates
from rebalopt.taxes.relief import is_long_term, select_lots
from rebalopt.taxes.wash import US_WASH_SALE, WashSaleRule

__all__ = ["TaxLotTracker", "TaxReport", "tax_alpha"]

DUST_SHARES = 1e-5
"""Shares a sale may exceed the lots by (float dust: the ledger drops a lot's remainder
below ``1e-9`` of the lot, the broker keeps it); such a sale is cut to the lots."""


class TaxLotTracker:
    """Keeps the broker's tax lots.

    Parameters
    ----------
    method
        Lot relief for sells: ``"fifo"``, ``"hifo"`` or ``"lifo"``.
    wash_sale
        The wash-sale rule, or ``None`` (no rule).
    rates
        Tax rates for the report.
    """

    def __init__(self, *, method: str = "fifo", wash_sale: WashSaleRule | None = US_WASH_SALE,
                 rates: TaxRates | None = None) -> None:
        self.method = method
        self.wash_sale = wash_sale
        self.rates = TaxRates() if rates is None else rates
        self.ledger = LotLedger(method=method, wash_sale=wash_sale)
        self._instructions: dict[str, dict[str, float]] = {}

    def reset(self, dates: pd.Index) -> None:
        """Start an empty ledger (the broker calls this when bound to a feed)."""
        if not isinstance(dates, pd.DatetimeIndex):
            raise InputError("tax lots need a feed indexed by dates", field="dates")
        self.ledger = LotLedger(method=self.method, wash_sale=self.wash_sale)
        self._instructions = {}

    def tax_lots(self, date: Any, assets: Any = None) -> TaxLots:
        """The open lots on ``date`` (restricted to ``assets`` when given)."""
        lots = self.ledger.tax_lots(date)
        return lots if assets is None else lots.subset(assets)

    def instruct(self, asset: str, lots: Mapping[str, float]) -> None:
        """Relieve the next sale of ``asset`` from these lots (``lot_id -> shares``),
        as far as they go; the rest of the sale by the tracker's method."""
        self._instructions[str(asset)] = {str(k): float(v) for k, v in lots.items() if v > 0}

    def follow(self, plan: Any) -> None:
        """Relieve the next sales from the lots ``plan.info["tax_lots"]`` names (a frame
        with ``asset``, ``lot_id``, ``shares``, as a tax-aware plan carries); a plan
        without it leaves the tracker's method in charge."""
        frame = getattr(plan, "info", {}).get("tax_lots")
        if frame is None or len(frame) == 0:
            return
        wanted: dict[str, dict[str, float]] = {}  # by asset in order of appearance
        for asset, lot_id, shares in zip(frame["asset"].tolist(), frame["lot_id"].tolist(),
                                         frame["shares"].tolist(), strict=True):
            wanted.setdefault(str(asset), {})[str(lot_id)] = shares
        for asset, lots in wanted.items():
            self.instruct(asset, lots)

    def on_fill(self, asset: str, quantity: float, price: float, fee: float,
                multiplier: float, date: Any) -> None:
        """Book one fill of ``quantity`` shares (signed) at ``price``; ``fee`` in currency."""
        q = float(quantity)
        per_share = fee / (abs(q) * multiplier)
        if q > 0:
            self.ledger.buy(asset, q, price + per_share, date, multiplier=multiplier)
            return
        shares = -q
        held = self.ledger.shares(asset)
        if held < shares <= held + DUST_SHARES:  # dust the ledger dropped: sell the lots
            shares = held
            if shares <= 0.0:
                return
        method: Any = None
        wanted = self._instructions.get(asset)
        if wanted:
            picks, left = {}, shares
            held = {lot.lot_id: lot.shares for lot in self.ledger.lots.get(asset, ())}
            for lot_id, want in wanted.items():
                take = min(want, held.get(lot_id, 0.0), left)
                if take > 0:
                    picks[lot_id] = take
                    left -= take
                    wanted[lot_id] = want - take
            if left > 1e-9:  # the rest by the default method, over what is left
                rest = [lot.with_shares(lot.shares - picks.get(lot.lot_id, 0.0))
                        for lot in self.ledger.lots.get(asset, ())
                        if lot.shares - picks.get(lot.lot_id, 0.0) > 1e-12]
                for k, take in select_lots(rest, min(left, sum(x.shares for x in rest)),
                                           self.method, asset=asset):
                    picks[rest[k].lot_id] = picks.get(rest[k].lot_id, 0.0) + take
            method = picks
            if not any(v > 1e-12 for v in wanted.values()):
                self._instructions.pop(asset, None)
        self.ledger.sell(asset, shares, price - per_share, date, method=method,
                         multiplier=multiplier)

    def report(self, dates: pd.DatetimeIndex, equity: FloatArray, marks: FloatArray,
               assets: pd.Index, multipliers: FloatArray, periods_per_year: float,
               initial_cash: float) -> TaxReport:
        """The run's :class:`TaxReport` (the engine calls this at the end)."""
        return TaxReport.build(self.ledger, self.rates, dates, equity, marks, assets,
                               multipliers, periods_per_year, initial_cash)


@dataclass
class TaxReport:
    """Realized gains, tax and after-tax equity of a backtest.

    Attributes
    ----------
    realized
        One row per lot sold (:meth:`LotLedger.realized_frame`), currency.
    washes
        One row per wash-sale adjustment.
    gains_by_year
        Recognized ``short`` / ``long`` gains per calendar year, currency.
    tax_by_year
        Tax per calendar year, currency (negative = saved).
    tax_paid
        Cumulative tax accrued up to each bar, currency.
    after_tax_equity
        Equity minus the cumulative tax, per bar, currency.
    liquidation_tax
        Tax that selling every open lot at the last marks would cost, currency.
    periods_per_year, initial_cash
        For the annualized figures.
    """

    realized: pd.DataFrame
    washes: pd.DataFrame
    gains_by_year: pd.DataFrame
    tax_by_year: pd.Series
    tax_paid: pd.Series
    after_tax_equity: pd.Series
    liquidation_tax: float
    periods_per_year: float
    initial_cash: float

    @classmethod
    def build(cls, ledger: LotLedger, rates: TaxRates, dates: pd.DatetimeIndex,
              equity: FloatArray, marks: FloatArray, assets: pd.Index,
              multipliers: FloatArray, periods_per_year: float,
              initial_cash: float) -> TaxReport:
        """Assemble the report from a ledger at the end of a run."""
        realized = ledger.realized_frame()
        # cumulative tax per bar: closed years' tax + the running year's to date
        paid = np.zeros(len(dates))
        if len(realized):
            r = realized.sort_values("sold", kind="stable")
            sold = r["sold"].to_numpy(dtype="datetime64[ns]")
            short = np.where(r["term"] == "short", r["recognized"], 0.0)
            long_ = np.where(r["term"] == "long", r["recognized"], 0.0)
            years = pd.DatetimeIndex(sold).year.to_numpy()
            pos = np.searchsorted(sold, dates.to_numpy(dtype="datetime64[ns]"), side="right")
            cs, cl = np.concatenate([[0.0], np.cumsum(short)]), np.concatenate([[0.0],
                                                                                  np.cumsum(long_)])
            by_year = ledger.tax_by_year(rates)
            closed_by = {y: float(by_year[by_year.index < y].sum())
                         for y in range(dates[0].year, dates[-1].year + 1)}
            for t, (d, k) in enumerate(zip(dates, pos, strict=True)):
                closed = closed_by[d.year]
                start = int(np.searchsorted(years, d.year, side="left"))
                ytd_s, ytd_l = cs[k] - cs[min(start, k)], cl[k] - cl[min(start, k)]
                paid[t] = closed + rates.tax(ytd_s, ytd_l)
        last = dates[-1] if len(dates) else pd.Timestamp("1970-01-01")
        where = {str(a): i for i, a in enumerate(assets)}
        st = lt = 0.0
        for asset, lots in ledger.lots.items():
            i = where[asset]
            for lot in lots:
                g = lot.shares * (float(marks[i]) - lot.basis) * float(multipliers[i])
                if is_long_term(lot.acquired, last):
                    lt += g
                else:
                    st += g
        tax_paid = pd.Series(paid, index=dates, name="tax_paid")
        return cls(
            realized=realized, washes=ledger.washes_frame(),
            gains_by_year=ledger.gains_by_year(), tax_by_year=ledger.tax_by_year(rates),
            tax_paid=tax_paid,
            after_tax_equity=pd.Series(np.asarray(equity) - paid, index=dates,
                                       name="after_tax_equity"),
            liquidation_tax=rates.tax(st, lt) if ledger.lots else 0.0,
            periods_per_year=periods_per_year, initial_cash=initial_cash)

    @property
    def total_tax(self) -> float:
        """Tax accrued over the run, currency (negative = saved)."""
        return float(self.tax_by_year.sum())

    @property
    def realized_gains(self) -> dict[str, float]:
        """Recognized gains over the run: ``short``, ``long``, ``disallowed`` (currency)."""
        r = self.realized
        return {"short": float(r.loc[r["term"] == "short", "recognized"].sum()),
                "long": float(r.loc[r["term"] == "long", "recognized"].sum()),
                "disallowed": float(r["disallowed"].sum())}

    def after_tax_return(self, liquidate: bool = False) -> float:
        """Annualized after-tax return (bars / ``periods_per_year`` years); with
        ``liquidate`` the tax of selling everything at the end is paid too."""
        end = float(self.after_tax_equity.iloc[-1]) - (self.liquidation_tax if liquidate else 0)
        years = len(self.after_tax_equity) / self.periods_per_year
        return float((end / self.initial_cash) ** (1.0 / years) - 1.0)

    def summary(self) -> dict[str, float]:
        """Headline figures: gains, tax, after-tax return (annualized fractions)."""
        g = self.realized_gains
        return {"short_term_gains": g["short"], "long_term_gains": g["long"],
                "disallowed_losses": g["disallowed"], "tax": self.total_tax,
                "liquidation_tax": self.liquidation_tax,
                "after_tax_return": self.after_tax_return(),
                "after_tax_return_liquidated": self.after_tax_return(liquidate=True),
                "n_wash_sales": float(len(self.washes))}


def tax_alpha(aware: Any, unaware: Any, *, liquidate: bool = False) -> float:
    """Tax alpha: annualized after-tax return of ``aware`` minus that of ``unaware``.

    Both are :class:`~rebalopt.backtest.BacktestResult` (or :class:`TaxReport`) of runs
    with a :class:`TaxLotTracker`, over the same bars.
    """
    a = getattr(aware, "taxes", aware)
    u = getattr(unaware, "taxes", unaware)
    if not isinstance(a, TaxReport) or not isinstance(u, TaxReport):
        raise InputError("both runs need a TaxLotTracker on their broker", field="taxes")
    return a.after_tax_return(liquidate) - u.after_tax_return(liquidate)
