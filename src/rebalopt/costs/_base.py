"""The cost-model protocol: one object, two faces.

Each model turns a trade into a cost in two ways that read the same coefficients:

* :meth:`CostModel.evaluate` — NumPy, currency per asset for a trade in shares;
  the simulated broker charges exactly this on every fill, diagnostics report it.
* :meth:`CostModel.terms` — the model's convex structure declared as data
  (:class:`~rebalopt.program.CostTerms`: linear, power, quadratic and short-holding
  terms per asset in trade *weights* ``z``, fractions of equity, plus the
  non-convex per-order part), from which the one program builder writes the
  optimizer's program (Clarabel matrices or cvxpy, :mod:`rebalopt.program`).

For a convex model the faces agree: ``terms(state).trading_cost(z) * equity ==
evaluate(z * equity / (price * multiplier)).sum()``. A holding cost (borrow) has a
third face, :meth:`CostModel.holding`, the currency charged on positions held.

A model may be unable to price some assets of a state (market impact without a
volatility or an ADV, e.g. a fresh listing): :meth:`CostModel.tradable` says which
it can price. The rebalancers do not trade the others (they are *frozen*: held as
they are, reported in ``plan.info["untradable"]``); :func:`untradable_assets`
gathers them over a list of models. ``evaluate`` still raises
:class:`~rebalopt.errors.InputError` (naming asset and field) on a trade in such an
asset, and ``terms`` prices it at 0 (it is never traded).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from rebalopt._memo import UNIVERSE_MEMO
from rebalopt._typing import FloatArray
from rebalopt.program.terms import CostTerms
from rebalopt.state import PortfolioState

__all__ = ["CostModel", "untradable_assets"]


class CostModel(ABC):
    """Base class of transaction-cost models.

    ``is_slippage`` tells the simulated broker how to charge the cost: slippage
    models (spread, impact) move the fill price against the trader; fee models
    (commission) are debited from cash beside the fill.
    """

    is_slippage: bool = False
    label: str | None = None
    paid_at_trade: bool = True
    """Whether the cost is paid from cash at the trade (in the plan's cash and the cash
    floor). ``False`` for a tax, paid later (:class:`~rebalopt.costs.tax.TaxCost`)."""

    @property
    def name(self) -> str:
        """Label used in plans and reports (``label`` if given, else the class name)."""
        return self.label or type(self).__name__

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the values cached per universe
        (:func:`~rebalopt._memo.universe_memo`)."""
        state = dict(self.__dict__)
        state.pop(UNIVERSE_MEMO, None)
        return state

    @abstractmethod
    def evaluate(self, trades: FloatArray, state: PortfolioState) -> FloatArray:
        """Cost in currency per asset of trading ``trades`` shares (signed) at ``state``."""

    @abstractmethod
    def terms(self, state: PortfolioState) -> CostTerms:
        """The convex structure at ``state`` as data (:class:`~rebalopt.program.CostTerms`).

        Read by the program builder, the integer stage and the MIP; must agree with
        :meth:`evaluate` (and :meth:`holding`) on the assets :meth:`tradable` accepts.
        """

    def holding(self, positions: FloatArray, state: PortfolioState,
                years: float) -> FloatArray:
        """Currency per asset charged for holding ``positions`` (shares, signed) for
        ``years`` at ``state``'s prices. Default: nothing (a pure trading cost)."""
        return np.zeros(state.n)

    def tradable(self, state: PortfolioState) -> np.ndarray:
        """Boolean mask over ``state.assets``: the assets this model can price.

        Default: every asset. A model that needs per-asset data the state may lack
        overrides it (and :meth:`untradable_reasons`).
        """
        return np.ones(state.n, dtype=bool)

    def trade_bounds(self, state: PortfolioState) -> tuple[FloatArray, FloatArray] | None:
        """Per-asset bounds ``lo <= z <= hi`` on the trade weights (fractions of
        equity) that this model's declared rows imply, or ``None`` (none).

        The program has the rows themselves; the integer stage, which prices a
        model through :meth:`evaluate`, keeps its lot search inside these bounds.
        Default: none.
        """
        return None

    def untradable_reasons(self, state: PortfolioState) -> dict[str, str]:
        """Why each asset outside :meth:`tradable` cannot be priced, keyed by ticker."""
        bad = np.flatnonzero(~np.asarray(self.tradable(state), dtype=bool))
        return {str(state.assets[i]): f"{self.name} cannot price it" for i in bad}

    @property
    def charges_holding(self) -> bool:
        """Whether :meth:`holding` can be non-zero (the broker then charges it every bar)."""
        return False

    @property
    def exact_in_optimizer(self) -> bool:
        """Whether the convex terms are the whole cost (no non-convex part left out)."""
        return True


_HALTED = "no current price (halted or delisted): held at its last known price"


def untradable_assets(costs: Sequence[CostModel], state: PortfolioState
                      ) -> tuple[np.ndarray, dict[str, str]]:
    """The assets some cost model cannot price, and why.

    Returns
    -------
    frozen
        Boolean mask over ``state.assets``: ``True`` where any model's
        :meth:`CostModel.tradable` is ``False``, or where the state has no current
        price (``state.halted``); the rebalancers do not trade them.
    reasons
        Ticker -> the reasons of every model that cannot price it, joined by ``"; "``,
        in the order of ``state.assets``.
    """
    frozen = np.zeros(state.n, dtype=bool)
    why: dict[str, list[str]] = {}
    halted = getattr(state, "halted", None)
    if halted is not None and halted.any():  # no current price: never traded
        frozen |= halted
        for i in np.flatnonzero(halted):
            why[str(state.assets[i])] = [_HALTED]
    for m in costs:
        ok = np.asarray(m.tradable(state), dtype=bool)
        if ok.shape != (state.n,):
            raise ValueError(f"{m.name}.tradable returned shape {ok.shape} for {state.n} assets")
        if ok.all():
            continue
        frozen |= ~ok
        for ticker, reason in m.untradable_reasons(state).items():
            why.setdefault(ticker, []).append(reason)
    reasons = {str(state.assets[i]): "; ".join(why.get(str(state.assets[i]), ["untradable"]))
               for i in np.flatnonzero(frozen)}
    return frozen, reasons
