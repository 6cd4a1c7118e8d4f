"""PortfolioState: where the book stands now, validated once.

Units: holdings in shares (contracts for futures; negative = short), cash and
equity in currency, prices in currency per share, ADV in shares per day,
volatility as the daily standard deviation of returns (a fraction, e.g. 0.02),
weights as fractions of equity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.adapters.weights import labelled_targets
from rebalopt.errors import InputError

__all__ = ["PortfolioState"]


def _as_series(values: Any, field: str) -> pd.Series:
    """Turn a Series or mapping keyed by ticker into a Series with unique string keys."""
    if values is None:
        return pd.Series(dtype=float)
    if isinstance(values, pd.Series):
        s = values
    elif isinstance(values, Mapping):
        s = pd.Series(dict(values), dtype=object)
    else:
        raise InputError(
            f"expected a pandas Series or a mapping keyed by ticker, got {type(values).__name__}",
            field=field,
        )
    s = s.copy()
    s.index = s.index.map(str)
    dup = s.index[s.index.duplicated()]
    if len(dup):
        raise InputError("duplicate ticker", asset=str(dup[0]), field=field)
    return s


def _numeric(s: pd.Series, field: str) -> pd.Series:
    """Coerce to float, naming the first asset whose value is not a number."""
    out = pd.to_numeric(s, errors="coerce").astype(float)
    bad = out.isna() & s.notna()
    if bad.any():
        asset = str(out.index[bad][0])
        raise InputError(f"value {s[asset]!r} is not a number", asset=asset, field=field)
    return out


def _first(mask: np.ndarray, index: pd.Index) -> str:
    return str(index[np.flatnonzero(mask)[0]])


class PortfolioState:
    """Holdings, cash and prices of one account, plus optional per-asset data.

    The universe (``assets``) is every asset with a valid price plus every held
    asset. An asset that is *not held* and whose price is missing, NaN or not
    positive is left out of the universe (it cannot be traded); a target weight
    for it is then rejected by :meth:`target_weights`. A *held* asset must have a
    finite positive price.

    Parameters
    ----------
    holdings
        Shares per ticker (negative = short). Assets not listed hold zero.
    cash
        Cash balance in currency (negative = borrowed, margin accounts only).
    prices
        Reference price per ticker, currency per share.
    adv
        Average daily volume, shares per day (>= 0). Needed by market impact and
        participation limits. Missing entries are NaN.
    volatility
        Daily return volatility (fraction, >= 0). Needed by market impact.
    groups
        Group label per ticker (for example the GICS sector).
    lot_sizes
        Trading lot per ticker in shares (> 0); 1 means whole shares. Default 1.
    multipliers
        Contract multiplier (> 0), currency per point per contract. Default 1.
    lots
        Tax lots (:class:`~rebalopt.taxes.TaxLots`, a DataFrame or a mapping ticker ->
        lots), or ``None``. Each holding must equal the sum of its lots' shares
        (InputError naming the asset and its lots otherwise).
    """

    lots: Any = None
    """The account's :class:`~rebalopt.taxes.TaxLots`, or ``None`` (no lot data)."""

    def __init__(
        self,
        holdings: pd.Series | Mapping[str, float] | None,
        cash: float,
        prices: pd.Series | Mapping[str, float],
        *,
        adv: pd.Series | Mapping[str, float] | None = None,
        volatility: pd.Series | Mapping[str, float] | None = None,
        groups: pd.Series | Mapping[str, str] | None = None,
        lot_sizes: pd.Series | Mapping[str, float] | None = None,
        multipliers: pd.Series | Mapping[str, float] | None = None,
        lots: Any = None,
    ) -> None:
        try:
            cash_f = float(cash)
        except (TypeError, ValueError):
            raise InputError(f"cash {cash!r} is not a number", field="cash") from None
        if not np.isfinite(cash_f):
            raise InputError(f"cash must be finite, got {cash_f}", field="cash")

        px = _numeric(_as_series(prices, "price"), "price")
        hold = _numeric(_as_series(holdings, "holdings"), "holdings")
        bad = ~np.isfinite(hold.to_numpy())
        if bad.any():
            asset = _first(bad, hold.index)
            raise InputError(f"holding {hold[asset]} is not finite", asset=asset, field="holdings")
        hold = hold[hold != 0.0]

        valid_px = np.isfinite(px.to_numpy()) & (px.to_numpy() > 0)
        for asset in hold.index:
            if asset not in px.index:
                raise InputError("held asset has no price", asset=asset, field="price")
            if not valid_px[px.index.get_loc(asset)]:
                raise InputError(
                    f"held asset has invalid price {px[asset]!r} (must be finite and > 0)",
                    asset=asset,
                    field="price",
                )
        self.unpriced: dict[str, float] = {
            str(a): float(v) for a, v in px[~valid_px].items()
        }
        """Assets given with an invalid price and no holding, left out of the universe."""
        px = px[valid_px]
        if len(px) == 0:
            raise InputError("empty universe: no asset has a valid price", field="price")

        self.assets: pd.Index = pd.Index(px.index, dtype=object, name="asset")
        self.prices: FloatArray = px.to_numpy(dtype=float)
        self.holdings: FloatArray = hold.reindex(self.assets).fillna(0.0).to_numpy(dtype=float)
        self.cash: float = cash_f

        self.adv = self._optional(adv, "adv", np.nan, nonneg=True)
        self.volatility = self._optional(volatility, "volatility", np.nan, nonneg=True)
        self.lot_sizes = self._optional(lot_sizes, "lot_size", 1.0, positive=True)
        self.multipliers = self._optional(multipliers, "multiplier", 1.0, positive=True)
        g = _as_series(groups, "group")
        self.groups: np.ndarray = np.array(
            [None if pd.isna(v) else str(v) for v in g.reindex(self.assets).to_numpy()],
            dtype=object,
        )

        self.values: FloatArray = self.holdings * self.prices * self.multipliers
        """Position values in currency (negative for shorts)."""
        self.equity: float = float(self.cash + self.values.sum())
        """Net liquidation value in currency: cash + sum of position values."""
        if not self.equity > 0:
            raise InputError(
                f"equity (cash + positions) must be positive, got {self.equity:.2f}",
                field="equity",
            )
        self.weights: FloatArray = self.values / self.equity
        """Current weights, fractions of equity."""
        if lots is not None:
            from rebalopt.taxes.lots import TaxLots

            self.lots = TaxLots.coerce(lots)
            self.lots.check_holdings(self.assets, self.holdings)

    # ------------------------------------------------------------------ helpers
    def _optional(
        self, values: Any, field: str, default: float, *, nonneg: bool = False,
        positive: bool = False,
    ) -> FloatArray:
        s = _numeric(_as_series(values, field), field)
        s = s[s.index.isin(self.assets)]
        arr = s.to_numpy()
        finite = np.isfinite(arr)
        if np.isinf(arr).any():
            raise InputError("value is infinite", asset=_first(np.isinf(arr), s.index), field=field)
        if positive and (~finite | (arr <= 0)).any():
            asset = _first(~finite | (arr <= 0), s.index)
            raise InputError(f"must be finite and > 0, got {s[asset]}", asset=asset, field=field)
        if nonneg and (finite & (arr < 0)).any():
            asset = _first(finite & (arr < 0), s.index)
            raise InputError(f"must be >= 0, got {s[asset]}", asset=asset, field=field)
        return s.reindex(self.assets).fillna(default).to_numpy(dtype=float)

    @property
    def n(self) -> int:
        """Number of assets in the universe."""
        return len(self.assets)

    @property
    def cash_weight(self) -> float:
        """Cash as a fraction of equity."""
        return self.cash / self.equity

    def index_of(self, asset: str) -> int:
        """Position of ``asset`` in the universe arrays."""
        try:
            return int(self.assets.get_loc(asset))
        except KeyError:
            raise InputError("asset is not in the universe", asset=asset) from None

    def align(self, values: Any, field: str, default: float = 0.0) -> FloatArray:
        """Align per-asset numbers to ``assets``, validating every entry.

        Accepts a Series or mapping keyed by ticker, or a NumPy array already in
        universe order. Non-zero values for assets outside the universe are an
        error (a target for an asset with no valid price); zeros are ignored.
        """
        fast = self._align_fast(values)
        if fast is not None:
            return fast
        if isinstance(values, np.ndarray):
            arr = np.asarray(values, dtype=float)
            if arr.shape != (self.n,):
                raise InputError(
                    f"array of shape {arr.shape} does not match {self.n} assets; "
                    "pass a Series keyed by ticker",
                    field=field,
                )
            s = pd.Series(arr, index=self.assets)
        else:
            s = _numeric(_as_series(values, field), field)
        arr = s.to_numpy()
        if (~np.isfinite(arr)).any():
            asset = _first(~np.isfinite(arr), s.index)
            raise InputError(f"value {s[asset]} is not finite", asset=asset, field=field)
        outside = ~s.index.isin(self.assets) & (arr != 0)
        if outside.any():
            asset = _first(outside, s.index)
            why = (
                f"its price {self.unpriced[asset]!r} is invalid"
                if asset in self.unpriced
                else "it has no price"
            )
            raise InputError(f"nonzero {field} for an asset outside the universe: {why}",
                             asset=asset, field=field)
        return s.reindex(self.assets).fillna(default).to_numpy(dtype=float)

    def _align_fast(self, values: Any) -> FloatArray | None:
        """The common case without pandas: an array of the universe's shape, or a Series
        indexed exactly like ``assets``, all finite. ``None`` sends the input through
        the full path of :meth:`align` (which also words every error)."""
        try:
            if isinstance(values, np.ndarray):
                if values.shape != (self.n,):
                    return None
                arr = np.array(values, dtype=float)
            elif isinstance(values, pd.Series) and values.index.equals(self.assets):
                arr = values.to_numpy(dtype=float, copy=True)
            else:
                return None
        except (TypeError, ValueError):
            return None
        return arr if np.isfinite(arr).all() else None

    def target_weights(self, targets: Any) -> FloatArray:
        """Validated target weights (fractions of equity) in universe order.

        Assets absent from ``targets`` get weight 0 (held ones are closed).
        ``targets`` is a Series or mapping keyed by ticker, or an optimizer's own
        object (skfolio estimator or portfolio, riskfolio-lib weights DataFrame,
        PyPortfolioOpt optimizer): names are matched, never positions, so a bare
        array or list is an :class:`InputError` (``field='targets'``); see
        :func:`rebalopt.adapters.weights.labelled_targets`.
        """
        if not (isinstance(targets, pd.Series) and targets.index.equals(self.assets)):
            targets = labelled_targets(targets, self.n)
        return self.align(targets, "target weight")

    def after(self, trades: FloatArray, costs: float) -> PortfolioState:
        """The state after trading ``trades`` shares at the reference prices and paying
        ``costs`` (currency) on top of the traded notional (without tax lots: the
        lots a sale relieves are chosen by a :class:`~rebalopt.taxes.LotLedger`)."""
        trades = np.asarray(trades, dtype=float)
        notional = float((trades * self.prices * self.multipliers).sum())
        return self.replace(
            holdings=pd.Series(self.holdings + trades, index=self.assets),
            cash=self.cash - notional - costs,
            lots=None,  # which lots a sale relieves is the ledger's business
        )

    def replace(self, **changes: Any) -> PortfolioState:
        """A copy with some inputs replaced (keyword names as in the constructor)."""
        kwargs: dict[str, Any] = dict(
            holdings=pd.Series(self.holdings, index=self.assets),
            cash=self.cash,
            prices=pd.Series(self.prices, index=self.assets),
            adv=pd.Series(self.adv, index=self.assets),
            volatility=pd.Series(self.volatility, index=self.assets),
            groups=pd.Series(self.groups, index=self.assets),
            lot_sizes=pd.Series(self.lot_sizes, index=self.assets),
            multipliers=pd.Series(self.multipliers, index=self.assets),
            lots=self.lots,
        )
        kwargs.update(changes)
        holdings = kwargs.pop("holdings")
        cash = kwargs.pop("cash")
        prices = kwargs.pop("prices")
        return PortfolioState(holdings, cash, prices, **kwargs)

    def to_frame(self) -> pd.DataFrame:
        """One row per asset: price, holding, value, weight and optional data."""
        return pd.DataFrame(
            {
                "price": self.prices,
                "holding": self.holdings,
                "value": self.values,
                "weight": self.weights,
                "adv": self.adv,
                "volatility": self.volatility,
                "group": self.groups,
                "lot_size": self.lot_sizes,
                "multiplier": self.multipliers,
            },
            index=self.assets,
        )

    def __repr__(self) -> str:
        return (
            f"PortfolioState(assets={self.n}, held={int((self.holdings != 0).sum())}, "
            f"cash={self.cash:,.2f}, equity={self.equity:,.2f})"
        )
