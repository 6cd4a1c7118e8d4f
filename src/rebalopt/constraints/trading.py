"""Constraints on the trades themselves: turnover, participation, restricted lists.

Units: trade weights ``z`` are trade values over pre-trade equity; ``t >= |z|`` is
the epigraph variable shared with the cost terms.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import (
    Constraint,
    MatrixLayout,
    MatrixRows,
    Point,
    asset_labels,
    require_nonneg,
    universe_memo,
)
from rebalopt.program.search import Aggregate, Kernel, PerAsset, pos
from rebalopt.state import PortfolioState

__all__ = ["ParticipationLimit", "Restricted", "TurnoverLimit"]


@dataclass
class TurnoverLimit(Constraint):
    r"""One-way turnover cap: :math:`\tfrac12 \sum_i |z_i| \le \text{cap}`.

    ``cap`` is a fraction of equity and a right-hand side: changing ``cap`` between
    solves (a frontier sweep) re-solves without recompiling.
    """

    cap: float = 0.1
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    units: str = "turnover"

    def __post_init__(self) -> None:
        self._validate_soft()
        require_nonneg(self.cap, "TurnoverLimit.cap")

    def describe(self) -> str:
        return f"TurnoverLimit({self.cap:g})"

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        cap = require_nonneg(self.cap, "TurnoverLimit.cap")
        return [MatrixRows.dense_rows(layout.t, np.full((1, state.n), 0.5), [cap])]

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        return np.array([0.5 * np.abs(point.z).sum()]), np.array([float(self.cap)])

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return ["one-way turnover"]

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """One-way turnover ``sum |z| / 2 <= cap`` (:mod:`rebalopt.program.search`)."""
        return [Aggregate(lambda Z, W: 0.5 * np.abs(Z), hi=float(self.cap))]


@dataclass
class ParticipationLimit(Constraint):
    r"""Trade at most ``fraction`` of average daily volume: :math:`|q_i| \le x\,\text{ADV}_i`.

    In weights: :math:`|z_i| \le x\,\text{ADV}_i\,p_i m_i / V`. An asset with ADV 0,
    or with no known ADV (NaN: a fresh listing, say), cannot trade.

    Parameters
    ----------
    fraction
        Largest trade as a fraction of ADV (0.1 = 10%), >= 0.
    """

    fraction: float = 0.1
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()
        require_nonneg(self.fraction, "ParticipationLimit.fraction")

    def describe(self) -> str:
        return f"ParticipationLimit({self.fraction:g} ADV)"

    def caps(self, state: PortfolioState) -> FloatArray:
        """Largest trade per asset as a fraction of equity."""
        adv = np.where(np.isfinite(state.adv), state.adv, 0.0)
        return self.fraction * adv * state.prices * state.multipliers / state.equity

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        return [MatrixRows.diagonal(layout.t, 1.0, self.caps(state))]

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        return np.abs(point.z), self.caps(point.state)

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return asset_labels(state, np.arange(state.n), "participation")

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """``|z| <= cap`` per asset (:mod:`rebalopt.program.search`)."""
        caps = self.caps(state)
        capc = caps[:, None]
        return [PerAsset(lambda Z, W: pos(np.abs(Z) - (caps if Z.ndim == 1 else capc)))]


@dataclass
class Restricted(Constraint):
    """Restricted lists: assets that may not be bought, sold, or traded at all.

    Parameters
    ----------
    no_buy
        Tickers whose trade must be ``<= 0``.
    no_sell
        Tickers whose trade must be ``>= 0``.
    no_trade
        Tickers whose trade must be ``0``.

    Tickers outside the universe are ignored (they cannot be traded anyway).
    """

    no_buy: Iterable[str] = ()
    no_sell: Iterable[str] = ()
    no_trade: Iterable[str] = ()
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()
        for name in ("no_buy", "no_sell", "no_trade"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = [v]
            setattr(self, name, tuple(str(a) for a in v))

    def _idx(self, state: PortfolioState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of the no-buy, no-sell and no-trade assets, once per universe."""
        def pick(names: Iterable[str]) -> np.ndarray:
            out = np.flatnonzero(state.assets.isin(list(names)))
            out.setflags(write=False)
            return out

        return universe_memo(self, state, "idx", (self.no_buy, self.no_sell, self.no_trade),
                             lambda: (pick(self.no_buy), pick(self.no_sell),
                                      pick(self.no_trade)), groups=False)

    def structure(self, state: PortfolioState, targets: FloatArray) -> Hashable:
        return tuple(i.tobytes() for i in self._idx(state))

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        b, s, n = self._idx(state)
        out = [MatrixRows.diagonal(cols, sign, np.zeros(cols.size))
               for cols, sign in ((layout.z[b], 1.0), (layout.z[s], -1.0), (layout.t[n], 1.0))
               if cols.size]
        return out

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        b, s, n = self._idx(point.state)
        z = point.z
        lhs = np.concatenate([z[b], -z[s], np.abs(z[n])])
        return lhs, np.zeros(lhs.size)

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        b, s, n = self._idx(state)
        return (asset_labels(state, b, "no buy") + asset_labels(state, s, "no sell")
                + asset_labels(state, n, "no trade"))

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """No buy / no sell / no trade per asset (:mod:`rebalopt.program.search`)."""
        n = state.n
        b, s_, t_ = self._idx(state)
        mb, ms, mt = (np.zeros(n, bool) for _ in range(3))
        mb[b], ms[s_], mt[t_] = True, True, True

        def restricted(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            return (np.where(mb[col], pos(Z), 0.0) + np.where(ms[col], pos(-Z), 0.0)
                    + np.where(mt[col], np.abs(Z), 0.0))

        return [PerAsset(restricted)]
