"""TaxCost: the realized-gains tax of the lots a rebalance sells, declared once.

With tax lots in the state (``PortfolioState(lots=...)``, valued ``as_of`` a date),
the sale of asset ``i`` is split across its lots: ``s_l`` (weight sold from lot
``l``, fraction of equity) with ``0 <= s_l <= cap_l`` (the lot's value / equity).
Per unit of weight sold, lot ``l`` realizes the gain ``g_l = 1 - basis_l / price_i``
and costs ``c_l = rate_l * g_l`` (fraction of equity): ``rate_l`` is the short- or
long-term rate of a gain (held more than a year on ``as_of``: long); a loss is
valued at the loss rate (the value of a harvested loss) only on an asset listed in
``harvest`` (which is then not bought), at 0 otherwise and wherever the wash-sale
rule would disallow it (the asset was bought within the window). So no solution
gains by selling a loss lot and buying the asset back (a wash sale, and not a net
trade): :class:`~rebalopt.rebalance.tax_aware.TaxAwareRebalancer` picks ``harvest``
(two solves). The tax term is linear in ``s``, so the program stays convex:

* ``sum_l s_l >= -z_i``: the lots cover the sale (no short sales from lots);
* ``t_i >= z_i + 2 sum_l s_l``: trading costs are paid on the gross trade (a loss
  lot sold and bought back pays both legs);
* ``sum_l s_l + z_i <= 0`` (no purchase) for an asset in ``harvest`` or under a
  wash-sale buy restriction (sold at a loss within the window, the loss still open);
* optionally ``V * sum_l g_l s_l <= budget``: net realized gains, currency.

The numeric face (:meth:`TaxCost.evaluate`, :meth:`TaxCost.allocate`) relieves the
lots the same program would for a given trade: the cheapest tax per unit first (an
exact LP with HiGHS when a gains budget couples the assets).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.costs._base import CostModel
from rebalopt.errors import InputError
from rebalopt.program.layout import MatrixLayout, MatrixRows
from rebalopt.program.terms import AuxTerm, CostTerms
from rebalopt.state import PortfolioState
from rebalopt.taxes.lots import TaxLots, as_date
from rebalopt.taxes.rates import TaxRates
from rebalopt.taxes.relief import one_year_after
from rebalopt.taxes.wash import US_WASH_SALE, WashSaleRule

__all__ = ["LotTable", "TaxCost"]

_TOL = 1e-12
_ACCURACY = 1e-7
"""Weights below this are solver noise (an interior-point answer is good to ~1e-8)."""
_DAY_NS = 86_400_000_000_000
_UNBOUNDED = 1e3
"""Right-hand side of a row that does not bind (weights; far above any position)."""


@dataclass(frozen=True)
class LotTable:
    """The lots of a state as columns of the lot-level sell block (one per lot).

    Attributes
    ----------
    owner
        Universe index of each lot's asset.
    lot_id
        Lot ids.
    shares, basis
        Shares and basis per share (currency) of each lot.
    cap
        Lot value / equity: the most weight that can be sold from the lot.
    gain
        Realized gain per unit of weight sold, ``1 - basis / price``.
    long_term
        Whether a sale on ``as_of`` is long-term.
    cost
        Tax per unit of weight sold (fraction of equity; negative = a loss's value).
    no_buy
        Per asset (universe order): buying now would be a wash sale.
    no_harvest
        Per asset: a loss sold now would be disallowed (bought within the window).
    """

    owner: np.ndarray
    lot_id: tuple[str, ...]
    shares: FloatArray
    basis: FloatArray
    cap: FloatArray
    gain: FloatArray
    long_term: np.ndarray
    cost: FloatArray
    no_buy: np.ndarray
    no_harvest: np.ndarray

    @property
    def size(self) -> int:
        """Number of lots (columns)."""
        return len(self.lot_id)


class TaxCost(CostModel):
    """Capital-gains tax of the lots a rebalance sells (module docstring).

    Parameters
    ----------
    rates
        Tax rates; :class:`~rebalopt.taxes.TaxRates` (``loss`` = the value of a
        harvested loss).
    gains_budget
        Most net realized gains allowed, currency (``None``: no budget).
    wash_sale
        The wash-sale rule (restrictions from the lots' purchase dates and the
        state's recent loss sales), or ``None``.
    as_of
        Valuation date; default the state's ``lots.as_of`` (one of them is needed).
    label
        Name in plans and reports.

    Notes
    -----
    The broker does not charge this model: tax is booked by the
    :class:`~rebalopt.backtest.lots.TaxLotTracker` from the lots actually sold.
    """

    paid_at_trade = False
    """The tax is not paid from cash at the trade: the plan's cash and the cash floor
    leave it out, and the broker does not charge it (the backtest's
    :class:`~rebalopt.backtest.lots.TaxLotTracker` books it from the lots sold)."""

    def __init__(self, rates: TaxRates | None = None, *, gains_budget: float | None = None,
                 wash_sale: WashSaleRule | None = US_WASH_SALE, as_of: Any = None,
                 label: str | None = None) -> None:
        self.rates = TaxRates() if rates is None else rates
        if not isinstance(self.rates, TaxRates):
            raise InputError("rates must be a TaxRates", field="rates")
        if gains_budget is not None and not math.isfinite(float(gains_budget)):
            raise InputError(f"must be finite, got {gains_budget!r}", field="gains_budget")
        self.gains_budget = None if gains_budget is None else float(gains_budget)
        self.wash_sale = wash_sale
        self.as_of = None if as_of is None else as_date(as_of, field="as_of")
        self.label = label
        self.harvest: frozenset[str] = frozenset()
        """Assets whose losses are valued (harvested) in this solve; they are not bought.
        Default none: losses are valued at 0 and any asset may be bought, so no solution
        sells a loss lot and buys it back (a wash sale, and no net trade). Set by
        :class:`~rebalopt.rebalance.tax_aware.TaxAwareRebalancer` (two solves)."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the per-state table cache."""
        state = dict(self.__dict__)
        state.pop("_table_cache", None)
        return state

    # ------------------------------------------------------------ coefficients
    def lots_of(self, state: PortfolioState) -> TaxLots:
        """The state's lots (InputError when the state has none)."""
        lots = getattr(state, "lots", None)
        if lots is None:
            raise InputError("TaxCost needs tax lots in the state (PortfolioState(lots=...))",
                             field="lots")
        return lots

    def table(self, state: PortfolioState) -> LotTable:
        """The lot columns and their coefficients at ``state`` (built once per state and
        settings: a plan reads them about ten times)."""
        inputs = (self.rates, self.harvest, self.wash_sale, self.as_of)
        hit = self.__dict__.get("_table_cache")
        if (hit is not None and hit[0] is state and len(hit[1]) == len(inputs)
                and all(x is y for x, y in zip(hit[1], inputs))):
            return hit[2]
        table = self._build_table(state)
        self.__dict__["_table_cache"] = (state, inputs, table)
        return table

    def _build_table(self, state: PortfolioState) -> LotTable:
        lots = self.lots_of(state)
        day = self.as_of or lots.as_of
        if day is None:
            raise InputError("TaxCost needs a valuation date: TaxCost(as_of=...) or lots "
                             "valued on a date (TaxLots(as_of=...))", field="as_of")
        rule = self.wash_sale
        n = state.n
        no_buy = np.zeros(n, dtype=bool)
        no_harvest = np.zeros(n, dtype=bool)
        harvest = np.zeros(n, dtype=bool)
        owner: list[int] = []
        book: list[Any] = []  # the lots, asset by asset (universe order)
        for i, asset in enumerate(state.assets):
            a = str(asset)
            mine = lots[a]
            if mine:
                owner.extend([i] * len(mine))
                book.extend(mine)
            harvest[i] = a in self.harvest
            if harvest[i] or (rule is not None and any(
                    d <= day and rule.within(d, day) for d in lots.loss_sales.get(a, ()))):
                no_buy[i] = True
        own = np.asarray(owner, dtype=int)
        bought = _days([lot.purchased for lot in book]) if book else np.zeros(0, np.int64)
        if (bought > day.value).any():  # TaxCost(as_of=...) before a lot's purchase
            k = int(np.flatnonzero(bought > day.value)[0])
            raise InputError(f"lot {book[k].lot_id!r} was bought on {book[k].purchased.date()}, "
                             f"after the valuation date {day.date()} (its term and wash-sale "
                             "window would be made up)", asset=str(state.assets[own[k]]),
                             field="as_of")
        if rule is not None and book:
            # a lot bought within the window before `day` that has not replaced a loss:
            # selling this asset at a loss now would be a wash sale against it
            fresh = np.array([not lot.replacement for lot in book], dtype=bool)
            recent = fresh & (bought <= day.value) & (
                (day.value - bought) // _DAY_NS <= rule.window_days)
            no_harvest = np.bincount(own[recent], minlength=n) > 0
        ids = [lot.lot_id for lot in book]
        sh = np.array([lot.shares for lot in book], dtype=float)
        bs = np.array([lot.basis for lot in book], dtype=float)
        lt = _long_term(book, day)
        unit = state.prices[own] * state.multipliers[own] if own.size else np.zeros(0)
        cap = sh * unit / state.equity
        gain = 1.0 - bs / state.prices[own] if own.size else np.zeros(0)
        r = self.rates
        loss_rate = np.where(lt, r.long_term, r.short_term) if r.loss is None else np.full(
            own.size, r.loss)
        rate = np.where(gain >= 0, np.where(lt, r.long_term, r.short_term), loss_rate)
        if own.size:  # a loss counts where harvested and the rule would not disallow it
            rate = np.where((gain < 0) & (no_harvest[own] | ~harvest[own]), 0.0, rate)
        return LotTable(own, tuple(ids), sh, bs, cap, gain, lt, rate * gain, no_buy,
                        no_harvest)

    # ------------------------------------------------------------- declaration
    @property
    def key(self) -> tuple[str, str]:
        """Name of the lot-level sell block (``layout.aux(key, size)``)."""
        return ("tax_lots", self.name)

    def terms(self, state: PortfolioState) -> CostTerms:
        """The tax term declared once: an auxiliary block of lot-level sells ``s``
        (one column per lot, weights), its rows and its linear cost (module docstring)."""
        tb = self.table(state)
        n, L = state.n, tb.size
        budget = self.gains_budget
        V = state.equity

        def rows(layout: MatrixLayout) -> list[MatrixRows]:
            # the row counts depend on n and the number of lots only (the block's size):
            # a new state with as many lots re-solves without a recompile
            s = layout.aux(self.key, L)
            z, t = layout.z, layout.t
            ar = np.arange(n)
            big = np.full(n, _UNBOUNDED)
            return [
                MatrixRows.diagonal(s, 1.0, tb.cap, main=False),         # s <= cap
                MatrixRows.diagonal(s, -1.0, np.zeros(L), main=False),   # s >= 0
                # the lots cover the sale: -z_i - sum_l s_il <= 0 (no short sale)
                MatrixRows(np.concatenate([ar, tb.owner]), np.concatenate([z, s]),
                           np.full(n + L, -1.0), np.zeros(n), main=False),
                # gross trade: z_i + 2 sum_l s_il - t_i <= 0
                MatrixRows(np.concatenate([ar, tb.owner, ar]), np.concatenate([z, s, t]),
                           np.concatenate([np.ones(n), np.full(L, 2.0), -np.ones(n)]),
                           np.zeros(n), main=False),
                # purchases z_i + sum_l s_il <= 0 where restricted (else unbounded)
                MatrixRows(np.concatenate([ar, tb.owner]), np.concatenate([z, s]),
                           np.ones(n + L), np.where(tb.no_buy, 0.0, big), main=False),
                # net realized gains: sum_l g_l s_l <= budget / V (else unbounded)
                MatrixRows.dense_rows(s, tb.gain[None, :], np.array(
                    [_UNBOUNDED if budget is None else budget / V]), main=False),
            ]

        return CostTerms(aux=(AuxTerm(self.key, L, tb.cost, rows, paid_from_cash=False),))

    def trade_bounds(self, state: PortfolioState) -> tuple[FloatArray, FloatArray]:
        """The block's rows on one asset: a sale at most its lots (``z_i >= -`` the
        lots' weight; lots are long only) and no purchase of a restricted asset
        (``z_i <= 0``: a wash-sale window or a harvest)."""
        tb = self.table(state)
        have = np.bincount(tb.owner, weights=tb.cap, minlength=state.n)
        return -have, np.where(tb.no_buy, 0.0, np.inf)

    # -------------------------------------------------------------- numeric face
    def allocate(self, z: FloatArray, state: PortfolioState,
                 table: LotTable | None = None) -> FloatArray:
        """Weight sold from each lot for trade weights ``z``: the cheapest tax first
        (ties: the table's order, oldest purchase first); with a gains budget, the
        exact LP (HiGHS) of the program's tax block for this ``z``.

        Raises
        ------
        InputError
            A sale larger than the asset's lots (lots are long only), or a gains
            budget no allocation of these sales can meet.
        """
        tb = self.table(state) if table is None else table
        z = np.asarray(z, dtype=float)
        sells = np.maximum(-z, 0.0)
        have = np.bincount(tb.owner, weights=tb.cap, minlength=state.n)
        sells = np.where(sells > have, np.where(sells <= have + _ACCURACY, have, sells), sells)
        over = sells > have
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise InputError(f"sells {sells[i]:.6g} of equity, its lots hold {have[i]:.6g}",
                             asset=str(state.assets[i]), field="lots")
        if self.gains_budget is not None:
            return self._allocate_lp(sells, state, tb)
        s = np.zeros(tb.size)
        for i in np.flatnonzero(sells > 0):
            cols = np.flatnonzero(tb.owner == i)
            left = sells[i]
            for c in cols[np.argsort(tb.cost[cols], kind="stable")]:
                take = min(left, tb.cap[c])
                s[c] = take
                left -= take
                if left <= _TOL:
                    break
        return s

    def _allocate_lp(self, sells: FloatArray, state: PortfolioState, tb: LotTable
                     ) -> FloatArray:
        from scipy.optimize import linprog
        from scipy.sparse import csr_matrix

        active = np.flatnonzero(sells > 0)
        cols = np.flatnonzero(np.isin(tb.owner, active))
        s = np.zeros(tb.size)
        if cols.size == 0:
            return s
        rows = np.searchsorted(active, tb.owner[cols])
        A_eq = csr_matrix((np.ones(cols.size), (rows, np.arange(cols.size))),
                          shape=(active.size, cols.size))
        res = linprog(tb.cost[cols], A_ub=(state.equity * tb.gain[cols])[None, :],
                      b_ub=[self.gains_budget], A_eq=A_eq, b_eq=sells[active],
                      bounds=np.c_[np.zeros(cols.size), tb.cap[cols]], method="highs")
        if res.status != 0:
            raise InputError(f"no choice of lots meets the gains budget "
                             f"{self.gains_budget:,.2f} ({res.message})", field="gains_budget")
        s[cols] = np.clip(res.x, 0.0, tb.cap[cols])
        return s

    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        """Tax in currency per asset of selling ``-trades`` shares (negative = tax saved).

        A sale larger than the asset's lots (a short sale: lots are long only), or sales
        no choice of lots can fit in the gains budget, is a trade the program forbids
        (its hard rows): its tax is ``+inf``, as the whole-share search prices any
        forbidden move, and no error; :meth:`allocate` and :meth:`sales` raise on it.
        """
        unit = state.prices * state.multipliers
        z = np.asarray(trades, dtype=float) * unit / state.equity
        tb = self.table(state)
        have = np.bincount(tb.owner, weights=tb.cap, minlength=state.n)
        over = -z > have + _ACCURACY
        if over.any():
            z = np.where(over, -have, z)
        try:
            s = self.allocate(z, state, tb)
        except InputError:
            if self.gains_budget is None:
                raise
            return np.where(z < 0, np.inf, 0.0)  # over the budget: forbidden
        out = np.bincount(tb.owner, weights=tb.cost * s, minlength=state.n) * state.equity
        out[over] = np.inf
        return out

    def plan_sells(self, plan: Any, state: PortfolioState) -> FloatArray:
        """Weight sold from each lot by ``plan``: the program's lot-level sells when the
        plan reports them (``plan.info["aux"][key]``), else :meth:`allocate` on the
        plan's trades."""
        z = np.asarray(plan.trade_values, dtype=float) / state.equity
        s = (getattr(plan, "info", {}).get("aux") or {}).get(self.key)
        tb = self.table(state)
        if s is not None and np.shape(s) == (tb.size,):
            return np.clip(np.asarray(s, dtype=float), 0.0, tb.cap)
        return self.allocate(z, state, tb)

    def sales(self, z: FloatArray, state: PortfolioState, s: FloatArray | None = None
              ) -> pd.DataFrame:
        """The lots a trade ``z`` sells: one row per lot sold with ``asset``, ``lot_id``,
        ``shares``, ``gain`` (currency), ``term``, ``tax`` (currency: the rates on the
        gain, a loss at the loss rate, 0 where the wash-sale rule would disallow it).

        ``s`` (weight per lot, e.g. the program's solution) defaults to :meth:`allocate`.
        """
        tb = self.table(state)
        s = self.allocate(z, state, tb) if s is None else np.asarray(s, dtype=float)
        V = state.equity
        keep = np.flatnonzero(s > 1e-12)
        own = tb.owner[keep]
        unit = state.prices[own] * state.multipliers[own]
        gain = tb.gain[keep] * s[keep] * V
        lt = tb.long_term[keep]
        r = self.rates
        rate = np.where(lt, r.long_term, r.short_term)
        if r.loss is not None:
            rate = np.where(gain < 0, r.loss, rate)
        rate = np.where((gain < 0) & tb.no_harvest[own], 0.0, rate)
        return pd.DataFrame({
            "asset": [str(state.assets[i]) for i in own],
            "lot_id": [tb.lot_id[k] for k in keep],
            "shares": s[keep] * V / unit,
            "gain": gain,
            "term": np.where(lt, "long", "short"),
            "tax": rate * gain,
        })

    def realized_gains(self, z: FloatArray, state: PortfolioState,
                       s: FloatArray | None = None) -> float:
        """Net realized gain of the lots sold, currency (``V * sum g_l s_l``)."""
        tb = self.table(state)
        s = self.allocate(z, state, tb) if s is None else np.asarray(s, dtype=float)
        return float(state.equity * tb.gain @ s)

    def wash_sale_conflicts(self, z: FloatArray, state: PortfolioState,
                            s: FloatArray) -> list[str]:
        """Assets a solution both buys and sells at a loss, or buys while restricted.

        A plan holds net trades, so a loss lot sold and bought back in one rebalance
        cannot be executed as planned: it is a conflict with or without the wash-sale
        rule (with the rule it would also be a wash sale)."""
        tb = self.table(state)
        z = np.asarray(z, dtype=float)
        sold = np.bincount(tb.owner, weights=s, minlength=state.n)
        buys = z + sold
        loss = np.bincount(tb.owner, weights=s * (tb.gain < 0), minlength=state.n)
        bad = (buys > _ACCURACY) & ((loss > _ACCURACY) | tb.no_buy)
        return [str(state.assets[i]) for i in np.flatnonzero(bad)]


def _days(dates: Sequence[Any]) -> np.ndarray:
    """Dates as int64 nanoseconds (``pd.Timestamp.value``)."""
    return np.array([(d if isinstance(d, pd.Timestamp) else pd.Timestamp(d)).value
                     for d in dates], dtype=np.int64)


def _long_term(lots: Sequence[Any], day: pd.Timestamp) -> np.ndarray:
    """:func:`~rebalopt.taxes.relief.is_long_term` of each lot sold on ``day`` (a sale
    after the acquisition's one-year anniversary), once per distinct acquisition date."""
    if not lots:
        return np.zeros(0, dtype=bool)
    dates, inverse = np.unique(_days([lot.acquired for lot in lots]), return_inverse=True)
    after = np.array([_one_year_after(int(d)) for d in dates], dtype=np.int64)
    return (day.value > after)[inverse.reshape(-1)]


@functools.lru_cache(maxsize=1 << 16)
def _one_year_after(acquired: int) -> int:
    """The day after which a lot acquired at ``acquired`` (ns) is long-term, in ns: the
    date :func:`~rebalopt.taxes.relief.is_long_term` compares the sale date with."""
    return one_year_after(pd.Timestamp(acquired)).value


def substitute_targets(targets: Mapping[str, float] | pd.Series, state: PortfolioState,
                       restricted: Sequence[str], substitutes: Mapping[str, str],
                       skipped: dict[str, str] | None = None) -> pd.Series:
    """Targets with the weight a restricted asset cannot buy moved to its substitute.

    For each restricted asset ``a`` with a substitute ``b``: ``max(target_a - w0_a, 0)``
    moves from ``a`` to ``b`` (so exposure is kept while ``a`` cannot be bought). A
    substitute that is itself restricted cannot be bought either: nothing moves, and
    ``skipped`` (when given) records ``a -> why`` so the plan can say so.

    Raises
    ------
    InputError
        ``b`` is not in the universe (``asset=b``, ``field="substitutes"``): it has no
        price, so the weight moved to it would be dropped and left in cash.
    """
    t = pd.Series(targets, dtype=float).copy()
    w0 = pd.Series(state.weights, index=state.assets)
    for a in restricted:
        b = substitutes.get(a)
        if b is None:
            continue
        short = max(float(t.get(a, 0.0)) - float(w0.get(a, 0.0)), 0.0)
        if short > 0 and str(b) not in set(map(str, state.assets)):
            raise InputError(f"substitute for {a} is not in the universe (no price): the "
                             f"{short:.4g} of equity it should take would stay in cash",
                             asset=str(b), field="substitutes")
        if short > 0 and str(b) in set(map(str, restricted)):
            if skipped is not None:
                skipped[str(a)] = (f"substitute {b} is restricted by the wash-sale rule too: "
                                   f"{short:.4g} of equity stays in cash")
            continue
        if short > 0:
            t[a] = float(t.get(a, 0.0)) - short
            t[b] = float(t.get(b, 0.0)) + short
    return t
