"""Constraints that need integers: round lots, a minimum trade value, a maximum trade count.

Each has the numeric ``check`` every constraint has (solver-free, on a
:class:`~rebalopt.constraints.Point` or a plan). Their continuous rows
(:meth:`~rebalopt.constraints.Constraint.rows`) are none: the continuous relaxation
drops them (the convex hull of "no trade or at least ``m``" is unconstrained), so a
relaxation optimum stays a lower bound on any integer plan. What is genuinely
integer is declared the same way, as rows over the integer program's blocks
(:meth:`IntegerConstraint.integer_rows` on the lot counts and the buy/sell binaries
of :class:`IntegerBlocks`), read by the integer stage's ``exact`` mode (the MIP).
Use them through :class:`~rebalopt.rebalance.integer.IntegerRebalancer`; a plain
continuous ``OptimalRebalancer`` would fail their numeric check.

Units: lots and trades in shares; trade values in currency; weights are
fractions of pre-trade equity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rebalopt._checks import numbers_by_asset
from rebalopt._typing import FloatArray
from rebalopt.constraints._base import (
    Constraint,
    MatrixLayout,
    MatrixRows,
    Point,
    asset_labels,
    require_nonneg,
)
from rebalopt.errors import InputError
from rebalopt.program.search import Aggregate, Kernel, PerAsset, pos
from rebalopt.state import PortfolioState

__all__ = [
    "TRADE_EPS",
    "IntegerBlocks",
    "IntegerConstraint",
    "LotSize",
    "MaxTrades",
    "MinTradeValue",
    "trade_shares",
]

TRADE_EPS = 1e-9
"""A trade smaller than this many shares counts as no trade (floating-point noise)."""


def trade_shares(point: Point) -> FloatArray:
    """Trades in shares at ``point``: ``z * V / (price * multiplier)``."""
    s = point.state
    return point.z * s.equity / (s.prices * s.multipliers)


@dataclass(frozen=True)
class IntegerBlocks:
    """The integer program's own blocks, columns of its layout (next to ``z``, ``t``).

    Attributes
    ----------
    buy_lots, sell_lots
        Non-negative integer lot counts bought and sold per asset (``q = buy - sell``).
    buy, sell
        Binaries: asset bought / sold (at most one of them is 1).
    lot_weight
        Weight of one lot per asset, ``lot * price * multiplier / V``.
    """

    buy_lots: np.ndarray
    sell_lots: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    lot_weight: FloatArray


class IntegerConstraint(Constraint):
    """A constraint whose exact form needs integer variables.

    :meth:`rows` (the continuous relaxation) declares no row; :meth:`integer_rows`
    declares the mixed-integer rows; ``evaluate``/``check`` are exact and solver-free.
    """

    needs_integers = True

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        return []

    def integer_rows(self, layout: MatrixLayout, blocks: IntegerBlocks,
                     state: PortfolioState, targets: FloatArray) -> list[MatrixRows]:
        """Rows ``A x <= b`` over ``layout`` and the integer ``blocks`` (default: none,
        the lot grid itself is the integer program's variables)."""
        return []

    # declared properties the integer stage reads (no type switch on the classes)
    needs_binaries = True
    """Whether the exact MIP needs buy/sell binaries for this constraint (a lot grid
    alone does not)."""

    def lot_sizes(self, state: PortfolioState) -> FloatArray | None:
        """Lot size per asset in shares when this constraint sets the lot grid, else
        ``None``."""
        return None

    def min_lots(self, state: PortfolioState, lots: FloatArray) -> FloatArray | None:
        """Smallest non-zero number of lots per asset a trade must have, or ``None``."""
        return None


def _lots(lots: float | pd.Series | Mapping[str, float] | None,
          state: PortfolioState, field: str) -> FloatArray:
    if lots is None:
        return np.asarray(state.lot_sizes, dtype=float)
    if np.isscalar(lots):
        out = np.full(state.n, float(lots))  # type: ignore[arg-type]
    else:
        s = numbers_by_asset(lots, field)
        base = pd.Series(state.lot_sizes, index=state.assets)
        s = s[s.index.isin(state.assets)]
        base.loc[s.index] = s.to_numpy()
        out = base.to_numpy(dtype=float)
    bad = ~np.isfinite(out) | (out <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"lot size must be finite and > 0, got {out[i]}",
                         asset=str(state.assets[i]), field=field)
    return out


@dataclass
class LotSize(IntegerConstraint):
    r"""Every trade is a whole number of lots: :math:`q_i = k_i\,\ell_i,\ k_i\in\mathbb Z`.

    Parameters
    ----------
    lots
        Lot size in shares (> 0): one number for every asset, a Series / mapping
        keyed by ticker (others keep ``state.lot_sizes``), or ``None`` for
        ``state.lot_sizes`` (1 = whole shares).

    The check's rows are the distance of each trade to its nearest lot multiple,
    in shares, against a floating-point allowance of ``1e-9 * max(1, |trade|)``.
    A trade that closes the position to exactly zero is always allowed, whatever
    the lot size (130 shares held with 100-share lots can be sold in full).
    """

    lots: float | pd.Series | Mapping[str, float] | None = None
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    units: str = "shares"
    needs_binaries = False

    def __post_init__(self) -> None:
        self._validate_soft()
        if self.lots is not None and not np.isscalar(self.lots):
            numbers_by_asset(self.lots, "LotSize.lots")  # type: ignore[arg-type]
        if self.lots is not None and np.isscalar(self.lots):
            v = float(self.lots)  # type: ignore[arg-type]
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"lot size must be finite and > 0, got {v}", field="LotSize.lots")

    def describe(self) -> str:
        return "LotSize" if self.lots is None or not np.isscalar(self.lots) else \
            f"LotSize({float(self.lots):g})"  # type: ignore[arg-type]

    def sizes(self, state: PortfolioState) -> FloatArray:
        """Lot size per asset in shares."""
        return _lots(self.lots, state, "LotSize.lots")

    def lot_sizes(self, state: PortfolioState) -> FloatArray:
        """This constraint sets the lot grid: :meth:`sizes`."""
        return self.sizes(state)

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        x = trade_shares(point)
        lot = self.sizes(point.state)
        k = x / lot
        allow = 1e-9 * np.maximum(1.0, np.abs(x))
        dist = np.abs(k - np.round(k)) * lot
        # closing a position to exactly zero is always a whole order (odd lots)
        closes = np.abs(x + point.state.holdings) <= allow
        return np.where(closes, 0.0, dist), allow

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return asset_labels(state, np.arange(state.n), "lot multiple")

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """Distance of each trade to its nearest lot multiple, shares; a close to exactly
        zero is always whole (:mod:`rebalopt.program.search`)."""
        V, unit = state.equity, state.prices * state.multipliers
        lot = self.sizes(state)
        held = np.asarray(state.holdings, dtype=float)

        def lot_dist(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            x = Z * (V / unit[col])
            k = x / lot[col]
            allow = 1e-9 * np.maximum(1.0, np.abs(x))
            closes = np.abs(x + held[col]) <= allow  # closing to zero: always whole
            return np.where(closes, 0.0, pos(np.abs(k - np.round(k)) * lot[col] - allow))

        return [PerAsset(lot_dist)]


@dataclass
class MinTradeValue(IntegerConstraint):
    r"""No dust: each asset either does not trade or trades at least ``value`` in currency.

    .. math:: q_i = 0 \ \ \text{or}\ \ |q_i|\,p_i m_i \ge \text{value}

    Rows (weights): ``value / V - |z_i| <= 0`` for every traded asset.

    Parameters
    ----------
    value
        Smallest trade value, currency (>= 0).
    """

    value: float = 0.0
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()
        require_nonneg(self.value, "MinTradeValue.value")

    def describe(self) -> str:
        return f"MinTradeValue({self.value:g})"

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        traded = np.abs(trade_shares(point)) > TRADE_EPS
        m = self.value / point.state.equity
        lhs = np.where(traded, m - np.abs(point.z), 0.0)
        return lhs, np.zeros(point.state.n)

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return asset_labels(state, np.arange(state.n), "min trade value")

    def min_lots(self, state: PortfolioState, lots: FloatArray) -> FloatArray | None:
        """Smallest non-zero number of lots per asset that meets ``value`` (``None`` when
        soft or zero: nothing is forced)."""
        if self.soft or self.value <= 0:
            return None
        lot_value = lots * state.prices * state.multipliers
        return np.maximum(1.0, np.ceil(self.value / lot_value - 1e-12))

    def integer_rows(self, layout: MatrixLayout, blocks: IntegerBlocks,
                     state: PortfolioState, targets: FloatArray) -> list[MatrixRows]:
        # m * buy_i - lot_weight_i * buy_lots_i <= 0 (and the same for sells)
        m = self.value / state.equity
        i = np.arange(state.n)
        lw = np.asarray(blocks.lot_weight, dtype=float)
        return [MatrixRows(np.r_[i, i], np.r_[flag, lots], np.r_[np.full(state.n, m), -lw],
                           np.zeros(state.n))
                for flag, lots in ((blocks.buy, blocks.buy_lots),
                                   (blocks.sell, blocks.sell_lots))]

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """Each traded asset's shortfall below the minimum value (:mod:`rebalopt.program.search`)."""
        V, unit = state.equity, state.prices * state.multipliers
        m = self.value / V
        eps = TRADE_EPS * unit / V

        def min_value(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            return np.where(np.abs(Z) > eps[col], pos(m - np.abs(Z)), 0.0)

        return [PerAsset(min_value)]


@dataclass
class MaxTrades(IntegerConstraint):
    r"""At most ``count`` assets trade: :math:`\#\{i : q_i \ne 0\} \le \text{count}`.

    Parameters
    ----------
    count
        Largest number of orders (>= 0).
    """

    count: int = 10
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    units: str = "trades"

    def __post_init__(self) -> None:
        self._validate_soft()
        if not (isinstance(self.count, (int, np.integer)) and self.count >= 0):
            raise InputError(f"must be an integer >= 0, got {self.count!r}",
                             field="MaxTrades.count")

    def describe(self) -> str:
        return f"MaxTrades({self.count})"

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        n = float(np.count_nonzero(np.abs(trade_shares(point)) > TRADE_EPS))
        return np.array([n]), np.array([float(self.count)])

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return ["number of trades"]

    def integer_rows(self, layout: MatrixLayout, blocks: IntegerBlocks,
                     state: PortfolioState, targets: FloatArray) -> list[MatrixRows]:
        # sum(buy + sell) <= count
        return [MatrixRows.dense_rows(np.r_[blocks.buy, blocks.sell],
                                      np.ones((1, 2 * state.n)), [float(self.count)])]

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """The number of traded assets ``<= count`` (:mod:`rebalopt.program.search`)."""
        V, unit = state.equity, state.prices * state.multipliers
        eps = TRADE_EPS * unit / V

        def traded(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
            col = (slice(None),) + (None,) * (Z.ndim - 1)
            return (np.abs(Z) > eps[col]).astype(float)

        return [Aggregate(traded, hi=float(self.count))]
