"""SimulatedBroker: fills orders against a DataFeed and charges rebalopt's cost models.

Accounting (currency, shares, currency/share):

* Holdings, average costs, marks and multipliers are NumPy arrays indexed like
  ``feed.assets``; the engine moves the broker bar by bar.
* A fill of ``q`` shares (signed) at reference price ``p`` evaluates every cost
  model on the batch of fills of that pass exactly as ``model.evaluate(trades,
  state)`` (``state`` holds the filled assets at their reference prices, the
  trailing ADV and volatility). Slippage models (``is_slippage``: Spread,
  MarketImpact) move the fill price against the trader by
  ``cost / (|q| * multiplier)`` per share; fee models (Commission) are debited
  from cash. Each fill records every model's cost as ``evaluate`` returned it.
* ``cash -= q * fill_price * multiplier + fee``. Cash is kept as an exact float
  (no rounding to cents): rounding would make the recorded costs differ from
  the models' ``evaluate`` by up to half a cent per fill. Equity is
  ``cash + sum(holdings * marks * multipliers)`` and the tests check it at every
  bar against a ledger rebuilt from the fills, to 1e-6 currency.
* Marks are the last known close: a missing bar leaves the mark unchanged.
* ADV (shares/bar) and volatility (daily fraction) come from
  :meth:`DataFeed.trailing_adv` / :meth:`DataFeed.trailing_volatility`: row
  ``t`` uses bars before ``t`` only, so no fill is priced with data from its
  own bar or later.

Fill rules:

* A market order fills at the pass's reference price (the engine passes the
  close in SAME_BAR mode, the open in NEXT_BAR mode) on a bar where the asset
  has a price; on a missing bar it waits.
* A limit order fills at the same reference price when its fill price *after
  slippage* is at or better than the limit; otherwise it waits.
* Participation cap: at most ``participation * volume`` of the bar's shares
  per asset and bar, shared by all orders of that asset; a missing or zero
  volume fills nothing. The remainder stays pending (``remainder="pending"``)
  or is cancelled at the end of the pass (``"cancel"``).
* Whole shares unless ``fractional``: an order for a fractional quantity is
  rejected, and capped fills are rounded down to whole shares.
* Impact bound: an order whose slippage per share (spread + impact, from the
  cost models) would reach its reference price is rejected with a reason (a
  sell would otherwise fill at a price <= 0: the seller paying to sell; a buy
  at twice the price). Nothing of it fills; lower participation fills less.
* No order is planned for an asset without a bar now: :meth:`portfolio_state`
  marks a held asset with no bar ``halted`` and the rebalancers leave it alone.
* Cash account: no short sales and no negative cash; a fill that would need
  either is rejected with a reason. Margin account: shorts and borrowing are
  allowed while gross exposure stays within ``max_leverage`` x equity.

Carry, charged when the engine moves to the next bar, for the bar just held
(``1 / periods_per_year`` of a year, at the previous bar's marks):

* holding costs of the cost models (:meth:`CostModel.holding
  <rebalopt.costs.CostModel.holding>`, e.g. :class:`~rebalopt.costs.BorrowCost` on
  shorts), debited from cash and added to ``cost_totals``;
* interest: ``cash_rate`` (annual) credited on positive cash, ``margin_rate``
  (annual) debited on negative cash (a margin loan); both 0 by default.
  ``interest_total`` is the net interest (credits positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from rebalopt._naming import unique_names
from rebalopt._typing import FloatArray
from rebalopt.backtest._state import state_from_arrays
from rebalopt.backtest.records import BrokerOrder, Fill, OrderStatus, Position, _fill, orders_frame
from rebalopt.costs import CostModel
from rebalopt.errors import InputError
from rebalopt.orders import OrderSide, OrderType
from rebalopt.state import PortfolioState

if TYPE_CHECKING:
    from rebalopt.backtest.feed import DataFeed
    from rebalopt.backtest.lots import TaxLotTracker

__all__ = ["AccountType", "SimulatedBroker"]

_TOL = 1e-9


class AccountType(str, Enum):
    """Cash account (no shorts, no borrowing) or margin account."""

    CASH = "cash"
    MARGIN = "margin"


class SimulatedBroker:
    """The backtest broker; satisfies :class:`rebalopt.orders.Broker`.

    Parameters
    ----------
    initial_cash
        Starting cash, currency.
    costs
        Cost models charged on every fill (see the module docstring).
    account
        ``"cash"`` or ``"margin"``.
    fractional
        Allow fractional shares.
    participation
        Participation cap as a fraction of the bar's volume (for example 0.05),
        or ``None`` for no cap.
    remainder
        What happens to the part of an order the cap left unfilled:
        ``"pending"`` (carried to the next bar) or ``"cancel"``.
    max_leverage
        Margin accounts: gross exposure / equity allowed after a fill.
    adv_window, vol_window
        Bars in the trailing ADV and volatility windows.
    min_history
        Minimum observations for the trailing ADV / volatility (NaN before).
    taxes
        A :class:`~rebalopt.backtest.lots.TaxLotTracker` to keep tax lots (cash
        accounts only: lots are long), or ``None``.
    cash_rate, margin_rate
        Annual interest rates (fractions per year) credited on positive cash and
        charged on negative cash; default 0.
    periods_per_year
        Bars per year, for the carry of one bar (252: daily bars).
    """

    def __init__(
        self,
        initial_cash: float = 1_000_000.0,
        *,
        costs: Sequence[CostModel] = (),
        account: AccountType | Literal["cash", "margin"] = AccountType.CASH,
        fractional: bool = False,
        participation: float | None = None,
        remainder: Literal["pending", "cancel"] = "pending",
        max_leverage: float = 2.0,
        adv_window: int = 20,
        vol_window: int = 20,
        min_history: int = 5,
        taxes: TaxLotTracker | None = None,
        cash_rate: float = 0.0,
        margin_rate: float = 0.0,
        periods_per_year: float = 252.0,
    ) -> None:
        if not (math.isfinite(initial_cash) and initial_cash > 0):
            raise InputError(f"must be finite and > 0, got {initial_cash}", field="initial_cash")
        if participation is not None and not (0 < participation <= 1):
            raise InputError(f"must be in (0, 1], got {participation}", field="participation")
        if remainder not in ("pending", "cancel"):
            raise InputError(f"must be 'pending' or 'cancel', got {remainder!r}",
                             field="remainder")
        if not (math.isfinite(max_leverage) and max_leverage > 0):
            raise InputError(f"must be finite and > 0, got {max_leverage}", field="max_leverage")
        for name, v in (("adv_window", adv_window), ("vol_window", vol_window),
                        ("min_history", min_history)):
            if int(v) < 1:
                raise InputError(f"must be >= 1, got {v}", field=name)
        for name, v in (("cash_rate", cash_rate), ("margin_rate", margin_rate)):
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"must be finite and >= 0, got {v}", field=name)
        if not (math.isfinite(periods_per_year) and periods_per_year > 0):
            raise InputError(f"must be finite and > 0, got {periods_per_year}",
                             field="periods_per_year")
        for m in costs:
            if not isinstance(m, CostModel):
                raise InputError(f"{type(m).__name__} is not a CostModel", field="costs")
        self.initial_cash = float(initial_cash)
        self.costs = list(costs)
        self.cost_names = unique_names(self.costs)
        self.account = AccountType(account)
        self.fractional = bool(fractional)
        self.participation = participation
        self.remainder = remainder
        self.max_leverage = float(max_leverage)
        self.adv_window = int(adv_window)
        self.vol_window = int(vol_window)
        self.min_history = int(min_history)
        self._slip = np.array([m.is_slippage for m in self.costs], dtype=bool)
        if taxes is not None and self.account is not AccountType.CASH:
            raise InputError("tax lots need a cash account (lots are long only)", field="taxes")
        self.taxes = taxes
        self.cash_rate, self.margin_rate = float(cash_rate), float(margin_rate)
        self.periods_per_year = float(periods_per_year)
        self._holding = [j for j, m in enumerate(self.costs) if m.charges_holding]
        self.feed: DataFeed | None = None

    # ------------------------------------------------------------------ set-up
    def bind(self, feed: DataFeed) -> None:
        """Attach to ``feed`` and reset the book (the engine calls this)."""
        n = feed.n_assets
        self.feed = feed
        self.assets = feed.assets
        self.multipliers = feed.multipliers
        self._unit_mult = bool(np.all(feed.multipliers == 1.0))
        self.holdings: FloatArray = np.zeros(n)
        self.avg_cost: FloatArray = np.zeros(n)
        self.marks: FloatArray = np.zeros(n)
        self.realized_pnl: FloatArray = np.zeros(n)
        self.cash = self.initial_cash
        self.adv_table = feed.trailing_adv(self.adv_window, self.min_history)
        self.vol_table = feed.trailing_volatility(self.vol_window, self.min_history)
        self._used = np.zeros(n)
        self.orders: list[BrokerOrder] = []
        self._pending: list[BrokerOrder] = []
        self.fills: list[Fill] = []
        self.positions: dict[str, Position] = {}
        self.cost_totals = dict.fromkeys(self.cost_names, 0.0)
        self.interest_total = 0.0
        self.t = -1
        self.timestamp: Any = None
        self._stamps = list(feed.dates)  # Timestamps once (an Index look-up per bar is ~5 us)
        self._order_id = 0
        if self.taxes is not None:
            self.taxes.reset(feed.dates)

    def _require_feed(self) -> DataFeed:
        if self.feed is None:
            raise InputError("the broker is not attached to a feed: run it through Engine",
                             field="feed")
        return self.feed

    def _advance(self, t: int) -> None:
        """Move to bar ``t``: update marks with the bar's closes and reset bar volume use."""
        feed = self.feed
        assert feed is not None
        if self.t >= 0:
            self._carry()
        self.t = t
        self.timestamp = self._stamps[t]
        np.copyto(self.marks, feed.close[t], where=feed.available[t])
        if self.participation is not None:
            self._used[:] = 0.0

    def _carry(self) -> None:
        """Charge one bar of holding costs and interest (module docstring)."""
        years = 1.0 / self.periods_per_year
        if self._holding and bool((self.holdings < 0).any()):
            held = np.flatnonzero(self.holdings != 0)
            feed = self.feed
            assert feed is not None
            state = state_from_arrays(
                feed.assets[held], self.marks[held], self.holdings[held], self.cash,
                multipliers=self.multipliers[held], require_positive_equity=False)
            for j in self._holding:
                c = float(np.asarray(self.costs[j].holding(self.holdings[held], state, years),
                                     dtype=float).sum())
                self.cash -= c
                self.cost_totals[self.cost_names[j]] += c
        rate = self.cash_rate if self.cash > 0 else self.margin_rate
        if rate and self.cash != 0:
            interest = self.cash * rate * years
            self.cash += interest
            self.interest_total += interest

    # ------------------------------------------------------------- protocol
    def submit_order(
        self,
        asset: str,
        quantity: float,
        side: OrderSide | str | None = None,
        order_type: OrderType | str = OrderType.MARKET,
        limit_price: float | None = None,
    ) -> BrokerOrder:
        """Queue an order; it fills when the engine next processes orders.

        With ``side=None`` the sign of ``quantity`` gives the side (the seed's
        convention); otherwise ``quantity`` must be > 0. Invalid input raises
        :class:`InputError`; an order the broker will not take (fractional shares
        on a whole-share account) is returned ``REJECTED`` with a reason.
        """
        feed = self._require_feed()
        i = feed.index_of(str(asset))
        q = float(quantity)
        if not math.isfinite(q) or q == 0:
            raise InputError(f"order quantity must be finite and non-zero, got {quantity}",
                             asset=str(asset), field="quantity")
        if side is None:
            side_e = OrderSide.BUY if q > 0 else OrderSide.SELL
            q = abs(q)
        else:
            side_e = side if type(side) is OrderSide else OrderSide(side)
            if q < 0:
                raise InputError("quantity must be > 0 when side is given", asset=str(asset),
                                 field="quantity")
        otype = order_type if type(order_type) is OrderType else OrderType(order_type)
        if otype is OrderType.LIMIT and (
                limit_price is None or not (math.isfinite(limit_price) and limit_price > 0)):
            raise InputError(f"limit order needs a limit price > 0, got {limit_price}",
                                 asset=str(asset), field="limit_price")
        self._order_id += 1
        order = BrokerOrder(
            order_id=self._order_id, asset=str(asset), index=i, side=side_e, quantity=q,
            order_type=otype, limit_price=None if limit_price is None else float(limit_price),
            created_at=self.timestamp, created_bar=self.t,
        )
        self.orders.append(order)
        if not self.fractional and abs(q - round(q)) > 1e-9:
            self._close(order, OrderStatus.REJECTED,
                        f"fractional quantity {q} on a whole-share account")
        else:
            if not self.fractional:
                order.quantity = float(round(q))
            self._pending.append(order)
        return order

    def get_position(self, asset: str) -> Position | None:
        """The position in ``asset``, or ``None`` when flat."""
        return self.positions.get(asset)

    def get_cash(self) -> float:
        """Cash, currency (negative = borrowed on a margin account)."""
        return float(self.cash)

    def get_account_value(self) -> float:
        """Equity: cash + sum(holdings x last close x multiplier), currency."""
        return float(self.cash + self.positions_value())

    def positions_value(self) -> float:
        """Net market value of all positions at the marks, currency."""
        if self._unit_mult:
            return float(self.holdings @ self.marks)
        return float(self.holdings @ (self.marks * self.multipliers))

    def get_pending_orders(self) -> list[BrokerOrder]:
        """Orders still open (pending or partially filled), in submission order."""
        self._pending = [o for o in self._pending if o.is_open]
        return list(self._pending)

    def cancel_order(self, order: BrokerOrder | int) -> bool:
        """Cancel an open order (object or id); ``False`` if it was not open."""
        oid = order.order_id if isinstance(order, BrokerOrder) else int(order)
        for o in self._pending:
            if o.order_id == oid and o.is_open:
                self._close(o, OrderStatus.CANCELLED, "cancelled by the strategy")
                return True
        return False

    def cancel_all_orders(self) -> int:
        """Cancel every open order; returns how many were cancelled."""
        n = 0
        for o in self._pending:
            if o.is_open:
                self._close(o, OrderStatus.CANCELLED, "cancelled by the strategy")
                n += 1
        self._pending = []
        return n

    # ------------------------------------------------------------ for planners
    def pending_shares(self) -> FloatArray:
        """Signed remaining shares of open orders per feed asset."""
        out = np.zeros(len(self.holdings))
        for o in self._pending:
            if o.is_open:
                out[o.index] += o.sign * o.remaining
        return out

    def portfolio_state(self, include_pending: bool = False) -> PortfolioState:
        """The book as a :class:`PortfolioState` at the current bar, built from arrays.

        Universe: assets with a bar now plus held assets (marked at their last
        close). A held asset with no bar now is ``halted`` in the state: no
        rebalancer plans an order for it. Prices are this bar's closes; ADV and
        volatility are the trailing values known before this bar. With
        ``include_pending``, open orders count as traded at these prices (so a
        rebalance does not allocate twice).
        With a :class:`~rebalopt.backtest.lots.TaxLotTracker` (and without
        ``include_pending``) the state carries the tax lots as of this bar.
        """
        feed = self._require_feed()
        t = self.t
        avail = feed.available[t]
        holdings = self.holdings
        cash = self.cash
        if include_pending:
            pend = self.pending_shares()
            holdings = holdings + pend
            cash = cash - float(pend @ (self.marks * self.multipliers))
        keep = avail | (holdings != 0)
        idx = np.flatnonzero(keep)
        state = state_from_arrays(
            feed.assets[idx], self.marks[idx], holdings[idx], cash,
            adv=self.adv_table[t, idx], volatility=self.vol_table[t, idx],
            groups=None if feed.groups is None else feed.groups[idx],
            multipliers=self.multipliers[idx],
            halted=~avail[idx],  # held, no bar now: the rebalancers leave it alone
        )
        if self.taxes is not None and not include_pending:  # the lots as of this bar
            state.lots = self.taxes.tax_lots(self.timestamp, state.assets)
        return state

    # -------------------------------------------------------------- fill logic
    def _track_position(self, asset: str, index: int, holding: float) -> None:
        """Drop the :class:`Position` view of an asset whose holding (shares) is now zero,
        or add one for an asset that has none."""
        if holding == 0.0:
            self.positions.pop(asset, None)
        elif asset not in self.positions:
            self.positions[asset] = Position(self, index, asset)

    def _mark_filled(self, order: BrokerOrder, shares: float, price: float) -> None:
        """Add a fill of ``shares`` (signed) at ``price`` (currency per share) to
        ``order``: filled quantity, average fill price, and its status (filled, within
        the tolerance, or partially filled)."""
        prev = order.filled
        order.filled = prev + abs(shares)
        order.avg_fill_price = (prev * order.avg_fill_price + abs(shares) * price) / order.filled
        if order.remaining <= _TOL * max(1.0, order.quantity):
            order.filled = order.quantity
            self._close(order, OrderStatus.FILLED, "")
        else:
            order.status = OrderStatus.PARTIALLY_FILLED

    def _close(self, order: BrokerOrder, status: OrderStatus, reason: str) -> None:
        order.status = status
        order.reason = reason
        order.closed_at = self.timestamp

    def process_orders(self, reference: FloatArray) -> int:
        """Fill open orders at ``reference`` prices (a row of the feed); returns fills made.

        Orders are taken in submission order; an asset's second order waits for
        the next round so each cost evaluation sees at most one trade per asset
        (as ``Commission`` charges per order).
        """
        queue = [o for o in self._pending if o.is_open]
        if not queue:
            self._pending = []
            return 0
        n_fills = 0
        capped: list[BrokerOrder] = []
        while queue:
            batch: list[BrokerOrder] = []
            later: list[BrokerOrder] = []
            seen: set[int] = set()
            for o in queue:
                if o.index in seen:
                    later.append(o)
                else:
                    seen.add(o.index)
                    batch.append(o)
            n_fills += self._fill_batch(batch, reference, capped)
            queue = [o for o in later if o.is_open]
        if self.remainder == "cancel":
            for o in capped:
                if o.is_open:
                    self._close(o, OrderStatus.CANCELLED,
                                f"participation cap: {o.remaining:g} shares cancelled")
        self._pending = [o for o in self._pending if o.is_open]
        return n_fills

    def _fill_batch(self, batch: list[BrokerOrder], reference: FloatArray,
                    capped: list[BrokerOrder]) -> int:
        feed = self.feed
        assert feed is not None
        t = self.t
        orders: list[BrokerOrder] = []
        qty: list[float] = []
        for o in batch:
            i = o.index
            px = reference[i]
            if not (px > 0):  # missing bar (NaN): not tradable now
                continue
            q = o.remaining
            if self.participation is not None:
                vol = feed.volume[t, i]
                room = self.participation * vol - self._used[i] if vol > 0 else 0.0
                if room < q:
                    capped.append(o)
                    q = max(room, 0.0)
                    if not self.fractional:
                        q = math.floor(q + 1e-9)
            if q <= 0:
                continue
            orders.append(o)
            qty.append(o.sign * q)
        if not orders:
            return 0
        idx = np.array([o.index for o in orders])
        trades = np.array(qty)
        ref = reference[idx]
        costs = self._evaluate(orders, idx, trades, ref)
        while costs is None:  # an order was rejected by a cost model: retry without it
            keep = [k for k, o in enumerate(orders) if o.is_open]
            orders = [orders[k] for k in keep]
            if not orders:
                return 0
            idx, trades, ref = idx[keep], trades[keep], ref[keep]
            costs = self._evaluate(orders, idx, trades, ref)
        mult = self.multipliers[idx]
        absq = np.abs(trades)
        if len(self.costs):
            slip = costs[self._slip].sum(axis=0) if self._slip.any() else np.zeros(len(idx))
            fee = costs[~self._slip].sum(axis=0) if (~self._slip).any() else np.zeros(len(idx))
        else:
            slip = fee = np.zeros(len(idx))
        fill_px = ref + np.sign(trades) * slip / (absq * mult)
        fast = self._fill_all(orders, idx, trades, ref, fill_px, fee, slip, mult, costs)
        if fast is not None:
            return fast
        made = 0
        gross = None
        for k, o in enumerate(orders):
            q, fp, f = float(trades[k]), float(fill_px[k]), float(fee[k])
            if not abs(fp - ref[k]) < ref[k]:  # impact bound: never a fill at a price <= 0
                self._close(o, OrderStatus.REJECTED,
                            f"slippage {abs(fp - ref[k]):.6g} per share reaches the price "
                            f"{ref[k]:.6g} (a fill at {fp:.6g}): market impact exceeds the "
                            "price; trade less per bar (participation cap) or split the order")
                continue
            if o.order_type is OrderType.LIMIT:
                lim = o.limit_price
                assert lim is not None
                if (q > 0 and fp > lim) or (q < 0 and fp < lim):
                    continue
            i, m = o.index, float(mult[k])
            flow = -(q * fp * m) - f
            h = self.holdings[i]
            if self.account is AccountType.CASH:
                if q < 0 and h + q < -_TOL:
                    self._close(o, OrderStatus.REJECTED,
                                f"short sale of {-(h + q):g} shares in a cash account")
                    continue
                if self.cash + flow < -_TOL * max(1.0, abs(self.cash)):
                    self._close(o, OrderStatus.REJECTED,
                                f"insufficient cash: fill needs {-flow:,.2f}, "
                                f"cash is {self.cash:,.2f}")
                    continue
            else:
                if gross is None:
                    gross = float(np.abs(self.holdings) @ (self.marks * self.multipliers))
                mark = self.marks[i]
                new_gross = gross + (abs(h + q) - abs(h)) * mark * m
                equity = self.get_account_value() + q * (mark - fp) * m - f
                if new_gross > gross and new_gross > self.max_leverage * equity * (1 + _TOL):
                    self._close(o, OrderStatus.REJECTED,
                                f"gross exposure {new_gross:,.2f} would exceed "
                                f"{self.max_leverage:g} x equity {equity:,.2f}")
                    continue
                gross = new_gross
            self._apply(o, q, fp, m, f, flow, float(ref[k]), float(slip[k]),
                        {name: float(costs[j, k]) for j, name in enumerate(self.cost_names)})
            made += 1
        return made

    def _fill_all(self, orders: list[BrokerOrder], idx: np.ndarray, trades: FloatArray,
                  ref: FloatArray, fill_px: FloatArray, fee: FloatArray, slip: FloatArray,
                  mult: FloatArray, costs: np.ndarray) -> int | None:
        """Fill every order of a batch at once when none would be rejected or wait;
        ``None`` (nothing done) otherwise, and the order-by-order loop decides.

        The same floats as the loop, bit for bit: each asset appears once in a batch, so
        the per-asset updates are elementwise; cash, the cost totals and the margin
        account's gross exposure are summed order by order as the loop does. The
        loop's checks are made first, on the same numbers; the margin account's
        equity (one dot product per order in the loop) is followed by adding each
        fill's change, so an order within ``1e-9`` of the leverage limit goes to the
        loop, which decides it with the exact equity.
        """
        if self.taxes is not None or any(o.order_type is not OrderType.MARKET
                                          for o in orders):
            return None
        if not (np.abs(fill_px - ref) < ref).all():  # the impact bound rejects one
            return None
        h = self.holdings[idx]
        flows = -(trades * fill_px * mult) - fee
        flow_l = flows.tolist()
        cash = self.cash
        if self.account is AccountType.CASH:
            if ((trades < 0) & (h + trades < -_TOL)).any():
                return None
            for fl in flow_l:
                if cash + fl < -_TOL * max(1.0, abs(cash)):
                    return None
                cash += fl
        else:
            gross = float(np.abs(self.holdings) @ (self.marks * self.multipliers))
            equity = self.get_account_value()
            marks = self.marks[idx]
            grow = ((np.abs(h + trades) - np.abs(h)) * marks * mult).tolist()
            change = (trades * marks * mult + flows).tolist()
            seen = (trades * (marks - fill_px) * mult - fee).tolist()
            for k, fl in enumerate(flow_l):
                new_gross = gross + grow[k]
                if new_gross > gross and new_gross > (self.max_leverage * (equity + seen[k])
                                                      * (1 + _TOL) * (1 - 1e-9)):
                    return None  # rejected, or too close to call without the exact equity
                gross = new_gross
                equity += change[k]
                cash += fl
        # every order fills: the loop's updates, per asset at once
        avg = self.avg_cost[idx]
        new = h + trades
        opening = (h == 0) | ((h > 0) == (trades > 0))
        red = ~opening
        with np.errstate(divide="ignore", invalid="ignore"):
            avg_new = np.where(opening, (h * avg + trades * fill_px) / new, avg)
        if red.any():
            closed = np.minimum(np.abs(trades), np.abs(h))
            pnl = closed * (fill_px - avg) * mult * np.where(h > 0, 1.0, -1.0)
            self.realized_pnl[idx[red]] += pnl[red]
            gone = red & (np.abs(new) <= _TOL)
            new[gone] = 0.0
            avg_new[gone] = 0.0
            flip = red & ~gone & ((new > 0) != (h > 0))
            avg_new[flip] = fill_px[flip]
        self.holdings[idx] = new
        self.avg_cost[idx] = avg_new
        self.cash = cash
        if self.participation is not None:
            self._used[idx] += np.abs(trades)
        names = self.cost_names
        cost_l = [row.tolist() for row in costs]
        for j, name in enumerate(names):
            total = self.cost_totals[name]
            for c in cost_l[j]:
                total += c
            self.cost_totals[name] = total
        t, stamp, fills = self.t, self.timestamp, self.fills
        for k, (o, q, fp, m, f, r, sl, nw) in enumerate(zip(
                orders, trades.tolist(), fill_px.tolist(), mult.tolist(), fee.tolist(),
                ref.tolist(), slip.tolist(), new.tolist())):
            self._track_position(o.asset, o.index, nw)
            self._mark_filled(o, q, fp)
            fills.append(_fill(
                t, stamp, o.order_id, o.asset, q, r, fp, m, f, sl,
                {name: cost_l[j][k] for j, name in enumerate(names)}, flow_l[k], o.tag))
        return len(orders)

    def _evaluate(self, orders: list[BrokerOrder], idx: np.ndarray, trades: FloatArray,
                  ref: FloatArray) -> np.ndarray | None:
        """Cost per model (rows) and fill (columns), or ``None`` after rejecting an order."""
        if not self.costs:
            return np.zeros((0, len(idx)))
        feed = self.feed
        assert feed is not None
        t = self.t
        state = state_from_arrays(
            feed.assets[idx], ref, self.holdings[idx], self.cash,
            adv=self.adv_table[t, idx], volatility=self.vol_table[t, idx],
            groups=None if feed.groups is None else feed.groups[idx],
            multipliers=self.multipliers[idx], require_positive_equity=False,
        )
        out = np.empty((len(self.costs), len(idx)))
        for j, model in enumerate(self.costs):
            try:
                c = np.asarray(model.evaluate(trades, state), dtype=float)
            except InputError as exc:
                k = (list(state.assets).index(exc.asset)
                     if exc.asset in set(state.assets) else 0)
                self._close(orders[k], OrderStatus.REJECTED, f"{model.name}: {exc}")
                return None
            bad = ~np.isfinite(c) | (c < 0)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                self._close(orders[k], OrderStatus.REJECTED,
                            f"{model.name} returned cost {c[k]!r}")
                return None
            out[j] = c
        return out

    def _apply(self, o: BrokerOrder, q: float, fp: float, m: float, fee: float, flow: float,
               ref: float, slip: float, costs: dict[str, float]) -> None:
        i = o.index
        h = self.holdings[i]
        avg = self.avg_cost[i]
        new = h + q
        if h == 0 or (h > 0) == (q > 0):  # open or add
            self.avg_cost[i] = (h * avg + q * fp) / new
        else:  # reduce, close or flip
            closed = min(abs(q), abs(h))
            self.realized_pnl[i] += closed * (fp - avg) * m * (1.0 if h > 0 else -1.0)
            if abs(new) <= _TOL:
                new = 0.0
                self.avg_cost[i] = 0.0
            elif (new > 0) != (h > 0):
                self.avg_cost[i] = fp
        self.holdings[i] = new
        self.cash += flow
        if self.taxes is not None:
            self.taxes.on_fill(o.asset, q, fp, fee, m, self.timestamp)
        self._track_position(o.asset, i, new)
        if self.participation is not None:
            self._used[i] += abs(q)
        self._mark_filled(o, q, fp)
        for name, c in costs.items():
            self.cost_totals[name] += c
        self.fills.append(_fill(self.t, self.timestamp, o.order_id, o.asset, q, ref, fp, m,
                                fee, slip, costs, flow, o.tag))

    # ----------------------------------------------------------------- views
    def orders_frame(self) -> pd.DataFrame:
        """Every order with its status, fill and reason."""
        return orders_frame(self.orders)

    def __repr__(self) -> str:
        if self.feed is None:
            return f"SimulatedBroker(cash={self.initial_cash:,.2f}, unbound)"
        return (f"SimulatedBroker({self.account.value}, cash={self.cash:,.2f}, "
                f"equity={self.get_account_value():,.2f}, positions={len(self.positions)}, "
                f"pending={len(self.get_pending_orders())})")
