"""rebalopt inside ml4t.backtest: a drop-in for its ``TargetWeightExecutor``.

``pip install 'rebalopt[ml4t]'`` (ml4t-backtest 0.2.0 needs Python >= 3.12).

:class:`Ml4tExecutor` has the executor call of ml4t.backtest,
``execute(target_weights, data, broker, *, timestamp=None, is_session_close=None)
-> list[Order]``, so a strategy swaps one line. Per call it

1. reads the ml4t broker: positions (shares or contracts), cash, account value,
   contract multipliers, the share type (whole or fractional shares) and the cash
   buffer the broker's gatekeeper keeps;
2. plans with any rebalopt rebalancer (``plan(state, targets)``) at the bar's close;
3. sizes the orders so the broker's gatekeeper accepts them: sells are rounded to
   whole shares (never past a long holding unless the plan shorts); buys must fit
   cash plus sell proceeds after their expected costs and a reserve for the move
   between the close the plan sees and the price the order fills at (a flat
   ``headroom`` plus ``gap_sigmas`` daily volatilities of the traded value), and
   are scaled down and rounded *down* when they do not;
4. cancels the broker's pending orders (stale targets), only once the plan is
   built, so an input error leaves the broker untouched;
5. submits sells before buys through ``broker.submit_order``.

Cost models. :func:`translate_costs` turns ml4t's commission and slippage models
into rebalopt cost models where the cost of a trade is the same function:

=====================================  ==========================================
ml4t.backtest model                    rebalopt model
=====================================  ==========================================
``NoCommission`` / ``NoSlippage``      nothing
``PercentageCommission(rate)``         ``Commission(bps=rate * 1e4)``
``PerShareCommission(s, minimum)``     ``Commission(per_share=s, minimum=minimum)``
``PerOrderPerShareCommission``         ``Commission(per_share=s, minimum=minimum)``
``PerOrderCommission(s, r, t, m)``     ``Commission(s, r * 1e4, per_order=t)`` if
                                       ``m == 0``; ``Commission(s, r * 1e4,
                                       minimum=m)`` if ``t == 0``
``CombinedCommission(p, fixed)``       ``Commission(bps=p * 1e4, per_order=fixed)``
``FuturesCommission``                  ``Commission(per_share=block, minimum=trade)``
                                       or ``Commission(bps=..., minimum=trade)``
                                       when only one of block/percentage is set
``PercentageSlippage(rate)``           ``Spread(half_spread_bps=rate * 1e4)``
``FixedSlippage(amount)``              :class:`PerShareSlippage` ``(amount)``
``SpreadSlippage(spread, ...)``        :class:`PerShareSlippage` (half or full
                                       spread per share, per asset)
=====================================  ==========================================

Not translated (reported in :attr:`Translation.untranslated`, never silently
dropped): ``TieredCommission`` (the rate falls with trade size: concave, not
convex), ``AssetCommission`` (per-asset routing), ``FuturesCommission`` with both
a per-block and a percentage part (a max of two linear costs), ``PerOrderCommission``
with both a fixed fee and a minimum, ``VolumeShareSlippage`` and
``CumulativeVolumeShareSlippage`` (they depend on the *fill* bar's traded volume,
unknown when planning: approximate with ``MarketImpact(exponent=2)`` on an ADV
estimate), ``VolatilityVolumeSlippage`` and ``AssetSlippage`` (callbacks and
routing), and the broker's separate ``market_impact_model``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.costs import Commission, CostModel, Spread
from rebalopt.errors import InputError
from rebalopt.program import CostTerms
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.risk import Identity
from rebalopt.risk.estimators import sample_covariance
from rebalopt.state import PortfolioState

__all__ = ["Ml4tExecutor", "PerShareSlippage", "Sizing", "Translation", "translate_costs"]


# ------------------------------------------------------------------ cost models
@dataclass
class PerShareSlippage(CostModel):
    r"""A price concession of a fixed amount of currency per share (or contract).

    .. math:: c_i = a_i\,|q_i|\,m_i, \qquad c_i / V = \frac{a_i}{p_i} |z_i|

    The ml4t broker fills buys at ``p + a`` and sells at ``p - a`` (``FixedSlippage``,
    ``SpreadSlippage``); this is that cost. As a fraction of price it depends on the
    price, so the optimizer's coefficient is ``a / p`` at the planning state.

    Parameters
    ----------
    amount
        Currency per share: one number, or a mapping keyed by ticker.
    default
        Amount for tickers missing from a mapping ``amount``.
    """

    amount: float | Mapping[str, float] = 0.0
    default: float = 0.0
    label: str | None = None
    is_slippage = True

    def amounts(self, state: PortfolioState) -> FloatArray:
        """Currency per share per asset."""
        if isinstance(self.amount, Mapping):
            s = pd.Series({str(k): float(v) for k, v in self.amount.items()}, dtype=float)
            out = s.reindex(state.assets).fillna(self.default).to_numpy(dtype=float)
        else:
            out = np.full(state.n, float(self.amount))
        bad = ~np.isfinite(out) | (out < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"must be finite and >= 0, got {out[i]}",
                             asset=str(state.assets[i]), field="PerShareSlippage.amount")
        return out

    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        return np.abs(np.asarray(trades, dtype=float)) * self.amounts(state) * state.multipliers

    def terms(self, state: PortfolioState) -> CostTerms:
        """Linear: ``amount_i / p_i * |z_i|`` (fraction of equity)."""
        return CostTerms(linear=self.amounts(state) / state.prices)


@dataclass
class Translation:
    """ml4t models translated to rebalopt cost models.

    Attributes
    ----------
    costs
        The equivalent rebalopt cost models.
    untranslated
        One line per ml4t model with no convex equivalent, saying why.
    """

    costs: list[CostModel] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Whether every model was translated."""
        return not self.untranslated


def _commission(model: Any, out: Translation) -> None:
    name = type(model).__name__
    if name == "NoCommission":
        return
    if name == "PercentageCommission":
        out.costs.append(Commission(bps=float(model.rate) * 1e4, label="ml4t commission"))
    elif name in ("PerShareCommission", "PerOrderPerShareCommission") and not getattr(
            model, "rate", 0.0) and not getattr(model, "per_trade", 0.0):
        out.costs.append(Commission(per_share=float(model.per_share),
                                    minimum=float(model.minimum), label="ml4t commission"))
    elif name == "PerOrderCommission" or name == "PerOrderPerShareCommission":
        ps, rate = float(model.per_share), float(model.rate)
        fixed, minimum = float(model.per_trade), float(model.minimum)
        if fixed and minimum:
            out.untranslated.append(
                f"{name}: max(linear + per_trade, minimum) with both a fixed fee and a minimum "
                "has no Commission equivalent")
        else:
            out.costs.append(Commission(per_share=ps, bps=rate * 1e4, minimum=minimum,
                                        per_order=fixed, label="ml4t commission"))
    elif name == "CombinedCommission":
        out.costs.append(Commission(bps=float(model.percentage) * 1e4,
                                    per_order=float(model.fixed), label="ml4t commission"))
    elif name == "FuturesCommission":
        block, pct, trade = float(model.per_block), float(model.percentage), float(model.per_trade)
        if block and pct:
            out.untranslated.append(
                f"{name}: max(per_trade, per_block*|q|, percentage*notional) with both "
                "linear parts is a max of two linear costs, not a Commission")
        else:
            out.costs.append(Commission(per_share=block, bps=pct * 1e4, minimum=trade,
                                        label="ml4t commission"))
    else:
        out.untranslated.append(
            f"{name}: no rebalopt equivalent (tiered or routed fees are not convex in size)")


def _slippage(model: Any, out: Translation) -> None:
    name = type(model).__name__
    if name == "NoSlippage":
        return
    if name == "PercentageSlippage":
        out.costs.append(Spread(half_spread_bps=float(model.rate) * 1e4, label="ml4t slippage"))
    elif name == "FixedSlippage":
        out.costs.append(PerShareSlippage(float(model.amount), label="ml4t slippage"))
    elif name == "SpreadSlippage":
        half = 0.5 if model.convention == "full_spread" else 1.0
        per_asset = {str(k): float(v) * half for k, v in model.asset_spreads.items()}
        default = float(model.spread) * half
        amount: float | dict[str, float] = per_asset if per_asset else default
        out.costs.append(PerShareSlippage(amount, default=default, label="ml4t slippage"))
    else:
        out.untranslated.append(
            f"{name}: depends on the fill bar's volume or on callbacks, unknown when planning; "
            "approximate with MarketImpact on an ADV estimate")


def translate_costs(commission_model: Any = None, slippage_model: Any = None,
                    market_impact_model: Any = None) -> Translation:
    """rebalopt cost models equivalent to ml4t.backtest's commission and slippage models.

    Parameters
    ----------
    commission_model, slippage_model, market_impact_model
        ml4t.backtest model instances (``None`` = none), for example
        ``broker.commission_model``.

    Returns
    -------
    Translation
        The cost models, and a line per model that does not translate (module
        docstring has the table).
    """
    out = Translation()
    if commission_model is not None:
        _commission(commission_model, out)
    if slippage_model is not None:
        _slippage(slippage_model, out)
    if market_impact_model is not None and type(market_impact_model).__name__ != "NoImpact":
        out.untranslated.append(
            f"{type(market_impact_model).__name__}: the broker's market-impact model is not "
            "translated; add rebalopt.MarketImpact with your ADV and volatility")
    return out


# --------------------------------------------------------------------- executor
@dataclass
class Sizing:
    """How the last plan was sized into orders.

    Attributes
    ----------
    planned
        Trades from the rebalancer, shares.
    ordered
        Trades sent to the broker, shares (whole if the broker trades whole shares).
    budget
        Cash available for buys after sells, at ``price * (1 - headroom)``, minus
        costs and the broker's cash buffer (currency).
    buy_need
        Cash the planned buys would need: value, costs and gap reserve (currency).
    buy_scale
        Factor applied to the planned buys (1 when the budget sufficed).
    """

    planned: FloatArray
    ordered: FloatArray
    budget: float
    buy_need: float
    buy_scale: float


def _bar_value(bar: Any, key: str) -> Any:
    if bar is None:
        return None
    if isinstance(bar, Mapping):
        v = bar.get(key)
        if v is None and isinstance(bar.get("signals"), Mapping):
            v = bar["signals"].get(key)
        return v
    return getattr(bar, key, None)


@dataclass
class Ml4tExecutor:
    """ml4t.backtest executor that plans with a rebalopt rebalancer.

    Parameters
    ----------
    rebalancer
        Anything with ``plan(state, targets) -> RebalancePlan``: ``NaiveRebalancer``,
        ``BandRebalancer``, ``OptimalRebalancer``. Its cost models should match the
        broker's (see :func:`translate_costs`).
    headroom
        Fraction of price reserved against the move from this bar's close to the
        fill: buys reserve ``headroom`` times their value and sells count at
        ``price * (1 - headroom)``. A cash account keeps about this fraction of the
        bought value idle, plus the ``gap_sigmas`` reserve.
    gap_sigmas
        Cash reserve against price moves before the fill, in daily volatilities of
        the traded value (see :meth:`size`). Volatility comes from the bar
        (``data[asset]["volatility"]`` or its ``signals``) or from :attr:`volatility`;
        unknown volatility adds nothing. Next-bar fills of daily bars can gap by
        several percent, more than a flat headroom covers.
    volatility
        Daily return volatility per ticker (fraction), used by ``gap_sigmas`` when the
        bar has none; the strategy may update it between calls.
    price_field
        Bar field the plan prices at (ml4t's executor uses ``"close"``).
    cancel_pending
        Cancel the broker's pending orders before submitting (after planning).
    covariance_window
        Bars of returns for a tracking-error risk model estimated from the bars the
        executor sees (Ledoit-Wolf shrunk sample covariance, annualized with 252
        bars a year), set as the rebalancer's ``risk`` before each plan once the
        window is full (identity risk before that). ``None`` (default) leaves the
        rebalancer's risk alone; a rebalancer planning with identity risk (no risk
        model given) then trades much like naive rebalancing, and a
        ``UserWarning`` says so when the executor is built.

    Attributes
    ----------
    last_plan
        The plan of the last call (``None`` before the first).
    last_sizing
        The :class:`Sizing` of the last call.
    """

    rebalancer: Any
    headroom: float = 0.005
    gap_sigmas: float = 2.0
    volatility: pd.Series | Mapping[str, float] | None = None
    price_field: str = "close"
    cancel_pending: bool = True
    covariance_window: int | None = None
    last_plan: RebalancePlan | None = field(default=None, init=False, repr=False)
    last_sizing: Sizing | None = field(default=None, init=False, repr=False)
    _closes: list[dict[str, float]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not callable(getattr(self.rebalancer, "plan", None)):
            raise InputError("rebalancer must have plan(state, targets)",
                             field="Ml4tExecutor.rebalancer")
        if not (math.isfinite(self.headroom) and 0 <= self.headroom < 0.5):
            raise InputError(f"must be in [0, 0.5), got {self.headroom}",
                             field="Ml4tExecutor.headroom")
        if not (math.isfinite(self.gap_sigmas) and self.gap_sigmas >= 0):
            raise InputError(f"must be finite and >= 0, got {self.gap_sigmas}",
                             field="Ml4tExecutor.gap_sigmas")
        w = self.covariance_window
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 3):
            raise InputError(f"must be an integer >= 3 (bars), got {w!r}",
                             field="Ml4tExecutor.covariance_window")
        holder = self._risk_holder()
        if holder is not None and w is None and (
                holder.risk is None or isinstance(holder.risk, Identity)):
            warnings.warn(
                f"{type(holder).__name__} plans with identity risk (plain weight distance, "
                "no covariance), which trades much like naive rebalancing: pass "
                "Ml4tExecutor(covariance_window=60) to estimate a covariance from the bars, "
                "or give the rebalancer a risk model", UserWarning, stacklevel=3)

    def _risk_holder(self) -> Any:
        """The object whose ``risk`` the plan uses (an integer stage's relaxation), or None."""
        holder = getattr(self.rebalancer, "relaxation", self.rebalancer)
        return holder if hasattr(holder, "risk") else None

    # ------------------------------------------------------------------ risk
    def observe(self, data: Mapping[str, Any]) -> None:
        """Record this bar's prices (``price_field``) for :attr:`covariance_window`."""
        if self.covariance_window is None:
            return
        row = {}
        for a, bar in data.items():
            v = _bar_value(bar, self.price_field)
            if v is not None and math.isfinite(float(v)) and float(v) > 0:
                row[str(a)] = float(v)
        self._closes.append(row)
        del self._closes[: -(self.covariance_window + 1)]

    def covariance(self, assets: list[str] | None = None) -> Any:
        """The covariance of the last :attr:`covariance_window` bars' simple returns
        (annualized, Ledoit-Wolf), or ``None`` until the window is full. Assets with
        a missing price in the window get the average variance (``missing="average"``)."""
        w = self.covariance_window
        if w is None or len(self._closes) < w + 1:
            return None
        closes = pd.DataFrame(self._closes).astype(float)
        returns = closes.pct_change(fill_method=None).iloc[1:]
        returns = returns.dropna(axis=1, how="any")
        if returns.shape[1] == 0:
            return None
        return sample_covariance(returns, "ledoit_wolf", 252.0, missing="average")

    # ------------------------------------------------------------------ reading
    def state(self, broker: Any, data: Mapping[str, Any],
              target_weights: Mapping[str, float]) -> PortfolioState:
        """The broker's book as a :class:`PortfolioState` priced at this bar.

        Holdings from ``broker.get_positions()``, cash from ``broker.get_cash()``,
        multipliers from ``broker.get_multiplier``; a held asset with no bar uses
        ``broker.get_last_price`` then the position's mark. Optional bar (or bar
        ``signals``) fields ``adv``, ``volatility``, ``sector``, ``lot_size`` feed
        cost models and constraints.
        """
        positions = broker.get_positions()
        holdings = {str(a): float(p.quantity) for a, p in positions.items()
                    if float(p.quantity) != 0.0}
        assets = list(dict.fromkeys([*holdings, *map(str, target_weights), *map(str, data)]))
        prices: dict[str, float] = {}
        extra: dict[str, dict[str, Any]] = {"adv": {}, "volatility": {}, "groups": {},
                                            "lot_sizes": {}}
        keys = {"adv": "adv", "volatility": "volatility", "groups": "sector",
                "lot_sizes": "lot_size"}
        for a in assets:
            bar = data.get(a)
            px = _bar_value(bar, self.price_field)
            if px is None and a in holdings:
                px = broker.get_last_price(a)
                if px is None:
                    px = getattr(positions[a], "current_price", None)
            prices[a] = float(px) if px is not None else float("nan")
            for target, key in keys.items():
                v = _bar_value(bar, key)
                if v is not None:
                    extra[target][a] = v
        if self.volatility is not None:
            for a, v in dict(self.volatility).items():
                if str(a) in prices and str(a) not in extra["volatility"]:
                    extra["volatility"][str(a)] = v
        multipliers = {a: float(broker.get_multiplier(a)) for a in assets}
        kwargs = {k: v for k, v in extra.items() if v}
        return PortfolioState(holdings, float(broker.get_cash()), prices,
                              multipliers=multipliers, **kwargs)

    # ------------------------------------------------------------------- sizing
    def size(self, plan: RebalancePlan, whole: bool, cash_buffer_pct: float = 0.0) -> Sizing:
        r"""Orders (shares) from ``plan`` that a cash account can fund at the fill.

        Sells: rounded to the nearest whole share when ``whole``, never past a long
        holding the plan keeps long (or a short it keeps short); their proceeds count
        at ``price * (1 - headroom)`` less their costs. Buys need their value at the
        reference price, their costs, and a gap reserve

        .. math:: R = h \sum_i b_i + k \Big(\big|\sum_i b_i\sigma_i - \sum_i s_i\sigma_i\big|
                  + \sqrt{\textstyle\sum_i (b_i\sigma_i)^2 + (s_i\sigma_i)^2}\Big)

        (``b``, ``s`` bought and sold value, ``h = headroom``, ``k = gap_sigmas``,
        ``sigma`` daily volatility): a common move of ``k`` sigmas on the net bought
        value plus ``k`` sigmas of diversified idiosyncratic moves. When short, buys
        are scaled down (bisection on the scale), rounded down, then trimmed a share
        at a time from the largest.
        """
        s = plan.state
        vol = np.where(np.isfinite(s.volatility), s.volatility, 0.0)
        unit = s.prices * s.multipliers
        planned = np.asarray(plan.trades, dtype=float)
        q = planned.copy()
        if whole:
            q = np.where(q < 0, -np.floor(-q + 0.5), q)
        post = s.holdings + q
        planned_post = s.holdings + planned
        crossed = (s.holdings > 0) & (post < 0) & (planned_post >= 0)
        q[crossed] = -s.holdings[crossed]
        crossed = (s.holdings < 0) & (post > 0) & (planned_post <= 0)
        q[crossed] = -s.holdings[crossed]
        costs = list(getattr(self.rebalancer, "costs", []) or [])

        def cost(trades: FloatArray) -> float:
            return float(sum(np.sum(m.evaluate(trades, s)) for m in costs))

        sells = np.where(q < 0, q, 0.0)
        sell_value = -sells * unit
        budget = (max(s.cash, 0.0) * (1 - cash_buffer_pct) + float(sell_value.sum())
                  * (1 - self.headroom) - cost(sells))
        buys = np.where(q > 0, q, 0.0)

        def need(b: FloatArray) -> float:
            """Cash for buys ``b`` at the reference price plus costs plus the gap reserve."""
            bv = b * unit
            common = abs(float((bv * vol).sum() - (sell_value * vol).sum()))
            idio = math.sqrt(float(((bv * vol) ** 2).sum() + ((sell_value * vol) ** 2).sum()))
            reserve = self.headroom * float(bv.sum()) + self.gap_sigmas * (common + idio)
            return float(bv.sum()) + cost(b) + reserve

        need0 = need(buys)
        scale = 1.0
        if need0 > budget:
            lo, hi = 0.0, 1.0
            for _ in range(50):  # need(scale * buys) increases with scale: bisect
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if need(mid * buys) <= budget else (lo, mid)
            scale = lo
            buys = buys * scale
        if whole:
            buys = np.floor(buys + (0.0 if scale < 1 else 0.5))
            for _ in range(10 * s.n):
                if need(buys) <= budget or not buys.any():
                    break
                i = int(np.argmax(buys * unit))
                buys[i] -= 1.0
        ordered = np.where(q < 0, q, buys)
        ordered[ordered == 0] = 0.0
        return Sizing(planned=planned, ordered=ordered, budget=budget, buy_need=need0,
                      buy_scale=scale)

    # ------------------------------------------------------------------ execute
    def execute(self, target_weights: Mapping[str, float], data: Mapping[str, Any],
                broker: Any, *, timestamp: Any = None,
                is_session_close: bool | None = None) -> list[Any]:
        """ml4t.backtest's executor call: plan, size, cancel stale orders, submit.

        Parameters
        ----------
        target_weights
            Weights (fractions of account value) keyed by ticker; anything
            :func:`~rebalopt.adapters.to_target_weights` reads.
        data
            The bar: ``{asset: {"close": price, ...}}``.
        broker
            The ml4t ``Broker``.
        timestamp, is_session_close
            Accepted for signature compatibility; scheduling is the strategy's call
            (every call rebalances).

        Returns
        -------
        list
            The ml4t ``Order`` objects the broker accepted, sells first.
        """
        from ml4t.backtest.config import ShareType
        from ml4t.backtest.types import OrderSide

        from rebalopt.adapters.weights import to_target_weights

        targets = to_target_weights(target_weights)
        if self.covariance_window is not None:
            self.observe(data)
            cov = self.covariance()
            holder = self._risk_holder()
            if cov is not None and holder is not None:
                holder.risk = cov
        state = self.state(broker, data, targets.to_dict())
        plan = self.rebalancer.plan(state, targets)
        whole = getattr(broker, "share_type", ShareType.INTEGER) == ShareType.INTEGER
        sizing = self.size(plan, whole, float(getattr(broker, "cash_buffer_pct", 0.0) or 0.0))
        self.last_plan, self.last_sizing = plan, sizing
        if self.cancel_pending:
            for pending in broker.get_pending_orders():
                broker.cancel_order(pending.order_id)
        submitted: list[Any] = []
        q = sizing.ordered
        for side, idx in ((OrderSide.SELL, np.flatnonzero(q < 0)),
                          (OrderSide.BUY, np.flatnonzero(q > 0))):
            for i in idx:
                order = broker.submit_order(str(state.assets[i]), float(abs(q[i])), side)
                if order is not None:
                    submitted.append(order)
        return submitted
