"""Market impact: a power law in participation (square-root price impact by default)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebalopt._checks import number, require_nonneg
from rebalopt._typing import FloatArray
from rebalopt.costs._base import CostModel
from rebalopt.errors import InputError
from rebalopt.program.terms import CostTerms, PowerTerm
from rebalopt.state import PortfolioState

__all__ = ["MarketImpact"]


@dataclass
class MarketImpact(CostModel):
    r"""Power-law market impact.

    .. math:: c_i = \text{coef}\cdot\sigma_i\,|q_i|\,p_i m_i
              \left(\frac{|q_i|}{\text{ADV}_i}\right)^{\text{exponent}-1}

    in currency, for a trade of ``q_i`` shares, daily volatility ``sigma_i`` and
    average daily volume ``ADV_i`` (shares/day). With ``exponent=1.5`` the price
    moves by ``coef * sigma * sqrt(|q| / ADV)`` (the square-root law) and the cost
    grows as ``|q|**1.5``. In trade weights ``z`` (fraction of equity ``V``):

    .. math:: c_i / V = a_i |z_i|^{\text{exponent}}, \quad
              a_i = \text{coef}\,\sigma_i \left(\frac{V}{p_i m_i \text{ADV}_i}\right)^{\text{exponent}-1}

    The simulated broker fills at the impacted price.

    Parameters
    ----------
    coef
        Dimensionless impact coefficient (about 1 in the empirical literature).
    exponent
        Cost exponent in ``[1, 2]``; 1.5 is the square-root law, 2 a linear price impact.

    Notes
    -----
    An asset without a finite volatility, or without a finite ADV > 0 (a fresh
    listing with too little history), cannot be priced: :meth:`tradable` is
    ``False`` there, :meth:`coefficients` (the optimizer's face) holds 0 for it and
    the rebalancers do not trade it (``plan.info["untradable"]``). :meth:`evaluate`
    on a non-zero trade in it raises :class:`~rebalopt.errors.InputError` naming the
    asset and the field (``"volatility"`` or ``"adv"``).
    """

    coef: float = 1.0
    exponent: float = 1.5
    label: str | None = None
    is_slippage = True

    def __post_init__(self) -> None:
        self.coef = require_nonneg(self.coef, "MarketImpact.coef")
        self.exponent = number(self.exponent, "MarketImpact.exponent")
        if not (1.0 <= self.exponent <= 2.0):
            raise InputError(f"must be in [1, 2], got {self.exponent}",
                             field="MarketImpact.exponent")

    def _inputs(self, state: PortfolioState, mask: np.ndarray | None = None) -> None:
        """Raise naming the first asset whose volatility or ADV is unusable."""
        idx = np.arange(state.n) if mask is None else np.flatnonzero(mask)
        vol, adv = state.volatility[idx], state.adv[idx]
        bad_vol = ~np.isfinite(vol)
        if bad_vol.any():
            raise InputError("volatility is required by MarketImpact",
                             asset=str(state.assets[idx[bad_vol][0]]), field="volatility")
        bad_adv = ~np.isfinite(adv) | (adv <= 0)
        if bad_adv.any():
            raise InputError("ADV must be > 0 for MarketImpact",
                             asset=str(state.assets[idx[bad_adv][0]]), field="adv")

    def tradable(self, state: PortfolioState) -> np.ndarray:
        """Assets with a finite volatility and a finite ADV > 0 (boolean mask)."""
        vol, adv = state.volatility, state.adv
        with np.errstate(invalid="ignore"):
            return np.isfinite(vol) & np.isfinite(adv) & (adv > 0)

    def untradable_reasons(self, state: PortfolioState) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in np.flatnonzero(~self.tradable(state)):
            if not np.isfinite(state.volatility[i]):
                why = "volatility"
            else:
                why = "ADV (finite, > 0)"
            out[str(state.assets[i])] = f"no {why}: {self.name} cannot price it"
        return out

    def price_impact(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        """Adverse price move as a fraction of price: coef * sigma * (|q|/ADV)^(exponent-1)."""
        q = np.abs(np.asarray(trades, dtype=float))
        traded = q > 0
        out = np.zeros(state.n)
        if traded.any():
            self._inputs(state, traded)
            out[traded] = (
                self.coef * state.volatility[traded]
                * (q[traded] / state.adv[traded]) ** (self.exponent - 1.0)
            )
        return out

    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        notional = np.abs(np.asarray(trades, dtype=float)) * state.prices * state.multipliers
        return notional * self.price_impact(trades, state)

    def coefficients(self, state: PortfolioState) -> FloatArray:
        """``a_i`` such that cost / equity = ``a_i * |z_i| ** exponent``.

        0 for the assets :meth:`tradable` rejects (the rebalancers never trade them).
        """
        ok = self.tradable(state)
        adv = np.where(ok, state.adv, 1.0)
        vol = np.where(ok, state.volatility, 0.0)
        scale = state.equity / (state.prices * state.multipliers * adv)
        return self.coef * vol * scale ** (self.exponent - 1.0)

    def terms(self, state: PortfolioState) -> CostTerms:
        """Power: ``a_i * |z_i| ** exponent`` (:meth:`coefficients`); linear when
        ``exponent == 1``."""
        a = self.coefficients(state)
        if self.exponent == 1.0:
            return CostTerms(linear=a)
        return CostTerms(power=(PowerTerm(a, float(self.exponent)),))
